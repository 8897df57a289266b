//! The command line as a user meets it: inspect, hostile archives refused
//! through `build`, hash pinning, exit codes, profiles, doctor.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::Sdist;

fn sdist_box() -> Command {
    let mut c = Command::new(common::bin());
    c.env("NO_COLOR", "1");
    c
}

/// One raw tar entry; names are written into the header bytes directly so
/// that hostile names (`..`, absolute) can be forged.
struct Entry<'a> {
    name: &'a str,
    kind: tar::EntryType,
    link: &'a str,
    mode: u32,
    data: &'a [u8],
}

fn file<'a>(name: &'a str, data: &'a [u8]) -> Entry<'a> {
    Entry {
        name,
        kind: tar::EntryType::Regular,
        link: "",
        mode: 0o644,
        data,
    }
}

fn raw_tar_gz(path: &Path, entries: &[Entry<'_>]) {
    let f = std::fs::File::create(path).unwrap();
    let gz = flate2::write::GzEncoder::new(f, flate2::Compression::default());
    let mut b = tar::Builder::new(gz);
    for e in entries {
        let mut h = tar::Header::new_old();
        {
            let old = h.as_old_mut();
            old.name[..e.name.len()].copy_from_slice(e.name.as_bytes());
            old.linkname[..e.link.len()].copy_from_slice(e.link.as_bytes());
        }
        h.set_entry_type(e.kind);
        h.set_mode(e.mode);
        h.set_size(e.data.len() as u64);
        h.set_mtime(1_700_000_000);
        h.set_cksum();
        b.append(&h, e.data).unwrap();
    }
    b.into_inner().unwrap().finish().unwrap();
}

const PKG_INFO: &[u8] = b"Metadata-Version: 2.1\nName: evil\nVersion: 1.0\n";

struct Refusal {
    code: i32,
    stderr: String,
    leftovers: Vec<PathBuf>,
}

/// Build `archive` with a private TMPDIR; report the exit code, stderr and
/// anything left in TMPDIR or the output directory.
fn build_refused(archive: &Path) -> Refusal {
    let scratch = tempfile::tempdir().unwrap();
    let tmpdir = scratch.path().join("tmp");
    let out = scratch.path().join("out");
    std::fs::create_dir_all(&tmpdir).unwrap();
    let output = sdist_box()
        .arg("build")
        .arg(archive)
        .arg("-o")
        .arg(&out)
        .arg("--cache-dir")
        .arg(scratch.path().join("cache"))
        .env("TMPDIR", &tmpdir)
        .output()
        .unwrap();
    let mut leftovers = common::walk(&tmpdir);
    leftovers.extend(
        common::walk(&out)
            .into_iter()
            .filter(|p| !p.to_string_lossy().ends_with(".sdist-box.json")),
    );
    Refusal {
        code: output.status.code().unwrap_or(-1),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        leftovers,
    }
}

#[test]
fn hostile_archives_are_refused_naming_the_entry_and_leave_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let outside = dir.path().join("outside-sentinel");
    std::fs::write(&outside, "untouched").unwrap();
    let target = format!("{}/planted", dir.path().display());
    let cases: Vec<(&str, Vec<Entry<'_>>, &str)> = vec![
        (
            "absolute",
            vec![file("evil-1.0/PKG-INFO", PKG_INFO), file(&target, b"x")],
            "planted",
        ),
        (
            "dotdot",
            vec![
                file("evil-1.0/PKG-INFO", PKG_INFO),
                file("evil-1.0/../../../../../../tmp/zz-sdist-box-dotdot", b"x"),
            ],
            "..",
        ),
        (
            "symlink-escape",
            vec![
                file("evil-1.0/PKG-INFO", PKG_INFO),
                Entry {
                    name: "evil-1.0/link",
                    kind: tar::EntryType::Symlink,
                    link: "/etc",
                    mode: 0o777,
                    data: b"",
                },
            ],
            "evil-1.0/link",
        ),
        (
            "write-through-link",
            vec![
                file("evil-1.0/PKG-INFO", PKG_INFO),
                Entry {
                    name: "evil-1.0/sub",
                    kind: tar::EntryType::Symlink,
                    link: ".",
                    mode: 0o777,
                    data: b"",
                },
                file("evil-1.0/sub/PKG-INFO", b"overwritten"),
            ],
            "evil-1.0/sub",
        ),
        (
            "hardlink-escape",
            vec![
                file("evil-1.0/PKG-INFO", PKG_INFO),
                Entry {
                    name: "evil-1.0/passwd",
                    kind: tar::EntryType::Link,
                    link: "/etc/passwd",
                    mode: 0o644,
                    data: b"",
                },
            ],
            "evil-1.0/passwd",
        ),
        (
            "device",
            vec![
                file("evil-1.0/PKG-INFO", PKG_INFO),
                Entry {
                    name: "evil-1.0/dev-null",
                    kind: tar::EntryType::Char,
                    link: "",
                    mode: 0o666,
                    data: b"",
                },
            ],
            "evil-1.0/dev-null",
        ),
        (
            "fifo",
            vec![
                file("evil-1.0/PKG-INFO", PKG_INFO),
                Entry {
                    name: "evil-1.0/pipe",
                    kind: tar::EntryType::Fifo,
                    link: "",
                    mode: 0o644,
                    data: b"",
                },
            ],
            "evil-1.0/pipe",
        ),
        (
            "two-top-levels",
            vec![
                file("evil-1.0/PKG-INFO", PKG_INFO),
                file("other/file", b"x"),
            ],
            "top-level",
        ),
    ];
    for (label, entries, named) in cases {
        let archive = dir.path().join(format!("{label}.tar.gz"));
        raw_tar_gz(&archive, &entries);
        let r = build_refused(&archive);
        assert_eq!(r.code, 5, "{label}: exit code; stderr: {}", r.stderr);
        assert!(
            r.stderr.contains(named),
            "{label}: error does not name `{named}`: {}",
            r.stderr
        );
        assert!(
            r.leftovers.is_empty(),
            "{label}: left behind {:?}",
            r.leftovers
        );
        assert!(!Path::new(&target).exists(), "{label}: wrote outside");
        assert!(
            !Path::new("/tmp/zz-sdist-box-dotdot").exists(),
            "{label}: wrote outside"
        );
        assert_eq!(std::fs::read_to_string(&outside).unwrap(), "untouched");
    }
}

