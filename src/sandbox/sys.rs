//! The syscall layer: the only module of sdist-box that may use `unsafe`.
//!
//! Every function here is a thin, typed wrapper over one kernel interface
//! (clone, pidfds, execveat, mount_setattr, seccomp, ioctls). None of them
//! decides policy; callers pass in exactly what to do. Each `unsafe` block
//! carries a `SAFETY:` comment saying why it is sound.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

fn cvt(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn cstring(path: &Path) -> io::Result<CString> {
    use std::os::unix::ffi::OsStrExt;
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

/// What the child of [`clone_into_namespaces`] does before it becomes the
/// sandbox's init: everything is prepared by the parent, so the child runs
/// only async-signal-safe system calls and allocates nothing.
pub struct ChildExec {
    /// Read end of the parent→child pipe; the child waits for one byte
    /// (the parent has written the id maps) before going on.
    pub go_fd: RawFd,
    /// Where the child reports a failure before exec (one line).
    pub status_fd: RawFd,
    /// Becomes the child's stdin.
    pub stdin_fd: RawFd,
    /// Becomes the child's stdout and stderr.
    pub output_fd: RawFd,
    /// Descriptors that must survive exec (CLOEXEC cleared).
    pub keep_fds: Vec<RawFd>,
    /// Bind sources, opened `O_PATH` by the child *inside its new mount
    /// namespace* (a mount from another namespace cannot be bound) and
    /// *before* it switches uid (so that what the caller can reach, e.g.
    /// an interpreter under /root, stays reachable). Source `i` lands on
    /// descriptor `source_base_fd + i`.
    pub sources: Vec<CString>,
    pub source_base_fd: RawFd,
    /// The executable (sdist-box itself), opened by the parent.
    pub exe_fd: RawFd,
    /// Drop supplementary groups (only possible, and only needed, when the
    /// parent is root and did not deny setgroups).
    pub drop_groups: bool,
    /// Switch to this (uid, gid) before exec: the mapped root (0, 0) in new
    /// namespaces; without namespaces, an unprivileged id when the parent is
    /// root, or nothing (`None`).
    pub ids: Option<(u32, u32)>,
    pub argv: Vec<CString>,
    pub envp: Vec<CString>,
    /// cgroup files the child writes `0` to, moving itself into the
    /// sandbox's cgroup (v1 `tasks`: one thread moving itself skips the
    /// kernel's global threadgroup lock, whose RCU grace period costs
    /// ~10 ms when the parent moves the child instead).
    pub cgroup_join: Vec<CString>,
}

/// A started child: its pid in the parent's namespace and a pidfd.
pub struct Started {
    pub pid: libc::pid_t,
    pub pidfd: OwnedFd,
}

/// `clone(2)` into new namespaces, then in the child run [`ChildExec`] and
/// `execveat` sdist-box's init. Returns in the parent only.
pub fn clone_into_namespaces(flags: libc::c_int, child: &ChildExec) -> io::Result<Started> {
    // Pointer arrays are built before the clone so that the child allocates
    // nothing (the parent may be multi-threaded; malloc locks could be held).
    let mut argv: Vec<*const libc::c_char> = child.argv.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = child.envp.iter().map(|a| a.as_ptr()).collect();
    envp.push(std::ptr::null());
    let empty: &CStr = c"";
    let mut pidfd: libc::c_int = -1;

    // SAFETY: a raw clone without CLONE_VM and with a NULL stack behaves like
    // fork(2): the child gets a copy-on-write copy of this address space and
    // continues on its own copy of the current stack. The child only calls
    // async-signal-safe system calls on data prepared above and then execs or
    // exits with `_exit`, so no Rust or libc state is observed inconsistently.
    // CLONE_PIDFD makes the kernel store the pidfd in `pidfd`, which lives in
    // this frame.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (flags | libc::CLONE_PIDFD | libc::SIGCHLD) as libc::c_ulong,
            std::ptr::null_mut::<libc::c_void>(),
            &mut pidfd as *mut libc::c_int,
            std::ptr::null_mut::<libc::c_void>(),
            0 as libc::c_ulong,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    if ret == 0 {
        // SAFETY: see above; `child_after_clone` never returns.
        unsafe { child_after_clone(child, argv.as_ptr(), envp.as_ptr(), empty.as_ptr()) }
    }
    // SAFETY: the kernel returned a new pidfd that nothing else owns.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    Ok(Started {
        pid: ret as libc::pid_t,
        pidfd,
    })
}

