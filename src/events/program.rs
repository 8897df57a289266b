//! The program an exec will run, as the kernel will find it — not the
//! `argv[0]` the package chose.
//!
//! `execve("/usr/bin/printenv", ["/usr/bin/gcc", "--version"])` runs
//! printenv, and `execve("/build/src/gcc", …)` runs whatever that file (or
//! the symlink the package planted there) names. While the caller waits in
//! its seccomp notification, the supervisor resolves the exec's path the way
//! the kernel will: from the caller's cwd (or execveat's directory fd),
//! beneath the caller's root (`openat2` with `RESOLVE_IN_ROOT` on
//! `/proc/<pid>/root`), following symlinks inside that root only. An
//! execveat on a descriptor (`AT_EMPTY_PATH`, and fexecve's
//! `/proc/self/fd/N`) names the file behind that descriptor.
//!
//! Invariants: nothing is resolved against the host's root, and no magic
//! link is followed but the caller's own descriptor; files are opened
//! `O_PATH`, except that an executable regular file's first bytes are read
//! (ELF or `#!`, to know what `/proc/<pid>/exe` will show after the exec);
//! a file with no path (a memfd, a deleted file) is shown as anonymous,
//! never under a name it does not have; everything here that is shown is
//! escaped ([`crate::text`]).
//!
//! What this cannot do: the kernel reads the path again when the call
//! continues, so a package can change it in between (another thread
//! rewriting the string, a symlink swapped). `--ask` checks after the exec
//! that the approved program is the one that runs ([`super::exec_check`]).

use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;

use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;
use serde::{Serialize, Serializer};

/// A file, by identity: the same (device, inode) is the same file whatever
/// path leads to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
}

impl FileId {
    fn of(meta: &std::fs::Metadata) -> FileId {
        FileId {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }
}

/// How the program was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// A file at this absolute path, as the sandbox sees it.
    Path(String),
    /// A file with no path: `memfd:NAME`, or a deleted file.
    Anonymous(String),
    /// Not resolved (the exec is expected to fail, or sdist-box cannot
    /// say what it would run): the path as named, and why.
    Unresolved { named: String, why: String },
}

/// The executable an exec call is to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    pub found: Found,
    /// The file the kernel is to load.
    pub file: Option<FileId>,
    /// What `/proc/<pid>/exe` will be once the exec succeeded: the file
    /// itself (ELF), its `#!` interpreter (script); `None` when sdist-box
    /// cannot tell (neither: binfmt_misc may run it, or it fails).
    pub image: Option<FileId>,
    /// A script's `#!` interpreter, as found (escaped for display).
    pub interpreter: Option<String>,
}

/// The longest path shown.
const MAX_SHOWN: usize = 300;
/// `#!` lines nest at most this deep (the kernel's limit is smaller).
const MAX_SCRIPT_DEPTH: u32 = 4;

impl Program {
    /// One line, escaped: what the kernel will run.
    pub fn shown(&self) -> String {
        let t = |s: &str| crate::text::one_line(s, MAX_SHOWN);
        match &self.found {
            Found::Path(p) => t(p),
            Found::Anonymous(name) => format!("{} (an anonymous file: no path)", t(name)),
            Found::Unresolved { named, why } => {
                format!("{} (not resolved: {})", t(named), t(why))
            }
        }
    }

    /// The path, when the program has one.
    pub fn path(&self) -> Option<&str> {
        match &self.found {
            Found::Path(p) => Some(p),
            _ => None,
        }
    }

    /// What `--ask`'s "always" remembers: this file at this path (or this
    /// anonymous file), so a file swapped in under the same name is asked
    /// about again. `None`: nothing to remember (not resolved).
    pub fn always_key(&self) -> Option<String> {
        let id = self.file?;
        match &self.found {
            Found::Path(p) => Some(format!("exec {p} {}:{}", id.dev, id.ino)),
            Found::Anonymous(_) => Some(format!("exec anonymous {}:{}", id.dev, id.ino)),
            Found::Unresolved { .. } => None,
        }
    }

    /// `argv[0]` names this program: its path, or (as a PATH search
    /// leaves it) its file name. A symlink's name is not the program's.
    pub fn agrees_with(&self, argv0: &str) -> bool {
        match &self.found {
            Found::Path(p) => {
                argv0 == p || (!argv0.contains('/') && p.rsplit('/').next() == Some(argv0))
            }
            _ => false,
        }
    }
}

