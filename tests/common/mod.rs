//! Shared helpers for the integration tests: run the real `sdist-box`
//! binary, make tiny sdists, canary homes and loopback listeners.
//!
//! The sandbox is never applied to the test process itself: every test runs
//! the binary as a child process.
#![allow(dead_code)]

pub mod pty;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

pub const REQUIRE_ALL: &str = "SDIST_BOX_REQUIRE_ALL";

/// Skip a test (printing `skipped: <why>`) unless the CI variable says
/// every feature must be present, in which case fail.
#[macro_export]
macro_rules! require {
    ($cond:expr, $why:expr) => {
        if !$cond {
            if std::env::var_os($crate::common::REQUIRE_ALL).is_some() {
                panic!("required feature missing: {}", $why);
            }
            eprintln!("skipped: {}", $why);
            return;
        }
    };
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_sdist-box"))
}

/// The offline wheelhouse made by `tests/setup/make_wheelhouse.sh`.
pub fn wheelhouse() -> Option<PathBuf> {
    let p = std::env::var_os("SDIST_BOX_WHEELHOUSE")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("tests/.cache/wheelhouse"));
    let has_wheels = std::fs::read_dir(&p)
        .map(|d| {
            d.flatten()
                .any(|e| e.file_name().to_string_lossy().ends_with(".whl"))
        })
        .unwrap_or(false);
    has_wheels.then_some(p)
}

/// Real sdists fetched by `tests/setup/fetch_sdists.py`.
pub fn sdist_cache() -> PathBuf {
    repo().join("tests/.cache/sdists")
}

/// Shared cache of build environments, so tests reuse them.
pub fn env_cache() -> PathBuf {
    let p = repo().join("tests/.cache/envs");
    std::fs::create_dir_all(&p).unwrap();
    p
}

/// The real interpreter tests build with (a pyenv shim is resolved by
/// sdist-box itself; this is only for venvs the tests make).
pub fn python() -> String {
    std::env::var("SDIST_BOX_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

pub fn userns_available() -> bool {
    std::fs::read_to_string("/proc/sys/user/max_user_namespaces")
        .map(|s| s.trim() != "0")
        .unwrap_or(false)
}

/// A tiny sdist written at test time.
pub struct Sdist {
    pub name: String,
    pub version: String,
    files: BTreeMap<String, Vec<u8>>,
}

impl Sdist {
    pub fn new(name: &str, version: &str) -> Sdist {
        let mut files = BTreeMap::new();
        files.insert(
            "PKG-INFO".to_string(),
            format!("Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n").into_bytes(),
        );
        Sdist {
            name: name.into(),
            version: version.into(),
            files,
        }
    }

    pub fn file(mut self, path: &str, text: &str) -> Sdist {
        self.files
            .insert(path.to_string(), text.as_bytes().to_vec());
        self
    }

    /// A binary file (a prebuilt library, say).
    pub fn bytes(mut self, path: &str, data: &[u8]) -> Sdist {
        self.files.insert(path.to_string(), data.to_vec());
        self
    }

    /// A setuptools package with `setup.py` running `attack` at import time
    /// and a module `<name_>` with `VALUE = 1`.
    pub fn setuptools_with(name: &str, attack: &str) -> Sdist {
        let module = name.replace('-', "_");
        let setup = format!(
            "import os, sys\nfrom setuptools import setup\n\n{attack}\n\nsetup(name={name:?}, version='0.1', py_modules=[{module:?}])\n"
        );
        Sdist::new(name, "0.1")
            .file("setup.py", &setup)
            .file(&format!("{module}.py"), "VALUE = 1\n")
    }

    pub fn write(&self, dir: &Path) -> PathBuf {
        let top = format!("{}-{}", self.name.replace('-', "_"), self.version);
        let path = dir.join(format!("{top}.tar.gz"));
        let file = std::fs::File::create(&path).unwrap();
        let gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
        let mut tar = tar::Builder::new(gz);
        for (name, data) in &self.files {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_mtime(1_700_000_000);
            header.set_cksum();
            tar.append_data(&mut header, format!("{top}/{name}"), &data[..])
                .unwrap();
        }
        tar.into_inner().unwrap().finish().unwrap();
        path
    }
}

/// A temporary HOME full of canary secrets.
pub struct CanaryHome {
    pub dir: tempfile::TempDir,
    pub files: Vec<(PathBuf, Vec<u8>)>,
}

pub const SECRET: &str = "CANARY-SECRET-7f3a9c";

impl CanaryHome {
    pub fn new() -> CanaryHome {
        let dir = tempfile::Builder::new()
            .prefix("canary-home-")
            .tempdir()
            .unwrap();
        let mut files = Vec::new();
        for (rel, text) in [
            (
                ".ssh/id_rsa",
                format!("-----BEGIN OPENSSH PRIVATE KEY-----\n{SECRET}\n"),
            ),
            (".pypirc", format!("[pypi]\npassword = {SECRET}\n")),
            (
                ".netrc",
                format!("machine example login me password {SECRET}\n"),
            ),
            (
                ".aws/credentials",
                format!("[default]\naws_secret_access_key = {SECRET}\n"),
            ),
            (".bashrc", "# canary bashrc\n".to_string()),
        ] {
            let p = dir.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, &text).unwrap();
            files.push((p, text.into_bytes()));
        }
        CanaryHome { dir, files }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Every canary still holds exactly what it held, and no file was added.
    pub fn assert_unchanged(&self) {
        for (p, text) in &self.files {
            assert_eq!(&std::fs::read(p).unwrap(), text, "{} changed", p.display());
        }
        let mut count = 0;
        for e in walk(self.dir.path()) {
            if e.is_file() {
                count += 1;
            }
        }
        assert_eq!(
            count,
            self.files.len(),
            "files were added under the canary home"
        );
    }
}

pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() && !p.is_symlink() {
                out.extend(walk(&p));
            }
            out.push(p);
        }
    }
    out
}

