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
    if dir.join(".complete").exists() {
        return Ok(dir);
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
    fs_err::write(tmp.path().join(".complete"), key.as_bytes())?;
    let tmp_path = tmp.keep();
    if let Err(e) = std::fs::rename(&tmp_path, &dir) {
        let _ = std::fs::remove_dir_all(&tmp_path);
        // Another build (another `build-all` job, another process) made it
        // first: theirs is as good as ours. Any other failure is an error,
        // not a directory that does not exist.
        if !dir.join(".complete").exists() {
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
}
