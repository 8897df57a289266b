//! Real sdists from the package index (pinned in tests/fixtures/sdists.toml,
//! fetched by scripts/setup-tests) build in the sandbox, as root and as an
//! unprivileged user, and their wheels install and import.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::BuildOpts;

#[derive(Debug, Clone)]
struct Pin {
    name: String,
    filename: String,
    import_name: String,
    env: Vec<(String, String)>,
    runtime_requires: Vec<String>,
    expect_extension: bool,
}

fn pins() -> Vec<Pin> {
    let text = std::fs::read_to_string(common::repo().join("tests/fixtures/sdists.toml")).unwrap();
    let doc: toml::Table = toml::from_str(&text).unwrap();
    let strings = |v: Option<&toml::Value>| -> Vec<String> {
        v.and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    doc["sdist"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| Pin {
            name: s["name"].as_str().unwrap().to_string(),
            filename: s["filename"].as_str().unwrap().to_string(),
            import_name: s["import_name"].as_str().unwrap().to_string(),
            env: s
                .get("env")
                .and_then(|e| e.as_table())
                .map(|t| {
                    t.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                        .collect()
                })
                .unwrap_or_default(),
            runtime_requires: strings(s.get("runtime_requires")),
            expect_extension: s
                .get("expect_extension")
                .and_then(|v| v.as_bool())
                .unwrap_or(false),
        })
        .collect()
}

fn ready() -> bool {
    let missing: Vec<String> = pins()
        .iter()
        .map(|p| common::sdist_cache().join(&p.filename))
        .filter(|p| !p.exists())
        .map(|p| p.display().to_string())
        .collect();
    if !missing.is_empty() || common::wheelhouse().is_none() {
        let why = format!("test fixtures missing (run scripts/setup-tests): {missing:?}");
        if std::env::var_os(common::REQUIRE_ALL).is_some() {
            panic!("{why}");
        }
        eprintln!("skipped: {why}");
        return false;
    }
    true
}

/// A world-readable copy of `src` (the repo may sit under /root).
fn shared_copy(src: &Path, dest: &Path) -> PathBuf {
    std::fs::create_dir_all(dest).unwrap();
    let status = Command::new("cp")
        .arg("-a")
        .arg(src)
        .arg(dest)
        .status()
        .unwrap();
    assert!(status.success());
    Command::new("chmod")
        .args(["-R", "a+rX"])
        .arg(dest)
        .status()
        .unwrap();
    dest.join(src.file_name().unwrap())
}

fn check_wheel(pin: &Pin, wheel: &Path, wheelhouse: &Path) -> Result<(), String> {
    let listing = Command::new("python3")
        .args([
            "-c",
            "import sys, zipfile; print('\\n'.join(zipfile.ZipFile(sys.argv[1]).namelist()))",
        ])
        .arg(wheel)
        .output()
        .unwrap();
    let names = String::from_utf8_lossy(&listing.stdout).into_owned();
    if pin.expect_extension && !names.lines().any(|n| n.ends_with(".so")) {
        return Err(format!(
            "{}: no compiled extension in the wheel:\n{names}",
            pin.name
        ));
    }
    let mut code = format!(
        "import {0}; print('imported', {0}.__name__)",
        pin.import_name
    );
    if !pin.runtime_requires.is_empty() {
        code = format!(
            "import subprocess, sys, os; subprocess.check_call([sys.executable, '-m', 'pip', 'install', '-q', '--no-index', '--target', os.getcwd(), '--find-links', {wh:?}, *{reqs:?}]); {code}",
            wh = wheelhouse.display().to_string(),
            reqs = pin.runtime_requires
        );
    }
    let out = common::install_and_run(wheel, &code);
    if !out.status.success() {
        return Err(format!(
            "{}: import failed: {}{}",
            pin.name,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

fn build_all(as_user: Option<(u32, u32)>, python: Option<&str>) {
    let tmp = common::tempdir_for(as_user);
    let wheelhouse = shared_copy(&common::wheelhouse().unwrap(), &tmp.path().join("wh"));
    let cache = match as_user {
        None => common::env_cache(),
        Some((uid, _)) => {
            // Kept across runs for speed; owned by the test user.
            let c = std::env::temp_dir().join(format!("sdist-box-test-cache-{uid}"));
            std::fs::create_dir_all(&c).unwrap();
            Command::new("chown")
                .arg("-R")
                .arg(uid.to_string())
                .arg(&c)
                .status()
                .unwrap();
            c
        }
    };
    let mut failures = Vec::new();
    for pin in pins() {
        let sdist = shared_copy(
            &common::sdist_cache().join(&pin.filename),
            &tmp.path().join("sdists"),
        );
        let out = tmp.path().join(format!("out-{}", pin.name));
        std::fs::create_dir_all(&out).unwrap();
        if let Some((uid, gid)) = as_user {
            std::os::unix::fs::chown(&out, Some(uid), Some(gid)).unwrap();
        }
        let mut extra = Vec::new();
        for (k, v) in &pin.env {
            extra.push("--env".to_string());
            extra.push(format!("{k}={v}"));
        }
        let built = common::build(
            &sdist,
            &out,
            BuildOpts {
                as_user,
                python: python.map(str::to_string),
                cache: Some(cache.clone()),
                wheelhouse: Some(wheelhouse.clone()),
                extra_args: extra,
                env: vec![("HOME".into(), tmp.path().display().to_string())],
                ..Default::default()
            },
        );
        if built.status() != "built" {
            failures.push(format!("{} did not build:\n{}", pin.name, built.describe()));
            continue;
        }
        let report = built.report.as_ref().unwrap();
        let layers = report["sandbox"]["enforcement"]["layers"]
            .as_array()
            .unwrap();
        if !layers.iter().all(|l| l["state"] == "enforced") {
            failures.push(format!(
                "{}: not every layer enforced: {layers:?}",
                pin.name
            ));
        }
        let host_uid = report["sandbox"]["enforcement"]["host_uid"]
            .as_u64()
            .unwrap();
        let expected_uid = as_user
            .map(|(u, _)| u as u64)
            .unwrap_or(sdist_box::policy::ROOT_MAPS_TO as u64);
        if common::is_root() && host_uid != expected_uid {
            failures.push(format!(
                "{}: ran as host uid {host_uid}, expected {expected_uid}",
                pin.name
            ));
        }
        // A real package's ordinary build is not an attack: nothing it did
        // may be reported as blocked or as an evasion.
        let serious: Vec<String> = report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["severity"] != "notice")
            .map(|f| format!("{} {} {}", f["severity"], f["kind"], f["target"]))
            .collect();
        if !serious.is_empty() {
            failures.push(format!("{}: benign build reported {serious:?}", pin.name));
        }
        if let Err(e) = check_wheel(&pin, &built.wheel().unwrap(), &wheelhouse) {
            failures.push(e);
        }
    }
    assert!(
        failures.is_empty(),
        "{} failure(s):\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn real_sdists_build_in_the_sandbox_and_import() {
    require!(
        common::userns_available(),
        "user namespaces are disabled on this host"
    );
    if !ready() {
        return;
    }
    build_all(None, None);
}

#[test]
fn real_sdists_build_as_an_unprivileged_user() {
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
    // Debian's interpreter: an unprivileged user cannot reach root's pyenv.
    build_all(Some(user), Some("/usr/bin/python3"));
}

/// tomli 2.0.1 (flit_core) keeps its file times in PAX records and 0 in the
/// ustar fields: an extractor that reads only the header gives 1970, and
/// the backend cannot write the wheel ("ZIP does not support timestamps
/// before 1980"). pip builds it; so must we, with the PAX times kept.
#[test]
fn an_sdist_with_its_file_times_in_pax_records_builds() {
    require!(
        common::userns_available(),
        "user namespaces are disabled on this host"
    );
    let sdist = common::sdist_cache().join("tomli-2.0.1.tar.gz");
    if !sdist.exists() || common::wheelhouse().is_none() {
        let why = "tomli-2.0.1 or the wheelhouse missing (run scripts/setup-tests)";
        if std::env::var_os(common::REQUIRE_ALL).is_some() {
            panic!("{why}");
        }
        eprintln!("skipped: {why}");
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let built = common::build(&sdist, out.path(), BuildOpts::default());
    assert_eq!(built.code(), 0, "{}\n{}", built.stderr(), built.log);
    let wheel = out.path().join("tomli-2.0.1-py3-none-any.whl");
    let mut zip = zip::ZipArchive::new(std::fs::File::open(&wheel).unwrap()).unwrap();
    // The sources' own time (2022-02-08), from the PAX records.
    let member = zip.by_name("tomli/_parser.py").unwrap();
    let when = member.last_modified().unwrap();
    assert_eq!(
        (when.year(), when.month(), when.day()),
        (2022, 2, 8),
        "{when:?}"
    );
}