/// Watches files for any open or read (inotify) while a test runs.
pub struct AccessWatch {
    inotify: nix::sys::inotify::Inotify,
}

impl AccessWatch {
    pub fn new(paths: &[&Path]) -> AccessWatch {
        use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
        let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC).unwrap();
        for p in paths {
            inotify
                .add_watch(
                    *p,
                    AddWatchFlags::IN_OPEN | AddWatchFlags::IN_ACCESS | AddWatchFlags::IN_MODIFY,
                )
                .unwrap();
        }
        AccessWatch { inotify }
    }

    /// Number of open/read/modify events seen so far.
    pub fn events(&self) -> usize {
        match self.inotify.read_events() {
            Ok(ev) => ev.len(),
            Err(_) => 0,
        }
    }
}

/// A TCP listener on 127.0.0.1 that records every connection and byte.
pub struct Listener {
    pub port: u16,
    pub received: Arc<Mutex<(usize, Vec<u8>)>>,
}

impl Listener {
    pub fn start() -> Listener {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new((0usize, Vec::new())));
        let r = received.clone();
        std::thread::spawn(move || {
            for stream in l.incoming() {
                let Ok(mut s) = stream else { break };
                let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(2)));
                let mut buf = Vec::new();
                let _ = s.read_to_end(&mut buf);
                let mut g = r.lock().unwrap();
                g.0 += 1;
                g.1.extend(buf);
            }
        });
        Listener { port, received }
    }

    pub fn connections(&self) -> usize {
        self.received.lock().unwrap().0
    }

    pub fn bytes(&self) -> Vec<u8> {
        self.received.lock().unwrap().1.clone()
    }

    /// The listener works: a connection from the test process itself is seen.
    pub fn self_check(&self) {
        let before = self.connections();
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.write_all(b"self-check").unwrap();
        drop(s);
        for _ in 0..100 {
            if self.connections() > before {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(self.connections() > before, "the listener does not work");
        self.received.lock().unwrap().0 = 0;
        self.received.lock().unwrap().1.clear();
    }
}

/// The result of one `sdist-box build`.
pub struct Built {
    pub output: Output,
    pub out_dir: PathBuf,
    pub report: Option<serde_json::Value>,
    pub log: String,
}

impl Built {
    pub fn code(&self) -> i32 {
        self.output.status.code().unwrap_or(-1)
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    pub fn status(&self) -> String {
        self.report
            .as_ref()
            .and_then(|r| r["outcome"]["status"].as_str())
            .unwrap_or("")
            .to_string()
    }

    pub fn wheel(&self) -> Option<PathBuf> {
        let name = self.report.as_ref()?["wheel"]["filename"].as_str()?;
        Some(self.out_dir.join(name))
    }

    pub fn describe(&self) -> String {
        format!(
            "exit {}\nstderr:\n{}\nlog:\n{}\nreport outcome: {}",
            self.code(),
            self.stderr(),
            self.log,
            self.report
                .as_ref()
                .map(|r| r["outcome"].to_string())
                .unwrap_or_default()
        )
    }
}

/// Options for [`build`].
#[derive(Default)]
pub struct BuildOpts<'a> {
    pub home: Option<&'a Path>,
    pub profile: Option<&'a str>,
    pub extra_args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Run as this (uid, gid) through setpriv.
    pub as_user: Option<(u32, u32)>,
    pub python: Option<String>,
    pub cache: Option<PathBuf>,
    pub wheelhouse: Option<PathBuf>,
}

/// sdist-box as a command: run directly, or as `(uid, gid)` through
/// setpriv (then from a copy any user can execute).
pub fn sdist_box_as(as_user: Option<(u32, u32)>) -> Command {
    match as_user {
        Some((uid, gid)) => {
            let mut c = Command::new("setpriv");
            c.args([
                &format!("--reuid={uid}"),
                &format!("--regid={gid}"),
                "--clear-groups",
                "--",
            ]);
            c.arg(shared_binary());
            // The default profile requires the `resources` layer: the test
            // plays the delegator (as root) and hands the user a cgroup.
            if let Some(dirs) = delegated_cgroup(uid, gid) {
                c.env("SDIST_BOX_CGROUP", dirs);
            }
            c
        }
        None => Command::new(bin()),
    }
}

pub fn build(sdist: &Path, out_dir: &Path, opts: BuildOpts<'_>) -> Built {
    let mut cmd = sdist_box_as(opts.as_user);
    cmd.arg("build").arg(sdist).arg("-o").arg(out_dir);
    if let Some(p) = opts.profile {
        cmd.args(["--profile", p]);
    }
    let wheelhouse = opts.wheelhouse.clone().or_else(wheelhouse);
    if let Some(wh) = wheelhouse {
        cmd.arg("--find-links").arg(wh).arg("--no-index");
    }
    cmd.arg("--cache-dir")
        .arg(opts.cache.clone().unwrap_or_else(env_cache));
    if let Some(py) = &opts.python {
        cmd.args(["--python", py]);
    }
    cmd.args(&opts.extra_args);
    if let Some(home) = opts.home {
        cmd.env("HOME", home);
    }
    for (k, v) in &opts.env {
        cmd.env(k, v);
    }
    cmd.env("NO_COLOR", "1");
    let output = cmd.output().expect("run sdist-box");
    let stem = sdist
        .file_name()
        .unwrap()
        .to_string_lossy()
        .trim_end_matches(".tar.gz")
        .trim_end_matches(".zip")
        .to_string();
    let report = std::fs::read_to_string(out_dir.join(format!("{stem}.sdist-box.json")))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    let log =
        std::fs::read_to_string(out_dir.join(format!("{stem}.build.log"))).unwrap_or_default();
    Built {
        output,
        out_dir: out_dir.to_path_buf(),
        report,
        log,
    }
}

/// A copy of the binary that any user can execute (the build tree may sit
/// under a directory only root can enter).
pub fn shared_binary() -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    static ONCE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    ONCE.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("sdist-box-bin-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let dest = dir.join("sdist-box");
        std::fs::copy(bin(), &dest).unwrap();
        std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o755)).unwrap();
        dest
    })
    .clone()
}

