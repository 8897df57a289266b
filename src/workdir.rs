//! Work directories (`$TMPDIR/sdist-box-XXXXXX`): where one build extracts
//! its sdist and its sandboxes write. Up to the unpack limit each, so none
//! may outlive the process that made it.
//!
//! Ownership is a lock, never an age: each directory holds `.owner`, on
//! which its maker keeps a POSIX record lock (`fcntl(F_SETLK)`) for the
//! directory's whole life; the kernel drops it when the process dies,
//! however it dies. A record lock, not `flock`: an `flock` belongs to the
//! open file description, which a sandbox's clone child shares until it
//! execs, so a killed sdist-box's lock could outlive it for a moment; a
//! record lock belongs to the process alone and is never inherited. Any
//! later sdist-box that finds a `sdist-box-*` directory whose `.owner`
//! nobody locks (`F_GETLK`) knows the maker is gone and removes it; this
//! process's own directories are known from the register below and never
//! tested (closing any descriptor of a file drops the process's record
//! locks on it). The lock file is made
//! under another name and renamed into place only once locked, so a sweep
//! can never take a directory that is still being set up; a directory with
//! no `.owner` at all is left alone.
//!
//! A live directory is also registered here, so that a signal handler can
//! remove every one of them before the process exits ([`remove_live`]).

use std::fs;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use std::os::fd::AsFd;

use nix::fcntl::{FcntlArg, fcntl};

/// The prefix of every work directory's name.
pub const PREFIX: &str = "sdist-box-";
const OWNER: &str = ".owner";

static LIVE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
/// Set once [`abandon_all`] runs: the process is about to exit.
static ABANDONING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// A work directory this process owns; removed when dropped.
#[derive(Debug)]
pub struct WorkDir {
    path: PathBuf,
    /// Holds the record lock; never closed before the directory is gone.
    _owner: fs::File,
}

/// A whole-file record lock of `kind` (`F_WRLCK`, `F_UNLCK`).
fn whole_file(kind: libc::c_int) -> libc::flock {
    libc::flock {
        l_type: kind as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    }
}