/// The clone child's report of a failure before exec, then `_exit(127)`.
///
/// # Safety
/// Only in the clone child: async-signal-safe, allocates nothing.
unsafe fn fail_with(status_fd: RawFd, code: u8, index: usize, errno: i32) -> ! {
    // "E<code> <index> <errno>\n": the parent reads it as a pre-exec
    // failure. Formatted by hand into a stack buffer: no allocation.
    let mut msg = [0u8; 48];
    let mut len = 0;
    let mut push = |b: u8| {
        msg[len] = b;
        len += 1;
    };
    push(b'E');
    push(b'0' + code / 10);
    push(b'0' + code % 10);
    for value in [index as u64, errno.unsigned_abs() as u64] {
        push(b' ');
        let mut digits = [0u8; 20];
        let mut n = 0;
        let mut v = value;
        loop {
            digits[n] = b'0' + (v % 10) as u8;
            n += 1;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        for i in (0..n).rev() {
            push(digits[i]);
        }
    }
    push(b'\n');
    // SAFETY: writing a stack buffer to an fd and exiting are
    // async-signal-safe.
    unsafe {
        libc::write(status_fd, msg.as_ptr().cast(), len);
        libc::_exit(127)
    }
}

/// [`fail_with`] for the current errno.
///
/// # Safety
/// As [`fail_with`].
unsafe fn fail(status_fd: RawFd, code: u8) -> ! {
    // SAFETY: as fail_with.
    unsafe { fail_with(status_fd, code, 0, *libc::__errno_location()) }
}

/// The child's side of the clone. Only async-signal-safe calls.
///
/// # Safety
/// Must only be called in the child right after `clone`; the pointers must
/// point to NULL-terminated arrays that stay valid (they are in the copied
/// address space).
unsafe fn child_after_clone(
    child: &ChildExec,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    empty: *const libc::c_char,
) -> ! {
    // SAFETY: all calls below are async-signal-safe system calls on fds and
    // pointers prepared by the parent before the clone.
    unsafe {
        let mut byte = 0u8;
        loop {
            let n = libc::read(child.go_fd, (&mut byte as *mut u8).cast(), 1);
            if n == 1 {
                break;
            }
            if n < 0 && *libc::__errno_location() == libc::EINTR {
                continue;
            }
            // The parent went away or refused: nothing to do.
            libc::_exit(126);
        }
        for (i, file) in child.cgroup_join.iter().enumerate() {
            let fd = libc::open(file.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if fd < 0 || libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                fail_with(child.status_fd, 9, i, *libc::__errno_location());
            }
            libc::close(fd);
        }
        for (i, source) in child.sources.iter().enumerate() {
            let fd = libc::open(source.as_ptr(), libc::O_PATH | libc::O_CLOEXEC);
            if fd < 0 {
                fail_with(child.status_fd, 7, i, *libc::__errno_location());
            }
            // The copy (without O_CLOEXEC) survives exec into init.
            let want = child.source_base_fd + i as RawFd;
            if fd == want {
                if libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                    fail_with(child.status_fd, 8, i, *libc::__errno_location());
                }
            } else {
                if libc::dup3(fd, want, 0) < 0 {
                    fail_with(child.status_fd, 8, i, *libc::__errno_location());
                }
                libc::close(fd);
            }
        }
        // Raw system calls, not glibc's wrappers: in a multi-threaded
        // parent (`build-all` starts sandboxes from several threads, `--ask`
        // runs a prompt thread) glibc makes setgroups/setresgid/setresuid
        // process-wide by signalling every thread it knows of under its
        // thread-list lock. The raw clone did not tell glibc it forked: the
        // child inherits that list and the lock, possibly held by a parent
        // thread that was creating or ending a thread at that instant, and
        // then waits on it forever. The child is single-threaded, so the raw
        // call is the whole effect.
        // An empty signal mask: the parent may block signals in all its
        // threads (build-all waits for SIGINT/SIGTERM in one of them), and
        // a mask survives exec; the sandbox must start as a fresh process.
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &none as *const libc::sigset_t,
            std::ptr::null_mut::<libc::sigset_t>(),
            8 as libc::size_t,
        );
        if child.drop_groups
            && libc::syscall(libc::SYS_setgroups, 0, std::ptr::null::<libc::gid_t>()) != 0
        {
            fail(child.status_fd, 1);
        }
        if let Some((uid, gid)) = child.ids {
            if libc::syscall(libc::SYS_setresgid, gid, gid, gid) != 0 {
                fail(child.status_fd, 2);
            }
            if libc::syscall(libc::SYS_setresuid, uid, uid, uid) != 0 {
                fail(child.status_fd, 3);
            }
        }
        if libc::dup2(child.stdin_fd, 0) < 0
            || libc::dup2(child.output_fd, 1) < 0
            || libc::dup2(child.output_fd, 2) < 0
        {
            fail(child.status_fd, 4);
        }
        for &fd in &child.keep_fds {
            if libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                fail(child.status_fd, 5);
            }
        }
        libc::syscall(
            libc::SYS_execveat,
            child.exe_fd,
            empty,
            argv,
            envp,
            libc::AT_EMPTY_PATH,
        );
        fail(child.status_fd, 6)
    }
}

