//! A wheel belongs to its sdist, and names and versions are names and
//! versions (issue 11, points 2 and 6), on real builds in real sandboxes:
//!
//! - an sdist whose backend returns another project's wheel (`evil-1.0`
//!   returning `good-1.0-py3-none-any.whl`, or `Good-1.0-…`, or
//!   `good-1.0-1-…`) fails, naming both; `good`'s wheel already in the
//!   output directory is byte-identical afterwards and `index` writes the
//!   same pages;
//! - a second input of one project and version (`Good-1.0.tar.gz` after
//!   `good-1.0.tar.gz`) is refused, naming both inputs, with `build` and
//!   with `build-all` (one run, and a later run into the same directory);
//! - a wheel whose `.dist-info` is another project's or version's, that has
//!   two of them, or no `WHEEL`, fails the build;
//! - a `[project]` name with a newline, NUL, ESC and `<script>`, the
//!   version `1.0; $(id)\r\n`, and a `PKG-INFO` name that is not the file
//!   name's are refused (exit 5), and none of that text reaches the report,
//!   `build-all.json`, the stage events or the pre-build hook.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{BuildOpts, Sdist, entry, summary};
use serde_json::{Value, json};

/// An in-tree backend that writes the wheel `wheel.json` describes
/// (`filename`, `members`: path → text), with a matching RECORD.
const BACKEND: &str = r#"
import base64, hashlib, json, os, zipfile
def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    spec = json.load(open('wheel.json'))
    name, members = spec['filename'], spec['members']
    record, dist_info = [], spec.get('record_in')
    with zipfile.ZipFile(os.path.join(wheel_directory, name), 'w') as z:
        for path, text in members.items():
            data = text.encode()
            z.writestr(path, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()
            record.append(f'{path},sha256={digest},{len(data)}')
        if dist_info:
            record.append(f'{dist_info}/RECORD,,')
            z.writestr(f'{dist_info}/RECORD', '\n'.join(record) + '\n')
    return name
"#;

const PYPROJECT: &str =
    "[build-system]\nrequires = []\nbuild-backend = \"backend\"\nbackend-path = [\".\"]\n";

/// The members of a wheel of `name` `version` whose metadata says so.
fn members(dist_info: &str, name: &str, version: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            format!("{dist_info}/METADATA"),
            format!("Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"),
        ),
        (
            format!("{dist_info}/WHEEL"),
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
                .to_string(),
        ),
        (
            format!("{}.py", name.to_lowercase().replace('-', "_")),
            format!("WHO = {name:?}\n"),
        ),
    ])
}

/// An sdist `name`-`version` whose backend returns `wheel` holding `members`.
fn sdist_returning(
    name: &str,
    version: &str,
    wheel: &str,
    members: &BTreeMap<String, String>,
) -> Sdist {
    let dist_info = members.keys().find_map(|k| {
        k.split_once(".dist-info/")
            .map(|(d, _)| format!("{d}.dist-info"))
    });
    let spec = json!({ "filename": wheel, "members": members, "record_in": dist_info });
    Sdist::new(name, version)
        .file("pyproject.toml", PYPROJECT)
        .file("backend.py", BACKEND)
        .file("wheel.json", &spec.to_string())
}

/// The good sdist: `good` 1.0 with its own wheel.
fn good() -> Sdist {
    sdist_returning(
        "good",
        "1.0",
        "good-1.0-py3-none-any.whl",
        &members("good-1.0.dist-info", "good", "1.0"),
    )
}

fn wheels(dir: &Path) -> Vec<String> {
    let mut w: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".whl"))
        .collect();
    w.sort();
    w
}