impl WorkDir {
    /// Sweep `parent` (default: the temporary directory) of directories
    /// left by dead processes, then make a fresh one there, named
    /// `<PREFIX><kind>XXXXXX` (`kind` may be empty).
    pub fn create(parent: Option<&Path>, kind: &str) -> std::io::Result<WorkDir> {
        let parent = parent.map_or_else(std::env::temp_dir, Path::to_path_buf);
        sweep(&parent);
        let dir = tempfile::Builder::new()
            .prefix(&format!("{PREFIX}{kind}"))
            .tempdir_in(&parent)?;
        let making = dir.path().join(".owner.new");
        let file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&making)?;
        fcntl(file.as_fd(), FcntlArg::F_SETLK(&whole_file(libc::F_WRLCK)))?;
        let owner = file;
        // Registered before `.owner` appears: another thread's sweep must
        // never test it (this process's own lock does not conflict).
        if let Ok(mut live) = LIVE.lock() {
            live.push(dir.path().to_path_buf());
        }
        if let Err(e) = fs::rename(&making, dir.path().join(OWNER)) {
            unregister(dir.path());
            return Err(e);
        }
        let path = dir.keep();
        Ok(WorkDir {
            path,
            _owner: owner,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Keep the directory (`--keep-work`): no longer ours to remove, and
    /// no longer any later run's to sweep (its `.owner` goes).
    pub fn keep(self) -> PathBuf {
        let _ = fs::remove_file(self.path.join(OWNER));
        unregister(&self.path);
        let path = self.path.clone();
        std::mem::forget(self);
        path
    }
}

fn unregister(path: &Path) {
    if let Ok(mut live) = LIVE.lock() {
        live.retain(|p| p != path);
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        crate::files::force_remove(&self.path);
        unregister(&self.path);
    }
}

/// Remove every work directory this process still owns (for a signal
/// handler, right before the process exits). Sandboxes still running in
/// them die with the process; what they write meanwhile goes to the next
/// run's sweep, since the owner locks go with the process too.
pub fn remove_live() {
    let live = match LIVE.lock() {
        Ok(live) => live.clone(),
        Err(e) => e.into_inner().clone(),
    };
    for dir in live {
        crate::files::force_remove(&dir);
    }
}

/// For a process about to exit on a signal: kill every child process of
/// this one (the sandboxes' inits, each taking its whole pid namespace
/// with it, and trusted-stage helpers such as pip), wait a moment for them
/// to be gone so that nothing writes into a work directory any more, then
/// remove every live work directory.
pub fn abandon_all() {
    use nix::sys::signal::{Signal, kill};
    ABANDONING.store(true, std::sync::atomic::Ordering::SeqCst);
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    let children = children_of_self();
    for &pid in &children {
        let _ = kill(pid, Signal::SIGKILL);
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    for pid in children {
        // An init exits only after every process of its namespace has.
        while let Ok(WaitStatus::StillAlive) = waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            if std::time::Instant::now() > deadline {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
    remove_live();
}

/// Called where a build goes on after something it waited for ended (a
/// sandbox, a helper): once [`abandon_all`] has begun, that end was our own
/// doing, not the package's, so this thread stops here for good (the
/// process exits from the signal handler) instead of reporting a failure.
pub fn halt_if_abandoned() {
    while ABANDONING.load(std::sync::atomic::Ordering::SeqCst) {
        std::thread::park();
    }
}

/// The children of every thread of this process (`/proc/self/task/*/children`).
fn children_of_self() -> Vec<nix::unistd::Pid> {
    let mut out = Vec::new();
    for task in fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
    {
        let text = fs::read_to_string(task.path().join("children")).unwrap_or_default();
        out.extend(
            text.split_whitespace()
                .filter_map(|p| p.parse::<i32>().ok())
                .map(nix::unistd::Pid::from_raw),
        );
    }
    out
}

/// Remove the work directories in `parent` whose owner is dead; returns
/// how many. Directories of live processes, and anything that is not a
/// plain `sdist-box-*` directory with an `.owner` file, are left alone.
pub fn sweep(parent: &Path) -> usize {
    let Ok(entries) = fs::read_dir(parent) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let is_ours = name.to_str().is_some_and(|n| n.starts_with(PREFIX))
            && entry.file_type().is_ok_and(|t| t.is_dir());
        if !is_ours {
            continue;
        }
        let dir = entry.path();
        if LIVE.lock().is_ok_and(|live| live.contains(&dir)) {
            continue;
        }
        let Ok(file) = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(dir.join(OWNER))
        else {
            continue;
        };
        // Not its owner's uid: as root the tree (lock file included) was
        // handed to the sandbox's uid. Removal never follows a link.
        if !file.metadata().is_ok_and(|m| m.is_file()) {
            continue;
        }
        let mut probe = whole_file(libc::F_WRLCK);
        let unowned = fcntl(file.as_fd(), FcntlArg::F_GETLK(&mut probe)).is_ok()
            && i32::from(probe.l_type) == libc::F_UNLCK;
        drop(file);
        if unowned {
            tracing::info!(
                "removing `{}`, left by a process that is gone",
                crate::text::path(&dir)
            );
            crate::files::force_remove(&dir);
            removed += 1;
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_directory_is_kept_and_a_dead_ones_is_swept() {
        let parent = tempfile::tempdir().unwrap();
        let live = WorkDir::create(Some(parent.path()), "").unwrap();
        std::fs::write(live.path().join("x"), "x").unwrap();
        // A process that is gone: its lock file exists, nobody holds it.
        let dead = parent.path().join(format!("{PREFIX}dead"));
        std::fs::create_dir_all(dead.join("sdist/pkg")).unwrap();
        std::fs::write(dead.join(OWNER), "").unwrap();
        // Being set up (no .owner yet), and not ours by name.
        let young = parent.path().join(format!("{PREFIX}young"));
        std::fs::create_dir_all(&young).unwrap();
        std::fs::create_dir_all(parent.path().join("other-dir")).unwrap();
        assert_eq!(sweep(parent.path()), 1);
        assert!(!dead.exists());
        assert!(live.path().join("x").exists() && young.exists());
        assert!(parent.path().join("other-dir").exists());
        let path = live.path().to_path_buf();
        drop(live);
        assert!(!path.exists());
        // A kept one is left to the user, by this process and later sweeps.
        let kept = WorkDir::create(Some(parent.path()), "kept-")
            .unwrap()
            .keep();
        assert_eq!(sweep(parent.path()), 0);
        assert!(kept.is_dir());
    }

    #[test]
    fn a_directory_owned_by_a_killed_process_is_swept_by_the_next() {
        let parent = tempfile::tempdir().unwrap();
        // A child process makes one and is killed holding it.
        let exe = std::env::current_exe().unwrap();
        let mut child = std::process::Command::new(exe)
            .args([
                "--exact",
                "workdir::tests::hold_one_forever",
                "--ignored",
                "--nocapture",
            ])
            .env("SDIST_BOX_TEST_WORK_PARENT", parent.path())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let made = loop {
            let found: Vec<_> = std::fs::read_dir(parent.path())
                .unwrap()
                .flatten()
                .filter(|e| e.path().join(OWNER).exists())
                .collect();
            if let Some(e) = found.first() {
                break e.path();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the child made nothing"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        assert_eq!(sweep(parent.path()), 0, "swept while its owner lives");
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(sweep(parent.path()), 1);
        assert!(!made.exists());
    }

    /// Run by the test above in a child process.
    #[test]
    #[ignore]
    fn hold_one_forever() {
        let Some(parent) = std::env::var_os("SDIST_BOX_TEST_WORK_PARENT") else {
            return;
        };
        let _dir = WorkDir::create(Some(Path::new(&parent)), "").unwrap();
        std::thread::sleep(std::time::Duration::from_secs(600));
    }
}