/// Describes the pre-exec failure codes written by the clone child.
pub fn pre_exec_failure(code: u8) -> &'static str {
    match code {
        1 => "could not drop supplementary groups",
        2 => "could not switch to the mapped gid",
        3 => "could not switch to the mapped uid",
        4 => "could not set up standard descriptors",
        5 => "could not pass descriptors to the sandbox init",
        6 => "could not execute sdist-box's sandbox init",
        7 => "could not open a bind source",
        8 => "could not place a bind source descriptor",
        9 => "could not join the sandbox's cgroup",
        _ => "unknown failure before exec",
    }
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Exited(i32),
    Signaled(i32),
}

/// Wait for the process behind `pidfd` to end and reap it.
pub fn wait_pidfd(pidfd: BorrowedFd<'_>) -> io::Result<ExitStatus> {
    loop {
        // SAFETY: siginfo_t is plain data; zeroed is a valid value. waitid
        // writes into it and nothing else.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: P_PIDFD with a valid pidfd and a valid out pointer.
        let ret = unsafe {
            libc::waitid(
                libc::P_PIDFD,
                pidfd.as_raw_fd() as libc::id_t,
                &mut info,
                libc::WEXITED,
            )
        };
        if ret < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        // SAFETY: waitid filled a CLD_* siginfo; si_status is valid for it.
        let status = unsafe { info.si_status() };
        return Ok(if info.si_code == libc::CLD_EXITED {
            ExitStatus::Exited(status)
        } else {
            ExitStatus::Signaled(status)
        });
    }
}

/// Send a signal through a pidfd (no pid-reuse race).
pub fn pidfd_send_signal(pidfd: BorrowedFd<'_>, signal: libc::c_int) -> io::Result<()> {
    // SAFETY: plain syscall on a valid pidfd; NULL siginfo means "as kill".
    cvt(unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    })
    .map(drop)
}

/// Duplicate descriptor `fd` of the process behind `pidfd` into this one.
pub fn pidfd_getfd(pidfd: BorrowedFd<'_>, fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall; on success it returns a new descriptor that we
    // own exclusively.
    let ret = cvt(unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0) })?;
    // SAFETY: `ret` is a fresh descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as RawFd) })
}

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

pub const MOUNT_ATTR_RDONLY: u64 = 0x1;
pub const MOUNT_ATTR_NOSUID: u64 = 0x2;
pub const MOUNT_ATTR_NODEV: u64 = 0x4;

