//! The sandbox's init: pid 1 of the build's pid namespace.
//!
//! The parent clones a child into new user, mount, pid, network, ipc and uts
//! namespaces and that child execs sdist-box again as `sdist-box-init`, with
//! an empty environment, so this code starts in a fresh single-threaded
//! process that is root of its own user namespace. It then builds the
//! sandbox in the numbered order below, reports what was enforced, starts the
//! command and reaps every process until the command ends. When init exits,
//! the kernel kills everything left in the pid namespace: nothing the build
//! started outlives it.
//!
//! Invariants: init never runs package code with privileges; every step that
//! fails is reported as `InitMessage::Failed` naming the step, and the
//! command is never started after a failure.

use std::ffi::CString;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, unshare};
use nix::sys::resource::{Resource, setrlimit};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Gid, Pid, Uid, chdir, pivot_root, setresgid, setresuid};
use serde::{Deserialize, Serialize};

use super::plan::{Access, Layer, Mode, MountEntry, SandboxPlan};
use super::status::{Enforcement, InitMessage, LayerState, LayerStatus};
use super::{landlock, seccomp, sys};

/// The `argv[0]` under which sdist-box runs as the sandbox's init.
pub const INIT_ARGV0: &str = "sdist-box-init";

/// What the parent sends to init (one JSON line on the control pipe).
#[derive(Debug, Serialize, Deserialize)]
pub struct InitRequest {
    pub plan: SandboxPlan,
    /// For each entry of `plan.mounts`, the descriptor (open in this process)
    /// of its bind source, or -1.
    pub source_fds: Vec<RawFd>,
    /// Host uid/gid the sandbox's root maps to (for the report).
    pub host_uid: u32,
    /// The write end of the Python event stream, if any.
    pub events_fd: Option<RawFd>,
    /// The sandbox's cgroup, or why there is none.
    #[serde(default)]
    pub resources: super::resources::Setup,
}

struct Init {
    status: fs::File,
}

impl Init {
    fn send(&mut self, msg: &InitMessage) {
        let mut line = serde_json::to_vec(msg).unwrap_or_default();
        line.push(b'\n');
        let _ = self.status.write_all(&line);
    }

    fn fail(&mut self, step: &str, error: impl std::fmt::Display, layer: Option<Layer>) -> ! {
        self.send(&InitMessage::Failed {
            step: step.to_string(),
            error: error.to_string(),
            layer,
        });
        std::process::exit(125)
    }
}

/// Where the new root is assembled before `pivot_root`.
const STAGING: &str = "/tmp";

/// Entry point when `argv[0]` is [`INIT_ARGV0`]. Never returns.
///
/// The steps are numbered as the sandbox is built; each is a function
/// named for its purpose, and any that fails ends init with
/// `InitMessage::Failed` (see `Init::fail`).
pub fn main(args: &[String]) -> ! {
    let (mut init, mut control, req) = receive_plan(args);
    let plan = &req.plan;
    let mut layers: Vec<LayerStatus> = Vec::new();

    // 1. Die with the parent: if sdist-box is killed, the sandbox goes too.
    if let Err(e) = sys::set_parent_death_signal(libc::SIGKILL) {
        init.fail("set the parent-death signal", e, None);
    }
    let degraded = plan.mode == Mode::Degraded;
    // The degraded mode has no network namespace at all; its own filter
    // refuses every socket family but unix.
    let host_netns = !degraded && plan.network.shares_host_netns();
    if degraded {
        // 2–9 without namespaces: see `degraded_layers`.
        if let Err((step, e)) = enter_degraded() {
            init.fail(step, e, None);
        }
        layers.extend(degraded_layers(plan, req.host_uid));
    } else {
        // 2–9: the namespaces' hostname, mount view, network and uid.
        layers.extend(build_namespaces(&mut init, &req, host_netns));
    }
    // 10. No capabilities, in any set, for us or anything we start.
    layers.push(drop_privileges(&mut init, degraded));
    // 11. Resource limits, inherited by everything below.
    match apply_rlimits(&super::resources::rlimits_under(plan, &req.resources)) {
        Ok(detail) => layers.push(enforced(Layer::Rlimits, detail)),
        Err(e) => init.fail("set resource limits", e, Some(Layer::Rlimits)),
    }
    // 12. Landlock.
    let landlock_abi = match landlock::apply(&plan.landlock) {
        Ok(outcome) => {
            layers.extend(outcome.layers);
            outcome.abi
        }
        Err(e) => init.fail("apply landlock rules", e, Some(Layer::LandlockFs)),
    };
    // 13. seccomp: the deny filter, then clone3 → ENOSYS.
    layers.push(install_deny_filters(&mut init, plan, degraded, host_netns));
    // 13b. resources: the cgroup the parent made, or memfd_create refused.
    layers.push(resources_layer(plan, &req.resources));
    // 14. The kernel stream: the notify filter, installed last so that the
    //     deny filter's verdicts take precedence; its listener goes to the
    //     parent before the command starts.
    let listener = if plan.notify.enabled {
        let (fd, layer) = install_notify_filter(&mut init, plan, degraded, host_netns);
        layers.push(layer);
        Some(fd)
    } else {
        None
    };
    layers.push(enforced(
        Layer::Environment,
        format!("{} variables passed, all others dropped", plan.env.len()),
    ));
    let enforcement = Enforcement {
        layers,
        landlock_abi,
        inner_uid: plan.inner_uid,
        host_uid: req.host_uid,
    };
    report_ready(
        &mut init,
        &mut control,
        plan,
        enforcement,
        listener.as_ref(),
    );
    drop(control);
    // The parent holds its own copy now; ours must not reach the command.
    drop(listener);

    // 15. Start the command and reap everything until it ends.
    let child = start_command(&mut init, &req, degraded);
    finish(&mut init, plan, child, degraded)
}

