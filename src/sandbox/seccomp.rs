//! The seccomp deny filter: system calls a build never needs and an attacker
//! would love, refused with `EPERM` (or `ENOSYS` where libc must fall back).
//!
//! Compiled with seccompiler (serde-free Rust front end → BPF). Two things
//! seccompiler cannot say are added around its output: the x32 ABI (same
//! audit arch as x86-64, syscall numbers with bit 30 set) is killed, and
//! `clone3` answers `ENOSYS` so that libc falls back to `clone`, whose flags
//! a classic BPF filter *can* inspect.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("failed to compile the seccomp filter: {0}")]
    Compile(#[from] seccompiler::BackendError),
    #[error("this architecture (`{0}`) has no seccomp filter in sdist-box")]
    Arch(&'static str),
}

/// System calls refused outright with `EPERM`.
pub const DENIED: &[(&str, i64)] = &[
    ("io_uring_setup", libc::SYS_io_uring_setup),
    ("io_uring_enter", libc::SYS_io_uring_enter),
    ("io_uring_register", libc::SYS_io_uring_register),
    ("ptrace", libc::SYS_ptrace),
    ("process_vm_readv", libc::SYS_process_vm_readv),
    ("process_vm_writev", libc::SYS_process_vm_writev),
    ("pidfd_getfd", libc::SYS_pidfd_getfd),
    ("bpf", libc::SYS_bpf),
    ("perf_event_open", libc::SYS_perf_event_open),
    ("userfaultfd", libc::SYS_userfaultfd),
    ("keyctl", libc::SYS_keyctl),
    ("add_key", libc::SYS_add_key),
    ("request_key", libc::SYS_request_key),
    ("mount", libc::SYS_mount),
    ("umount2", libc::SYS_umount2),
    ("pivot_root", libc::SYS_pivot_root),
    ("chroot", libc::SYS_chroot),
    ("open_tree", libc::SYS_open_tree),
    ("move_mount", libc::SYS_move_mount),
    ("fsopen", libc::SYS_fsopen),
    ("fsconfig", libc::SYS_fsconfig),
    ("fsmount", libc::SYS_fsmount),
    ("fspick", libc::SYS_fspick),
    ("mount_setattr", libc::SYS_mount_setattr),
    ("unshare", libc::SYS_unshare),
    ("setns", libc::SYS_setns),
    ("kexec_load", libc::SYS_kexec_load),
    ("kexec_file_load", libc::SYS_kexec_file_load),
    ("init_module", libc::SYS_init_module),
    ("finit_module", libc::SYS_finit_module),
    ("delete_module", libc::SYS_delete_module),
    ("personality", libc::SYS_personality),
    ("acct", libc::SYS_acct),
    ("swapon", libc::SYS_swapon),
    ("swapoff", libc::SYS_swapoff),
    ("reboot", libc::SYS_reboot),
    ("syslog", libc::SYS_syslog),
    ("quotactl", libc::SYS_quotactl),
    ("open_by_handle_at", libc::SYS_open_by_handle_at),
    ("iopl", libc::SYS_iopl),
    ("ioperm", libc::SYS_ioperm),
    ("settimeofday", libc::SYS_settimeofday),
    ("clock_settime", libc::SYS_clock_settime),
    ("clock_adjtime", libc::SYS_clock_adjtime),
    ("adjtimex", libc::SYS_adjtimex),
];

/// Namespace flags `clone` may not carry.
const NAMESPACE_FLAGS: &[u64] = &[
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWNET as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWCGROUP as u64,
    libc::CLONE_NEWTIME as u64,
];

fn arch() -> Result<TargetArch, SeccompError> {
    TargetArch::try_from(std::env::consts::ARCH)
        .map_err(|_| SeccompError::Arch(std::env::consts::ARCH))
}

/// The deny filter: `EPERM` for [`DENIED`], namespace-creating `clone`, and
/// terminal-injecting ioctls; x32 system calls kill the process.
pub fn deny_filter() -> Result<BpfProgram, SeccompError> {
    let arch = arch()?;
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> =
        DENIED.iter().map(|&(_, nr)| (nr, vec![])).collect();
    let clone_rules = NAMESPACE_FLAGS
        .iter()
        .map(|&flag| {
            SeccompRule::new(vec![SeccompCondition::new(
                0,
                SeccompCmpArgLen::Qword,
                SeccompCmpOp::MaskedEq(flag),
                flag,
            )?])
        })
        .collect::<Result<Vec<_>, _>>()?;
    rules.insert(libc::SYS_clone, clone_rules);
    let ioctl_rules = [libc::TIOCSTI, libc::TIOCLINUX]
        .iter()
        .map(|&req| {
            SeccompRule::new(vec![SeccompCondition::new(
                1,
                SeccompCmpArgLen::Dword,
                SeccompCmpOp::Eq,
                req,
            )?])
        })
        .collect::<Result<Vec<_>, _>>()?;
    rules.insert(libc::SYS_ioctl, ioctl_rules);
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )?;
    let mut program: BpfProgram = filter.try_into()?;
    if arch == TargetArch::x86_64 {
        insert_x32_kill(&mut program);
    }
    Ok(program)
}

