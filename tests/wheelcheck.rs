//! Wheel checks and `--check-reproducible`, through the real CLI on real
//! builds: a fixture that ships a `.pth` file, a prebuilt ELF library, a
//! stray top-level module and a console script named `pip` gets each of
//! them reported (as root and as an unprivileged user); markupsafe's C
//! extension is reported as compiled in the build; a pure-Python sdist
//! builds byte-identically twice; a setup.py that stamps the time into a
//! module is reported as not reproducible, naming that module.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{BuildOpts, Sdist};
use serde_json::Value;

const PTH_LINE: &str = "import os; os.environ.setdefault('WCDEMO_PTH_RAN', '1')";

const SETUP: &str = r#"import os
from setuptools import setup
from setuptools.command.build_py import build_py


class build_py_with_extras(build_py):
    # What real packages do to get a .pth file to the top of site-packages
    # (and, here, a module that is not part of the project).
    def run(self):
        super().run()
        for name in ("wcdemo_hook.pth", "stray_helper.py"):
            self.copy_file(name, os.path.join(self.build_lib, name))


setup(
    name="wcdemo",
    version="0.1",
    packages=["wcdemo"],
    package_data={"wcdemo": ["_native.so"]},
    entry_points={"console_scripts": ["wcdemo = wcdemo:main", "pip = wcdemo:main"]},
    cmdclass={"build_py": build_py_with_extras},
)
"#;

/// A real ELF shared library, compiled now (the sdist ships it prebuilt).
fn compile_library(dir: &Path) -> Option<Vec<u8>> {
    let c = dir.join("native.c");
    std::fs::write(&c, "int wcdemo_answer(void) { return 42; }\n").unwrap();
    let so = dir.join("native.so");
    let status = Command::new("cc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(&so)
        .arg(&c)
        .status()
        .ok()?;
    status.success().then(|| std::fs::read(&so).unwrap())
}

fn fixture(dir: &Path) -> Option<PathBuf> {
    let library = compile_library(dir)?;
    assert_eq!(&library[..4], b"\x7fELF");
    Some(
        Sdist::new("wcdemo", "0.1")
            .file("setup.py", SETUP)
            .file("wcdemo/__init__.py", "def main():\n    print('wcdemo')\n")
            .bytes("wcdemo/_native.so", &library)
            .file("wcdemo_hook.pth", &format!("{PTH_LINE}\n/opt/elsewhere\n"))
            .file("stray_helper.py", "HELPER = 1\n")
            .write(dir),
    )
}

fn findings<'a>(report: &'a Value, kind: &str) -> Vec<&'a Value> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == kind)
        .collect()
}

