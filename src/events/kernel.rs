//! The kernel stream: a supervisor thread that answers seccomp user
//! notifications for network and exec system calls from every process of
//! the sandbox, Python or not, and records what each one asked for.
//!
//! Verdicts on network calls come from `verdicts.rs`, by the profile's
//! network mode. In the default mode (`none`): internet-family
//! `connect`/`sendto`/`sendmsg`/`sendmmsg` fail with `EACCES`, except that a
//! UDP `connect` is answered "success" without connecting anything (a
//! resolver then sends its question, which is decoded and refused — that is
//! how a DNS exfiltration's query name is seen); `bind` only to loopback;
//! unix and netlink sockets continue. Every exec continues and is recorded
//! (under a `restrict-exec` profile, one Landlock refuses is refused here
//! too, so the stream says so).
//!
//! Invariants: every notification is answered, at once; nothing read from
//! the sandbox is trusted (it is decoded with bounds and only displayed
//! escaped); memory is bounded per event and in total, so a flood of
//! connects costs a counter, not an allocation.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::Serialize;

use super::ask::{Call, HookHandle, Review, Ticket};
pub use super::syscall::{ProcessInfo, SockAddr, Syscall, Target, Verdict, family_name};
use super::verdicts::{self, NetCall, NetPolicy, NetVerdict, OnBehalf};
use crate::sandbox::supervise::{
    ReceivedStream, Serving, Supervise, SupervisorHandle, SupervisorLog,
};
use crate::sandbox::{Mode, RunOutcome, SandboxPlan, sys};

/// One notified system call.
#[derive(Debug, Clone, Serialize)]
pub struct KernelEvent {
    /// CLOCK_MONOTONIC, nanoseconds (the same clock as Python's
    /// `time.monotonic_ns()`, so the two streams can be ordered).
    pub t_ns: u64,
    pub syscall: Syscall,
    pub process: ProcessInfo,
    pub target: Target,
    pub verdict: Verdict,
    /// The errno returned when denied.
    pub errno: Option<i32>,
    /// When a person decided (`--ask`): what they said, in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decided_at_prompt: Option<String>,
}

/// Everything the supervisor saw.
#[derive(Debug, Clone, Default, Serialize)]
pub struct KernelLog {
    pub events: Vec<KernelEvent>,
    /// Notifications answered, in total.
    pub notifications: u64,
    /// Events answered but not kept in detail (the flood guard).
    pub dropped: u64,
    /// Notifications per system call.
    pub counts: BTreeMap<String, u64>,
    /// Notifications that could not be decoded or answered.
    pub errors: u64,
    /// Decisions of the decision hook (`--ask`), in the order taken.
    pub decisions: Vec<super::ask::Decision>,
}

/// Limits of the supervisor's memory.
#[derive(Debug, Clone, Copy)]
pub struct SupervisorLimits {
    pub max_events: usize,
    pub max_bytes: usize,
}

impl Default for SupervisorLimits {
    fn default() -> Self {
        SupervisorLimits {
            max_events: 10_000,
            max_bytes: 8 << 20,
        }
    }
}

/// What the supervisor decides with, besides its limits: the profile's
/// network (and exec) verdicts, and an optional decision hook (`--ask`,
/// the degraded mode's unix-path guard).
#[derive(Debug, Clone, Default)]
pub struct SupervisorOptions {
    pub policy: NetPolicy,
    pub hook: Option<HookHandle>,
}

/// A running supervisor.
pub struct Supervisor {
    stop: Arc<AtomicBool>,
    wake: OwnedFd,
    handle: JoinHandle<KernelLog>,
    hook: Option<HookHandle>,
}

impl Supervisor {
    /// Start answering notifications from `listener`.
    pub fn spawn(listener: OwnedFd, limits: SupervisorLimits) -> Supervisor {
        Supervisor::spawn_with(listener, limits, SupervisorOptions::default())
    }

    /// Start answering notifications from `listener`, with the profile's
    /// network (and exec) verdicts, consulting `options.hook` for connects
    /// and execs (see [`super::ask`]).
    pub fn spawn_with(
        listener: OwnedFd,
        limits: SupervisorLimits,
        options: SupervisorOptions,
    ) -> Supervisor {
        let SupervisorOptions { policy, hook } = options;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let (wake_read, wake) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .expect("create the supervisor's wake pipe");
        let h = hook.clone();
        let handle = std::thread::Builder::new()
            .name("sdist-box-supervisor".into())
            .spawn(move || supervise(listener, wake_read, limits, &policy, &flag, h))
            .expect("spawn the supervisor thread");
        Supervisor {
            stop,
            wake,
            handle,
            hook,
        }
    }

