//! Finding the real interpreter: `python3` on PATH may be a pyenv shim (a
//! shell script); the sandbox must exec the ELF it ends up running.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};

use super::BuildEnvError;

#[derive(Debug, Clone, Serialize)]
pub struct Interpreter {
    /// The real ELF executable, links resolved.
    pub executable: PathBuf,
    pub version: String,
    pub implementation: String,
    pub prefix: PathBuf,
    pub base_prefix: PathBuf,
    pub stdlib: PathBuf,
    pub include: PathBuf,
    /// Directories the interpreter reads and executes from, minimal.
    pub read_paths: Vec<PathBuf>,
}

#[derive(Deserialize)]
struct Probe {
    executable: String,
    base_executable: Option<String>,
    version: String,
    implementation: String,
    prefix: String,
    base_prefix: String,
    stdlib: String,
    include: String,
}

const PROBE: &str = r#"
import json, sys, sysconfig
print(json.dumps({
    "executable": sys.executable,
    "base_executable": getattr(sys, "_base_executable", None),
    "version": "%d.%d.%d" % sys.version_info[:3],
    "implementation": sys.implementation.name,
    "prefix": sys.prefix,
    "base_prefix": sys.base_prefix,
    "stdlib": sysconfig.get_path("stdlib"),
    "include": sysconfig.get_path("include"),
}))
"#;

fn is_elf(path: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && magic == *b"\x7fELF"
}

/// Resolve `spec` (default `python3` on PATH) to the real interpreter.
pub fn resolve_interpreter(spec: Option<&OsStr>) -> Result<Interpreter, BuildEnvError> {
    let shown = spec.unwrap_or(OsStr::new("python3")).to_string_lossy();
    from_probe(&shown, &run_probe(spec)?)
}

/// [`resolve_interpreter`], with the probe's answer cached in
/// `cache_dir/interpreters/`, keyed by the identity (device, inode, size,
/// times) of the interpreter file, of the link `spec` names, and of the
/// `pyvenv.cfg` files (or their absence) where a venv would keep one. A warm build then starts no
/// Python outside the sandbox (the probe costs ~50 ms). Only a `spec` given
/// as a path that resolves to an ELF file is cached: a bare name is looked
/// up on PATH, and a shim (pyenv's is a shell script) may pick another
/// interpreter every time.
pub fn resolve_interpreter_cached(
    spec: Option<&OsStr>,
    cache_dir: &Path,
) -> Result<Interpreter, BuildEnvError> {
    let Some(key) = spec.and_then(identity_key) else {
        return resolve_interpreter(spec);
    };
    let shown = spec.unwrap_or_default().to_string_lossy();
    let dir = cache_dir.join("interpreters");
    let path = dir.join(format!("{key}.json"));
    if let Some(interp) = read_small(&path).and_then(|b| from_probe(&shown, &b).ok()) {
        return Ok(interp);
    }
    let answer = run_probe(spec)?;
    let interp = from_probe(&shown, &answer)?;
    // Best effort: a cache that cannot be written only costs the probe.
    let _ = std::fs::create_dir_all(&dir).and_then(|()| {
        let mut tmp = tempfile::NamedTempFile::new_in(&dir)?;
        std::io::Write::write_all(&mut tmp, &answer)?;
        tmp.persist(&path).map_err(|e| e.error)?;
        Ok(())
    });
    Ok(interp)
}

