//! What a finished cache entry looked like, so a later build can tell
//! cheaply that it is still that entry.
//!
//! A build env is made once and used by every later build that needs it;
//! a module deleted by hand, an emptied `bin/python`, a directory made
//! mode 000 or a file rewritten in place would otherwise fail every one of
//! those builds as "the package's build failed". The manifest is a digest
//! of every entry's relative path, type, mode, size, inode, change time and
//! link target (and the top directory's mode), taken when the entry was
//! completed. The change time
//! (`ctime`) cannot be set back by any file operation, so any write,
//! truncation, `chmod`, rename or replacement changes the digest, without
//! reading a byte of file content: a walk of about 1,300 entries for a
//! setuptools env, a few milliseconds.
//!
//! Nothing is followed: links are recorded by their target text.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use sha2::{Digest, Sha256};

/// The digest of the tree at `dir`, leaving out the top-level names in
/// `skip` (the marker that records the digest, its temporary file).
pub fn digest(dir: &Path, skip: &[&str]) -> io::Result<String> {
    let mut h = Sha256::new();
    // The top directory's own mode (not its times: writing the marker
    // inside changes those).
    h.update(std::fs::metadata(dir)?.mode().to_le_bytes());
    walk(dir, Path::new(""), skip, &mut h)?;
    Ok(hex::encode(h.finalize()))
}

fn walk(dir: &Path, rel: &Path, skip: &[&str], h: &mut Sha256) -> io::Result<()> {
    let mut names: Vec<_> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<_>>()?;
    names.sort();
    for name in names {
        if rel.as_os_str().is_empty() && skip.iter().any(|s| name == **s) {
            continue;
        }
        let path = dir.join(&name);
        let rel = rel.join(&name);
        let meta = std::fs::symlink_metadata(&path)?;
        h.update(rel.as_os_str().as_encoded_bytes());
        h.update([0]);
        for n in [
            u64::from(meta.mode()),
            meta.size(),
            meta.ino(),
            meta.ctime() as u64,
            meta.ctime_nsec() as u64,
        ] {
            h.update(n.to_le_bytes());
        }
        let kind = meta.file_type();
        if kind.is_symlink() {
            h.update(std::fs::read_link(&path)?.as_os_str().as_encoded_bytes());
            h.update([0]);
        } else if kind.is_dir() {
            walk(&path, &rel, skip, h)?;
            h.update(b"/end\0");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn tree() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("lib/site")).unwrap();
        std::fs::write(t.path().join("lib/site/mod.py"), "x = 1\n").unwrap();
        std::os::unix::fs::symlink("/usr/bin/python3", t.path().join("python")).unwrap();
        std::fs::write(t.path().join("MARKER"), "m").unwrap();
        t
    }

    #[test]
    fn the_digest_is_stable_and_ignores_the_skipped_names() {
        let t = tree();
        let a = digest(t.path(), &["MARKER"]).unwrap();
        std::fs::write(t.path().join("MARKER"), "another").unwrap();
        assert_eq!(a, digest(t.path(), &["MARKER"]).unwrap());
    }

    #[test]
    fn every_kind_of_damage_changes_the_digest() {
        type Damage = fn(&Path);
        let damages: &[(&str, Damage)] = &[
            ("delete a module", |p| {
                std::fs::remove_file(p.join("lib/site/mod.py")).unwrap()
            }),
            ("rewrite it in place, same size", |p| {
                std::fs::write(p.join("lib/site/mod.py"), "y = 2\n").unwrap()
            }),
            ("chmod a directory", |p| {
                std::fs::set_permissions(p.join("lib"), std::fs::Permissions::from_mode(0o000))
                    .unwrap()
            }),
            ("retarget the link", |p| {
                std::fs::remove_file(p.join("python")).unwrap();
                std::os::unix::fs::symlink("/bin/sh", p.join("python")).unwrap();
            }),
            ("add a file", |p| {
                std::fs::write(p.join("lib/extra.pth"), "import os\n").unwrap()
            }),
        ];
        for (what, damage) in damages {
            let t = tree();
            let before = digest(t.path(), &["MARKER"]).unwrap();
            // ctime has nanoseconds here, but make sure a tick passes.
            std::thread::sleep(std::time::Duration::from_millis(5));
            damage(t.path());
            let after = digest(t.path(), &["MARKER"]);
            std::fs::set_permissions(t.path().join("lib"), std::fs::Permissions::from_mode(0o755))
                .ok();
            // An unreadable directory (as a user other than root) is an
            // error, which the caller treats as damage too.
            if let Ok(after) = after {
                assert_ne!(before, after, "{what}");
            }
        }
    }
}