    /// Stop (once the sandbox has ended) and return what was seen.
    pub fn finish(self) -> KernelLog {
        self.stop.store(true, Ordering::SeqCst);
        let _ = nix::unistd::write(&self.wake, b"x");
        let mut log = self.handle.join().unwrap_or_default();
        if let Some(hook) = &self.hook {
            // Deferred answers land in the log only now.
            for d in hook.0.finish() {
                if let Some(e) = d.event.and_then(|i| log.events.get_mut(i)) {
                    e.verdict = d.verdict;
                    e.errno = (d.verdict == Verdict::Denied).then_some(libc::EACCES);
                    e.decided_at_prompt = Some(d.reason.clone());
                }
                log.decisions.push(d);
            }
        }
        log
    }
}

/// The kernel stream's supervisor for [`crate::sandbox::run()`]: the plan's
/// network (and exec) verdicts, and `hook` (`--ask`) for connects and execs.
#[derive(Clone, Default)]
pub struct KernelSupervisor {
    pub hook: Option<HookHandle>,
}

impl KernelSupervisor {
    /// As [`RunOptions::supervisor`](crate::sandbox::RunOptions) holds it.
    pub fn handle(hook: Option<HookHandle>) -> SupervisorHandle {
        SupervisorHandle(Arc::new(KernelSupervisor { hook }))
    }
}

impl Supervise for KernelSupervisor {
    fn python_stream(&self, received: ReceivedStream) {
        // So a decision hook can show where in the package a call it asks
        // about came from.
        if let Some(hook) = &self.hook {
            hook.0.python_stream(Arc::new(move |pid| {
                super::ask::latest_origin(&received.lock().unwrap(), pid)
            }));
        }
    }

    fn serve(&self, listener: OwnedFd, plan: &SandboxPlan) -> Box<dyn Serving> {
        // Without a mount view the host's unix sockets are visible by path;
        // the supervisor refuses them.
        let hook = if plan.mode == Mode::Degraded {
            Some(HookHandle(Arc::new(super::ask::UnixPathGuard {
                inner: self.hook.clone(),
            })))
        } else {
            self.hook.clone()
        };
        Box::new(Supervisor::spawn_with(
            listener,
            SupervisorLimits::default(),
            SupervisorOptions {
                policy: NetPolicy::from_plan(plan),
                hook,
            },
        ))
    }
}

impl Serving for Supervisor {
    fn finish(self: Box<Self>) -> SupervisorLog {
        Arc::new(Supervisor::finish(*self))
    }
}

/// Options for `sandbox::run` supervised by the kernel stream's
/// supervisor with no decision hook (the doctor's probes, library users).
pub fn run_options() -> crate::sandbox::RunOptions {
    crate::sandbox::RunOptions::new(KernelSupervisor::handle(None))
}

/// The kernel stream of a run [`KernelSupervisor`] supervised.
pub fn log_of(outcome: &RunOutcome) -> Option<&KernelLog> {
    outcome.supervision.as_deref()?.downcast_ref()
}

fn monotonic_ns() -> u64 {
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .unwrap_or(nix::sys::time::TimeSpec::new(0, 0));
    ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64
}

/// The supervisor thread: answer every notification until the filter has
/// no process left or `stop` (with a byte on `wake`), and return the log.
fn supervise(
    listener: OwnedFd,
    wake: OwnedFd,
    limits: SupervisorLimits,
    policy: &NetPolicy,
    stop: &AtomicBool,
    hook: Option<HookHandle>,
) -> KernelLog {
    let mut supervision = Supervision {
        listener: Arc::new(listener),
        limits,
        policy,
        hook,
        log: KernelLog::default(),
        procs: HashMap::new(),
        fake_peers: HashMap::new(),
        bytes: 0,
    };
    loop {
        match next_notification(&supervision.listener, &wake, stop) {
            Next::Done => break,
            Next::Again => continue,
            Next::Call(notif) => supervision.handle(notif),
        }
    }
    supervision.log
}

/// What waiting on the listener gave.
enum Next {
    /// Stopped, the filter has no process left, or the listener failed.
    Done,
    /// Nothing yet, or a call whose caller is gone.
    Again,
    Call(sys::Notification),
}

fn next_notification(listener: &OwnedFd, wake: &OwnedFd, stop: &AtomicBool) -> Next {
    let (revents, woken) =
        sys::poll_two(listener.as_fd(), wake.as_fd(), Duration::from_millis(500));
    if revents & libc::POLLIN == 0 && (woken != 0 || stop.load(Ordering::SeqCst)) {
        return Next::Done;
    }
    if revents == 0 {
        return Next::Again;
    }
    if revents & libc::POLLIN == 0 {
        // POLLHUP: no process uses the filter any more.
        return Next::Done;
    }
    match sys::notif_recv(listener.as_fd()) {
        Ok(n) => Next::Call(n),
        Err(e) if e.raw_os_error() == Some(libc::EINTR) => Next::Again,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Next::Again, // the caller died
        Err(_) => Next::Done,
    }
}

