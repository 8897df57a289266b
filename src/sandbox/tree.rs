//! The build tree on a size-limited file system: a tmpfs of its own,
//! mounted on the build's work directory for the length of the build, in
//! a mount namespace of the building thread's own.
//!
//! The host side reads and writes the tree by its usual paths; each sandbox
//! binds it in like any host directory. Filling it gives ENOSPC inside and
//! costs the host no disk: its pages are memory, charged to the cgroup of
//! the sandbox that wrote them. It persists across the hook calls of one
//! build and is unmounted when the build ends.
//!
//! Root only: an unprivileged user cannot mount on the host. (A detached
//! mount held by descriptor, made in a helper user namespace, works for the
//! sandbox's binds — measured on Linux 6.18 — but the host side then
//! reaches the tree only through `/proc/self/fd/N`, where `realpath`
//! leaves the tree; sdist-box's path checks would have to work on
//! descriptors first.) Unprivileged builds keep the tree on the host's
//! disk, bounded per file by `file-size`.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use super::sys;

#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    #[error("failed to mount the build tree's file system (tmpfs of {size} bytes) on `{}`: {source}", .path.display())]
    Mount {
        size: u64,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A size-limited tmpfs on the work directory; unmounted when dropped.
#[derive(Debug)]
pub struct BuildTree {
    at: PathBuf,
    _fd: OwnedFd,
    pub size_bytes: u64,
}

impl BuildTree {
    /// A fresh, empty tmpfs of at most `size_bytes` mounted on `at` (an
    /// empty directory sdist-box made).
    pub fn mount(size_bytes: u64, at: &Path) -> Result<BuildTree, TreeError> {
        let err = |source| TreeError::Mount {
            size: size_bytes,
            path: at.to_path_buf(),
            source,
        };
        let cfg = sys::TmpfsConfig {
            size: std::ffi::CString::new(size_bytes.to_string()).expect("digits"),
            mode: c"0700".to_owned(),
        };
        own_mount_namespace().map_err(err)?;
        let fd = sys::tmpfs_detached(&cfg).map_err(err)?;
        sys::move_mount_to(fd.as_fd(), at).map_err(err)?;
        Ok(BuildTree {
            at: at.to_path_buf(),
            _fd: fd,
            size_bytes,
        })
    }

    /// The tree for one build at `at`, where one can be had: as root, with
    /// a size, for a sandbox with its own namespaces (the degraded mode
    /// has no bind of it to make).
    pub fn for_build(
        size_bytes: Option<u64>,
        namespaces: bool,
        at: &Path,
    ) -> Result<Option<BuildTree>, TreeError> {
        match size_bytes {
            Some(size) if size > 0 && namespaces && nix::unistd::geteuid().is_root() => {
                BuildTree::mount(size, at).map(Some)
            }
            _ => Ok(None),
        }
    }
}

/// The tree is mounted in a mount namespace of this thread's own (once
/// per thread: `unshare` of the mount namespace is per thread), a slave of
/// the host's: the host's later mounts still reach it, the tree never
/// reaches the host, and a killed sdist-box leaves no mount behind. The
/// sandboxes this thread starts copy it, tree included.
fn own_mount_namespace() -> std::io::Result<()> {
    thread_local! {
        static DONE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    if DONE.with(|d| d.get()) {
        return Ok(());
    }
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)?;
    nix::mount::mount(
        None::<&str>,
        "/",
        None::<&str>,
        nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_SLAVE,
        None::<&str>,
    )?;
    DONE.with(|d| d.set(true));
    Ok(())
}

impl Drop for BuildTree {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.at, nix::mount::MntFlags::MNT_DETACH);
    }
}
