//! Profiles end to end: each shipped profile on real sdists, the network
//! modes against loopback listeners, `strict`'s exec and ctypes walls, the
//! suggestions in the report, and the errors of a malformed profile.
//!
//! The network tests target only 127.0.0.1 listeners started here; attack
//! sdists write only inside their own build tree; HOME is a temporary
//! canary directory.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{BuildOpts, Built, CanaryHome, Listener, Sdist};
use serde_json::Value;

/// Who runs the builds: the unprivileged test user when it exists (the
/// case that matters), root otherwise; with a cache and a wheelhouse that
/// user can read.
struct Runner {
    user: Option<(u32, u32)>,
    tmp: tempfile::TempDir,
    wheelhouse: PathBuf,
    cache: PathBuf,
}

impl Runner {
    fn new() -> Runner {
        let user = if common::is_root() {
            common::test_user()
        } else {
            None
        };
        let tmp = common::tempdir_for(user);
        let wheelhouse = tmp.path().join("wh");
        copy_tree(&common::wheelhouse().unwrap(), &wheelhouse);
        let cache = match user {
            None => common::env_cache(),
            Some((uid, _)) => {
                let c = std::env::temp_dir().join(format!("sdist-box-test-cache-{uid}"));
                std::fs::create_dir_all(&c).unwrap();
                Command::new("chown")
                    .arg("-R")
                    .arg(uid.to_string())
                    .arg(&c)
                    .status()
                    .unwrap();
                c
            }
        };
        Runner {
            user,
            tmp,
            wheelhouse,
            cache,
        }
    }

    /// A world-readable file under our temporary directory.
    fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.tmp.path().join(name);
        std::fs::write(&p, text).unwrap();
        chmod_readable(&p);
        p
    }

    fn out_dir(&self, name: &str) -> PathBuf {
        let out = self.tmp.path().join(name);
        std::fs::create_dir_all(&out).unwrap();
        if let Some((uid, gid)) = self.user {
            std::os::unix::fs::chown(&out, Some(uid), Some(gid)).unwrap();
        }
        out
    }

    fn build(&self, sdist: &Path, out: &str, profile: &str, extra: &[&str], home: &Path) -> Built {
        let python = self.user.map(|_| "/usr/bin/python3".to_string());
        common::build(
            sdist,
            &self.out_dir(out),
            BuildOpts {
                as_user: self.user,
                profile: Some(profile),
                python,
                cache: Some(self.cache.clone()),
                wheelhouse: Some(self.wheelhouse.clone()),
                extra_args: extra.iter().map(|s| s.to_string()).collect(),
                home: Some(home),
                ..Default::default()
            },
        )
    }

    fn sdist(&self, s: &Sdist) -> PathBuf {
        let dir = self.tmp.path().join("sdists");
        std::fs::create_dir_all(&dir).unwrap();
        chmod_readable(&dir);
        let p = s.write(&dir);
        chmod_readable(&p);
        p
    }

    fn real_sdist(&self, filename: &str) -> PathBuf {
        let dir = self.tmp.path().join("sdists");
        std::fs::create_dir_all(&dir).unwrap();
        chmod_readable(&dir);
        let dest = dir.join(filename);
        std::fs::copy(common::sdist_cache().join(filename), &dest).unwrap();
        chmod_readable(&dest);
        dest
    }
}

fn chmod_readable(p: &Path) {
    Command::new("chmod").arg("a+rX").arg(p).status().unwrap();
}

fn copy_tree(src: &Path, dest: &Path) {
    std::fs::create_dir_all(dest).unwrap();
    let ok = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", src.display()))
        .arg(dest)
        .status()
        .unwrap()
        .success();
    assert!(ok);
    Command::new("chmod")
        .args(["-R", "a+rX"])
        .arg(dest)
        .status()
        .unwrap();
}

fn ready() -> bool {
    if !common::ready_for_builds() {
        return false;
    }
    let have = |f: &str| common::sdist_cache().join(f).exists();
    if !(have("markupsafe-3.0.3.tar.gz") && have("docopt-0.6.2.tar.gz")) {
        if std::env::var_os(common::REQUIRE_ALL).is_some() {
            panic!("real sdists missing (run scripts/setup-tests)");
        }
        eprintln!("skipped: real sdists missing (run scripts/setup-tests)");
        return false;
    }
    true
}

fn findings(b: &Built) -> Vec<Value> {
    b.report.as_ref().expect("a report")["findings"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn find<'a>(fs: &'a [Value], kind: &str, target_has: &str) -> Option<&'a Value> {
    fs.iter()
        .find(|f| f["kind"] == kind && f["target"].as_str().is_some_and(|t| t.contains(target_has)))
}