/// The supervisor's state across notifications.
struct Supervision<'a> {
    listener: Arc<OwnedFd>,
    limits: SupervisorLimits,
    policy: &'a NetPolicy,
    hook: Option<HookHandle>,
    log: KernelLog,
    /// Callers, read once per image (an exec forgets its entry).
    procs: HashMap<u32, ProcessInfo>,
    /// The peer of each faked UDP connect, by (pid, fd).
    fake_peers: HashMap<(u32, i32), SockAddr>,
    /// Approximate size of the events kept.
    bytes: usize,
}

/// One notification on its way through the supervisor.
struct Pending {
    notif: sys::Notification,
    t_ns: u64,
    syscall: Syscall,
    /// Kept in detail (within the limits), or only counted.
    keep_detail: bool,
    /// Goes to the decision hook.
    reviewed: bool,
    process: ProcessInfo,
    target: Target,
    verdict: Verdict,
    errno: Option<i32>,
    on_behalf: Option<(OwnedFd, OnBehalf)>,
}

impl Supervision<'_> {
    /// Decode, decide, let the hook review, answer, record: in that order,
    /// so that the caller's memory is read while it still waits and the
    /// build never waits on the bookkeeping.
    fn handle(&mut self, notif: sys::Notification) {
        let mut call = self.decode(notif);
        // Everything read from the caller's memory is read by now, while it
        // still waits; only then is it answered (and may reuse that memory).
        if !sys::notif_id_valid(self.listener.as_fd(), call.notif.id) {
            self.log.errors += 1;
            return;
        }
        // The decision hook may change the verdict, or take the call over
        // and answer it later from its own thread.
        if let Some(hook) = self.hook.clone().filter(|_| call.reviewed)
            && self.review(&hook, &mut call) == Reviewed::Later
        {
            if call.keep_detail {
                self.record(call);
            } else {
                self.log.dropped += 1;
            }
            return;
        }
        if !call.keep_detail {
            call.process = ProcessInfo::default();
        }
        self.answer(&mut call);
        if !call.keep_detail {
            self.log.dropped += 1;
            return;
        }
        self.record(call);
        if self.procs.len() > 4096 {
            self.procs.clear();
        }
    }

    /// Count the call, decode it and decide by the profile; read who
    /// called while the caller is still blocked.
    fn decode(&mut self, notif: sys::Notification) -> Pending {
        let t_ns = monotonic_ns();
        self.log.notifications += 1;
        let syscall = Syscall::from_nr(notif.nr as i64);
        *self
            .log
            .counts
            .entry(format!("{syscall:?}").to_lowercase())
            .or_default() += 1;
        let keep_detail =
            self.log.events.len() < self.limits.max_events && self.bytes < self.limits.max_bytes;
        let key = (notif.pid, notif.args[0] as i32);
        let fake_peer = self.fake_peers.get(&key).cloned();
        let (target, verdict, errno, on_behalf) =
            decide(&notif, syscall, self.policy, fake_peer.as_ref());
        let is_exec = matches!(syscall, Syscall::Execve | Syscall::Execveat);
        let reviewed = self.hook.is_some()
            && matches!(
                syscall,
                Syscall::Execve
                    | Syscall::Execveat
                    | Syscall::Connect
                    | Syscall::Sendto
                    | Syscall::Sendmsg
                    | Syscall::Sendmmsg
            );
        // Who called, read while the caller is still blocked (for an exec,
        // that is the image *before* the exec: the one that asked for it).
        let process = if keep_detail || reviewed {
            self.procs
                .entry(notif.pid)
                .or_insert_with(|| process_info(notif.pid))
                .clone()
        } else {
            ProcessInfo::default()
        };
        if is_exec {
            // The image changes: read it afresh next time.
            self.procs.remove(&notif.pid);
        }
        let mut call = Pending {
            notif,
            t_ns,
            syscall,
            keep_detail,
            reviewed,
            process,
            target,
            verdict,
            errno,
            on_behalf,
        };
        self.follow_fake_peer(&mut call, key);
        call
    }

    /// A faked UDP connect leaves no peer in the kernel: remember it, so
    /// the send that follows is shown with its destination.
    fn follow_fake_peer(&mut self, call: &mut Pending, key: (u32, i32)) {
        let Target::Socket {
            addr, dns_query, ..
        } = &mut call.target
        else {
            return;
        };
        match (call.syscall, call.verdict) {
            (Syscall::Connect, Verdict::Faked) => {
                if let Some(a) = addr.clone()
                    && self.fake_peers.len() < 4096
                {
                    self.fake_peers.insert(key, a);
                }
            }
            (Syscall::Sendto | Syscall::Sendmsg | Syscall::Sendmmsg, _) if addr.is_none() => {
                *addr = self.fake_peers.get(&key).cloned();
                if dns_query.is_none() {
                    *dns_query = dns_from_payload(&call.notif, call.syscall, addr.as_ref());
                }
            }
            _ => {}
        }
    }

    /// Ask the decision hook: it answers now (possibly changing the
    /// verdict) or takes the call over and answers later.
    fn review(&mut self, hook: &HookHandle, call: &mut Pending) -> Reviewed {
        let event = call.keep_detail.then_some(self.log.events.len());
        // Should the hook turn a refused connect into an allowed one,
        // the supervisor connects on the build's behalf, to the address
        // it decoded and showed (never a plain continue: the kernel
        // would read the caller's memory again, which may have changed).
        let refused_connect = call.syscall == Syscall::Connect && call.verdict == Verdict::Denied;
        let allowed_connect = if refused_connect {
            connect_on_behalf(&call.notif, &call.target)
        } else {
            None
        };
        let allowed_connect = Arc::new(std::sync::Mutex::new(allowed_connect));
        let ticket = Ticket::new(
            self.listener.clone(),
            call.notif.id,
            event,
            allowed_connect.clone(),
            refused_connect,
        );
        let review = hook.0.review(
            &Call {
                syscall: call.syscall,
                target: &call.target,
                process: &call.process,
                verdict: call.verdict,
                errno: call.errno,
            },
            ticket,
        );
        let (v, e) = match review {
            Review::Now(v, e) => (v, e),
            Review::Later => return Reviewed::Later,
        };
        let behalf = allowed_connect.lock().ok().and_then(|mut b| b.take());
        if v == Verdict::Allowed && refused_connect {
            // Allowed by the hook: on the build's behalf, or
            // not at all (no socket to do it on).
            match behalf {
                Some(b) => {
                    call.on_behalf = Some(b);
                    call.verdict = Verdict::Allowed;
                    call.errno = None;
                }
                None => self.log.errors += 1,
            }
        } else {
            if v == Verdict::Denied {
                call.on_behalf = None;
            }
            call.verdict = v;
            call.errno = e;
        }
        Reviewed::Now
    }

    /// Answer before the bookkeeping: the build never waits on it. A call
    /// performed on the build's behalf runs on its own thread (a connect
    /// may take its time), which answers with its result.
    fn answer(&mut self, call: &mut Pending) {
        let (listener, id) = (&self.listener, call.notif.id);
        let answered = match (call.on_behalf.take(), call.verdict) {
            (Some((socket, action)), _) => verdicts::answer_on_behalf(listener, id, socket, action),
            (None, Verdict::Allowed) => sys::notif_respond(listener.as_fd(), id, true, 0),
            (None, Verdict::Faked) => sys::notif_respond(listener.as_fd(), id, false, 0),
            (None, Verdict::Denied) => sys::notif_respond(
                listener.as_fd(),
                id,
                false,
                call.errno.unwrap_or(libc::EACCES),
            ),
        };
        if answered.is_err() {
            self.log.errors += 1;
        }
    }

    fn record(&mut self, call: Pending) {
        self.bytes += approx_size(&call.process, &call.target);
        self.log.events.push(KernelEvent {
            t_ns: call.t_ns,
            syscall: call.syscall,
            process: call.process,
            target: call.target,
            verdict: call.verdict,
            errno: call.errno,
            decided_at_prompt: None,
        });
    }
}

