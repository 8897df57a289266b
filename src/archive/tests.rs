//! Extraction tests on archives built in memory, malicious ones with raw
//! headers (the tar crate's own setters refuse `..`). Every refusal test
//! also checks that `dest` is gone and a sentinel beside it is untouched.

use std::io::{Cursor, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use ::tar::{EntryType, Header};
use ::zip::write::SimpleFileOptions;

use super::*;

const SENTINEL: &[u8] = b"sentinel: must not change";

// ---------- building archives ----------

struct T {
    name: Vec<u8>,
    kind: EntryType,
    mode: u32,
    data: Vec<u8>,
    link: Vec<u8>,
    mtime: u64,
}

fn t(name: &str, kind: EntryType) -> T {
    T {
        name: name.as_bytes().to_vec(),
        kind,
        mode: if kind == EntryType::Directory {
            0o755
        } else {
            0o644
        },
        data: Vec::new(),
        link: Vec::new(),
        mtime: 1_600_000_000,
    }
}

fn file(name: &str, data: &[u8]) -> T {
    T {
        data: data.to_vec(),
        ..t(name, EntryType::Regular)
    }
}

fn dir(name: &str) -> T {
    t(name, EntryType::Directory)
}

fn symlink(name: &str, target: &str) -> T {
    T {
        link: target.as_bytes().to_vec(),
        ..t(name, EntryType::Symlink)
    }
}

fn hardlink(name: &str, target: &str) -> T {
    T {
        link: target.as_bytes().to_vec(),
        ..t(name, EntryType::Link)
    }
}

fn mode(mut e: T, mode: u32) -> T {
    e.mode = mode;
    e
}

/// A ustar header with the name and link name written as raw bytes.
fn raw_header(e: &T, size: u64) -> Header {
    let mut h = Header::new_ustar();
    {
        let old = h.as_old_mut();
        old.name[..e.name.len()].copy_from_slice(&e.name);
        old.linkname[..e.link.len()].copy_from_slice(&e.link);
    }
    h.set_entry_type(e.kind);
    h.set_size(size);
    h.set_mode(e.mode);
    h.set_mtime(e.mtime);
    h.set_cksum();
    h
}

fn tar_bytes(entries: &[T]) -> Vec<u8> {
    let mut b = ::tar::Builder::new(Vec::new());
    for e in entries {
        let h = raw_header(e, e.data.len() as u64);
        b.append(&h, &e.data[..]).unwrap();
    }
    b.into_inner().unwrap()
}

fn gz(data: &[u8]) -> Vec<u8> {
    let mut w = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    w.write_all(data).unwrap();
    w.finish().unwrap()
}

fn bz2(data: &[u8]) -> Vec<u8> {
    let mut w = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
    w.write_all(data).unwrap();
    w.finish().unwrap()
}

fn xz(data: &[u8]) -> Vec<u8> {
    let mut w = xz2::write::XzEncoder::new(Vec::new(), 6);
    w.write_all(data).unwrap();
    w.finish().unwrap()
}

enum Z<'a> {
    Dir(&'a str),
    File(&'a str, &'a [u8], u32),
    Symlink(&'a str, &'a str),
    /// Name, full unix mode (type and permission bits), data.
    Raw(&'a str, u32, &'a [u8]),
}

fn zip_bytes(entries: &[Z<'_>]) -> Vec<u8> {
    let mut w = ::zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = SimpleFileOptions::default().compression_method(::zip::CompressionMethod::Deflated);
    for e in entries {
        match e {
            Z::Dir(name) => w.add_directory(*name, opts).unwrap(),
            Z::File(name, data, perm) => {
                w.start_file(*name, opts.unix_permissions(*perm)).unwrap();
                w.write_all(data).unwrap();
            }
            Z::Symlink(name, target) => w.add_symlink(*name, *target, opts).unwrap(),
            Z::Raw(name, full_mode, data) => {
                w.start_file(*name, opts.external_attributes(full_mode << 16))
                    .unwrap();
                w.write_all(data).unwrap();
            }
        }
    }
    w.finish().unwrap().into_inner()
}

// ---------- the fixture ----------

struct Fx {
    _dir: tempfile::TempDir,
    base: PathBuf,
}

impl Fx {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().to_path_buf();
        std::fs::write(base.join("sentinel"), SENTINEL).unwrap();
        Fx { _dir: dir, base }
    }

    fn archive(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.base.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    fn dest(&self) -> PathBuf {
        self.base.join("out")
    }

    fn extract(&self, archive: &Path) -> Result<Extracted, ArchiveError> {
        extract(archive, &self.dest(), &Limits::default())
    }

    /// The all-or-nothing promise after a refusal.
    fn assert_clean(&self) {
        assert!(
            !self.dest().exists() && self.dest().symlink_metadata().is_err(),
            "dest must be removed after an error"
        );
        assert_eq!(std::fs::read(self.base.join("sentinel")).unwrap(), SENTINEL);
        let names: Vec<String> = std::fs::read_dir(&self.base)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != "sentinel" && !n.starts_with("a."))
            .collect();
        assert!(names.is_empty(), "nothing new next to dest: {names:?}");
    }
}

/// Extract a tar archive that must be refused; check the error names the
/// entry and nothing was left behind.
fn refuse_tar(entries: &[T], entry: &str) -> ArchiveError {
    let fx = Fx::new();
    let a = fx.archive("a.tar.gz", &gz(&tar_bytes(entries)));
    let err = fx.extract(&a).expect_err("must be refused");
    let msg = err.to_string();
    assert!(msg.contains(&format!("entry `{entry}`")), "{msg}");
    assert!(msg.contains("a.tar.gz"), "names the archive: {msg}");
    fx.assert_clean();
    err
}

fn refuse_zip(entries: &[Z<'_>], entry: &str) -> ArchiveError {
    let fx = Fx::new();
    let a = fx.archive("a.zip", &zip_bytes(entries));
    let err = fx.extract(&a).expect_err("must be refused");
    let msg = err.to_string();
    assert!(msg.contains(&format!("entry `{entry}`")), "{msg}");
    fx.assert_clean();
    err
}

fn problem(err: &ArchiveError) -> &EntryProblem {
    match err {
        ArchiveError::Entry { problem, .. } => problem,
        other => panic!("expected an entry error, got {other:?}"),
    }
}

// ---------- normal sdists in every format ----------

fn sdist_tar() -> Vec<u8> {
    tar_bytes(&[
        dir("pkg-1.0/"),
        file(
            "pkg-1.0/PKG-INFO",
            b"Metadata-Version: 2.1\nName: pkg\nVersion: 1.0\n",
        ),
        mode(file("pkg-1.0/setup.py", b"print('hi')\n"), 0o755),
        file("pkg-1.0/src/pkg/__init__.py", b"x = 1\n"),
        symlink("pkg-1.0/docs/readme", "../src/pkg/__init__.py"),
        hardlink("pkg-1.0/src/pkg/copy.py", "pkg-1.0/src/pkg/__init__.py"),
    ])
}

fn check_sdist(fx: &Fx, ex: &Extracted, format: ArchiveFormat, with_hardlink: bool) {
    assert_eq!(ex.format, format);
    assert_eq!(ex.top_level, "pkg-1.0");
    assert_eq!(ex.root, fx.dest().join("pkg-1.0"));
    let root = &ex.root;
    let setup = root.join("setup.py");
    assert_eq!(std::fs::read(&setup).unwrap(), b"print('hi')\n");
    assert_eq!(std::fs::metadata(&setup).unwrap().mode() & 0o7777, 0o755);
    let init = root.join("src/pkg/__init__.py");
    assert_eq!(std::fs::metadata(&init).unwrap().mode() & 0o7777, 0o644);
    let link = root.join("docs/readme");
    assert!(link.symlink_metadata().unwrap().file_type().is_symlink());
    assert_eq!(std::fs::read(&link).unwrap(), b"x = 1\n");
    if with_hardlink {
        assert_eq!(
            std::fs::read(root.join("src/pkg/copy.py")).unwrap(),
            b"x = 1\n"
        );
    }
    assert!(ex.stripped_modes.is_empty());
    let dest_mode = std::fs::metadata(fx.dest()).unwrap().mode() & 0o777;
    assert_eq!(dest_mode, 0o700);
    assert_eq!(
        std::fs::metadata(root.join("src")).unwrap().mode() & 0o777,
        0o755
    );
}

#[test]
fn every_format_extracts_a_normal_sdist() {
    let tar = sdist_tar();
    let cases = [
        ("a.tar.gz", gz(&tar), ArchiveFormat::TarGz),
        ("a.tar.bz2", bz2(&tar), ArchiveFormat::TarBz2),
        ("a.tar.xz", xz(&tar), ArchiveFormat::TarXz),
        ("a.tar", tar.clone(), ArchiveFormat::Tar),
    ];
    for (name, bytes, format) in cases {
        let fx = Fx::new();
        let a = fx.archive(name, &bytes);
        assert_eq!(detect_format(&a).unwrap(), format);
        let ex = fx.extract(&a).unwrap_or_else(|e| panic!("{name}: {e}"));
        check_sdist(&fx, &ex, format, true);
        assert_eq!(ex.entries, 6);
        // 45 + 12 + 6 bytes of files, plus the 6-byte hard-link copy.
        assert_eq!(ex.total_bytes, 69);
        let mtime = std::fs::metadata(ex.root.join("setup.py")).unwrap().mtime();
        assert_eq!(mtime, 1_600_000_000);
    }

    let fx = Fx::new();
    let a = fx.archive(
        "a.zip",
        &zip_bytes(&[
            Z::Dir("pkg-1.0/"),
            Z::File("pkg-1.0/setup.py", b"print('hi')\n", 0o755),
            Z::File("pkg-1.0/src/pkg/__init__.py", b"x = 1\n", 0o644),
            Z::Symlink("pkg-1.0/docs/readme", "../src/pkg/__init__.py"),
        ]),
    );
    assert_eq!(detect_format(&a).unwrap(), ArchiveFormat::Zip);
    let ex = fx.extract(&a).unwrap();
    check_sdist(&fx, &ex, ArchiveFormat::Zip, false);
    assert_eq!(ex.entries, 4);
}

#[test]
fn extracted_serializes_with_kebab_case_format() {
    let fx = Fx::new();
    let a = fx.archive("a.tar.gz", &gz(&sdist_tar()));
    let ex = fx.extract(&a).unwrap();
    let json = serde_json::to_value(&ex).unwrap();
    assert_eq!(json["format"], "tar-gz");
    assert_eq!(json["top_level"], "pkg-1.0");
}

#[test]
fn a_dot_slash_prefix_and_implicit_directories_are_fine() {
    let fx = Fx::new();
    let a = fx.archive(
        "a.tar",
        &tar_bytes(&[
            dir("./"),
            file("./pkg-1.0/a/b/c.txt", b"c"),
            dir("pkg-1.0/a/"),
        ]),
    );
    let ex = fx.extract(&a).unwrap();
    assert_eq!(std::fs::read(ex.root.join("a/b/c.txt")).unwrap(), b"c");
}

#[test]
fn pax_global_header_is_not_a_top_level_entry() {
    let fx = Fx::new();
    let mut g = file(
        "pax_global_header",
        b"52 comment=0123456789abcdef0123456789abcdef01234567\n",
    );
    g.kind = EntryType::XGlobalHeader;
    let a = fx.archive(
        "a.tar",
        &tar_bytes(&[g, dir("pkg-1.0/"), file("pkg-1.0/x", b"x")]),
    );
    let ex = fx.extract(&a).unwrap();
    assert_eq!(ex.top_level, "pkg-1.0");
}

// ---------- names ----------

#[test]
fn absolute_path_is_refused() {
    let err = refuse_tar(
        &[dir("pkg/"), file("/tmp/sdist-box-abs", b"x")],
        "/tmp/sdist-box-abs",
    );
    assert_eq!(problem(&err), &EntryProblem::Absolute);
    assert!(!Path::new("/tmp/sdist-box-abs").exists());
}

#[test]
fn parent_component_is_refused() {
    let err = refuse_tar(
        &[
            dir("pkg-1.0/"),
            file("pkg-1.0/../../sentinel", b"overwritten"),
        ],
        "pkg-1.0/../../sentinel",
    );
    assert_eq!(problem(&err), &EntryProblem::ParentDir);
    assert!(err.to_string().contains("has a `..` component"));
}

#[test]
fn empty_name_is_refused() {
    let fx = Fx::new();
    let a = fx.archive("a.tar", &tar_bytes(&[dir("pkg/"), file("", b"x")]));
    let err = fx.extract(&a).unwrap_err();
    assert_eq!(problem(&err), &EntryProblem::EmptyName);
    assert!(err.to_string().contains("entry ``"), "{err}");
    fx.assert_clean();
}

#[test]
fn control_characters_in_names_are_escaped_in_errors() {
    let err = refuse_tar(
        &[dir("pkg/"), file("pkg/\x1b[2K/../x", b"x")],
        "pkg/\\u{1b}[2K/../x",
    );
    assert!(!err.to_string().contains('\x1b'));
}

#[test]
fn zip_windows_paths_are_refused() {
    let err = refuse_zip(
        &[Z::Dir("pkg/"), Z::File("pkg\\..\\..\\x", b"x", 0o644)],
        "pkg\\..\\..\\x",
    );
    assert!(matches!(problem(&err), EntryProblem::WindowsPath { .. }));
    let err = refuse_zip(&[Z::Dir("pkg/"), Z::File("C:/x", b"x", 0o644)], "C:/x");
    assert!(matches!(problem(&err), EntryProblem::WindowsPath { .. }));
}

#[test]
fn zip_parent_and_absolute_names_are_refused() {
    let err = refuse_zip(
        &[Z::Dir("pkg/"), Z::File("pkg/../../x", b"x", 0o644)],
        "pkg/../../x",
    );
    assert_eq!(problem(&err), &EntryProblem::ParentDir);
    let err = refuse_zip(&[Z::Dir("pkg/"), Z::File("/abs/x", b"x", 0o644)], "/abs/x");
    assert_eq!(problem(&err), &EntryProblem::Absolute);
}

// ---------- links ----------

#[test]
fn symlink_leaving_the_tree_is_refused() {
    let err = refuse_tar(
        &[dir("pkg/"), symlink("pkg/evil", "../../sentinel")],
        "pkg/evil",
    );
    assert!(matches!(problem(&err), EntryProblem::LinkEscapes { .. }));
    // Pointing at the top-level directory's parent (dest) also leaves it.
    let err = refuse_tar(&[dir("pkg/"), symlink("pkg/up", "..")], "pkg/up");
    assert!(matches!(problem(&err), EntryProblem::LinkEscapes { .. }));
}

#[test]
fn absolute_symlink_is_refused() {
    let err = refuse_tar(
        &[dir("pkg/"), symlink("pkg/passwd", "/etc/passwd")],
        "pkg/passwd",
    );
    assert!(matches!(problem(&err), EntryProblem::LinkAbsolute { .. }));
    assert!(err.to_string().contains("/etc/passwd"));
}

#[test]
fn symlink_chain_leaving_the_tree_is_refused_whatever_the_order() {
    // `pkg/esc` looks harmless until `pkg/a/up` exists: refused at the end.
    let err = refuse_tar(
        &[
            dir("pkg/"),
            dir("pkg/a/"),
            symlink("pkg/esc", "a/up/../.."),
            symlink("pkg/a/up", ".."),
        ],
        "pkg/esc",
    );
    assert!(matches!(problem(&err), EntryProblem::LinkEscapes { .. }));
    // And in the other order, at once.
    let err = refuse_tar(
        &[
            dir("pkg/"),
            dir("pkg/a/"),
            symlink("pkg/a/up", ".."),
            symlink("pkg/esc", "a/up/../.."),
        ],
        "pkg/esc",
    );
    assert!(matches!(problem(&err), EntryProblem::LinkEscapes { .. }));
}

#[test]
fn symlink_loop_is_refused() {
    let err = refuse_tar(
        &[dir("pkg/"), symlink("pkg/a", "b"), symlink("pkg/b", "a")],
        "pkg/a",
    );
    assert!(matches!(problem(&err), EntryProblem::LinkLoop { .. }));
}

#[test]
fn writing_through_a_symlink_is_refused() {
    let err = refuse_tar(
        &[
            dir("pkg/"),
            dir("pkg/sub/"),
            symlink("pkg/link", "sub"),
            file("pkg/link/f", b"x"),
        ],
        "pkg/link/f",
    );
    assert_eq!(
        problem(&err),
        &EntryProblem::ThroughLink {
            link: "pkg/link".into()
        }
    );
    assert!(
        err.to_string()
            .contains("would be written through the link `pkg/link`")
    );
}

#[test]
fn hardlink_outside_or_to_a_non_file_is_refused() {
    let err = refuse_tar(&[dir("pkg/"), hardlink("pkg/h", "../sentinel")], "pkg/h");
    assert!(matches!(problem(&err), EntryProblem::HardlinkTarget { .. }));
    let err = refuse_tar(&[dir("pkg/"), hardlink("pkg/h", "/etc/passwd")], "pkg/h");
    assert!(matches!(problem(&err), EntryProblem::HardlinkTarget { .. }));
    // Not earlier: the target comes after the link.
    let err = refuse_tar(
        &[dir("pkg/"), hardlink("pkg/h", "pkg/f"), file("pkg/f", b"x")],
        "pkg/h",
    );
    assert!(matches!(problem(&err), EntryProblem::HardlinkTarget { .. }));
    // Not a regular file: a directory, or a symlink.
    let err = refuse_tar(
        &[dir("pkg/"), dir("pkg/d/"), hardlink("pkg/h", "pkg/d")],
        "pkg/h",
    );
    assert!(matches!(problem(&err), EntryProblem::HardlinkTarget { .. }));
    let err = refuse_tar(
        &[
            dir("pkg/"),
            file("pkg/f", b"x"),
            symlink("pkg/s", "f"),
            hardlink("pkg/h", "pkg/s"),
        ],
        "pkg/h",
    );
    assert!(matches!(problem(&err), EntryProblem::HardlinkTarget { .. }));
}

#[test]
fn zip_symlinks_follow_the_same_rules() {
    let err = refuse_zip(
        &[Z::Dir("pkg/"), Z::Symlink("pkg/evil", "../../etc")],
        "pkg/evil",
    );
    assert!(matches!(problem(&err), EntryProblem::LinkEscapes { .. }));
    let err = refuse_zip(
        &[Z::Dir("pkg/"), Z::Symlink("pkg/evil", "/etc")],
        "pkg/evil",
    );
    assert!(matches!(problem(&err), EntryProblem::LinkAbsolute { .. }));
    let err = refuse_zip(
        &[
            Z::Dir("pkg/"),
            Z::Symlink("pkg/l", "."),
            Z::File("pkg/l/x", b"x", 0o644),
        ],
        "pkg/l/x",
    );
    assert!(matches!(problem(&err), EntryProblem::ThroughLink { .. }));
}

// ---------- special files ----------

#[test]
fn device_and_fifo_entries_are_refused() {
    for (kind, word) in [
        (EntryType::Char, "character device"),
        (EntryType::Block, "block device"),
        (EntryType::Fifo, "FIFO"),
    ] {
        let err = refuse_tar(&[dir("pkg/"), t("pkg/dev", kind)], "pkg/dev");
        assert!(matches!(problem(&err), EntryProblem::SpecialFile { .. }));
        assert!(err.to_string().contains(word), "{err}");
    }
    let err = refuse_tar(
        &[dir("pkg/"), t("pkg/odd", EntryType::new(b'Z'))],
        "pkg/odd",
    );
    assert!(matches!(problem(&err), EntryProblem::SpecialFile { .. }));
}

#[test]
fn zip_special_files_are_refused() {
    let err = refuse_zip(
        &[Z::Dir("pkg/"), Z::Raw("pkg/fifo", 0o010_644, b"")],
        "pkg/fifo",
    );
    assert!(matches!(problem(&err), EntryProblem::SpecialFile { .. }));
    let err = refuse_zip(
        &[Z::Dir("pkg/"), Z::Raw("pkg/dev", 0o020_644, b"")],
        "pkg/dev",
    );
    assert!(matches!(problem(&err), EntryProblem::SpecialFile { .. }));
}

// ---------- overwrites ----------

#[test]
fn duplicate_entries_are_refused() {
    let err = refuse_tar(
        &[dir("pkg/"), file("pkg/a", b"1"), file("pkg/./a", b"2")],
        "pkg/./a",
    );
    assert_eq!(problem(&err), &EntryProblem::Duplicate);
    let err = refuse_tar(
        &[dir("pkg/"), symlink("pkg/a", "b"), dir("pkg/a/")],
        "pkg/a/",
    );
    assert_eq!(problem(&err), &EntryProblem::Duplicate);
    let err = refuse_zip(
        &[
            Z::Dir("pkg/"),
            Z::File("pkg/a", b"1", 0o644),
            Z::File("pkg//a", b"2", 0o644),
        ],
        "pkg//a",
    );
    assert_eq!(problem(&err), &EntryProblem::Duplicate);
}

#[test]
fn case_colliding_entries_are_refused() {
    let err = refuse_tar(
        &[
            dir("pkg/"),
            file("pkg/README", b"1"),
            file("pkg/readme", b"2"),
        ],
        "pkg/readme",
    );
    assert_eq!(
        problem(&err),
        &EntryProblem::CaseCollision {
            other: "pkg/README".into()
        }
    );
    // Through an implicit parent directory too.
    let err = refuse_tar(
        &[
            dir("pkg/"),
            file("pkg/Src/a", b"1"),
            file("pkg/src/b", b"2"),
        ],
        "pkg/src/b",
    );
    assert!(matches!(problem(&err), EntryProblem::CaseCollision { .. }));
    let err = refuse_zip(
        &[
            Z::Dir("pkg/"),
            Z::File("pkg/Setup.py", b"1", 0o644),
            Z::File("pkg/setup.py", b"2", 0o644),
        ],
        "pkg/setup.py",
    );
    assert!(matches!(problem(&err), EntryProblem::CaseCollision { .. }));
}

#[test]
fn entry_under_a_file_is_refused() {
    let err = refuse_tar(
        &[dir("pkg/"), file("pkg/f", b"1"), file("pkg/f/g", b"2")],
        "pkg/f/g",
    );
    assert!(matches!(problem(&err), EntryProblem::UnderFile { .. }));
}

// ---------- top level ----------

#[test]
fn more_than_one_top_level_directory_is_refused() {
    let fx = Fx::new();
    let a = fx.archive(
        "a.tar",
        &tar_bytes(&[dir("a/"), file("b/x", b"x"), dir("c/")]),
    );
    let err = fx.extract(&a).unwrap_err();
    assert!(matches!(err, ArchiveError::Layout { .. }), "{err:?}");
    assert!(
        err.to_string().contains(
            "has 3 top-level entries (a, b, c): an sdist has exactly one top-level directory"
        ),
        "{err}"
    );
    fx.assert_clean();
}

#[test]
fn top_level_file_is_refused() {
    let err = refuse_tar(&[dir("pkg/"), file("setup.py", b"x")], "setup.py");
    assert_eq!(problem(&err), &EntryProblem::TopLevelFile);
    let err = refuse_zip(&[Z::File("setup.py", b"x", 0o644)], "setup.py");
    assert_eq!(problem(&err), &EntryProblem::TopLevelFile);
}

#[test]
fn empty_archive_is_refused() {
    let fx = Fx::new();
    let a = fx.archive("a.tar", &tar_bytes(&[dir("./")]));
    let err = fx.extract(&a).unwrap_err();
    assert!(err.to_string().contains("is empty"), "{err}");
    fx.assert_clean();
}

// ---------- limits ----------

fn with_limits(entries: &[T], limits: Limits) -> (Fx, Result<Extracted, ArchiveError>) {
    let fx = Fx::new();
    let a = fx.archive("a.tar.gz", &gz(&tar_bytes(entries)));
    let r = extract(&a, &fx.dest(), &limits);
    (fx, r)
}

#[test]
fn entry_count_limit() {
    let mut entries = vec![dir("pkg/")];
    for i in 0..10 {
        entries.push(file(&format!("pkg/f{i}"), b"x"));
    }
    let limits = Limits {
        max_entries: 5,
        ..Limits::default()
    };
    let (fx, r) = with_limits(&entries, limits);
    let err = r.unwrap_err();
    assert!(
        matches!(
            err,
            ArchiveError::Limit {
                exceeded: LimitExceeded::Entries { limit: 5 },
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("more than 5 entries"));
    fx.assert_clean();
    // Exactly at the limit is fine.
    let (_fx, r) = with_limits(&entries[..5], limits);
    r.unwrap();
}

#[test]
fn total_bytes_limit() {
    let entries = [
        dir("pkg/"),
        file("pkg/a", &[1; 800]),
        file("pkg/b", &[2; 800]),
    ];
    let limits = Limits {
        max_total_bytes: 1000,
        ..Limits::default()
    };
    let (fx, r) = with_limits(&entries, limits);
    let err = r.unwrap_err();
    assert!(
        matches!(
            err,
            ArchiveError::Limit {
                exceeded: LimitExceeded::TotalBytes { limit: 1000 },
                ..
            }
        ),
        "{err:?}"
    );
    fx.assert_clean();
    let (_fx, r) = with_limits(&entries[..2], limits);
    assert_eq!(r.unwrap().total_bytes, 800);
}

#[test]
fn total_bytes_limit_counts_hardlink_copies() {
    let entries = [
        dir("pkg/"),
        file("pkg/a", &[1; 600]),
        hardlink("pkg/b", "pkg/a"),
    ];
    let limits = Limits {
        max_total_bytes: 1000,
        ..Limits::default()
    };
    let (fx, r) = with_limits(&entries, limits);
    assert!(matches!(r, Err(ArchiveError::Limit { .. })), "{r:?}");
    fx.assert_clean();
}

#[test]
fn file_size_limit() {
    let entries = [dir("pkg/"), file("pkg/big", &[0; 200])];
    let limits = Limits {
        max_file_bytes: 100,
        ..Limits::default()
    };
    let (fx, r) = with_limits(&entries, limits);
    let err = r.unwrap_err();
    assert_eq!(problem(&err), &EntryProblem::FileTooLarge { limit: 100 });
    assert!(err.to_string().contains("entry `pkg/big`"));
    fx.assert_clean();

    let fx = Fx::new();
    let a = fx.archive(
        "a.zip",
        &zip_bytes(&[Z::Dir("pkg/"), Z::File("pkg/big", &[0; 200], 0o644)]),
    );
    let err = extract(&a, &fx.dest(), &limits).unwrap_err();
    assert_eq!(problem(&err), &EntryProblem::FileTooLarge { limit: 100 });
    fx.assert_clean();
}

#[test]
fn ratio_limit_stops_a_gzip_bomb_early() {
    let zeros = vec![0u8; 50 << 20];
    let bomb = gz(&tar_bytes(&[dir("pkg/"), file("pkg/zeros", &zeros)]));
    assert!(bomb.len() < 200_000, "the bomb is small: {}", bomb.len());
    let fx = Fx::new();
    let a = fx.archive("a.tar.gz", &bomb);
    let err = fx.extract(&a).unwrap_err();
    assert!(
        matches!(
            err,
            ArchiveError::Limit {
                exceeded: LimitExceeded::Ratio { limit: 250, .. },
                ..
            }
        ),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains("compression ratio limit"), "{msg}");
    assert!(msg.contains("250 times its size"), "{msg}");
    fx.assert_clean();
}

#[test]
fn ratio_limit_stops_a_zip_bomb() {
    let zeros = vec![0u8; 50 << 20];
    let fx = Fx::new();
    let a = fx.archive(
        "a.zip",
        &zip_bytes(&[Z::Dir("pkg/"), Z::File("pkg/zeros", &zeros, 0o644)]),
    );
    let err = fx.extract(&a).unwrap_err();
    assert!(
        matches!(
            err,
            ArchiveError::Limit {
                exceeded: LimitExceeded::Ratio { .. },
                ..
            }
        ),
        "{err:?}"
    );
    fx.assert_clean();
}

#[test]
fn ratio_limit_counts_hardlink_copies() {
    // The stream stays small (1 MiB of zeros, then link headers), but each
    // hard link is written out as a copy: 21 MiB from a ~1 KiB archive.
    let mut entries = vec![dir("pkg/"), file("pkg/zeros", &vec![0u8; 1 << 20])];
    for i in 0..20 {
        entries.push(hardlink(&format!("pkg/copy{i}"), "pkg/zeros"));
    }
    let (fx, r) = with_limits(&entries, Limits::default());
    let err = r.unwrap_err();
    assert!(
        matches!(
            err,
            ArchiveError::Limit {
                exceeded: LimitExceeded::Ratio { .. },
                ..
            }
        ),
        "{err:?}"
    );
    fx.assert_clean();
}

#[test]
fn ratio_floor_lets_tiny_sdists_through() {
    // 1 MiB of zeros gzips to about 1 KiB: a ratio near 1000, but under the
    // floor's allowance (250 × 64 KiB).
    let entries = [dir("pkg/"), file("pkg/zeros", &vec![0u8; 1 << 20])];
    let (_fx, r) = with_limits(&entries, Limits::default());
    assert_eq!(r.unwrap().total_bytes, 1 << 20);
}

#[test]
fn bloat_outside_file_data_is_metered() {
    // A directory entry whose header claims 40 MiB of data: nothing is
    // written, but the decompressor still has to produce it.
    let mut d = dir("pkg/");
    d.data = vec![0u8; 40 << 20];
    let (fx, r) = with_limits(&[d], Limits::default());
    let err = r.unwrap_err();
    assert!(
        matches!(
            err,
            ArchiveError::Limit {
                exceeded: LimitExceeded::Ratio { .. },
                ..
            }
        ),
        "{err:?}"
    );
    fx.assert_clean();
}

#[test]
fn lying_tar_header_cannot_write_more_than_declared() {
    // The header declares 10 bytes; 1500 bytes of data follow.
    let e = file("pkg/f", b"");
    let mut bytes = tar_bytes(&[dir("pkg/")]);
    bytes.truncate(512); // drop the end-of-archive blocks
    bytes.extend_from_slice(raw_header(&e, 10).as_bytes());
    bytes.extend_from_slice(&[b'A'; 1500]);
    bytes.extend_from_slice(&[0; 1024]);
    let fx = Fx::new();
    let a = fx.archive("a.tar", &bytes);
    let err = fx.extract(&a).unwrap_err();
    // The reader takes 10 bytes, then finds garbage where the next header
    // should be.
    assert!(matches!(err, ArchiveError::Corrupt { .. }), "{err:?}");
    fx.assert_clean();

    // And with a valid header following the 10 declared bytes the file is
    // exactly those bytes.
    let mut bytes = tar_bytes(&[dir("pkg/")]);
    bytes.truncate(512);
    bytes.extend_from_slice(raw_header(&e, 10).as_bytes());
    let mut block = [b'A'; 512];
    block[10..].fill(0);
    bytes.extend_from_slice(&block);
    bytes.extend_from_slice(&tar_bytes(&[file("pkg/g", b"g")]));
    let a = fx.archive("a.tar", &bytes);
    let ex = fx.extract(&a).unwrap();
    assert_eq!(std::fs::read(ex.root.join("f")).unwrap(), [b'A'; 10]);
    assert_eq!(ex.total_bytes, 11);
}

#[test]
fn lying_zip_sizes_are_caught() {
    let data = vec![b'z'; 5000];
    let mut bytes = zip_bytes(&[Z::Dir("pkg/"), Z::File("pkg/f", &data, 0o644)]);
    // Make the central directory claim 10 bytes for pkg/f.
    let cd = bytes
        .windows(4)
        .enumerate()
        .filter(|(_, w)| *w == b"PK\x01\x02")
        .map(|(i, _)| i)
        .nth(1)
        .expect("second central directory header");
    bytes[cd + 24..cd + 28].copy_from_slice(&10u32.to_le_bytes());
    let fx = Fx::new();
    let a = fx.archive("a.zip", &bytes);
    let err = fx.extract(&a).unwrap_err();
    // The zip crate notices first (its reader stops at the declared size);
    // the tree's own check is the second line.
    let caught = matches!(err, ArchiveError::Corrupt { .. })
        || matches!(
            err,
            ArchiveError::Entry {
                problem: EntryProblem::LargerThanDeclared { declared: 10 },
                ..
            }
        );
    assert!(caught, "{err:?}");
    fx.assert_clean();
}

// ---------- modes and times ----------

#[test]
fn setuid_setgid_sticky_are_stripped_and_recorded() {
    let fx = Fx::new();
    let a = fx.archive(
        "a.tar",
        &tar_bytes(&[
            mode(dir("pkg/"), 0o2755),
            mode(file("pkg/suid", b"x"), 0o4755),
            mode(file("pkg/sgid", b"x"), 0o2644),
            mode(dir("pkg/tmp/"), 0o1777),
            mode(file("pkg/plain", b"x"), 0o600),
        ]),
    );
    let ex = fx.extract(&a).unwrap();
    assert_eq!(
        ex.stripped_modes,
        ["pkg/", "pkg/suid", "pkg/sgid", "pkg/tmp/"]
    );
    let m = |p: &str| std::fs::metadata(ex.root.join(p)).unwrap().mode() & 0o7777;
    assert_eq!(m("suid"), 0o755);
    assert_eq!(m("sgid"), 0o644);
    assert_eq!(m("tmp"), 0o755);
    assert_eq!(m("plain"), 0o644);
    assert_eq!(m(""), 0o755);

    let fx = Fx::new();
    let a = fx.archive(
        "a.zip",
        &zip_bytes(&[Z::Dir("pkg/"), Z::Raw("pkg/suid", 0o104_755, b"x")]),
    );
    let ex = fx.extract(&a).unwrap();
    assert_eq!(ex.stripped_modes, ["pkg/suid"]);
    assert_eq!(
        std::fs::metadata(ex.root.join("suid")).unwrap().mode() & 0o7777,
        0o755
    );
}

#[test]
fn absurd_mtimes_are_clamped() {
    let mut f = file("pkg/future", b"x");
    f.mtime = 0o77_777_777_777; // year 6000-something
    let fx = Fx::new();
    let a = fx.archive("a.tar", &tar_bytes(&[dir("pkg/"), f]));
    let ex = fx.extract(&a).unwrap();
    let mtime = std::fs::metadata(ex.root.join("future")).unwrap().mtime();
    assert_eq!(mtime, 4_102_444_800);
}

#[test]
fn ownership_is_not_taken_from_the_archive() {
    let mut f = file("pkg/owned", b"x");
    f.mode = 0o644;
    let mut h_entries = vec![dir("pkg/")];
    h_entries.push(f);
    let mut bytes = Vec::new();
    {
        let mut b = ::tar::Builder::new(&mut bytes);
        for e in &h_entries {
            let mut h = raw_header(e, e.data.len() as u64);
            h.set_uid(12345);
            h.set_gid(54321);
            h.set_cksum();
            b.append(&h, &e.data[..]).unwrap();
        }
        b.finish().unwrap();
    }
    let fx = Fx::new();
    let a = fx.archive("a.tar", &bytes);
    let ex = fx.extract(&a).unwrap();
    let md = std::fs::metadata(ex.root.join("owned")).unwrap();
    let me = std::fs::metadata(&fx.base).unwrap();
    assert_eq!((md.uid(), md.gid()), (me.uid(), me.gid()));
}

// ---------- destination ----------

#[test]
fn existing_dest_is_refused_and_left_alone() {
    let fx = Fx::new();
    std::fs::create_dir(fx.dest()).unwrap();
    std::fs::write(fx.dest().join("keep"), b"keep").unwrap();
    let a = fx.archive("a.tar", &sdist_tar());
    let err = fx.extract(&a).unwrap_err();
    assert!(matches!(err, ArchiveError::DestExists { .. }), "{err:?}");
    assert_eq!(std::fs::read(fx.dest().join("keep")).unwrap(), b"keep");

    // A planted symlink as dest is not followed either.
    let fx = Fx::new();
    std::fs::create_dir(fx.base.join("elsewhere")).unwrap();
    std::os::unix::fs::symlink(fx.base.join("elsewhere"), fx.dest()).unwrap();
    let a = fx.archive("a.tar", &sdist_tar());
    let err = fx.extract(&a).unwrap_err();
    assert!(matches!(err, ArchiveError::DestExists { .. }), "{err:?}");
    assert_eq!(
        std::fs::read_dir(fx.base.join("elsewhere"))
            .unwrap()
            .count(),
        0
    );
}

// ---------- format, hashes ----------

#[test]
fn unknown_format_names_the_file() {
    let fx = Fx::new();
    let a = fx.archive("notes.txt", b"just some text, no archive here");
    let err = detect_format(&a).unwrap_err();
    assert!(matches!(err, ArchiveError::UnknownFormat { .. }));
    assert!(err.to_string().contains("notes.txt"), "{err}");
    let e = fx.archive("empty.tar.gz", b"");
    assert!(detect_format(&e).unwrap_err().to_string().contains("empty"));
    // extract refuses it before creating dest
    assert!(fx.extract(&a).is_err());
    assert!(!fx.dest().exists());
}

#[test]
fn corrupt_archive_is_an_error_and_cleaned_up() {
    let mut bytes = gz(&sdist_tar());
    let n = bytes.len();
    bytes.truncate(n / 2);
    let fx = Fx::new();
    let a = fx.archive("a.tar.gz", &bytes);
    let err = fx.extract(&a).unwrap_err();
    assert!(err.to_string().contains("a.tar.gz"), "{err}");
    fx.assert_clean();
}

const ABC_SHA256: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

#[test]
fn sha256_of_a_file() {
    let fx = Fx::new();
    let a = fx.archive("abc", b"abc");
    assert_eq!(sha256_file(&a).unwrap(), ABC_SHA256);
}

#[test]
fn verify_sha256_accepts_either_case() {
    let fx = Fx::new();
    let a = fx.archive("abc", b"abc");
    assert_eq!(verify_sha256(&a, ABC_SHA256).unwrap(), ABC_SHA256);
    assert_eq!(
        verify_sha256(&a, &ABC_SHA256.to_ascii_uppercase()).unwrap(),
        ABC_SHA256
    );
}

#[test]
fn verify_sha256_mismatch_shows_both() {
    let fx = Fx::new();
    let a = fx.archive("abc", b"abd");
    let err = verify_sha256(&a, ABC_SHA256).unwrap_err();
    assert!(matches!(err, ArchiveError::DigestMismatch { .. }));
    let msg = err.to_string();
    assert!(msg.contains(&format!("expected {ABC_SHA256}")), "{msg}");
    assert!(
        msg.contains(&format!("got {}", sha256_file(&a).unwrap())),
        "{msg}"
    );
    assert!(msg.contains("abc"), "names the file: {msg}");
}

#[test]
fn verify_sha256_rejects_bad_input() {
    let fx = Fx::new();
    let a = fx.archive("abc", b"abc");
    for bad in [
        "",
        "abc",
        &ABC_SHA256[..63],
        &format!("{ABC_SHA256}0"),
        &ABC_SHA256.replace('b', "g"),
    ] {
        let err = verify_sha256(&a, bad).unwrap_err();
        assert!(
            matches!(err, ArchiveError::BadDigest { .. }),
            "{bad}: {err:?}"
        );
        assert!(err.to_string().contains("64 hex digits"));
    }
}

// ---------- PAX extended headers ----------

/// One PAX record: "<len> <key>=<value>\n", where <len> counts itself.
fn pax_record(key: &str, value: &str) -> String {
    let body = format!(" {key}={value}\n");
    let mut len = body.len() + 1;
    while format!("{len}{body}").len() != len {
        len += 1;
    }
    format!("{len}{body}")
}

/// A tar stream written by hand: each `(header, data)` as a 512-byte header
/// and its data padded to 512, then the two zero blocks. The data need not
/// be the header's size (a PAX `size` says what really follows).
fn raw_tar(parts: &[(Header, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (h, data) in parts {
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

fn pax_header(records: &[(&str, &str)]) -> (Header, Vec<u8>) {
    let data: String = records.iter().map(|(k, v)| pax_record(k, v)).collect();
    let h = raw_header(&t("pkg/PaxHeader", EntryType::XHeader), data.len() as u64);
    (h, data.into_bytes())
}

#[test]
fn pax_mtime_is_used_and_old_times_are_raised_to_1980() {
    // flit_core writes 0 in the ustar field and the real time in PAX.
    let mut with_pax = file("pkg/pax", b"x");
    with_pax.mtime = 0;
    let mut bare = file("pkg/bare", b"y");
    bare.mtime = 0;
    let a = raw_tar(&[
        (raw_header(&dir("pkg/"), 0), Vec::new()),
        pax_header(&[("mtime", "1700000000.123456789")]),
        (raw_header(&with_pax, 1), b"x".to_vec()),
        (raw_header(&bare, 1), b"y".to_vec()),
    ]);
    let fx = Fx::new();
    let ex = fx.extract(&fx.archive("a.tar", &a)).unwrap();
    let mtime = |n: &str| std::fs::metadata(ex.root.join(n)).unwrap().mtime();
    assert_eq!(mtime("pax"), 1_700_000_000);
    // 1970 is raised to 1980-01-02: a wheel (a zip) cannot store older.
    assert_eq!(mtime("bare"), 315_619_200);
}

#[test]
fn pax_path_and_size_are_what_the_checks_see() {
    // A harmless ustar name, a PAX path that climbs out: refused by the
    // PAX name, and nothing written.
    let a = raw_tar(&[
        (raw_header(&dir("pkg/"), 0), Vec::new()),
        pax_header(&[("path", "pkg/../../sentinel")]),
        (
            raw_header(&file("pkg/harmless", b"overwritten"), 11),
            b"overwritten".to_vec(),
        ),
    ]);
    let fx = Fx::new();
    let err = fx.extract(&fx.archive("a.tar", &a)).unwrap_err();
    assert_eq!(problem(&err), &EntryProblem::ParentDir);
    assert!(err.to_string().contains("pkg/../../sentinel"), "{err}");
    fx.assert_clean();

    // A small ustar size, a PAX size past the file limit: the PAX size is
    // the one enforced.
    let a = raw_tar(&[
        (raw_header(&dir("pkg/"), 0), Vec::new()),
        pax_header(&[("size", "200")]),
        (raw_header(&file("pkg/big", b""), 10), vec![0; 200]),
    ]);
    let fx = Fx::new();
    let limits = Limits {
        max_file_bytes: 100,
        ..Limits::default()
    };
    let err = extract(&fx.archive("a.tar", &a), &fx.dest(), &limits).unwrap_err();
    assert_eq!(problem(&err), &EntryProblem::FileTooLarge { limit: 100 });
    fx.assert_clean();

    // And a PAX linkpath that leaves the tree is refused like any link.
    let a = raw_tar(&[
        (raw_header(&dir("pkg/"), 0), Vec::new()),
        pax_header(&[("linkpath", "../../../etc/passwd")]),
        (raw_header(&symlink("pkg/l", "ok"), 0), Vec::new()),
    ]);
    let fx = Fx::new();
    let err = fx.extract(&fx.archive("a.tar", &a)).unwrap_err();
    assert!(err.to_string().contains("pkg/l"), "{err}");
    fx.assert_clean();
}

// ---------- opening inputs ----------

#[test]
fn an_input_that_is_not_a_regular_file_is_refused_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pkg-1.0.tar.gz");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    // Nobody writes the FIFO: a blocking open would never return. The test
    // harness' own timeout would be the only way out, so run it on a
    // thread and bound the wait.
    let (tx, rx) = std::sync::mpsc::channel();
    let path = fifo.clone();
    std::thread::spawn(move || {
        let _ = tx.send((
            sha256_file(&path).map(drop).map_err(|e| e.to_string()),
            detect_format(&path).map(drop).map_err(|e| e.to_string()),
        ));
    });
    let (hash, format) = rx
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("opening a FIFO blocked");
    for r in [hash, format] {
        let e = r.unwrap_err();
        assert!(e.contains("FIFO, not a regular file"), "{e}");
        assert!(e.contains("pkg-1.0.tar.gz"), "{e}");
    }
    let out = dir.path().join("out");
    let e = extract(&fifo, &out, &Limits::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("FIFO"), "{e}");
    assert!(!out.exists());

    let real = dir.path().join("real.tar.gz");
    std::fs::write(&real, b"x").unwrap();
    let link = dir.path().join("link-1.0.tar.gz");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let e = sha256_file(&link).unwrap_err().to_string();
    assert!(e.contains("symbolic link"), "{e}");
    let e = sha256_file(dir.path()).unwrap_err().to_string();
    assert!(e.contains("directory"), "{e}");
    assert!(sha256_file(&real).is_ok());
}
