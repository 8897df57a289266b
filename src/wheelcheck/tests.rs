//! The wheel checks, on wheels made here.

use super::*;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::events::findings::{OpKind, Severity};
use std::io::Write;

/// Members of a test wheel: name, bytes, DOS time (year, second).
pub(crate) struct TestWheel {
    pub members: Vec<(String, Vec<u8>)>,
    pub year: u16,
    pub mode: u32,
}

impl TestWheel {
    pub(crate) fn new(dist: &str) -> TestWheel {
        TestWheel {
            members: vec![
                (
                    format!("{dist}.dist-info/METADATA"),
                    format!("Metadata-Version: 2.1\nName: {dist}\n").into_bytes(),
                ),
                (
                    format!("{dist}.dist-info/WHEEL"),
                    b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\n".to_vec(),
                ),
            ],
            year: 1980,
            mode: 0o644,
        }
    }

    pub(crate) fn add(mut self, name: &str, data: &[u8]) -> TestWheel {
        self.members.push((name.to_string(), data.to_vec()));
        self
    }

    /// A RECORD that matches the members, with `RECORD,,` last.
    pub(crate) fn record(&self, dist_info: &str) -> String {
        let mut text = String::new();
        for (name, data) in &self.members {
            text.push_str(&format!(
                "{name},sha256={},{}\n",
                urlsafe_b64(&Sha256::digest(data)),
                data.len()
            ));
        }
        text.push_str(&format!("{dist_info}/RECORD,,\n"));
        text
    }

    pub(crate) fn write(&self, path: &Path, record: Option<(&str, &str)>) {
        let file = std::fs::File::create(path).unwrap();
        let mut zip = zip::ZipWriter::new(file);
        let opts = zip::write::SimpleFileOptions::default()
            .last_modified_time(
                zip::DateTime::from_date_and_time(self.year, 1, 1, 0, 0, 0).unwrap(),
            )
            .unix_permissions(self.mode);
        let mut all = self.members.clone();
        if let Some((dist_info, text)) = record {
            all.push((format!("{dist_info}/RECORD"), text.as_bytes().to_vec()));
        }
        for (name, data) in &all {
            zip.start_file(name.as_str(), opts).unwrap();
            zip.write_all(data).unwrap();
        }
        zip.finish().unwrap();
    }
}

fn checked(w: &TestWheel, record: Option<&str>, tree: &Path, project: &str) -> WheelCheck {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("demo-1.0-py3-none-any.whl");
    let di = "demo-1.0.dist-info";
    let rec = record.map(str::to_string).unwrap_or_else(|| w.record(di));
    w.write(&path, Some((di, &rec)));
    check(
        &path,
        "demo-1.0-py3-none-any.whl",
        tree,
        project,
        &Limits::default(),
    )
}

fn demo() -> TestWheel {
    TestWheel::new("demo-1.0")
        .add("demo/__init__.py", b"VALUE = 1\n")
        .add("demo-1.0.dist-info/top_level.txt", b"demo\n")
}

/// `belongs_to` over a wheel of `members` (RECORD added), as release demo 1.0.
fn belongs(members: &[(&str, &str)]) -> Result<String, NotItsWheel> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("demo-1.0-py3-none-any.whl");
    let w = TestWheel {
        members: members
            .iter()
            .map(|(n, d)| (n.to_string(), d.as_bytes().to_vec()))
            .collect(),
        year: 1980,
        mode: 0o644,
    };
    w.write(&path, None);
    let contents = read_wheel(&path, &Limits::default()).unwrap();
    let release = crate::names::Release {
        name: crate::names::Name::parse("demo").unwrap(),
        version: crate::names::Version::parse("1.0").unwrap(),
    };
    belongs_to(&contents, "demo-1.0-py3-none-any.whl", &release)
}

const METADATA: &str = "Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n\nlong text\n";
const WHEEL: &str = "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n";