#[derive(PartialEq, Eq)]
enum Reviewed {
    Now,
    Later,
}

/// A connect the supervisor would perform itself, should it be allowed
/// after all: the caller's socket and the (already decoded) address.
fn connect_on_behalf(n: &sys::Notification, target: &Target) -> Option<(OwnedFd, OnBehalf)> {
    let Target::Socket {
        addr: Some(SockAddr::Inet { ip, port }),
        ..
    } = target
    else {
        return None;
    };
    let sock = SocketPeek::new(n.pid, n.args[0] as i32)?;
    Some((
        sock.fd,
        OnBehalf::Connect(std::net::SocketAddr::new(*ip, *port)),
    ))
}

fn approx_size(p: &ProcessInfo, t: &Target) -> usize {
    let strings = |v: &[String]| v.iter().map(|s| s.len() + 24).sum::<usize>();
    let target = match t {
        Target::Exec {
            path,
            program,
            argv,
            env_names,
        } => {
            path.len()
                + program.as_ref().map_or(0, |p| p.shown().len())
                + strings(argv)
                + strings(env_names)
        }
        Target::File { path, .. } => path.len(),
        _ => 64,
    };
    256 + strings(&p.argv) + p.exe.as_ref().map_or(0, |e| e.len()) + target
}

/// What [`decide`] returns: the decoded target, the verdict to record, the
/// errno of a refusal, and a call to perform on the build's behalf.
type Decision = (Target, Verdict, Option<i32>, Option<(OwnedFd, OnBehalf)>);

