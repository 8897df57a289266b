//! Build environments: the trusted stage, outside the sandbox.
//!
//! Build requirements are installed *as wheels only* (`--only-binary
//! :all:`): no code from an sdist ever runs here. Each environment is a
//! venv (no system site-packages) keyed by interpreter, the sorted
//! requirement set and the index options; it is built in place under an
//! exclusive lock and becomes usable only when its completion marker is
//! written last, so a crash or a concurrent build never yields a half-made
//! environment. The sandbox mounts it read-only.
//!
//! The marker also records a manifest of the finished tree
//! (`manifest`); an environment whose tree no longer matches it (a file
//! deleted, emptied, rewritten or made unreadable since) is rebuilt before
//! use, and the build says so, instead of failing every later build as if
//! the package had. A lock another process holds is waited for with a
//! notice, and at most [`lock_wait`] long.

mod manifest;
mod python;

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use python::{Interpreter, minimal_roots, resolve_interpreter, resolve_interpreter_cached};

#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum BuildEnvError {
    #[error("cannot use the interpreter `{spec}`: {reason}")]
    Interpreter { spec: String, reason: String },
    #[error("{reason}")]
    Requirement { reason: String },
    #[error("failed to {what} `{path}`: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "gave up after {waited_s} s waiting for the lock `{path}`: another sdist-box is making that build environment (raise the wait with SDIST_BOX_LOCK_WAIT_SECONDS)"
    )]
    LockWait { path: PathBuf, waited_s: u64 },
    #[error(
        "could not install the build requirements [{requirements}] into `{}` as wheels (sdists are never built outside the sandbox, so a requirement without a wheel cannot be used):\n{output}", env.display()
    )]
    Install {
        requirements: String,
        env: PathBuf,
        output: String,
    },
}