#[test]
fn a_decompression_bomb_is_refused_and_the_limit_can_be_raised() {
    let dir = tempfile::tempdir().unwrap();
    let zeros = vec![0u8; 40 << 20];
    let archive = dir.path().join("bomb-1.0.tar.gz");
    raw_tar_gz(
        &archive,
        &[
            file(
                "bomb-1.0/PKG-INFO",
                b"Metadata-Version: 2.1\nName: bomb\nVersion: 1.0\n",
            ),
            file("bomb-1.0/zeros.bin", &zeros),
        ],
    );
    let r = build_refused(&archive);
    assert_eq!(r.code, 5, "{}", r.stderr);
    assert!(r.stderr.contains("ratio"), "{}", r.stderr);
    assert!(r.leftovers.is_empty(), "{:?}", r.leftovers);
    let ok = sdist_box()
        .args(["inspect", "--max-ratio", "100000"])
        .arg(&archive)
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let small = sdist_box()
        .args(["inspect", "--max-ratio", "100000", "--max-file-size", "1M"])
        .arg(&archive)
        .output()
        .unwrap();
    assert_eq!(small.status.code(), Some(5));
    assert!(String::from_utf8_lossy(&small.stderr).contains("bomb-1.0/zeros.bin"));
}

#[test]
fn inspect_reads_metadata_statically_and_strips_setuid() {
    let dir = tempfile::tempdir().unwrap();
    // Named as its PKG-INFO names the project (an sdist whose file name
    // says another project is refused).
    let archive = dir.path().join("Demo_Pkg-2.0.tar.gz");
    let marker = dir.path().join("executed");
    let setup = format!(
        "open({:?}, 'w').write('ran')\n",
        marker.display().to_string()
    );
    raw_tar_gz(
        &archive,
        &[
            file("demo-2.0/PKG-INFO", b"Metadata-Version: 2.1\nName: Demo_Pkg\nVersion: 2.0\n"),
            file(
                "demo-2.0/pyproject.toml",
                b"[build-system]\nrequires = [\"flit_core>=3.2\"]\nbuild-backend = \"flit_core.buildapi\"\n",
            ),
            file("demo-2.0/setup.py", setup.as_bytes()),
            Entry {
                name: "demo-2.0/tool",
                kind: tar::EntryType::Regular,
                link: "",
                mode: 0o4755,
                data: b"#!/bin/sh\n",
            },
        ],
    );
    let out = sdist_box()
        .args(["inspect", "--format", "json"])
        .arg(&archive)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["project"]["name"], "Demo_Pkg");
    assert_eq!(v["project"]["normalized_name"], "demo-pkg");
    assert_eq!(v["project"]["version"], "2.0");
    assert_eq!(
        v["project"]["build_system"]["build_backend"],
        "flit_core.buildapi"
    );
    assert_eq!(
        v["project"]["build_system"]["requires"][0],
        "flit_core>=3.2"
    );
    assert_eq!(v["archive"]["stripped_modes"][0], "demo-2.0/tool");
    let sha = sdist_box_sha(&archive);
    assert_eq!(v["input"]["sha256"], sha.as_str());
    assert!(!marker.exists(), "inspect executed package code");

    let text = sdist_box().arg("inspect").arg(&archive).output().unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("flit_core.buildapi"), "{text}");
    assert!(text.contains("setuid"), "{text}");
}

