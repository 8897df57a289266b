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
