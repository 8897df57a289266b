//! The Python side of sdist-box, embedded in the binary.
//!
//! The files in `shim/` are stdlib-only and run inside the sandbox. They are
//! written afresh into each build's work directory and mounted read-only, so
//! the sandbox never depends on where sdist-box was installed.

use std::io;
use std::path::Path;

/// (file name, contents) of every shim file.
pub const FILES: &[(&str, &str)] = &[
    (
        "sdist_box_hooks.py",
        include_str!("../shim/sdist_box_hooks.py"),
    ),
    ("sitecustomize.py", include_str!("../shim/sitecustomize.py")),
];

/// The hook runner's file name.
pub const HOOK_RUNNER: &str = "sdist_box_hooks.py";

/// Write the shim files into `dir` (created if needed), readable by all.
pub fn install(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs_err::create_dir_all(dir)?;
    for (name, text) in FILES {
        let path = dir.join(name);
        fs_err::write(&path, text)?;
        fs_err::set_permissions(&path, std::fs::Permissions::from_mode(0o644))?;
    }
    fs_err::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
    Ok(())
}

/// The shim, written once per interpreter into the cache and byte-compiled
/// there by that interpreter, outside the sandbox. Inside, the shim is
/// mounted read-only, so Python could never cache the compiled form itself:
/// every Python process of every build would compile `sitecustomize.py`
/// anew (10–35 ms each). Made atomically (temporary directory, then
/// rename); reused by later builds.
pub fn ensure_compiled(
    cache_dir: &Path,
    python: &Path,
    python_version: &str,
    inside: &str,
) -> io::Result<std::path::PathBuf> {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for (name, text) in FILES {
        h.update(name.as_bytes());
        h.update([0]);
        h.update(text.as_bytes());
        h.update([0]);
    }
    h.update(python.as_os_str().as_encoded_bytes());
    h.update(python_version.as_bytes());
    h.update(inside.as_bytes());
    let key = hex::encode(h.finalize())[..20].to_string();
    let root = cache_dir.join("shim");
    let dir = root.join(&key);
    match compiled_state(&dir, &key) {
        Compiled::Intact => return Ok(dir),
        Compiled::Absent => {}
        Compiled::Damaged => {
            tracing::warn!(
                "the compiled shim in `{}` was changed since it was made; making it anew",
                crate::text::path(&dir)
            );
            set_aside(&root, &dir);
        }
    }
    fs_err::create_dir_all(&root)?;
    let tmp = tempfile::Builder::new()
        .prefix(".tmp-shim-")
        .tempdir_in(&root)?;
    install(tmp.path())?;
    // -d: the compiled code names its files by their path in the sandbox.
    let status = std::process::Command::new(python)
        .args(["-I", "-S", "-m", "compileall", "-q", "-d", inside])
        .arg(tmp.path())
        .stdout(std::process::Stdio::null())
        .status()?;
    if !status.success() {
        return Err(io::Error::other(format!(
            "`{} -m compileall` failed on the shim",
            python.display()
        )));
    }
    open_up(tmp.path())?;
    let stamp = format!("{key}\n{}\n", content_digest(tmp.path())?);
    fs_err::write(tmp.path().join(COMPLETE), stamp)?;
    let tmp_path = tmp.keep();
    if let Err(e) = std::fs::rename(&tmp_path, &dir) {
        let _ = std::fs::remove_dir_all(&tmp_path);
        // Another build (another `build-all` job, another process) made it
        // first: theirs is as good as ours. Any other failure is an error,
        // not a directory that does not exist.
        if !dir.join(COMPLETE).exists() {
            return Err(io::Error::new(
                e.kind(),
                format!(
                    "cannot move the shim into place at `{}`: {e}",
                    dir.display()
                ),
            ));
        }
    }
    Ok(dir)
}

/// Written last into a compiled shim directory: its key and the digest of
/// every file in it, so a file changed later (a garbled `.pyc` would make
/// every Python process of every build die at start-up, which reads as the
/// package's failure) is noticed and the directory made anew.
const COMPLETE: &str = ".complete";

enum Compiled {
    Intact,
    Absent,
    Damaged,
}

fn compiled_state(dir: &Path, key: &str) -> Compiled {
    let stamp = match std::fs::read_to_string(dir.join(COMPLETE)) {
        Ok(stamp) => stamp,
        Err(e) if e.kind() == io::ErrorKind::NotFound && !dir.exists() => return Compiled::Absent,
        Err(_) => return Compiled::Damaged,
    };
    let mut lines = stamp.lines();
    let intact = lines.next() == Some(key)
        && content_digest(dir).is_ok_and(|d| lines.next() == Some(d.as_str()));
    if intact {
        Compiled::Intact
    } else {
        Compiled::Damaged
    }
}