fn io_err(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> BuildEnvError {
    let path = path.to_path_buf();
    move |source| BuildEnvError::Io { what, path, source }
}

/// Where build requirements come from.
#[derive(Debug, Clone, Default, Serialize)]
pub struct IndexOptions {
    pub find_links: Vec<PathBuf>,
    pub no_index: bool,
}

/// A ready build environment. While a value of it (or a clone) lives, it
/// holds a shared lock on the environment, so that no other process repairs
/// (removes and remakes) the tree under a build that uses it.
#[derive(Debug, Clone, Serialize)]
pub struct BuildEnv {
    /// The venv's root.
    pub path: PathBuf,
    /// Its `bin/python`.
    pub python: PathBuf,
    pub key: String,
    pub requirements: Vec<String>,
    /// True when an existing environment was used.
    pub reused: bool,
    /// Set when a cached environment was found damaged and made anew: why.
    pub repaired: Option<String>,
    pub site_packages: PathBuf,
    /// `(name, version)` of every installed distribution.
    pub installed: Vec<(String, String)>,
    #[serde(skip)]
    // Held, never read: the shared lock lives as long as the env is used.
    _in_use: Option<std::sync::Arc<nix::fcntl::Flock<fs::File>>>,
}

#[derive(Serialize, Deserialize)]
struct Marker {
    key: String,
    requirements: Vec<String>,
    interpreter: PathBuf,
    installed: Vec<(String, String)>,
    /// [`manifest::digest`] of the tree when it was finished; absent in
    /// markers written before manifests existed (such an env is rebuilt).
    #[serde(default)]
    manifest: Option<String>,
}

const MARKER: &str = ".sdist-box-complete.json";
const MARKER_TMP: &str = ".sdist-box-complete.json.tmp";

/// How long to wait for another process's lock on one environment:
/// `$SDIST_BOX_LOCK_WAIT_SECONDS`, else 30 minutes (a large set of build
/// requirements can take minutes to install on a slow index).
pub fn lock_wait() -> Duration {
    std::env::var("SDIST_BOX_LOCK_WAIT_SECONDS")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .map_or(Duration::from_secs(30 * 60), Duration::from_secs)
}

/// `$SDIST_BOX_CACHE`, else `$XDG_CACHE_HOME/sdist-box`, else `~/.cache/sdist-box`.
pub fn default_cache_dir() -> PathBuf {
    if let Some(p) = std::env::var_os("SDIST_BOX_CACHE") {
        return PathBuf::from(p);
    }
    if let Some(p) = std::env::var_os("XDG_CACHE_HOME").filter(|p| !p.is_empty()) {
        return PathBuf::from(p).join("sdist-box");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    home.join(".cache/sdist-box")
}

fn normalized_requirements(requirements: &[String]) -> Vec<String> {
    let mut reqs: Vec<String> = requirements
        .iter()
        .map(|r| r.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|r| !r.is_empty())
        .collect();
    reqs.sort();
    reqs.dedup();
    reqs
}

/// The cache key: interpreter, sorted requirements, index options.
pub fn env_key(interp: &Interpreter, requirements: &[String], index: &IndexOptions) -> String {
    let mut h = Sha256::new();
    h.update(b"sdist-box-env-v1\0");
    h.update(interp.executable.as_os_str().as_encoded_bytes());
    h.update(b"\0");
    h.update(interp.version.as_bytes());
    h.update(b"\0");
    // Whitespace is insignificant in PEP 508 (`b>=1` is `b >= 1`).
    let mut keyed: Vec<String> = normalized_requirements(requirements)
        .iter()
        .map(|r| r.chars().filter(|c| !c.is_whitespace()).collect())
        .collect();
    keyed.sort();
    keyed.dedup();
    for r in keyed {
        h.update(r.as_bytes());
        h.update(b"\0");
    }
    h.update(if index.no_index {
        &b"no-index\0"[..]
    } else {
        &b"index\0"[..]
    });
    for l in &index.find_links {
        h.update(l.as_os_str().as_encoded_bytes());
        h.update(b"\0");
    }
    // Where pip finds packages can also come from its own settings: two
    // hosts (or two shells) with different indexes get different envs.
    for (k, v) in pip_source_settings() {
        h.update(k.as_bytes());
        h.update(b"=");
        h.update(&v);
        h.update(b"\0");
    }
    hex::encode(h.finalize())[..24].to_string()
}

/// pip's environment variables that say where packages come from; they
/// are passed to pip and keyed into the environment's name.
const PIP_SOURCE_VARS: &[&str] = &[
    "PIP_INDEX_URL",
    "PIP_EXTRA_INDEX_URL",
    "PIP_FIND_LINKS",
    "PIP_NO_INDEX",
    "PIP_CONSTRAINT",
    "PIP_PRE",
    "PIP_CONFIG_FILE",
    "PIP_CERT",
    "PIP_TRUSTED_HOST",
];

/// The values of [`PIP_SOURCE_VARS`] and the contents of the pip
/// configuration files in effect.
fn pip_source_settings() -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = PIP_SOURCE_VARS
        .iter()
        .filter_map(|k| {
            let v = std::env::var_os(k)?;
            Some((k.to_string(), v.as_encoded_bytes().to_vec()))
        })
        .collect();
    let mut files = vec![
        PathBuf::from("/etc/pip.conf"),
        PathBuf::from("/etc/xdg/pip/pip.conf"),
    ];
    if let Some(home) = std::env::var_os("HOME") {
        let home = PathBuf::from(home);
        files.push(home.join(".pip/pip.conf"));
        files.push(home.join(".config/pip/pip.conf"));
    }
    if let Some(conf) = std::env::var_os("PIP_CONFIG_FILE") {
        files.push(PathBuf::from(conf));
    }
    for f in files {
        if let Ok(text) = fs::read(&f) {
            out.push((f.display().to_string(), text));
        }
    }
    out
}

/// Whether pip may see this variable of ours: its settings that change
/// *where* it installs (`PIP_TARGET`, `PIP_PREFIX`, `PIP_USER`, …) or what
/// it accepts would break the environment or the wheels-only rule, so only
/// the source settings (keyed above) and pip's own output knobs pass.
fn pip_may_see(name: &str) -> bool {
    !name.starts_with("PIP_") || PIP_SOURCE_VARS.contains(&name) || name == "PIP_NO_COLOR"
}

fn site_packages(env: &Path, interp: &Interpreter) -> PathBuf {
    let mm: Vec<&str> = interp.version.split('.').take(2).collect();
    env.join(format!("lib/python{}/site-packages", mm.join(".")))
}

fn installed(site: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Ok(rd) = fs::read_dir(site) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(stem) = name.strip_suffix(".dist-info")
                && let Some((n, v)) = stem.rsplit_once('-')
            {
                out.push((n.to_string(), v.to_string()));
            }
        }
    }
    out.sort();
    out
}