/// The unprivileged test user made by `tests/setup/test-user.sh`.
pub fn test_user() -> Option<(u32, u32)> {
    let out = Command::new("id")
        .args(["-u", "sdistbox-test"])
        .output()
        .ok()?;
    let uid: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
    let out = Command::new("id")
        .args(["-g", "sdistbox-test"])
        .output()
        .ok()?;
    let gid: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
    Some((uid, gid))
}

/// A temporary directory owned by `owner` (for tests run as that user).
pub fn tempdir_for(owner: Option<(u32, u32)>) -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::Builder::new()
        .prefix("sdist-box-test-")
        .tempdir()
        .unwrap();
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(d.path(), Some(uid), Some(gid)).unwrap();
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    d
}

/// Install `wheel` (no dependencies) into a fresh directory and run `code`
/// with the real interpreter importing from it.
pub fn install_and_run(wheel: &Path, code: &str) -> Output {
    let site = tempfile::tempdir().unwrap();
    let real = Command::new(python())
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .unwrap();
    let py = String::from_utf8_lossy(&real.stdout).trim().to_string();
    let out = Command::new(&py)
        .args([
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-index",
            "-q",
            "--target",
        ])
        .arg(site.path())
        .arg(wheel)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pip install {} failed: {}",
        wheel.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    Command::new(&py)
        .args(["-c", code])
        .env("PYTHONPATH", site.path())
        .env("PYTHONNOUSERSITE", "1")
        .current_dir(site.path())
        .output()
        .unwrap()
}