#[test]
fn a_wheel_is_its_sdists_own_only_with_one_matching_dist_info() {
    let ok = |members: &[(&str, &str)]| belongs(members).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        ok(&[
            ("demo-1.0.dist-info/METADATA", METADATA),
            ("demo-1.0.dist-info/WHEEL", WHEEL),
            ("demo/__init__.py", ""),
        ]),
        "demo-1.0.dist-info"
    );
    // Older spellings of the same name and version.
    ok(&[
        (
            "Demo-1.0.0.dist-info/METADATA",
            "Metadata-Version: 1.2\nName: Demo\nVersion: 1.0.0\n",
        ),
        ("Demo-1.0.0.dist-info/WHEEL", "Wheel-Version: 1.1\n"),
    ]);

    let err = |members: &[(&str, &str)]| belongs(members).unwrap_err().to_string();
    let msg = err(&[("demo/__init__.py", "")]);
    assert!(msg.contains("no .dist-info"), "{msg}");
    let msg = err(&[
        ("demo-1.0.dist-info/METADATA", METADATA),
        ("demo-1.0.dist-info/WHEEL", WHEEL),
        ("good-1.0.dist-info/METADATA", "Name: good\n"),
    ]);
    assert!(
        msg.contains("2 .dist-info directories") && msg.contains("good-1.0.dist-info"),
        "{msg}"
    );
    let msg = err(&[
        ("good-1.0.dist-info/METADATA", METADATA),
        ("good-1.0.dist-info/WHEEL", WHEEL),
    ]);
    assert!(
        msg.contains("`good-1.0.dist-info`, which is not that of demo 1.0"),
        "{msg}"
    );
    let msg = err(&[
        ("demo-1.1.dist-info/METADATA", METADATA),
        ("demo-1.1.dist-info/WHEEL", WHEEL),
    ]);
    assert!(
        msg.contains("not that of demo 1.0 (`demo-1.0.dist-info`)"),
        "{msg}"
    );
    let msg = err(&[("demo-1.0.dist-info/METADATA", METADATA)]);
    assert!(msg.contains("has no `demo-1.0.dist-info/WHEEL`"), "{msg}");
    let msg = err(&[("demo-1.0.dist-info/WHEEL", WHEEL)]);
    assert!(
        msg.contains("has no `demo-1.0.dist-info/METADATA`"),
        "{msg}"
    );
    let msg = err(&[
        ("demo-1.0.dist-info/METADATA", METADATA),
        ("demo-1.0.dist-info/WHEEL", "Root-Is-Purelib: true\n"),
    ]);
    assert!(msg.contains("no `Wheel-Version`"), "{msg}");
    let msg = err(&[
        ("demo-1.0.dist-info/METADATA", METADATA),
        ("demo-1.0.dist-info/WHEEL", "Wheel-Version: 2.0\n"),
    ]);
    assert!(msg.contains("only 1.x"), "{msg}");
    let msg = err(&[
        (
            "demo-1.0.dist-info/METADATA",
            "Metadata-Version: 2.1\nName: good\nVersion: 1.0\n",
        ),
        ("demo-1.0.dist-info/WHEEL", WHEEL),
    ]);
    assert!(
        msg.contains("METADATA says it is `good 1.0`, but the sdist is demo 1.0"),
        "{msg}"
    );
    let msg = err(&[
        (
            "demo-1.0.dist-info/METADATA",
            "Metadata-Version: 2.1\nName: demo\nVersion: 2.0\n",
        ),
        ("demo-1.0.dist-info/WHEEL", WHEEL),
    ]);
    assert!(msg.contains("`demo 2.0`"), "{msg}");
    let msg = err(&[
        (
            "demo-1.0.dist-info/METADATA",
            "Metadata-Version: 2.1\nName: <demo>\nVersion: 1.0\n",
        ),
        ("demo-1.0.dist-info/WHEEL", WHEEL),
    ]);
    assert!(msg.contains("`Name`") && !msg.contains('<'), "{msg}");
    let msg = err(&[
        ("demo-1.0.dist-info/METADATA", "Name: demo\nVersion: 1.0\n"),
        ("demo-1.0.dist-info/WHEEL", WHEEL),
    ]);
    assert!(msg.contains("no `Metadata-Version`"), "{msg}");
}

#[test]
fn digests_are_unpadded_urlsafe_base64() {
    assert_eq!(
        urlsafe_b64(&Sha256::digest(b"")),
        "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"
    );
    assert_eq!(urlsafe_b64(b"\xfb\xff"), "-_8");
    assert_eq!(urlsafe_b64(b"abc"), "YWJj");
}