/// `mount_setattr(2)`: set mount attributes on `path` (and, if `recursive`,
/// every mount beneath it).
pub fn mount_setattr(path: &Path, recursive: bool, set: u64) -> io::Result<()> {
    let path = cstring(path)?;
    let attr = MountAttr {
        attr_set: set,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    let flags = if recursive { libc::AT_RECURSIVE } else { 0 } | libc::AT_SYMLINK_NOFOLLOW;
    // SAFETY: valid NUL-terminated path and a correctly sized, initialized
    // struct that outlives the call.
    cvt(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            path.as_ptr(),
            flags as libc::c_uint,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    })
    .map(drop)
}

/// Bring the loopback interface of the current network namespace up.
pub fn loopback_up() -> io::Result<()> {
    // SAFETY: creating a socket has no memory-safety preconditions.
    let fd = cvt(
        unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) }
            as libc::c_long,
    )?;
    // SAFETY: fresh descriptor, owned here.
    let sock = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
    // SAFETY: ifreq is plain data; all-zero is valid.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read/write the ifreq we own.
    unsafe {
        cvt(libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) as libc::c_long)?;
        req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
        cvt(libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) as libc::c_long)?;
    }
    Ok(())
}

/// Close every descriptor from 3 up except those in `keep`.
pub fn close_fds_except(keep: &[RawFd]) {
    let mut keep: Vec<RawFd> = keep.iter().copied().filter(|&fd| fd > 2).collect();
    keep.sort_unstable();
    let mut start: u32 = 3;
    for fd in keep {
        let fd = fd as u32;
        if fd > start {
            // SAFETY: close_range only closes descriptors; the kept ones are
            // outside the ranges passed.
            unsafe { libc::syscall(libc::SYS_close_range, start, fd - 1, 0) };
        }
        start = fd + 1;
    }
    // SAFETY: as above.
    unsafe { libc::syscall(libc::SYS_close_range, start, u32::MAX, 0) };
}

/// Set `PR_SET_NO_NEW_PRIVS`.
pub fn set_no_new_privs() -> io::Result<()> {
    // SAFETY: prctl with integer arguments only.
    cvt(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } as libc::c_long).map(drop)
}

/// Make this process a child subreaper-free pid 1 helper: die with parent.
pub fn set_parent_death_signal(signal: libc::c_int) -> io::Result<()> {
    // SAFETY: prctl with integer arguments only.
    cvt(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, signal, 0, 0, 0) } as libc::c_long).map(drop)
}

/// Make the process `cmd` starts receive SIGKILL when the thread that
/// starts it ends (sdist-box killed included), for helpers of the trusted
/// stage such as pip. A child whose parent is already gone by the time the
/// signal is armed exits at once instead of running on unowned.
pub fn kill_with_parent(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: getpid is async-signal-safe.
    let parent = unsafe { libc::getpid() };
    // SAFETY: the closure runs in the forked child before exec and only
    // calls prctl and getppid (async-signal-safe, no allocation); an error
    // is returned as the errno std reports, so nothing is allocated either.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::getppid() != parent {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

/// Install a classic BPF seccomp filter. With `new_listener`, returns the
/// user-notification listener descriptor.
pub fn seccomp_install(
    program: &[libc::sock_filter],
    new_listener: bool,
) -> io::Result<Option<OwnedFd>> {
    let prog = libc::sock_fprog {
        len: u16::try_from(program.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "seccomp program too long"))?,
        filter: program.as_ptr() as *mut libc::sock_filter,
    };
    let flags = if new_listener {
        libc::SECCOMP_FILTER_FLAG_NEW_LISTENER
    } else {
        0
    };
    // SAFETY: `prog` points at `program`, which outlives the call; the kernel
    // copies the filter.
    let ret = cvt(unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags,
            &prog as *const libc::sock_fprog,
        )
    })?;
    if new_listener {
        // SAFETY: with NEW_LISTENER the return value is a fresh descriptor.
        Ok(Some(unsafe { OwnedFd::from_raw_fd(ret as RawFd) }))
    } else {
        Ok(None)
    }
}