impl Serialize for Program {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.shown())
    }
}

/// The call as the supervisor read it from the caller.
pub struct ExecCall<'a> {
    /// execveat's directory fd (`AT_FDCWD` for execve).
    pub dirfd: i32,
    /// The path argument, as bytes.
    pub path: &'a [u8],
    /// execveat's flags (0 for execve).
    pub flags: u64,
    /// The path was longer than sdist-box reads.
    pub truncated: bool,
}

/// Resolve the program of an exec by caller `pid` (host pid), in the
/// caller's view. Never fails: what cannot be resolved says why.
pub fn resolve(pid: u32, call: &ExecCall<'_>) -> Program {
    let named = String::from_utf8_lossy(call.path).into_owned();
    if call.truncated {
        return unresolved(&named, "the path is longer than sdist-box reads");
    }
    let opened = match open_in_caller(pid, call.dirfd, call.path, call.flags) {
        Ok(fd) => fd,
        Err(why) => return unresolved(&named, &why),
    };
    describe(pid, opened, &named, 0)
}

fn unresolved(named: &str, why: &str) -> Program {
    Program {
        found: Found::Unresolved {
            named: if named.is_empty() {
                "(empty path)".into()
            } else {
                named.to_string()
            },
            why: why.to_string(),
        },
        file: None,
        image: None,
        interpreter: None,
    }
}

/// The opened file, told apart: a path, an anonymous file, or a file the
/// exec will refuse; with the image that will run it.
fn describe(pid: u32, fd: OwnedFd, named: &str, depth: u32) -> Program {
    let Ok(st) = nix::sys::stat::fstat(&fd) else {
        return unresolved(named, "it cannot be examined");
    };
    let file = FileId {
        dev: st.st_dev,
        ino: st.st_ino,
    };
    let Some(link) = read_link(&format!("/proc/self/fd/{}", fd.as_raw_fd())) else {
        return unresolved(named, "it cannot be examined");
    };
    let link = String::from_utf8_lossy(&link).into_owned();
    let kind = st.st_mode & libc::S_IFMT;
    if kind != libc::S_IFREG {
        let what = match kind {
            libc::S_IFDIR => "a directory",
            libc::S_IFLNK => "a symbolic link (execveat with AT_SYMLINK_NOFOLLOW)",
            _ => "not a regular file",
        };
        return unresolved(&link, &format!("{what}: the exec fails"));
    }
    let found = if st.st_nlink == 0 {
        // No name in any directory: a memfd (`/memfd:NAME (deleted)`, the
        // name the package chose) or a file deleted since it was opened.
        let bare = link.strip_suffix(" (deleted)").unwrap_or(&link);
        match bare.strip_prefix("/memfd:") {
            Some(name) => Found::Anonymous(format!("memfd:{name}")),
            None => Found::Anonymous(format!("a deleted file, once {bare}")),
        }
    } else {
        Found::Path(link)
    };
    let mut program = Program {
        found,
        file: Some(file),
        image: None,
        interpreter: None,
    };
    if st.st_mode & 0o111 == 0 {
        return program;
    }
    let head = first_bytes(&fd);
    if head.starts_with(b"\x7fELF") {
        program.image = Some(file);
    } else if let Some(interp) = shebang(&head)
        && depth < MAX_SCRIPT_DEPTH
    {
        // The kernel runs the interpreter (resolved like the exec's own
        // path: from the caller's cwd, in its root) with the script.
        let run_by = match open_in_caller(pid, libc::AT_FDCWD, interp, 0) {
            Ok(fd) => describe(pid, fd, &String::from_utf8_lossy(interp), depth + 1),
            Err(why) => unresolved(&String::from_utf8_lossy(interp), &why),
        };
        program.image = run_by.image;
        program.interpreter = Some(run_by.shown());
    }
    program
}

/// The interpreter of a `#!` line (the kernel reads at most 256 bytes).
fn shebang(head: &[u8]) -> Option<&[u8]> {
    let line = head.strip_prefix(b"#!")?;
    let end = line.iter().position(|&c| c == b'\n').unwrap_or(line.len());
    let line = &line[..end];
    let start = line.iter().position(|&c| c != b' ' && c != b'\t')?;
    let rest = &line[start..];
    let end = rest
        .iter()
        .position(|&c| c == b' ' || c == b'\t')
        .unwrap_or(rest.len());
    Some(&rest[..end])
}