#[test]
fn record_parses_quoted_fields() {
    let rows = parse_record(b"\"a,b.py\",sha256=x,3\nplain.py,,\n\n\"q\"\"uote\",h,1\n");
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0].path, "a,b.py");
    assert_eq!(rows[0].size, "3");
    assert_eq!(rows[1].hash, "");
    assert_eq!(rows[2].path, "q\"uote");
}

#[test]
fn a_consistent_record_has_no_problems() {
    let tree = tempfile::tempdir().unwrap();
    let c = checked(&demo(), None, tree.path(), "demo");
    assert_eq!(c.incomplete, None);
    assert_eq!(c.record.path.as_deref(), Some("demo-1.0.dist-info/RECORD"));
    assert!(c.record.problems.is_empty(), "{:?}", c.record.problems);
    assert_eq!(c.record.listed, 5);
    assert_eq!(c.top_level, vec!["demo"]);
    assert_eq!(c.top_level_from, TopLevelSource::TopLevelTxt);
    assert!(c.outside.is_empty(), "{:?}", c.outside);
    assert!(findings(&c, "demo-1.0-py3-none-any.whl").is_empty());
}

#[test]
fn a_tampered_record_is_reported_entry_by_entry() {
    let tree = tempfile::tempdir().unwrap();
    let w = demo();
    let good = w.record("demo-1.0.dist-info");
    // The content changed after RECORD was written (same length, new
    // hash), a file was dropped from RECORD, a listed file is missing,
    // and RECORD claims a hash for itself.
    let tampered = good
        .replace(
            &urlsafe_b64(&Sha256::digest(b"VALUE = 1\n")),
            &urlsafe_b64(&Sha256::digest(b"VALUE = 2\n")),
        )
        .lines()
        .filter(|l| !l.starts_with("demo-1.0.dist-info/top_level.txt"))
        .map(|l| {
            if l.starts_with("demo-1.0.dist-info/RECORD") {
                "demo-1.0.dist-info/RECORD,sha256=AAAA,10".to_string()
            } else {
                l.to_string()
            }
        })
        .chain(["demo/gone.py,sha256=AAAA,1".to_string()])
        .chain(["demo-1.0.dist-info/METADATA,md5=AAAA,1".to_string()])
        .collect::<Vec<_>>()
        .join("\n");
    let c = checked(&w, Some(&tampered), tree.path(), "demo");
    let problems: Vec<(String, String)> = c
        .record
        .problems
        .iter()
        .map(|p| (p.path.clone(), p.problem.clone()))
        .collect();
    let has = |path: &str, what: &str| problems.iter().any(|(p, m)| p == path && m.contains(what));
    assert!(
        has("demo/__init__.py", "does not match the content"),
        "{problems:?}"
    );
    assert!(
        has("demo-1.0.dist-info/top_level.txt", "not listed in RECORD"),
        "{problems:?}"
    );
    assert!(has("demo/gone.py", "not in the wheel"), "{problems:?}");
    assert!(
        has("demo-1.0.dist-info/RECORD", "for itself"),
        "{problems:?}"
    );
    assert!(
        has("demo-1.0.dist-info/METADATA", "listed more than once"),
        "{problems:?}"
    );
    // A wrong size and a weak algorithm, each on its own.
    let wrong_size = good.replacen(",10\n", ",11\n", 1);
    let c = checked(&w, Some(&wrong_size), tree.path(), "demo");
    assert!(
        c.record
            .problems
            .iter()
            .any(|p| p.problem.contains("says 11 bytes")),
        "{:?}",
        c.record.problems
    );
    let weak = good.replacen("demo/__init__.py,sha256=", "demo/__init__.py,md5=", 1);
    let c = checked(&w, Some(&weak), tree.path(), "demo");
    assert!(
        c.record
            .problems
            .iter()
            .any(|p| p.problem.contains("`md5`")),
        "{:?}",
        c.record.problems
    );
    let f = findings(&c, "demo-1.0-py3-none-any.whl");
    assert!(
        f.iter()
            .all(|f| f.severity == Severity::Review && f.kind == OpKind::WheelRecord)
    );
    assert!(!f.is_empty());
}