/// Every file under `dir`, with its bytes.
fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    common::walk(dir)
        .into_iter()
        .filter(|p| p.is_file())
        .map(|p| {
            (
                p.strip_prefix(dir).unwrap().to_path_buf(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect()
}

fn index(out: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let o = Command::new(common::bin())
        .arg("index")
        .arg(out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    tree(&out.join("simple"))
}

fn reason(built: &common::Built) -> String {
    built.report.as_ref().expect("a report")["outcome"]["reason"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn a_wheel_of_another_project_is_refused_and_the_others_wheel_and_index_stay() {
    if !common::ready_for_builds() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let good = common::build(&good().write(tmp.path()), &out, BuildOpts::default());
    assert_eq!(good.status(), "built", "{}", good.describe());
    let good_wheel = out.join("good-1.0-py3-none-any.whl");
    let good_bytes = std::fs::read(&good_wheel).unwrap();
    let pages = index(&out);
    assert!(
        String::from_utf8_lossy(&pages[Path::new("good/index.html")])
            .contains("good-1.0.sdist-box.json"),
        "good is listed with its report"
    );

    for (i, returned) in [
        "good-1.0-py3-none-any.whl",
        "Good-1.0-py3-none-any.whl",
        "good-1.0-1-py3-none-any.whl",
    ]
    .into_iter()
    .enumerate()
    {
        // evil's metadata says good too: only the sdist's own name and
        // version tell the wheel is not evil's.
        let dir = tmp.path().join(format!("evil{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        let evil = sdist_returning(
            "evil",
            "1.0",
            returned,
            &members("good-1.0.dist-info", "good", "1.0"),
        )
        .write(&dir);
        let built = common::build(&evil, &out, BuildOpts::default());
        assert_eq!(built.code(), 3, "{returned}: {}", built.describe());
        assert_eq!(built.status(), "build-failed");
        let why = reason(&built);
        let lower = why.to_lowercase();
        assert!(
            why.contains(returned) && lower.contains("good 1.0") && why.contains("evil 1.0"),
            "{returned}: {why}"
        );
        assert!(built.report.as_ref().unwrap()["wheel"].is_null());
        assert_eq!(
            std::fs::read(&good_wheel).unwrap(),
            good_bytes,
            "{returned}"
        );
        assert_eq!(wheels(&out), ["good-1.0-py3-none-any.whl"], "{returned}");
        assert_eq!(index(&out), pages, "{returned}: the index changed");
    }
}

#[test]
fn a_second_input_of_one_project_and_version_is_refused_naming_both() {
    if !common::ready_for_builds() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let first = common::build(&good().write(tmp.path()), &out, BuildOpts::default());
    assert_eq!(first.status(), "built", "{}", first.describe());
    let good_bytes = std::fs::read(out.join("good-1.0-py3-none-any.whl")).unwrap();
    let pages = index(&out);

    // `Good` 1.0 is good 1.0, and its wheel names are its own; a wheel of
    // good 1.0 from another input must not join or replace good's.
    for (i, wheel) in [
        "Good-1.0-py3-none-any.whl",
        "good-1.0-py3-none-any.whl",
        "good-1.0-1-py3-none-any.whl",
    ]
    .into_iter()
    .enumerate()
    {
        let dir = tmp.path().join(format!("second{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        let second = sdist_returning(
            "Good",
            "1.0.0",
            wheel,
            &members("Good-1.0.0.dist-info", "Good", "1.0.0"),
        )
        .write(&dir);
        assert_eq!(second.file_name().unwrap(), "Good-1.0.0.tar.gz");
        let built = common::build(&second, &out, BuildOpts::default());
        assert_eq!(built.code(), 5, "{wheel}: {}", built.describe());
        assert_eq!(built.status(), "refused");
        let why = reason(&built);
        assert!(
            why.contains("`good-1.0.tar.gz`")
                && why.contains("`Good-1.0.0.tar.gz`")
                && why.contains("good-1.0-py3-none-any.whl")
                && why.contains(wheel),
            "{wheel}: {why}"
        );
        assert_eq!(
            std::fs::read(out.join("good-1.0-py3-none-any.whl")).unwrap(),
            good_bytes
        );
        assert_eq!(wheels(&out), ["good-1.0-py3-none-any.whl"], "{wheel}");
        assert_eq!(index(&out), pages, "{wheel}: the index changed");
    }

    // The same input built again replaces its own wheel.
    let again = common::build(&good().write(tmp.path()), &out, BuildOpts::default());
    assert_eq!(again.status(), "built", "{}", again.describe());
}

fn build_all(input: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut cmd = Command::new(common::bin());
    cmd.arg("build-all").arg(input).arg("-o").arg(out);
    if let Some(wh) = common::wheelhouse() {
        cmd.arg("--find-links").arg(wh).arg("--no-index");
    }
    cmd.arg("--cache-dir").arg(common::env_cache());
    cmd.args(extra);
    cmd.env("NO_COLOR", "1").output().unwrap()
}

#[test]
fn build_all_reports_two_inputs_of_one_wheel_as_a_collision_on_the_second() {
    if !common::ready_for_builds() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    let out = tmp.path().join("out");
    // `good-1.0.tar.gz` and `good-1.0.0.tar.gz` are one release (PEP 440:
    // 1.0 is 1.0.0), and both build `good-1.0-py3-none-any.whl`; the list
    // names `good-1.0.tar.gz` first.
    good().write(&input);
    let other = sdist_returning(
        "good",
        "1.0.0",
        "good-1.0-py3-none-any.whl",
        &members("good-1.0.dist-info", "good", "1.0"),
    )
    .write(&input);
    assert_eq!(other.file_name().unwrap(), "good-1.0.0.tar.gz");
    let list = tmp.path().join("list.txt");
    std::fs::write(&list, "in/good-1.0.tar.gz\nin/good-1.0.0.tar.gz\n").unwrap();
    let o = build_all(&list, &out, &["--jobs", "2"]);
    let s = summary(&out);
    assert_eq!(o.status.code(), Some(5), "{s:#}");
    let first = entry(&s, "good-1.0.tar.gz");
    let second = entry(&s, "good-1.0.0.tar.gz");
    assert_eq!(first["status"], "built", "{s:#}");
    assert_eq!(second["status"], "refused", "{s:#}");
    let why = second["reason"].as_str().unwrap();
    assert!(
        why.contains("collision") && why.contains("good-1.0.tar.gz"),
        "{why}"
    );
    assert_eq!(wheels(&out), ["good-1.0-py3-none-any.whl"]);
    let report: Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("good-1.0.sdist-box.json")).unwrap(),
    )
    .unwrap();
    let on_disk = sha256(&out.join("good-1.0-py3-none-any.whl"));
    assert_eq!(report["wheel"]["sha256"], on_disk.as_str());
    assert_eq!(first["wheel"], "good-1.0-py3-none-any.whl");

    // A later run with only the other input, into the same directory: the
    // wheel there is good-1.0.tar.gz's, so this one is refused at build
    // time and the wheel stays.
    let later = tmp.path().join("later");
    std::fs::create_dir_all(&later).unwrap();
    std::fs::copy(&other, later.join("good-1.0.0.tar.gz")).unwrap();
    let o = build_all(&later, &out, &[]);
    let s = summary(&out);
    assert_eq!(o.status.code(), Some(5), "{s:#}");
    let e = entry(&s, "good-1.0.0.tar.gz");
    assert_eq!(e["status"], "refused");
    let why = e["reason"].as_str().unwrap();
    assert!(
        why.contains("`good-1.0.tar.gz`") && why.contains("`good-1.0.0.tar.gz`"),
        "{why}"
    );
    assert_eq!(sha256(&out.join("good-1.0-py3-none-any.whl")), on_disk);
    assert_eq!(wheels(&out), ["good-1.0-py3-none-any.whl"]);
}

fn sha256(path: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

#[test]
fn a_wheel_whose_metadata_is_not_its_sdists_fails_the_build() {
    if !common::ready_for_builds() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut two = members("demo-1.0.dist-info", "demo", "1.0");
    two.extend(members("good-1.0.dist-info", "good", "1.0"));
    let mut no_wheel = members("demo-1.0.dist-info", "demo", "1.0");
    no_wheel.remove("demo-1.0.dist-info/WHEEL");
    let cases: Vec<(&str, BTreeMap<String, String>, &str)> = vec![
        (
            "mismatched name",
            members("good-1.0.dist-info", "good", "1.0"),
            "`good-1.0.dist-info`, which is not that of demo 1.0",
        ),
        (
            "mismatched version",
            members("demo-2.0.dist-info", "demo", "2.0"),
            "`demo-2.0.dist-info`, which is not that of demo 1.0",
        ),
        (
            "metadata of another version",
            members("demo-1.0.dist-info", "demo", "1.0.post1"),
            "METADATA says it is `demo 1.0.post1`, but the sdist is demo 1.0",
        ),
        (
            "two .dist-info directories",
            two,
            "2 .dist-info directories",
        ),
        (
            "missing WHEEL",
            no_wheel,
            "has no `demo-1.0.dist-info/WHEEL`",
        ),
    ];
    for (i, (case, members, expected)) in cases.into_iter().enumerate() {
        let dir = tmp.path().join(format!("case{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        let sdist =
            sdist_returning("demo", "1.0", "demo-1.0-py3-none-any.whl", &members).write(&dir);
        let out = dir.join("out");
        let built = common::build(&sdist, &out, BuildOpts::default());
        assert_eq!(built.code(), 3, "{case}: {}", built.describe());
        assert_eq!(built.status(), "build-failed", "{case}");
        let why = reason(&built);
        assert!(why.contains(expected), "{case}: {why}");
        assert!(wheels(&out).is_empty(), "{case}: {:?}", wheels(&out));
        let leftovers: Vec<String> = std::fs::read_dir(&out)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".part"))
            .collect();
        assert!(leftovers.is_empty(), "{case}: {leftovers:?}");
    }
}

/// Text that must never reach an output: pieces of the bad names and
/// versions below.
const POISON: &[&str] = &[
    "<script>",
    "$(id)",
    "\u{1b}",
    "\u{0}",
    "evil\nname",
    "\r",
    "BUILT requests",
];

/// Every string in `v` (keys too), recursively.
fn strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        Value::Object(o) => {
            for (k, x) in o {
                out.push(k.clone());
                strings(x, out);
            }
        }
        _ => {}
    }
}

fn assert_clean(what: &str, doc: &Value) {
    let mut all = Vec::new();
    strings(doc, &mut all);
    for s in &all {
        for p in POISON {
            assert!(!s.contains(p), "{what} carries {p:?} in {s:?}");
        }
    }
}

#[test]
fn invalid_names_and_versions_are_refused_before_they_reach_any_output() {
    if !common::ready_for_builds() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let pyproject = |project: &str| format!("{PYPROJECT}\n[project]\n{project}\n");
    let bad_name = toml::Value::String("evil\nname\u{0}\u{1b}[31m<script>alert(1)</script>".into());
    let bad_version = toml::Value::String("1.0; $(id)\r\n".into());
    let cases = [
        (
            "a [project] name with a newline, NUL, ESC and <script>",
            Sdist::new("fine", "1.0")
                .file(
                    "pyproject.toml",
                    &pyproject(&format!("name = {bad_name}\nversion = \"1.0\"")),
                )
                .file("backend.py", BACKEND),
            "[project] name: `evil\\x0aname\\x00\\x1b\\x5b31m\\x3cscript\\x3e",
        ),
        (
            "a [project] version with shell syntax and CR LF",
            Sdist::new("fine", "1.0")
                .file(
                    "pyproject.toml",
                    &pyproject(&format!("name = \"fine\"\nversion = {bad_version}")),
                )
                .file("backend.py", BACKEND),
            "[project] version: `1.0\\x3b\\x20\\x24\\x28id\\x29\\x0d\\x0a` is not a valid version",
        ),
        (
            "a PKG-INFO name that is not the file name's",
            Sdist::new("fine", "1.0")
                .file(
                    "PKG-INFO",
                    "Metadata-Version: 2.1\nName: requests\nVersion: 2.31.0\n",
                )
                .file("pyproject.toml", PYPROJECT)
                .file("backend.py", BACKEND),
            "file name `fine-1.0.tar.gz`: `fine` `1.0`; PKG-INFO: `requests` `2.31.0`; pyproject.toml [project]: no name or version",
        ),
        (
            "a PKG-INFO name with an escape sequence",
            Sdist::new("fine", "1.0")
                .file(
                    "PKG-INFO",
                    "Metadata-Version: 2.1\nName: fine\u{1b}[2J\nVersion: 1.0\n",
                )
                .file("pyproject.toml", PYPROJECT)
                .file("backend.py", BACKEND),
            "Name: `fine\\x1b\\x5b2J` is not a valid project name",
        ),
    ];
    for (i, (case, sdist, expected)) in cases.into_iter().enumerate() {
        let dir = tmp.path().join(format!("case{i}"));
        let input = dir.join("in");
        std::fs::create_dir_all(&input).unwrap();
        let archive = sdist.write(&input);
        let events = dir.join("events.jsonl");
        let hook_saw = dir.join("pre-build-stdin");
        let pre_build = format!("cat > '{}'", hook_saw.display());
        let flags = [
            "--events".to_string(),
            events.display().to_string(),
            "--pre-build".to_string(),
            pre_build.clone(),
        ];

        let out = dir.join("out");
        let built = common::build(
            &archive,
            &out,
            BuildOpts {
                extra_args: flags.to_vec(),
                ..Default::default()
            },
        );
        assert_eq!(built.code(), 5, "{case}: {}", built.describe());
        assert_eq!(built.status(), "refused", "{case}");
        let why = reason(&built);
        assert!(why.contains(expected), "{case}:\n{why}\n{expected}");
        let report = built.report.clone().unwrap();
        common::assert_valid(&common::schema("report.schema.json"), &report, case);
        assert_clean(&format!("{case}: the report"), &report);
        assert!(report["project"].is_null(), "{case}: {}", report["project"]);
        assert!(!hook_saw.exists(), "{case}: the pre-build hook ran");
        let text = std::fs::read_to_string(&events).unwrap();
        for line in text.lines() {
            assert_clean(
                &format!("{case}: an event"),
                &serde_json::from_str(line).unwrap(),
            );
        }
        assert!(text.contains("refused"), "{case}: {text}");
        for p in POISON {
            assert!(!built.stderr().contains(p), "{case}: stderr carries {p:?}");
        }

        // build-all: the same refusal, and build-all.json clean.
        let out = dir.join("out-all");
        std::fs::remove_file(&events).unwrap();
        let o = build_all(
            &input,
            &out,
            &flags.iter().map(String::as_str).collect::<Vec<_>>(),
        );
        assert_eq!(
            o.status.code(),
            Some(5),
            "{case}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let s = summary(&out);
        assert_eq!(s["entries"][0]["status"], "refused", "{case}");
        assert!(
            s["entries"][0]["reason"]
                .as_str()
                .unwrap()
                .contains(expected)
        );
        assert_clean(&format!("{case}: build-all.json"), &s);
        for line in std::fs::read_to_string(&events).unwrap().lines() {
            assert_clean(
                &format!("{case}: a build-all event"),
                &serde_json::from_str(line).unwrap(),
            );
        }
        assert!(!hook_saw.exists(), "{case}: the pre-build hook ran");
        let stderr = String::from_utf8_lossy(&o.stderr);
        for p in POISON {
            assert!(
                !stderr.contains(p),
                "{case}: build-all's stderr carries {p:?}"
            );
        }
    }

    // The control: a valid sdist of the same shape gets to the pre-build
    // hook, which sees its (valid) name.
    let dir = tmp.path().join("valid");
    std::fs::create_dir_all(&dir).unwrap();
    let ok = sdist_returning(
        "fine",
        "1.0",
        "fine-1.0-py3-none-any.whl",
        &members("fine-1.0.dist-info", "fine", "1.0"),
    )
    .write(&dir);
    let hook_saw = dir.join("pre-build-stdin");
    let built = common::build(
        &ok,
        &dir.join("out"),
        BuildOpts {
            extra_args: vec![
                "--pre-build".into(),
                format!("cat > '{}'", hook_saw.display()),
            ],
            ..Default::default()
        },
    );
    assert_eq!(built.status(), "built", "{}", built.describe());
    let stdin: Value = serde_json::from_str(&std::fs::read_to_string(&hook_saw).unwrap()).unwrap();
    assert_eq!(stdin["package"]["name"], "fine");
    assert_eq!(stdin["package"]["version"], "1.0");
}

#[test]
fn inspect_refuses_a_file_name_its_metadata_disagrees_with() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = Sdist::new("evil", "1.0")
        .file(
            "PKG-INFO",
            "Metadata-Version: 2.1\nName: requests\nVersion: 2.31.0\n",
        )
        .write(tmp.path());
    let o = Command::new(common::bin())
        .arg("inspect")
        .arg(&archive)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(5), "{stderr}");
    assert!(
        stderr.contains("file name `evil-1.0.tar.gz`: `evil` `1.0`; PKG-INFO: `requests` `2.31.0`"),
        "{stderr}"
    );
    // Legacy spellings of one name are one project.
    let ok = Sdist::new("python-dateutil", "2.8.2")
        .file(
            "PKG-INFO",
            "Metadata-Version: 2.1\nName: python-dateutil\nVersion: 2.8.2\n",
        )
        .write(tmp.path());
    let legacy = tmp.path().join("python-dateutil-2.8.2.tar.gz");
    std::fs::rename(&ok, &legacy).unwrap();
    let o = Command::new(common::bin())
        .args(["inspect", "--format", "json"])
        .arg(&legacy)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["project"]["normalized_name"], "python-dateutil");
    assert_eq!(v["project"]["normalized_version"], "2.8.2");
}