/// `clone3` → `ENOSYS`, so that libc falls back to `clone`.
pub fn clone3_filter() -> Result<BpfProgram, SeccompError> {
    let arch = arch()?;
    let rules: BTreeMap<i64, Vec<SeccompRule>> = [(libc::SYS_clone3, vec![])].into_iter().collect();
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        arch,
    )?;
    Ok(filter.try_into()?)
}

/// `memfd_create` → `EPERM`: the `resources` layer's fallback where the
/// sandbox has no cgroup (memfd pages are in no address space, so no
/// rlimit bounds them).
pub fn memfd_filter() -> Result<BpfProgram, SeccompError> {
    let arch = arch()?;
    let rules: BTreeMap<i64, Vec<SeccompRule>> =
        [(libc::SYS_memfd_create, vec![])].into_iter().collect();
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )?;
    Ok(filter.try_into()?)
}

/// The degraded mode's additions (no namespaces around the build):
/// sockets of every family but unix are refused (`EACCES`; with a
/// supervisor they are notified instead, see [`notify_filter`]); TCP Fast
/// Open sends, which connect without `connect`, are refused; and `setsid` /
/// `setpgid` are refused, so that every process stays in the init's process
/// group, which is how the whole tree is killed without a pid namespace.
pub fn degraded_filter(sockets_notified: bool) -> Result<BpfProgram, SeccompError> {
    let arch = arch()?;
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    rules.insert(libc::SYS_setsid, vec![]);
    rules.insert(libc::SYS_setpgid, vec![]);
    let fastopen = |arg: u8| -> Result<Vec<SeccompRule>, SeccompError> {
        Ok(vec![SeccompRule::new(vec![SeccompCondition::new(
            arg,
            SeccompCmpArgLen::Dword,
            SeccompCmpOp::MaskedEq(libc::MSG_FASTOPEN as u64),
            libc::MSG_FASTOPEN as u64,
        )?])?])
    };
    rules.insert(libc::SYS_sendto, fastopen(3)?);
    rules.insert(libc::SYS_sendmsg, fastopen(2)?);
    rules.insert(libc::SYS_sendmmsg, fastopen(3)?);
    if !sockets_notified {
        rules.insert(libc::SYS_socket, not_unix_socket()?);
    }
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EACCES as u32),
        arch,
    )?;
    Ok(filter.try_into()?)
}

/// `socket(2)` with a family other than `AF_UNIX`.
fn not_unix_socket() -> Result<Vec<SeccompRule>, SeccompError> {
    Ok(vec![SeccompRule::new(vec![SeccompCondition::new(
        0,
        SeccompCmpArgLen::Dword,
        SeccompCmpOp::Ne,
        libc::AF_UNIX as u64,
    )?])?])
}

