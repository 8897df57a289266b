//! Builds that fail for the package's own reasons: the report says which
//! kind of failure, the terminal shows the tail of the backend's output and
//! the log has all of it; nothing is half-written in the output directory.

mod common;

use std::path::Path;

use common::{BuildOpts, Sdist};

fn ready() -> bool {
    common::ready_for_builds()
}

fn only_reports_and_logs(out: &Path) {
    for e in std::fs::read_dir(out).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            name.ends_with(".sdist-box.json") || name.ends_with(".build.log"),
            "unexpected file in the output directory: {name}"
        );
    }
}

#[test]
fn a_backend_exception_is_reported_with_the_backends_output() {
    if !ready() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let attack = "print('backend chatter line', flush=True)\nraise RuntimeError('this package cannot be built: MARKER-42')\n";
    let sdist = Sdist::setuptools_with("broken-pkg", attack).write(tmp.path());
    let built = common::build(&sdist, &out, BuildOpts::default());
    assert_eq!(built.code(), 3, "{}", built.describe());
    let report = built.report.as_ref().unwrap();
    assert_eq!(report["outcome"]["status"], "build-failed");
    let reason = report["outcome"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("raised an exception") && reason.contains("MARKER-42"),
        "{reason}"
    );
    let hook = &report["hooks"][0]["result"];
    assert_eq!(hook["outcome"], "backend-error");
    assert_eq!(hook["error"]["type"], "RuntimeError");
    assert!(
        built.stderr().contains("backend chatter line"),
        "the tail is not on the terminal: {}",
        built.stderr()
    );
    assert!(
        built.log.contains("Traceback"),
        "the log lacks the traceback: {}",
        built.log
    );
    assert!(report["wheel"].is_null());
    only_reports_and_logs(&out);
}

#[test]
fn a_missing_backend_and_a_missing_hook_are_named() {
    if !ready() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let no_backend = Sdist::new("nobackend", "1.0")
        .file(
            "pyproject.toml",
            "[build-system]\nrequires = []\nbuild-backend = \"no_such_backend_mod\"\n",
        )
        .write(tmp.path());
    let built = common::build(&no_backend, &tmp.path().join("out1"), BuildOpts::default());
    assert_eq!(built.code(), 3, "{}", built.describe());
    let report = built.report.as_ref().unwrap();
    assert_eq!(
        report["hooks"][0]["result"]["outcome"],
        "backend-unavailable"
    );
    let reason = report["outcome"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("could not be imported") && reason.contains("no_such_backend_mod"),
        "{reason}"
    );

    // An in-tree backend (backend-path) without build_wheel.
    let no_hook = Sdist::new("nohook", "1.0")
        .file(
            "pyproject.toml",
            "[build-system]\nrequires = []\nbuild-backend = \"mybackend\"\nbackend-path = [\"_build\"]\n",
        )
        .file("_build/mybackend.py", "def get_requires_for_build_wheel(config_settings=None):\n    return ['sdist-box-test-no-such-req==1; python_version < \"2\"']\n")
        .write(tmp.path());
    let built = common::build(&no_hook, &tmp.path().join("out2"), BuildOpts::default());
    assert_eq!(built.code(), 3, "{}", built.describe());
    let report = built.report.as_ref().unwrap();
    // Three sandboxed hook calls: the optional prepare_metadata hook is
    // missing (not an error), the required build_wheel is.
    assert_eq!(
        report["hooks"].as_array().unwrap().len(),
        3,
        "{}",
        built.describe()
    );
    assert_eq!(report["hooks"][1]["phase"], "metadata");
    assert_eq!(
        report["hooks"][1]["result"]["hooks"][0]["status"],
        "missing"
    );
    assert_eq!(report["hooks"][2]["result"]["outcome"], "hook-missing");
    assert!(
        report["outcome"]["reason"]
            .as_str()
            .unwrap()
            .contains("no build_wheel hook")
    );
    // The in-tree backend's dynamic requirement went to a second round.
    assert_eq!(
        report["build_env"]["dynamic_requirements"][0],
        "sdist-box-test-no-such-req==1; python_version < \"2\""
    );
}