fn enforced(layer: Layer, detail: String) -> LayerStatus {
    LayerStatus {
        layer,
        state: LayerState::Enforced,
        detail,
    }
}

/// Take the status and control pipes named on the command line, read the
/// plan, and close every descriptor but ours (close-on-exec set again, so
/// none of them reaches the command: it could forge our messages).
fn receive_plan(args: &[String]) -> (Init, BufReader<fs::File>, InitRequest) {
    let fd_arg = |name: &str| -> Option<RawFd> {
        let pos = args.iter().position(|a| a == name)?;
        args.get(pos + 1)?.parse().ok()
    };
    let (Some(control_fd), Some(status_fd)) = (fd_arg("--control-fd"), fd_arg("--status-fd"))
    else {
        eprintln!("sdist-box-init is started by sdist-box itself, not by hand");
        std::process::exit(2);
    };
    // These descriptors were placed by our own parent before exec (see
    // sys::clone_into_namespaces); nothing else in this process owns them.
    let status = sys::file_from_fd(status_fd);
    let mut init = Init { status };
    let mut control = BufReader::new(sys::file_from_fd(control_fd));
    let mut line = String::new();
    if let Err(e) = control.read_line(&mut line) {
        init.fail("read the plan", e, None);
    }
    let req: InitRequest = match serde_json::from_str(&line) {
        Ok(r) => r,
        Err(e) => init.fail("parse the plan", e, None),
    };
    let mut keep: Vec<RawFd> = req
        .source_fds
        .iter()
        .copied()
        .filter(|&fd| fd >= 0)
        .collect();
    keep.push(status_fd);
    keep.push(control_fd);
    keep.extend(req.events_fd);
    sys::close_fds_except(&keep);
    // Our parent cleared close-on-exec so these reached us; set it again so
    // that none of them reaches the command (it could forge our messages).
    for &fd in &keep {
        if let Err(e) = sys::set_cloexec(fd) {
            init.fail("protect the sandbox's own descriptors", e, None);
        }
    }
    (init, control, req)
}

