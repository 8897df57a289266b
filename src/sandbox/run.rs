//! The parent's side of a sandboxed run: start the sandbox, feed it the plan,
//! collect its output, enforce the wall clock, and return what happened.
//!
//! Set-up order (parent S, init I):
//!   S: open every bind source (O_PATH) and sdist-box's own executable
//!   S: clone(NEWUSER|NEWNS|NEWPID|NEWNET|NEWIPC|NEWUTS) → child C
//!   S: setgroups, uid_map, gid_map of C → one byte on the control pipe
//!   C: switch to the mapped root, execveat(sdist-box) as I, empty environment
//!   S: the plan (one JSON line) on the control pipe
//!   I: builds the sandbox (see init.rs) → `Ready` with what was enforced
//!   S: `go` → I starts the command; S reads output until I exits
//!
//! The wall clock is enforced here: past it, I is killed through its pidfd,
//! and with it every process of the sandbox's pid namespace.

use std::ffi::CString;
use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;

use super::init::{INIT_ARGV0, InitRequest};
use super::plan::{DEFAULT_LOG_BYTES, Layer, MountEntry, SandboxPlan};
use super::status::{Enforcement, InitMessage};
use super::supervise::{Serving, SupervisorHandle, SupervisorLog};
use super::sys;

/// Why a run could not happen. The command's own failure is not an error:
/// it is a [`RunOutcome`].
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("could not create the sandbox's namespaces: {source}{hint}")]
    Namespaces { source: io::Error, hint: String },
    #[error("the required sandbox layer `{}` is not available: {detail}", .layer.name())]
    LayerUnavailable { layer: Layer, detail: String },
    #[error("sandbox set-up failed: could not {step}: {error}")]
    Setup { step: String, error: String },
    #[error("failed to {what}: {source}")]
    Io { what: String, source: io::Error },
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> SandboxError {
    let what = what.into();
    move |source| SandboxError::Io { what, source }
}

/// How the command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum RunExit {
    Exited { code: i32 },
    Signaled { signal: i32 },
    TimedOut { seconds: u64 },
}

impl RunExit {
    pub fn success(&self) -> bool {
        matches!(self, RunExit::Exited { code: 0 })
    }
}

/// Options that do not change what the sandbox enforces. There is no
/// default: whoever runs a sandbox names the supervisor that answers its
/// notifications (`events::kernel::run_options()` gives the kernel stream's).
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Write the command's whole output (stdout and stderr) here.
    pub log_path: Option<PathBuf>,
    /// Also copy the output, control characters escaped, to our stderr.
    pub echo: bool,
    /// Keep at most this many bytes of the log, its head and its tail
    /// (0: [`DEFAULT_LOG_BYTES`]).
    pub max_log_bytes: u64,
    /// Append to the log instead of replacing it.
    pub append_log: bool,
    /// sdist-box's executable to run as init (default: this process's).
    pub init_exe: Option<PathBuf>,
    /// Answers the sandbox's seccomp notifications.
    pub supervisor: SupervisorHandle,
}

impl RunOptions {
    /// Options with nothing but `supervisor` set: no log, no echo.
    pub fn new(supervisor: SupervisorHandle) -> RunOptions {
        RunOptions {
            log_path: None,
            echo: false,
            max_log_bytes: 0,
            append_log: false,
            init_exe: None,
            supervisor,
        }
    }
}

/// What happened in a run.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub enforcement: Enforcement,
    pub exit: RunExit,
    pub peak_processes: u64,
    pub max_rss_kib: u64,
    /// The last bytes of the command's output.
    pub output_tail: Vec<u8>,
    pub output_bytes: u64,
    pub output_truncated: bool,
    /// From the start of set-up until the command was started.
    pub setup: Duration,
    pub total: Duration,
    /// What the supervisor saw (the kernel stream), when the plan had a
    /// seccomp listener.
    pub supervision: Option<SupervisorLog>,
    /// The raw Python stream (JSON lines), when the plan asked for it.
    pub python_events: Vec<u8>,
    /// What the sandbox's cgroup held it to and saw (absent without one).
    pub resources: Option<super::cgroup::Usage>,
    /// How full the sandbox's sized file systems ended.
    pub filesystems: Vec<super::resources::FsUse>,
}

const TAIL_BYTES: usize = 16 * 1024;
/// Bound on the Python stream kept from one run: an audit line is a few
/// hundred bytes, so this holds the 50 000 events the parser keeps; past it
/// the stream is cut and the rest counted as lost.
const MAX_EVENT_BYTES: u64 = 24 << 20;

struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
}

fn pipe() -> Result<Pipe, SandboxError> {
    let (read, write) =
        nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| io_err("create a pipe")(e.into()))?;
    Ok(Pipe { read, write })
}

fn open_path(path: &Path, flags: OFlag) -> Result<OwnedFd, SandboxError> {
    nix::fcntl::open(
        path,
        flags | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| io_err(format!("open `{}`", path.display()))(e.into()))
}

fn namespace_hint(err: &io::Error) -> String {
    let max = fs::read_to_string("/proc/sys/user/max_user_namespaces").unwrap_or_default();
    if max.trim() == "0" {
        return " (user.max_user_namespaces is 0 on this host; raise it, or see `sdist-box doctor`)".into();
    }
    let apparmor = fs::read_to_string("/proc/sys/kernel/apparmor_restrict_unprivileged_userns")
        .unwrap_or_default();
    if apparmor.trim() == "1" {
        return " (AppArmor restricts unprivileged user namespaces here; see `sdist-box doctor`)"
            .into();
    }
    if err.raw_os_error() == Some(libc::EPERM) {
        return " (inside a container, user namespaces are usually blocked by its seccomp profile; see `sdist-box doctor`)".into();
    }
    String::new()
}

/// Can the sandbox have its namespaces here? `Err` says why not, with the
/// same hint as a failed start.
pub fn user_namespaces() -> Result<(), SandboxError> {
    // A success is remembered for the process (`build-all` starts three
    // sandboxes per sdist); a failure is probed again, so a fixed host is
    // seen at once.
    static AVAILABLE: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    if AVAILABLE.get().is_some() {
        return Ok(());
    }
    sys::probe_user_namespace()
        .map(|()| {
            let _ = AVAILABLE.set(());
        })
        .map_err(|source| {
            let hint = namespace_hint(&source);
            SandboxError::Namespaces { source, hint }
        })
}

/// Choose the mode for a profile: namespaces where possible; the degraded
/// mode where not and the profile allows it; otherwise refuse, saying why
/// and where to look.
pub fn choose_mode(
    allow_degraded: bool,
    profile_name: &str,
) -> Result<super::plan::Mode, SandboxError> {
    match user_namespaces() {
        Ok(()) => Ok(super::plan::Mode::Namespaces),
        Err(_) if allow_degraded => {
            // As root the degraded mode runs the build as an unprivileged
            // uid; root of a user namespace that maps none cannot.
            let euid = nix::unistd::geteuid();
            if euid.is_root() && !uid_is_mapped(super::plan::ROOT_MAPS_TO) {
                return Err(SandboxError::LayerUnavailable {
                    layer: Layer::Uid,
                    detail: format!(
                        "sdist-box runs as root of a user namespace that maps no unprivileged uid ({}), so the degraded mode cannot run the build as one; run sdist-box as an unprivileged user there",
                        super::plan::ROOT_MAPS_TO
                    ),
                });
            }
            Ok(super::plan::Mode::Degraded)
        }
        Err(SandboxError::Namespaces { source, hint }) => Err(SandboxError::Namespaces {
            source,
            hint: format!(
                "{hint}; the profile `{profile_name}` requires them and does not allow the degraded mode (`allow-degraded = true`); run `sdist-box doctor` for the fix"
            ),
        }),
        Err(e) => Err(e),
    }
}

/// Does this process's user namespace map host `uid` (so that root here can
/// switch to it)?
fn uid_is_mapped(uid: u32) -> bool {
    let map = fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
    uid_map_contains(&map, uid)
}

fn uid_map_contains(map: &str, uid: u32) -> bool {
    map.lines().any(|l| {
        let f: Vec<u64> = l
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        f.len() == 3 && (f[0]..f[0] + f[2]).contains(&u64::from(uid))
    })
}