/// Builds need user namespaces and the wheelhouse; without them a test
/// prints `skipped: <why>` (or fails when SDIST_BOX_REQUIRE_ALL is set).
pub fn ready_for_builds() -> bool {
    if !userns_available() || wheelhouse().is_none() {
        if std::env::var_os(REQUIRE_ALL).is_some() {
            panic!("user namespaces or the wheelhouse are missing (run scripts/setup-tests)");
        }
        eprintln!("skipped: user namespaces or the wheelhouse are missing");
        return false;
    }
    true
}

/// A validator for one of the repository's JSON Schemas (`schema/NAME`).
pub fn schema(name: &str) -> jsonschema::Validator {
    let path = repo().join("schema").join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    let schema: serde_json::Value = serde_json::from_str(&text).unwrap();
    jsonschema::validator_for(&schema)
        .unwrap_or_else(|e| panic!("{} does not compile: {e}", path.display()))
}

/// Fail, listing every error, unless `doc` validates against `v`.
pub fn assert_valid(v: &jsonschema::Validator, doc: &serde_json::Value, what: &str) {
    let errors: Vec<String> = v
        .iter_errors(doc)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{what} does not validate:\n{}",
        errors.join("\n")
    );
}

/// `OUT/build-all.json`, checked against `schema/build-all.schema.json`.
pub fn summary(out: &Path) -> serde_json::Value {
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("build-all.json")).unwrap())
            .unwrap();
    assert_valid(&schema("build-all.schema.json"), &doc, "build-all.json");
    doc
}

/// The entry of `build-all.json` for the sdist `filename`.
pub fn entry<'a>(summary: &'a serde_json::Value, filename: &str) -> &'a serde_json::Value {
    summary["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["filename"] == filename)
        .unwrap_or_else(|| panic!("no entry for {filename} in {summary:#}"))
}

/// A validator for the official SARIF 2.1.0 schema fetched by
/// `scripts/setup-tests`, or `None` when it was not fetched. Its `language`
/// patterns are valid ECMA-262 but not valid for the Rust regex engine (an
/// unescaped literal `]`): escaped, which keeps their meaning.
pub fn sarif_validator() -> Option<jsonschema::Validator> {
    let path = repo().join("tests/.cache/sarif-schema-2.1.0.json");
    let text = std::fs::read_to_string(path)
        .ok()?
        .replace(r#"[a-zA-Z]{2}]?$"#, r#"[a-zA-Z]{2}\\]?$"#);
    Some(jsonschema::validator_for(&serde_json::from_str(&text).unwrap()).expect("schema compiles"))
}

/// What a build run as `user` (uid, gid) needs, in `tmp` (made by
/// [`tempdir_for`]): a copy of the wheelhouse it can read, the tree made
/// readable to it, a build-environment cache of its own; `python` is the
/// system interpreter (the tests' may sit under a directory only root can
/// enter). `home` must exist and belong to the user.
pub fn build_opts_for_user<'a>(tmp: &Path, user: (u32, u32), home: &'a Path) -> BuildOpts<'a> {
    let (uid, _) = user;
    let wh = tmp.join("wh");
    let run = |cmd: &mut Command| assert!(cmd.status().unwrap().success(), "{cmd:?}");
    run(Command::new("cp")
        .arg("-a")
        .arg(wheelhouse().unwrap())
        .arg(&wh));
    run(Command::new("chmod").args(["-R", "a+rX"]).arg(tmp));
    let cache = std::env::temp_dir().join(format!("sdist-box-test-cache-{uid}"));
    std::fs::create_dir_all(&cache).unwrap();
    run(Command::new("chown")
        .arg("-R")
        .arg(uid.to_string())
        .arg(&cache));
    BuildOpts {
        as_user: Some(user),
        python: Some("/usr/bin/python3".into()),
        home: Some(home),
        cache: Some(cache),
        wheelhouse: Some(wh),
        ..Default::default()
    }
}