/// Decode the call and decide. Never blocks for long; never trusts memory.
fn decide(
    n: &sys::Notification,
    syscall: Syscall,
    policy: &NetPolicy,
    fake_peer: Option<&SockAddr>,
) -> Decision {
    match syscall {
        Syscall::Connect
        | Syscall::Bind
        | Syscall::Sendto
        | Syscall::Sendmsg
        | Syscall::Sendmmsg => decide_network(n, syscall, policy, fake_peer),
        Syscall::Execve | Syscall::Execveat => decide_exec(n, syscall, policy),
        // Only notified in the degraded mode, and only for families other
        // than unix: there is no network namespace, so refuse them all.
        Syscall::Socket => decide_socket(n),
        Syscall::Open => decide_open(n),
        Syscall::Listen => decide_listen(n, policy),
        Syscall::Other => (Target::Unknown, Verdict::Allowed, None, None),
    }
}

/// connect, bind and the send family: the address (given, or the
/// socket's peer), a DNS question in the payload, and the profile's verdict.
fn decide_network(
    n: &sys::Notification,
    syscall: Syscall,
    policy: &NetPolicy,
    fake_peer: Option<&SockAddr>,
) -> Decision {
    let fd = n.args[0] as i32;
    let (addr_ptr, addr_len, flags) = match syscall {
        Syscall::Connect | Syscall::Bind => (n.args[1], n.args[2] as usize, 0),
        Syscall::Sendto => (n.args[4], n.args[5] as usize, n.args[3]),
        // sendmsg(fd, msg, flags); sendmmsg(fd, msgvec, vlen, flags).
        _ => {
            let flags = if syscall == Syscall::Sendmmsg {
                n.args[3]
            } else {
                n.args[2]
            };
            match read_msghdr(n.pid, n.args[1]) {
                Some(m) => (m.name, m.namelen, flags),
                None => (0, 0, flags),
            }
        }
    };
    let has_address_arg = addr_ptr != 0 && addr_len > 0;
    let explicit = if has_address_arg {
        sys::read_process_memory(n.pid, addr_ptr, addr_len.min(128))
            .ok()
            .and_then(|b| decode_sockaddr(&b))
    } else {
        None
    };
    let sock = SocketPeek::new(n.pid, fd);
    let peer = sock.as_ref().and_then(|s| s.peer());
    let socket_type = sock.as_ref().and_then(|s| s.kind());
    let socket_inet = sock.as_ref().is_some_and(|s| s.is_inet());
    let addr = explicit.clone().or_else(|| peer.clone());
    let dns_query = dns_from_payload(n, syscall, addr.as_ref());
    // The bytes of a datagram, read now (while the caller waits), in
    // case the supervisor sends it itself.
    let payload = if policy.mode != crate::sandbox::NetworkMode::None
        && socket_type.as_deref() == Some("dgram")
    {
        verdicts::read_payload(n.pid, syscall, &n.args)
    } else {
        None
    };
    let verdict = verdicts::network_verdict(
        policy,
        NetCall {
            syscall,
            explicit: explicit.as_ref(),
            has_address_arg,
            peer: peer.as_ref(),
            fake_peer,
            socket_type: socket_type.as_deref(),
            socket_inet,
            flags,
            payload,
        },
    );
    let target = Target::Socket {
        addr,
        socket_type,
        dns_query,
    };
    match verdict {
        NetVerdict::Continue => (target, Verdict::Allowed, None, None),
        NetVerdict::Fake => (target, Verdict::Faked, None, None),
        NetVerdict::Deny(errno) => (target, Verdict::Denied, Some(errno), None),
        NetVerdict::OnBehalf(action) => match sock {
            Some(s) => (target, Verdict::Allowed, None, Some((s.fd, action))),
            None => (target, Verdict::Denied, Some(libc::EACCES), None),
        },
    }
}