#[test]
fn a_member_named_twice_is_reported() {
    let tree = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("demo-1.0-py3-none-any.whl");
    let w = demo()
        .add("demo/first_.py", b"SAFE = 1\n")
        .add("demo/second.py", b"EVIL = 1\n");
    w.write(
        &path,
        Some(("demo-1.0.dist-info", &w.record("demo-1.0.dist-info"))),
    );
    // Rename the second member to the first one's name, in its local
    // header and in the central directory (same length).
    let bytes = std::fs::read(&path).unwrap();
    let (from, to) = (b"demo/second.py", b"demo/first_.py");
    let mut patched = bytes.clone();
    let mut hits = 0;
    for i in 0..bytes.len() - from.len() {
        if &bytes[i..i + from.len()] == from {
            patched[i..i + from.len()].copy_from_slice(to);
            hits += 1;
        }
    }
    assert_eq!(
        hits, 2,
        "the name is in a local header and the central directory"
    );
    std::fs::write(&path, patched).unwrap();
    let c = check(
        &path,
        "demo-1.0-py3-none-any.whl",
        tree.path(),
        "demo",
        &Limits::default(),
    );
    assert_eq!(c.incomplete, None);
    assert!(
        c.record
            .problems
            .iter()
            .any(|p| p.problem.contains("names a member twice")),
        "{:?}",
        c.record.problems
    );
}

#[test]
fn a_wheel_without_record_is_reported() {
    let tree = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("demo-1.0-py3-none-any.whl");
    demo().write(&path, None);
    let c = check(
        &path,
        "demo-1.0-py3-none-any.whl",
        tree.path(),
        "demo",
        &Limits::default(),
    );
    assert_eq!(c.record.problems.len(), 1);
    assert!(c.record.problems[0].problem.contains("no RECORD"));
}

#[test]
fn pth_files_are_reported_with_their_first_line_and_sdist_origin() {
    let tree = tempfile::tempdir().unwrap();
    let pth = b"\nimport os; os.system('id')\n/some/path\n";
    std::fs::write(tree.path().join("demo_init.pth"), pth).unwrap();
    let w = demo()
        .add("demo_init.pth", pth)
        .add("demo-1.0.data/purelib/other.pth", b"/x\n")
        .add("demo/inner.pth", b"import x\n");
    let c = checked(&w, None, tree.path(), "demo");
    let paths: Vec<&str> = c.pth_files.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        vec!["demo_init.pth", "demo-1.0.data/purelib/other.pth"]
    );
    assert_eq!(c.pth_files[0].first_line, "import os; os.system('id')");
    assert_eq!(c.pth_files[0].import_lines, 1);
    assert_eq!(c.pth_files[0].in_sdist.as_deref(), Some("demo_init.pth"));
    assert_eq!(c.pth_files[1].import_lines, 0);
    let f = findings(&c, "demo-1.0-py3-none-any.whl");
    let pth_finding = f.iter().find(|f| f.target == "demo_init.pth").unwrap();
    assert_eq!(pth_finding.severity, Severity::Review);
    assert_eq!(pth_finding.kind, OpKind::WheelPth);
    assert!(pth_finding.message.contains("import os; os.system('id')"));
    let origin = pth_finding.origin.as_ref().unwrap();
    assert_eq!((origin.file.as_str(), origin.line), ("demo_init.pth", 1));
}