/// What the cache holds for one key.
enum Cached {
    /// Finished and unchanged since.
    Ready(BuildEnv),
    /// Never finished (no marker): made from scratch, nothing to report.
    Absent,
    /// Finished once, damaged since: made anew, and the report says why.
    Damaged(String),
}

fn load(env: &Path, key: &str, interp: &Interpreter) -> Cached {
    let text = match fs::read_to_string(env.join(MARKER)) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Cached::Absent,
        Err(e) => return Cached::Damaged(format!("its marker cannot be read ({e})")),
    };
    let Ok(m) = serde_json::from_str::<Marker>(&text) else {
        return Cached::Damaged("its marker is not valid".into());
    };
    if m.key != key {
        return Cached::Damaged("its marker names another environment".into());
    }
    if let Err(why) = check_tree(env, m.manifest.as_deref()) {
        return Cached::Damaged(why);
    }
    Cached::Ready(BuildEnv {
        path: env.to_path_buf(),
        python: env.join("bin/python"),
        key: m.key,
        requirements: m.requirements,
        reused: true,
        repaired: None,
        site_packages: site_packages(env, interp),
        installed: m.installed,
        _in_use: None,
    })
}

/// Is the finished tree still the one its marker describes, and does its
/// interpreter still lead to an executable file?
fn check_tree(env: &Path, recorded: Option<&str>) -> Result<(), String> {
    let Some(recorded) = recorded else {
        return Err("it was made without a manifest (by an earlier sdist-box)".into());
    };
    match manifest::digest(env, &[MARKER, MARKER_TMP]) {
        Ok(now) if now == recorded => {}
        Ok(_) => return Err("its files changed since it was made".into()),
        Err(e) => return Err(format!("it cannot be read ({e})")),
    }
    let python = env.join("bin/python");
    match fs::metadata(&python) {
        Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 && m.len() > 0 => Ok(()),
        Ok(_) => Err("its `bin/python` is not an executable file".into()),
        Err(e) => Err(format!(
            "its `bin/python` does not lead to an interpreter ({e})"
        )),
    }
}

