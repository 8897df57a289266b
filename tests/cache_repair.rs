//! A damaged cache is noticed and made anew, never blamed on the package:
//! a module deleted from a build env, its interpreter link emptied, a
//! directory made mode 000, a garbled compiled shim. Each is followed by a
//! build that succeeds and whose report says the env was repaired.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::{BuildOpts, Sdist};

/// A setuptools sdist (its env holds setuptools, so there is a module to
/// delete that the build really needs).
fn sdist(dir: &Path) -> PathBuf {
    Sdist::setuptools_with("cache-victim", "").write(dir)
}

fn build(sdist: &Path, out: &Path, cache: &Path) -> common::Built {
    let _ = std::fs::remove_dir_all(out);
    std::fs::create_dir_all(out).unwrap();
    common::build(
        sdist,
        out,
        BuildOpts {
            cache: Some(cache.to_path_buf()),
            ..Default::default()
        },
    )
}

/// The build envs in a cache (the one with setuptools in it).
fn setuptools_env(cache: &Path) -> PathBuf {
    std::fs::read_dir(cache.join("envs"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.is_dir()
                && !common::walk(p)
                    .iter()
                    .all(|f| !f.ends_with("setuptools/__init__.py"))
        })
        .expect("a build env with setuptools")
}

fn site(env: &Path) -> PathBuf {
    std::fs::read_dir(env.join("lib"))
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path()
        .join("site-packages")
}

#[test]
fn a_damaged_build_env_is_rebuilt_and_the_report_says_so() {
    if !common::ready_for_builds() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let sdist = sdist(tmp.path());
    let out = tmp.path().join("out");
    let first = build(&sdist, &out, &cache);
    assert_eq!(first.code(), 0, "{}", first.describe());
    type Damage = fn(&Path);
    let damages: &[(&str, Damage)] = &[
        ("a deleted module", |env| {
            std::fs::remove_file(site(env).join("setuptools/__init__.py")).unwrap()
        }),
        ("an empty bin/python", |env| {
            std::fs::remove_file(env.join("bin/python")).unwrap();
            std::fs::write(env.join("bin/python"), "").unwrap();
        }),
        ("a missing site-packages", |env| {
            std::fs::remove_dir_all(site(env)).unwrap()
        }),
        ("a mode-000 env", |env| {
            std::fs::set_permissions(env, std::fs::Permissions::from_mode(0o000)).unwrap()
        }),
    ];
    for (what, damage) in damages {
        damage(&setuptools_env(&cache));
        let again = build(&sdist, &out, &cache);
        assert_eq!(again.code(), 0, "{what}: {}", again.describe());
        let report = again.report.as_ref().unwrap();
        let repaired = report["build_env"]["repaired"].as_str().unwrap_or("");
        assert!(
            !repaired.is_empty(),
            "{what}: the report does not say: {}",
            report["build_env"]
        );
        assert!(
            again.stderr().contains("damaged"),
            "{what}: {}",
            again.stderr()
        );
        // Repaired once; the next build reuses it as it is.
        let third = build(&sdist, &out, &cache);
        assert_eq!(third.code(), 0, "{what}: {}", third.describe());
        let env = &third.report.as_ref().unwrap()["build_env"];
        assert_eq!(env["reused"], true, "{what}: {env}");
        assert!(env["repaired"].is_null(), "{what}: {env}");
    }
}

#[test]
fn a_garbled_compiled_shim_is_rebuilt_not_blamed_on_the_package() {
    if !common::ready_for_builds() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let sdist = sdist(tmp.path());
    let out = tmp.path().join("out");
    let first = build(&sdist, &out, &cache);
    assert_eq!(first.code(), 0, "{}", first.describe());
    let pycs: Vec<PathBuf> = common::walk(&cache.join("shim"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "pyc"))
        .collect();
    assert!(!pycs.is_empty());
    for pyc in &pycs {
        let mut bytes = std::fs::read(pyc).unwrap();
        for b in bytes.iter_mut().skip(16) {
            *b = 0x5a;
        }
        std::fs::write(pyc, bytes).unwrap();
    }
    let again = build(&sdist, &out, &cache);
    assert_eq!(again.code(), 0, "{}", again.describe());
    assert_eq!(again.status(), "built", "{}", again.describe());
}