/// Open (`O_PATH`) the file the exec names, in the caller's view.
fn open_in_caller(pid: u32, dirfd: i32, path: &[u8], flags: u64) -> Result<OwnedFd, String> {
    let nofollow = flags & libc::AT_SYMLINK_NOFOLLOW as u64 != 0;
    if path.is_empty() {
        if flags & libc::AT_EMPTY_PATH as u64 == 0 || dirfd < 0 {
            return Err("an empty path: the exec fails".into());
        }
        return open_callers_fd(pid, dirfd);
    }
    let joined = if path.starts_with(b"/") {
        path.to_vec()
    } else {
        let base = if dirfd == libc::AT_FDCWD {
            read_link(&format!("/proc/{pid}/cwd"))
        } else {
            read_link(&format!("/proc/{pid}/fd/{dirfd}"))
        }
        .ok_or("its directory cannot be read")?;
        if !base.starts_with(b"/") || base.ends_with(b" (deleted)") {
            return Err("its directory has no path".into());
        }
        let mut j = base;
        if !j.ends_with(b"/") {
            j.push(b'/');
        }
        j.extend_from_slice(path);
        j
    };
    // fexecve's fallback names the caller's own descriptor by its /proc
    // link, which only the caller can follow by name ("self" is whoever
    // looks): take the descriptor itself.
    if let Some(fd) = own_fd_link(&joined) {
        return open_callers_fd(pid, fd);
    }
    let root = nix::fcntl::open(
        format!("/proc/{pid}/root").as_str(),
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| format!("the caller's root cannot be opened ({e})"))?;
    let mut oflags = OFlag::O_PATH | OFlag::O_CLOEXEC;
    if nofollow {
        oflags |= OFlag::O_NOFOLLOW;
    }
    let how = OpenHow::new()
        .flags(oflags)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let mut tries = 0;
    loop {
        match nix::fcntl::openat2(&root, std::ffi::OsStr::from_bytes(&joined), how) {
            Ok(fd) => return Ok(fd),
            // A rename or mount raced the lookup: the kernel asks to retry.
            Err(nix::errno::Errno::EAGAIN) if tries < 8 => tries += 1,
            Err(nix::errno::Errno::ENOENT) => {
                return Err("no such file in the sandbox: the exec fails".into());
            }
            Err(nix::errno::Errno::ELOOP | nix::errno::Errno::EXDEV) => {
                return Err(
                    "a /proc link or a symlink loop, which sdist-box does not follow".into(),
                );
            }
            Err(e) => return Err(e.desc().to_string()),
        }
    }
}

/// `/proc/self/fd/N`, `/proc/thread-self/fd/N`: the caller's descriptor N.
fn own_fd_link(path: &[u8]) -> Option<i32> {
    let s = std::str::from_utf8(path).ok()?;
    let rest = s
        .strip_prefix("/proc/self/fd/")
        .or_else(|| s.strip_prefix("/proc/thread-self/fd/"))?;
    rest.parse::<i32>().ok().filter(|n| *n >= 0)
}

/// The caller's descriptor `fd`, as an `O_PATH` descriptor of ours.
fn open_callers_fd(pid: u32, fd: i32) -> Result<OwnedFd, String> {
    nix::fcntl::open(
        format!("/proc/{pid}/fd/{fd}").as_str(),
        OFlag::O_PATH | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|_| format!("the caller has no descriptor {fd}"))
}

fn read_link(path: &str) -> Option<Vec<u8>> {
    std::fs::read_link(path)
        .ok()
        .map(|p| p.as_os_str().as_bytes().to_vec())
}

/// The identity of the image process `pid` runs now.
pub fn running_image(pid: u32) -> Option<FileId> {
    std::fs::metadata(format!("/proc/{pid}/exe"))
        .ok()
        .map(|m| FileId::of(&m))
}

/// What process `pid` runs now, for a report: its path as the sandbox
/// sees it, escaped.
pub fn running_image_shown(pid: u32) -> String {
    match read_link(&format!("/proc/{pid}/exe")) {
        Some(p) => crate::text::one_line(&String::from_utf8_lossy(&p), MAX_SHOWN),
        None => "(unknown: the process is gone)".into(),
    }
}

