//! Nothing from an sdist's name reaches a terminal raw: file names and
//! directory names full of terminal sequences (clear screen, an OSC 8
//! hyperlink, a bidi override, CR, BEL, invalid UTF-8) go through `build`
//! (built and failed), `build-all` (`--dry-run`, progress, summary),
//! `index` and `inspect`, and every byte on stdout and stderr is checked.
//! And a scan of src/ keeps `.display()` out of printing macros, where
//! `crate::text::path` belongs.

mod common;

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Everything a terminal could act on, in one name: clear screen, an OSC 8
/// hyperlink (no `/`: it is one file name), a right-to-left override, CR,
/// BEL and a C1 CSI as a character — all valid UTF-8, so a directory so
/// named still holds a build's outputs.
const HOSTILE: &[u8] = b"\x1b[2J\x1b]8;;x:127.0.0.1\x07click\x1b]8;;\x07\xe2\x80\xae\r\x07\xc2\x9b";
/// Bytes that are not UTF-8 (a file name of these is refused, by name).
const NOT_UTF8: &[u8] = b"\xff\xfe";

/// How the hostile part must look once escaped (its recognisable pieces).
const ESCAPED: &[&str] = &[
    "\\u{1b}[2J",
    "\\u{1b}]8;;x:127.0.0.1\\u{7}click",
    "\\u{202e}",
    "\\u{d}",
    "\\u{9b}",
];
const ESCAPED_NOT_UTF8: &str = "\\xff\\xfe";

fn hostile(prefix: &str, suffix: &str) -> OsString {
    let mut b = prefix.as_bytes().to_vec();
    b.extend_from_slice(HOSTILE);
    b.extend_from_slice(suffix.as_bytes());
    OsString::from_vec(b)
}

/// The bytes that are not UTF-8 come first: a line that shortens a long
/// name still shows them.
fn hostile_not_utf8(prefix: &str, suffix: &str) -> OsString {
    let mut b = prefix.as_bytes().to_vec();
    b.extend_from_slice(NOT_UTF8);
    b.extend_from_slice(HOSTILE);
    b.extend_from_slice(suffix.as_bytes());
    OsString::from_vec(b)
}

fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}')
}

/// No raw control byte (but newline and tab), no C1 control, no bidi
/// control, valid UTF-8: what a terminal shows as text and nothing else.
fn assert_clean(what: &str, bytes: &[u8]) -> String {
    let text = std::str::from_utf8(bytes).unwrap_or_else(|e| {
        panic!(
            "{what}: not UTF-8 at {}: {:?}",
            e.valid_up_to(),
            String::from_utf8_lossy(bytes)
        )
    });
    for (i, c) in text.char_indices() {
        let bad = (c.is_control() && c != '\n' && c != '\t') || is_bidi_control(c);
        assert!(
            !bad,
            "{what}: raw {c:?} at byte {i}: …{:?}…",
            &text[text.floor_char_boundary(i.saturating_sub(80))
                ..text.ceil_char_boundary((i + 40).min(text.len()))]
        );
    }
    text.to_string()
}

fn assert_output_clean(what: &str, out: &Output) -> String {
    let stdout = assert_clean(&format!("{what} (stdout)"), &out.stdout);
    let stderr = assert_clean(&format!("{what} (stderr)"), &out.stderr);
    format!("{stdout}{stderr}")
}

fn assert_recognisable(what: &str, text: &str) {
    for piece in ESCAPED {
        assert!(
            text.contains(piece),
            "{what}: `{piece}` missing in:\n{text}"
        );
    }
}

fn sdist_box() -> Command {
    let mut c = Command::new(common::bin());
    c.env("NO_COLOR", "1");
    c
}

fn offline(cmd: &mut Command) -> &mut Command {
    cmd.arg("--find-links")
        .arg(common::wheelhouse().unwrap())
        .arg("--no-index")
        .arg("--cache-dir")
        .arg(common::env_cache())
}

/// The sdists: one that builds and one whose build fails, both with
/// ordinary names, in a directory with a hostile name; one whose own file
/// name is hostile; one whose file name is not even UTF-8.
struct Inputs {
    _dir: tempfile::TempDir,
    in_dir: PathBuf,
    out_dir: PathBuf,
    good: PathBuf,
    failing: PathBuf,
    named: PathBuf,
    not_utf8: PathBuf,
}

