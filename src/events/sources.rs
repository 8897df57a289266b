//! Origin lines: where the text of a `file:line` the audit hook names comes
//! from, and which of those names are forged.
//!
//! The audit stream is the package's to write, so every path in it is a
//! claim. sdist-box quotes a line only from trees the package never wrote:
//! the sdist as shipped (extracted by sdist-box before any package code
//! ran, never bound into a sandbox) and, for files the user's pre-build
//! hook changed, the bytes that hook left (read before any sandbox ran).
//! Nothing the package names is read anywhere else. A claimed path is:
//! - outside the source tree (`/usr/lib/python3.12/…`, the build
//!   environment, `<string>`, a file a backend generated under `/tmp`): an
//!   origin the package claimed, shown without text;
//! - beneath it, with plain components only: the line of that shipped file,
//!   resolved with no link and no `..` at any depth ([`crate::beneath`]);
//!   a file the build made (not shipped) has no text;
//! - under the source tree but leading out of it — `..` above its top, or
//!   a link the build made that the kernel would follow out of the tree —
//!   **forged**: no compiler names a file that way; code compiled under a
//!   made-up name, or a line written into the stream, does. The path is
//!   never opened; the claim becomes a finding of its own.
//!
//! The one look at the tree the build wrote is [`Beneath::escapes`]: an
//! `O_PATH` resolution that follows the build's links only while they stay
//! inside the tree and stops at the first step out, after every process of
//! the sandbox has ended. It reads nothing; it only tells a link that leads
//! out from one that does not. (A build that removes its link before it
//! ends hides the forgery, never the file: the line is still not read.)

use std::collections::{BTreeMap, HashMap};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use crate::beneath::{Beneath, plain_relative};

/// The trees origin lines may be quoted from (paths only: [`Quoter`]
/// opens them).
#[derive(Debug, Clone, Default)]
pub struct SourceTrees {
    /// The sdist as shipped: captured before any package code ran, never
    /// writable by a sandbox. `None`: no text is quoted at all.
    pub shipped: Option<PathBuf>,
    /// Files the pre-build hook changed, relative to the top: their bytes
    /// as the hook left them, or `None` (removed, not a regular file, or
    /// over the bound): these are quoted from here, not from `shipped`.
    pub patched: Arc<BTreeMap<String, Option<Vec<u8>>>>,
    /// The tree the sandbox wrote, on the host: only ever asked whether a
    /// claimed path leads out of it ([`Beneath::escapes`]).
    pub live: Option<PathBuf>,
}

/// What a claimed origin file turned out to be.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// Relative to the top of the source tree for a plain path beneath it;
    /// the claimed path as given otherwise.
    pub file: String,
    /// A regular file of the sdist as shipped.
    pub in_sdist: bool,
    /// Why the claim is forged, if it is.
    pub forged: Option<&'static str>,
    lines: Option<Arc<Vec<String>>>,
}

impl Resolved {
    /// The text of line `line` (1-based), trimmed and escaped.
    pub fn line(&self, line: u32) -> Option<String> {
        let lines = self.lines.as_ref()?;
        lines
            .get((line as usize).checked_sub(1)?)
            .map(|l| crate::text::one_line(l.trim(), 200))
    }
}

/// Most bytes of one file read for its lines (as many lines as a source
/// file has in practice).
const MAX_FILE_BYTES: u64 = 4 << 20;
/// Most bytes of lines kept for one pairing: a stream naming thousands of
/// large shipped files must not fill the memory (past it: no text).
const MAX_KEPT_BYTES: usize = 64 << 20;

/// Resolves claimed origins against [`SourceTrees`], once per path.
pub struct Quoter {
    inside: PathBuf,
    shipped: Option<Beneath>,
    patched: Arc<BTreeMap<String, Option<Vec<u8>>>>,
    live: Option<Beneath>,
    cache: HashMap<String, Resolved>,
    kept: usize,
}

impl Quoter {
    /// `inside`: where the sandbox sees the source tree (`/build/src`).
    pub fn new(inside: &Path, trees: &SourceTrees) -> Quoter {
        let open = |p: &Option<PathBuf>| {
            p.as_deref().and_then(|p| match Beneath::open(p) {
                Ok(b) => Some(b),
                Err(e) => {
                    tracing::warn!("cannot open {} for origin lines: {e}", crate::text::path(p));
                    None
                }
            })
        };
        Quoter {
            inside: inside.to_path_buf(),
            shipped: open(&trees.shipped),
            patched: trees.patched.clone(),
            live: open(&trees.live),
            cache: HashMap::new(),
            kept: 0,
        }
    }

