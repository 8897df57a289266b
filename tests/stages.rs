//! Stage events (`--events`) and the pre-build hook (`--pre-build`), on real
//! builds.

mod common;

use std::path::Path;
use std::process::Command;

use common::{BuildOpts, Sdist};
use sha2::{Digest, Sha256};

fn assert_valid_report(report: &serde_json::Value) {
    common::assert_valid(&common::schema("report.schema.json"), report, "the report");
}

fn read_events(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).expect("the events file exists");
    let schema = common::schema("events.schema.json");
    text.lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).expect("one JSON value per line");
            common::assert_valid(&schema, &v, line);
            v
        })
        .collect()
}

/// `stage` or `stage:hook`, with start/end, in order.
fn sequence(events: &[serde_json::Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| {
            let mut s = format!(
                "{} {}",
                e["event"].as_str().unwrap(),
                e["stage"].as_str().unwrap()
            );
            if let Some(h) = e["hook"].as_str() {
                s.push(':');
                s.push_str(h);
            }
            s
        })
        .collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn real_sdist(filename: &str) -> Option<(std::path::PathBuf, String)> {
    let text = std::fs::read_to_string(common::repo().join("tests/fixtures/sdists.toml")).unwrap();
    let doc: toml::Table = toml::from_str(&text).unwrap();
    let pin = doc["sdist"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["filename"].as_str() == Some(filename))?;
    let path = common::sdist_cache().join(filename);
    path.is_file()
        .then(|| (path, pin["sha256"].as_str().unwrap().to_string()))
}

#[test]
fn events_of_a_real_build_come_in_stage_order_with_the_package_metadata() {
    if !common::ready_for_builds() {
        return;
    }
    // apipkg 1.5: legacy setup.py whose setup_requires (setuptools_scm)
    // comes back from get_requires_for_build_wheel: a second buildenv round.
    let Some((sdist, pinned)) = real_sdist("apipkg-1.5.tar.gz") else {
        require!(
            false,
            "the pinned sdists are not fetched (scripts/setup-tests)"
        );
        return;
    };
    let out = tempfile::tempdir().unwrap();
    let events = out.path().join("events.jsonl");
    let built = common::build(
        &sdist,
        &out.path().join("dist"),
        BuildOpts {
            extra_args: vec![
                "--sha256".into(),
                pinned.clone(),
                "--events".into(),
                events.display().to_string(),
            ],
            ..BuildOpts::default()
        },
    );
    assert_eq!(built.code(), 0, "{}", built.describe());
    let ev = read_events(&events);
    let seq = sequence(&ev);
    let mut expected: Vec<&str> = vec![
        "start verify",
        "end verify",
        "start extract",
        "end extract",
        "start metadata",
        "end metadata",
        "start buildenv",
        "end buildenv",
        "start hook:get_requires_for_build_wheel",
        "end hook:get_requires_for_build_wheel",
    ];
    if seq.get(10).map(String::as_str) == Some("start buildenv") {
        expected.extend(["start buildenv", "end buildenv"]);
    }
    expected.extend([
        "start hook:prepare_metadata_for_build_wheel",
        "end hook:prepare_metadata_for_build_wheel",
        "start hook:build_wheel",
        "end hook:build_wheel",
        "start wheel-check",
        "end wheel-check",
        "end done",
    ]);
    assert_eq!(seq, expected, "{ev:#?}");
    // The dynamic round: setuptools_scm asked for at run time.
    let dynamic = ev
        .iter()
        .find(|e| e["event"] == "end" && e["hook"] == "get_requires_for_build_wheel")
        .unwrap();
    let asked: Vec<&str> = dynamic["detail"]["return"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert!(
        asked
            .iter()
            .any(|r| r.starts_with("setuptools_scm") || r.starts_with("setuptools-scm")),
        "{asked:?}"
    );
    assert_eq!(expected.len(), 19, "apipkg needs the second round: {seq:?}");

    // Numbered without gaps, in time order, every end after its start.
    for (i, e) in ev.iter().enumerate() {
        assert_eq!(e["seq"].as_u64(), Some(i as u64));
        if i > 0 {
            assert!(e["time"].as_f64() >= ev[i - 1]["time"].as_f64());
        }
        if e["event"] == "end" {
            let status = e["status"].as_str().unwrap();
            let want = if e["stage"] == "done" { "built" } else { "ok" };
            assert_eq!(status, want, "{e}");
        }
    }

    // What is known, from when it is known.
    let sha = sha256_hex(&std::fs::read(&sdist).unwrap());
    assert_eq!(sha, pinned);
    let first = &ev[0]["package"];
    assert!(first["sha256"].is_null() && first["name"].is_null());
    assert_eq!(first["filename"], "apipkg-1.5.tar.gz");
    assert_eq!(first["source"], sdist.display().to_string());
    assert_eq!(ev[1]["package"]["sha256"], sha.as_str());
    assert_eq!(ev[1]["package"]["sha256_pinned"], true);
    assert!(ev[2]["package"]["source_dir"].is_null());
    let source_dir = ev[3]["package"]["source_dir"].as_str().unwrap();
    assert!(source_dir.ends_with("/sdist/apipkg-1.5"), "{source_dir}");
    let meta = &ev[5]["package"];
    assert_eq!(meta["name"], "apipkg");
    assert_eq!(meta["version"], "1.5");
    assert_eq!(meta["build_backend"], "setuptools.build_meta:__legacy__");
    assert!(!meta["build_requires"].as_array().unwrap().is_empty());
    // Every event from `metadata` on carries the same package.
    for e in &ev[5..] {
        assert_eq!(&e["package"], meta, "{e}");
    }
    let done = ev.last().unwrap();
    let wheel = built.wheel().unwrap();
    assert_eq!(
        done["detail"]["wheel"]["sha256"],
        sha256_hex(&std::fs::read(&wheel).unwrap()).as_str()
    );
}

#[test]
fn events_to_an_inherited_descriptor_and_a_refusal_ends_the_stream() {
    if !common::ready_for_builds() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("broken-1.0.tar.gz");
    std::fs::write(&bad, b"\x1f\x8b\x08\x00 this is not gzip data").unwrap();
    let events = dir.path().join("events.jsonl");
    let status = Command::new("sh")
        .arg("-c")
        .arg("exec \"$0\" build \"$1\" -o \"$2\" --events fd:3 --format json 3>\"$3\" >/dev/null 2>&1")
        .arg(common::bin())
        .arg(&bad)
        .arg(dir.path().join("dist"))
        .arg(&events)
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(5), "a corrupt archive is refused");
    let ev = read_events(&events);
    assert_eq!(
        sequence(&ev),
        [
            "start verify",
            "end verify",
            "start extract",
            "end extract",
            "end done"
        ]
    );
    assert_eq!(ev[3]["status"], "refused");
    assert!(
        ev[3]["error"]
            .as_str()
            .unwrap()
            .contains("broken-1.0.tar.gz"),
        "{}",
        ev[3]
    );
    assert_eq!(ev[4]["status"], "refused");

    // A descriptor that is not open is a usage error, before anything runs.
    let out = Command::new(common::bin())
        .args(["build"])
        .arg(&bad)
        .args(["--events", "fd:57"])
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("descriptor 57 is not open"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A pre-build hook that vetoes packages by name (from the JSON on its
/// stdin) and patches another.
const HOOK: &str = r#"import json, sys, hashlib, os
meta = json.load(sys.stdin)
pkg = meta["package"]
if pkg["name"] == "vetoed-pkg":
    print("policy: vetoed-pkg is on the deny list", file=sys.stderr)
    sys.exit(3)
if pkg["name"] == "patched-pkg":
    with open("patched_pkg.py", "a") as f:
        f.write("PATCHED = 'by the pre-build hook'\n")
with open(os.environ["HOOK_LOG"], "a") as log:
    log.write(json.dumps({"cwd": os.getcwd(), "meta": meta}) + "\n")
"#;

#[test]
fn pre_build_hook_vetoes_one_package_and_patches_another() {
    if !common::ready_for_builds() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let hook = dir.path().join("hook.py");
    std::fs::write(&hook, HOOK).unwrap();
    let hook_log = dir.path().join("hook.log");
    let command = format!("{} {}", common::python(), hook.display());
    // The vetoed package would leave a marker if any of its code ran.
    let marker = dir.path().join("ran");
    let vetoed = Sdist::setuptools_with(
        "vetoed-pkg",
        &format!("open({:?}, 'w').write('x')", marker.display().to_string()),
    )
    .write(dir.path());
    let patched = Sdist::setuptools_with("patched-pkg", "").write(dir.path());

    let opts = |events: &Path| BuildOpts {
        extra_args: vec![
            "--pre-build".into(),
            command.clone(),
            "--events".into(),
            events.display().to_string(),
        ],
        env: vec![("HOOK_LOG".into(), hook_log.display().to_string())],
        ..BuildOpts::default()
    };

    // Veto: refused before any package code, the report says by whom and why.
    let ev_path = dir.path().join("vetoed.jsonl");
    let built = common::build(&vetoed, &dir.path().join("dist"), opts(&ev_path));
    assert_eq!(built.code(), 5, "{}", built.describe());
    let report = built.report.as_ref().unwrap();
    assert_eq!(report["outcome"]["status"], "refused");
    let reason = report["outcome"]["reason"].as_str().unwrap();
    assert!(reason.contains("pre-build hook"), "{reason}");
    assert!(reason.contains("exited with code 3"), "{reason}");
    assert!(
        reason.contains("vetoed-pkg is on the deny list"),
        "{reason}"
    );
    assert_valid_report(report);
    assert_eq!(report["pre_build"]["verdict"], "vetoed");
    assert_eq!(report["pre_build"]["exit_code"], 3);
    assert!(report["hooks"].as_array().unwrap().is_empty());
    assert!(!marker.exists(), "package code ran despite the veto");
    let seq = sequence(&read_events(&ev_path));
    assert_eq!(seq[6..], ["start pre-build", "end pre-build", "end done"]);
    assert!(built.wheel().is_none());

    // Patch: the wheel has the change; the report lists it with both hashes.
    let ev_path = dir.path().join("patched.jsonl");
    let built = common::build(&patched, &dir.path().join("dist"), opts(&ev_path));
    assert_eq!(built.code(), 0, "{}", built.describe());
    let report = built.report.as_ref().unwrap();
    assert_valid_report(report);
    let pre = &report["pre_build"];
    assert_eq!(pre["verdict"], "allowed");
    assert_eq!(pre["modified"], true);
    let changes = pre["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0]["path"], "patched_pkg.py");
    assert_eq!(changes[0]["before"], sha256_hex(b"VALUE = 1\n").as_str());
    let after = "VALUE = 1\nPATCHED = 'by the pre-build hook'\n";
    assert_eq!(changes[0]["after"], sha256_hex(after.as_bytes()).as_str());
    let run = common::install_and_run(
        &built.wheel().unwrap(),
        "import patched_pkg; print(patched_pkg.PATCHED)",
    );
    assert_eq!(
        String::from_utf8_lossy(&run.stdout).trim(),
        "by the pre-build hook",
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        built.stderr().contains("changed 1 file(s) of the sources"),
        "{}",
        built.stderr()
    );
    let ev = read_events(&ev_path);
    let end = ev
        .iter()
        .find(|e| e["stage"] == "pre-build" && e["event"] == "end")
        .unwrap();
    assert_eq!(end["detail"]["modified"], true);

    // The hook saw the metadata on stdin and ran in the extracted tree.
    let log = std::fs::read_to_string(&hook_log).unwrap();
    let seen: serde_json::Value = serde_json::from_str(log.lines().last().unwrap()).unwrap();
    assert_eq!(seen["meta"]["package"]["name"], "patched-pkg");
    assert_eq!(
        seen["meta"]["package"]["sha256"],
        sha256_hex(&std::fs::read(&patched).unwrap()).as_str()
    );
    assert_eq!(seen["cwd"], seen["meta"]["package"]["source_dir"]);
    assert!(seen["cwd"].as_str().unwrap().ends_with("patched_pkg-0.1"));
}

#[test]
fn a_hanging_pre_build_hook_is_killed_and_the_build_refused() {
    if !common::ready_for_builds() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let sdist = Sdist::setuptools_with("slow-hook", "").write(dir.path());
    let started = std::time::Instant::now();
    let built = common::build(
        &sdist,
        &dir.path().join("dist"),
        BuildOpts {
            extra_args: vec![
                "--pre-build".into(),
                "sleep 600".into(),
                "--pre-build-timeout".into(),
                "1".into(),
            ],
            ..BuildOpts::default()
        },
    );
    assert!(started.elapsed().as_secs() < 60);
    assert_eq!(built.code(), 5, "{}", built.describe());
    let report = built.report.as_ref().unwrap();
    assert_eq!(report["pre_build"]["timed_out"], true);
    assert!(
        report["outcome"]["reason"]
            .as_str()
            .unwrap()
            .contains("did not finish in time"),
        "{report}"
    );
}