/// sha256 over the names and contents of the regular files beneath `dir`
/// (a few small files), leaving out [`COMPLETE`]; anything else than a
/// regular file or a directory is an error.
fn content_digest(dir: &Path) -> io::Result<String> {
    use sha2::{Digest, Sha256};
    fn walk(dir: &Path, rel: &str, h: &mut Sha256) -> io::Result<()> {
        let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<io::Result<_>>()?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name().to_string_lossy().into_owned();
            if rel.is_empty() && name == COMPLETE {
                continue;
            }
            let rel = format!("{rel}/{name}");
            let kind = e.file_type()?;
            if kind.is_dir() {
                walk(&e.path(), &rel, h)?;
            } else if kind.is_file() {
                h.update(rel.as_bytes());
                h.update([0]);
                h.update(std::fs::read(e.path())?);
                h.update([0]);
            } else {
                return Err(io::Error::other(format!("`{rel}` is not a regular file")));
            }
        }
        Ok(())
    }
    let mut h = Sha256::new();
    walk(dir, "", &mut h)?;
    Ok(hex::encode(h.finalize()))
}

/// Move a damaged directory out of the way (atomically, so a concurrent
/// build never sees half of it), then remove it. Another build may have
/// moved it first: that is fine.
fn set_aside(root: &Path, dir: &Path) {
    let Ok(aside) = tempfile::Builder::new()
        .prefix(".broken-shim-")
        .tempdir_in(root)
    else {
        return;
    };
    let target = aside.path().join("old");
    if std::fs::rename(dir, &target).is_ok() {
        let _ = std::fs::remove_dir_all(&target);
    }
}

fn open_up(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for e in fs_err::read_dir(dir)? {
        let e = e?;
        let p = e.path();
        if e.file_type()?.is_dir() {
            fs_err::set_permissions(&p, std::fs::Permissions::from_mode(0o755))?;
            open_up(&p)?;
        } else {
            fs_err::set_permissions(&p, std::fs::Permissions::from_mode(0o644))?;
        }
    }
    fs_err::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_builds_share_one_compiled_shim() {
        let python = crate::buildenv::resolve_interpreter(None).expect("python3 on PATH");
        let cache = tempfile::tempdir().unwrap();
        let dirs: Vec<std::path::PathBuf> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        ensure_compiled(
                            cache.path(),
                            &python.executable,
                            &python.version,
                            "/sdist-box/shim",
                        )
                        .unwrap()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(dirs.iter().all(|d| d == &dirs[0]), "{dirs:?}");
        assert!(dirs[0].join(".complete").exists());
        assert!(dirs[0].join(HOOK_RUNNER).exists());
        assert!(dirs[0].join("__pycache__").is_dir());
        // Nothing half-made is left beside it.
        let left: Vec<_> = std::fs::read_dir(cache.path().join("shim"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(left.len(), 1, "{left:?}");
    }

    #[test]
    fn a_changed_compiled_shim_is_made_anew() {
        let python = crate::buildenv::resolve_interpreter(None).expect("python3 on PATH");
        let cache = tempfile::tempdir().unwrap();
        let make = || {
            ensure_compiled(
                cache.path(),
                &python.executable,
                &python.version,
                "/sdist-box/shim",
            )
            .unwrap()
        };
        let dir = make();
        let pyc = std::fs::read_dir(dir.join("__pycache__"))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.to_string_lossy().contains("sitecustomize"))
            .expect("a compiled sitecustomize");
        let good = std::fs::read(&pyc).unwrap();
        let mut garbled = good.clone();
        for b in garbled.iter_mut().skip(16) {
            *b = 0xff;
        }
        std::fs::write(&pyc, &garbled).unwrap();
        assert_eq!(make(), dir);
        // Compiled anew (not always byte-identical to the first: the
        // shim's frozenset constants follow hash randomisation), and whole.
        let again = std::fs::read(&pyc).unwrap();
        assert_ne!(again, garbled, "the garbled .pyc was not replaced");
        assert_eq!(again[..4], good[..4], "not a .pyc of this interpreter");
        // A removed file is noticed too, and nothing is left beside it.
        std::fs::remove_file(dir.join(HOOK_RUNNER)).unwrap();
        make();
        assert!(dir.join(HOOK_RUNNER).exists());
        let left = std::fs::read_dir(cache.path().join("shim"))
            .unwrap()
            .count();
        assert_eq!(left, 1);
    }
}
