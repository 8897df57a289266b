//! Origin lines and the SARIF, attacked: hostile sdists built by the test
//! name a host file as the source of an event — by `..` and by a link the
//! build plants in its own tree — and the file's text never appears in any
//! output (stdout, stderr, the JSON report, the SARIF, the `--events`
//! stream, the build log), while the report names the claim as a forged
//! origin. A package that rewrites `setup.py` during the build does not
//! change the quoted line. The SARIF has no location outside the sdist and
//! no link syntax in any text. A program path the package execs is looked
//! up in the sandbox's view, never on the host.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::{BuildOpts, Sdist};
use serde_json::Value;

/// A host file outside every tree of the build, mode 600, every line of
/// which carries a token no output may contain.
struct Canary {
    _dir: tempfile::TempDir,
    path: PathBuf,
    token: String,
}

impl Canary {
    fn new(owner: Option<(u32, u32)>) -> Canary {
        let dir = tempfile::Builder::new()
            .prefix("origin-canary-")
            .tempdir()
            .unwrap();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let token = format!("HOSTFILE{}X{nanos}", std::process::id());
        let path = dir.path().join("secret");
        let text: String = (1..=40)
            .map(|n| format!("password = {token} (line {n})\n"))
            .collect();
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(&path, Some(uid), Some(gid)).unwrap();
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        Canary {
            _dir: dir,
            path,
            token,
        }
    }
}

/// A setuptools sdist whose setup.py runs `prelude`, then code compiled
/// under the file name `claimed` (a Python expression) that makes a
/// connect the default profile refuses, at line 7 of that "file".
fn forger(name: &str, prelude: &str, claimed: &str) -> Sdist {
    let setup = format!(
        r#"import os, socket, subprocess
from setuptools import setup
{prelude}
CODE = "import socket\n" + "x = 1\n" * 4 + "try:\n    socket.create_connection(('127.0.0.1', 9), timeout=2)\nexcept OSError:\n    pass\n"
exec(compile(CODE, {claimed}, "exec"))
setup(name={name:?}, version="0.1", py_modules=[])
"#
    );
    Sdist::new(name, "0.1").file("setup.py", &setup)
}

/// Everything one build wrote anywhere a person or a tool reads it.
struct Outputs {
    built: common::Built,
    report: Value,
    sarif: Value,
    /// stdout, stderr, report, SARIF, events and log, as text.
    all: Vec<(&'static str, String)>,
}

fn build_all_outputs(sdist: &Path, tmp: &Path, format: &str, opts: BuildOpts<'_>) -> Outputs {
    let out = tmp.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let sarif_path = tmp.join("report.sarif");
    let events_path = tmp.join("events.jsonl");
    if let Some((uid, gid)) = opts.as_user {
        std::os::unix::fs::chown(&out, Some(uid), Some(gid)).unwrap();
        std::os::unix::fs::chown(tmp, Some(uid), Some(gid)).unwrap();
    }
    let mut opts = opts;
    opts.extra_args.extend([
        "--format".to_string(),
        format.to_string(),
        "--report".to_string(),
        sarif_path.display().to_string(),
        "--events".to_string(),
        events_path.display().to_string(),
    ]);
    let built = common::build(sdist, &out, opts);
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    let stem = sdist
        .file_name()
        .unwrap()
        .to_string_lossy()
        .trim_end_matches(".tar.gz")
        .to_string();
    let report_text = read(&out.join(format!("{stem}.sdist-box.json")));
    let sarif_text = read(&sarif_path);
    let all = vec![
        (
            "stdout",
            String::from_utf8_lossy(&built.output.stdout).into_owned(),
        ),
        ("stderr", built.stderr()),
        ("report", report_text.clone()),
        ("sarif", sarif_text.clone()),
        ("events", read(&events_path)),
        ("log", built.log.clone()),
    ];
    assert!(
        !all[3].1.is_empty(),
        "no SARIF written: {}",
        built.describe()
    );
    assert!(!all[4].1.is_empty(), "no events written");
    Outputs {
        report: serde_json::from_str(&report_text)
            .unwrap_or_else(|e| panic!("no report ({e}): {}", built.describe())),
        sarif: serde_json::from_str(&sarif_text).unwrap(),
        built,
        all,
    }
}

impl Outputs {
    fn assert_never_shows(&self, canary: &Canary) {
        for (what, text) in &self.all {
            assert!(
                !text.contains(&canary.token),
                "the host file's text reached the {what}:\n{text}"
            );
        }
    }

