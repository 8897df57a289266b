//! Reports: the JSON report validates against schema/report.schema.json, the
//! SARIF output against the official SARIF 2.1.0 schema, the terminal output
//! is escaped and colourless when it should be, and `--fail-on` picks the
//! exit code.

mod common;

use std::path::Path;
use std::process::Command;

use common::Sdist;
use serde_json::Value;

fn ready() -> bool {
    common::ready_for_builds()
}

fn validator(schema_path: &Path) -> jsonschema::Validator {
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(schema_path).unwrap()).unwrap();
    jsonschema::validator_for(&schema).expect("the schema compiles")
}

const ATTACK: &str = "import os, socket\nfrom setuptools import setup\ntry:\n    socket.create_connection(('127.0.0.1', 9), timeout=2)\nexcept OSError:\n    pass\nos.system('echo \\x1b[2Jhidden')\nsetup(name='rep', version='0.1', py_modules=[])\n";

fn build(dir: &Path, sdist: &Path, extra: &[&str]) -> (i32, String, String) {
    let out = Command::new(common::bin())
        .arg("build")
        .arg(sdist)
        .arg("-o")
        .arg(dir.join("out"))
        .arg("--find-links")
        .arg(common::wheelhouse().unwrap())
        .arg("--no-index")
        .arg("--cache-dir")
        .arg(common::env_cache())
        .args(extra)
        .env_remove("NO_COLOR")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn json_reports_validate_against_the_schema() {
    if !ready() {
        return;
    }
    let v = validator(&common::repo().join("schema/report.schema.json"));
    let tmp = tempfile::tempdir().unwrap();
    let attack = Sdist::new("rep", "0.1")
        .file("setup.py", ATTACK)
        .write(tmp.path());
    let (code, stdout, _) = build(tmp.path(), &attack, &["--format", "json"]);
    assert_eq!(code, 1);
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert!(!report["findings"].as_array().unwrap().is_empty());
    common::assert_valid(&v, &report, "a report with findings");
    let beside: Value = serde_json::from_str(
        &std::fs::read_to_string(tmp.path().join("out/rep-0.1.sdist-box.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(beside["input"]["sha256"], report["input"]["sha256"]);

    let broken = Sdist::new("broken", "0.1")
        .file("setup.py", "raise SystemExit('no')\n")
        .write(tmp.path());
    let (code, stdout, _) = build(tmp.path(), &broken, &["--format", "json"]);
    assert_eq!(code, 3);
    common::assert_valid(
        &v,
        &serde_json::from_str(&stdout).unwrap(),
        "a failed build's report",
    );

    // The schema is strict enough to catch a wrong report.
    let mut wrong = report.clone();
    wrong["findings"][0]["severity"] = Value::from("catastrophic");
    assert!(!v.is_valid(&wrong));
    let mut wrong = report;
    wrong["unexpected"] = Value::from(1);
    assert!(!v.is_valid(&wrong));
}

#[test]
fn sarif_validates_and_points_at_the_offending_line() {
    if !ready() {
        return;
    }
    let schema = common::repo().join("tests/.cache/sarif-schema-2.1.0.json");
    require!(
        schema.exists(),
        "the SARIF schema was not fetched (scripts/setup-tests needs npm)"
    );
    // The official schema's `language` patterns are valid ECMA-262 but not
    // valid for the Rust regex engine (an unescaped literal `]`): escape it,
    // which keeps their meaning.
    let text = std::fs::read_to_string(&schema)
        .unwrap()
        .replace(r#"[a-zA-Z]{2}]?$"#, r#"[a-zA-Z]{2}\\]?$"#);
    let fixed = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(fixed.path(), text).unwrap();
    let v = validator(fixed.path());
    let tmp = tempfile::tempdir().unwrap();
    let attack = Sdist::new("rep", "0.1")
        .file("setup.py", ATTACK)
        .write(tmp.path());
    let sarif_path = tmp.path().join("rep.sarif");
    let (code, stdout, _) = build(
        tmp.path(),
        &attack,
        &[
            "--format",
            "sarif",
            "--report",
            sarif_path.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 1);
    let sarif: Value = serde_json::from_str(&stdout).unwrap();
    common::assert_valid(&v, &sarif, "the SARIF log");
    let mut broken = sarif.clone();
    broken["runs"][0]["results"][0]["level"] = Value::from("catastrophic");
    assert!(
        !v.is_valid(&broken),
        "the SARIF schema check could not fail"
    );
    let file: Value = serde_json::from_str(&std::fs::read_to_string(&sarif_path).unwrap()).unwrap();
    assert_eq!(file["runs"][0]["results"], sarif["runs"][0]["results"]);
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    let connect = results
        .iter()
        .find(|r| r["ruleId"] == "blocked/net-connect")
        .expect("a blocked connect result");
    let loc = &connect["locations"][0]["physicalLocation"];
    assert_eq!(loc["artifactLocation"]["uri"], "setup.py");
    assert_eq!(loc["region"]["startLine"], 4);
    assert!(
        loc["region"]["snippet"]["text"]
            .as_str()
            .unwrap()
            .contains("create_connection")
    );
    assert_eq!(connect["level"], "error");
}

#[test]
fn terminal_output_is_escaped_and_colourless_off_a_tty() {
    if !ready() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let attack = Sdist::new("rep", "0.1")
        .file("setup.py", ATTACK)
        .write(tmp.path());
    let (_, _, stderr) = build(tmp.path(), &attack, &[]);
    assert!(
        !stderr.contains('\u{1b}'),
        "raw escape on the terminal: {stderr:?}"
    );
    assert!(stderr.contains("\\u{1b}[2Jhidden"), "{stderr}");
    assert!(stderr.contains("BLOCKED net-connect"), "{stderr}");
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| {
            l.starts_with("  BLOCKED") || l.starts_with("  EVASION") || l.starts_with("  ALLOWED")
        })
        .collect();
    let first_allowed = lines
        .iter()
        .position(|l| l.starts_with("  ALLOWED"))
        .unwrap_or(lines.len());
    assert!(
        lines[..first_allowed]
            .iter()
            .all(|l| !l.starts_with("  ALLOWED"))
    );
    assert!(
        lines[first_allowed..]
            .iter()
            .all(|l| l.starts_with("  ALLOWED")),
        "not ordered by severity: {lines:?}"
    );
}

#[test]
fn fail_on_chooses_the_exit_code() {
    if !ready() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let attack = Sdist::new("rep", "0.1")
        .file("setup.py", ATTACK)
        .write(tmp.path());
    assert_eq!(
        build(tmp.path(), &attack, &[]).0,
        1,
        "default: blocked fails"
    );
    assert_eq!(build(tmp.path(), &attack, &["--fail-on", "never"]).0, 0);
    assert_eq!(
        build(tmp.path(), &attack, &["--fail-on", "evasion"]).0,
        0,
        "no evasion here"
    );
    assert_eq!(
        build(tmp.path(), &attack, &["--fail-on", "review"]).0,
        1,
        "review includes blocked"
    );
    let benign = Sdist::new("ben", "0.1")
        .file(
            "setup.py",
            "import subprocess, sys\nfrom setuptools import setup\nsubprocess.run([sys.executable, '-c', 'pass'])\nsetup(name='ben', version='0.1', py_modules=[])\n",
        )
        .write(tmp.path());
    assert_eq!(build(tmp.path(), &benign, &[]).0, 0);
    assert_eq!(
        build(tmp.path(), &benign, &["--fail-on", "review"]).0,
        0,
        "its wheel carries nothing to review"
    );
    assert_eq!(
        build(tmp.path(), &benign, &["--fail-on", "any"]).0,
        1,
        "the exec is a notice"
    );
}

#[test]
fn colour_only_on_a_terminal_and_never_with_no_color() {
    if !ready() {
        return;
    }
    require!(
        Path::new("/usr/bin/script").exists(),
        "util-linux `script` is missing (for a pseudo-terminal)"
    );
    let tmp = tempfile::tempdir().unwrap();
    let attack = Sdist::new("rep", "0.1")
        .file("setup.py", ATTACK)
        .write(tmp.path());
    let run = |no_color: bool| -> String {
        let cmd = format!(
            "{} build {} -o {} --find-links {} --no-index --cache-dir {}",
            common::bin().display(),
            attack.display(),
            tmp.path().join("out").display(),
            common::wheelhouse().unwrap().display(),
            common::env_cache().display()
        );
        let mut c = Command::new("script");
        c.args(["-qefc", &cmd, "/dev/null"]);
        if no_color {
            c.env("NO_COLOR", "1");
        } else {
            c.env_remove("NO_COLOR");
        }
        let out = c.output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let coloured = run(false);
    assert!(
        coloured.contains("\u{1b}[1;31mBLOCKED"),
        "no colour on a terminal: {coloured:?}"
    );
    let plain = run(true);
    assert!(
        plain.contains("BLOCKED") && !plain.contains("\u{1b}["),
        "colour despite NO_COLOR: {plain:?}"
    );
}
