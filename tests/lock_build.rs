//! `build-all` with a lock file as INPUT, end to end: real tool-made locks
//! (`tests/fixtures/locks/`) whose real sdists (`tests/.cache/sdists`) are
//! served by `tests/fixtures/simple_index.py` on 127.0.0.1; every entry
//! fetched, verified and built in the sandbox; a wrong hash and a version
//! that does not exist failing alone; provenance in `build-all.json`; a
//! canary that shows nothing fetched runs on the host; `--with-deps` over
//! a dependency chain four deep; and the two publishing recipes of
//! docs/recipes.md (pip and uv from `sdist-box index`, pip from a local
//! pypiserver). No test reaches past 127.0.0.1 except the installation of
//! the publishing tools (uv, pypiserver) from the configured index, which
//! says `skipped: …` when it cannot (unless SDIST_BOX_REQUIRE_ALL=1).

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::Sdist;
use serde_json::{Value, json};

// ---------------------------------------------------------------------------
// The local index (the same server as tests/fetch.rs)

struct IndexServer {
    child: Child,
    port: u16,
}

impl IndexServer {
    fn start(dir: &Path, projects: Value) -> IndexServer {
        let config = json!({"projects": projects, "log": dir.join("index.log")});
        let config_path = dir.join("index.json");
        std::fs::write(&config_path, config.to_string()).unwrap();
        let mut child = Command::new(common::python())
            .arg(common::repo().join("tests/fixtures/simple_index.py"))
            .arg(&config_path)
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs the test index");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .strip_prefix("PORT ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("the test index did not start: {line:?}"));
        IndexServer { child, port }
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn index(&self) -> String {
        format!("{}/simple/", self.base())
    }
}

impl Drop for IndexServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A project as the index lists it.
fn listed(path: &Path) -> Value {
    let sha = sdist_box::archive::sha256_file(path).unwrap();
    let filename = path.file_name().unwrap().to_string_lossy().into_owned();
    json!({"filename": filename, "path": path, "sha256": sha, "size": true})
}

/// Every real sdist of the test cache, by normalized project name.
fn cached_projects() -> serde_json::Map<String, Value> {
    let mut projects = serde_json::Map::new();
    for e in std::fs::read_dir(common::sdist_cache()).unwrap().flatten() {
        let filename = e.file_name().to_string_lossy().into_owned();
        let Some((name, _)) = filename.rsplit_once('-') else {
            continue;
        };
        let project = name.to_ascii_lowercase().replace('_', "-");
        projects
            .entry(project)
            .or_insert_with(|| json!([]))
            .as_array_mut()
            .unwrap()
            .push(listed(&e.path()));
    }
    projects
}

fn sha256_of(filename: &str) -> String {
    sdist_box::archive::sha256_file(&common::sdist_cache().join(filename)).unwrap()
}

// ---------------------------------------------------------------------------
// Running sdist-box

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `sdist-box build-all LOCK -o OUT --index-url INDEX …`, with pip's
/// configuration on this machine kept out (the index is the test's).
fn build_all(lock: &Path, out: &Path, index: &str, sdists: &Path, extra: &[&str]) -> Output {
    let mut cmd = Command::new(common::bin());
    cmd.arg("build-all")
        .arg(lock)
        .arg("-o")
        .arg(out)
        .args(["--jobs", "2", "--index-url", index])
        .arg("--sdist-cache")
        .arg(sdists)
        .arg("--find-links")
        .arg(common::wheelhouse().unwrap())
        .arg("--no-index")
        .arg("--cache-dir")
        .arg(common::env_cache())
        .args(["--env", "CIBUILDWHEEL=1"])
        .args(extra)
        .env("PIP_CONFIG_FILE", "/dev/null")
        .env("NO_COLOR", "1");
    for var in [
        "PIP_INDEX_URL",
        "PIP_EXTRA_INDEX_URL",
        "PIP_FIND_LINKS",
        "PIP_NO_INDEX",
    ] {
        cmd.env_remove(var);
    }
    cmd.output().expect("run sdist-box")
}

fn entry_named<'a>(summary: &'a Value, name: &str) -> &'a Value {
    summary["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name || e["shard_key"] == name)
        .unwrap_or_else(|| panic!("no entry for {name} in {summary:#}"))
}

