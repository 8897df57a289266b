use std::io::Write;

use super::*;

struct E<'a> {
    name: &'a str,
    kind: tar::EntryType,
    link: &'a str,
    mode: u32,
    data: &'a [u8],
}

fn f<'a>(name: &'a str, data: &'a [u8]) -> E<'a> {
    E {
        name,
        kind: tar::EntryType::Regular,
        link: "",
        mode: 0o644,
        data,
    }
}

fn tar_bytes(entries: &[E<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_old();
        h.as_old_mut().name[..e.name.len()].copy_from_slice(e.name.as_bytes());
        h.as_old_mut().linkname[..e.link.len()].copy_from_slice(e.link.as_bytes());
        h.set_entry_type(e.kind);
        h.set_mode(e.mode);
        h.set_size(e.data.len() as u64);
        h.set_mtime(1_700_000_000);
        h.set_cksum();
        b.append(&h, e.data).unwrap();
    }
    b.into_inner().unwrap()
}

fn gz(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

struct Case {
    dir: tempfile::TempDir,
}

impl Case {
    fn new() -> Case {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("sentinel"), "untouched").unwrap();
        Case { dir }
    }

    fn archive(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    fn dest(&self) -> PathBuf {
        self.dir.path().join("dest")
    }

    fn extract(&self, archive: &Path, limits: &Limits) -> Result<Extracted, ArchiveError> {
        extract(archive, &self.dest(), limits)
    }

    /// The error names `needle`, nothing is left, the sentinel is intact.
    fn refused(&self, archive: &Path, limits: &Limits, needle: &str) -> String {
        let err = self.extract(archive, limits).unwrap_err().to_string();
        assert!(
            err.contains(needle),
            "error `{err}` does not name `{needle}`"
        );
        assert!(!self.dest().exists(), "dest left behind after: {err}");
        assert_eq!(
            std::fs::read_to_string(self.dir.path().join("sentinel")).unwrap(),
            "untouched"
        );
        let stray: Vec<_> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| {
                n != "sentinel"
                    && ![".gz", ".zip", ".tar", ".bz2", ".xz"]
                        .iter()
                        .any(|x| n.ends_with(x))
            })
            .collect();
        assert!(stray.is_empty(), "stray files: {stray:?}");
        err
    }
}

const PKG: &[u8] = b"Metadata-Version: 2.1\nName: p\nVersion: 1\n";