/// Run `plan` in a new sandbox and wait for it to end.
///
/// The steps, in the order of the module header; each says why it comes
/// where it does.
pub fn run(plan: &SandboxPlan, opts: &RunOptions) -> Result<RunOutcome, SandboxError> {
    let started = Instant::now();
    let degraded = plan.mode == super::plan::Mode::Degraded;
    let ids = HostIds::for_plan(plan);
    // 1. Every bind source exists: a clear error now, before anything
    //    starts (the clone child opens them, see sys::ChildExec::sources).
    let sources = bind_sources(plan)?;
    // 2. What the child inherits: sdist-box itself, /dev/null, the pipes.
    let fds = ChildFds::open(plan, opts)?;
    // 3. The clone child's whole job, prepared here: after the clone it
    //    allocates nothing.
    let base = fds.above_all();
    // resources: the whole sandbox's cgroup, made before it starts; its
    // first process moves itself in before anything else.
    let (cgroup, resources_setup) = super::cgroup::for_run(&plan.limits);
    let mut child = child_exec(&fds, &sources, base, degraded, &ids)?;
    child.cgroup_join = cgroup_join_files(cgroup.as_deref())?;
    // 4. Clone into the namespaces (a plain child in the degraded mode).
    let started_child =
        sys::clone_into_namespaces(clone_flags(plan, degraded), &child).map_err(|source| {
            let hint = namespace_hint(&source);
            SandboxError::Namespaces { source, hint }
        })?;
    let pidfd = started_child.pidfd;
    // resources: watched until it ends (the child joins the cgroup itself).
    let watch = watch_cgroup(cgroup.as_ref(), &pidfd)?;
    // 5. Ours are closed now, so EOF on the status and output pipes means
    //    the sandbox is gone.
    let ours = fds.close_child_ends();
    // 6. Map the ids, release the child, hand it the plan.
    let mut control_write = fs::File::from(ours.control_write);
    let request = InitRequest {
        plan: plan.clone(),
        source_fds: source_fd_numbers(plan, &sources, base),
        host_uid: ids.uid,
        events_fd: ours.events_write_raw,
        resources: resources_setup,
    };
    let handed = hand_over_plan(
        &mut control_write,
        started_child.pid,
        degraded,
        &ids,
        &request,
    );
    if let Err(e) = handed {
        kill(&pidfd);
        return Err(io_err("hand the plan to the sandbox")(e));
    }
    // 7. The output, the Python stream and init's status, each on a thread.
    let output_thread = spawn_output_reader(ours.output_read, opts)?;
    let events_thread = ours
        .events_read
        .map(|read| spawn_events_reader(read, &opts.supervisor));
    let (status, status_thread) = spawn_status_reader(ours.status_read);
    // 8. Follow init: `Ready` → the supervisor takes the listener, `go`;
    //    `Exited`; until its status pipe closes or the wall clock runs out.
    let deadline = started + Duration::from_secs(plan.limits.wall_seconds);
    let init = Init {
        pidfd: &pidfd,
        plan,
        opts,
        sources: &sources,
        started,
    };
    let followed = init.follow(&status, &mut control_write, deadline)?;
    // 9. Past the wall clock, everything in the sandbox dies.
    if followed.timed_out {
        kill_all(started_child.pid, &pidfd, degraded);
    }
    // 10. Reap init, then collect what the threads and the supervisor have.
    let init_status = sys::wait_pidfd(pidfd.as_fd()).map_err(io_err("wait for the sandbox"))?;
    // resources: read the peaks and limit events, then remove the cgroup.
    let resources = cgroup_usage(cgroup, watch);
    drop(control_write);
    let _ = status_thread.join();
    let log = output_thread.join().unwrap_or_default();
    let supervision = followed.supervisor.map(|s| s.finish());
    let python_events = events_thread
        .map(|t| t.join().unwrap_or_default())
        .unwrap_or_default();
    let Some(enforcement) = followed.enforcement else {
        return Err(SandboxError::Setup {
            step: "start the sandbox".into(),
            error: format!("the sandbox init ended before it was ready ({init_status:?})"),
        });
    };
    let filesystems = filesystems_of(plan, followed.exited.as_ref());
    let (exit, peak_processes, max_rss_kib) = exit_of(
        followed.timed_out,
        followed.exited,
        init_status,
        plan.limits.wall_seconds,
    );
    Ok(RunOutcome {
        enforcement,
        exit,
        peak_processes,
        max_rss_kib,
        output_tail: log.tail,
        output_bytes: log.bytes,
        output_truncated: log.truncated,
        setup: followed.setup,
        total: started.elapsed(),
        supervision,
        python_events,
        resources,
        filesystems,
    })
}