/// `RESULT = {...}` the attack sdist's setup.py wrote into its module.
fn wheel_module_text(b: &Built, module: &str) -> String {
    let wheel = b.wheel().expect("a wheel");
    let mut zip = zip::ZipArchive::new(std::fs::File::open(&wheel).unwrap()).unwrap();
    let mut f = zip.by_name(&format!("{module}.py")).unwrap();
    let mut text = String::new();
    f.read_to_string(&mut text).unwrap();
    text
}

#[test]
fn malformed_profile_errors_name_file_line_and_field() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("site.toml");
    std::fs::write(
        &bad,
        "version = 1\ndescription = \"x\"\n\n[network]\nmode = \"loopback\"\nalow = [\"127.0.0.1:80\"]\n",
    )
    .unwrap();
    let sdist = Sdist::new("p", "1").write(tmp.path());
    let out = Command::new(common::bin())
        .arg("build")
        .arg(&sdist)
        .arg("--profile")
        .arg(&bad)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(&bad.display().to_string()), "{err}");
    assert!(err.contains("line 6, field `alow`"), "{err}");
    assert!(err.contains("unknown field `alow`"), "{err}");

    // A bad value: the path with `~`, on its line.
    std::fs::write(
        &bad,
        "version = 1\ndescription = \"x\"\n[filesystem]\nread = [\"~/data\"]\n",
    )
    .unwrap();
    let out = Command::new(common::bin())
        .args(["run", "--profile"])
        .arg(&bad)
        .args(["--", "true"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("site.toml`: line 4, field `read`"), "{err}");
    assert!(err.contains("`~` is not expanded"), "{err}");
}

#[test]
fn profiles_subcommand_lists_the_shipped_profiles() {
    let out = Command::new(common::bin())
        .arg("profiles")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for name in ["default", "strict", "observe"] {
        let line = text
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} not listed:\n{text}"));
        assert!(line.len() > name.len() + 20, "no description: {line}");
    }
    assert!(text.contains("site-example.toml"), "{text}");
}

/// A build whose setup.py needs a service on 127.0.0.1: blocked (and the
/// build fails) without a loopback profile, passes with one.
#[test]
fn loopback_service_is_reachable_only_with_a_loopback_profile() {
    if !ready() {
        return;
    }
    let r = Runner::new();
    let home = CanaryHome::new();
    let service = Listener::start();
    service.self_check();
    let attack = format!(
        "import socket\ns = socket.create_connection(('127.0.0.1', {}), timeout=10)\ns.sendall(b'needs-the-service')\ns.close()",
        service.port
    );
    let sdist = r.sdist(&Sdist::setuptools_with("needs-service", &attack));

    let blocked = r.build(&sdist, "out-default", "default", &[], home.path());
    assert_eq!(blocked.code(), 3, "{}", blocked.describe());
    assert_eq!(service.connections(), 0, "the service was reached");
    let fs = findings(&blocked);
    let f = find(&fs, "net-connect", &format!("127.0.0.1:{}", service.port))
        .unwrap_or_else(|| panic!("no connect finding: {fs:#?}"));
    assert_eq!(f["verdict"], "blocked");
    assert_eq!(f["origin"]["file"], "setup.py");
    let suggestion = f["suggestion"].as_str().unwrap();
    assert!(suggestion.contains("mode = \"loopback\""), "{suggestion}");

    let profile = r.file(
        "loopback.toml",
        "version = 1\ndescription = \"loopback\"\n[network]\nmode = \"loopback\"\n",
    );
    let passed = r.build(
        &sdist,
        "out-loopback",
        profile.to_str().unwrap(),
        &[],
        home.path(),
    );
    assert_eq!(passed.code(), 0, "{}", passed.describe());
    assert_eq!(passed.status(), "built");
    let got = String::from_utf8(service.bytes()).unwrap();
    assert!(
        !got.is_empty() && got.replace("needs-the-service", "").is_empty(),
        "{got:?}"
    );
    let fs = findings(&passed);
    let f = find(&fs, "net-connect", &format!("127.0.0.1:{}", service.port))
        .unwrap_or_else(|| panic!("no connect finding: {fs:#?}"));
    assert_eq!(f["verdict"], "allowed");
    assert!(
        f["decided_by"].as_str().unwrap().contains("loopback"),
        "{f}"
    );
    let report = passed.report.as_ref().unwrap();
    assert_eq!(report["profile"]["network"]["mode"], "loopback");
    home.assert_unchanged();
}