/// execve and execveat: the program the kernel is to run, argv, the
/// environment's names, and the profile's exec verdict.
fn decide_exec(n: &sys::Notification, syscall: Syscall, policy: &NetPolicy) -> Decision {
    let (path_ptr, argv_ptr, envp_ptr) = if syscall == Syscall::Execve {
        (n.args[0], n.args[1], n.args[2])
    } else {
        (n.args[1], n.args[2], n.args[3])
    };
    let raw = read_cbytes(n.pid, path_ptr, 4096);
    let (dirfd, flags) = if syscall == Syscall::Execve {
        (libc::AT_FDCWD, 0)
    } else {
        (n.args[0] as i32, n.args[4])
    };
    let program = raw.as_ref().map(|(bytes, truncated)| {
        super::program::resolve(
            n.pid,
            &super::program::ExecCall {
                dirfd,
                path: bytes,
                flags,
                truncated: *truncated,
            },
        )
    });
    let mut path = raw.map(lossy).unwrap_or_default();
    if syscall == Syscall::Execveat && path.is_empty() {
        path = format!("(fd {})", n.args[0] as i32);
    }
    let argv = read_string_array(n.pid, argv_ptr, 32, 256);
    let env_names = read_string_array(n.pid, envp_ptr, 64, 256)
        .into_iter()
        .map(|e| e.split('=').next().unwrap_or("").chars().take(64).collect())
        .collect();
    let refused = verdicts::exec_verdict(policy, n.pid, &path)
        .or_else(|| super::anon_exec::verdict(policy, program.as_ref()));
    (
        Target::Exec {
            path,
            program,
            argv,
            env_names,
        },
        if refused.is_some() {
            Verdict::Denied
        } else {
            Verdict::Allowed
        },
        refused,
        None,
    )
}

/// socket(2) of a family other than unix (the degraded mode): refused.
fn decide_socket(n: &sys::Notification) -> Decision {
    let kind = match (n.args[1] as i32) & 0xf {
        libc::SOCK_STREAM => "stream",
        libc::SOCK_DGRAM => "dgram",
        libc::SOCK_RAW => "raw",
        libc::SOCK_SEQPACKET => "seqpacket",
        _ => "other",
    };
    (
        Target::Socket {
            addr: Some(SockAddr::Unknown {
                number: n.args[0] as u16,
            }),
            socket_type: Some(kind.into()),
            dns_query: None,
        },
        Verdict::Denied,
        Some(libc::EACCES),
        None,
    )
}

/// The open family (`--trace-files`): recorded, never refused here.
fn decide_open(n: &sys::Notification) -> Decision {
    let (path_ptr, flags) = match n.nr as i64 {
        libc::SYS_open => (n.args[0], n.args[1]),
        libc::SYS_creat => (n.args[0], libc::O_CREAT as u64 | libc::O_WRONLY as u64),
        libc::SYS_openat2 => (
            n.args[1],
            sys::read_process_memory(n.pid, n.args[2], 8)
                .ok()
                .and_then(|b| b.try_into().ok())
                .map(u64::from_ne_bytes)
                .unwrap_or(0),
        ),
        _ => (n.args[1], n.args[2]),
    };
    let path = read_cstring(n.pid, path_ptr, 4096).unwrap_or_default();
    (Target::File { path, flags }, Verdict::Allowed, None, None)
}

/// listen: only on a socket bound where the profile allows.
fn decide_listen(n: &sys::Notification, policy: &NetPolicy) -> Decision {
    let sock = SocketPeek::new(n.pid, n.args[0] as i32);
    let local = sock.as_ref().and_then(|s| s.local());
    let refused = verdicts::listen_verdict(policy, local.as_ref());
    let target = Target::Socket {
        addr: local,
        socket_type: sock.as_ref().and_then(|s| s.kind()),
        dns_query: None,
    };
    match refused {
        Some(errno) => (target, Verdict::Denied, Some(errno), None),
        None => (target, Verdict::Allowed, None, None),
    }
}

/// The DNS question in what a send call would send to port 53.
fn dns_from_payload(
    n: &sys::Notification,
    syscall: Syscall,
    addr: Option<&SockAddr>,
) -> Option<String> {
    let Some(SockAddr::Inet { port: 53, .. }) = addr else {
        return None;
    };
    let (ptr, len) = match syscall {
        Syscall::Sendto => (n.args[1], n.args[2] as usize),
        Syscall::Sendmsg | Syscall::Sendmmsg => read_msghdr(n.pid, n.args[1])?.first_iov?,
        _ => return None,
    };
    let payload = sys::read_process_memory(n.pid, ptr, len.min(512)).ok()?;
    // DNS over TCP prefixes the message with its length.
    let tcp = payload.len() >= 2
        && u16::from_be_bytes([payload[0], payload[1]]) as usize == len.saturating_sub(2);
    let decoded = if tcp {
        super::dns::query_name_tcp(&payload)
    } else {
        super::dns::query_name(&payload)
    };
    decoded
        .filter(|(name, _)| !name.is_empty())
        .map(|(name, _)| name)
}

struct MsgHdr {
    name: u64,
    namelen: usize,
    first_iov: Option<(u64, usize)>,
}