#[test]
fn every_format_extracts_a_normal_sdist() {
    let c = Case::new();
    let plain = tar_bytes(&[f("p-1/PKG-INFO", PKG), f("p-1/src/m.py", b"x = 1\n")]);
    let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
    bz.write_all(&plain).unwrap();
    let mut xz = xz2::write::XzEncoder::new(Vec::new(), 6);
    xz.write_all(&plain).unwrap();
    let mut zipped = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    zipped
        .start_file("p-1/PKG-INFO", zip::write::SimpleFileOptions::default())
        .unwrap();
    zipped.write_all(PKG).unwrap();
    zipped
        .start_file("p-1/src/m.py", zip::write::SimpleFileOptions::default())
        .unwrap();
    zipped.write_all(b"x = 1\n").unwrap();
    let zipped = zipped.finish().unwrap().into_inner();
    for (name, bytes, format) in [
        ("a.tar.gz", gz(&plain), ArchiveFormat::TarGz),
        ("a.tar.bz2", bz.finish().unwrap(), ArchiveFormat::TarBz2),
        ("a.tar.xz", xz.finish().unwrap(), ArchiveFormat::TarXz),
        ("a.tar", plain.clone(), ArchiveFormat::Tar),
        ("a.zip", zipped, ArchiveFormat::Zip),
    ] {
        let a = c.archive(name, &bytes);
        let x = c
            .extract(&a, &Limits::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(x.format, format);
        assert_eq!(x.top_level, "p-1");
        assert_eq!(
            std::fs::read_to_string(x.root.join("src/m.py")).unwrap(),
            "x = 1\n"
        );
        assert_eq!(x.total_bytes, (PKG.len() + 6) as u64);
        std::fs::remove_dir_all(c.dest()).unwrap();
    }
}

#[test]
fn hostile_entries_are_refused_by_name_and_leave_nothing() {
    let cases: Vec<(&str, Vec<E<'_>>, &str)> = vec![
        (
            "abs",
            vec![f("p-1/PKG-INFO", PKG), f("/tmp/zz-abs", b"x")],
            "absolute",
        ),
        (
            "dotdot",
            vec![f("p-1/PKG-INFO", PKG), f("p-1/../../zz", b"x")],
            "`..`",
        ),
        (
            "symlink-abs",
            vec![
                f("p-1/PKG-INFO", PKG),
                E {
                    name: "p-1/l",
                    kind: tar::EntryType::Symlink,
                    link: "/etc/passwd",
                    mode: 0o777,
                    data: b"",
                },
            ],
            "outside the tree",
        ),
        (
            "symlink-up",
            vec![
                f("p-1/PKG-INFO", PKG),
                E {
                    name: "p-1/a/l",
                    kind: tar::EntryType::Symlink,
                    link: "../../..",
                    mode: 0o777,
                    data: b"",
                },
            ],
            "outside the tree",
        ),
        (
            "through-link",
            vec![
                f("p-1/PKG-INFO", PKG),
                E {
                    name: "p-1/l",
                    kind: tar::EntryType::Symlink,
                    link: "sub",
                    mode: 0o777,
                    data: b"",
                },
                f("p-1/l/x", b"x"),
            ],
            "through the link `p-1/l`",
        ),
        (
            "hardlink-out",
            vec![
                f("p-1/PKG-INFO", PKG),
                E {
                    name: "p-1/h",
                    kind: tar::EntryType::Link,
                    link: "/etc/shadow",
                    mode: 0o644,
                    data: b"",
                },
            ],
            "hard link",
        ),
        (
            "char",
            vec![
                f("p-1/PKG-INFO", PKG),
                E {
                    name: "p-1/c",
                    kind: tar::EntryType::Char,
                    link: "",
                    mode: 0o644,
                    data: b"",
                },
            ],
            "character device",
        ),
        (
            "block",
            vec![
                f("p-1/PKG-INFO", PKG),
                E {
                    name: "p-1/b",
                    kind: tar::EntryType::Block,
                    link: "",
                    mode: 0o644,
                    data: b"",
                },
            ],
            "block device",
        ),
        (
            "fifo",
            vec![
                f("p-1/PKG-INFO", PKG),
                E {
                    name: "p-1/f",
                    kind: tar::EntryType::Fifo,
                    link: "",
                    mode: 0o644,
                    data: b"",
                },
            ],
            "FIFO",
        ),
        (
            "dup",
            vec![f("p-1/PKG-INFO", PKG), f("p-1/PKG-INFO", b"evil")],
            "appears twice",
        ),
        (
            "case",
            vec![f("p-1/README", b"a"), f("p-1/readme", b"b")],
            "case-insensitive",
        ),
        (
            "two-tops",
            vec![f("p-1/PKG-INFO", PKG), f("q-1/x", b"x")],
            "one top-level",
        ),
        ("top-file", vec![f("setup.py", b"x")], "not a directory"),
    ];
    for (label, entries, needle) in cases {
        let c = Case::new();
        let a = c.archive(&format!("{label}.tar.gz"), &gz(&tar_bytes(&entries)));
        c.refused(&a, &Limits::default(), needle);
    }
    assert!(!Path::new("/tmp/zz-abs").exists());
}

#[test]
fn hardlink_to_an_earlier_file_is_a_copy() {
    let c = Case::new();
    let a = c.archive(
        "h.tar.gz",
        &gz(&tar_bytes(&[
            f("p-1/PKG-INFO", PKG),
            E {
                name: "p-1/copy",
                kind: tar::EntryType::Link,
                link: "p-1/PKG-INFO",
                mode: 0o644,
                data: b"",
            },
        ])),
    );
    let x = c.extract(&a, &Limits::default()).unwrap();
    assert_eq!(std::fs::read(x.root.join("copy")).unwrap(), PKG);
}

#[test]
fn setuid_bits_are_stripped_and_recorded() {
    let c = Case::new();
    let a = c.archive(
        "s.tar.gz",
        &gz(&tar_bytes(&[
            f("p-1/PKG-INFO", PKG),
            E {
                name: "p-1/tool",
                kind: tar::EntryType::Regular,
                link: "",
                mode: 0o6755,
                data: b"#!/bin/sh\n",
            },
        ])),
    );
    let x = c.extract(&a, &Limits::default()).unwrap();
    assert_eq!(x.stripped_modes, vec!["p-1/tool"]);
    let mode = std::fs::metadata(x.root.join("tool"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o755);
}

#[test]
fn limits_are_enforced_on_bytes_written() {
    let c = Case::new();
    let zeros = vec![0u8; 20 << 20];
    let bomb = c.archive(
        "bomb.tar.gz",
        &gz(&tar_bytes(&[f("p-1/PKG-INFO", PKG), f("p-1/z", &zeros)])),
    );
    c.refused(&bomb, &Limits::default(), "decompression bomb");
    let loose = Limits {
        max_ratio: 1_000_000,
        ..Limits::default()
    };
    c.extract(&bomb, &loose).unwrap();
    std::fs::remove_dir_all(c.dest()).unwrap();
    c.refused(
        &bomb,
        &Limits {
            max_file_bytes: 1 << 20,
            ..loose
        },
        "p-1/z",
    );
    c.refused(
        &bomb,
        &Limits {
            max_total_bytes: 1 << 20,
            ..loose
        },
        "--max-unpacked-size",
    );
    let many: Vec<String> = (0..50).map(|i| format!("p-1/f{i}")).collect();
    let entries: Vec<E<'_>> = many.iter().map(|n| f(n, b"x")).collect();
    let a = c.archive("many.tar.gz", &gz(&tar_bytes(&entries)));
    c.refused(
        &a,
        &Limits {
            max_entries: 10,
            ..Limits::default()
        },
        "more than 10 entries",
    );
}

#[test]
fn a_lying_header_cannot_write_past_its_size() {
    // The header says 4 bytes; the data block holds more. Only 4 land.
    let c = Case::new();
    let mut bytes = tar_bytes(&[f("p-1/PKG-INFO", PKG), f("p-1/x", b"abcd")]);
    let pos = bytes.windows(4).position(|w| w == b"abcd").unwrap();
    bytes[pos + 4..pos + 12].copy_from_slice(b"EFGHIJKL");
    let a = c.archive("lie.tar.gz", &gz(&bytes));
    let x = c.extract(&a, &Limits::default()).unwrap();
    assert_eq!(std::fs::read(x.root.join("x")).unwrap(), b"abcd");
}

#[test]
fn zip_symlinks_follow_the_same_rules() {
    let c = Case::new();
    let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    z.start_file("p-1/PKG-INFO", zip::write::SimpleFileOptions::default())
        .unwrap();
    z.write_all(PKG).unwrap();
    z.add_symlink(
        "p-1/evil",
        "/etc/passwd",
        zip::write::SimpleFileOptions::default(),
    )
    .unwrap();
    let a = c.archive("z.zip", &z.finish().unwrap().into_inner());
    c.refused(&a, &Limits::default(), "outside the tree");
    let c = Case::new();
    let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    z.start_file(
        "p-1\\..\\..\\evil",
        zip::write::SimpleFileOptions::default(),
    )
    .unwrap();
    z.write_all(b"x").unwrap();
    let a = c.archive("w.zip", &z.finish().unwrap().into_inner());
    c.refused(&a, &Limits::default(), "backslashes");
}

#[test]
fn hashes_verify_and_mismatch_clearly() {
    let c = Case::new();
    let a = c.archive("h.tar", b"hello");
    let sha = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
    assert_eq!(sha256_file(&a).unwrap(), sha);
    assert_eq!(verify_sha256(&a, &sha.to_uppercase()).unwrap(), sha);
    let e = verify_sha256(&a, &"0".repeat(64)).unwrap_err().to_string();
    assert!(e.contains(sha) && e.contains(&"0".repeat(64)), "{e}");
    assert!(
        verify_sha256(&a, "xyz")
            .unwrap_err()
            .to_string()
            .contains("not a SHA-256")
    );
    assert!(matches!(
        detect_format(&a),
        Err(ArchiveError::UnknownFormat { .. })
    ));
}

#[test]
fn dest_must_be_new() {
    let c = Case::new();
    std::fs::create_dir(c.dest()).unwrap();
    let a = c.archive("a.tar.gz", &gz(&tar_bytes(&[f("p-1/PKG-INFO", PKG)])));
    assert!(matches!(
        c.extract(&a, &Limits::default()),
        Err(ArchiveError::Dest { .. })
    ));
    assert!(
        c.dest().exists(),
        "a pre-existing directory must not be removed"
    );
}
