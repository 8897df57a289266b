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
    let probe: Probe =
        serde_json::from_slice(&out.stdout).map_err(|e| BuildEnvError::Interpreter {
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
