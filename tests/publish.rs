//! Faults while publishing: a wheel appears in the output directory only
//! with a report that vouches for it; a full disk (output, work or cache
//! directory) is sdist-box's error (exit 6) naming the path and the errno,
//! never the package's failure (3) nor a refused input (5); a failed
//! rebuild retires the input's old wheel; a chatty build's log is capped,
//! keeping its head and tail.
//!
//! The full disks are small tmpfs mounts made in a private mount namespace
//! (`unshare --mount`, root only), never in the host's: what the test
//! checks is copied out before the namespace goes.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{BuildOpts, Sdist};

/// `n` bytes that do not compress (xorshift), as hex text (which
/// compresses to about half: a module carrying it makes a wheel of about
/// `n` bytes).
fn incompressible_hex(n: usize) -> String {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut s = String::with_capacity(n * 2);
    for _ in 0..n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.push_str(&format!("{:02x}", x as u8));
    }
    s
}

/// A setuptools sdist whose wheel is about `mib` MiB.
fn big_sdist(name: &str, mib: usize) -> Sdist {
    let module = name.replace('-', "_");
    Sdist::setuptools_with(name, "").file(
        &format!("{module}.py"),
        &format!("BLOB = '{}'\n", incompressible_hex(mib << 20)),
    )
}

/// Root, user namespaces and `unshare --mount`; otherwise `skipped: …`
/// (a failure under SDIST_BOX_REQUIRE_ALL).
fn root_and_unshare() -> bool {
    if !common::ready_for_builds() {
        return false;
    }
    let unshare = common::is_root()
        && Command::new("unshare")
            .args(["--mount", "--propagation", "private", "true"])
            .status()
            .is_ok_and(|s| s.success());
    if !unshare {
        let why = "needs root and `unshare --mount` for a private tmpfs";
        if std::env::var_os(common::REQUIRE_ALL).is_some() {
            panic!("required feature missing: {why}");
        }
        eprintln!("skipped: {why}");
    }
    unshare
}

/// What one build in a private mount namespace left.
struct Confined {
    output: Output,
    /// `ls -a` of the output directory, as the build left it.
    listing: Vec<String>,
    report: Option<serde_json::Value>,
}

impl Confined {
    fn code(&self) -> i32 {
        self.output.status.code().unwrap_or(-1)
    }

    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    fn describe(&self) -> String {
        format!(
            "exit {}\nlisting {:?}\nstderr:\n{}\nreport outcome: {}",
            self.code(),
            self.listing,
            self.stderr(),
            self.report
                .as_ref()
                .map(|r| r["outcome"].to_string())
                .unwrap_or_default()
        )
    }
}

