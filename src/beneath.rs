//! Opening a file by a path someone else chose, beneath a directory of ours.
//!
//! The package names paths (an origin `file:line`, the wheel it built, its
//! metadata directory) and writes whole trees (its source tree, the output
//! and control directories). sdist-box reads them back as the user, often
//! root, so a path resolved on the package's word must never lead out of
//! the directory it is meant to be in. Invariants:
//! - the path is relative and made of plain components only (no `..`, `.`,
//!   root or empty component), checked before any system call
//!   ([`plain_relative`]);
//! - the kernel resolves it beneath the directory's descriptor with
//!   `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS
//!   | RESOLVE_NO_XDEV)`: no symlink at any depth, no mount crossed. Where
//!   the kernel has no `openat2` (before 5.6, or a container's seccomp
//!   profile that does not know it) the same walk is made one component at
//!   a time, each opened `O_NOFOLLOW` relative to the last;
//! - a file is opened `O_NONBLOCK | O_NOCTTY` (a FIFO or a terminal the
//!   package planted neither blocks us nor becomes our terminal), checked
//!   to be regular on the open descriptor, and read with a bound;
//! - [`Beneath::lookup`], [`Beneath::escapes`] and [`kind_in_view_of`]
//!   open `O_PATH` only: they say what a name is, never read it.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat, openat2};
use nix::sys::stat::{Mode, SFlag, fstat};

/// Why a path beneath a directory was not opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    #[error("`{path}` is not a plain relative path (absolute, `..`, `.` or empty component)")]
    NotPlain { path: String },
    #[error("`{path}` passes through a symbolic link or a mount point")]
    Link { path: String },
    #[error("`{path}` does not exist")]
    Missing { path: String },
    #[error("`{path}` is not a regular file")]
    NotRegular { path: String },
    #[error("cannot open `{path}`: {source}")]
    Io { path: String, source: io::Error },
}

/// What a name beneath the directory is (not following links).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Other,
}

/// True when `path` is relative and every component is a plain name.
pub fn plain_relative(path: &Path) -> bool {
    let text = path.as_os_str().as_encoded_bytes();
    // `Path::components` folds `a//b` and `a/./b` away: look at the bytes.
    !text.is_empty()
        && !text.starts_with(b"/")
        && text
            .split(|&b| b == b'/')
            .all(|c| !c.is_empty() && c != b"." && c != b"..")
        && path.components().all(|c| matches!(c, Component::Normal(_)))
}

/// A directory of ours, held by descriptor, beneath which paths are
/// resolved.
#[derive(Debug)]
pub struct Beneath {
    fd: OwnedFd,
    path: PathBuf,
}

/// How often a resolution is retried when the kernel says a rename raced it.
const RETRIES: usize = 8;

impl Beneath {
    /// Hold the directory `path` (chosen by sdist-box, not by the package;
    /// its last component must not be a link either).
    pub fn open(path: &Path) -> io::Result<Beneath> {
        let fd = nix::fcntl::open(
            path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(io::Error::from)?;
        Ok(Beneath {
            fd,
            path: path.to_path_buf(),
        })
    }

    /// The directory's path (for messages).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Open the regular file `rel` for reading.
    pub fn open_regular(&self, rel: &Path) -> Result<(File, std::fs::Metadata), Refusal> {
        let fd = self.resolve(
            rel,
            OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        )?;
        let file = File::from(fd);
        let meta = file.metadata().map_err(|source| Refusal::Io {
            path: shown(rel),
            source,
        })?;
        if !meta.is_file() {
            return Err(Refusal::NotRegular { path: shown(rel) });
        }
        Ok((file, meta))
    }

    /// The first `max` bytes of the regular file `rel`.
    pub fn read_regular(&self, rel: &Path, max: u64) -> Result<Vec<u8>, Refusal> {
        let (file, _) = self.open_regular(rel)?;
        let mut buf = Vec::new();
        file.take(max)
            .read_to_end(&mut buf)
            .map_err(|source| Refusal::Io {
                path: shown(rel),
                source,
            })?;
        Ok(buf)
    }

    /// What `rel` is, without reading it.
    pub fn lookup(&self, rel: &Path) -> Result<Kind, Refusal> {
        let fd = self.resolve(rel, OFlag::O_PATH | OFlag::O_CLOEXEC)?;
        kind_of(&fd).map_err(|e| Refusal::Io {
            path: shown(rel),
            source: e.into(),
        })
    }

    /// True when the kernel, following the links in this tree as a process
    /// inside it would, finds that `path` (any relative path, `..` included)
    /// leads out of it: through an absolute link, or `..` above the top.
    /// Only `O_PATH` is opened, and resolution stops at the first step out.
    /// `None` when the kernel cannot tell (no `openat2`).
    pub fn escapes(&self, path: &Path) -> Option<bool> {
        let how = OpenHow::new()
            .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_MAGICLINKS);
        for _ in 0..RETRIES {
            match openat2(self.fd.as_fd(), path, how) {
                Err(Errno::EAGAIN | Errno::EINTR) => continue,
                Err(Errno::ENOSYS) => return None,
                Err(Errno::EXDEV) => return Some(true),
                _ => return Some(false),
            }
        }
        None
    }

