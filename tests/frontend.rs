//! sdist-box as a PEP 517 frontend, where it must agree with pip and
//! build: a tree with neither `pyproject.toml` nor `setup.py` is not a
//! Python project, refused before any code runs.

mod common;

use common::{BuildOpts, Sdist};

#[test]
fn a_tree_without_pyproject_or_setup_py_is_refused_before_any_code_runs() {
    if !common::ready_for_builds() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    // build's `test-no-project`: metadata and a module, nothing to build with.
    let sdist = Sdist::new("test_no_project", "0.0.1")
        .file("empty.py", "")
        .write(tmp.path());
    let out = tmp.path().join("out");
    let built = common::build(&sdist, &out, BuildOpts::default());
    assert_eq!(built.code(), 5, "{}", built.describe());
    assert_eq!(built.status(), "refused", "{}", built.describe());
    let report = built.report.as_ref().unwrap();
    let reason = report["outcome"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("does not appear to be a Python project"),
        "{reason}"
    );
    assert_eq!(
        report["hooks"].as_array().map_or(0, Vec::len),
        0,
        "a hook ran: {report}"
    );
    let wheels: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".whl"))
        .collect();
    assert!(wheels.is_empty(), "{wheels:?}");
}