    fn findings(&self, kind: &str) -> Vec<&Value> {
        self.report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["kind"] == kind)
            .collect()
    }

    /// The refused connect happened and is reported, with the claimed
    /// origin but no text; the claim itself is a forged-origin finding.
    fn assert_forged(&self, claimed_part: &str) {
        let connects = self.findings("net-connect");
        assert!(
            !connects.is_empty(),
            "the attack did not run: {}",
            self.built.describe()
        );
        let c = connects[0];
        assert_eq!(c["verdict"], "blocked");
        assert_eq!(c["origin"]["line"], 7, "{c:#}");
        assert!(
            c["origin"]["file"].as_str().unwrap().contains(claimed_part),
            "{c:#}"
        );
        assert_eq!(c["origin"]["text"], Value::Null, "{c:#}");
        assert_eq!(c["origin"]["in_sdist"], false, "{c:#}");
        let forged = self.findings("forged-origin");
        assert_eq!(forged.len(), 1, "{:#}", self.report["findings"]);
        let f = forged[0];
        assert_eq!(f["severity"], "evasion");
        assert_eq!(f["verdict"], "blocked");
        assert!(
            f["target"].as_str().unwrap().contains(claimed_part),
            "{f:#}"
        );
        assert!(f["count"].as_u64().unwrap() >= 1);
        // It ranks with the evasions: first.
        assert_eq!(self.report["findings"][0]["severity"], "evasion");
        // Blocked findings and an evasion: the default --fail-on fails.
        assert_eq!(self.built.code(), 1, "{}", self.built.describe());
        common::assert_valid(
            &common::schema("report.schema.json"),
            &self.report,
            "the report",
        );
        // No location in the SARIF for the claim; the only file located
        // is the shipped setup.py (the `compile` call, a notice).
        let results = self.sarif["runs"][0]["results"].as_array().unwrap();
        for r in results {
            let uri = &r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"];
            assert!(
                r.get("locations").is_none() || uri == "setup.py",
                "a location for a claim outside the sdist: {r:#}"
            );
            if r["ruleId"] == "blocked/net-connect" {
                assert!(r.get("locations").is_none(), "{r:#}");
            }
        }
        assert!(
            results
                .iter()
                .any(|r| r["ruleId"] == "evasion/forged-origin" && r["level"] == "error")
        );
    }
}

#[test]
fn a_host_file_named_through_dotdot_is_never_quoted() {
    if !common::ready_for_builds() {
        return;
    }
    let canary = Canary::new(None);
    let claimed = format!("/build/src/../../../../..{}", canary.path.display());
    let tmp = tempfile::tempdir().unwrap();
    let sdist = forger("forge-dotdot", "", &format!("{claimed:?}")).write(tmp.path());
    let out = build_all_outputs(&sdist, tmp.path(), "text", BuildOpts::default());
    out.assert_never_shows(&canary);
    out.assert_forged(&claimed);
    // The terminal says it, escaped, with the forged claim first.
    let stderr = out.built.stderr();
    assert!(stderr.contains("EVASION forged-origin"), "{stderr}");
    assert!(
        stderr.contains("(named by the audit stream; not opened)"),
        "{stderr}"
    );
}

#[test]
fn a_host_file_named_through_a_link_the_build_made_is_never_quoted() {
    if !common::ready_for_builds() {
        return;
    }
    let canary = Canary::new(None);
    let prelude =
        "try:\n    os.symlink('/', '/build/src/hostroot')\nexcept FileExistsError:\n    pass\n";
    let claimed = format!("/build/src/hostroot{}", canary.path.display());
    let tmp = tempfile::tempdir().unwrap();
    let sdist = forger("forge-link", prelude, &format!("{claimed:?}")).write(tmp.path());
    let out = build_all_outputs(&sdist, tmp.path(), "json", BuildOpts::default());
    out.assert_never_shows(&canary);
    out.assert_forged(&claimed);
    assert!(
        out.findings("forged-origin")[0]["message"]
            .as_str()
            .unwrap()
            .contains("link"),
        "{:#}",
        out.report["findings"]
    );
}