/// Socket families a build sharing the host's network namespace may create.
pub const SOCKET_FAMILIES: &[(&str, i32)] = &[
    ("AF_UNIX", libc::AF_UNIX),
    ("AF_INET", libc::AF_INET),
    ("AF_INET6", libc::AF_INET6),
];

/// For builds in the host's network namespace (loopback, allowlist modes):
/// `socket` of any family but [`SOCKET_FAMILIES`] (netlink, packet, vsock,
/// bluetooth, alg, …) and `socketpair` of any but `AF_UNIX` fail with
/// `EAFNOSUPPORT`. The supervisor decides where the allowed ones connect.
pub fn socket_family_filter() -> Result<BpfProgram, SeccompError> {
    let arch = arch()?;
    let not_in = |families: &[i32]| -> Result<Vec<SeccompRule>, SeccompError> {
        let conditions = families
            .iter()
            .map(|&f| SeccompCondition::new(0, SeccompCmpArgLen::Dword, SeccompCmpOp::Ne, f as u64))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(vec![SeccompRule::new(conditions)?])
    };
    let families: Vec<i32> = SOCKET_FAMILIES.iter().map(|&(_, f)| f).collect();
    let rules: BTreeMap<i64, Vec<SeccompRule>> = [
        (libc::SYS_socket, not_in(&families)?),
        (libc::SYS_socketpair, not_in(&[libc::AF_UNIX])?),
    ]
    .into_iter()
    .collect();
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EAFNOSUPPORT as u32),
        arch,
    )?;
    Ok(filter.try_into()?)
}

/// System calls the supervisor is told about (the kernel stream).
pub const NOTIFIED: &[(&str, i64)] = &[
    ("connect", libc::SYS_connect),
    ("bind", libc::SYS_bind),
    ("sendto", libc::SYS_sendto),
    ("sendmsg", libc::SYS_sendmsg),
    ("sendmmsg", libc::SYS_sendmmsg),
    ("execve", libc::SYS_execve),
    ("execveat", libc::SYS_execveat),
];

/// Also notified when the build shares the host's network namespace.
pub const NOTIFIED_SHARED_NETNS: &[(&str, i64)] = &[("listen", libc::SYS_listen)];

/// The open family, notified with `--trace-files`.
pub const NOTIFIED_FILES: &[(&str, i64)] = &[
    ("open", libc::SYS_open),
    ("openat", libc::SYS_openat),
    ("openat2", libc::SYS_openat2),
    ("creat", libc::SYS_creat),
];

/// seccompiler has no user-notification action: compile with this
/// sentinel `Trace` value and rewrite it (see [`notify_filter`]).
const NOTIFY_SENTINEL: u32 = 0x5db0;

/// The user-notification filter for `syscalls`.
pub fn notify_filter(syscalls: &[i64]) -> Result<BpfProgram, SeccompError> {
    notify_filter_with(syscalls, false)
}

/// [`notify_filter`], and with `sockets`, also `socket(2)` of every family
/// but unix (the degraded mode: the supervisor refuses and records them).
pub fn notify_filter_with(syscalls: &[i64], sockets: bool) -> Result<BpfProgram, SeccompError> {
    let arch = arch()?;
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> =
        syscalls.iter().map(|&nr| (nr, vec![])).collect();
    if sockets {
        rules.insert(libc::SYS_socket, not_unix_socket()?);
    }
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Trace(NOTIFY_SENTINEL),
        arch,
    )?;
    let mut program: BpfProgram = filter.try_into()?;
    let sentinel = libc::SECCOMP_RET_TRACE | NOTIFY_SENTINEL;
    for insn in program.iter_mut() {
        if insn.code == BPF_RET_K && insn.k == sentinel {
            insn.k = libc::SECCOMP_RET_USER_NOTIF;
        }
    }
    Ok(program)
}