/// Steps 2–9 in the new namespaces: what each enforces.
fn build_namespaces(init: &mut Init, req: &InitRequest, host_netns: bool) -> Vec<LayerStatus> {
    let plan = &req.plan;
    let mut layers = Vec::new();
    // 2. Hostname of the new uts namespace.
    if let Err(e) = nix::unistd::sethostname(&plan.hostname) {
        init.fail("set the hostname", e, Some(Layer::Namespaces));
    }
    layers.push(enforced(
        Layer::Namespaces,
        if host_netns {
            "user, mount, pid, ipc and uts namespaces (the host's network namespace, for the profile's network mode); the command's init is pid 1".into()
        } else {
            "user, mount, pid, network, ipc and uts namespaces; the command's init is pid 1".into()
        },
    ));
    // 3–7. The mount view.
    build_mount_view(init, req);
    layers.push(enforced(
        Layer::Mounts,
        format!(
            "{} entries on a read-only root; host /home, /root, /sys, /var hidden",
            plan.mounts.len()
        ),
    ));
    // 8. The network.
    layers.push(set_up_network(init, plan, host_netns));
    // 9. An unprivileged uid inside: a nested user namespace maps the
    //    command's uid to our root (which is the unprivileged host uid).
    if let Err(e) = enter_inner_user(plan.inner_uid, plan.inner_gid) {
        init.fail("switch to the unprivileged uid", e, Some(Layer::Uid));
    }
    layers.push(enforced(
        Layer::Uid,
        format!(
            "uid {} inside, host uid {} outside",
            plan.inner_uid, req.host_uid
        ),
    ));
    layers
}

/// Steps 3–7: a private mount tree, a new root built entry by entry, and
/// that root read-only.
fn build_mount_view(init: &mut Init, req: &InitRequest) {
    let plan = &req.plan;
    // 3. Mounts: nothing we do may propagate back to the host.
    if let Err(e) = mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    ) {
        init.fail("make the mount tree private", e, Some(Layer::Mounts));
    }
    // 4. The new root: an empty tmpfs. Bind sources were opened by the parent
    //    before we started, so covering the host's /tmp hides nothing we need.
    let root = Path::new(STAGING);
    if let Err(e) = mount(
        Some("tmpfs"),
        root,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=0755,size=16m"),
    ) {
        init.fail("mount the new root", e, Some(Layer::Mounts));
    }
    // 5. The view, entry by entry.
    for (i, entry) in plan.mounts.iter().enumerate() {
        let fd = req.source_fds.get(i).copied().unwrap_or(-1);
        if let Err(e) = apply_mount(root, entry, fd) {
            init.fail(
                &format!("mount {}", entry.target().display()),
                e,
                Some(Layer::Mounts),
            );
        }
    }
    // 6. Switch to it and drop the host's tree for good.
    if let Err(e) = switch_root(root) {
        init.fail("switch to the new root", e, Some(Layer::Mounts));
    }
    // 7. The root itself read-only: the build may write only where a
    //    read-write mount says so.
    if let Err(e) = sys::mount_setattr(Path::new("/"), false, sys::MOUNT_ATTR_RDONLY) {
        init.fail("make the root read-only", e, Some(Layer::Mounts));
    }
}

/// Step 8: loopback up, or even loopback traffic fails. In the host's
/// network namespace (loopback, allowlist modes) the walls are the socket
/// family filter, the supervisor's connect verdicts and Landlock's TCP
/// rules (steps 12–14).
fn set_up_network(init: &mut Init, plan: &SandboxPlan, host_netns: bool) -> LayerStatus {
    if host_netns {
        return enforced(
            Layer::Network,
            format!(
                "host network namespace, mode `{}`: sockets only AF_UNIX/AF_INET/AF_INET6; the supervisor connects only to {}; abstract unix sockets of the host refused",
                plan.network.mode.name(),
                match plan.network.mode {
                    super::plan::NetworkMode::Allowlist => format!("{:?}", plan.network.allow),
                    _ => "loopback addresses".to_string(),
                }
            ),
        );
    }
    if let Err(e) = sys::loopback_up() {
        init.fail("bring up the loopback interface", e, Some(Layer::Network));
    }
    enforced(
        Layer::Network,
        "empty network namespace: only `lo`, no route out".into(),
    )
}

/// Step 10. Without namespaces and without privilege the bounding set
/// cannot be cleared; no_new_privs (set here too) makes it ineffective.
fn drop_privileges(init: &mut Init, degraded: bool) -> LayerStatus {
    if let Err(e) = drop_capabilities(degraded) {
        init.fail("drop capabilities", e, Some(Layer::Capabilities));
    }
    let layer = enforced(
        Layer::Capabilities,
        "bounding, ambient, inheritable, permitted and effective sets empty".into(),
    );
    if let Err(e) = sys::set_no_new_privs() {
        init.fail("set no_new_privs", e, Some(Layer::Capabilities));
    }
    layer
}