/// An allowlist lets a connect to its 127.0.0.1 port through and blocks
/// another port; both are in the report, with who decided, and the blocked
/// one with the line that would allow it.
#[test]
fn allowlist_passes_a_listed_port_and_blocks_another() {
    if !ready() {
        return;
    }
    let r = Runner::new();
    let home = CanaryHome::new();
    let allowed = Listener::start();
    let other = Listener::start();
    allowed.self_check();
    other.self_check();
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let udp_port = udp.local_addr().unwrap().port();
    let attack = format!(
        r#"results = {{}}
import socket
for port in ({a}, {b}):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(b"hello-%d" % port)
        s.close()
        results[port] = "sent"
    except OSError as e:
        results[port] = "refused:%d" % e.errno
# Datagrams: to the listed UDP port (sent by the supervisor) and to the
# other port (refused: no Landlock rule covers UDP, the supervisor does).
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for key, port in (("udp", {b}), ("udp-listed", {u})):
    try:
        u.sendto(b"datagram-%d" % port, ("127.0.0.1", port))
        results[key] = "sent"
    except OSError as e:
        results[key] = "refused:%d" % e.errno
results["udp-local"] = u.getsockname()[0]
open("allow_probe.py", "w").write("RESULT = %r\n" % (results,))"#,
        a = allowed.port,
        b = other.port,
        u = udp_port
    );
    let sdist = r.sdist(&Sdist::setuptools_with("allow-probe", &attack));
    let profile = r.file(
        "allow.toml",
        &format!(
            "version = 1\ndescription = \"allowlist\"\n[network]\nmode = \"allowlist\"\nallow = [\"127.0.0.1:{}\", \"localhost:{}\"]\n",
            allowed.port, udp_port
        ),
    );
    let sarif_path = r.tmp.path().join("out-allow").join("report.sarif");
    let b = r.build(
        &sdist,
        "out-allow",
        profile.to_str().unwrap(),
        &["--report", sarif_path.to_str().unwrap()],
        home.path(),
    );
    // Built, and a blocked finding fails the run (fail-on blocked).
    assert_eq!(b.status(), "built", "{}", b.describe());
    assert_eq!(b.code(), 1, "{}", b.describe());
    let result = wheel_module_text(&b, "allow_probe");
    assert!(
        result.contains(&format!("{}: 'sent'", allowed.port)),
        "{result}"
    );
    assert!(
        result.contains(&format!("{}: 'refused:13'", other.port)),
        "{result}"
    );
    assert!(result.contains("'udp': 'refused:13'"), "{result}");
    assert!(result.contains("'udp-listed': 'sent'"), "{result}");
    // The supervisor bound the socket to loopback before sending, so it
    // cannot receive from the network.
    assert!(result.contains("'udp-local': '127.0.0.1'"), "{result}");
    let mut buf = [0u8; 64];
    let (n, _) = udp
        .recv_from(&mut buf)
        .expect("the listed datagram arrived");
    assert_eq!(&buf[..n], format!("datagram-{udp_port}").as_bytes());
    std::thread::sleep(std::time::Duration::from_millis(200));
    // setup.py runs once per hook: each run said hello, and nothing else.
    let hello = format!("hello-{}", allowed.port);
    let got = String::from_utf8(allowed.bytes()).unwrap();
    assert!(
        !got.is_empty() && got.replace(&hello, "").is_empty(),
        "{got:?}"
    );
    assert_eq!(other.connections(), 0, "the unlisted port was reached");

    let fs = findings(&b);
    let ok = find(&fs, "net-connect", &format!("127.0.0.1:{}", allowed.port))
        .unwrap_or_else(|| panic!("no allowed finding: {fs:#?}"));
    assert_eq!(ok["verdict"], "allowed");
    assert_eq!(ok["severity"], "notice");
    assert!(ok["decided_by"].as_str().unwrap().contains("allowlist"));
    let no = find(&fs, "net-connect", &format!("127.0.0.1:{}", other.port))
        .unwrap_or_else(|| panic!("no blocked finding: {fs:#?}"));
    assert_eq!(no["verdict"], "blocked");
    assert!(no["decided_by"].as_str().unwrap().contains("allowlist"));
    assert!(
        no["suggestion"]
            .as_str()
            .unwrap()
            .contains(&format!("allow = [\"127.0.0.1:{}\"]", other.port)),
        "{no}"
    );
    let udp = find(&fs, "net-send", &format!("127.0.0.1:{}", other.port))
        .unwrap_or_else(|| panic!("no UDP finding: {fs:#?}"));
    assert_eq!(udp["verdict"], "blocked");
    // The resolved allowlist is in the report.
    let net = &b.report.as_ref().unwrap()["profile"]["network"];
    assert_eq!(net["mode"], "allowlist");
    assert_eq!(
        net["allow"][0]["addresses"][0],
        format!("127.0.0.1:{}", allowed.port)
    );
    // `localhost` was resolved by sdist-box, outside the sandbox.
    assert_eq!(net["allow"][1]["entry"], format!("localhost:{udp_port}"));
    assert!(
        net["allow"][1]["addresses"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == &Value::String(format!("127.0.0.1:{udp_port}"))),
        "{net}"
    );
    // The report (with the network section and suggestions) validates.
    common::assert_valid(
        &common::schema("report.schema.json"),
        b.report.as_ref().unwrap(),
        "the report",
    );
    // SARIF carries it in the message and the result's properties.
    let sarif: Value =
        serde_json::from_str(&std::fs::read_to_string(&sarif_path).unwrap()).unwrap();
    let wanted = format!("allow = [\"127.0.0.1:{}\"]", other.port);
    let result = sarif["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| {
            r["properties"]["suggestion"]
                .as_str()
                .is_some_and(|s| s.contains(&wanted))
        })
        .unwrap_or_else(|| panic!("no SARIF result with the suggestion: {sarif:#}"));
    // In the message, as SARIF plain text: its brackets escaped (a
    // suggestion quotes addresses and paths the package chose).
    assert!(
        result["message"]["text"]
            .as_str()
            .unwrap()
            .contains(&sdist_box::report::sarif::plain_text(&wanted)),
        "{result}"
    );
    // The text report shows the suggestion too.
    assert!(
        b.stderr()
            .contains(&format!("allow = [\"127.0.0.1:{}\"]", other.port)),
        "{}",
        b.stderr()
    );
    home.assert_unchanged();
}