fn real_python() -> String {
    let out = Command::new(common::python())
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn venv(dir: &Path) -> PathBuf {
    let made = Command::new(real_python())
        .args(["-m", "venv"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", text(&made));
    dir.to_path_buf()
}

/// uv and pypiserver in a venv of their own, installed by pip from the
/// index this machine's pip is configured for; None (after `skipped: …`,
/// or a panic under SDIST_BOX_REQUIRE_ALL) when that cannot be done.
fn publishing_tools(dir: &Path) -> Option<PathBuf> {
    let tools = venv(&dir.join("tools"));
    let got = Command::new(tools.join("bin/pip"))
        .args([
            "install",
            "-q",
            "--disable-pip-version-check",
            "uv",
            "pypiserver",
        ])
        .output()
        .unwrap();
    if !got.status.success() {
        let why = format!(
            "uv and pypiserver cannot be installed with pip here: {}",
            String::from_utf8_lossy(&got.stderr)
                .lines()
                .last()
                .unwrap_or("")
        );
        if std::env::var_os(common::REQUIRE_ALL).is_some() {
            panic!("{why}");
        }
        eprintln!("skipped: {why}");
        return None;
    }
    Some(tools)
}

/// `pip install` into a fresh venv from `index_url`; then `code` runs in it.
fn pip_install(venv_dir: &Path, index_url: &str, args: &[&str], code: &str) {
    let v = venv(venv_dir);
    let install = Command::new(v.join("bin/pip"))
        .args([
            "install",
            "--disable-pip-version-check",
            "--index-url",
            index_url,
        ])
        .args(args)
        .env("PIP_CONFIG_FILE", "/dev/null")
        .env_remove("PIP_FIND_LINKS")
        .output()
        .unwrap();
    assert!(install.status.success(), "pip: {}", text(&install));
    run_in(&v, code);
}

/// `uv pip install` into a fresh venv from `index_url`; then `code` runs.
fn uv_install(tools: &Path, venv_dir: &Path, index_url: &str, args: &[&str], code: &str) {
    let v = venv(venv_dir);
    let install = Command::new(tools.join("bin/uv"))
        .args(["pip", "install", "--offline", "--python"])
        .arg(v.join("bin/python"))
        .args(["--index-url", index_url])
        .args(args)
        .env("UV_CACHE_DIR", venv_dir.with_extension("uv-cache"))
        .env("UV_NO_CONFIG", "1")
        .env_remove("PIP_FIND_LINKS")
        .output()
        .unwrap();
    assert!(install.status.success(), "uv: {}", text(&install));
    run_in(&v, code);
}

fn run_in(v: &Path, code: &str) {
    let ran = Command::new(v.join("bin/python"))
        .args(["-c", code])
        .current_dir(v)
        .output()
        .unwrap();
    assert!(ran.status.success(), "{}", text(&ran));
}

fn index_out(out: &Path) -> String {
    let idx = Command::new(common::bin())
        .arg("index")
        .arg(out)
        .output()
        .unwrap();
    assert_eq!(idx.status.code(), Some(0), "{}", text(&idx));
    format!("file://{}", out.join("simple").display())
}

// ---------------------------------------------------------------------------

/// The blocks of a requirements file (a requirement and its continuation
/// and comment lines) for the projects `keep` keeps.
fn requirement_blocks(text: &str, keep: &dyn Fn(&str) -> bool) -> String {
    let mut out = String::new();
    let mut keeping = false;
    for line in text.lines() {
        if !line.starts_with([' ', '#']) && !line.is_empty() {
            let name = line.split(['=', ' ', ';']).next().unwrap_or("");
            keeping = keep(&name.to_ascii_lowercase());
        }
        if keeping {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Real projects from real tool-made locks: fetched, verified, built,
/// and installed from the generated index by pip and by uv; a wrong hash
/// and a version that does not exist fail alone; the pylock run of the
/// same projects resumes from what the first run built.
#[test]
fn real_locks_are_fetched_verified_built_and_installed() {
    if !common::ready_for_builds() {
        return;
    }
    let projects = cached_projects();
    require!(
        projects.len() >= 8,
        "the real sdists are not in tests/.cache/sdists (scripts/setup-tests fetches them)"
    );
    let tmp = tempfile::Builder::new()
        .prefix("sdist-box-lock-")
        .tempdir()
        .unwrap();
    let dir = tmp.path();
    // Two served projects of our own: one whose pinned version does not
    // exist, one whose pin is wrong.
    let alpha = Sdist::new("alpha", "1.0").write(dir);
    let beta = Sdist::new("beta", "1.0").write(dir);
    let mut served = projects.clone();
    served.insert("alpha".into(), json!([listed(&alpha)]));
    served.insert("beta".into(), json!([listed(&beta)]));
    let server = IndexServer::start(dir, Value::Object(served));

    // 1. uv's hash-pinned requirements, the projects with cached sdists,
    // plus three more real ones (other backends) and the two bad entries.
    let locks = common::repo().join("tests/fixtures/locks");
    let uv_txt = std::fs::read_to_string(locks.join("requirements-uv.txt")).unwrap();
    let mut req = requirement_blocks(&uv_txt, &|n| projects.contains_key(n));
    for f in [
        "mock-2.0.0.tar.gz",
        "pdm_backend-2.4.5.tar.gz",
        "tomli-2.3.0.tar.gz",
    ] {
        let (name, version) = f.trim_end_matches(".tar.gz").rsplit_once('-').unwrap();
        req.push_str(&format!(
            "{name}=={version} --hash=sha256:{}\n",
            sha256_of(f)
        ));
    }
    req.push_str(&format!(
        "alpha==2.0 --hash=sha256:{}\nbeta==1.0 --hash=sha256:{}\n",
        "a".repeat(64),
        "b".repeat(64)
    ));
    let req_path = dir.join("requirements.txt");
    std::fs::write(&req_path, &req).unwrap();
    let wanted: Vec<String> = req
        .lines()
        .filter(|l| !l.starts_with([' ', '#']) && l.contains("=="))
        .map(|l| {
            l.split("==")
                .next()
                .unwrap()
                .to_ascii_lowercase()
                .replace('_', "-")
        })
        .filter(|n| n != "alpha" && n != "beta")
        .collect();
    assert!(wanted.len() >= 10, "{wanted:?}");
    let out = dir.join("out");
    let started = Instant::now();
    let first = build_all(&req_path, &out, &server.index(), &dir.join("sdists"), &[]);
    let first_secs = started.elapsed().as_secs_f64();
    let s = common::summary(&out);
    assert_eq!(first.status.code(), Some(5), "{}", text(&first));
    assert_eq!(s["schema_version"], 2);
    assert_eq!(s["lock"]["format"], "requirements");
    assert_eq!(s["lock"]["index"], server.index());
    assert_eq!(s["counts"]["built"], wanted.len(), "{}", text(&first));
    assert_eq!(s["counts"]["refused"], 2, "{}", text(&first));
    for name in &wanted {
        let e = entry_named(&s, name);
        assert_eq!(e["status"], "built", "{e:#}");
        let src = &e["source"];
        assert_eq!(src["source"], "fetched", "{e:#}");
        assert_eq!(src["pinned"], true);
        assert_eq!(
            src["sha256"], e["sha256"],
            "the build verified the fetched file"
        );
        assert!(
            src["url"].as_str().unwrap().starts_with(&server.base()),
            "{src}"
        );
        assert!(e["origin"].as_str().unwrap().contains("requirements.txt:"));
    }
    let missing = entry_named(&s, "alpha");
    assert_eq!(missing["status"], "refused");
    let why = missing["reason"].as_str().unwrap();
    assert!(
        why.contains("no sdist of alpha==2.0") && why.contains("1.0"),
        "{why}"
    );
    let wrong = entry_named(&s, "beta");
    assert_eq!(wrong["status"], "refused");
    assert!(
        wrong["reason"].as_str().unwrap().contains("sha256"),
        "{wrong:#}"
    );
    let err = String::from_utf8_lossy(&first.stderr);
    assert!(err.contains("fetched colorama 0.4.6"), "{err}");
    assert!(err.contains("sdists (from the lock file):"), "{err}");
    println!(
        "requirements: {} projects fetched, verified and built, 2 refused, in {first_secs:.0} s",
        wanted.len()
    );

    // 2. uv's pylock.toml of the same projects (its own URLs, rewritten to
    // the local server; its tomli entry is for Python < 3.11): a fresh
    // sdist cache, the same OUT, so every entry is fetched and verified
    // again and the builds are the first run's (resumed).
    let pylock_text = std::fs::read_to_string(locks.join("pylock.uv-export.toml"))
        .unwrap()
        .replace("https://files.invalid/", &format!("{}/", server.base()));
    let mut doc: toml::Table = toml::from_str(&pylock_text).unwrap();
    let packages = doc["packages"].as_array_mut().unwrap();
    packages.retain(|p| projects.contains_key(p["name"].as_str().unwrap()));
    let in_pylock = packages.len();
    assert!(in_pylock >= 7, "{in_pylock}");
    let pylock = dir.join("pylock.toml");
    std::fs::write(&pylock, toml::to_string(&doc).unwrap()).unwrap();
    let second = build_all(&pylock, &out, &server.index(), &dir.join("sdists-2"), &[]);
    assert_eq!(second.status.code(), Some(0), "{}", text(&second));
    let s2 = common::summary(&out);
    assert_eq!(s2["lock"]["format"], "pylock");
    let excluded = s2["lock"]["excluded"].as_array().unwrap().len();
    let entries = s2["entries"].as_array().unwrap();
    assert_eq!(entries.len() + excluded, in_pylock, "{s2:#}");
    for e in entries {
        assert_eq!(e["status"], "skipped", "{e:#}");
        assert_eq!(e["source"]["source"], "fetched", "{e:#}");
        assert!(
            e["source"]["url"].as_str().unwrap().contains("/packages/"),
            "{e:#}"
        );
    }
    println!(
        "pylock: {} fetched and verified from the lock's URLs (resumed), {excluded} not for this Python",
        entries.len()
    );

    // 3. Every project from the generated index, with pip and with uv.
    let index_url = index_out(&out);
    let mut names: Vec<&str> = wanted.iter().map(String::as_str).collect();
    names.sort();
    let check = format!(
        "import importlib.metadata as m\nfor n in {names:?}: m.version(n)\nprint('installed', len({names:?}))"
    );
    let mut args = vec!["--no-deps"];
    args.extend(&names);
    pip_install(&dir.join("venv-pip"), &index_url, &args, &check);
    println!("pip installed {} projects from {index_url}", names.len());
    let Some(tools) = publishing_tools(dir) else {
        return;
    };
    uv_install(&tools, &dir.join("venv-uv"), &index_url, &args, &check);
    println!("uv installed {} projects from {index_url}", names.len());
}

/// A canary sdist fetched through a lock and built: its setup.py runs (in
/// the sandbox) and tries to write a host file; the file never appears.
#[test]
fn nothing_fetched_runs_on_the_host() {
    if !common::ready_for_builds() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let canary = dir.join("CANARY-ran-on-host");
    let attack = format!(
        "print('CANARY-SETUP-RAN')\ntry:\n    open({:?}, 'w').write('ran')\nexcept OSError as e:\n    print('CANARY-DENIED', e)",
        canary.display().to_string()
    );
    let sdist = Sdist::setuptools_with("canary-pkg", &attack).write(dir);
    let sha = sdist_box::archive::sha256_file(&sdist).unwrap();
    let server = IndexServer::start(dir, json!({"canary-pkg": [listed(&sdist)]}));
    let lock = dir.join("requirements.txt");
    std::fs::write(&lock, format!("canary-pkg==0.1 --hash=sha256:{sha}\n")).unwrap();
    let out = dir.join("out");
    // The plan needs no network: nothing is asked of the index.
    let plan = build_all(
        &lock,
        &out,
        &server.index(),
        &dir.join("sdists"),
        &["--dry-run"],
    );
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
    assert!(
        String::from_utf8_lossy(&plan.stdout).starts_with("fetch\t"),
        "{}",
        text(&plan)
    );
    assert!(
        !dir.join("index.log").exists()
            || std::fs::read_to_string(dir.join("index.log"))
                .unwrap()
                .is_empty()
    );
    let o = build_all(&lock, &out, &server.index(), &dir.join("sdists"), &[]);
    let s = common::summary(&out);
    let e = entry_named(&s, "canary-pkg");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(e["status"], "built", "{e:#}");
    assert_eq!(e["source"]["source"], "fetched");
    let log = std::fs::read_to_string(out.join(e["log"].as_str().unwrap())).unwrap();
    assert!(
        log.contains("CANARY-SETUP-RAN"),
        "setup.py ran, in the sandbox: {log}"
    );
    assert!(!canary.exists(), "package code ran on the host");
}

/// One link of a chain: `name` 1.0 requiring `next` 1.0 (setuptools).
fn chain_link(dir: &Path, name: &str, next: Option<&str>) -> PathBuf {
    let module = name.replace('-', "_");
    let requires = next.map(|n| format!("'{n}==1.0'")).unwrap_or_default();
    let setup = format!(
        "from setuptools import setup\nsetup(name={name:?}, version='1.0', py_modules=[{module:?}], install_requires=[{requires}])\n"
    );
    Sdist::new(name, "1.0")
        .file("setup.py", &setup)
        .file(&format!("{module}.py"), &format!("NAME = {name:?}\n"))
        .write(dir)
}

/// `--with-deps` over chain-a → chain-b → chain-c → chain-d: the closure
/// is built and complete; without chain-d in the lock, the run fails
/// naming it. Then the publishing recipes: pip and uv install chain-a
/// with its dependencies from the generated index, and pip from a local
/// pypiserver the wheels are published to.
#[test]
fn with_deps_builds_a_chain_and_it_installs_from_both_indexes() {
    if !common::ready_for_builds() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let names = ["chain-a", "chain-b", "chain-c", "chain-d"];
    let links: Vec<PathBuf> = names
        .iter()
        .enumerate()
        .map(|(i, n)| chain_link(dir, n, names.get(i + 1).copied()))
        .collect();
    let projects: serde_json::Map<String, Value> = names
        .iter()
        .zip(&links)
        .map(|(n, p)| (n.to_string(), json!([listed(p)])))
        .collect();
    let server = IndexServer::start(dir, Value::Object(projects));
    let pins: Vec<String> = names
        .iter()
        .zip(&links)
        .map(|(n, p)| {
            format!(
                "{n}==1.0 --hash=sha256:{}\n",
                sdist_box::archive::sha256_file(p).unwrap()
            )
        })
        .collect();

    // 1. The lock without chain-d: the closure is not complete.
    let partial = dir.join("partial.txt");
    std::fs::write(&partial, pins[..3].concat()).unwrap();
    let o = build_all(
        &partial,
        &dir.join("out-partial"),
        &server.index(),
        &dir.join("sdists"),
        &["--with-deps"],
    );
    assert_eq!(o.status.code(), Some(5), "{}", text(&o));
    let s = common::summary(&dir.join("out-partial"));
    assert_eq!(s["exit_code"], 5, "the summary says the run's exit code");
    let unresolved = s["lock"]["unresolved"].as_array().unwrap();
    assert_eq!(unresolved.len(), 1, "{s:#}");
    let line = unresolved[0].as_str().unwrap();
    assert!(line.starts_with("chain-d (required by chain-c"), "{line}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("the closure is not complete"));

    // 2. The whole chain: built, the closure complete.
    let full = dir.join("requirements.txt");
    std::fs::write(&full, pins.concat()).unwrap();
    let out = dir.join("out");
    let o = build_all(
        &full,
        &out,
        &server.index(),
        &dir.join("sdists"),
        &["--with-deps"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let s = common::summary(&out);
    assert_eq!(s["counts"]["built"], 4, "{s:#}");
    assert_eq!(s["lock"]["with_deps"], true);
    assert!(
        s["lock"]["unresolved"].as_array().unwrap().is_empty(),
        "{s:#}"
    );
    println!("--with-deps: a chain 4 deep built, closure complete");

    // 3. pip and uv, chain-a with its dependencies, from `sdist-box index`.
    let index_url = index_out(&out);
    let check = "import chain_d; print(chain_d.NAME)";
    pip_install(&dir.join("venv-pip"), &index_url, &["chain-a"], check);
    let Some(tools) = publishing_tools(dir) else {
        return;
    };
    uv_install(
        &tools,
        &dir.join("venv-uv"),
        &index_url,
        &["chain-a"],
        check,
    );

    // 4. The wheels published to a real index server on 127.0.0.1.
    let packages = dir.join("packages");
    std::fs::create_dir_all(&packages).unwrap();
    for e in std::fs::read_dir(&out).unwrap().flatten() {
        if e.file_name().to_string_lossy().ends_with(".whl") {
            std::fs::copy(e.path(), packages.join(e.file_name())).unwrap();
        }
    }
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut server = Command::new(tools.join("bin/pypi-server"))
        .args(["run", "-i", "127.0.0.1", "-p", &port.to_string()])
        .args(["-a", ".", "-P", ".", "--disable-fallback"])
        .arg(&packages)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "pypiserver did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    let url = format!("http://127.0.0.1:{port}/simple/");
    let result = std::panic::catch_unwind(|| {
        pip_install(&dir.join("venv-pypiserver"), &url, &["chain-a"], check)
    });
    let _ = server.kill();
    let _ = server.wait();
    result.unwrap();
    println!("pip installed chain-a and its 3 dependencies from pypiserver at {url}");
}