/// Take ownership of a descriptor that our own parent placed in this process
/// (the sandbox init's status and control pipes).
pub fn file_from_fd(fd: RawFd) -> std::fs::File {
    // SAFETY: the descriptor numbers come from our parent's argv for us;
    // nothing else in this fresh process refers to them.
    unsafe { std::fs::File::from_raw_fd(fd) }
}

/// `fork(2)` for a process known to be single-threaded (the sandbox init).
pub fn fork_single_threaded() -> nix::Result<nix::unistd::ForkResult> {
    // SAFETY: the caller guarantees there are no other threads, so the child
    // may use the allocator and any other state freely.
    unsafe { nix::unistd::fork() }
}

/// seccompiler's instructions in libc's layout (the same four fields).
fn to_libc(program: &[seccompiler::sock_filter]) -> Vec<libc::sock_filter> {
    program
        .iter()
        .map(|i| libc::sock_filter {
            code: i.code,
            jt: i.jt,
            jf: i.jf,
            k: i.k,
        })
        .collect()
}

/// Install a filter compiled by seccompiler (no listener).
pub fn seccomp_install_compiled(program: &[seccompiler::sock_filter]) -> io::Result<()> {
    seccomp_install(&to_libc(program), false).map(drop)
}

/// `pidfd_open(2)`.
pub fn pidfd_open(pid: libc::pid_t) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall; returns a fresh descriptor on success.
    let ret = cvt(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) })?;
    // SAFETY: fresh descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as RawFd) })
}

/// Wait until `fd` is readable or `timeout` passes.
pub fn poll_readable(fd: BorrowedFd<'_>, timeout: std::time::Duration) {
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
    // SAFETY: one valid pollfd, count 1.
    unsafe { libc::poll(&mut pfd, 1, ms) };
}

/// The Landlock ABI version of the running kernel, or the errno that says
/// why there is none (`ENOSYS`: not built in; `EOPNOTSUPP`: not enabled).
pub fn landlock_abi() -> Result<i32, i32> {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;
    // SAFETY: with the VERSION flag, a NULL attr and size 0 are the
    // documented way to ask for the ABI; nothing is written.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error().raw_os_error().unwrap_or(0))
    } else {
        Ok(ret as i32)
    }
}

/// One seccomp user notification, as received.
#[derive(Debug, Clone, Copy)]
pub struct Notification {
    pub id: u64,
    /// Pid of the caller in the listener holder's pid namespace.
    pub pid: u32,
    pub nr: i32,
    pub args: [u64; 6],
}

/// `SECCOMP_IOCTL_NOTIF_RECV`: wait for the next notification.
pub fn notif_recv(listener: BorrowedFd<'_>) -> io::Result<Notification> {
    // SAFETY: seccomp_notif is plain data; the kernel requires it zeroed
    // before RECV, which `zeroed` does.
    let mut notif: libc::seccomp_notif = unsafe { std::mem::zeroed() };
    // SAFETY: valid listener fd and a correctly sized out-struct.
    let ret = unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_RECV,
            &mut notif as *mut libc::seccomp_notif,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Notification {
        id: notif.id,
        pid: notif.pid,
        nr: notif.data.nr,
        args: notif.data.args,
    })
}

/// `SECCOMP_IOCTL_NOTIF_SEND`: answer a notification. `error` 0 with
/// `allow` lets the call continue in the kernel; otherwise it fails with
/// `-error`.
pub fn notif_respond(listener: BorrowedFd<'_>, id: u64, allow: bool, error: i32) -> io::Result<()> {
    let resp = libc::seccomp_notif_resp {
        id,
        val: 0,
        error: if allow { 0 } else { -error },
        flags: if allow {
            libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32
        } else {
            0
        },
    };
    notif_send(listener, &resp)
}