fn sdist_box_sha(path: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

#[test]
fn a_sha256_mismatch_is_refused_before_extraction() {
    let dir = tempfile::tempdir().unwrap();
    let archive = Sdist::new("pinned", "1.0").write(dir.path());
    let wrong = "0".repeat(64);
    let r = sdist_box()
        .args(["build", "--sha256", &wrong, "-o"])
        .arg(dir.path().join("out"))
        .arg(&archive)
        .env("TMPDIR", dir.path())
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(5));
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        err.contains(&wrong) && err.contains(&sdist_box_sha(&archive)),
        "{err}"
    );
    let good = sdist_box()
        .args([
            "inspect",
            "--sha256",
            &sdist_box_sha(&archive).to_uppercase(),
        ])
        .arg(&archive)
        .output()
        .unwrap();
    assert!(
        good.status.success(),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
    assert!(String::from_utf8_lossy(&good.stdout).contains("pinned, matches"));
}

#[test]
fn usage_errors_and_bad_profiles_have_their_exit_codes() {
    let r = sdist_box().arg("build").output().unwrap();
    assert_eq!(r.status.code(), Some(2));
    let r = sdist_box().args(["frobnicate"]).output().unwrap();
    assert_eq!(r.status.code(), Some(2));
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("site.toml");
    std::fs::write(
        &bad,
        "version = 1\ndescription = \"x\"\n\n[limits]\nprocesess = 3\n",
    )
    .unwrap();
    let r = sdist_box()
        .args(["run", "--profile"])
        .arg(&bad)
        .args(["--", "/bin/true"])
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(2));
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        err.contains("site.toml") && err.contains("line 5") && err.contains("processes"),
        "{err}"
    );
    let r = sdist_box()
        .args(["run", "--profile", "nope", "--", "/bin/true"])
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&r.stderr).contains("no profile named `nope`"));
    let help = sdist_box().arg("--help").output().unwrap();
    assert!(String::from_utf8_lossy(&help.stdout).contains("Exit codes"));
}

#[test]
fn profiles_lists_the_builtin_ones() {
    let r = sdist_box().arg("profiles").output().unwrap();
    let out = String::from_utf8_lossy(&r.stdout);
    assert!(out.contains("default") && out.contains("observe"), "{out}");
}

#[test]
fn doctor_reports_every_layer_enforced_on_this_host() {
    require!(
        common::userns_available(),
        "user namespaces are disabled on this host"
    );
    let r = sdist_box().arg("doctor").output().unwrap();
    let out = String::from_utf8_lossy(&r.stdout);
    for layer in [
        "namespaces",
        "mounts",
        "landlock-fs",
        "landlock-net",
        "seccomp-deny",
        "rlimits",
    ] {
        assert!(
            out.lines()
                .any(|l| l.contains("[ok  ]") && l.contains(layer)),
            "{layer} not enforced:\n{out}"
        );
    }
    assert_eq!(r.status.code(), Some(0), "{out}");
}

#[test]
fn run_executes_a_command_inside_the_sandbox() {
    require!(
        common::userns_available(),
        "user namespaces are disabled on this host"
    );
    let r = sdist_box()
        .args([
            "run",
            "--",
            "/bin/sh",
            "-c",
            "id -u; hostname; echo $HOME; ls /root 2>&1; exit 7",
        ])
        .env("SECRET_TOKEN", "hunter2")
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(3));
    let out = String::from_utf8_lossy(&r.stderr);
    assert!(out.contains("1000\nsdist-box\n/home/build\n"), "{out}");
    assert!(out.contains("No such file or directory"), "{out}");
    assert!(!out.contains("hunter2"));
}