/// The test process's own directory in a cgroup v1 hierarchy (`memory`,
/// `pids`), when this host mounts it there.
pub fn own_v1_cgroup(controller: &str) -> Option<PathBuf> {
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let path = own.lines().find_map(|l| {
        let mut f = l.splitn(3, ':');
        let (_, c, p) = (f.next()?, f.next()?, f.next()?);
        c.split(',').any(|c| c == controller).then(|| p.to_string())
    })?;
    let dir = Path::new("/sys/fs/cgroup")
        .join(controller)
        .join(path.trim_start_matches('/'));
    dir.join("cgroup.procs").exists().then_some(dir)
}

/// A cgroup subtree delegated to `uid` (v1 `memory` and `pids`, made by
/// the test as root and chowned), as the `SDIST_BOX_CGROUP` value; `None`
/// where this host has no v1 hierarchies or the test is not root. Named
/// `sdist-box-<test pid>-…`, so that an sdist-box run as root sweeps it
/// once this test process is gone.
pub fn delegated_cgroup(uid: u32, gid: u32) -> Option<String> {
    static DIRS: std::sync::Mutex<BTreeMap<u32, Option<String>>> =
        std::sync::Mutex::new(BTreeMap::new());
    let mut dirs = DIRS.lock().unwrap();
    dirs.entry(uid)
        .or_insert_with(|| {
            let name = format!("sdist-box-{}-delegated-{uid}", std::process::id());
            let made = Delegated::make(&name, Some((uid, gid)))?;
            let value = made.env_value();
            std::mem::forget(made);
            Some(value)
        })
        .clone()
}

/// A delegated cgroup subtree, made by the test as root (the delegator),
/// measured from outside and removed when dropped.
pub struct Delegated {
    pub memory: PathBuf,
    pub pids: PathBuf,
}

impl Delegated {
    pub fn make(name: &str, owner: Option<(u32, u32)>) -> Option<Delegated> {
        if !is_root() {
            return None;
        }
        let memory = own_v1_cgroup("memory")?.join(name);
        let pids = own_v1_cgroup("pids")?.join(name);
        for d in [&memory, &pids] {
            std::fs::create_dir_all(d).ok()?;
            if let Some((uid, gid)) = owner {
                let ok = Command::new("chown")
                    .arg("-R")
                    .arg(format!("{uid}:{gid}"))
                    .arg(d)
                    .status()
                    .ok()?
                    .success();
                assert!(ok, "chown {}", d.display());
            }
        }
        Some(Delegated { memory, pids })
    }

    pub fn env_value(&self) -> String {
        format!("{}:{}", self.memory.display(), self.pids.display())
    }

    fn number(path: &Path) -> u64 {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .trim()
            .parse()
            .unwrap_or(0)
    }

    /// The highest memory charge of everything beneath, as the kernel saw it.
    pub fn memory_peak(&self) -> u64 {
        Self::number(&self.memory.join("memory.max_usage_in_bytes"))
    }

    /// The most processes beneath at once.
    pub fn pids_peak(&self) -> u64 {
        Self::number(&self.pids.join("pids.peak"))
    }

    /// Cgroups left beneath (sdist-box removes its own).
    pub fn children(&self) -> Vec<PathBuf> {
        [&self.memory, &self.pids]
            .iter()
            .flat_map(|d| std::fs::read_dir(d).into_iter().flatten().flatten())
            .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
            .map(|e| e.path())
            .collect()
    }
}

impl Drop for Delegated {
    fn drop(&mut self) {
        for d in [&self.memory, &self.pids] {
            for child in std::fs::read_dir(d).into_iter().flatten().flatten() {
                if child.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    let _ = std::fs::remove_dir(child.path());
                }
            }
            let _ = std::fs::remove_dir(d);
        }
    }
}