/// resources: the files the clone child writes `0` to, to join the
/// sandbox's cgroup (none without one).
fn cgroup_join_files(
    cgroup: Option<&super::cgroup::SandboxCgroup>,
) -> Result<Vec<CString>, SandboxError> {
    cgroup
        .map(|cg| cg.join_files())
        .unwrap_or_default()
        .iter()
        .map(|p| CString::new(path_bytes(p)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| {
            io_err("pass a cgroup path with a NUL byte")(io::ErrorKind::InvalidInput.into())
        })
}

/// resources: the cgroup's watcher, following the sandbox through its pidfd.
fn watch_cgroup(
    cgroup: Option<&std::sync::Arc<super::cgroup::SandboxCgroup>>,
    pidfd: &OwnedFd,
) -> Result<Option<super::cgroup::Watch>, SandboxError> {
    let Some(cg) = cgroup else {
        return Ok(None);
    };
    match pidfd.try_clone() {
        Ok(fd) => Ok(Some(cg.watch(fd))),
        Err(e) => {
            kill(pidfd);
            Err(io_err("duplicate the pidfd for the cgroup watcher")(e))
        }
    }
}

/// resources: the cgroup's peaks and limit events once the sandbox is
/// gone; dropping the cgroup removes it.
fn cgroup_usage(
    cgroup: Option<std::sync::Arc<super::cgroup::SandboxCgroup>>,
    watch: Option<super::cgroup::Watch>,
) -> Option<super::cgroup::Usage> {
    let killed_for = watch.and_then(super::cgroup::Watch::finish);
    cgroup.map(|cg| super::cgroup::Usage {
        killed_for,
        ..cg.usage()
    })
}

/// How full the sandbox's sized file systems ended: init's own tmpfs
/// mounts, then the build tree's file system, if any.
fn filesystems_of(
    plan: &SandboxPlan,
    exited: Option<&InitMessage>,
) -> Vec<super::resources::FsUse> {
    let mut filesystems = match exited {
        Some(InitMessage::Exited { filesystems, .. }) => filesystems.clone(),
        _ => Vec::new(),
    };
    filesystems.extend(super::resources::bind_usage(plan));
    filesystems
}

/// The host ids the sandbox maps its root to: ours, or, when we are root,
/// the plan's unprivileged one.
struct HostIds {
    is_root: bool,
    uid: u32,
    gid: u32,
}

impl HostIds {
    fn for_plan(plan: &SandboxPlan) -> HostIds {
        let euid = nix::unistd::geteuid().as_raw();
        let egid = nix::unistd::getegid().as_raw();
        let is_root = euid == 0;
        let (uid, gid) = if is_root {
            (plan.root_maps_to, plan.root_maps_to)
        } else {
            (euid, egid)
        };
        HostIds { is_root, uid, gid }
    }
}

/// The plan's bind and device sources (with their mount's index), each
/// checked to exist.
fn bind_sources(plan: &SandboxPlan) -> Result<Vec<(usize, &Path)>, SandboxError> {
    let mut sources: Vec<(usize, &Path)> = Vec::new();
    for (i, entry) in plan.mounts.iter().enumerate() {
        if let MountEntry::Bind { source, .. } | MountEntry::Device { source, .. } = entry {
            fs::metadata(source)
                .map_err(io_err(format!("use `{}` in the sandbox", source.display())))?;
            sources.push((i, source));
        }
    }
    Ok(sources)
}

/// The descriptors a run opens before the clone.
struct ChildFds {
    exe: OwnedFd,
    devnull: OwnedFd,
    control: Pipe,
    status: Pipe,
    output: Pipe,
    events: Option<Pipe>,
}

/// The parent's ends, once the child's are closed.
struct ParentEnds {
    control_write: OwnedFd,
    status_read: OwnedFd,
    output_read: OwnedFd,
    events_read: Option<OwnedFd>,
    /// The number the child (and so init) has the events pipe's write end at.
    events_write_raw: Option<RawFd>,
}

impl ChildFds {
    fn open(plan: &SandboxPlan, opts: &RunOptions) -> Result<ChildFds, SandboxError> {
        let exe_path = opts
            .init_exe
            .clone()
            .unwrap_or_else(|| PathBuf::from("/proc/self/exe"));
        let exe = open_path(&exe_path, OFlag::O_RDONLY)?;
        let devnull = open_path(Path::new("/dev/null"), OFlag::O_RDONLY)?;
        let control = pipe()?;
        let status = pipe()?;
        let output = pipe()?;
        let events = if plan.events_fd.is_some() {
            Some(pipe()?)
        } else {
            None
        };
        Ok(ChildFds {
            exe,
            devnull,
            control,
            status,
            output,
            events,
        })
    }

    /// Above every descriptor the child needs, so dup3 clobbers none of them.
    fn above_all(&self) -> RawFd {
        let mut ours = vec![
            &self.exe,
            &self.devnull,
            &self.control.read,
            &self.control.write,
            &self.status.read,
            &self.status.write,
            &self.output.read,
            &self.output.write,
        ];
        if let Some(e) = &self.events {
            ours.push(&e.read);
            ours.push(&e.write);
        }
        ours.iter().map(|fd| fd.as_raw_fd()).max().unwrap_or(2) + 1
    }

    fn close_child_ends(self) -> ParentEnds {
        let events_write_raw = self.events.as_ref().map(|e| e.write.as_raw_fd());
        let ChildFds {
            exe,
            devnull,
            control,
            status,
            output,
            events,
        } = self;
        drop((control.read, status.write, output.write, devnull, exe));
        let events_read = events.map(|Pipe { read, write }| {
            drop(write);
            read
        });
        ParentEnds {
            control_write: control.write,
            status_read: status.read,
            output_read: output.read,
            events_read,
            events_write_raw,
        }
    }
}

/// Where init finds each mount's source: `base + n` for the n-th source
/// (the clone child dup3s them there), -1 for mounts without one.
fn source_fd_numbers(plan: &SandboxPlan, sources: &[(usize, &Path)], base: RawFd) -> Vec<RawFd> {
    let mut source_raw: Vec<RawFd> = vec![-1; plan.mounts.len()];
    for (n, (i, _)) in sources.iter().enumerate() {
        source_raw[*i] = base + n as RawFd;
    }
    source_raw
}

/// What the clone child does, as data: its descriptors, the ids it takes,
/// and init's argv (an empty environment).
fn child_exec(
    fds: &ChildFds,
    sources: &[(usize, &Path)],
    base: RawFd,
    degraded: bool,
    ids: &HostIds,
) -> Result<sys::ChildExec, SandboxError> {
    let raw = |fd: &OwnedFd| fd.as_raw_fd();
    let mut keep: Vec<RawFd> = vec![raw(&fds.control.read), raw(&fds.status.write)];
    keep.extend(fds.events.as_ref().map(|e| raw(&e.write)));
    let cstr = |s: String| CString::new(s).expect("no NUL in generated argument");
    Ok(sys::ChildExec {
        go_fd: raw(&fds.control.read),
        status_fd: raw(&fds.status.write),
        stdin_fd: raw(&fds.devnull),
        output_fd: raw(&fds.output.write),
        keep_fds: keep,
        sources: sources
            .iter()
            .map(|(_, p)| {
                CString::new(path_bytes(p)).map_err(|_| {
                    io_err("pass a path with a NUL byte")(io::ErrorKind::InvalidInput.into())
                })
            })
            .collect::<Result<_, _>>()?,
        source_base_fd: base,
        exe_fd: raw(&fds.exe),
        drop_groups: ids.is_root,
        ids: match (degraded, ids.is_root) {
            (false, _) => Some((0, 0)),
            (true, true) => Some((ids.uid, ids.gid)),
            (true, false) => None,
        },
        argv: vec![
            cstr(INIT_ARGV0.to_string()),
            cstr("--control-fd".into()),
            cstr(raw(&fds.control.read).to_string()),
            cstr("--status-fd".into()),
            cstr(raw(&fds.status.write).to_string()),
        ],
        envp: Vec::new(),
        cgroup_join: Vec::new(),
    })
}

/// The namespaces to clone into. The degraded mode: a plain child, no
/// namespaces (init makes itself a session and process-group leader; the
/// group is what gets killed).
fn clone_flags(plan: &SandboxPlan, degraded: bool) -> libc::c_int {
    if degraded {
        return 0;
    }
    let mut flags = libc::CLONE_NEWUSER
        | libc::CLONE_NEWNS
        | libc::CLONE_NEWPID
        | libc::CLONE_NEWIPC
        | libc::CLONE_NEWUTS;
    // Loopback and allowlist modes need the host's loopback: they share
    // the host's network namespace, and the supervisor decides every
    // address.
    if !plan.network.shares_host_netns() {
        flags |= libc::CLONE_NEWNET;
    }
    flags
}

/// Write the child's id maps, release it (one byte), then send the plan
/// (one JSON line).
fn hand_over_plan(
    control: &mut fs::File,
    pid: libc::pid_t,
    degraded: bool,
    ids: &HostIds,
    request: &InitRequest,
) -> io::Result<()> {
    if !degraded {
        write_id_maps(pid, ids.is_root, ids.uid, ids.gid)?;
    }
    control.write_all(b"G")?;
    let mut line = serde_json::to_vec(request).map_err(io::Error::other)?;
    line.push(b'\n');
    control.write_all(&line)
}

fn kill(pidfd: &OwnedFd) {
    let _ = sys::pidfd_send_signal(pidfd.as_fd(), libc::SIGKILL);
    let _ = sys::wait_pidfd(pidfd.as_fd());
}

/// Kill init and with it the sandbox: its pid namespace, or in the
/// degraded mode (no pid namespace) its process group.
fn kill_all(pid: libc::pid_t, pidfd: &OwnedFd, degraded: bool) {
    if degraded {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let _ = sys::pidfd_send_signal(pidfd.as_fd(), libc::SIGKILL);
}

/// Collect the Python stream, shared with the supervisor while it arrives.
fn spawn_events_reader(
    read: OwnedFd,
    supervisor: &SupervisorHandle,
) -> std::thread::JoinHandle<Vec<u8>> {
    // Shared while it arrives, so a decision hook can show where in the
    // package a call it asks about came from.
    let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    supervisor.0.python_stream(received.clone());
    std::thread::spawn(move || {
        let mut file = fs::File::from(read).take(MAX_EVENT_BYTES);
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            match file.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => received.lock().unwrap().extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        std::mem::take(&mut *received.lock().unwrap())
    })
}

/// Init's status lines, one by one, until its pipe closes.
fn spawn_status_reader(read: OwnedFd) -> (mpsc::Receiver<Vec<u8>>, std::thread::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        let reader = BufReader::new(fs::File::from(read));
        for line in reader.split(b'\n') {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (rx, thread)
}

/// The running init, as the parent follows it.
struct Init<'a> {
    pidfd: &'a OwnedFd,
    plan: &'a SandboxPlan,
    opts: &'a RunOptions,
    sources: &'a [(usize, &'a Path)],
    started: Instant,
}