/// `struct msghdr` on 64-bit Linux: name(8) namelen(4)+pad(4) iov(8)
/// iovlen(8) control(8) controllen(8) flags(4)+pad(4).
fn read_msghdr(pid: u32, ptr: u64) -> Option<MsgHdr> {
    let b = sys::read_process_memory(pid, ptr, 56).ok()?;
    if b.len() < 32 {
        return None;
    }
    let u64_at = |o: usize| u64::from_ne_bytes(b[o..o + 8].try_into().unwrap());
    let name = u64_at(0);
    let namelen = u32::from_ne_bytes(b[8..12].try_into().unwrap()) as usize;
    let iov = u64_at(16);
    let iovlen = u64_at(24);
    let first_iov = if iov != 0 && iovlen > 0 {
        let v = sys::read_process_memory(pid, iov, 16).ok()?;
        (v.len() == 16).then(|| {
            (
                u64::from_ne_bytes(v[0..8].try_into().unwrap()),
                u64::from_ne_bytes(v[8..16].try_into().unwrap()) as usize,
            )
        })
    } else {
        None
    };
    Some(MsgHdr {
        name,
        namelen,
        first_iov,
    })
}

/// Decode a `struct sockaddr` of any family we care about.
pub fn decode_sockaddr(b: &[u8]) -> Option<SockAddr> {
    let family = u16::from_ne_bytes(b.get(0..2)?.try_into().ok()?);
    Some(match family as i32 {
        libc::AF_INET => {
            let port = u16::from_be_bytes(b.get(2..4)?.try_into().ok()?);
            let ip: [u8; 4] = b.get(4..8)?.try_into().ok()?;
            SockAddr::Inet {
                ip: IpAddr::V4(Ipv4Addr::from(ip)),
                port,
            }
        }
        libc::AF_INET6 => {
            let port = u16::from_be_bytes(b.get(2..4)?.try_into().ok()?);
            let ip: [u8; 16] = b.get(8..24)?.try_into().ok()?;
            let ip = Ipv6Addr::from(ip);
            SockAddr::Inet {
                ip: match ip.to_ipv4_mapped() {
                    Some(v4) => IpAddr::V4(v4),
                    None => IpAddr::V6(ip),
                },
                port,
            }
        }
        libc::AF_UNIX => {
            let raw = b.get(2..).unwrap_or(&[]);
            let is_abstract = raw.first() == Some(&0) && raw.len() > 1;
            let raw = if is_abstract { &raw[1..] } else { raw };
            let end = if is_abstract {
                raw.len()
            } else {
                raw.iter().position(|&c| c == 0).unwrap_or(raw.len())
            };
            SockAddr::Unix {
                path: String::from_utf8_lossy(&raw[..end])
                    .chars()
                    .take(108)
                    .collect(),
                is_abstract,
            }
        }
        libc::AF_NETLINK => SockAddr::Netlink,
        _ => SockAddr::Unknown { number: family },
    })
}

/// A duplicate of the caller's socket, to ask its type and peer.
struct SocketPeek {
    fd: OwnedFd,
}

impl SocketPeek {
    fn new(pid: u32, fd: i32) -> Option<SocketPeek> {
        let pidfd = sys::pidfd_open(pid as i32).ok()?;
        let fd = sys::pidfd_getfd(pidfd.as_fd(), fd).ok()?;
        Some(SocketPeek { fd })
    }

    fn kind(&self) -> Option<String> {
        use nix::sys::socket::{SockType, getsockopt, sockopt};
        let t = getsockopt(&self.fd, sockopt::SockType).ok()?;
        Some(
            match t {
                SockType::Stream => "stream",
                SockType::Datagram => "dgram",
                SockType::Raw => "raw",
                SockType::SeqPacket => "seqpacket",
                _ => "other",
            }
            .to_string(),
        )
    }

    fn is_inet(&self) -> bool {
        use nix::sys::socket::{SockaddrLike, SockaddrStorage, getsockname};
        getsockname::<SockaddrStorage>(self.fd.as_raw_fd())
            .ok()
            .and_then(|a| a.family())
            .is_some_and(|f| {
                matches!(
                    f,
                    nix::sys::socket::AddressFamily::Inet | nix::sys::socket::AddressFamily::Inet6
                )
            })
    }

    /// The socket's own address (kernel state, not caller memory).
    fn local(&self) -> Option<SockAddr> {
        use nix::sys::socket::{SockaddrStorage, getsockname};
        let a: SockaddrStorage = getsockname(self.fd.as_raw_fd()).ok()?;
        Self::decode(a)
    }

    fn peer(&self) -> Option<SockAddr> {
        use nix::sys::socket::{SockaddrStorage, getpeername};
        let a: SockaddrStorage = getpeername(self.fd.as_raw_fd()).ok()?;
        Self::decode(a)
    }