fn validator(schema: &Path) -> jsonschema::Validator {
    let text = std::fs::read_to_string(schema)
        .unwrap()
        .replace(r#"[a-zA-Z]{2}]?$"#, r#"[a-zA-Z]{2}\\]?$"#);
    jsonschema::validator_for(&serde_json::from_str(&text).unwrap()).expect("schema compiles")
}

/// Everything the fixture's wheel carries is reported, with its details.
fn check_fixture_report(report: &Value) {
    let wc = &report["wheel_check"];
    // The .pth file: its first line, and the sdist file it was shipped as.
    let pth = findings(report, "wheel-pth");
    assert_eq!(pth.len(), 1, "{pth:?}");
    assert_eq!(pth[0]["severity"], "review");
    assert_eq!(pth[0]["target"], "wcdemo_hook.pth");
    assert!(
        pth[0]["message"].as_str().unwrap().contains(PTH_LINE),
        "{}",
        pth[0]["message"]
    );
    assert_eq!(pth[0]["origin"]["file"], "wcdemo_hook.pth");
    assert_eq!(pth[0]["origin"]["line"], 1);
    assert_eq!(pth[0]["origin"]["supplied_by"], "wheel-check");
    assert_eq!(wc["pth_files"][0]["first_line"], PTH_LINE);
    assert_eq!(wc["pth_files"][0]["import_lines"], 1);

    // The library: prebuilt, shipped in the sdist at its path.
    let native = findings(report, "wheel-native");
    assert_eq!(native.len(), 1, "{native:?}");
    assert_eq!(native[0]["severity"], "review");
    assert_eq!(native[0]["target"], "wcdemo/_native.so");
    assert!(
        native[0]["message"]
            .as_str()
            .unwrap()
            .contains("prebuilt, shipped in the sdist at wcdemo/_native.so"),
        "{}",
        native[0]["message"]
    );
    assert_eq!(wc["native"][0]["provenance"], "prebuilt");
    assert_eq!(wc["native"][0]["format"], "elf");
    assert_eq!(wc["native"][0]["sdist_path"], "wcdemo/_native.so");

    // Commands: both listed; `pip` shadows pip.
    let eps = wc["entry_points"].as_array().unwrap();
    let ep = |name: &str| {
        eps.iter()
            .find(|e| e["name"] == name && e["group"] == "console_scripts")
            .unwrap_or_else(|| panic!("no console script {name}: {eps:?}"))
    };
    assert_eq!(ep("pip")["shadows"], "pip");
    assert_eq!(ep("pip")["value"], "wcdemo:main");
    assert_eq!(ep("wcdemo")["shadows"], Value::Null);
    let commands = findings(report, "wheel-entry-point");
    let severity = |target: &str| {
        commands
            .iter()
            .find(|f| f["target"] == target)
            .map(|f| f["severity"].as_str().unwrap().to_string())
    };
    assert_eq!(severity("pip").as_deref(), Some("review"));
    assert_eq!(severity("wcdemo").as_deref(), Some("notice"));

    // The module the project does not own, and nothing else.
    let layout = findings(report, "wheel-layout");
    let targets: Vec<&str> = layout
        .iter()
        .map(|f| f["target"].as_str().unwrap())
        .collect();
    assert_eq!(targets, vec!["stray_helper.py"], "{layout:?}");
    assert_eq!(wc["top_level"], serde_json::json!(["wcdemo"]));
    assert_eq!(wc["top_level_from"], "top-level-txt");

    // setuptools wrote a RECORD that matches.
    assert_eq!(wc["record"]["problems_total"], 0, "{}", wc["record"]);
    assert!(findings(report, "wheel-record").is_empty());
}

#[test]
fn a_wheel_with_a_pth_file_and_a_prebuilt_library_is_reported() {
    if !common::ready_for_builds() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let Some(sdist) = fixture(tmp.path()) else {
        require!(false, "no C compiler (cc) to make the prebuilt library");
        return;
    };
    let out = tmp.path().join("out");
    let sarif = tmp.path().join("report.sarif");
    let events = tmp.path().join("events.jsonl");
    let built = common::build(
        &sdist,
        &out,
        BuildOpts {
            extra_args: vec![
                "--fail-on".into(),
                "review".into(),
                "--report".into(),
                sarif.display().to_string(),
                "--events".into(),
                events.display().to_string(),
            ],
            ..Default::default()
        },
    );
    assert_eq!(built.status(), "built", "{}", built.describe());
    let report = built.report.as_ref().unwrap();
    check_fixture_report(report);
    // Nothing was blocked: only the wheel findings make `--fail-on review`
    // exit 1 (the default, `blocked`, would exit 0).
    assert!(
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["severity"] == "review" || f["severity"] == "notice"),
        "{}",
        report["findings"]
    );
    assert_eq!(built.code(), 1, "{}", built.describe());
    let stderr = built.stderr();
    assert!(stderr.contains("REVIEW  wheel-pth"), "{stderr}");
    assert!(
        stderr.contains("1 native (0 compiled here, 1 prebuilt), 2 command(s), 1 .pth file(s)"),
        "the summary counts what the wheel holds: {stderr}"
    );
    assert!(
        stderr.contains("sdist: wcdemo/_native.so"),
        "the text names the sdist file: {stderr}"
    );

    // The wheel-check stage event carries the counts.
    let end: Value = std::fs::read_to_string(&events)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|e| e["stage"] == "wheel-check" && e["event"] == "end")
        .expect("a wheel-check end event");
    let checks = &end["detail"]["checks"];
    assert_eq!(checks["pth_files"], 1, "{end}");
    assert_eq!(checks["native_prebuilt"], 1, "{end}");
    assert_eq!(checks["native_compiled"], 0, "{end}");
    assert_eq!(checks["outside"], 1, "{end}");
    assert_eq!(checks["record_problems"], 0, "{end}");
    assert_eq!(end["detail"]["wheel"]["sha256"], report["wheel"]["sha256"]);

    // The report and the SARIF stay valid.
    let v = validator(&common::repo().join("schema/report.schema.json"));
    common::assert_valid(&v, report, "the report");
    let sarif_schema = common::repo().join("tests/.cache/sarif-schema-2.1.0.json");
    require!(
        sarif_schema.exists(),
        "the SARIF schema was not fetched (scripts/setup-tests needs npm)"
    );
    let log: Value = serde_json::from_str(&std::fs::read_to_string(&sarif).unwrap()).unwrap();
    common::assert_valid(&validator(&sarif_schema), &log, "the SARIF log");
    let results = log["runs"][0]["results"].as_array().unwrap();
    let pth = results
        .iter()
        .find(|r| r["ruleId"] == "review/wheel-pth")
        .expect("a SARIF result for the .pth file");
    assert_eq!(pth["level"], "warning");
    let loc = &pth["locations"][0]["physicalLocation"];
    assert_eq!(loc["artifactLocation"]["uri"], "wcdemo_hook.pth");
    assert_eq!(loc["region"]["startLine"], 1);
}