/// What following init found.
struct Followed {
    enforcement: Option<Enforcement>,
    supervisor: Option<Box<dyn Serving>>,
    exited: Option<InitMessage>,
    setup: Duration,
    timed_out: bool,
}

impl Init<'_> {
    /// Read init's status lines until its pipe closes or `deadline`. A
    /// failed set-up kills init and is the error.
    fn follow(
        &self,
        status: &mpsc::Receiver<Vec<u8>>,
        control: &mut fs::File,
        deadline: Instant,
    ) -> Result<Followed, SandboxError> {
        let mut followed = Followed {
            enforcement: None,
            supervisor: None,
            exited: None,
            setup: Duration::ZERO,
            timed_out: false,
        };
        loop {
            let now = Instant::now();
            if now >= deadline {
                followed.timed_out = true;
                break;
            }
            let line = match status.recv_timeout(deadline - now) {
                Ok(line) => line,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    followed.timed_out = true;
                    break;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            };
            if let [b'E', a, b, ..] = line[..] {
                kill(self.pidfd);
                return Err(self.pre_exec_error(a, b, &line[3..]));
            }
            let msg: InitMessage = match serde_json::from_slice(&line) {
                Ok(m) => m,
                Err(e) => {
                    kill(self.pidfd);
                    return Err(SandboxError::Setup {
                        step: "read the sandbox's status".into(),
                        error: e.to_string(),
                    });
                }
            };
            match msg {
                InitMessage::Failed { step, error, layer } => {
                    kill(self.pidfd);
                    return Err(setup_failure(step, error, layer));
                }
                InitMessage::Ready {
                    enforcement,
                    listener_fd,
                } => {
                    followed.enforcement = Some(enforcement);
                    if let Some(fd) = listener_fd {
                        followed.supervisor = Some(self.supervise(fd)?);
                    }
                    followed.setup = self.started.elapsed();
                    if let Err(e) = control.write_all(b"go\n") {
                        kill(self.pidfd);
                        return Err(io_err("start the command in the sandbox")(e));
                    }
                }
                InitMessage::Exited { .. } => {
                    followed.exited = Some(msg);
                }
            }
        }
        Ok(followed)
    }

    /// The clone child's pre-exec failure (`E<code> <index> <errno>`).
    fn pre_exec_error(&self, a: u8, b: u8, rest: &[u8]) -> SandboxError {
        let code = (a.wrapping_sub(b'0')) * 10 + b.wrapping_sub(b'0');
        let fields: Vec<usize> = String::from_utf8_lossy(rest)
            .split_whitespace()
            .filter_map(|f| f.parse().ok())
            .collect();
        let (index, errno) = (
            fields.first().copied().unwrap_or(0),
            fields.get(1).copied().unwrap_or(0),
        );
        let mut error = format!(
            "{}: {}",
            sys::pre_exec_failure(code),
            io::Error::from_raw_os_error(errno as i32)
        );
        if (code == 7 || code == 8)
            && let Some((_, p)) = self.sources.get(index)
        {
            error = format!("{error} (`{}`)", p.display());
        }
        SandboxError::Setup {
            step: "start the sandbox init".into(),
            error,
        }
    }

    /// Take init's seccomp listener and hand it to the supervisor, before
    /// `go`, so no notification of the command waits for one.
    fn supervise(&self, fd: i32) -> Result<Box<dyn Serving>, SandboxError> {
        match sys::pidfd_getfd(self.pidfd.as_fd(), fd) {
            Ok(listener) => Ok(self.opts.supervisor.0.serve(listener, self.plan)),
            Err(e) => {
                kill(self.pidfd);
                Err(SandboxError::LayerUnavailable {
                    layer: Layer::SeccompNotify,
                    detail: format!("could not take the seccomp listener: {e}"),
                })
            }
        }
    }
}