    fn decode(a: nix::sys::socket::SockaddrStorage) -> Option<SockAddr> {
        use nix::sys::socket::SockaddrLike;
        if let Some(v4) = a.as_sockaddr_in() {
            return Some(SockAddr::Inet {
                ip: IpAddr::V4(v4.ip()),
                port: v4.port(),
            });
        }
        if let Some(v6) = a.as_sockaddr_in6() {
            return Some(SockAddr::Inet {
                ip: IpAddr::V6(v6.ip()),
                port: v6.port(),
            });
        }
        a.family().map(|f| match f {
            nix::sys::socket::AddressFamily::Unix => SockAddr::Unix {
                path: String::new(),
                is_abstract: false,
            },
            other => SockAddr::Unknown {
                number: other as u16,
            },
        })
    }
}

/// Read a NUL-terminated string of at most `max` bytes from `pid`.
fn read_cstring(pid: u32, addr: u64, max: usize) -> Option<String> {
    read_cbytes(pid, addr, max).map(lossy)
}

/// A string read by [`read_cbytes`], for display: `…` when cut short.
fn lossy((bytes, truncated): (Vec<u8>, bool)) -> String {
    let mut s = String::from_utf8_lossy(&bytes).into_owned();
    if truncated {
        s.push('…');
    }
    s
}

/// Read a NUL-terminated string of at most `max` bytes from `pid`, as
/// bytes; true when it was longer.
fn read_cbytes(pid: u32, addr: u64, max: usize) -> Option<(Vec<u8>, bool)> {
    if addr == 0 {
        return None;
    }
    let mut out = Vec::new();
    let mut at = addr;
    while out.len() < max {
        // Stay within one page per read: a string may end just before an
        // unmapped page.
        let page_left = 4096 - (at as usize % 4096);
        let chunk = sys::read_process_memory(pid, at, page_left.min(max - out.len())).ok()?;
        if chunk.is_empty() {
            break;
        }
        if let Some(end) = chunk.iter().position(|&c| c == 0) {
            out.extend_from_slice(&chunk[..end]);
            return Some((out, false));
        }
        at += chunk.len() as u64;
        out.extend_from_slice(&chunk);
    }
    Some((out, true))
}

/// Read a NULL-terminated array of string pointers (argv, envp).
fn read_string_array(pid: u32, addr: u64, max_items: usize, max_len: usize) -> Vec<String> {
    let mut out = Vec::new();
    if addr == 0 {
        return out;
    }
    let Ok(ptrs) = sys::read_process_memory(pid, addr, 8 * max_items) else {
        return out;
    };
    for chunk in ptrs.chunks_exact(8) {
        let p = u64::from_ne_bytes(chunk.try_into().unwrap());
        if p == 0 {
            break;
        }
        out.push(read_cstring(pid, p, max_len).unwrap_or_default());
    }
    out
}

/// Who is `pid` (host pid), in the sandbox's terms.
pub fn process_info(pid: u32) -> ProcessInfo {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| -> Option<String> {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .map(|l| l[name.len()..].trim().to_string())
    };
    let ns_pid = field("NSpid:").and_then(|v| v.split_whitespace().last()?.parse().ok());
    let host_ppid: Option<u32> = field("PPid:").and_then(|v| v.parse().ok());
    let ppid = host_ppid.and_then(|pp| {
        let s = std::fs::read_to_string(format!("/proc/{pp}/status")).ok()?;
        s.lines()
            .find(|l| l.starts_with("NSpid:"))?
            .split_whitespace()
            .last()?
            .parse()
            .ok()
    });
    let exe = std::fs::read_link(format!("/proc/{pid}/exe"))
        .ok()
        .map(|p| p.display().to_string());
    let argv = std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            b.split(|&c| c == 0)
                .filter(|a| !a.is_empty())
                .take(32)
                .map(|a| String::from_utf8_lossy(&a[..a.len().min(256)]).into_owned())
                .collect()
        })
        .unwrap_or_default();
    ProcessInfo {
        host_pid: pid,
        pid: ns_pid,
        ppid,
        exe,
        argv,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_inet_inet6_unix() {
        let mut v4 = vec![0u8; 16];
        v4[0..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
        v4[2..4].copy_from_slice(&443u16.to_be_bytes());
        v4[4..8].copy_from_slice(&[10, 0, 0, 5]);
        assert_eq!(decode_sockaddr(&v4).unwrap().to_string(), "10.0.0.5:443");
        let mut v6 = vec![0u8; 28];
        v6[0..2].copy_from_slice(&(libc::AF_INET6 as u16).to_ne_bytes());
        v6[2..4].copy_from_slice(&53u16.to_be_bytes());
        v6[23] = 1;
        assert_eq!(decode_sockaddr(&v6).unwrap().to_string(), "[::1]:53");
        let mut un = (libc::AF_UNIX as u16).to_ne_bytes().to_vec();
        un.extend_from_slice(b"\0hidden");
        assert_eq!(decode_sockaddr(&un).unwrap().to_string(), "unix:@hidden");
        assert_eq!(decode_sockaddr(&[1]), None);
    }
}