#[test]
fn wheel_checks_work_for_an_unprivileged_user() {
    if !common::ready_for_builds() {
        return;
    }
    require!(common::is_root(), "needs root to switch to the test user");
    let Some(user) = common::test_user() else {
        require!(
            false,
            "no user sdistbox-test (scripts/setup-tests creates it)"
        );
        return;
    };
    let tmp = common::tempdir_for(Some(user));
    let Some(sdist) = fixture(tmp.path()) else {
        require!(false, "no C compiler (cc) to make the prebuilt library");
        return;
    };
    Command::new("chmod")
        .args(["-R", "a+rX"])
        .arg(tmp.path())
        .status()
        .unwrap();
    let wheelhouse = tmp.path().join("wh");
    Command::new("cp")
        .arg("-a")
        .arg(common::wheelhouse().unwrap())
        .arg(&wheelhouse)
        .status()
        .unwrap();
    Command::new("chmod")
        .args(["-R", "a+rX"])
        .arg(&wheelhouse)
        .status()
        .unwrap();
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    std::os::unix::fs::chown(&out, Some(user.0), Some(user.1)).unwrap();
    let cache = tmp.path().join("cache");
    std::fs::create_dir(&cache).unwrap();
    std::os::unix::fs::chown(&cache, Some(user.0), Some(user.1)).unwrap();
    let built = common::build(
        &sdist,
        &out,
        BuildOpts {
            as_user: Some(user),
            python: Some("/usr/bin/python3".into()),
            cache: Some(cache),
            wheelhouse: Some(wheelhouse),
            env: vec![("HOME".into(), tmp.path().display().to_string())],
            ..Default::default()
        },
    );
    assert_eq!(built.status(), "built", "{}", built.describe());
    let report = built.report.as_ref().unwrap();
    assert_eq!(
        report["sandbox"]["enforcement"]["host_uid"].as_u64(),
        Some(u64::from(user.0))
    );
    check_fixture_report(report);
    // The default --fail-on (blocked) does not fail on wheel findings.
    assert_eq!(built.code(), 0, "{}", built.describe());
}

fn real_sdist(name: &str) -> Option<PathBuf> {
    let p = common::sdist_cache().join(name);
    if p.exists() {
        return Some(p);
    }
    if std::env::var_os(common::REQUIRE_ALL).is_some() {
        panic!("{} is missing (run scripts/setup-tests)", p.display());
    }
    eprintln!(
        "skipped: {} is missing (run scripts/setup-tests)",
        p.display()
    );
    None
}

#[test]
fn markupsafe_extension_is_reported_as_compiled_in_the_build() {
    if !common::ready_for_builds() {
        return;
    }
    let Some(sdist) = real_sdist("markupsafe-3.0.3.tar.gz") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let built = common::build(
        &sdist,
        &tmp.path().join("out"),
        BuildOpts {
            // A failed compile must not fall back to a pure wheel.
            extra_args: vec!["--env".into(), "CIBUILDWHEEL=1".into()],
            ..Default::default()
        },
    );
    assert_eq!(built.status(), "built", "{}", built.describe());
    let report = built.report.as_ref().unwrap();
    let native = report["wheel_check"]["native"].as_array().unwrap();
    assert_eq!(native.len(), 1, "{native:?}");
    let so = native[0]["path"].as_str().unwrap();
    assert!(
        so.starts_with("markupsafe/_speedups.") && so.ends_with(".so"),
        "{so}"
    );
    assert_eq!(native[0]["provenance"], "compiled");
    assert_eq!(native[0]["sdist_path"], Value::Null);
    let f = findings(report, "wheel-native");
    assert_eq!(f.len(), 1);
    assert_eq!(f[0]["severity"], "notice");
    assert!(
        f[0]["message"]
            .as_str()
            .unwrap()
            .contains("compiled during this build")
    );
    // A real package's wheel has nothing to review.
    let review: Vec<&Value> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] == "review")
        .collect();
    assert!(review.is_empty(), "{review:?}");
    assert_eq!(report["wheel_check"]["record"]["problems_total"], 0);
}