    fn resolve(&self, rel: &Path, flags: OFlag) -> Result<OwnedFd, Refusal> {
        if !plain_relative(rel) {
            return Err(Refusal::NotPlain { path: shown(rel) });
        }
        let how = OpenHow::new().flags(flags | OFlag::O_NOFOLLOW).resolve(
            ResolveFlag::RESOLVE_BENEATH
                | ResolveFlag::RESOLVE_NO_SYMLINKS
                | ResolveFlag::RESOLVE_NO_MAGICLINKS
                | ResolveFlag::RESOLVE_NO_XDEV,
        );
        let mut result = Err(Errno::EAGAIN);
        for _ in 0..RETRIES {
            result = openat2(self.fd.as_fd(), rel, how);
            if !matches!(result, Err(Errno::EAGAIN | Errno::EINTR)) {
                break;
            }
        }
        match result {
            Err(Errno::ENOSYS) => self.walk(rel, flags),
            other => other.map_err(|e| refusal(rel, e)),
        }
    }

    /// The same resolution without `openat2`: one plain component at a
    /// time, directories `O_DIRECTORY | O_NOFOLLOW`, the last `O_NOFOLLOW`.
    /// (Mount points are not detected here; nothing in our trees is one.)
    fn walk(&self, rel: &Path, flags: OFlag) -> Result<OwnedFd, Refusal> {
        let names: Vec<&std::ffi::OsStr> = rel.iter().collect();
        let mut dir: Option<OwnedFd> = None;
        for (i, name) in names.iter().enumerate() {
            let last = i + 1 == names.len();
            let oflag = if last {
                flags | OFlag::O_NOFOLLOW
            } else {
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC
            };
            let at = dir.as_ref().map_or(self.fd.as_fd(), |d| d.as_fd());
            let fd = openat(at, *name, oflag, Mode::empty()).map_err(|e| refusal(rel, e))?;
            if last {
                return Ok(fd);
            }
            dir = Some(fd);
        }
        Err(Refusal::NotPlain { path: shown(rel) })
    }
}

