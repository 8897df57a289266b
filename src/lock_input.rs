//! A lock file as `build-all`'s input: pinned requirements or a
//! `pylock.toml` become one batch entry per applicable pin, each of which a
//! worker fetches (see [`crate::fetch`]) before building it.
//!
//! [`LockRun::open`] does everything that needs no network: it reads the
//! lock, asks the target interpreter for its marker values, decides per
//! entry ([`crate::fetch::lock::select`]) and resolves the indexes as pip
//! would (plus the caller's `--index-url`). Entries whose marker is false
//! for the target are not built and are listed in the summary
//! ([`LockSummary::excluded`]); entries refused by the selection (no
//! sha256 pin, a VCS source, …) stay entries and are refused when their
//! turn comes, so the summary names them beside the others.
//!
//! Invariants:
//! - nothing here runs package code: the only process started is the
//!   target interpreter answering the fetch library's stdlib-only probes;
//! - an entry's sdist reaches the build only after its sha256 matched a
//!   pin (or the caller allowed it unpinned, and the provenance says so);
//!   the build's own `verify` stage checks the cached file again;
//! - one entry's fetch failure (missing, hash mismatch, yanked) is that
//!   entry's `refused` result and nothing else's;
//! - this module names neither `batch` nor `cli`: it hands out plain
//!   entries ([`LockEntry`]) and fetch outcomes, and the batch maps them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::fetch::cache::{CacheError, SdistCache};
use crate::fetch::closure::{Closure, Step};
use crate::fetch::config::{
    ConfigError, Environment, IndexConfig, IndexSettings, PipConfig, pip_default_index,
};
use crate::fetch::fetcher::{FetchOptions, Fetched, Fetcher};
use crate::fetch::http::{HttpError, HttpOptions};
use crate::fetch::lock::{Action, LockError, LockFile, LockFormat, Pin, Policy, SelectError};
use crate::fetch::netrc::{Netrc, netrc_path};
use crate::fetch::progress::Progress;
use crate::fetch::target::{Target, TargetError};