/// `sdist-box build SDIST -o OUT` with a tmpfs of `size` mounted on
/// `mount` in a private mount namespace; the output directory's listing
/// and report are copied to `keep` before the namespace ends.
fn build_on_tmpfs(
    sdist: &Path,
    out: &Path,
    mount: &Path,
    size: &str,
    extra: &[&str],
    keep: &Path,
) -> Confined {
    std::fs::create_dir_all(mount).unwrap();
    std::fs::create_dir_all(keep).unwrap();
    let script = r#"mount -t tmpfs -o "size=$1" tmpfs "$2" || exit 99
shift 2
keep="$1"; out="$2"; shift 2
"$@"
rc=$?
ls -a "$out" > "$keep/listing"
cp "$out"/*.sdist-box.json "$keep/" 2>/dev/null
exit $rc"#;
    let mut cmd = Command::new("unshare");
    cmd.args([
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        script,
        "sh",
    ])
    .arg(size)
    .arg(mount)
    .arg(keep)
    .arg(out)
    .arg(common::bin())
    .arg("build")
    .arg(sdist)
    .arg("-o")
    .arg(out);
    if let Some(wh) = common::wheelhouse() {
        cmd.arg("--find-links").arg(wh).arg("--no-index");
    }
    if !extra.contains(&"--cache-dir") {
        cmd.arg("--cache-dir").arg(common::env_cache());
    }
    cmd.args(extra).env("NO_COLOR", "1");
    let output = cmd.output().expect("run unshare");
    assert_ne!(output.status.code(), Some(99), "cannot mount a tmpfs");
    let listing = std::fs::read_to_string(keep.join("listing"))
        .unwrap_or_default()
        .lines()
        .filter(|l| *l != "." && *l != "..")
        .map(str::to_string)
        .collect();
    let stem = sdist
        .file_name()
        .unwrap()
        .to_string_lossy()
        .trim_end_matches(".tar.gz")
        .to_string();
    let report = std::fs::read_to_string(keep.join(format!("{stem}.sdist-box.json")))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    Confined {
        output,
        listing,
        report,
    }
}

fn reason(report: &Option<serde_json::Value>) -> String {
    report
        .as_ref()
        .and_then(|r| r["outcome"]["reason"].as_str())
        .unwrap_or_default()
        .to_string()
}

fn assert_host_error(c: &Confined, path: &Path) {
    assert_eq!(c.code(), 6, "{}", c.describe());
    let report = c.report.as_ref().expect("the report was written");
    assert_eq!(report["outcome"]["status"], "error", "{}", c.describe());
    let why = reason(&c.report);
    eprintln!("reason: {why}");
    assert!(
        why.contains("No space left on device") && why.contains(&*path.to_string_lossy()),
        "the reason names neither the path nor the errno: {why}"
    );
}

#[test]
fn a_full_output_directory_is_an_error_with_its_report_and_no_wheel() {
    if !root_and_unshare() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let sdist = big_sdist("fills-out", 6).write(tmp.path());
    let out = tmp.path().join("out");
    let c = build_on_tmpfs(&sdist, &out, &out, "8m", &[], &tmp.path().join("keep"));
    assert_host_error(&c, &out);
    assert!(
        c.listing
            .iter()
            .all(|n| n.ends_with(".sdist-box.json") || n.ends_with(".build.log")),
        "a wheel, part or reserve was left: {:?}",
        c.listing
    );
}

#[test]
fn a_full_work_directory_is_an_error_not_a_refused_input() {
    if !root_and_unshare() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let sdist = Sdist::setuptools_with("fills-work", "")
        .bytes("blob.bin", incompressible_hex(2 << 20).as_bytes())
        .write(tmp.path());
    let out = tmp.path().join("out");
    let work = tmp.path().join("work");
    let w = work.to_str().unwrap();
    let keep = tmp.path().join("keep");
    // No build tree of its own (as root there is one, of `build-size`, on
    // the work directory): the work directory's disk is the host's.
    let profile = tmp.path().join("no-tree.toml");
    std::fs::write(
        &profile,
        "version = 1\ndescription = \"no build tree\"\n[limits]\nbuild-size = \"0\"\n",
    )
    .unwrap();
    let p = profile.to_str().unwrap();
    let args = ["--work-dir", w, "--profile", p];
    let c = build_on_tmpfs(&sdist, &out, &work, "1m", &args, &keep);
    assert_host_error(&c, &work);
}

/// On its own build tree (root), an sdist that does not fit is the
/// input's fault: refused, naming `build-size`.
#[test]
fn an_sdist_larger_than_its_build_tree_is_refused() {
    if !common::ready_for_builds() {
        return;
    }
    require!(common::is_root(), "the build tree is a tmpfs only as root");
    let tmp = tempfile::tempdir().unwrap();
    let sdist = Sdist::setuptools_with("fills-tree", "")
        .bytes("blob.bin", incompressible_hex(2 << 20).as_bytes())
        .write(tmp.path());
    let profile = tmp.path().join("small-tree.toml");
    std::fs::write(
        &profile,
        "version = 1\ndescription = \"a small tree\"\n[limits]\nbuild-size = \"1M\"\n",
    )
    .unwrap();
    let out = tmp.path().join("out");
    let built = common::build(
        &sdist,
        &out,
        BuildOpts {
            profile: Some(profile.to_str().unwrap()),
            ..BuildOpts::default()
        },
    );
    assert_eq!(built.code(), 5, "{}", built.describe());
    let why = built.report.as_ref().unwrap()["outcome"]["reason"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(why.contains("build-size"), "{why}");
}

#[test]
fn a_full_cache_directory_is_an_error() {
    if !root_and_unshare() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let sdist = Sdist::setuptools_with("fills-cache", "").write(tmp.path());
    let out = tmp.path().join("out");
    let cache = tmp.path().join("cache");
    let c_arg = cache.to_str().unwrap();
    let keep = tmp.path().join("keep");
    let c = build_on_tmpfs(&sdist, &out, &cache, "1m", &["--cache-dir", c_arg], &keep);
    assert_eq!(c.code(), 6, "{}", c.describe());
    let report = c.report.as_ref().expect("the report was written");
    assert_eq!(report["outcome"]["status"], "error", "{}", c.describe());
    let why = reason(&c.report);
    assert!(
        why.contains("No space left on device") && why.contains(c_arg),
        "the reason names neither the cache nor the errno: {why}"
    );
}

fn wheels(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(".whl"))
        .collect()
}

#[test]
fn a_failed_rebuild_retires_the_inputs_old_wheel() {
    if !common::ready_for_builds() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let sdist = Sdist::setuptools_with("retired", "").write(&src);
    let first = common::build(&sdist, &out, BuildOpts::default());
    assert_eq!(first.code(), 0, "{}", first.describe());
    assert_eq!(wheels(&out).len(), 1);

    let broken = Sdist::setuptools_with("retired", "raise RuntimeError('now broken')");
    assert_eq!(broken.write(&src), sdist, "the same file name");
    let second = common::build(&sdist, &out, BuildOpts::default());
    assert_eq!(second.code(), 3, "{}", second.describe());
    assert_eq!(second.status(), "build-failed");
    assert!(wheels(&out).is_empty(), "the old wheel is still there");

    let index = Command::new(common::bin())
        .arg("index")
        .arg(&out)
        .output()
        .unwrap();
    assert!(index.status.success(), "{index:?}");
    let listed = std::fs::read_to_string(out.join("simple/index.json")).unwrap();
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed["projects"], serde_json::json!([]), "{listed}");
}

#[test]
fn a_chatty_builds_log_keeps_its_head_and_tail_within_the_cap() {
    if !common::ready_for_builds() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let profile = tmp.path().join("chatty.toml");
    std::fs::write(
        &profile,
        "version = 1\ndescription = \"a small log\"\n[limits]\nlog-size = \"1M\"\n",
    )
    .unwrap();
    // About 40 MiB, in build_wheel only.
    let attack = "if 'bdist_wheel' in sys.argv:\n    sys.stdout.write('HEAD-MARKER\\n')\n    line = 'x' * 1023 + '\\n'\n    for _ in range(40 * 1024):\n        sys.stdout.write(line)\n    sys.stdout.write('TAIL-MARKER\\n')\n    sys.stdout.flush()\n";
    let sdist = Sdist::setuptools_with("chatty", attack).write(tmp.path());
    let out = tmp.path().join("out");
    let built = common::build(
        &sdist,
        &out,
        BuildOpts {
            profile: Some(profile.to_str().unwrap()),
            ..BuildOpts::default()
        },
    );
    assert_eq!(built.code(), 0, "{}", built.describe());
    assert_eq!(built.status(), "built");
    let log = &built.log;
    eprintln!("log: {} bytes", log.len());
    assert!(
        (1 << 20..(1 << 20) + (64 << 10)).contains(&log.len()),
        "the log is {} bytes, not about the 1 MiB cap",
        log.len()
    );
    assert!(log.contains("HEAD-MARKER"), "the head is missing");
    assert!(log.contains("TAIL-MARKER"), "the tail is missing");
    let cut = log
        .lines()
        .find(|l| l.contains("bytes of output cut here"))
        .expect("the cut line");
    let n: u64 = cut
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(n > 38 << 20, "{cut}");
    let head = log.find("HEAD-MARKER").unwrap();
    let (at_cut, tail) = (log.find(cut).unwrap(), log.find("TAIL-MARKER").unwrap());
    assert!(
        head < at_cut && at_cut < tail,
        "head, cut line, tail: in order"
    );
}

/// The build's own log fills the output disk; the wheel then has no room,
/// and the report still has: it was reserved at the start.
#[test]
fn a_log_that_fills_the_output_disk_still_leaves_the_report() {
    if !root_and_unshare() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let profile = tmp.path().join("big-log.toml");
    std::fs::write(
        &profile,
        "version = 1\ndescription = \"a big log\"\n[limits]\nlog-size = \"64M\"\n",
    )
    .unwrap();
    let attack = "if 'bdist_wheel' in sys.argv:\n    line = 'y' * 1023 + '\\n'\n    for _ in range(16 * 1024):\n        sys.stdout.write(line)\n    sys.stdout.flush()\n";
    let sdist = Sdist::setuptools_with("fills-log", attack).write(tmp.path());
    let out = tmp.path().join("out");
    let p = profile.to_str().unwrap();
    let keep = tmp.path().join("keep");
    let c = build_on_tmpfs(&sdist, &out, &out, "6m", &["--profile", p], &keep);
    assert_host_error(&c, &out);
    assert!(
        c.listing
            .iter()
            .all(|n| n.ends_with(".sdist-box.json") || n.ends_with(".build.log")),
        "a wheel, part or reserve was left: {:?}",
        c.listing
    );
}