/// Init's own report of a failed step: a required layer it could not
/// enforce, or any other step.
fn setup_failure(step: String, error: String, layer: Option<Layer>) -> SandboxError {
    match layer {
        Some(layer) if step.starts_with("enforce the required layer") => {
            SandboxError::LayerUnavailable {
                layer,
                detail: error,
            }
        }
        _ => SandboxError::Setup { step, error },
    }
}

/// How the command ended, and its peak processes and memory: past the
/// wall clock, a time-out; else what init reported; else init's own exit.
fn exit_of(
    timed_out: bool,
    exited: Option<InitMessage>,
    init_status: sys::ExitStatus,
    wall_seconds: u64,
) -> (RunExit, u64, u64) {
    match (timed_out, exited) {
        (true, _) => (
            RunExit::TimedOut {
                seconds: wall_seconds,
            },
            0,
            0,
        ),
        (
            false,
            Some(InitMessage::Exited {
                code,
                signal,
                peak_processes,
                max_rss_kib,
                ..
            }),
        ) => (
            match (code, signal) {
                (Some(code), _) => RunExit::Exited { code },
                (None, Some(signal)) => RunExit::Signaled { signal },
                (None, None) => RunExit::Exited { code: 127 },
            },
            peak_processes,
            max_rss_kib,
        ),
        (false, _) => (
            match init_status {
                sys::ExitStatus::Exited(code) => RunExit::Exited { code },
                sys::ExitStatus::Signaled(signal) => RunExit::Signaled { signal },
            },
            0,
            0,
        ),
    }
}