/// Take `path`'s lock (`exclusive`, else shared), waiting at most `wait`;
/// say once on stderr what is being waited for.
fn lock_bounded(
    file: fs::File,
    path: &Path,
    wait: Duration,
    exclusive: bool,
) -> Result<nix::fcntl::Flock<fs::File>, BuildEnvError> {
    use nix::fcntl::{Flock, FlockArg};
    let start = Instant::now();
    let mut file = file;
    let mut told = false;
    let kind = if exclusive {
        FlockArg::LockExclusiveNonblock
    } else {
        FlockArg::LockSharedNonblock
    };
    loop {
        match Flock::lock(file, kind) {
            Ok(lock) => return Ok(lock),
            Err((f, nix::errno::Errno::EWOULDBLOCK)) => file = f,
            Err((_, e)) => return Err(io_err("lock", path)(e.into())),
        }
        if start.elapsed() >= wait {
            return Err(BuildEnvError::LockWait {
                path: path.to_path_buf(),
                waited_s: start.elapsed().as_secs(),
            });
        }
        if !told {
            told = true;
            eprintln!(
                "sdist-box: waiting for the build environment lock `{}` (another sdist-box is making it, or building with it while this one would repair it; giving up after {} s)",
                crate::text::path(path),
                wait.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(100).min(wait.saturating_sub(start.elapsed())));
    }
}

/// Make every file readable (and directories traversable) by other uids:
/// the sandbox may run as another host uid.
fn open_up(path: &Path) -> std::io::Result<()> {
    let meta = fs::symlink_metadata(path)?;
    if meta.file_type().is_symlink() {
        return Ok(());
    }
    let mode = meta.permissions().mode();
    if meta.is_dir() {
        fs::set_permissions(path, fs::Permissions::from_mode((mode | 0o755) & 0o777))?;
        for e in fs::read_dir(path)? {
            open_up(&e?.path())?;
        }
    } else {
        let exec = if mode & 0o100 != 0 { 0o755 } else { 0o644 };
        fs::set_permissions(path, fs::Permissions::from_mode((mode | exec) & 0o777))?;
    }
    Ok(())
}

/// Is `req` a plain PEP 508 requirement on a *name* (with optional extras,
/// versions and markers)? Requirement strings come from the package (its
/// `pyproject.toml`, its `get_requires_for_build_wheel`), and pip also
/// accepts paths, archives and `name @ URL` references: followed in the
/// trusted stage, those would read host files or fetch from outside the
/// index. Refused here, before pip sees them.
pub fn check_requirement(req: &str) -> Result<(), String> {
    let r = req.trim();
    let name_part = r.split(';').next().unwrap_or("");
    let first = r.chars().next().unwrap_or(' ');
    let bad = if r.is_empty() {
        Some("it is empty")
    } else if !first.is_ascii_alphanumeric() {
        Some("it does not start with a project name (a path or an option?)")
    } else if name_part.contains('@') {
        Some("it is a direct reference (`name @ URL`)")
    } else if r.contains("://") || name_part.contains('/') || name_part.contains('\\') {
        Some("it names a URL or a path")
    } else if [".whl", ".zip", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz"]
        .iter()
        .any(|ext| name_part.trim_end().ends_with(ext))
    {
        Some("it names an archive file")
    } else if r.chars().any(|c| c.is_control()) {
        Some("it contains control characters")
    } else {
        None
    };
    match bad {
        Some(why) => Err(format!(
            "the build requirement `{}` is refused: {why}; only requirements on project names are installed",
            crate::text::one_line(r, 200)
        )),
        None => Ok(()),
    }
}

/// The environment for `requirements`, made if needed.
pub fn ensure(
    interp: &Interpreter,
    requirements: &[String],
    index: &IndexOptions,
    cache_dir: &Path,
) -> Result<BuildEnv, BuildEnvError> {
    let reqs = normalized_requirements(requirements);
    for r in &reqs {
        check_requirement(r).map_err(|reason| BuildEnvError::Requirement { reason })?;
    }
    let key = env_key(interp, &reqs, index);
    let envs = cache_dir.join("envs");
    let env = envs.join(&key);
    fs::create_dir_all(&envs).map_err(io_err("create", &envs))?;
    let _ = fs::set_permissions(cache_dir, fs::Permissions::from_mode(0o755));
    let _ = fs::set_permissions(&envs, fs::Permissions::from_mode(0o755));
    let lock_path = envs.join(format!("{key}.lock"));
    // Shared while it is used, exclusive while it is made or repaired.
    let shared = lock_bounded(open_lock(&lock_path)?, &lock_path, lock_wait(), false)?;
    if let Cached::Ready(found) = load(&env, &key, interp) {
        return Ok(in_use(found, shared));
    }
    drop(shared);
    let lock = lock_bounded(open_lock(&lock_path)?, &lock_path, lock_wait(), true)?;
    // Someone else may have finished (or repaired) it while we waited.
    let repaired = match load(&env, &key, interp) {
        Cached::Ready(found) => return Ok(in_use(found, downgrade(lock, &lock_path)?)),
        Cached::Absent => None,
        Cached::Damaged(why) => {
            tracing::warn!("build environment {key} is damaged ({why}); making it anew");
            Some(why)
        }
    };
    if fs::symlink_metadata(&env).is_ok() {
        // A damaged tree may hold directories we cannot list (mode 000).
        let _ = open_up(&env);
        fs::remove_dir_all(&env).map_err(io_err("remove the incomplete environment", &env))?;
    }
    tracing::info!("creating build environment {key} for {reqs:?}");
    let result = create(interp, &reqs, index, &env, &key);
    if result.is_err() {
        let _ = fs::remove_dir_all(&env);
    }
    let made = result?;
    Ok(in_use(
        BuildEnv { repaired, ..made },
        downgrade(lock, &lock_path)?,
    ))
}

/// The lock file, made if need be (read-only when another user made it:
/// `flock` needs no write access).
fn open_lock(path: &Path) -> Result<fs::File, BuildEnvError> {
    fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .or_else(|_| fs::File::open(path))
        .map_err(io_err("open the lock", path))
}

/// From making to using: exclusive becomes shared (no one else can take
/// it exclusively in between: the conversion keeps a lock throughout).
fn downgrade(
    lock: nix::fcntl::Flock<fs::File>,
    path: &Path,
) -> Result<nix::fcntl::Flock<fs::File>, BuildEnvError> {
    lock.relock(nix::fcntl::FlockArg::LockShared)
        .map_err(|e| io_err("lock", path)(e.into()))?;
    Ok(lock)
}

fn in_use(env: BuildEnv, lock: nix::fcntl::Flock<fs::File>) -> BuildEnv {
    BuildEnv {
        _in_use: Some(std::sync::Arc::new(lock)),
        ..env
    }
}

fn create(
    interp: &Interpreter,
    reqs: &[String],
    index: &IndexOptions,
    env: &Path,
    key: &str,
) -> Result<BuildEnv, BuildEnvError> {
    let out = Command::new(&interp.executable)
        .args(["-m", "venv", "--without-pip"])
        .arg(env)
        .output()
        .map_err(io_err("run venv for", env))?;
    if !out.status.success() {
        return Err(BuildEnvError::Install {
            requirements: reqs.join(", "),
            env: env.to_path_buf(),
            output: format!(
                "creating the venv failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ),
        });
    }
    if !reqs.is_empty() {
        let mut cmd = Command::new(&interp.executable);
        for (name, _) in std::env::vars_os() {
            if let Some(n) = name.to_str()
                && !pip_may_see(n)
            {
                cmd.env_remove(n);
            }
        }
        cmd.env_remove("PYTHONPATH").env_remove("PYTHONUSERBASE");
        cmd.args(["-m", "pip", "--python"])
            .arg(env.join("bin/python"))
            .args([
                "install",
                "--only-binary",
                ":all:",
                "--no-warn-script-location",
                "--disable-pip-version-check",
                "--no-input",
                "--quiet",
            ]);
        if index.no_index {
            cmd.arg("--no-index");
        }
        for l in &index.find_links {
            cmd.arg("--find-links").arg(l);
        }
        cmd.arg("--").args(reqs);
        // pip must not outlive sdist-box (a killed build would leave it
        // installing into an environment nobody will use).
        crate::sandbox::sys::kill_with_parent(&mut cmd);
        let out = cmd.output();
        crate::workdir::halt_if_abandoned();
        let out = out.map_err(io_err("run pip for", env))?;
        if !out.status.success() {
            let text = String::from_utf8_lossy(&out.stderr).into_owned()
                + &String::from_utf8_lossy(&out.stdout);
            let lines: Vec<&str> = text.lines().collect();
            let tail = lines[lines.len().saturating_sub(30)..].join("\n");
            return Err(BuildEnvError::Install {
                requirements: reqs.join(", "),
                env: env.to_path_buf(),
                output: tail,
            });
        }
    }
    open_up(env).map_err(io_err("set permissions on", env))?;
    let site = site_packages(env, interp);
    let manifest = manifest::digest(env, &[MARKER, MARKER_TMP])
        .map_err(io_err("read the finished environment", env))?;
    let marker = Marker {
        key: key.to_string(),
        requirements: reqs.to_vec(),
        interpreter: interp.executable.clone(),
        installed: installed(&site),
        manifest: Some(manifest),
    };
    let tmp = env.join(MARKER_TMP);
    let mut f = fs::File::create(&tmp).map_err(io_err("write", &tmp))?;
    f.write_all(
        serde_json::to_string_pretty(&marker)
            .unwrap_or_default()
            .as_bytes(),
    )
    .and_then(|()| f.sync_all())
    .map_err(io_err("write", &tmp))?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o644)).map_err(io_err("write", &tmp))?;
    fs::rename(&tmp, env.join(MARKER)).map_err(io_err("write", &tmp))?;
    Ok(BuildEnv {
        path: env.to_path_buf(),
        python: env.join("bin/python"),
        key: key.to_string(),
        requirements: reqs.to_vec(),
        reused: false,
        repaired: None,
        site_packages: site,
        installed: marker.installed,
        _in_use: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pip_sees_where_to_find_packages_but_not_where_to_put_them() {
        for ok in [
            "HOME",
            "PIP_INDEX_URL",
            "PIP_FIND_LINKS",
            "PIP_NO_INDEX",
            "LANG",
        ] {
            assert!(pip_may_see(ok), "{ok}");
        }
        for no in [
            "PIP_TARGET",
            "PIP_PREFIX",
            "PIP_USER",
            "PIP_ROOT",
            "PIP_NO_BINARY",
            "PIP_REQUIRE_HASHES",
        ] {
            assert!(!pip_may_see(no), "{no}");
        }
    }

    fn interp() -> Interpreter {
        resolve_interpreter(None).expect("python3 on PATH")
    }

    #[test]
    fn the_pyenv_shim_resolves_to_a_real_elf() {
        let i = interp();
        assert!(i.executable.is_absolute());
        let mut magic = [0u8; 4];
        use std::io::Read;
        fs::File::open(&i.executable)
            .unwrap()
            .read_exact(&mut magic)
            .unwrap();
        assert_eq!(&magic, b"\x7fELF");
        assert!(i.read_paths.iter().any(|p| i.executable.starts_with(p)));
        let d = resolve_interpreter(Some(std::ffi::OsStr::new("/usr/bin/python3"))).unwrap();
        assert!(d.executable.starts_with("/usr/bin"));
        let e = resolve_interpreter(Some(std::ffi::OsStr::new("python9-nonexistent"))).unwrap_err();
        assert!(
            e.to_string().contains("python9-nonexistent") && e.to_string().contains("--python"),
            "{e}"
        );
    }

    fn cached_answers(cache: &Path) -> Vec<PathBuf> {
        fs::read_dir(cache.join("interpreters"))
            .map(|d| d.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default()
    }

    #[test]
    fn the_interpreter_probe_is_cached_by_file_identity() {
        use std::ffi::OsStr;
        let cache = tempfile::tempdir().unwrap();
        let real = fs::canonicalize("/usr/bin/python3").unwrap();
        // A copy of the ELF, so that changing it does not touch the system's.
        let dir = tempfile::tempdir().unwrap();
        let copy = dir.path().join("python3");
        fs::copy(&real, &copy).unwrap();
        let spec = copy.as_os_str();

        let first = resolve_interpreter_cached(Some(spec), cache.path()).unwrap();
        let answers = cached_answers(cache.path());
        assert_eq!(answers.len(), 1, "one answer cached: {answers:?}");
        let again = resolve_interpreter_cached(Some(spec), cache.path()).unwrap();
        assert_eq!(first.executable, again.executable);
        assert_eq!(first.version, again.version);
        assert_eq!(cached_answers(cache.path()).len(), 1);

        // A damaged answer is not trusted: probed again and rewritten.
        fs::write(&answers[0], b"{not json").unwrap();
        let repaired = resolve_interpreter_cached(Some(spec), cache.path()).unwrap();
        assert_eq!(repaired.version, first.version);
        assert!(fs::read(&answers[0]).unwrap().starts_with(b"{\""));

        // The interpreter file changes (an upgrade in place): a new key.
        std::thread::sleep(std::time::Duration::from_millis(20));
        let f = fs::OpenOptions::new().append(true).open(&copy).unwrap();
        f.set_len(fs::metadata(&copy).unwrap().len()).unwrap();
        f.set_modified(std::time::SystemTime::now()).unwrap();
        drop(f);
        resolve_interpreter_cached(Some(spec), cache.path()).unwrap();
        assert_eq!(cached_answers(cache.path()).len(), 2);

        // A bare name (looked up on PATH) and a script are never cached.
        let script = dir.path().join("shim");
        fs::write(
            &script,
            format!("#!/bin/sh\nexec {} \"$@\"\n", real.display()),
        )
        .unwrap();
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
        let other = tempfile::tempdir().unwrap();
        resolve_interpreter_cached(Some(script.as_os_str()), other.path()).unwrap();
        resolve_interpreter_cached(Some(OsStr::new("python3")), other.path()).unwrap();
        assert!(cached_answers(other.path()).is_empty());
    }

    #[test]
    fn only_requirements_on_names_are_accepted() {
        for ok in [
            "setuptools>=40.8.0",
            "flit_core >=3.2,<4",
            "importlib-metadata>=3.6; python_version < \"3.10\"",
            "pkg[extra]==1.0",
        ] {
            assert!(check_requirement(ok).is_ok(), "{ok}");
        }
        for bad in [
            "evil @ https://example.invalid/evil-1.0-py3-none-any.whl",
            "https://example.invalid/x.whl",
            "/etc/passwd",
            "./local-dir",
            "../x.tar.gz",
            "file:///etc/shadow",
            "x-1.0-py3-none-any.whl",
            "--index-url=http://127.0.0.1:9/",
            "",
        ] {
            let e = check_requirement(bad).unwrap_err();
            assert!(e.contains("refused"), "{bad}: {e}");
        }
    }

    #[test]
    fn keys_ignore_order_and_spacing_but_not_index() {
        let i = interp();
        let a = env_key(&i, &["b>=1".into(), "a".into()], &IndexOptions::default());
        let b = env_key(
            &i,
            &["a".into(), "b >=1".into(), "a".into()],
            &IndexOptions::default(),
        );
        assert_eq!(a, b);
        let c = env_key(
            &i,
            &["a".into(), "b>=1".into()],
            &IndexOptions {
                no_index: true,
                ..Default::default()
            },
        );
        assert_ne!(a, c);
        assert_ne!(a, env_key(&i, &["a".into()], &IndexOptions::default()));
    }

    #[test]
    fn an_empty_env_is_made_once_and_reused_concurrently() {
        let i = interp();
        let cache = tempfile::tempdir().unwrap();
        let index = IndexOptions {
            no_index: true,
            ..Default::default()
        };
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let (i, cache, index) = (i.clone(), cache.path().to_path_buf(), index.clone());
                std::thread::spawn(move || ensure(&i, &[], &index, &cache).unwrap())
            })
            .collect();
        let envs: Vec<BuildEnv> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(envs[0].path, envs[1].path);
        assert_eq!(envs.iter().filter(|e| e.reused).count(), 1);
        assert!(envs[0].python.exists());
        assert!(envs[0].path.join(MARKER).exists());
        let again = ensure(&i, &[], &index, cache.path()).unwrap();
        assert!(again.reused);
    }

    #[test]
    fn a_damaged_env_is_made_anew_and_says_why() {
        let cache = tempfile::tempdir().unwrap();
        let make = || ensure(&interp(), &[], &IndexOptions::default(), cache.path()).unwrap();
        let first = make();
        assert!(first.repaired.is_none() && !first.reused);
        let cfg = first.path.join("pyvenv.cfg");
        // Done with it: a repair waits for every user of the env to let go.
        drop(first);
        type Damage = fn(&BuildEnv);
        let damages: &[(&str, Damage)] = &[
            ("emptied interpreter link", |e| {
                std::fs::remove_file(e.path.join("bin/python")).unwrap();
                std::fs::write(e.path.join("bin/python"), "").unwrap();
            }),
            ("deleted site-packages", |e| {
                std::fs::remove_dir_all(&e.site_packages).unwrap()
            }),
            ("mode 000 inside", |e| {
                std::fs::set_permissions(e.path.join("lib"), fs::Permissions::from_mode(0o000))
                    .unwrap()
            }),
            ("mode 000 env", |e| {
                std::fs::set_permissions(&e.path, fs::Permissions::from_mode(0o000)).unwrap()
            }),
            ("rewritten config", |e| {
                let text = std::fs::read_to_string(e.path.join("pyvenv.cfg")).unwrap();
                std::fs::write(e.path.join("pyvenv.cfg"), text.replace("false", "fals")).unwrap()
            }),
        ];
        for (what, damage) in damages {
            std::thread::sleep(std::time::Duration::from_millis(5));
            damage(&make());
            let again = make();
            assert!(again.repaired.is_some(), "{what}: not noticed");
            assert!(!again.reused, "{what}");
            assert!(again.site_packages.is_dir(), "{what}");
            assert!(cfg.is_file(), "{what}");
            // Repaired once: the next use finds it intact.
            let third = make();
            assert!(
                third.reused && third.repaired.is_none(),
                "{what}: {third:?}"
            );
        }
    }

    #[test]
    fn a_repair_waits_for_the_builds_using_the_env() {
        let cache = tempfile::tempdir().unwrap();
        let dir = cache.path().to_path_buf();
        let make = move || ensure(&interp(), &[], &IndexOptions::default(), &dir).unwrap();
        let in_use = make();
        std::fs::write(in_use.path.join("pyvenv.cfg"), "damaged").unwrap();
        let path = in_use.path.clone();
        let repairer = std::thread::spawn(make);
        std::thread::sleep(Duration::from_millis(400));
        // Still the tree the first build uses: not removed under it.
        assert_eq!(
            std::fs::read_to_string(path.join("pyvenv.cfg")).unwrap(),
            "damaged"
        );
        drop(in_use);
        let repaired = repairer.join().unwrap();
        assert!(repaired.repaired.is_some());
        assert_ne!(
            std::fs::read_to_string(path.join("pyvenv.cfg")).unwrap(),
            "damaged"
        );
    }

    #[test]
    fn a_held_lock_is_waited_for_with_a_bound() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let open = || {
            fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .unwrap()
        };
        let held = lock_bounded(open(), &path, Duration::from_secs(1), true).unwrap();
        let start = Instant::now();
        let err = lock_bounded(open(), &path, Duration::from_millis(300), true).unwrap_err();
        assert!(start.elapsed() >= Duration::from_millis(300));
        assert!(matches!(err, BuildEnvError::LockWait { .. }), "{err}");
        assert!(err.to_string().contains("x.lock"), "{err}");
        drop(held);
        lock_bounded(open(), &path, Duration::from_millis(300), true).unwrap();
    }

    #[test]
    fn a_failed_install_names_the_requirement_and_leaves_nothing() {
        let i = interp();
        let cache = tempfile::tempdir().unwrap();
        let index = IndexOptions {
            no_index: true,
            find_links: vec![cache.path().to_path_buf()],
        };
        let e = ensure(
            &i,
            &["surely-not-a-package-sdist-box==9.9".into()],
            &index,
            cache.path(),
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("surely-not-a-package-sdist-box==9.9"),
            "{e}"
        );
        let key = env_key(&i, &["surely-not-a-package-sdist-box==9.9".into()], &index);
        assert!(!cache.path().join("envs").join(key).exists());
    }
}
