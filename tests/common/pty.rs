//! Driving `sdist-box --ask` through a real pseudo-terminal: the binary runs
//! with the pty as its controlling terminal (stdin /dev/null, stdout and
//! stderr piped, so the only way to the terminal is /dev/tty).

use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// A pseudo-terminal pair, both ends close-on-exec.
pub fn open() -> (OwnedFd, OwnedFd) {
    let pty = nix::pty::openpty(None, None).unwrap();
    for fd in [&pty.master, &pty.slave] {
        nix::fcntl::fcntl(
            fd,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        )
        .unwrap();
    }
    (pty.master, pty.slave)
}

/// A child of ours with `slave` as its controlling terminal; stdin is
/// /dev/null and stdout/stderr are pipes.
pub fn spawn_on_pty(args: &[&str], slave: &OwnedFd) -> std::process::Child {
    spawn_on_pty_as(args, slave, None)
}

/// [`spawn_on_pty`], run as `(uid, gid)` (through setpriv) when given: the
/// terminal is handed to that user first.
pub fn spawn_on_pty_as(
    args: &[&str],
    slave: &OwnedFd,
    as_user: Option<(u32, u32)>,
) -> std::process::Child {
    if let Some((uid, gid)) = as_user {
        nix::unistd::fchown(
            slave,
            Some(nix::unistd::Uid::from_raw(uid)),
            Some(nix::unistd::Gid::from_raw(gid)),
        )
        .unwrap();
    }
    let fd = slave.as_raw_fd();
    let mut cmd = super::sdist_box_as(as_user);
    cmd.args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: between fork and exec only async-signal-safe calls (setsid,
    // ioctl) are made, on a descriptor that stays open in the child.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::ioctl(fd, libc::TIOCSCTTY as _, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn().unwrap()
}

/// Read the terminal until `needle` appears after `from`; returns all text.
pub fn wait_for(master: &mut std::fs::File, seen: &mut String, from: usize, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !seen[from..].contains(needle) {
        assert!(
            Instant::now() < deadline,
            "no `{needle}` on the terminal; it shows:\n{seen}"
        );
        let mut buf = [0u8; 4096];
        match master.read(&mut buf) {
            Ok(0) | Err(_) => std::thread::sleep(Duration::from_millis(20)),
            Ok(n) => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
        }
    }
}