#[test]
fn a_pure_python_sdist_builds_reproducibly() {
    if !common::ready_for_builds() {
        return;
    }
    let Some(sdist) = real_sdist("tomli-2.3.0.tar.gz") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let built = common::build(
        &sdist,
        &out,
        BuildOpts {
            extra_args: vec![
                "--check-reproducible".into(),
                "--fail-on".into(),
                "review".into(),
            ],
            ..Default::default()
        },
    );
    assert_eq!(built.status(), "built", "{}", built.describe());
    let report = built.report.as_ref().unwrap();
    let r = &report["reproducible"];
    assert_eq!(r["verdict"], "identical", "{r}");
    assert_eq!(r["source_date_epoch"], "315532800");
    assert_eq!(r["source_date_epoch_from"], "default");
    assert_eq!(r["first_sha256"], r["second_sha256"]);
    assert_eq!(r["first_sha256"], report["wheel"]["sha256"]);
    assert_eq!(built.code(), 0, "{}", built.describe());
    assert!(
        built.stderr().contains("reproducible yes"),
        "{}",
        built.stderr()
    );
    // The wheel's entries carry the fixed epoch (1980-01-01).
    let listing = Command::new("python3")
        .args([
            "-c",
            "import sys, zipfile; print(set(i.date_time[:3] for i in zipfile.ZipFile(sys.argv[1]).infolist()))",
        ])
        .arg(built.wheel().unwrap())
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&listing.stdout).trim(),
        "{(1980, 1, 1)}"
    );
    // Only the first build's outputs are left.
    let left: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_build_that_stamps_the_time_is_not_reproducible() {
    if !common::ready_for_builds() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let setup = "import os, time\nfrom setuptools import setup\n\nos.makedirs('stamppkg', exist_ok=True)\nwith open('stamppkg/_stamp.py', 'w') as f:\n    f.write('BUILT_AT = %r\\nNONCE = %r\\n' % (time.time_ns(), os.urandom(8).hex()))\n\nsetup(name='stamppkg', version='0.1', packages=['stamppkg'])\n";
    let sdist = Sdist::new("stamppkg", "0.1")
        .file("setup.py", setup)
        .file("stamppkg/__init__.py", "")
        .write(tmp.path());
    let built = common::build(
        &sdist,
        &tmp.path().join("out"),
        BuildOpts {
            extra_args: vec![
                "--check-reproducible".into(),
                "--fail-on".into(),
                "review".into(),
            ],
            ..Default::default()
        },
    );
    assert_eq!(built.status(), "built", "{}", built.describe());
    let report = built.report.as_ref().unwrap();
    let r = &report["reproducible"];
    assert_eq!(r["verdict"], "different", "{r}");
    common::assert_valid(
        &validator(&common::repo().join("schema/report.schema.json")),
        report,
        "a report with a reproducible section",
    );
    assert_ne!(r["first_sha256"], r["second_sha256"]);
    let content: Vec<&str> = r["differences"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["aspect"] == "content")
        .map(|d| d["path"].as_str().unwrap())
        .collect();
    assert!(content.contains(&"stamppkg/_stamp.py"), "{r}");
    // Nothing but the stamp and the RECORD that hashes it differ.
    assert!(
        content
            .iter()
            .all(|p| *p == "stamppkg/_stamp.py" || p.ends_with(".dist-info/RECORD")),
        "{content:?}"
    );
    let f = findings(report, "not-reproducible");
    assert_eq!(f.len(), 1);
    assert_eq!(f[0]["severity"], "review");
    assert!(
        f[0]["message"]
            .as_str()
            .unwrap()
            .contains("stamppkg/_stamp.py (content)")
    );
    assert_eq!(built.code(), 1, "{}", built.describe());
    let stderr = built.stderr();
    assert!(
        stderr.contains("reproducible NO") && stderr.contains("stamppkg/_stamp.py"),
        "{stderr}"
    );
    // The first build's wheel is the output.
    let wheel = built.wheel().unwrap();
    let sha = sdist_box::archive::sha256_file(&wheel).unwrap();
    assert_eq!(r["first_sha256"], sha.as_str());
}