#[test]
fn entry_points_are_listed_and_shadowing_commands_flagged() {
    let eps = parse_entry_points(
        b"[console_scripts]\ndemo = demo.cli:main\npip = demo.cli:pip\n\n[gui_scripts]\nls=demo:ls\n# comment\n[pytest11]\ndemo = demo.plugin\n",
    );
    assert_eq!(eps.len(), 4);
    assert_eq!(
        (
            eps[0].group.as_str(),
            eps[0].name.as_str(),
            eps[0].value.as_str()
        ),
        ("console_scripts", "demo", "demo.cli:main")
    );
    assert_eq!(shadowed_command("pip", "demo").as_deref(), Some("pip"));
    assert_eq!(
        shadowed_command("python3.12", "demo").as_deref(),
        Some("python")
    );
    assert_eq!(shadowed_command("pip3.12", "pip"), None);
    assert_eq!(shadowed_command("demo", "demo"), None);
    assert_eq!(shadowed_command("sudo", "demo").as_deref(), Some("sudo"));

    let tree = tempfile::tempdir().unwrap();
    let w = demo()
        .add(
            "demo-1.0.dist-info/entry_points.txt",
            b"[console_scripts]\ndemo = demo.cli:main\npip = demo.cli:pip\n../../etc/cron.d/x = demo:x\n[pytest11]\ndemo = demo.plugin\n",
        )
        .add("demo-1.0.data/scripts/git", b"#!/bin/sh\n");
    let c = checked(&w, None, tree.path(), "demo");
    assert_eq!(c.entry_points.len(), 5);
    let f = findings(&c, "demo-1.0-py3-none-any.whl");
    let escape = f.iter().find(|f| f.target == "../../etc/cron.d/x").unwrap();
    assert_eq!(escape.severity, Severity::Review);
    assert!(escape.message.contains("not a plain file name"));
    let sev = |t: &str| f.iter().find(|f| f.target == t).map(|f| f.severity);
    assert_eq!(sev("pip"), Some(Severity::Review));
    assert_eq!(sev("git"), Some(Severity::Review));
    assert_eq!(sev("demo"), Some(Severity::Notice));
    assert_eq!(sev("[pytest11]"), Some(Severity::Notice));
}

#[test]
fn native_code_is_prebuilt_when_the_sdist_has_the_same_bytes() {
    let tree = tempfile::tempdir().unwrap();
    let shipped = b"\x7fELF\x02\x01\x01prebuilt".to_vec();
    std::fs::create_dir_all(tree.path().join("libs")).unwrap();
    std::fs::write(tree.path().join("libs/_fast.so"), &shipped).unwrap();
    // Same size, other bytes: not a match.
    std::fs::write(
        tree.path().join("libs/decoy.bin"),
        b"\x7fELF\x02\x01\x01xxxxxxxx",
    )
    .unwrap();
    let w = demo()
        .add("demo/_fast.so", &shipped)
        .add(
            "demo/_speed.cpython-311-x86_64-linux-gnu.so",
            b"\x7fELF\x02\x01\x01compiled",
        )
        .add("demo/hidden.dat", b"\x7fELFxx");
    let c = checked(&w, None, tree.path(), "demo");
    let by: BTreeMap<&str, &NativeBinary> = c.native.iter().map(|n| (n.path.as_str(), n)).collect();
    assert_eq!(by.len(), 3);
    assert_eq!(by["demo/_fast.so"].provenance, Provenance::Prebuilt);
    assert_eq!(
        by["demo/_fast.so"].sdist_path.as_deref(),
        Some("libs/_fast.so")
    );
    assert_eq!(by["demo/_fast.so"].format, "elf");
    assert_eq!(
        by["demo/_speed.cpython-311-x86_64-linux-gnu.so"].provenance,
        Provenance::Compiled
    );
    assert_eq!(by["demo/hidden.dat"].format, "elf");
    let f = findings(&c, "demo-1.0-py3-none-any.whl");
    let fast = f.iter().find(|f| f.target == "demo/_fast.so").unwrap();
    assert_eq!(fast.severity, Severity::Review);
    assert!(
        fast.message
            .contains("shipped in the sdist at libs/_fast.so")
    );
    let speed = f
        .iter()
        .find(|f| f.target.starts_with("demo/_speed"))
        .unwrap();
    assert_eq!(speed.severity, Severity::Notice);
    assert!(speed.message.contains("compiled during this build"));
}