/// The first bytes of the (regular) file behind `fd`, read through a
/// descriptor of its own (the same file: no lookup by name).
fn first_bytes(fd: &OwnedFd) -> Vec<u8> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut buf = Vec::new();
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(format!("/proc/self/fd/{}", fd.as_fd().as_raw_fd()));
    if let Ok(f) = opened {
        let _ = f.take(256).read_to_end(&mut buf);
    }
    buf
}

/// argv as one line (unescaped): arguments with spaces quoted.
pub fn join_argv(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if a.contains(' ') || a.is_empty() {
                format!("{a:?}")
            } else {
                a.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// An exec for people, escaped and at most `max` characters: the program
/// first, then its arguments; when `argv[0]` does not name the program, the
/// whole argv, labelled as such. `named` stands in for a program that was
/// not resolved.
pub fn exec_line(named: &str, program: Option<&Program>, argv: &[String], max: usize) -> String {
    let (shown, agrees) = match program {
        Some(p) => (p.shown(), argv.first().is_some_and(|a| p.agrees_with(a))),
        None => (
            crate::text::one_line(named, MAX_SHOWN),
            argv.first().is_some_and(|a| a == named),
        ),
    };
    let line = match argv.split_first() {
        None => shown,
        Some((_, [])) if agrees => shown,
        Some((_, rest)) if agrees => format!("{shown} {}", join_argv(rest)),
        Some(_) => format!("{shown} (argv: {})", join_argv(argv)),
    };
    crate::text::one_line(&line, max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(path: &str) -> Program {
        Program {
            found: Found::Path(path.into()),
            file: Some(FileId { dev: 1, ino: 2 }),
            image: None,
            interpreter: None,
        }
    }

    fn argv(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_program_comes_first_and_a_foreign_argv0_is_labelled() {
        let p = at("/usr/bin/printenv");
        assert_eq!(
            exec_line(
                "/usr/bin/printenv",
                Some(&p),
                &argv(&["/usr/bin/gcc", "--version"]),
                200
            ),
            "/usr/bin/printenv (argv: /usr/bin/gcc --version)"
        );
        assert_eq!(
            exec_line("printenv", Some(&p), &argv(&["printenv", "HOME"]), 200),
            "/usr/bin/printenv HOME"
        );
        // A symlink's name is not the program's.
        assert_eq!(
            exec_line("/build/src/gcc", Some(&p), &argv(&["/build/src/gcc"]), 200),
            "/usr/bin/printenv (argv: /build/src/gcc)"
        );
        // Not resolved: the path as named, never argv[0] alone.
        assert_eq!(
            exec_line("/x", None, &argv(&["/usr/bin/gcc"]), 200),
            "/x (argv: /usr/bin/gcc)"
        );
    }

    #[test]
    fn what_is_shown_is_escaped() {
        let p = at("/tmp/\x1b[2Jevil");
        assert_eq!(p.shown(), "/tmp/\\u{1b}[2Jevil");
        let memfd = Program {
            found: Found::Anonymous("memfd:/usr/bin/gcc\u{202e}".into()),
            ..at("")
        };
        assert_eq!(
            memfd.shown(),
            "memfd:/usr/bin/gcc\\u{202e} (an anonymous file: no path)"
        );
        assert!(
            exec_line("x", Some(&p), &argv(&["a\rb"]), 200)
                .chars()
                .all(|c| !c.is_control())
        );
    }

    #[test]
    fn always_is_for_one_file_at_one_path_and_never_for_the_unresolved() {
        let a = at("/usr/bin/printenv");
        let mut b = a.clone();
        b.file = Some(FileId { dev: 1, ino: 3 });
        assert_ne!(a.always_key(), b.always_key());
        assert_ne!(a.always_key(), at("/usr/bin/id").always_key());
        assert_eq!(unresolved("gcc", "no such file").always_key(), None);
    }

    #[test]
    fn shebang_lines_name_their_interpreter() {
        assert_eq!(shebang(b"#!/bin/sh\necho"), Some(&b"/bin/sh"[..]));
        assert_eq!(
            shebang(b"#! /usr/bin/env python3 -u\n"),
            Some(&b"/usr/bin/env"[..])
        );
        assert_eq!(shebang(b"#!/bin/bash"), Some(&b"/bin/bash"[..]));
        assert_eq!(shebang(b"\x7fELF"), None);
        assert_eq!(shebang(b"#!   \n"), None);
    }
}