#[test]
fn an_unprivileged_users_own_file_is_never_quoted_either() {
    if !common::ready_for_builds() {
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
    // The canary is the user's own, mode 600: sdist-box running as that
    // user could read it, the sandbox (a user namespace) could not.
    let canary = Canary::new(Some((uid, gid)));
    let tmp = common::tempdir_for(Some((uid, gid)));
    let claimed = format!("/build/src/../../../../..{}", canary.path.display());
    let sdist = forger("forge-user", "", &format!("{claimed:?}")).write(tmp.path());
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    std::os::unix::fs::chown(&home, Some(uid), Some(gid)).unwrap();
    let opts = common::build_opts_for_user(tmp.path(), (uid, gid), &home);
    let out = build_all_outputs(&sdist, tmp.path(), "sarif", opts);
    out.assert_never_shows(&canary);
    out.assert_forged(&claimed);
    assert_eq!(out.report["sandbox"]["enforcement"]["host_uid"], uid);
}

#[test]
fn rewriting_setup_py_during_the_build_does_not_change_the_quoted_line() {
    if !common::ready_for_builds() {
        return;
    }
    // Each hook call runs setup.py; the first rewrites line 6 on disk, so
    // the later ones run the rewritten file. The connect is on line 6
    // either way.
    let setup = r#"import os, socket
from setuptools import setup
src = open(__file__).read()
open(__file__, "w").write(src.replace("SHIPPED" + "-LINE", "REWRITTEN-LINE"))
try:
    socket.create_connection(("127.0.0.1", 9), timeout=2)  # SHIPPED-LINE
except OSError:
    pass
print("rewritten before:", ("REWRITTEN" + "-LINE") in src)
setup(name="rewriter", version="0.1", py_modules=[])
"#;
    let tmp = tempfile::tempdir().unwrap();
    let sdist = Sdist::new("rewriter", "0.1")
        .file("setup.py", setup)
        .write(tmp.path());
    let out = build_all_outputs(&sdist, tmp.path(), "text", BuildOpts::default());
    let connects = out.findings("net-connect");
    assert!(!connects.is_empty(), "{}", out.built.describe());
    for c in &connects {
        assert_eq!(c["origin"]["file"], "setup.py", "{c:#}");
        assert_eq!(c["origin"]["line"], 6, "{c:#}");
        assert_eq!(c["origin"]["in_sdist"], true, "{c:#}");
        assert!(
            c["origin"]["text"]
                .as_str()
                .unwrap_or("")
                .contains("# SHIPPED-LINE"),
            "{c:#}"
        );
    }
    // The rewrite happened (the later hook calls ran the rewritten file)
    // and no output quotes it as the package's source.
    assert!(
        out.built.log.contains("rewritten before: True"),
        "{}",
        out.built.log
    );
    for (what, text) in &out.all {
        if *what == "log" {
            continue;
        }
        assert!(
            !text.contains("REWRITTEN-LINE"),
            "the rewritten line reached the {what}"
        );
    }
    assert!(out.findings("forged-origin").is_empty());
    let loc = &out.sarif["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["ruleId"] == "blocked/net-connect")
        .unwrap()["locations"][0]["physicalLocation"];
    assert_eq!(loc["artifactLocation"]["uri"], "setup.py");
    assert!(
        loc["region"]["snippet"]["text"]
            .as_str()
            .unwrap()
            .contains("SHIPPED-LINE")
    );
}

/// Every `text` property anywhere in a SARIF log.
fn texts(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k == "text"
                    && let Some(s) = x.as_str()
                {
                    out.push(s.to_string());
                }
                texts(x, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| texts(x, out)),
        _ => {}
    }
}

/// No `[`, `]`, `<` or `>` without an odd run of backslashes before it:
/// nothing SARIF (§3.11.6) or Markdown would read as a link.
fn assert_no_link_syntax(text: &str) {
    let bytes = text.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if matches!(b, b'[' | b']' | b'<' | b'>') {
            let run = bytes[..i].iter().rev().take_while(|&&c| c == b'\\').count();
            assert_eq!(run % 2, 1, "link syntax in a SARIF text: {text}");
        }
    }
}