/// Sharing the host's network namespace (loopback mode) would expose the
/// host's abstract unix sockets (X11, D-Bus): the connect is refused and
/// reported, and the host's listener sees nothing.
#[test]
fn loopback_mode_refuses_the_hosts_abstract_unix_sockets() {
    use std::os::linux::net::SocketAddrExt;
    if !ready() {
        return;
    }
    let r = Runner::new();
    let home = CanaryHome::new();
    let name = format!("sdist-box-test-{}", std::process::id());
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let listener = std::os::unix::net::UnixListener::bind_addr(&addr).unwrap();
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = seen.clone();
    std::thread::spawn(move || {
        for c in listener.incoming() {
            if c.is_ok() {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        }
    });
    // The listener works from the host.
    std::os::unix::net::UnixStream::connect_addr(&addr).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert_eq!(seen.swap(0, std::sync::atomic::Ordering::SeqCst), 1);

    let probe = format!(
        r#"import socket
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    s.connect("\0{name}")
    result = "connected"
except OSError as e:
    result = "refused:%d" % e.errno
families = {{}}
for fam, kind in (("netlink", (socket.AF_NETLINK, socket.SOCK_RAW)), ("packet", (socket.AF_PACKET, socket.SOCK_RAW)), ("vsock", (socket.AF_VSOCK, socket.SOCK_STREAM))):
    try:
        socket.socket(*kind)
        families[fam] = "created"
    except OSError as e:
        families[fam] = "refused:%d" % e.errno
open("abstract_probe.py", "w").write("RESULT = %r\nFAMILIES = %r\n" % (result, families))"#
    );
    let sdist = r.sdist(&Sdist::setuptools_with("abstract-probe", &probe));
    let profile = r.file(
        "loopback-abstract.toml",
        "version = 1\ndescription = \"loopback\"\n[network]\nmode = \"loopback\"\n",
    );
    let b = r.build(
        &sdist,
        "out-abstract",
        profile.to_str().unwrap(),
        &[],
        home.path(),
    );
    assert_eq!(b.status(), "built", "{}", b.describe());
    assert_eq!(b.code(), 1, "{}", b.describe());
    let result = wheel_module_text(&b, "abstract_probe");
    assert!(result.contains("RESULT = 'refused:13'"), "{result}");
    // Only unix and internet sockets in the host's network namespace.
    for fam in ["netlink", "packet", "vsock"] {
        assert!(
            result.contains(&format!("'{fam}': 'refused:97'")),
            "{fam}: {result}"
        );
    }
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 0);
    let fs = findings(&b);
    let f = find(&fs, "net-connect", &format!("unix:@{name}"))
        .unwrap_or_else(|| panic!("no finding: {fs:#?}"));
    assert_eq!(f["verdict"], "blocked");
    assert!(
        f["decided_by"].as_str().unwrap().contains("abstract"),
        "{f}"
    );
    assert!(f["suggestion"].as_str().unwrap().starts_with('#'), "{f}");
    home.assert_unchanged();
}