/// File names of sdists as a path list names them (a path list is not a
/// lock).
const SDIST_SUFFIXES: &[&str] = &[".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".tar", ".zip"];

/// Whether INPUT (a file) is a lock rather than a list of sdist paths: a
/// `pylock*.toml` name, or a requirements file whose first line that is not
/// a comment is an option (a path list takes none) or names a project
/// (`name==version`, `name @ URL`), not a path.
pub fn is_lock(path: &Path) -> bool {
    if crate::fetch::pylock::is_pylock_name(path) {
        return true;
    }
    let Ok(text) = std::fs::read_to_string(path) else {
        return false;
    };
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'));
    let Some(first) = first else { return false };
    let token = first.split_whitespace().next().unwrap_or("");
    if token.starts_with('-') {
        return true;
    }
    let names_a_project = token.contains("==") || token.contains('@') || first.contains(" @ ");
    let is_path = SDIST_SUFFIXES.iter().any(|s| token.ends_with(s)) && !token.contains("==");
    names_a_project && !is_path
}

/// What the caller sets for fetching.
#[derive(Debug, Clone)]
pub struct LockOptions {
    /// The interpreter the wheels are built for (its markers decide).
    pub python: PathBuf,
    /// `CACHE/sdists/…` holds the fetched sdists (the build cache's root).
    pub cache_dir: PathBuf,
    /// `--index-url`, `--extra-index-url`, `--sdist-find-links`.
    pub index: IndexSettings,
    /// `--allow-unpinned`.
    pub policy: Policy,
    /// `--allow-yanked`, `--max-download`.
    pub fetch: FetchOptions,
    /// `--with-deps`: plan the closure of what is built.
    pub with_deps: bool,
}

/// The lock could not be used at all (nothing is fetched or built).
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum LockInputError {
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("cannot ask the target interpreter for its markers: {0}")]
    Target(#[from] TargetError),
    #[error(transparent)]
    Select(#[from] SelectError),
    #[error("pip's configuration: {0}")]
    Config(#[from] ConfigError),
    #[error("cannot set up the HTTP client: {0}")]
    Http(#[from] HttpError),
    #[error("the sdist cache: {0}")]
    Cache(#[from] CacheError),
    #[error("`{0}` names no package to build")]
    Empty(PathBuf),
}

/// One entry to build, before it is fetched: `path` is where the sdist
/// would be called what the lock says (a placeholder: the file is the
/// cached one once fetched), so the batch's plan (shard key, duplicates)
/// works from the project name and version alone.
#[derive(Debug, Clone)]
pub struct LockEntry {
    pub path: PathBuf,
    /// The lock's `FILE:LINE` (or `FILE: packages[N] (name)`): the key of
    /// [`LockRun::fetch`].
    pub origin: String,
    pub line: usize,
}

/// An entry of the lock not built for this interpreter.
#[derive(Debug, Clone, Serialize)]
pub struct Excluded {
    pub origin: String,
    pub name: String,
    pub reason: String,
}

/// What `build-all.json` says about the lock (`lock`): no credentials.
#[derive(Debug, Clone, Serialize)]
pub struct LockSummary {
    pub path: PathBuf,
    pub format: LockFormat,
    /// The index searched first (None: `--no-index`-like configuration).
    pub index: Option<String>,
    pub extra_indexes: Vec<String>,
    pub find_links: Vec<String>,
    /// The lock's and the configuration's notes (ignored options, …).
    pub notes: Vec<String>,
    pub allow_unpinned: bool,
    pub with_deps: bool,
    pub excluded: Vec<Excluded>,
    /// `--with-deps`: dependencies the lock does not pin (or pins at a
    /// version the requirement excludes), as `NAME (required by X Y): REQ`.
    pub unresolved: Vec<String>,
}

/// The lock of one run: its entries, the shared fetcher and the progress.
pub struct LockRun {
    summary: Mutex<LockSummary>,
    fetcher: Fetcher,
    progress: Arc<dyn Progress>,
    /// Origin → the pin and what to do with it.
    pins: HashMap<String, (Pin, Action)>,
    closure: Option<Mutex<Closure>>,
}

impl LockRun {
    /// Read and select the lock and set up the fetcher (module docs).
    pub fn open(
        lock_path: &Path,
        options: &LockOptions,
        progress: Arc<dyn Progress>,
    ) -> Result<(LockRun, Vec<LockEntry>), LockInputError> {
        let lock = crate::fetch::read_lock(lock_path, &|k| std::env::var(k).ok())?;
        let target = Target::probe(&options.python)?;
        let selected = crate::fetch::lock::select(&lock, &target, options.policy)?;
        let config = index_config(&lock, options)?;
        let fetcher = Fetcher::new(
            config.clone(),
            HttpOptions::from_config(&config),
            SdistCache::open(&options.cache_dir)?,
            Some(target.clone()),
            options.fetch.clone(),
        )?;
        let mut entries = Vec::new();
        let mut excluded = Vec::new();
        let mut pins = HashMap::new();
        for (i, s) in selected.iter().enumerate() {
            if let Action::Skip { reason } = &s.action {
                excluded.push(Excluded {
                    origin: s.pin.origin.clone(),
                    name: s.pin.name.to_string(),
                    reason: reason.clone(),
                });
                continue;
            }
            entries.push(LockEntry {
                path: placeholder_path(&lock, &s.pin),
                origin: s.pin.origin.clone(),
                line: line_of(&s.pin.origin).unwrap_or(i + 1),
            });
            pins.insert(s.pin.origin.clone(), (s.pin.clone(), s.action.clone()));
        }
        if entries.is_empty() {
            return Err(LockInputError::Empty(lock_path.to_path_buf()));
        }
        let closure = options.with_deps.then(|| {
            let mut c = Closure::new(&selected, target.clone());
            // Every applicable entry is a root: the lock is what the user
            // wants built; the closure then checks nothing is missing.
            let _roots: Step = c.roots_from_lock();
            Mutex::new(c)
        });
        let summary = summary_of(&lock, &config, options, excluded);
        Ok((
            LockRun {
                summary: Mutex::new(summary),
                fetcher,
                progress,
                pins,
                closure,
            },
            entries,
        ))
    }

    /// Fetch the sdist of the entry named by `origin`: None when `origin`
    /// is not a lock entry; `Err` with the reason when it is refused (by
    /// the selection, or because fetching it failed).
    pub fn fetch(&self, origin: &str) -> Option<Result<Fetched, String>> {
        let (pin, action) = self.pins.get(origin)?;
        Some(match action {
            Action::Fetch { pinned } => self
                .fetcher
                .fetch(pin, *pinned, &*self.progress)
                .map_err(|e| e.message()),
            Action::Refuse { reason } | Action::Skip { reason } => {
                Err(format!("{} ({}): {reason}", pin.origin, pin.label()))
            }
        })
    }

    /// For `--dry-run`, without the network: `fetch` (and build) or
    /// `refuse`; None when `origin` is not a lock entry.
    pub fn planned_action(&self, origin: &str) -> Option<&'static str> {
        self.pins.get(origin).map(|(_, action)| match action {
            Action::Fetch { pinned: true } => "fetch",
            Action::Fetch { pinned: false } => "fetch-unpinned",
            Action::Refuse { .. } | Action::Skip { .. } => "refuse",
        })
    }

    /// `--with-deps`: the wheel of `name` was built (or was already);
    /// what its `Requires-Dist` needs that the lock does not give is
    /// recorded in [`LockSummary::unresolved`] and returned.
    pub fn built(&self, name: &str, wheel: &Path) -> Vec<String> {
        let Some(closure) = &self.closure else {
            return Vec::new();
        };
        let Ok(project) = crate::fetch::names::package_name(name) else {
            return Vec::new();
        };
        let step = crate::fetch::metadata::read_wheel_metadata(wheel)
            .map_err(|e| e.to_string())
            .and_then(|meta| {
                let mut c = closure.lock().unwrap_or_else(|e| e.into_inner());
                c.built(&project, &meta).map_err(|e| e.to_string())
            });
        let unresolved = match step {
            Ok(step) => unresolved_of(&step),
            Err(e) => vec![format!("{name}: its wheel's metadata cannot be read: {e}")],
        };
        if !unresolved.is_empty() {
            let mut s = self.summary.lock().unwrap_or_else(|e| e.into_inner());
            s.unresolved.extend(unresolved.iter().cloned());
        }
        unresolved
    }

    /// The lock's part of `build-all.json`, as it stands.
    pub fn summary(&self) -> LockSummary {
        self.summary
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// The lines `--with-deps` reports for one step (a lock that already
/// holds every dependency plans nothing new: each was a root).
fn unresolved_of(step: &Step) -> Vec<String> {
    let mut out: Vec<String> = step
        .unpinned
        .iter()
        .map(|u| {
            let mut line = format!(
                "{} (required by {}): `{}` is not pinned in the lock",
                u.name, u.required_by, u.requirement
            );
            if let Some(note) = &u.note {
                line.push_str(&format!(" ({note})"));
            }
            line
        })
        .collect();
    out.extend(step.conflicts.iter().map(|c| {
        format!(
            "{} (required by {}): `{}` excludes the locked {}",
            c.name, c.required_by, c.requirement, c.locked
        )
    }));
    out.extend(step.to_build.iter().map(|p| {
        format!(
            "{} (required by a built wheel): in the lock but not planned",
            p.label()
        )
    }));
    out
}

/// The indexes: the caller's, the lock's, pip's configuration and netrc,
/// pip's own default last (asked of the target interpreter).
fn index_config(lock: &LockFile, options: &LockOptions) -> Result<IndexConfig, ConfigError> {
    let env = Environment::process(None);
    let pip = PipConfig::load(&env)?;
    let netrc = match netrc_path(&|k| std::env::var(k).ok(), env.home.as_deref()) {
        Some(path) => {
            let (netrc, note) = Netrc::load(&path);
            if let Some(note) = note {
                tracing::warn!("{note}");
            }
            netrc
        }
        None => Netrc::default(),
    };
    IndexConfig::resolve(&options.index, &lock.options, &pip, &netrc, &|| {
        pip_default_index(&options.python)
    })
}

fn summary_of(
    lock: &LockFile,
    config: &IndexConfig,
    options: &LockOptions,
    excluded: Vec<Excluded>,
) -> LockSummary {
    let mut notes = lock.notes.clone();
    notes.extend(config.notes.iter().cloned());
    LockSummary {
        path: lock.path.clone(),
        format: lock.format,
        index: config.index.as_ref().map(|l| l.shown()),
        extra_indexes: config.extra.iter().map(|l| l.shown()).collect(),
        find_links: config.find_links.iter().map(ToString::to_string).collect(),
        notes,
        allow_unpinned: options.policy.allow_unpinned,
        with_deps: options.with_deps,
        excluded,
        unresolved: Vec::new(),
    }
}

/// `LOCKDIR/<file name>`: the lock's own file name for the sdist when it
/// has a plain one, else `name-version.tar.gz` with the name's separators
/// as `_` (so the batch's shard key, from the file name, is the project).
fn placeholder_path(lock: &LockFile, pin: &Pin) -> PathBuf {
    let dir = lock.path.parent().unwrap_or(Path::new("."));
    let own = pin
        .sdist
        .filename
        .as_deref()
        .filter(|f| crate::fetch::cache::is_plain_sdist_name(f));
    let name = match (own, &pin.version) {
        (Some(f), _) => f.to_string(),
        (None, Some(v)) => format!("{}-{v}.tar.gz", pin.name.as_ref().replace('-', "_")),
        (None, None) => format!("{}.tar.gz", pin.name.as_ref().replace('-', "_")),
    };
    dir.join(name)
}

/// The line number at the end of `FILE:LINE`.
fn line_of(origin: &str) -> Option<usize> {
    origin.rsplit_once(':')?.1.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str, name: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn locks_and_path_lists_are_told_apart() {
        let cases = [
            (
                "# c\nsix==1.17.0 --hash=sha256:00\n",
                "requirements.txt",
                true,
            ),
            ("--index-url https://x.invalid/simple\n", "r.txt", true),
            ("pkg @ https://x.invalid/pkg-1.0.tar.gz\n", "r.txt", true),
            (
                "../sdists/six-1.17.0.tar.gz --hash=sha256:00\n",
                "r.txt",
                false,
            ),
            ("six-1.17.0.tar.gz\n", "list.txt", false),
            ("# only comments\n", "r.txt", false),
            ("", "pylock.toml", true),
        ];
        for (text, name, want) in cases {
            let (_d, path) = file(text, name);
            assert_eq!(is_lock(&path), want, "{text:?} as {name}");
        }
    }

    #[test]
    fn unresolved_dependencies_name_what_requires_them() {
        use crate::fetch::closure::{Conflict, Unpinned};
        let step = Step {
            to_build: Vec::new(),
            unpinned: vec![Unpinned {
                name: "six".into(),
                requirement: "six>=1.9".into(),
                required_by: "mock 2.0.0".into(),
                note: Some("its entry is for Python < 3".into()),
            }],
            conflicts: vec![Conflict {
                name: "pbr".into(),
                locked: "pbr==0.1".into(),
                requirement: "pbr>=0.11".into(),
                required_by: "mock 2.0.0".into(),
            }],
        };
        assert_eq!(
            unresolved_of(&step),
            [
                "six (required by mock 2.0.0): `six>=1.9` is not pinned in the lock (its entry is for Python < 3)",
                "pbr (required by mock 2.0.0): `pbr>=0.11` excludes the locked pbr==0.1",
            ]
        );
    }

    #[test]
    fn line_numbers_come_from_requirements_origins() {
        assert_eq!(line_of("/x/requirements.txt:12"), Some(12));
        assert_eq!(line_of("/x/pylock.toml: packages[0] (a)"), None);
    }
}