#[test]
fn files_outside_the_project_are_flagged() {
    let tree = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tree.path().join("src/helper")).unwrap();
    let w = demo()
        .add("stray.py", b"")
        .add("README.md", b"")
        .add("sitecustomize.py", b"import os\n")
        .add("../escape.py", b"")
        .add("os/__init__.py", b"")
        .add("other-2.0.dist-info/METADATA", b"")
        .add("demo-1.0.data/data/lib/python3.11/site-packages/x.py", b"")
        .add("demo-1.0.data/data/share/demo/readme.txt", b"")
        .add("demo-1.0.data/weird/x", b"")
        .add("demo-1.0.data/purelib/demo/__init__.py", b"EVIL = 1\n");
    let c = checked(&w, None, tree.path(), "demo");
    let flagged: BTreeSet<&str> = c.outside.iter().map(|o| o.path.as_str()).collect();
    for p in [
        "stray.py",
        "README.md",
        "sitecustomize.py",
        "../escape.py",
        "os/__init__.py",
        "other-2.0.dist-info",
        "demo-1.0.data/data/lib/python3.11/site-packages/x.py",
        "demo-1.0.data/weird/x",
        "demo-1.0.data/purelib/demo/__init__.py",
    ] {
        assert!(flagged.contains(p), "{p} not flagged: {:?}", c.outside);
    }
    assert!(!flagged.contains("demo/__init__.py"));
    assert!(!flagged.contains("demo-1.0.data/data/share/demo/readme.txt"));
    assert_eq!(c.data_files.len(), 2);

    // Without top_level.txt: the dist name and the sdist's names belong.
    let w = TestWheel::new("demo-1.0")
        .add("demo/__init__.py", b"")
        .add("helper/__init__.py", b"")
        .add("intruder.py", b"");
    let c = checked(&w, None, tree.path(), "demo");
    assert_eq!(c.top_level_from, TopLevelSource::Derived);
    assert_eq!(c.top_level, vec!["demo", "helper"]);
    let flagged: Vec<&str> = c.outside.iter().map(|o| o.path.as_str()).collect();
    assert_eq!(flagged, vec!["intruder.py"]);
}

#[test]
fn end_records_are_read_without_trusting_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.whl");
    let eocd = |entries: u16, cd_size: u32| {
        let mut e = vec![0x50, 0x4b, 0x05, 0x06, 0, 0, 0, 0];
        e.extend_from_slice(&entries.to_le_bytes());
        e.extend_from_slice(&entries.to_le_bytes());
        e.extend_from_slice(&cd_size.to_le_bytes());
        e.extend_from_slice(&[0xff; 4]);
        e.extend_from_slice(&[0, 0]);
        e
    };
    // A zip64 locator pointing past the end of every file.
    let mut bytes = vec![0x50, 0x4b, 0x06, 0x07, 0, 0, 0, 0];
    bytes.extend_from_slice(&u64::MAX.to_le_bytes());
    bytes.extend_from_slice(&1u32.to_le_bytes());
    bytes.extend(eocd(0xffff, 0xffff_ffff));
    std::fs::write(&path, &bytes).unwrap();
    let limits = Limits {
        max_entries: 100_000,
        ..Limits::default()
    };
    assert!(read_wheel(&path, &limits).is_err());
    // The claimed entry count is refused before the directory is read.
    std::fs::write(&path, eocd(60_000, 100)).unwrap();
    let tight = Limits {
        max_entries: 100,
        ..Limits::default()
    };
    let err = read_wheel(&path, &tight).unwrap_err().to_string();
    assert!(err.contains("60000 entries (at most 100)"), "{err}");
    std::fs::write(&path, eocd(10, 200 << 20)).unwrap();
    let err = read_wheel(&path, &Limits::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("central directory of"), "{err}");
}

#[test]
fn limits_are_checked_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("demo-1.0-py3-none-any.whl");
    demo().write(&path, None);
    let tight = Limits {
        max_entries: 2,
        ..Limits::default()
    };
    let err = read_wheel(&path, &tight).unwrap_err().to_string();
    assert!(err.contains("4 entries (at most 2)"), "{err}");
    let small = Limits {
        max_member_bytes: 5,
        ..Limits::default()
    };
    let err = read_wheel(&path, &small).unwrap_err().to_string();
    assert!(err.contains("unpacks to"), "{err}");
    std::fs::write(&path, b"not a zip").unwrap();
    let tree = tempfile::tempdir().unwrap();
    let c = check(
        &path,
        "demo-1.0-py3-none-any.whl",
        tree.path(),
        "demo",
        &Limits::default(),
    );
    assert!(
        c.incomplete
            .as_deref()
            .unwrap()
            .contains("not a readable zip")
    );
    let f = findings(&c, "demo-1.0-py3-none-any.whl");
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].severity, Severity::Review);
}