/// Step 13: the deny filter, clone3 → ENOSYS, and the degraded mode's or
/// the shared network namespace's socket filter.
fn install_deny_filters(
    init: &mut Init,
    plan: &SandboxPlan,
    degraded: bool,
    host_netns: bool,
) -> LayerStatus {
    let filters = seccomp::deny_filter().and_then(|d| {
        let extra = if degraded {
            Some(seccomp::degraded_filter(plan.notify.enabled)?)
        } else if host_netns {
            Some(seccomp::socket_family_filter()?)
        } else {
            None
        };
        Ok((d, seccomp::clone3_filter()?, extra))
    });
    let (deny, clone3, extra) = match filters {
        Ok(f) => f,
        Err(e) => init.fail("compile the seccomp filter", e, Some(Layer::SeccompDeny)),
    };
    for program in [Some(&deny), Some(&clone3), extra.as_ref()]
        .into_iter()
        .flatten()
    {
        if let Err(e) = sys::seccomp_install_compiled(program) {
            init.fail("install the seccomp filter", e, Some(Layer::SeccompDeny));
        }
    }
    enforced(
        Layer::SeccompDeny,
        format!(
            "{} system calls refused, namespace-creating clone refused, x32 killed{}",
            seccomp::DENIED.len(),
            if degraded {
                "; degraded mode: sockets other than unix, TCP Fast Open, setsid and setpgid refused"
            } else {
                ""
            }
        ),
    )
}

/// Step 13b: the resources layer. The cgroup the parent made (see
/// cgroup.rs); without one, memfd_create is refused, since nothing else
/// bounds memfd pages.
fn resources_layer(plan: &SandboxPlan, setup: &super::resources::Setup) -> LayerStatus {
    let memfd_refused = setup.cgroup.is_none()
        && seccomp::memfd_filter()
            .map_err(|e| e.to_string())
            .and_then(|p| sys::seccomp_install_compiled(&p).map_err(|e| e.to_string()))
            .is_ok();
    super::resources::layer(
        plan,
        setup,
        match (plan.landlock.restrict_exec, plan.notify.enabled) {
            (true, true) => {
                "executables with no path (memfd, deleted or O_TMPFILE files) refused by the supervisor"
            }
            (true, false) => "executables with no path NOT refused (no supervisor)",
            (false, true) => "executables with no path reported",
            (false, false) => "executables with no path not seen (no supervisor)",
        },
        memfd_refused,
    )
}

/// Step 14: the notify filter for the calls the supervisor sees; its
/// listener, for the parent.
fn install_notify_filter(
    init: &mut Init,
    plan: &SandboxPlan,
    degraded: bool,
    host_netns: bool,
) -> (OwnedFd, LayerStatus) {
    let mut nrs: Vec<i64> = seccomp::NOTIFIED.iter().map(|&(_, nr)| nr).collect();
    if host_netns {
        nrs.extend(seccomp::NOTIFIED_SHARED_NETNS.iter().map(|&(_, nr)| nr));
    }
    if plan.notify.trace_files {
        nrs.extend(seccomp::NOTIFIED_FILES.iter().map(|&(_, nr)| nr));
    }
    let fd = match seccomp::notify_filter_with(&nrs, degraded)
        .map_err(|e| e.to_string())
        .and_then(|p| sys::seccomp_install_notify(&p).map_err(|e| e.to_string()))
    {
        Ok(fd) => fd,
        Err(e) => init.fail(
            "install the seccomp notify filter",
            e,
            Some(Layer::SeccompNotify),
        ),
    };
    let layer = enforced(
        Layer::SeccompNotify,
        format!(
            "supervisor sees {} system calls{}{}",
            nrs.len(),
            if degraded {
                " and network sockets, and refuses unix sockets by path"
            } else {
                ""
            },
            if plan.notify.trace_files {
                " (with the open family)"
            } else {
                ""
            }
        ),
    );
    (fd, layer)
}

/// Refuse to go on without a required layer; else tell the parent what is
/// enforced (and where the listener is) and wait for its `go`.
fn report_ready(
    init: &mut Init,
    control: &mut BufReader<fs::File>,
    plan: &SandboxPlan,
    enforcement: Enforcement,
    listener: Option<&OwnedFd>,
) {
    if let Some(missing) = enforcement.missing(&plan.required).next() {
        let missing = missing.clone();
        init.fail(
            &format!("enforce the required layer `{}`", missing.layer.name()),
            missing.detail,
            Some(missing.layer),
        );
    }
    init.send(&InitMessage::Ready {
        enforcement,
        listener_fd: listener.map(|fd| fd.as_raw_fd()),
    });
    // The parent answers once it is ready for the command to start.
    let mut ack = String::new();
    if control.read_line(&mut ack).is_err() || ack.trim() != "go" {
        std::process::exit(125);
    }
}