    /// What the claimed file `claimed` is (cached).
    pub fn resolve(&mut self, claimed: &str) -> &Resolved {
        if !self.cache.contains_key(claimed) {
            let r = self.classify(claimed);
            self.cache.insert(claimed.to_string(), r);
        }
        &self.cache[claimed]
    }

    fn classify(&mut self, claimed: &str) -> Resolved {
        let outside = |forged| Resolved {
            file: claimed.to_string(),
            in_sdist: false,
            forged,
            lines: None,
        };
        let Ok(rel) = Path::new(claimed).strip_prefix(&self.inside) else {
            return outside(None);
        };
        match lexical(&self.inside, rel) {
            Lexical::Plain => {}
            Lexical::Leaves => {
                return outside(Some("its `..` components lead out of the source tree"));
            }
            Lexical::ComesBack => return outside(None),
            Lexical::Inside => {
                // `a/../b`, `a//b`: not quoted; forged when a link the
                // build made takes it out of the tree.
                return outside(self.leads_out(rel));
            }
        }
        let key = rel.to_string_lossy().into_owned();
        let (in_sdist, bytes) = self.read(rel, &key);
        let forged = if in_sdist || bytes.is_some() {
            None
        } else {
            self.leads_out(rel)
        };
        let lines = bytes.and_then(|b| {
            if self.kept + b.len() > MAX_KEPT_BYTES {
                return None;
            }
            self.kept += b.len();
            Some(Arc::new(
                String::from_utf8_lossy(&b)
                    .lines()
                    .map(str::to_string)
                    .collect(),
            ))
        });
        Resolved {
            file: if forged.is_some() {
                claimed.to_string()
            } else {
                key
            },
            in_sdist,
            forged,
            lines,
        }
    }

    /// Whether `rel` is a regular file of the shipped tree, and the bytes
    /// to quote from (the pre-build hook's version where it changed it).
    fn read(&self, rel: &Path, key: &str) -> (bool, Option<Vec<u8>>) {
        let Some(shipped) = &self.shipped else {
            return (false, None);
        };
        let in_sdist = shipped.lookup(rel).ok() == Some(crate::beneath::Kind::File);
        if let Some(patched) = self.patched.get(key) {
            return (in_sdist, patched.clone());
        }
        if !in_sdist {
            return (false, None);
        }
        (true, shipped.read_regular(rel, MAX_FILE_BYTES).ok())
    }

    fn leads_out(&self, rel: &Path) -> Option<&'static str> {
        let live = self.live.as_ref()?;
        live.escapes(rel)?
            .then_some("it passes through a link in the build tree that leads out of it")
    }
}

enum Lexical {
    /// Plain names only.
    Plain,
    /// `.`, `..` or empty components that stay beneath the top throughout.
    Inside,
    /// Goes above the top and ends inside again (`../src/x.py` from a
    /// `sys.path` entry of `/build/src/..`): odd, not forged.
    ComesBack,
    /// Ends above the top.
    Leaves,
}