#[test]
fn an_in_tree_backend_builds_and_its_dynamic_requirements_get_a_second_round() {
    if !ready() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let backend = r#"
import os, zipfile, hashlib, base64
def get_requires_for_build_wheel(config_settings=None):
    return ['flit_core>=3.4']
def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    import flit_core  # only importable after the second round
    name = 'intree-1.0-py3-none-any.whl'
    files = {'intree.py': b'VALUE = 42\n',
             'intree-1.0.dist-info/METADATA': b'Metadata-Version: 2.1\nName: intree\nVersion: 1.0\n',
             'intree-1.0.dist-info/WHEEL': b'Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n'}
    record = []
    with zipfile.ZipFile(os.path.join(wheel_directory, name), 'w') as z:
        for path, data in files.items():
            z.writestr(path, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()
            record.append(f'{path},sha256={digest},{len(data)}')
        record.append('intree-1.0.dist-info/RECORD,,')
        z.writestr('intree-1.0.dist-info/RECORD', '\n'.join(record) + '\n')
    return name
"#;
    let sdist = Sdist::new("intree", "1.0")
        .file(
            "pyproject.toml",
            "[build-system]\nrequires = []\nbuild-backend = \"backend\"\nbackend-path = [\".\"]\n",
        )
        .file("backend.py", backend)
        .write(tmp.path());
    let built = common::build(&sdist, &tmp.path().join("out"), BuildOpts::default());
    assert_eq!(built.status(), "built", "{}", built.describe());
    let report = built.report.as_ref().unwrap();
    assert_eq!(
        report["build_env"]["dynamic_requirements"][0],
        "flit_core>=3.4"
    );
    assert!(
        report["build_env"]["requirements"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "flit_core>=3.4")
    );
    let run = common::install_and_run(
        &built.wheel().unwrap(),
        "import intree; print(intree.VALUE)",
    );
    assert_eq!(String::from_utf8_lossy(&run.stdout).trim(), "42");
}

#[test]
fn a_secret_read_is_refused_for_an_unprivileged_user_too() {
    if !ready() {
        return;
    }
    require!(common::is_root(), "needs root to switch to the test user");
    let Some((uid, gid)) = common::test_user() else {
        require!(
            false,
            "no user sdistbox-test (scripts/setup-tests creates it)"
        );
        return;
    };
    let tmp = common::tempdir_for(Some((uid, gid)));
    let home = tmp.path().join("home");
    std::fs::create_dir_all(home.join(".ssh")).unwrap();
    let key = home.join(".ssh/id_rsa");
    std::fs::write(&key, common::SECRET).unwrap();
    std::process::Command::new("chown")
        .args(["-R", &format!("{uid}:{gid}")])
        .arg(&home)
        .status()
        .unwrap();
    let attack = format!(
        "for p in [{key:?}, os.path.expanduser('~/.ssh/id_rsa')]:\n    try:\n        print('ATTACK GOT', open(p).read())\n    except Exception as e:\n        print('ATTACK denied', p, type(e).__name__)\n",
        key = key.display().to_string()
    );
    let sdist = Sdist::setuptools_with("evil-read-user", &attack).write(tmp.path());
    let out = tmp.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    std::os::unix::fs::chown(&out, Some(uid), Some(gid)).unwrap();
    let opts = common::build_opts_for_user(tmp.path(), (uid, gid), &home);
    let watch = common::AccessWatch::new(&[&key]);
    let built = common::build(&sdist, &out, opts);
    assert_eq!(built.status(), "built", "{}", built.describe());
    assert!(built.log.contains("ATTACK denied"), "{}", built.describe());
    assert!(!built.log.contains("ATTACK GOT"), "{}", built.log);
    assert_eq!(watch.events(), 0, "the key was opened");
    let report = built.report.unwrap();
    assert_eq!(report["sandbox"]["enforcement"]["host_uid"], uid);
    assert_eq!(report["sandbox"]["enforcement"]["inner_uid"], 1000);
}

#[test]
fn the_log_keeps_every_hook_calls_output() {
    if !ready() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let sdist = Sdist::setuptools_with("chatty", "print('LOG-MARKER from setup.py', flush=True)\n")
        .write(tmp.path());
    let built = common::build(&sdist, &tmp.path().join("out"), BuildOpts::default());
    assert_eq!(built.status(), "built", "{}", built.describe());
    // setup.py runs for get_requires_for_build_wheel, then for
    // prepare_metadata_for_build_wheel and build_wheel: three times.
    assert_eq!(built.log.matches("LOG-MARKER").count(), 3, "{}", built.log);
}

#[test]
fn a_requirement_naming_a_url_is_never_fetched() {
    if !ready() {
        return;
    }
    let listener = common::Listener::start();
    listener.self_check();
    let tmp = tempfile::tempdir().unwrap();
    let backend = format!(
        "def get_requires_for_build_wheel(config_settings=None):\n    return ['evil @ http://127.0.0.1:{}/evil-1.0-py3-none-any.whl']\n",
        listener.port
    );
    let sdist = Sdist::new("urlreq", "1.0")
        .file(
            "pyproject.toml",
            "[build-system]\nrequires = []\nbuild-backend = \"backend\"\nbackend-path = [\".\"]\n",
        )
        .file("backend.py", &backend)
        .write(tmp.path());
    let built = common::build(&sdist, &tmp.path().join("out"), BuildOpts::default());
    assert_eq!(built.code(), 3, "{}", built.describe());
    let reason = built.report.as_ref().unwrap()["outcome"]["reason"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        reason.contains("direct reference") && reason.contains("evil @"),
        "{reason}"
    );
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(
        listener.connections(),
        0,
        "the trusted stage fetched a URL the package named"
    );

    // The same in pyproject.toml is refused before anything runs.
    let sdist = Sdist::new("urlreq2", "1.0")
        .file(
            "pyproject.toml",
            "[build-system]\nrequires = [\"/etc/passwd\"]\nbuild-backend = \"x\"\n",
        )
        .write(tmp.path());
    let built = common::build(&sdist, &tmp.path().join("out2"), BuildOpts::default());
    assert_eq!(built.code(), 5, "{}", built.describe());
}