/// Step 15: fork, and in the child exec the command in its own session,
/// the event stream at the number the plan names, in its directory.
fn start_command(init: &mut Init, req: &InitRequest, degraded: bool) -> Pid {
    let plan = &req.plan;
    let argv: Vec<CString> = plan
        .argv
        .iter()
        .map(|a| CString::new(a.as_bytes()).unwrap_or_default())
        .collect();
    let env: Vec<CString> = plan
        .env
        .iter()
        .map(|(k, v)| CString::new(format!("{k}={v}")).unwrap_or_default())
        .collect();
    let cwd = plan.cwd.clone();
    // init never starts threads, so forking here is sound.
    match sys::fork_single_threaded() {
        Ok(ForkResult::Child) => {
            // Its own session, away from any terminal; without namespaces
            // it stays in init's (setsid is refused there, and init has
            // no terminal already).
            if !degraded {
                let _ = nix::unistd::setsid();
            }
            if let Some(fd) = req.events_fd {
                // The event stream's write end, at the number the plan names,
                // open across exec.
                let want = plan.events_fd.unwrap_or(3);
                if sys::dup_to(fd, want).is_err() {
                    std::process::exit(127);
                }
            }
            if let Err(e) = chdir(&cwd) {
                eprintln!("sdist-box: cannot enter {}: {e}", crate::text::path(&cwd));
                std::process::exit(127);
            }
            let Some(prog) = argv.first() else {
                std::process::exit(127)
            };
            let err = nix::unistd::execve(prog, &argv, &env).unwrap_err();
            eprintln!(
                "sdist-box: cannot execute {}: {err}",
                crate::text::shown(&String::from_utf8_lossy(prog.as_bytes()))
            );
            std::process::exit(127);
        }
        Ok(ForkResult::Parent { child }) => child,
        Err(e) => init.fail("start the command", e, None),
    }
}

/// Reap everything until the command ends, report how, and end the
/// sandbox with it.
fn finish(init: &mut Init, plan: &SandboxPlan, child: Pid, degraded: bool) -> ! {
    let (code, signal, peak) = reap_until(child, degraded);
    let max_rss_kib = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
        .map(|u| u.max_rss() as u64)
        .unwrap_or(0);
    init.send(&InitMessage::Exited {
        code,
        signal,
        peak_processes: peak,
        max_rss_kib,
        exec_error: (code == Some(127))
            .then(|| "the command could not be started (exit 127)".to_string()),
        filesystems: super::resources::fs_usage(plan),
    });
    if degraded {
        // No pid namespace to end with us: end the process group (ourselves
        // included; the parent has our message already).
        let _ = nix::sys::signal::killpg(nix::unistd::getpgrp(), nix::sys::signal::Signal::SIGKILL);
    }
    std::process::exit(code.unwrap_or(128 + signal.unwrap_or(0)))
}

/// The degraded mode's own steps: a new session and process group (no
/// controlling terminal; the group is what is killed at the end and on
/// timeout), and subreaper, so that orphans stay ours to reap.
fn enter_degraded() -> Result<(), (&'static str, nix::Error)> {
    nix::unistd::setsid().map_err(|e| ("start a new session", e))?;
    sys::set_child_subreaper().map_err(|e| {
        (
            "become the subreaper",
            nix::Error::from_raw(e.raw_os_error().unwrap_or(0)),
        )
    })?;
    Ok(())
}