/// `rel` (what follows the source tree in a claimed path) read lexically,
/// as the tree's top-level directory `inside` plus `rel`, normalized.
fn lexical(inside: &Path, rel: &Path) -> Lexical {
    if plain_relative(rel) {
        return Lexical::Plain;
    }
    let mut at = inside.to_path_buf();
    let mut went_above = false;
    for c in rel.components() {
        match c {
            Component::Normal(n) => at.push(n),
            Component::ParentDir => {
                at.pop();
            }
            Component::CurDir => {}
            // strip_prefix leaves no root; be safe anyway.
            Component::RootDir | Component::Prefix(_) => return Lexical::Leaves,
        }
        went_above |= !at.starts_with(inside);
    }
    if !at.starts_with(inside) {
        Lexical::Leaves
    } else if went_above {
        Lexical::ComesBack
    } else {
        Lexical::Inside
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    struct Fixture {
        _dirs: Vec<tempfile::TempDir>,
        trees: SourceTrees,
        canary: PathBuf,
    }

    /// A shipped tree, a live tree the "build" changed, and a canary
    /// outside both.
    fn fixture() -> Fixture {
        let shipped = tempfile::tempdir().unwrap();
        let live = tempfile::tempdir().unwrap();
        let host = tempfile::tempdir().unwrap();
        let canary = host.path().join("secret");
        std::fs::write(&canary, "CANARY-LINE\nCANARY-LINE\n").unwrap();
        for t in [shipped.path(), live.path()] {
            std::fs::create_dir_all(t.join("pkg")).unwrap();
            std::fs::write(t.join("pkg/mod.py"), "import os\nos.system('x')\n").unwrap();
        }
        std::fs::write(shipped.path().join("setup.py"), "a = 1\nshipped()\n").unwrap();
        // The build rewrote setup.py, made files, and planted links.
        std::fs::write(live.path().join("setup.py"), "a = 1\nrewritten()\n").unwrap();
        std::fs::create_dir_all(live.path().join("build/lib")).unwrap();
        std::fs::write(live.path().join("build/lib/gen.py"), "generated()\n").unwrap();
        symlink("/", live.path().join("hostroot")).unwrap();
        symlink("pkg", live.path().join("alias")).unwrap();
        Fixture {
            trees: SourceTrees {
                shipped: Some(shipped.path().to_path_buf()),
                patched: Arc::default(),
                live: Some(live.path().to_path_buf()),
            },
            canary,
            _dirs: vec![shipped, live, host],
        }
    }

    #[test]
    fn lines_come_from_the_shipped_tree_only() {
        let f = fixture();
        let mut q = Quoter::new(Path::new("/build/src"), &f.trees);
        let r = q.resolve("/build/src/setup.py").clone();
        assert!(r.in_sdist && r.forged.is_none());
        assert_eq!(r.file, "setup.py");
        assert_eq!(r.line(2).as_deref(), Some("shipped()"));
        assert_eq!(r.line(3), None);
        assert_eq!(r.line(0), None);
        // Made by the build: no text, not forged.
        let r = q.resolve("/build/src/build/lib/gen.py").clone();
        assert!(!r.in_sdist && r.forged.is_none() && r.line(1).is_none());
        assert_eq!(r.file, "build/lib/gen.py");
        // A link the build made that stays inside: no text, not forged.
        let r = q.resolve("/build/src/alias/mod.py").clone();
        assert!(r.forged.is_none() && r.line(1).is_none(), "{r:?}");
        // Outside the tree: claimed, no text, not forged.
        for outside in [
            "/usr/lib/python3.12/subprocess.py",
            "<string>",
            "/tmp/pip-build-env/setuptools/build_meta.py",
            "/build/srcx/setup.py",
        ] {
            let r = q.resolve(outside).clone();
            assert!(r.forged.is_none() && r.line(1).is_none() && !r.in_sdist);
            assert_eq!(r.file, outside);
        }
    }

    #[test]
    fn paths_that_lead_out_are_forged_and_never_read() {
        let f = fixture();
        let canary = f.canary.display().to_string();
        let mut q = Quoter::new(Path::new("/build/src"), &f.trees);
        let claims = [
            format!("/build/src/../../../..{canary}"),
            format!("/build/src/hostroot{canary}"),
            format!("/build/src/pkg/../hostroot{canary}"),
        ];
        let kernel_can_tell = f
            .trees
            .live
            .as_ref()
            .and_then(|l| Beneath::open(l).ok()?.escapes(Path::new("x")))
            .is_some();
        for claim in &claims {
            let r = q.resolve(claim).clone();
            assert!(r.line(1).is_none() && !r.in_sdist, "{claim}: {r:?}");
            assert_eq!(r.file, *claim);
            if kernel_can_tell || claim.contains("/../../") {
                assert!(r.forged.is_some(), "{claim} was not called forged");
            }
        }
        // `..` that goes above the top and comes back in: not quoted, not forged.
        let r = q.resolve("/build/src/../src/setup.py").clone();
        assert!(r.forged.is_none() && r.line(2).is_none());
    }

    #[test]
    fn the_pre_build_hooks_version_is_quoted_where_it_changed_a_file() {
        let mut f = fixture();
        f.trees.patched = Arc::new(BTreeMap::from([
            ("setup.py".to_string(), Some(b"a = 1\npatched()\n".to_vec())),
            ("pkg/mod.py".to_string(), None),
        ]));
        let mut q = Quoter::new(Path::new("/build/src"), &f.trees);
        let r = q.resolve("/build/src/setup.py").clone();
        assert_eq!(r.line(2).as_deref(), Some("patched()"));
        assert!(r.in_sdist);
        let r = q.resolve("/build/src/pkg/mod.py").clone();
        assert!(r.line(1).is_none());
    }

    #[test]
    fn without_a_shipped_tree_nothing_is_quoted() {
        let mut q = Quoter::new(Path::new("/build/src"), &SourceTrees::default());
        let r = q.resolve("/build/src/setup.py").clone();
        assert!(r.line(1).is_none() && !r.in_sdist && r.forged.is_none());
        assert!(q.resolve("/build/src/../../etc/passwd").forged.is_some());
    }
}