#[test]
fn sarif_has_no_location_outside_the_sdist_and_no_link_in_any_text() {
    if !common::ready_for_builds() {
        return;
    }
    let prelude =
        "subprocess.run(['/bin/echo', '[Security fix: click here](https://example.invalid/)'])\n";
    let tmp = tempfile::tempdir().unwrap();
    let sdist = forger(
        "forge-sarif",
        prelude,
        r#""/build/src/../../.github/workflows/release.yml""#,
    )
    .write(tmp.path());
    let out = build_all_outputs(&sdist, tmp.path(), "sarif", BuildOpts::default());
    let sarif = &out.sarif;
    if let Some(v) = common::sarif_validator() {
        common::assert_valid(&v, sarif, "the SARIF log");
    } else {
        require!(
            false,
            "the SARIF schema was not fetched (scripts/setup-tests needs npm)"
        );
    }
    // stdout is the same log.
    let stdout: Value = serde_json::from_slice(&out.built.output.stdout).unwrap();
    assert_eq!(stdout["runs"][0]["results"], sarif["runs"][0]["results"]);
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    // The forged origin: reported, located nowhere.
    let connect = results
        .iter()
        .find(|r| r["ruleId"] == "blocked/net-connect")
        .expect("the connect");
    assert!(connect.get("locations").is_none(), "{connect:#}");
    assert!(
        results
            .iter()
            .any(|r| r["ruleId"] == "evasion/forged-origin")
    );
    // Every location is a plain relative path under SDISTROOT.
    for r in results {
        for loc in r["locations"].as_array().into_iter().flatten() {
            let a = &loc["physicalLocation"]["artifactLocation"];
            let uri = a["uri"].as_str().unwrap();
            assert_eq!(a["uriBaseId"], "SDISTROOT");
            assert!(
                !uri.starts_with('/')
                    && !uri.contains(':')
                    && uri
                        .split('/')
                        .all(|s| !s.is_empty() && s != "." && s != ".."),
                "{uri}"
            );
        }
    }
    // The exec's argv is in a message, its brackets escaped.
    let exec = results
        .iter()
        .find(|r| {
            r["message"]["text"]
                .as_str()
                .unwrap_or("")
                .contains("Security fix")
        })
        .expect("a result naming the echo");
    assert!(
        exec["message"]["text"]
            .as_str()
            .unwrap()
            .contains(r"\[Security fix: click here\](https://example.invalid/)"),
        "{exec:#}"
    );
    let mut all = Vec::new();
    texts(sarif, &mut all);
    assert!(all.len() > 3);
    for t in &all {
        assert_no_link_syntax(t);
    }
}