const STRICT_PROBE: &str = r#"import ctypes, glob, os, shutil, subprocess
try:
    r = subprocess.run(["/bin/sh", "-c", "echo shell-ran"], capture_output=True)
    exec_result = r.stdout.decode().strip() or "rc=%d" % r.returncode
except OSError as e:
    exec_result = "refused:%d" % e.errno
try:
    r = subprocess.run(["/usr/bin/curl", "--version"], capture_output=True)
    curl_result = "ran" if r.returncode == 0 else "rc=%d" % r.returncode
except OSError as e:
    curl_result = "refused:%d" % e.errno
libz = sorted(glob.glob("/usr/lib/*/libz.so.1") + glob.glob("/usr/lib*/libz.so.1"))[0]
# setup.py runs more than once in one process: never overwrite a library
# that is mapped already.
if not os.path.exists("own_lib.so"):
    shutil.copy(libz, "own_lib.so")
try:
    ctypes.CDLL(os.path.abspath("own_lib.so"))
    ctypes_result = "loaded"
except PermissionError:
    ctypes_result = "refused"
except OSError as e:
    ctypes_result = "oserror"
open("strict_probe.py", "w").write("RESULT = %r\n" % ({"exec": exec_result, "curl": curl_result, "ctypes": ctypes_result},))"#;

/// `strict`: `/bin/sh` and `curl` are not executed and a library the
/// package brought is not loaded; both are blocked findings with the line
/// that would allow them. Under `default` the same sdist does both (so
/// the test can tell).
#[test]
fn strict_refuses_shell_curl_and_own_ctypes_library() {
    if !ready() {
        return;
    }
    let r = Runner::new();
    let home = CanaryHome::new();
    let sdist = r.sdist(&Sdist::setuptools_with("strict-probe", STRICT_PROBE));

    let loose = r.build(&sdist, "out-default", "default", &[], home.path());
    assert_eq!(loose.status(), "built", "{}", loose.describe());
    let result = wheel_module_text(&loose, "strict_probe");
    assert!(result.contains("'exec': 'shell-ran'"), "{result}");
    assert!(result.contains("'ctypes': 'loaded'"), "{result}");

    let b = r.build(&sdist, "out-strict", "strict", &[], home.path());
    assert_eq!(b.status(), "built", "{}", b.describe());
    assert_eq!(b.code(), 1, "{}", b.describe());
    let result = wheel_module_text(&b, "strict_probe");
    assert!(result.contains("'exec': 'refused:13'"), "{result}");
    assert!(result.contains("'curl': 'refused:13'"), "{result}");
    assert!(result.contains("'ctypes': 'refused'"), "{result}");

    let fs = findings(&b);
    let sh = find(&fs, "exec", "/bin/sh").unwrap_or_else(|| panic!("no exec finding: {fs:#?}"));
    assert_eq!(sh["verdict"], "blocked");
    assert!(sh["decided_by"].as_str().unwrap().contains("landlock"));
    assert_eq!(sh["origin"]["file"], "setup.py");
    assert!(
        sh["suggestion"]
            .as_str()
            .unwrap()
            .contains("exec = [\"/bin/sh\"]"),
        "{sh}"
    );
    let curl = find(&fs, "exec", "curl").unwrap_or_else(|| panic!("no curl finding: {fs:#?}"));
    assert_eq!(curl["verdict"], "blocked");
    let lib = find(&fs, "native-code", "own_lib.so")
        .unwrap_or_else(|| panic!("no ctypes finding: {fs:#?}"));
    assert_eq!(lib["verdict"], "blocked");
    assert_eq!(
        lib["decided_by"],
        "audit hook (profile: [python] ctypes = \"system\")"
    );
    assert_eq!(lib["suggestion"], "[python]\nctypes = \"any\"");
    home.assert_unchanged();
}

