//! The trusted stage: build requirements installed by pip outside the
//! sandbox, whatever pip settings the caller's shell has.

mod common;

use common::BuildOpts;

#[test]
fn pip_settings_that_move_the_install_do_not_reach_pip() {
    if !common::ready_for_builds() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("pip-target");
    let sdist = common::repo().join("examples/hello_box-0.1.0.tar.gz");
    // A fresh cache, so pip really runs.
    let built = common::build(
        &sdist,
        &dir.path().join("dist"),
        BuildOpts {
            cache: Some(dir.path().join("cache")),
            env: vec![
                ("PIP_TARGET".into(), target.display().to_string()),
                ("PIP_USER".into(), "1".into()),
                ("PIP_NO_BINARY".into(), ":all:".into()),
            ],
            ..BuildOpts::default()
        },
    );
    assert_eq!(built.code(), 0, "{}", built.describe());
    assert!(!target.exists(), "pip installed into PIP_TARGET");
    let report = built.report.unwrap();
    let installed = report["build_env"]["installed"].to_string();
    assert!(installed.contains("flit"), "{installed}");
}