#[test]
fn shipped_file_names_are_percent_encoded_in_the_sarif() {
    if !common::ready_for_builds() {
        return;
    }
    // The refused connect is made by a shipped module with spaces, `#`
    // and non-ASCII in its path; its line holds link syntax.
    let setup = "import os, sys\nfrom setuptools import setup\nsys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'my tools'))\nimport importlib\nimportlib.import_module('ünï_1')\nsetup(name='enc', version='0.1', py_modules=[])\n";
    let module = "import socket\ntry:\n    socket.create_connection(('127.0.0.1', 9), timeout=2)  # [see](https://example.invalid/) <b>\nexcept OSError:\n    pass\n";
    let tmp = tempfile::tempdir().unwrap();
    let sdist = Sdist::new("enc", "0.1")
        .file("setup.py", setup)
        .file("my tools/ünï_1.py", module)
        .write(tmp.path());
    let out = build_all_outputs(&sdist, tmp.path(), "sarif", BuildOpts::default());
    if let Some(v) = common::sarif_validator() {
        common::assert_valid(&v, &out.sarif, "the SARIF log");
    }
    let connect = out.sarif["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["ruleId"] == "blocked/net-connect")
        .unwrap_or_else(|| panic!("no connect: {}", out.built.describe()));
    let loc = &connect["locations"][0]["physicalLocation"];
    assert_eq!(
        loc["artifactLocation"]["uri"], "my%20tools/%C3%BCn%C3%AF_1.py",
        "{connect:#}"
    );
    assert_eq!(loc["region"]["startLine"], 3);
    let snippet = loc["region"]["snippet"]["text"].as_str().unwrap();
    assert!(
        snippet.contains(r"# \[see\](https://example.invalid/) \<b\>"),
        "{snippet}"
    );
    // The JSON report keeps the path and the line as they are.
    let f = &out.findings("net-connect")[0]["origin"];
    assert_eq!(f["file"], "my tools/ünï_1.py");
    assert!(
        f["text"]
            .as_str()
            .unwrap()
            .contains("[see](https://example.invalid/)")
    );
}

#[test]
fn lines_in_files_the_pre_build_hook_patched_are_quoted_as_it_left_them() {
    if !common::ready_for_builds() {
        return;
    }
    let setup = "import socket\nfrom setuptools import setup\ntry:\n    socket.create_connection(('127.0.0.1', 9), timeout=2)  # ORIGINAL-MARK\nexcept OSError:\n    pass\nsetup(name='patched', version='0.1', py_modules=[])\n";
    let tmp = tempfile::tempdir().unwrap();
    let sdist = Sdist::new("patched", "0.1")
        .file("setup.py", setup)
        .write(tmp.path());
    let out = build_all_outputs(
        &sdist,
        tmp.path(),
        "json",
        BuildOpts {
            extra_args: vec![
                "--pre-build".into(),
                "sed -i 's/ORIGINAL-MARK/PATCHED-MARK/' setup.py".into(),
            ],
            ..Default::default()
        },
    );
    assert_eq!(out.report["pre_build"]["modified"], true);
    let connects = out.findings("net-connect");
    assert!(!connects.is_empty(), "{}", out.built.describe());
    for c in connects {
        assert_eq!(c["origin"]["line"], 4);
        assert_eq!(c["origin"]["in_sdist"], true);
        assert!(
            c["origin"]["text"]
                .as_str()
                .unwrap()
                .contains("# PATCHED-MARK"),
            "{c:#}"
        );
    }
}

#[test]
fn an_exec_through_a_planted_link_does_not_tell_whether_a_host_file_exists() {
    if !common::ready_for_builds() {
        return;
    }
    // Under `restrict-exec` the supervisor judges each exec by the file it
    // names. Two links the build plants: one to a host file that exists
    // (the canary, outside the sandbox's view), one to a path that exists
    // nowhere. The package must not be able to tell them apart.
    let canary = Canary::new(None);
    let prelude = format!(
        r#"import errno
for name, target in [("probe-host", {host:?}), ("probe-none", "/zz-no-such-dir/zz")]:
    link = "/build/src/" + name
    if not os.path.islink(link):
        os.symlink(target, link)
    try:
        subprocess.run([link])
        print("PROBE", name, "ran")
    except OSError as e:
        print("PROBE", name, errno.errorcode.get(e.errno, e.errno))
"#,
        host = canary.path.display().to_string()
    );
    let tmp = tempfile::tempdir().unwrap();
    let sdist = forger("exec-probe", &prelude, r#""/build/src/setup.py""#).write(tmp.path());
    let out = build_all_outputs(
        &sdist,
        tmp.path(),
        "json",
        BuildOpts {
            profile: Some("strict"),
            ..Default::default()
        },
    );
    let log = &out.built.log;
    let answer = |name: &str| {
        log.lines()
            .find_map(|l| l.strip_prefix(&format!("PROBE {name} ")))
            .unwrap_or_else(|| panic!("the probe did not run: {}", out.built.describe()))
            .to_string()
    };
    assert_eq!(answer("probe-host"), answer("probe-none"), "{log}");
    assert_eq!(answer("probe-host"), "ENOENT", "{log}");
    out.assert_never_shows(&canary);
}