/// What the degraded mode cannot enforce, layer by layer, in words.
fn degraded_layers(plan: &SandboxPlan, host_uid: u32) -> Vec<LayerStatus> {
    let not = |layer, detail: &str| LayerStatus {
        layer,
        state: LayerState::NotEnforced,
        detail: detail.to_string(),
    };
    let partial = |layer, detail: String| LayerStatus {
        layer,
        state: LayerState::Partial,
        detail,
    };
    vec![
        not(
            Layer::Namespaces,
            "degraded mode (no user namespaces here): no pid, mount, network, ipc or uts namespace; processes left at the end are killed through their process group (best effort: a process that escapes the group survives sdist-box)",
        ),
        not(
            Layer::Mounts,
            "degraded mode: no private view; the host's files are visible by name and Landlock alone decides what may be read or written (chmod, chown, utime and xattrs are not covered by Landlock); the host's /proc is readable (other processes' command lines, not their memory or environment)",
        ),
        if host_uid == 0 {
            not(Layer::Uid, "degraded mode: runs as root")
        } else if host_uid == plan.root_maps_to {
            LayerStatus {
                layer: Layer::Uid,
                state: LayerState::Enforced,
                detail: format!(
                    "degraded mode: sdist-box ran as root, the build as unprivileged host uid {host_uid}"
                ),
            }
        } else {
            partial(
                Layer::Uid,
                format!(
                    "degraded mode: runs as host uid {host_uid} itself (no user namespace to map it); never root"
                ),
            )
        },
        partial(
            Layer::Network,
            "degraded mode: the host's network; sockets other than unix refused (seccomp), TCP connect/bind refused (Landlock), unix sockets by path refused (supervisor), abstract ones scoped (Landlock ABI 6)".to_string(),
        ),
    ]
}

fn apply_mount(root: &Path, entry: &MountEntry, fd: RawFd) -> std::io::Result<()> {
    let target = root.join(entry.target().strip_prefix("/").unwrap_or(entry.target()));
    let fd_path = || PathBuf::from(format!("/proc/self/fd/{fd}"));
    match entry {
        MountEntry::Bind { access, .. } => {
            let is_dir = fs::metadata(fd_path())?.is_dir();
            make_mountpoint(&target, is_dir)?;
            mount(
                Some(&fd_path()),
                &target,
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )?;
            let mut attrs = sys::MOUNT_ATTR_NOSUID | sys::MOUNT_ATTR_NODEV;
            if *access == Access::ReadOnly {
                attrs |= sys::MOUNT_ATTR_RDONLY;
            }
            sys::mount_setattr(&target, true, attrs)?;
        }
        MountEntry::Device { .. } => {
            make_mountpoint(&target, false)?;
            mount(
                Some(&fd_path()),
                &target,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )?;
            sys::mount_setattr(&target, false, sys::MOUNT_ATTR_NOSUID)?;
        }
        MountEntry::Tmpfs {
            size_bytes, mode, ..
        } => {
            make_mountpoint(&target, true)?;
            mount(
                Some("tmpfs"),
                &target,
                Some("tmpfs"),
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                Some(format!("mode={mode:o},size={size_bytes}").as_str()),
            )?;
        }
        MountEntry::Symlink { link_to, .. } => {
            if let Some(parent) = target.parent() {
                mkdir_all(parent)?;
            }
            std::os::unix::fs::symlink(link_to, &target)?;
        }
        MountEntry::Proc { .. } => {
            make_mountpoint(&target, true)?;
            mount(
                Some("proc"),
                &target,
                Some("proc"),
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
                None::<&str>,
            )?;
        }
    }
    Ok(())
}

fn mkdir_all(path: &Path) -> std::io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(path)
}

fn make_mountpoint(target: &Path, dir: bool) -> std::io::Result<()> {
    if dir {
        mkdir_all(target)
    } else {
        if let Some(parent) = target.parent() {
            mkdir_all(parent)?;
        }
        if !target.exists() {
            let f = fs::File::create(target)?;
            f.set_permissions(fs::Permissions::from_mode(0o644))?;
        }
        Ok(())
    }
}

/// `pivot_root` into `root` and detach the old tree (the `pivot_root(".", ".")`
/// idiom: no directory for the old root is needed).
fn switch_root(root: &Path) -> nix::Result<()> {
    chdir(root)?;
    pivot_root(".", ".")?;
    umount2(".", MntFlags::MNT_DETACH)?;
    chdir("/")
}

fn enter_inner_user(uid: u32, gid: u32) -> std::io::Result<()> {
    unshare(CloneFlags::CLONE_NEWUSER)?;
    fs::write("/proc/self/setgroups", "deny")?;
    fs::write("/proc/self/uid_map", format!("{uid} 0 1\n"))?;
    fs::write("/proc/self/gid_map", format!("{gid} 0 1\n"))?;
    setresgid(Gid::from_raw(gid), Gid::from_raw(gid), Gid::from_raw(gid))?;
    setresuid(Uid::from_raw(uid), Uid::from_raw(uid), Uid::from_raw(uid))?;
    Ok(())
}