/// `SECCOMP_IOCTL_NOTIF_SEND` of a prepared response.
fn notif_send(listener: BorrowedFd<'_>, resp: &libc::seccomp_notif_resp) -> io::Result<()> {
    // SAFETY: valid listener fd and an initialized response struct that
    // outlives the call.
    let ret = unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_SEND,
            resp as *const libc::seccomp_notif_resp,
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `SECCOMP_IOCTL_NOTIF_SEND` with a return value: the call "returns"
/// `value` without the kernel doing it (the supervisor did it itself).
pub fn notif_respond_value(listener: BorrowedFd<'_>, id: u64, value: i64) -> io::Result<()> {
    let resp = libc::seccomp_notif_resp {
        id,
        val: value,
        error: 0,
        flags: 0,
    };
    notif_send(listener, &resp)
}

/// `SECCOMP_IOCTL_NOTIF_ID_VALID`: is the notification still pending (the
/// caller alive and waiting)? Checked after reading its memory.
pub fn notif_id_valid(listener: BorrowedFd<'_>, id: u64) -> bool {
    // SAFETY: valid listener fd and a pointer to a u64 that outlives the call.
    unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_ID_VALID,
            &id as *const u64,
        ) == 0
    }
}

/// Read up to `len` bytes at `addr` in process `pid` (may return fewer).
pub fn read_process_memory(pid: u32, addr: u64, len: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    let local = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: len,
    };
    let remote = libc::iovec {
        iov_base: addr as *mut libc::c_void,
        iov_len: len,
    };
    // SAFETY: the local iovec points into `buf`, which is `len` bytes long;
    // the remote iovec is only interpreted in the other process.
    let n = unsafe { libc::process_vm_readv(pid as libc::pid_t, &local, 1, &remote, 1, 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok(buf)
}

/// `poll(2)` two descriptors for input; returns their `revents` (zeros on
/// timeout).
pub fn poll_two(a: BorrowedFd<'_>, b: BorrowedFd<'_>, timeout: std::time::Duration) -> (i16, i16) {
    let mut pfds = [
        libc::pollfd {
            fd: a.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: b.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
    // SAFETY: an array of two valid pollfds, count 2.
    let n = unsafe { libc::poll(pfds.as_mut_ptr(), 2, ms) };
    if n <= 0 {
        (0, 0)
    } else {
        (pfds[0].revents, pfds[1].revents)
    }
}

/// Install a compiled user-notification filter; returns its listener.
pub fn seccomp_install_notify(program: &[seccompiler::sock_filter]) -> io::Result<OwnedFd> {
    seccomp_install(&to_libc(program), true)?
        .ok_or_else(|| io::Error::other("the kernel returned no listener"))
}

/// Set close-on-exec on `fd`.
pub fn set_cloexec(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on an integer descriptor; no memory is involved.
    let ret = unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Make `want` a copy of `fd` that survives exec (no-op copy when equal).
pub fn dup_to(fd: RawFd, want: RawFd) -> io::Result<()> {
    // SAFETY: fcntl/dup3 on integer descriptors; no memory is involved.
    let ret = unsafe {
        if fd == want {
            libc::fcntl(fd, libc::F_SETFD, 0)
        } else {
            libc::dup3(fd, want, 0)
        }
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Wait until `fd` has input or `timeout` passes; true when it has input
/// (or hung up: a read then says EOF).
pub fn poll_in(fd: BorrowedFd<'_>, timeout: std::time::Duration) -> bool {
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
    // SAFETY: one valid pollfd, count 1.
    let n = unsafe { libc::poll(&mut pfd, 1, ms) };
    n > 0 && pfd.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0
}

/// `PR_SET_CHILD_SUBREAPER`: orphaned descendants are reparented to us.
pub fn set_child_subreaper() -> io::Result<()> {
    // SAFETY: prctl with integer arguments only.
    cvt(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } as libc::c_long).map(drop)
}

/// Can this process create a user namespace? A child is cloned into a new
/// one and exits at once.
pub fn probe_user_namespace() -> io::Result<()> {
    // SAFETY: as in clone_into_namespaces (fork-like clone, NULL stack);
    // the child only calls _exit.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (libc::CLONE_NEWUSER | libc::SIGCHLD) as libc::c_ulong,
            std::ptr::null_mut::<libc::c_void>(),
            std::ptr::null_mut::<libc::c_int>(),
            std::ptr::null_mut::<libc::c_void>(),
            0 as libc::c_ulong,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    if ret == 0 {
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(0) }
    }
    let mut status = 0;
    // SAFETY: waiting for our own child with a valid out pointer.
    unsafe { libc::waitpid(ret as libc::pid_t, &mut status, 0) };
    Ok(())
}

/// A writable copy (close-on-exec) of a descriptor this process inherited,
/// e.g. `--events fd:3`. The original stays open; it is checked to be open
/// and writable first, so a wrong number is an error, not a stray write.
pub fn dup_inherited(fd: RawFd) -> io::Result<std::fs::File> {
    // SAFETY: fcntl on an integer descriptor; no memory is involved.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    if flags & libc::O_ACCMODE == libc::O_RDONLY {
        return Err(io::Error::other("it is open read-only"));
    }
    // SAFETY: as above; F_DUPFD_CLOEXEC returns a new descriptor we own.
    let copy = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
    if copy < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `copy` was just created by fcntl and nothing else refers to it.
    Ok(unsafe { std::fs::File::from_raw_fd(copy) })
}

/// The strings a detached tmpfs is configured with, prepared before any
/// fork so that the child allocates nothing.
pub struct TmpfsConfig {
    pub size: CString,
    pub mode: CString,
}

const FSOPEN_CLOEXEC: libc::c_uint = 1;
const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
const FSMOUNT_CLOEXEC: libc::c_uint = 1;

/// fsopen("tmpfs") → size, mode → create → fsmount(nosuid, nodev): the raw
/// descriptor of a detached mount, or a negative errno. Only raw system
/// calls on prepared strings: safe in a child after `clone`.
///
/// # Safety
/// Closes the descriptors it opens; callers own the returned one.
unsafe fn tmpfs_detached_raw(cfg: &TmpfsConfig) -> libc::c_int {
    // SAFETY: __errno_location returns this thread's errno slot, always valid.
    let errno = || -(unsafe { *libc::__errno_location() });
    // SAFETY: system calls on NUL-terminated strings that outlive them.
    unsafe {
        let fs = libc::syscall(libc::SYS_fsopen, c"tmpfs".as_ptr(), FSOPEN_CLOEXEC);
        if fs < 0 {
            return errno();
        }
        let fs = fs as libc::c_int;
        for (key, value) in [(c"size", &cfg.size), (c"mode", &cfg.mode)] {
            if libc::syscall(
                libc::SYS_fsconfig,
                fs,
                FSCONFIG_SET_STRING,
                key.as_ptr(),
                value.as_ptr(),
                0,
            ) < 0
            {
                let e = errno();
                libc::close(fs);
                return e;
            }
        }
        if libc::syscall(
            libc::SYS_fsconfig,
            fs,
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        ) < 0
        {
            let e = errno();
            libc::close(fs);
            return e;
        }
        let attrs = (MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV) as libc::c_uint;
        let m = libc::syscall(libc::SYS_fsmount, fs, FSMOUNT_CLOEXEC, attrs);
        let e = errno();
        libc::close(fs);
        if m < 0 { e } else { m as libc::c_int }
    }
}

/// A detached tmpfs mount made here (needs CAP_SYS_ADMIN over this mount
/// namespace: root).
pub fn tmpfs_detached(cfg: &TmpfsConfig) -> io::Result<OwnedFd> {
    // SAFETY: see tmpfs_detached_raw; a non-negative result is a fresh
    // descriptor nobody else owns.
    let fd = unsafe { tmpfs_detached_raw(cfg) };
    if fd < 0 {
        return Err(io::Error::from_raw_os_error(-fd));
    }
    // SAFETY: as above.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;

/// Attach the detached mount `fd` at `target` (move_mount).
pub fn move_mount_to(fd: BorrowedFd<'_>, target: &Path) -> io::Result<()> {
    let target = cstring(target)?;
    // SAFETY: plain syscall on a live descriptor and NUL-terminated strings.
    cvt(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            fd.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            target.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    })?;
    Ok(())
}