fn identity_key(spec: &OsStr) -> Option<String> {
    use sha2::{Digest, Sha256};
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::MetadataExt;
    let named = Path::new(spec);
    if !spec.as_bytes().contains(&b'/') {
        return None;
    }
    let real = std::fs::canonicalize(named).ok()?;
    if !is_elf(&real) {
        return None;
    }
    let named_dir = std::path::absolute(named).ok()?.parent()?.to_path_buf();
    let mut h = Sha256::new();
    let add = |h: &mut Sha256, p: &Path, m: std::fs::Metadata| {
        h.update(p.as_os_str().as_bytes());
        for n in [
            m.dev(),
            m.ino(),
            m.size(),
            m.mtime() as u64,
            m.mtime_nsec() as u64,
            m.ctime() as u64,
            m.ctime_nsec() as u64,
        ] {
            h.update(n.to_le_bytes());
        }
    };
    add(&mut h, named, std::fs::symlink_metadata(named).ok()?);
    add(&mut h, &real, std::fs::metadata(&real).ok()?);
    // A venv is recognised by a `pyvenv.cfg` beside the executable or one
    // level up (of the link or of the ELF): those files' identities, or
    // their absence, are part of the key. The directories' own times are
    // not: `/tmp` or `/usr/bin` change whenever anything else is created
    // there, which would make the key change under a concurrent build.
    for dir in [
        Some(named_dir.as_path()),
        named_dir.parent(),
        real.parent(),
        real.parent().and_then(Path::parent),
    ]
    .into_iter()
    .flatten()
    {
        let cfg = dir.join("pyvenv.cfg");
        match std::fs::metadata(&cfg) {
            Ok(m) => add(&mut h, &cfg, m),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => h.update(b"absent"),
            Err(_) => return None,
        }
    }
    Some(hex::encode(&h.finalize()[..16]))
}

fn read_small(path: &Path) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut buf = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .take(64 * 1024)
        .read_to_end(&mut buf)
        .ok()?;
    Some(buf)
}

/// Ask the interpreter about itself; its JSON answer.
fn run_probe(spec: Option<&OsStr>) -> Result<Vec<u8>, BuildEnvError> {
    let spec = spec.unwrap_or(OsStr::new("python3"));
    let shown = spec.to_string_lossy().into_owned();
    let out = Command::new(spec)
        .args(["-I", "-c", PROBE])
        .env_remove("PYTHONPATH")
        .output()
        .map_err(|e| BuildEnvError::Interpreter {
            spec: shown.clone(),
            reason: if e.kind() == std::io::ErrorKind::NotFound {
                "not found (on PATH, or at that path); pass --python /path/to/python3".into()
            } else {
                e.to_string()
            },
        })?;
    if !out.status.success() {
        return Err(BuildEnvError::Interpreter {
            spec: shown,
            reason: format!(
                "it did not answer as a Python interpreter: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    Ok(out.stdout)
}

/// The interpreter a probe's answer describes.
fn from_probe(shown: &str, answer: &[u8]) -> Result<Interpreter, BuildEnvError> {
    let shown = shown.to_string();
    let probe: Probe = serde_json::from_slice(answer).map_err(|e| BuildEnvError::Interpreter {
        spec: shown.clone(),
        reason: format!("unexpected answer: {e}"),
    })?;
    // A venv's python: build with its base interpreter instead.
    let candidate = if probe.prefix != probe.base_prefix {
        probe
            .base_executable
            .clone()
            .unwrap_or(probe.executable.clone())
    } else {
        probe.executable.clone()
    };
    let executable = std::fs::canonicalize(&candidate).map_err(|e| BuildEnvError::Interpreter {
        spec: shown.clone(),
        reason: format!("cannot resolve `{candidate}`: {e}"),
    })?;
    if !is_elf(&executable) {
        return Err(BuildEnvError::Interpreter {
            spec: shown,
            reason: format!("`{}` is not an ELF executable", executable.display()),
        });
    }
    let base_prefix = PathBuf::from(&probe.base_prefix);
    let mut read_paths = vec![base_prefix.clone()];
    if let Some(dir) = executable.parent() {
        read_paths.push(dir.to_path_buf());
    }
    for p in [&probe.stdlib, &probe.include] {
        read_paths.push(PathBuf::from(p));
    }
    let read_paths = minimal_roots(read_paths);
    Ok(Interpreter {
        executable,
        version: probe.version,
        implementation: probe.implementation,
        prefix: PathBuf::from(probe.prefix),
        base_prefix,
        stdlib: PathBuf::from(probe.stdlib),
        include: PathBuf::from(probe.include),
        read_paths,
    })
}

/// Deduplicate and drop paths nested in another one.
pub fn minimal_roots(mut paths: Vec<PathBuf>) -> Vec<PathBuf> {
    paths.retain(|p| p.is_absolute() && p.exists());
    paths.sort();
    paths.dedup();
    let all = paths.clone();
    paths.retain(|p| !all.iter().any(|q| q != p && p.starts_with(q)));
    paths
}