fn drop_capabilities(degraded: bool) -> Result<(), caps::errors::CapsError> {
    use caps::CapSet;
    let may_bound =
        !degraded || caps::has_cap(None, CapSet::Effective, caps::Capability::CAP_SETPCAP)?;
    for cap in caps::all() {
        // Bounding set first: it needs CAP_SETPCAP, which we still hold.
        if may_bound {
            caps::drop(None, CapSet::Bounding, cap)?;
        }
    }
    caps::clear(None, CapSet::Ambient)?;
    caps::clear(None, CapSet::Inheritable)?;
    caps::clear(None, CapSet::Effective)?;
    caps::clear(None, CapSet::Permitted)?;
    Ok(())
}

fn apply_rlimits(plan: &SandboxPlan) -> nix::Result<String> {
    let l = &plan.limits;
    // (resource, soft, hard, name). CPU: SIGXCPU at the limit, so the end is
    // recognisable, and SIGKILL 5 s later if the process ignores it.
    let limits = [
        (Resource::RLIMIT_NPROC, l.processes, 0, "processes"),
        (Resource::RLIMIT_AS, l.memory_bytes, 0, "memory"),
        (Resource::RLIMIT_FSIZE, l.file_size_bytes, 0, "file-size"),
        (Resource::RLIMIT_CPU, l.cpu_seconds, 5, "cpu-seconds"),
        (Resource::RLIMIT_NOFILE, l.open_files, 0, "open-files"),
        (Resource::RLIMIT_CORE, Some(0), 0, "core"),
    ];
    let mut parts = Vec::new();
    for (resource, value, grace, name) in limits {
        if let Some(v) = value {
            setrlimit(resource, v, v.saturating_add(grace))?;
            parts.push(format!("{name}={v}"));
        }
    }
    Ok(parts.join(", "))
}

/// Reap every child until `main` ends; meanwhile sample how many processes
/// the sandbox holds (the peak tells a fork bomb from a crash). Waits on a
/// pidfd of `main`, so its end is seen at once, not at the next sample.
fn reap_until(main: Pid, degraded: bool) -> (Option<i32>, Option<i32>, u64) {
    let mut peak = 1u64;
    let pidfd = sys::pidfd_open(main.as_raw()).ok();
    loop {
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG | WaitPidFlag::__WALL)) {
                Ok(WaitStatus::Exited(pid, code)) if pid == main => {
                    return (Some(code), None, peak);
                }
                Ok(WaitStatus::Signaled(pid, sig, _)) if pid == main => {
                    return (None, Some(sig as i32), peak);
                }
                Ok(WaitStatus::StillAlive) => break,
                Ok(_) => continue,
                Err(nix::errno::Errno::ECHILD) => return (None, None, peak),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => break,
            }
        }
        peak = peak.max(if degraded {
            count_group()
        } else {
            count_processes()
        });
        match &pidfd {
            Some(fd) => sys::poll_readable(fd.as_fd(), Duration::from_millis(50)),
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// Processes of our process group (the degraded mode sees the host's /proc).
fn count_group() -> u64 {
    let group = nix::unistd::getpgrp().as_raw();
    let Ok(dir) = fs::read_dir("/proc") else {
        return 0;
    };
    dir.filter_map(Result::ok)
        .filter(|e| e.file_name().as_bytes().iter().all(u8::is_ascii_digit))
        .filter(|e| {
            // Field 5 of stat, after the parenthesised command name.
            fs::read_to_string(e.path().join("stat"))
                .ok()
                .and_then(|s| {
                    let rest = &s[s.rfind(')')? + 2..];
                    rest.split(' ').nth(2)?.parse::<i32>().ok()
                })
                == Some(group)
        })
        .count() as u64
}

fn count_processes() -> u64 {
    let Ok(dir) = fs::read_dir("/proc") else {
        return 0;
    };
    dir.filter_map(Result::ok)
        .filter(|e| e.file_name().as_bytes().iter().all(u8::is_ascii_digit))
        .count() as u64
}