fn write_id_maps(pid: libc::pid_t, is_root: bool, uid: u32, gid: u32) -> io::Result<()> {
    let proc = PathBuf::from(format!("/proc/{pid}"));
    if !is_root {
        // Unprivileged writers must deny setgroups before writing gid_map.
        fs::write(proc.join("setgroups"), "deny")?;
    }
    fs::write(proc.join("uid_map"), format!("0 {uid} 1\n"))?;
    fs::write(proc.join("gid_map"), format!("0 {gid} 1\n"))?;
    Ok(())
}

#[derive(Default)]
struct Log {
    tail: Vec<u8>,
    bytes: u64,
    truncated: bool,
}

/// A run's log as written: the first half of the cap as the output comes,
/// the last half kept in a ring and appended when the run ends, after one
/// line saying how many bytes were cut between them. Write errors (a full
/// disk) are ignored: the log is best effort, the report says the rest.
struct CappedLog {
    file: fs::File,
    head_left: u64,
    tail_cap: usize,
    ring: std::collections::VecDeque<u8>,
    cut: u64,
}

impl CappedLog {
    fn new(file: fs::File, cap: u64) -> CappedLog {
        CappedLog {
            file,
            head_left: cap / 2,
            tail_cap: usize::try_from(cap - cap / 2).unwrap_or(usize::MAX),
            ring: std::collections::VecDeque::new(),
            cut: 0,
        }
    }