const BPF_LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
const BPF_JMP_JSET_K: u16 = 0x45; // BPF_JMP | BPF_JSET | BPF_K
const BPF_RET_K: u16 = 0x06;
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// After seccompiler's 3-instruction arch check, add: load nr; if bit 30 is
/// set, kill. seccompiler's body reloads nr itself, and all its jumps are
/// relative and internal, so inserting at this boundary keeps them right.
fn insert_x32_kill(program: &mut BpfProgram) {
    let insn = |code, jt, jf, k| seccompiler::sock_filter { code, jt, jf, k };
    let check = [
        insn(BPF_LD_W_ABS, 0, 0, 0),
        insn(BPF_JMP_JSET_K, 0, 1, X32_SYSCALL_BIT),
        insn(BPF_RET_K, 0, 0, libc::SECCOMP_RET_KILL_PROCESS),
    ];
    let at = 3.min(program.len());
    program.splice(at..at, check);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deny_filter_compiles_and_starts_with_arch_and_x32_checks() {
        let program = deny_filter().expect("filter compiles");
        assert!(program.len() > DENIED.len());
        if cfg!(target_arch = "x86_64") {
            assert_eq!(program[4].code, BPF_JMP_JSET_K);
            assert_eq!(program[4].k, X32_SYSCALL_BIT);
            assert_eq!(program[5].k, libc::SECCOMP_RET_KILL_PROCESS);
        }
    }

    #[test]
    fn notify_filter_has_no_trace_left() {
        let nrs: Vec<i64> = NOTIFIED.iter().map(|&(_, nr)| nr).collect();
        let program = notify_filter(&nrs).unwrap();
        let notif = program
            .iter()
            .filter(|i| i.code == BPF_RET_K && i.k == libc::SECCOMP_RET_USER_NOTIF)
            .count();
        assert!(notif >= NOTIFIED.len(), "{notif}");
        assert!(!program.iter().any(|i| i.code == BPF_RET_K
            && i.k & libc::SECCOMP_RET_ACTION_FULL == libc::SECCOMP_RET_TRACE));
    }

    #[test]
    fn degraded_filter_refuses_with_eacces_and_notify_can_take_sockets() {
        for notified in [false, true] {
            let program = degraded_filter(notified).expect("filter compiles");
            assert!(
                program
                    .iter()
                    .any(|i| i.k == libc::SECCOMP_RET_ERRNO | libc::EACCES as u32)
            );
        }
        // Notified sockets are not also refused here (the stricter ERRNO
        // would win over USER_NOTIF and the supervisor would see nothing).
        let refuses = degraded_filter(false).unwrap().len();
        let leaves = degraded_filter(true).unwrap().len();
        assert!(refuses > leaves, "{refuses} vs {leaves}");
        let nrs: Vec<i64> = NOTIFIED.iter().map(|&(_, nr)| nr).collect();
        assert!(notify_filter_with(&nrs, true).unwrap().len() > notify_filter(&nrs).unwrap().len());
    }

    #[test]
    fn socket_family_filter_refuses_other_families() {
        let program = socket_family_filter().expect("filter compiles");
        let afnosupport = libc::SECCOMP_RET_ERRNO | libc::EAFNOSUPPORT as u32;
        assert!(
            program
                .iter()
                .any(|i| i.code == BPF_RET_K && i.k == afnosupport)
        );
        // Each allowed family is compared against.
        for &(_, family) in SOCKET_FAMILIES {
            assert!(program.iter().any(|i| i.k == family as u32), "{family}");
        }
    }

    #[test]
    fn clone3_filter_compiles() {
        let program = clone3_filter().expect("filter compiles");
        assert!(
            program
                .iter()
                .any(|i| i.k == libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32)
        );
    }
}