/// What the absolute `path` names in the view of process `pid` (a process
/// of the sandbox, which named it): resolved with that process's root as
/// `/` (`RESOLVE_IN_ROOT`: its absolute links and `..` stay in its view),
/// never in ours, `O_PATH` only. `None` when it does not exist there or
/// cannot be told (no `openat2`).
pub fn kind_in_view_of(pid: u32, path: &str) -> Option<Kind> {
    let root = nix::fcntl::open(
        format!("/proc/{pid}/root").as_str(),
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let fd = (0..RETRIES)
        .map(|_| openat2(root.as_fd(), path, how))
        .find(|r| !matches!(r, Err(Errno::EAGAIN | Errno::EINTR)))?
        .ok()?;
    kind_of(&fd).ok()
}

fn kind_of(fd: &OwnedFd) -> nix::Result<Kind> {
    let fmt = SFlag::from_bits_truncate(fstat(fd)?.st_mode) & SFlag::S_IFMT;
    Ok(if fmt == SFlag::S_IFREG {
        Kind::File
    } else if fmt == SFlag::S_IFDIR {
        Kind::Dir
    } else {
        Kind::Other
    })
}

fn shown(rel: &Path) -> String {
    crate::text::one_line(&rel.to_string_lossy(), 200)
}

fn refusal(rel: &Path, e: Errno) -> Refusal {
    match e {
        // ELOOP: a link where none may be; EXDEV: a mount crossed or the
        // tree left; ENOTDIR on the way: a link (O_NOFOLLOW|O_DIRECTORY)
        // or a file named as a directory.
        Errno::ELOOP | Errno::EXDEV => Refusal::Link { path: shown(rel) },
        Errno::ENOENT | Errno::ENOTDIR => Refusal::Missing { path: shown(rel) },
        other => Refusal::Io {
            path: shown(rel),
            source: other.into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn tree() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("pkg/sub")).unwrap();
        std::fs::write(d.path().join("pkg/sub/mod.py"), "x = 1\ny = 2\n").unwrap();
        std::fs::write(d.path().join("setup.py"), "setup()\n").unwrap();
        d
    }

    #[test]
    fn plain_paths_only() {
        for ok in ["setup.py", "pkg/sub/mod.py", "a b/c"] {
            assert!(plain_relative(Path::new(ok)), "{ok}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "pkg/../setup.py",
            "./setup.py",
            "pkg/./x",
            "pkg//x",
            "pkg/",
            "..",
        ] {
            assert!(!plain_relative(Path::new(bad)), "{bad:?}");
        }
    }

    #[test]
    fn reads_regular_files_beneath() {
        let d = tree();
        let b = Beneath::open(d.path()).unwrap();
        assert_eq!(
            b.read_regular(Path::new("pkg/sub/mod.py"), 1 << 20)
                .unwrap(),
            b"x = 1\ny = 2\n"
        );
        assert_eq!(b.read_regular(Path::new("setup.py"), 3).unwrap(), b"set");
        assert_eq!(b.lookup(Path::new("pkg/sub")).unwrap(), Kind::Dir);
        assert!(matches!(
            b.read_regular(Path::new("pkg/sub"), 10),
            Err(Refusal::NotRegular { .. })
        ));
        assert!(matches!(
            b.read_regular(Path::new("nope.py"), 10),
            Err(Refusal::Missing { .. })
        ));
    }

    #[test]
    fn no_link_at_any_depth_and_no_dotdot() {
        let d = tree();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "CANARY\n").unwrap();
        symlink(outside.path(), d.path().join("hostroot")).unwrap();
        symlink("../..", d.path().join("pkg/up")).unwrap();
        symlink("sub/mod.py", d.path().join("pkg/inner")).unwrap();
        let b = Beneath::open(d.path()).unwrap();
        for (rel, why) in [
            ("hostroot/secret", "an absolute link in the middle"),
            ("pkg/inner", "a link as the last component, even to inside"),
            ("pkg/up/setup.py", "a relative link in the middle"),
        ] {
            let r = b.read_regular(Path::new(rel), 1 << 20);
            assert!(matches!(r, Err(Refusal::Link { .. })), "{why}: {r:?}");
            // The one-component walk refuses the same.
            let w = b.walk(Path::new(rel), OFlag::O_RDONLY | OFlag::O_CLOEXEC);
            assert!(w.is_err(), "{why} (walk)");
        }
        let up = format!("../{}/secret", outside.path().display());
        assert!(matches!(
            b.read_regular(Path::new(&up), 1 << 20),
            Err(Refusal::NotPlain { .. })
        ));
        assert!(matches!(
            b.read_regular(&outside.path().join("secret"), 1 << 20),
            Err(Refusal::NotPlain { .. })
        ));
    }

    #[test]
    fn a_path_is_looked_up_in_the_view_of_the_process_that_named_it() {
        let d = tree();
        let me = std::process::id();
        let setup = d.path().join("setup.py").display().to_string();
        if kind_in_view_of(me, &setup).is_none() {
            eprintln!("skipped: no openat2 on this kernel");
            return;
        }
        assert_eq!(kind_in_view_of(me, &setup), Some(Kind::File));
        assert_eq!(kind_in_view_of(me, "/"), Some(Kind::Dir));
        assert_eq!(kind_in_view_of(me, "/no/such/path"), None);
        // `..` above its root stays at its root.
        let up = format!("/../../..{setup}");
        assert_eq!(kind_in_view_of(me, &up), Some(Kind::File));
    }

    #[test]
    fn a_fifo_neither_blocks_nor_counts_as_a_file() {
        let d = tree();
        nix::unistd::mkfifo(&d.path().join("pipe"), Mode::from_bits_truncate(0o644)).unwrap();
        let b = Beneath::open(d.path()).unwrap();
        assert!(matches!(
            b.read_regular(Path::new("pipe"), 10),
            Err(Refusal::NotRegular { .. })
        ));
        assert_eq!(b.lookup(Path::new("pipe")).unwrap(), Kind::Other);
    }

    #[test]
    fn escapes_follows_links_inside_and_stops_at_the_first_step_out() {
        let d = tree();
        symlink("/", d.path().join("hostroot")).unwrap();
        symlink("../..", d.path().join("pkg/up")).unwrap();
        symlink("sub", d.path().join("pkg/alias")).unwrap();
        let b = Beneath::open(d.path()).unwrap();
        if b.escapes(Path::new("setup.py")).is_none() {
            eprintln!("skipped: no openat2 on this kernel");
            return;
        }
        assert_eq!(b.escapes(Path::new("hostroot/etc/passwd")), Some(true));
        assert_eq!(b.escapes(Path::new("pkg/up/x")), Some(true));
        assert_eq!(b.escapes(Path::new("../x")), Some(true));
        assert_eq!(b.escapes(Path::new("pkg/alias/mod.py")), Some(false));
        assert_eq!(b.escapes(Path::new("pkg/../setup.py")), Some(false));
        assert_eq!(b.escapes(Path::new("pkg/missing/x.py")), Some(false));
    }
}