    fn push(&mut self, chunk: &[u8]) {
        let head = chunk
            .len()
            .min(usize::try_from(self.head_left).unwrap_or(usize::MAX));
        if head > 0 {
            let _ = self.file.write_all(&chunk[..head]);
            self.head_left -= head as u64;
        }
        self.ring.extend(&chunk[head..]);
        if self.ring.len() > self.tail_cap {
            let over = self.ring.len() - self.tail_cap;
            self.ring.drain(..over);
            self.cut += over as u64;
        }
    }

    /// Append the tail (after the "cut" line, if bytes were cut); whether
    /// any were.
    fn finish(mut self) -> bool {
        if self.cut > 0 {
            let line = format!(
                "\n[sdist-box: {} bytes of output cut here; the log keeps its first and last {} bytes (`[limits] log-size`)]\n",
                self.cut, self.tail_cap
            );
            let _ = self.file.write_all(line.as_bytes());
        }
        let (a, b) = self.ring.as_slices();
        let _ = self.file.write_all(a).and_then(|()| self.file.write_all(b));
        self.cut > 0
    }
}

fn spawn_output_reader(
    read: OwnedFd,
    opts: &RunOptions,
) -> Result<std::thread::JoinHandle<Log>, SandboxError> {
    let cap = match opts.max_log_bytes {
        0 => DEFAULT_LOG_BYTES,
        n => n,
    };
    let mut file = match &opts.log_path {
        Some(p) => Some(CappedLog::new(
            fs::OpenOptions::new()
                .create(true)
                .write(true)
                .append(opts.append_log)
                .truncate(!opts.append_log)
                .open(p)
                .map_err(io_err(format!("open the log `{}`", p.display())))?,
            cap,
        )),
        None => None,
    };
    let echo = opts.echo;
    Ok(std::thread::spawn(move || {
        let mut log = Log::default();
        let mut reader = fs::File::from(read);
        let mut buf = vec![0u8; 64 * 1024];
        let stderr = io::stderr();
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            };
            let chunk = &buf[..n];
            if let Some(f) = file.as_mut() {
                f.push(chunk);
            }
            log.bytes += n as u64;
            log.tail.extend_from_slice(chunk);
            if log.tail.len() > TAIL_BYTES * 2 {
                log.tail.drain(..log.tail.len() - TAIL_BYTES);
            }
            if echo {
                let _ = stderr.lock().write_all(&crate::text::escape_bytes(chunk));
            }
        }
        if log.tail.len() > TAIL_BYTES {
            log.tail.drain(..log.tail.len() - TAIL_BYTES);
        }
        log.truncated = file.map(CappedLog::finish).unwrap_or(false);
        log
    }))
}

/// The path as bytes, for callers building argv.
pub fn path_bytes(p: &Path) -> &[u8] {
    p.as_os_str().as_bytes()
}

#[cfg(test)]
mod tests {
    use super::CappedLog;
    use std::fs;

    #[test]
    fn a_capped_log_keeps_its_head_the_cut_line_and_its_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let mut log = CappedLog::new(fs::File::create(&path).unwrap(), 100);
        log.push(b"HEAD");
        for _ in 0..50 {
            log.push(&[b'x'; 37]);
        }
        log.push(b"TAIL");
        assert!(log.finish());
        let text = fs::read_to_string(&path).unwrap();
        let (head, rest) = text.split_at(50);
        assert!(head.starts_with("HEAD"), "{text}");
        let (line, tail) = rest.trim_start_matches('\n').split_once('\n').unwrap();
        assert_eq!(tail.len(), 50, "{text}");
        assert!(tail.ends_with("TAIL"), "{text}");
        let cut = 4 + 50 * 37 + 4 - 100;
        assert!(
            line.contains(&format!("{cut} bytes of output cut here")),
            "{line}"
        );

        let mut small = CappedLog::new(fs::File::create(&path).unwrap(), 100);
        small.push(b"short and whole");
        assert!(!small.finish());
        assert_eq!(fs::read_to_string(&path).unwrap(), "short and whole");
    }
    #[test]
    fn uid_maps_are_read_by_range() {
        let host = "         0          0 4294967295\n";
        assert!(super::uid_map_contains(host, 4_000_000));
        let rootless = "         0       1000          1\n";
        assert!(!super::uid_map_contains(rootless, 4_000_000));
        assert!(super::uid_map_contains(rootless, 0));
        let podman = "0 1000 1\n1 100000 65536\n";
        assert!(super::uid_map_contains(podman, 65536));
        assert!(!super::uid_map_contains(podman, 65537));
    }
}