fn inputs() -> Inputs {
    let dir = tempfile::tempdir().unwrap();
    let in_dir = dir.path().join(hostile("in-", ""));
    let out_dir = dir.path().join(hostile("out-", ""));
    std::fs::create_dir(&in_dir).unwrap();
    let good = common::Sdist::setuptools_with("escok", "").write(&in_dir);
    // The failure's own output is hostile too (the tail printed on failure).
    let failing = common::Sdist::setuptools_with(
        "escfail",
        "print('\\x1b[2J\\x1b]8;;x:127.0.0.1\\x07click\\x1b]8;;\\x07\\u202e\\r\\x07', file=sys.stderr)\nraise SystemExit(3)",
    )
    .write(&in_dir);
    let named_src = common::Sdist::setuptools_with("escname", "").write(dir.path());
    let named = in_dir.join(hostile("escname-0.1", ".tar.gz"));
    std::fs::rename(named_src, &named).unwrap();
    let other_src = common::Sdist::setuptools_with("escbytes", "").write(dir.path());
    let not_utf8 = in_dir.join(hostile_not_utf8("escbytes-0.1", ".tar.gz"));
    std::fs::rename(other_src, &not_utf8).unwrap();
    Inputs {
        _dir: dir,
        in_dir,
        out_dir,
        good,
        failing,
        named,
        not_utf8,
    }
}

fn build(sdist: &Path, out_dir: &Path, extra: &[&str]) -> Output {
    let mut cmd = sdist_box();
    cmd.arg("build")
        .arg(sdist)
        .arg("-o")
        .arg(out_dir)
        .args(extra);
    offline(&mut cmd).output().unwrap()
}

#[test]
fn hostile_names_reach_no_terminal_raw_through_build() {
    if !common::ready_for_builds() {
        return;
    }
    let i = inputs();
    // Built: the `building` line, the summary's wheel and log lines.
    let out = build(&i.good, &i.out_dir, &[]);
    let text = assert_output_clean("build (built)", &out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("  log      "), "{text}");
    assert_recognisable("build (built)", &text);
    // Failed: the failure tail's header names the log, and the tail holds
    // the package's own hostile output.
    let out = build(&i.failing, &i.out_dir, &[]);
    let text = assert_output_clean("build (failed)", &out);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(text.contains("---- last "), "{text}");
    assert_recognisable("build (failed)", &text);
    // A hostile file name: built or refused (it is no valid sdist name),
    // the name is shown escaped either way.
    let out = build(&i.named, &i.out_dir, &[]);
    let text = assert_output_clean("build (hostile file name)", &out);
    assert!(text.contains("escname-0.1\\u{1b}[2J"), "{text}");
    assert_recognisable("build (hostile file name)", &text);
    // Not UTF-8: refused before anything is read, named escaped.
    let out = build(&i.not_utf8, &i.out_dir, &[]);
    let text = assert_output_clean("build (not UTF-8)", &out);
    assert_eq!(out.status.code(), Some(5), "{text}");
    assert!(text.contains("is not UTF-8"), "{text}");
    assert!(text.contains(ESCAPED_NOT_UTF8), "{text}");
    assert_recognisable("build (not UTF-8)", &text);
    // The same as JSON on stdout: equal JSON, no raw controls.
    let out = build(&i.good, &i.out_dir, &["--format", "json"]);
    let stdout = assert_clean("build --format json", &out.stdout);
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert!(
        v["input"]["path"]
            .as_str()
            .unwrap()
            .contains("\u{1b}[2J\u{1b}]8;;"),
        "the JSON still says what the path is: {v:#}"
    );
    // A path that does not exist: the error names it, escaped.
    let missing = i.in_dir.join(hostile("missing-1.0", ".tar.gz"));
    let out = build(&missing, &i.out_dir, &[]);
    let text = assert_output_clean("build (missing file)", &out);
    assert_ne!(out.status.code(), Some(0), "{text}");
    assert_recognisable("build (missing file)", &text);
    // index: the output directory's path, escaped.
    let out = sdist_box().arg("index").arg(&i.out_dir).output().unwrap();
    let text = assert_output_clean("index", &out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert_recognisable("index", &text);
    // inspect, as text and as JSON, of a good sdist in a hostile directory;
    // the hostile file name is no valid sdist name: refused, named escaped;
    // refused, by name, when not UTF-8.
    let out = sdist_box().arg("inspect").arg(&i.good).output().unwrap();
    let text = assert_output_clean("inspect", &out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert_recognisable("inspect", &text);
    let out = sdist_box().arg("inspect").arg(&i.named).output().unwrap();
    let text = assert_output_clean("inspect (hostile file name)", &out);
    assert_eq!(out.status.code(), Some(5), "{text}");
    // (a refused name is shown the way every refused name is: `\xNN`.)
    assert!(text.contains("escname-0.1\\x1b\\x5b2J"), "{text}");
    let out = sdist_box()
        .args(["inspect", "--format", "json"])
        .arg(&i.good)
        .output()
        .unwrap();
    let stdout = assert_clean("inspect --format json", &out.stdout);
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert!(v["input"]["path"].as_str().unwrap().contains("\u{202e}"));
    let out = sdist_box()
        .arg("inspect")
        .arg(&i.not_utf8)
        .output()
        .unwrap();
    let text = assert_output_clean("inspect (not UTF-8)", &out);
    assert_eq!(out.status.code(), Some(5), "{text}");
    assert!(text.contains(ESCAPED_NOT_UTF8), "{text}");
}

#[test]
fn hostile_names_reach_no_terminal_raw_through_build_all() {
    if !common::ready_for_builds() {
        return;
    }
    let i = inputs();
    // --dry-run: one line per sdist, key and path.
    let out = sdist_box()
        .arg("build-all")
        .arg(&i.in_dir)
        .arg("-o")
        .arg(&i.out_dir)
        .arg("--dry-run")
        .output()
        .unwrap();
    let text = assert_output_clean("build-all --dry-run", &out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 4, "{stdout}");
    assert!(stdout.contains("escname-0.1\\u{1b}[2J"), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("not-utf8\t") && l.contains(ESCAPED_NOT_UTF8)),
        "{stdout}"
    );
    assert_recognisable("build-all --dry-run", &stdout);
    // The run: the start line, a progress line per sdist, the table.
    let mut cmd = sdist_box();
    cmd.arg("build-all")
        .arg(&i.in_dir)
        .arg("-o")
        .arg(&i.out_dir)
        .args(["--jobs", "2"]);
    let out = offline(&mut cmd).output().unwrap();
    let text = assert_output_clean("build-all", &out);
    assert!(text.contains("[4/4]"), "{text}");
    assert!(text.contains("package"), "the summary table: {text}");
    assert!(text.contains(ESCAPED_NOT_UTF8), "{text}");
    assert_recognisable("build-all", &text);
    // The summary is JSON all the same, every entry accounted for.
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(i.out_dir.join("build-all.json")).unwrap()).unwrap();
    assert_eq!(
        summary["entries"].as_array().unwrap().len(),
        4,
        "{summary:#}"
    );
}

