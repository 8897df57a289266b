//! Small file helpers: atomic writes, reading what a sandbox may have
//! written (no links, regular files only), handing a tree to the sandbox's
//! uid and removing a tree it made hard to remove.
//!
//! Invariant: no helper here follows a link planted in a tree the sandbox
//! could write.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use anyhow::Context;

use crate::policy;

/// When we run as root, the sandbox runs as an unprivileged host uid: give
/// it the tree it may write, except `keep` (which stays root's). Links are
/// not followed. Runs before any package code, on trees sdist-box made.
pub fn hand_over(dir: &Path, keep: Option<&Path>) -> anyhow::Result<()> {
    if !nix::unistd::geteuid().is_root() {
        return Ok(());
    }
    let id = Some(policy::ROOT_MAPS_TO);
    fn walk(p: &Path, id: Option<u32>, keep: Option<&Path>) -> std::io::Result<()> {
        if keep == Some(p) {
            return Ok(());
        }
        std::os::unix::fs::lchown(p, id, id)?;
        let meta = fs::symlink_metadata(p)?;
        if meta.is_dir() {
            for entry in fs::read_dir(p)? {
                walk(&entry?.path(), id, keep)?;
            }
        }
        Ok(())
    }
    walk(dir, id, keep)
        .with_context(|| format!("cannot hand `{}` to the sandbox's uid", dir.display()))
}

/// Remove a tree the sandbox may have made hard to remove (read-only
/// directories). Links are never followed.
pub fn force_remove(dir: &Path) {
    if fs::remove_dir_all(dir).is_err() {
        open_up_tree(dir);
        if let Err(e) = fs::remove_dir_all(dir) {
            tracing::warn!(
                "could not remove the work directory {}: {e}",
                crate::text::path(dir)
            );
        }
    }
}

/// Make every directory of the tree at `dir` 0700 (so it can be emptied).
/// The walk goes by descriptor, each directory opened `O_NOFOLLOW`
/// relative to its parent: a directory swapped for a link (by a process
/// the degraded mode could not kill) is skipped, never chmod'ed through.
fn open_up_tree(dir: &Path) {
    use nix::fcntl::{OFlag, openat};
    use nix::sys::stat::{Mode, fchmod};
    use std::os::fd::AsFd;
    const DIR_FLAGS: OFlag = OFlag::O_RDONLY
        .union(OFlag::O_DIRECTORY)
        .union(OFlag::O_NOFOLLOW)
        .union(OFlag::O_CLOEXEC);
    fn open_up(fd: std::os::fd::OwnedFd, depth: usize) {
        let _ = fchmod(fd.as_fd(), Mode::from_bits_truncate(0o700));
        // One descriptor per level is open: stay well under the usual
        // 1024 (deeper read-only directories are left, with a warning).
        if depth > 256 {
            return;
        }
        let Ok(mut listing) = nix::dir::Dir::from_fd(fd) else {
            return;
        };
        let names: Vec<std::ffi::CString> = listing
            .iter()
            .flatten()
            // No d_type on some file systems: try those too (O_DIRECTORY
            // refuses what is not one).
            .filter(|e| matches!(e.file_type(), Some(nix::dir::Type::Directory) | None))
            .map(|e| e.file_name().to_owned())
            .filter(|n| n.as_bytes() != b"." && n.as_bytes() != b"..")
            .collect();
        for name in names {
            if let Ok(child) = openat(listing.as_fd(), name.as_c_str(), DIR_FLAGS, Mode::empty()) {
                open_up(child, depth + 1);
            }
        }
    }
    if let Ok(fd) = nix::fcntl::open(dir, DIR_FLAGS, Mode::empty()) {
        open_up(fd, 0);
    }
}

/// Open a file the sandbox could have written: no links, regular file only.
pub fn open_untrusted(path: &Path) -> std::io::Result<(fs::File, fs::Metadata)> {
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    Ok((file, meta))
}

/// Write `text` to `path` atomically (temporary file + rename).
pub fn write_atomic(path: &Path, text: &str) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".sdist-box-")
        .tempfile_in(dir)
        .with_context(|| format!("cannot write into `{}`", dir.display()))?;
    let cannot = || format!("cannot write `{}`", path.display());
    tmp.write_all(text.as_bytes()).with_context(cannot)?;
    tmp.as_file().sync_all().with_context(cannot)?;
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o644))?;
    tmp.persist(path).with_context(cannot)?;
    Ok(())
}

/// [`write_atomic`], then fsync the directory: the new name survives a
/// crash too.
pub fn write_durable(path: &Path, text: &str) -> anyhow::Result<()> {
    write_atomic(path, text)?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    sync_dir(dir).with_context(|| format!("cannot sync the directory `{}`", dir.display()))
}

/// fsync a directory (its entries: names created, renamed, removed).
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn opening_up_a_tree_never_chmods_through_a_link() {
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("victim");
        fs::create_dir(&victim).unwrap();
        fs::set_permissions(&victim, fs::Permissions::from_mode(0o751)).unwrap();
        let tree = tempfile::tempdir().unwrap();
        let locked = tree.path().join("a/locked");
        fs::create_dir_all(locked.join("deeper")).unwrap();
        std::os::unix::fs::symlink(&victim, locked.join("link")).unwrap();
        std::os::unix::fs::symlink(&victim, tree.path().join("top-link")).unwrap();
        fs::set_permissions(locked.join("deeper"), fs::Permissions::from_mode(0o500)).unwrap();
        fs::set_permissions(&locked, fs::Permissions::from_mode(0o500)).unwrap();
        open_up_tree(tree.path());
        let mode = |p: &Path| fs::symlink_metadata(p).unwrap().mode() & 0o777;
        assert_eq!(mode(&locked), 0o700);
        assert_eq!(mode(&locked.join("deeper")), 0o700);
        assert_eq!(mode(&victim), 0o751, "a link was followed");
        force_remove(tree.path());
        assert!(!tree.path().exists());
        assert!(victim.is_dir());
    }
}