/// `strict` still builds a real C extension (gcc, cc1, as, collect2, ld)
/// and a real pure-Python sdist, with nothing blocked.
#[test]
fn strict_builds_real_c_extension_and_pure_python_sdists() {
    if !ready() {
        return;
    }
    let r = Runner::new();
    let home = CanaryHome::new();
    for (file, extra, so) in [
        (
            "markupsafe-3.0.3.tar.gz",
            &["--env", "CIBUILDWHEEL=1"][..],
            true,
        ),
        ("docopt-0.6.2.tar.gz", &[][..], false),
    ] {
        let sdist = r.real_sdist(file);
        let b = r.build(&sdist, &format!("out-{file}"), "strict", extra, home.path());
        assert_eq!(b.code(), 0, "{file}: {}", b.describe());
        let report = b.report.as_ref().unwrap();
        assert_eq!(report["profile"]["name"], "strict");
        let fs = findings(&b);
        assert!(
            fs.iter().all(|f| f["verdict"] != "blocked"),
            "{file}: {fs:#?}"
        );
        let ll = report["sandbox"]["enforcement"]["layers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["layer"] == "landlock-fs")
            .unwrap()
            .clone();
        assert!(
            ll["detail"]
                .as_str()
                .unwrap()
                .contains("execute only beneath"),
            "{ll}"
        );
        let wheel = b.wheel().unwrap();
        let mut zip = zip::ZipArchive::new(std::fs::File::open(&wheel).unwrap()).unwrap();
        let has_so =
            (0..zip.len()).any(|i| zip.by_index(i).unwrap().name().unwrap().ends_with(".so"));
        assert_eq!(has_so, so, "{file}");
    }
    home.assert_unchanged();
}

/// `observe`: a real sdist builds; every open is recorded; the widened
/// read-only view lets the build read /var, but the network stays blocked
/// and findings never fail the run.
#[test]
fn observe_records_opens_keeps_network_blocked() {
    if !ready() {
        return;
    }
    let r = Runner::new();
    let home = CanaryHome::new();
    let listener = Listener::start();
    listener.self_check();
    let real = r.real_sdist("docopt-0.6.2.tar.gz");
    let b = r.build(&real, "out-real", "observe", &[], home.path());
    assert_eq!(b.code(), 0, "{}", b.describe());
    let report = b.report.as_ref().unwrap();
    assert_eq!(report["profile"]["name"], "observe");
    let opens = report["kernel_events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["syscall"] == "open")
        .count();
    assert!(opens > 10, "opens recorded: {opens}");

    let probe = format!(
        r#"import os, socket
results = {{"var": os.path.isdir("/var/lib")}}
try:
    socket.create_connection(("127.0.0.1", {}), timeout=5)
    results["net"] = "connected"
except OSError as e:
    results["net"] = "refused:%d" % e.errno
open("observe_probe.py", "w").write("RESULT = %r\n" % (results,))"#,
        listener.port
    );
    let sdist = r.sdist(&Sdist::setuptools_with("observe-probe", &probe));
    let b = r.build(&sdist, "out-probe", "observe", &[], home.path());
    // A blocked connect, but observe's fail-on is "never"…
    assert_eq!(b.code(), 0, "{}", b.describe());
    let result = wheel_module_text(&b, "observe_probe");
    assert!(result.contains("'var': True"), "{result}");
    assert!(result.contains("'net': 'refused:13'"), "{result}");
    assert_eq!(listener.connections(), 0);
    let fs = findings(&b);
    let f = find(&fs, "net-connect", &format!("127.0.0.1:{}", listener.port))
        .unwrap_or_else(|| panic!("{fs:#?}"));
    assert_eq!(f["verdict"], "blocked");
    // …unless the command line says otherwise.
    let b = r.build(
        &sdist,
        "out-probe2",
        "observe",
        &["--fail-on", "blocked"],
        home.path(),
    );
    assert_eq!(b.code(), 1, "{}", b.describe());
    home.assert_unchanged();
}

/// In the host's network namespace a build may listen only on a loopback
/// address and a port the profile lists: `listen` on an unbound socket
/// (which binds every address) and `bind` to 0.0.0.0 are refused and
/// reported; a local server on 127.0.0.1 works.
#[test]
fn loopback_mode_listens_only_on_loopback() {
    if !ready() {
        return;
    }
    let r = Runner::new();
    let home = CanaryHome::new();
    let probe = r#"import socket
results = {}
s = socket.socket()
try:
    s.listen()
    results["listen-unbound"] = "listening"
except OSError as e:
    results["listen-unbound"] = "refused:%d" % e.errno
s2 = socket.socket()
try:
    s2.bind(("0.0.0.0", 0))
    results["bind-any"] = "bound"
except OSError as e:
    results["bind-any"] = "refused:%d" % e.errno
s3 = socket.socket()
s3.bind(("127.0.0.1", 0))
s3.listen()
c = socket.create_connection(("127.0.0.1", s3.getsockname()[1]), timeout=5)
a, _ = s3.accept()
c.sendall(b"ping")
results["self"] = a.recv(4).decode()
open("listen_probe.py", "w").write("RESULT = %r\n" % (results,))"#;
    let sdist = r.sdist(&Sdist::setuptools_with("listen-probe", probe));
    let profile = r.file(
        "loopback-bind.toml",
        "version = 1\ndescription = \"loopback\"\n[network]\nmode = \"loopback\"\nbind = [0]\n",
    );
    let b = r.build(
        &sdist,
        "out-listen",
        profile.to_str().unwrap(),
        &[],
        home.path(),
    );
    assert_eq!(b.status(), "built", "{}", b.describe());
    assert_eq!(b.code(), 1, "{}", b.describe());
    let result = wheel_module_text(&b, "listen_probe");
    assert!(
        result.contains("'listen-unbound': 'refused:13'"),
        "{result}"
    );
    assert!(result.contains("'bind-any': 'refused:13'"), "{result}");
    assert!(result.contains("'self': 'ping'"), "{result}");
    let fs = findings(&b);
    let binds: Vec<&Value> = fs
        .iter()
        .filter(|f| f["kind"] == "net-bind" && f["verdict"] == "blocked")
        .collect();
    assert!(
        binds
            .iter()
            .any(|f| f["target"].as_str().unwrap().starts_with("0.0.0.0:")),
        "{fs:#?}"
    );
    assert!(
        binds
            .iter()
            .all(|f| f["suggestion"].as_str().unwrap().starts_with('#')),
        "{fs:#?}"
    );
    home.assert_unchanged();
}

/// The supervisor performs a permitted connect itself, with its own copy of
/// the address: a thread rewriting the caller's sockaddr between the check
/// and the kernel's use (the seccomp-notify TOCTOU race) never reaches the
/// unlisted port.
#[test]
fn allowlist_is_not_fooled_by_rewriting_the_address_during_the_check() {
    if !ready() {
        return;
    }
    let r = Runner::new();
    let good = Listener::start();
    let bad = Listener::start();
    good.self_check();
    bad.self_check();
    let profile = r.file(
        "race.toml",
        &format!(
            "version = 1\ndescription = \"race\"\n[network]\nmode = \"allowlist\"\nallow = [\"127.0.0.1:{}\"]\n",
            good.port
        ),
    );
    let code = format!(
        r#"import ctypes, socket, struct, threading
libc = ctypes.CDLL("libc.so.6", use_errno=True)
def sockaddr(port):
    return struct.pack("<H", socket.AF_INET) + struct.pack(">H", port) + socket.inet_aton("127.0.0.1") + bytes(8)
good, bad = sockaddr({good}), sockaddr({bad})
buf = ctypes.create_string_buffer(good, 16)
stop = []
def flip():
    while not stop:
        ctypes.memmove(buf, bad, 16)
        ctypes.memmove(buf, good, 16)
t = threading.Thread(target=flip)
t.start()
ok = refused = 0
# At least 300 tries, and on (up to 5000) until both addresses were seen:
# on a loaded machine the flipping thread can stall in one state for long.
for i in range(5000):
    s = socket.socket()
    if libc.connect(s.fileno(), buf, 16) == 0:
        ok += 1
    else:
        refused += 1
    s.close()
    if i >= 299 and ok and refused:
        break
stop.append(1)
t.join()
print("RACE ok=%d refused=%d" % (ok, refused))"#,
        good = good.port,
        bad = bad.port
    );
    let mut cmd = common::sdist_box_as(r.user);
    // `run` reports findings (and fails on them by default); this test is
    // about the connections alone.
    let out = cmd
        .args(["run", "--fail-on", "never", "--profile"])
        .arg(&profile)
        .args(["--", "python3", "-c", &code])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let line = err
        .lines()
        .find(|l| l.contains("RACE "))
        .unwrap_or_else(|| panic!("{err}"));
    let count = |key: &str| -> u32 {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(key))
            .unwrap()
            .parse()
            .unwrap()
    };
    // Both addresses were in the buffer during the attempts…
    assert!(count("ok=") > 0, "{line}");
    assert!(count("refused=") > 0, "{line}");
    std::thread::sleep(std::time::Duration::from_millis(300));
    // …and only the listed port was ever reached.
    assert_eq!(bad.connections(), 0, "{line}");
    assert!(good.connections() > 0, "{line}");
}

/// `[filesystem]` read and write paths, end to end, and the suggestion
/// round trip: the default profile refuses the read and names the line;
/// a profile with exactly that line lets it through; a write to the
/// read-only path stays refused and is reported.
#[test]
fn filesystem_paths_and_the_suggested_line_work() {
    if !ready() {
        return;
    }
    let r = Runner::new();
    let home = CanaryHome::new();
    // Outside /tmp: the sandbox has its own /tmp.
    let base = tempfile::Builder::new()
        .prefix("sdist-box-fs-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let data = base.path().join("data");
    let scratch = base.path().join("scratch");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::create_dir_all(&scratch).unwrap();
    std::fs::write(data.join("table.csv"), "site-data-1234\n").unwrap();
    Command::new("chmod")
        .args(["-R", "a+rX"])
        .arg(base.path())
        .status()
        .unwrap();
    Command::new("chmod")
        .arg("777")
        .arg(&scratch)
        .status()
        .unwrap();
    let table = data.join("table.csv");
    let probe = format!(
        r#"results = {{}}
try:
    results["read"] = open({table:?}).read().strip()
except OSError as e:
    results["read"] = "refused:%d" % e.errno
try:
    open({out:?}, "w").write("written")
    results["write"] = "ok"
except OSError as e:
    results["write"] = "refused:%d" % e.errno
try:
    open({evil:?}, "w").write("x")
    results["write-data"] = "ok"
except OSError as e:
    results["write-data"] = "refused:%d" % e.errno
open("fs_probe.py", "w").write("RESULT = %r\n" % (results,))"#,
        table = table.display().to_string(),
        out = scratch.join("out.txt").display().to_string(),
        evil = data.join("planted.txt").display().to_string(),
    );
    let sdist = r.sdist(&Sdist::setuptools_with("fs-probe", &probe));

    let b = r.build(&sdist, "out-fs-default", "default", &[], home.path());
    assert_eq!(b.status(), "built", "{}", b.describe());
    let result = wheel_module_text(&b, "fs_probe");
    assert!(result.contains("'read': 'refused:2'"), "{result}");
    let fs = findings(&b);
    let f = find(&fs, "fs-read", &table.display().to_string()).unwrap_or_else(|| panic!("{fs:#?}"));
    assert_eq!(f["verdict"], "blocked");
    let suggestion = f["suggestion"].as_str().unwrap().to_string();
    assert_eq!(
        suggestion,
        format!("[filesystem]\nread = [\"{}\"]", table.display())
    );

    // The suggested line (never applied by sdist-box: we write it here),
    // plus a writable scratch directory.
    let text = format!(
        "version = 1\ndescription = \"suggested\"\n{}\nwrite = [\"{}\"]\n",
        suggestion.replace(
            &format!("read = [\"{}\"]", table.display()),
            &format!("read = [\"{}\"]", data.display())
        ),
        scratch.display()
    );
    let profile = r.file("suggested.toml", &text);
    let b = r.build(
        &sdist,
        "out-fs-site",
        profile.to_str().unwrap(),
        &[],
        home.path(),
    );
    assert_eq!(b.status(), "built", "{}", b.describe());
    let result = wheel_module_text(&b, "fs_probe");
    assert!(result.contains("'read': 'site-data-1234'"), "{result}");
    assert!(result.contains("'write': 'ok'"), "{result}");
    assert!(result.contains("'write-data': 'refused:30'"), "{result}");
    assert_eq!(
        std::fs::read_to_string(scratch.join("out.txt")).unwrap(),
        "written"
    );
    assert!(!data.join("planted.txt").exists());
    let fs = findings(&b);
    let f = find(&fs, "fs-write", "planted.txt").unwrap_or_else(|| panic!("{fs:#?}"));
    assert_eq!(f["verdict"], "blocked");
    home.assert_unchanged();
}

/// `[limits] output-size`: a wheel larger than the limit is not copied out,
/// and the failure names the limit.
#[test]
fn output_size_limit_refuses_a_larger_wheel() {
    if !ready() {
        return;
    }
    let r = Runner::new();
    let home = CanaryHome::new();
    let sdist = r.sdist(&Sdist::setuptools_with("big-output", "pass"));
    let profile = r.file(
        "small-output.toml",
        "version = 1\ndescription = \"small\"\n[limits]\noutput-size = \"300\"\n",
    );
    let b = r.build(
        &sdist,
        "out-small",
        profile.to_str().unwrap(),
        &[],
        home.path(),
    );
    assert_eq!(b.code(), 3, "{}", b.describe());
    let reason = b.report.as_ref().unwrap()["outcome"]["reason"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(reason.contains("output-size limit (300 bytes)"), "{reason}");
    let wheels = std::fs::read_dir(&b.out_dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".whl"))
        .count();
    assert_eq!(wheels, 0);
    // The default limit lets the same wheel out.
    let b = r.build(&sdist, "out-default-size", "default", &[], home.path());
    assert_eq!(b.code(), 0, "{}", b.describe());
    assert!(b.wheel().unwrap().exists());
}