/// Printing macros whose arguments call `.display()`: a path printed raw.
fn raw_paths_in(source: &str) -> Vec<String> {
    const MACROS: &[&str] = &[
        "println!(",
        "eprintln!(",
        "print!(",
        "eprint!(",
        "writeln!(",
        "write!(",
        "info!(",
        "warn!(",
        "error!(",
        "debug!(",
        "trace!(",
        "info_span!(",
    ];
    // Doc and line comments hold examples, not code.
    let code: String = source
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("//") {
                ""
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let mut found = Vec::new();
    for m in MACROS {
        let mut from = 0;
        while let Some(at) = code[from..].find(m) {
            let start = from + at + m.len();
            // `println!(` inside `eprintln!(` is not a macro of its own.
            let before = code[..from + at].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                from = start;
                continue;
            }
            // The macro's arguments: up to the matching parenthesis,
            // outside string literals.
            let (mut depth, mut in_str, mut escaped, mut end) = (1, false, false, code.len());
            for (i, c) in code[start..].char_indices() {
                match (in_str, escaped, c) {
                    (true, true, _) => escaped = false,
                    (true, false, '\\') => escaped = true,
                    (true, false, '"') => in_str = false,
                    (true, false, _) => {}
                    (false, _, '"') => in_str = true,
                    (false, _, '(') => depth += 1,
                    (false, _, ')') => {
                        depth -= 1;
                        if depth == 0 {
                            end = start + i;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let args = &code[start..end];
            if args.contains(".display()") {
                found.push(format!("{m}{}", args.trim()));
            }
            from = start;
        }
    }
    found
}

#[test]
fn the_scan_finds_a_raw_path_in_a_printing_macro() {
    let bad =
        "fn f(p: &Path) {\n    eprintln!(\n        \"log {}\",\n        p.display()\n    );\n}\n";
    assert_eq!(raw_paths_in(bad).len(), 1);
    let bad = "let _ = writeln!(out, \"  log      {}\", log.display());";
    assert_eq!(raw_paths_in(bad).len(), 1);
    let good = "eprintln!(\"log {}\", crate::text::path(p));\n// println!(\"{}\", p.display())\nlet s = format!(\"{}\", p.display());";
    assert!(raw_paths_in(good).is_empty(), "{:?}", raw_paths_in(good));
    let tricky = "eprintln!(\"a ) b {}\", text::path(p)); let x = p.display();";
    assert!(raw_paths_in(tricky).is_empty());
}

#[test]
fn no_printing_macro_in_src_prints_a_path_raw() {
    let mut offenders = Vec::new();
    for file in common::walk(&common::repo().join("src")) {
        if file.extension() != Some(OsStr::new("rs")) {
            continue;
        }
        let source = std::fs::read_to_string(&file).unwrap();
        for hit in raw_paths_in(&source) {
            offenders.push(format!("{}: {hit}", file.display()));
        }
    }
    assert!(
        offenders.is_empty(),
        "use crate::text::path(…) (escaped) instead of .display() where it is printed:\n{}",
        offenders.join("\n")
    );
}

#[test]
fn hostile_bytes_survive_the_file_system_here() {
    // The tests above need a file system that takes any bytes in a name.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join(hostile("x", ""));
    std::fs::write(&p, b"").unwrap();
    let listed: Vec<Vec<u8>> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().as_bytes().to_vec())
        .collect();
    assert_eq!(listed, vec![p.file_name().unwrap().as_bytes().to_vec()]);
}
