//! Decisions the supervisor does not take alone: a small hook it calls for
//! every `connect` and `exec` it is about to answer, and `--ask`, the hook
//! that puts the question to the person running sdist-box.
//!
//! The question goes to sdist-box's own controlling terminal (`/dev/tty`),
//! never to stdin/stdout, which may be the package's (and the package's own
//! output could forge a prompt). The sandboxed commands have no controlling
//! terminal (their init starts a new session) and no `/dev/tty` in their
//! view. Questions are asked one at a time on a dedicated thread; the caller
//! waits in its seccomp notification meanwhile, while the supervisor goes on
//! answering everything else. No terminal, no answer in time, or a caller
//! that died: the call is denied.
//!
//! A program start is asked about as the program the kernel will run
//! ([`super::program`]: resolved in the caller's view), never as the
//! `argv[0]` the package chose; argv and the path as named are shown
//! beside it when they say otherwise. "Always" remembers that file at that
//! path. Every exec allowed here is checked afterwards
//! ([`super::exec_check`]): the kernel resolves the path again, and a
//! package that changed it in between has its substitute killed and
//! reported.
//!
//! Invariants: every deferred notification is answered exactly once (by the
//! asking thread); an allowed exec's check is armed before it is answered;
//! everything shown on the terminal that came from the sandbox is escaped
//! ([`crate::text::one_line`]).

use std::collections::HashSet;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::exec_check::ExecChecks;
use super::program::{self, Program};
use super::syscall::{ProcessInfo, SockAddr, Syscall, Target, Verdict};
use super::verdicts::OnBehalf;
use crate::sandbox::sys;

/// A call the supervisor is about to answer.
pub struct Call<'a> {
    pub syscall: Syscall,
    pub target: &'a Target,
    pub process: &'a ProcessInfo,
    /// What the supervisor's own rules decided.
    pub verdict: Verdict,
    pub errno: Option<i32>,
}

/// A connect the supervisor performs itself if it is allowed (shared with
/// the supervisor, which takes it when the hook answers at once).
pub(crate) type AllowedConnect = Arc<Mutex<Option<(OwnedFd, OnBehalf)>>>;

/// The right to answer one notification later (from another thread).
pub struct Ticket {
    listener: Arc<OwnedFd>,
    id: u64,
    /// Index of the call's event in the kernel log, when it is kept.
    pub event: Option<usize>,
    /// A refused connect: allowing it means performing it on the build's
    /// behalf (to the address decoded and shown), never letting the kernel
    /// read the caller's memory again.
    on_behalf: AllowedConnect,
    /// The call is a refused connect: without an on-behalf call it cannot
    /// be allowed.
    refused_connect: bool,
}

impl Ticket {
    pub(crate) fn new(
        listener: Arc<OwnedFd>,
        id: u64,
        event: Option<usize>,
        on_behalf: AllowedConnect,
        refused_connect: bool,
    ) -> Ticket {
        Ticket {
            listener,
            id,
            event,
            on_behalf,
            refused_connect,
        }
    }

    /// The caller still waits for the answer.
    pub fn pending(&self) -> bool {
        sys::notif_id_valid(self.listener.as_fd(), self.id)
    }

    /// Answer: let the call go on, or fail it with `errno`.
    pub fn answer(self, allow: bool, errno: i32) {
        let behalf = self.on_behalf.lock().ok().and_then(|mut b| b.take());
        match (allow, behalf) {
            (true, Some((socket, action))) => {
                if super::verdicts::answer_on_behalf(&self.listener, self.id, socket, action)
                    .is_err()
                {
                    let _ = sys::notif_respond(self.listener.as_fd(), self.id, false, libc::EACCES);
                }
            }
            (true, None) if self.refused_connect => {
                let _ = sys::notif_respond(self.listener.as_fd(), self.id, false, libc::EACCES);
            }
            _ => {
                let _ = sys::notif_respond(self.listener.as_fd(), self.id, allow, errno);
            }
        }
    }
}

/// What a hook says about a call.
pub enum Review {
    /// Answer now with this verdict (and errno when denied).
    Now(Verdict, Option<i32>),
    /// The hook took the ticket and will answer.
    Later,
}

/// Consulted by the supervisor for `connect`, the send family and `exec`.
/// Other calls, and a supervisor without a hook, keep the built-in verdicts.
pub trait DecisionHook: Send + Sync {
    fn review(&self, call: &Call<'_>, ticket: Ticket) -> Review;
    /// The sandbox has ended: settle what is queued and return every
    /// decision taken (the supervisor patches its log with them).
    fn finish(&self) -> Vec<Decision>;
    /// The Python stream as it arrives, for origins shown while asking.
    fn python_stream(&self, _lookup: OriginLookup) {}
}

/// The degraded mode's guard (no mount view, so the host's unix sockets
/// are visible by path: the container runtime's, D-Bus, an agent's):
/// connecting or sending to any unix socket by path is refused. A path
/// check would race with the build swapping in a symlink between the check
/// and the kernel's lookup, so there is none; abstract sockets stay inside
/// the sandbox by Landlock's scope (ABI 6). Everything else goes to the
/// inner hook (`--ask`), if any.
pub struct UnixPathGuard {
    pub inner: Option<HookHandle>,
}

impl UnixPathGuard {
    fn refuses(&self, call: &Call<'_>) -> bool {
        let Target::Socket {
            addr: Some(SockAddr::Unix { path, is_abstract }),
            ..
        } = call.target
        else {
            return false;
        };
        // An unnamed peer (socketpair, or a send on a socket whose connect
        // was already checked) has no path.
        !*is_abstract && !path.is_empty()
    }
}

impl DecisionHook for UnixPathGuard {
    fn review(&self, call: &Call<'_>, ticket: Ticket) -> Review {
        if self.refuses(call) {
            return Review::Now(Verdict::Denied, Some(libc::EACCES));
        }
        match &self.inner {
            Some(inner) => inner.0.review(call, ticket),
            None => Review::Now(call.verdict, call.errno),
        }
    }

    fn finish(&self) -> Vec<Decision> {
        self.inner
            .as_ref()
            .map(|i| i.0.finish())
            .unwrap_or_default()
    }

    fn python_stream(&self, lookup: OriginLookup) {
        if let Some(i) = &self.inner {
            i.0.python_stream(lookup);
        }
    }
}

/// A shareable hook for [`super::kernel::KernelSupervisor`].
#[derive(Clone)]
pub struct HookHandle(pub Arc<dyn DecisionHook>);

impl std::fmt::Debug for HookHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HookHandle")
    }
}

/// How a question was settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Answer {
    /// "allow once".
    AllowOnce,
    /// "deny".
    Deny,
    /// "always": allowed, and this destination or program from now on.
    Always,
    /// Allowed by an earlier "always" in this run, without asking.
    AllowedByAlways,
    /// Denied: sdist-box has no controlling terminal to ask on.
    NoTerminal,
    /// Denied: no answer within the time limit.
    TimedOut,
    /// The caller was gone before an answer (nothing to allow).
    CallerGone,
}

impl Answer {
    pub fn allows(self) -> bool {
        matches!(
            self,
            Answer::AllowOnce | Answer::Always | Answer::AllowedByAlways
        )
    }

    /// In words, for the report and the finding's `decided_by`.
    pub fn describe(self, timeout: u64) -> String {
        match self {
            Answer::AllowOnce => "allowed once at the --ask prompt".into(),
            Answer::Deny => "denied at the --ask prompt".into(),
            Answer::Always => "allowed at the --ask prompt, always for this run".into(),
            Answer::AllowedByAlways => {
                "allowed by an earlier \"always\" at the --ask prompt".into()
            }
            Answer::NoTerminal => "denied: no terminal to ask".into(),
            Answer::TimedOut => format!("denied: no answer at the --ask prompt within {timeout} s"),
            Answer::CallerGone => "the caller ended before it was answered".into(),
        }
    }
}

/// One decision, as the report shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    pub syscall: Syscall,
    /// `127.0.0.1:8080`, or the program and its arguments (the whole argv,
    /// labelled, when `argv[0]` does not name the program), escaped.
    pub target: String,
    /// An exec: the program the kernel was to run, as shown at the prompt
    /// (resolved in the sandbox's view), escaped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub program: Option<String>,
    /// An allowed exec after which another program ran (the package
    /// changed what the path names after the question): that program,
    /// escaped. sdist-box killed it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ran_instead: Option<String>,
    /// Who asked: the process chain, outermost first, escaped.
    pub process_chain: Vec<String>,
    pub answer: Answer,
    pub verdict: Verdict,
    /// In words (`denied: no terminal to ask`).
    pub reason: String,
    /// Index of the call in the kernel log, when kept.
    #[serde(skip)]
    pub event: Option<usize>,
    /// Names the decision for the check after an exec.
    #[serde(skip)]
    id: u64,
}

/// Should `--ask` ask about this call? Internet connects the rules deny, and
/// execs (except the one sdist-box's init makes to start the command).
fn askable(call: &Call<'_>) -> bool {
    match (call.syscall, call.target) {
        (Syscall::Connect, Target::Socket { addr, .. }) => {
            call.verdict == Verdict::Denied && addr.as_ref().is_some_and(SockAddr::is_inet)
        }
        (Syscall::Execve | Syscall::Execveat, _) => {
            call.process.argv.first().map(String::as_str) != Some(crate::sandbox::init::INIT_ARGV0)
        }
        _ => false,
    }
}

/// What "always" remembers: the destination, or the program shown (the
/// file the kernel resolved, never `argv[0]`). `None`: "always" is not
/// offered (a program sdist-box could not resolve).
fn always_key(syscall: Syscall, target: &Target) -> Option<String> {
    match target {
        Target::Exec { program, .. } => program.as_ref()?.always_key(),
        Target::Socket { addr: Some(a), .. } => Some(format!("{syscall:?} {a}")),
        _ => Some(format!("{syscall:?} ?")),
    }
}

fn describe_target(target: &Target) -> String {
    match target {
        Target::Socket { addr: Some(a), .. } => crate::text::one_line(&a.to_string(), 200),
        Target::Exec {
            path,
            program,
            argv,
            ..
        } => program::exec_line(path, program.as_ref(), argv, 300),
        _ => "?".into(),
    }
}

/// The lines under an exec's question: argv when `argv[0]` does not name
/// the program, the path as named when it differs, a script's interpreter.
fn exec_details(target: &Target) -> Vec<(&'static str, String)> {
    let Target::Exec {
        path,
        program: Some(p),
        argv,
        ..
    } = target
    else {
        return Vec::new();
    };
    let t = |s: &str| crate::text::one_line(s, 300);
    let mut lines = Vec::new();
    if argv.first().is_some_and(|a0| !p.agrees_with(a0)) {
        lines.push((
            "argv",
            format!(
                "{}   (argv[0] is the package's choice, not the program)",
                t(&program::join_argv(argv))
            ),
        ));
    }
    if p.path() != Some(path.as_str()) {
        lines.push(("named", format!("{}   (as the caller named it)", t(path))));
    }
    if let Some(i) = &p.interpreter {
        lines.push(("script", format!("run by {i} (its #! line)")));
    }
    lines
}

/// The caller's process chain from the host's /proc: its ancestors up to
/// (not including) the sandbox's init, outermost first.
fn process_chain(caller: &ProcessInfo) -> Vec<String> {
    let mut chain = Vec::new();
    let mut pid = caller.host_pid;
    for _ in 0..8 {
        let argv: Vec<String> = std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|b| {
                b.split(|&c| c == 0)
                    .filter(|a| !a.is_empty())
                    .take(16)
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect()
            })
            .unwrap_or_default();
        if argv.is_empty() || argv[0] == crate::sandbox::init::INIT_ARGV0 {
            break;
        }
        chain.push(crate::text::one_line(&argv.join(" "), 160));
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let Some(ppid) = status
            .lines()
            .find_map(|l| l.strip_prefix("PPid:"))
            .and_then(|v| v.trim().parse::<u32>().ok())
        else {
            break;
        };
        if ppid <= 1 {
            break;
        }
        pid = ppid;
    }
    chain.reverse();
    chain
}

struct Question {
    syscall: Syscall,
    /// What "always" would remember (`None`: not offered).
    key: Option<String>,
    target: String,
    /// An exec: the program, shown and as resolved, and the lines under
    /// the question.
    program: Option<Program>,
    details: Vec<(&'static str, String)>,
    /// The calling thread (host), for the check after an allowed exec.
    tid: u32,
    chain: Vec<String>,
    sandbox_pid: Option<u32>,
    ticket: Ticket,
}

/// Where a Python-stream origin for a sandbox pid can be looked up while
/// the build runs (the newest `file:line` that pid's audit hook reported).
pub type OriginLookup = Arc<dyn Fn(u32) -> Option<String> + Send + Sync>;

/// The newest origin the audit hook of sandbox process `pid` reported, in
/// the Python stream received so far (its last 256 KiB). Attacker-written
/// text: only ever shown escaped, and labelled as the hook's.
pub fn latest_origin(stream: &[u8], pid: u32) -> Option<String> {
    let tail = &stream[stream.len().saturating_sub(256 << 10)..];
    tail.split(|&b| b == b'\n').rev().find_map(|line| {
        let v: serde_json::Value = serde_json::from_slice(line).ok()?;
        if v.get("pid")?.as_u64()? != u64::from(pid) {
            return None;
        }
        let origin = v.get("origin")?.as_str()?;
        super::python::parse_origin(origin)?;
        Some(origin.to_string())
    })
}

/// `--ask`: questions on sdist-box's controlling terminal.
pub struct TerminalAsk {
    timeout: Duration,
    origin: Arc<Mutex<Option<OriginLookup>>>,
    always: Arc<Mutex<HashSet<String>>>,
    decisions: Arc<Mutex<Vec<Decision>>>,
    checks: Arc<ExecChecks>,
    queue: Mutex<Option<mpsc::Sender<Question>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl TerminalAsk {
    /// Start the asking thread. `tty` is the terminal's path (`/dev/tty`).
    pub fn start(tty: &str, timeout: Duration) -> TerminalAsk {
        let (tx, rx) = mpsc::channel::<Question>();
        let always = Arc::new(Mutex::new(HashSet::new()));
        let decisions = Arc::new(Mutex::new(Vec::new()));
        let origin = Arc::new(Mutex::new(None));
        let checks = Arc::new(ExecChecks::start());
        let shared = Shared {
            always: always.clone(),
            decisions: decisions.clone(),
            origin: origin.clone(),
            checks: checks.clone(),
        };
        let path = tty.to_string();
        let thread = std::thread::Builder::new()
            .name("sdist-box-ask".into())
            .spawn(move || ask_loop(&path, timeout, rx, &shared))
            .expect("spawn the --ask thread");
        TerminalAsk {
            timeout,
            origin,
            always,
            decisions,
            checks,
            queue: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
        }
    }
}

/// What the asking thread shares with the hook.
struct Shared {
    always: Arc<Mutex<HashSet<String>>>,
    decisions: Arc<Mutex<Vec<Decision>>>,
    origin: Arc<Mutex<Option<OriginLookup>>>,
    checks: Arc<ExecChecks>,
}

fn exec_program(target: &Target) -> Option<&Program> {
    match target {
        Target::Exec { program, .. } => program.as_ref(),
        _ => None,
    }
}

/// Unique within the process: names a decision for the exec check.
fn next_decision_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

impl DecisionHook for TerminalAsk {
    fn review(&self, call: &Call<'_>, ticket: Ticket) -> Review {
        // A process that runs something other than the program allowed
        // for it: it was killed; this call of its is refused.
        if self.checks.at_call(call.process.host_pid) {
            return Review::Now(Verdict::Denied, Some(libc::EACCES));
        }
        if !askable(call) {
            return Review::Now(call.verdict, call.errno);
        }
        let key = always_key(call.syscall, call.target);
        let target = describe_target(call.target);
        let program = exec_program(call.target);
        let always = key
            .as_ref()
            .is_some_and(|k| self.always.lock().unwrap().contains(k));
        if always {
            let id = next_decision_id();
            if let Some(p) = program {
                // Unchecked programs were said to be so when asked.
                let _ = self.checks.arm(call.process.host_pid, p, id);
            }
            self.decisions.lock().unwrap().push(Decision {
                syscall: call.syscall,
                target,
                program: program.map(Program::shown),
                ran_instead: None,
                process_chain: process_chain(call.process),
                answer: Answer::AllowedByAlways,
                verdict: Verdict::Allowed,
                reason: Answer::AllowedByAlways.describe(self.timeout.as_secs()),
                event: ticket.event,
                id,
            });
            return Review::Now(Verdict::Allowed, None);
        }
        let q = Question {
            syscall: call.syscall,
            key,
            target,
            program: program.cloned(),
            details: exec_details(call.target),
            tid: call.process.host_pid,
            chain: process_chain(call.process),
            sandbox_pid: call.process.pid,
            ticket,
        };
        match self.queue.lock().unwrap().as_ref() {
            Some(tx) => match tx.send(q) {
                Ok(()) => Review::Later,
                Err(mpsc::SendError(q)) => {
                    q.ticket.answer(false, libc::EACCES);
                    Review::Later
                }
            },
            None => {
                q.ticket.answer(false, libc::EACCES);
                Review::Later
            }
        }
    }

    fn python_stream(&self, lookup: OriginLookup) {
        *self.origin.lock().unwrap() = Some(lookup);
    }

    fn finish(&self) -> Vec<Decision> {
        drop(self.queue.lock().unwrap().take());
        if let Some(t) = self.thread.lock().unwrap().take() {
            let _ = t.join();
        }
        let mut decisions = std::mem::take(&mut *self.decisions.lock().unwrap());
        for s in self.checks.finish() {
            if let Some(d) = decisions.iter_mut().find(|d| d.id == s.decision) {
                d.ran_instead = Some(if s.killed {
                    format!("{} (killed)", s.ran)
                } else {
                    format!("{} (it had ended before it could be killed)", s.ran)
                });
            }
        }
        decisions
    }
}

/// The asking thread: one question at a time, in arrival order.
fn ask_loop(tty_path: &str, timeout: Duration, rx: mpsc::Receiver<Question>, shared: &Shared) {
    let Shared {
        always,
        decisions,
        origin,
        checks,
    } = shared;
    // Opened once, on the first question. O_NOCTTY: never acquire one.
    let mut tty: Option<Result<std::fs::File, String>> = None;
    for q in rx {
        // Recorded before the answer, so the exec check (armed first, while
        // the caller still waits) has its decision to report on.
        let record = |answer: Answer, q: &Question| {
            let id = next_decision_id();
            if let (true, Some(p)) = (answer.allows(), &q.program) {
                let _ = checks.arm(q.tid, p, id);
            }
            decisions.lock().unwrap().push(Decision {
                syscall: q.syscall,
                target: q.target.clone(),
                program: q.program.as_ref().map(Program::shown),
                ran_instead: None,
                process_chain: q.chain.clone(),
                answer,
                verdict: if answer.allows() {
                    Verdict::Allowed
                } else {
                    Verdict::Denied
                },
                reason: answer.describe(timeout.as_secs()),
                event: q.ticket.event,
                id,
            });
        };
        let always_now = q
            .key
            .as_ref()
            .is_some_and(|k| always.lock().unwrap().contains(k));
        if always_now {
            record(Answer::AllowedByAlways, &q);
            q.ticket.answer(true, 0);
            continue;
        }
        if !q.ticket.pending() {
            record(Answer::CallerGone, &q);
            continue;
        }
        let term = tty.get_or_insert_with(|| {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags(libc::O_NOCTTY | libc::O_CLOEXEC)
                .open(tty_path)
                .map_err(|e| e.to_string())
        });
        let answer = match term {
            Err(_) => Answer::NoTerminal,
            Ok(file) => {
                let lookup = origin.lock().unwrap().clone();
                // The audit hook writes its line before the call is made,
                // but our reader may not have it yet: give it a moment.
                let find = || q.sandbox_pid.and_then(|pid| lookup.as_ref()?(pid));
                let mut where_from = find();
                let until = Instant::now() + Duration::from_millis(150);
                while where_from.is_none() && lookup.is_some() && Instant::now() < until {
                    std::thread::sleep(Duration::from_millis(5));
                    where_from = find();
                }
                prompt(file, &q, where_from.as_deref(), timeout)
            }
        };
        if let (Answer::Always, Some(key)) = (answer, &q.key) {
            always.lock().unwrap().insert(key.clone());
        }
        record(answer, &q);
        if answer != Answer::CallerGone {
            q.ticket.answer(answer.allows(), libc::EACCES);
        }
    }
}

/// Whether what runs after an allowed exec of `p` can be checked; if not,
/// why (said under the question).
fn check_note(p: &Program) -> Result<(), &'static str> {
    match (&p.found, p.image) {
        (program::Found::Unresolved { .. }, _) => Err(
            "sdist-box could not resolve this program, so \"always\" is not offered and what runs cannot be checked",
        ),
        (_, None) => Err(
            "neither an ELF binary nor a #! script: sdist-box cannot check afterwards that this is what ran",
        ),
        _ => Ok(()),
    }
}

/// Show one question and read one key: `y` allow once, `n` deny, `a`
/// always (for this run). Anything else asks again; the time limit counts
/// from the first showing.
fn prompt(
    tty: &mut std::fs::File,
    q: &Question,
    origin: Option<&str>,
    timeout: Duration,
) -> Answer {
    use nix::sys::termios::{self, LocalFlags, SetArg};
    let what = match q.syscall {
        Syscall::Connect => format!("connect to {}", q.target),
        _ => format!("run {}", q.target),
    };
    let mut text = format!("\r\nsdist-box --ask: the sandbox wants to {what}\r\n");
    for (label, line) in &q.details {
        text.push_str(&format!("  {label:<8} {line}\r\n"));
    }
    if let Some(Err(why)) = q.program.as_ref().map(check_note) {
        text.push_str(&format!("  note     {why}\r\n"));
    }
    if !q.chain.is_empty() {
        text.push_str(&format!("  process  {}\r\n", q.chain.join(" → ")));
    }
    if let Some(o) = origin {
        text.push_str(&format!(
            "  source   {} (from the audit hook, which the package could forge)\r\n",
            crate::text::one_line(o, 200)
        ));
    }
    let always = match (q.syscall, &q.key, &q.program) {
        (_, None, _) => String::new(),
        (Syscall::Connect, Some(_), _) => "  [a] always for this destination (this run)".into(),
        (_, Some(_), Some(p)) => format!("  [a] always for this program ({}, this run)", p.shown()),
        (_, Some(_), None) => "  [a] always for this program (this run)".into(),
    };
    text.push_str(&format!(
        "  [y] allow once  [n] deny{always}  — deny in {} s: ",
        timeout.as_secs()
    ));
    // Keys typed before the question is shown do not answer it: discard
    // them, and switch to single keys, before showing it.
    let _ = termios::tcflush(&*tty, termios::FlushArg::TCIFLUSH);
    let saved = termios::tcgetattr(&*tty).ok();
    if let Some(s) = &saved {
        let mut raw = s.clone();
        // No ISIG either: Ctrl-C at the prompt answers "deny" instead of
        // killing sdist-box with the terminal left without echo.
        raw.local_flags
            .remove(LocalFlags::ICANON | LocalFlags::ECHO | LocalFlags::ISIG);
        let _ = termios::tcsetattr(&*tty, SetArg::TCSANOW, &raw);
    }
    let _ = tty.write_all(text.as_bytes());
    let _ = tty.flush();
    let deadline = Instant::now() + timeout;
    let answer = loop {
        let now = Instant::now();
        if now >= deadline {
            break Answer::TimedOut;
        }
        if !q.ticket.pending() {
            break Answer::CallerGone;
        }
        let slice = (deadline - now).min(Duration::from_millis(200));
        if !sys::poll_in(tty.as_fd(), slice) {
            continue;
        }
        let mut byte = [0u8; 1];
        match std::io::Read::read(tty, &mut byte) {
            Ok(1) => match byte[0].to_ascii_lowercase() {
                b'y' | b'o' => break Answer::AllowOnce,
                b'n' | b'd' | b'\r' | b'\n' | 0x1b | 0x03 => break Answer::Deny,
                b'a' if q.key.is_some() => break Answer::Always,
                _ => continue,
            },
            // EOF or error: the terminal went away.
            _ => break Answer::NoTerminal,
        }
    };
    if let Some(s) = &saved {
        let _ = termios::tcsetattr(&*tty, SetArg::TCSANOW, s);
    }
    let said = match answer {
        Answer::AllowOnce => "allowed once",
        Answer::Always => "allowed (always, this run)",
        Answer::Deny => "denied",
        Answer::TimedOut => "denied (no answer in time)",
        Answer::CallerGone => "the caller is gone",
        _ => "denied",
    };
    let _ = tty.write_all(format!("{said}\r\n").as_bytes());
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inet(port: u16) -> Target {
        Target::Socket {
            addr: Some(SockAddr::Inet {
                ip: "127.0.0.1".parse().unwrap(),
                port,
            }),
            socket_type: Some("stream".into()),
            dns_query: None,
        }
    }

    #[test]
    fn asks_about_denied_internet_connects_and_execs_only() {
        let p = ProcessInfo::default();
        let call = |syscall, target: &Target, verdict| {
            askable(&Call {
                syscall,
                target,
                process: &p,
                verdict,
                errno: None,
            })
        };
        assert!(call(Syscall::Connect, &inet(80), Verdict::Denied));
        assert!(!call(Syscall::Connect, &inet(53), Verdict::Faked));
        let unix = Target::Socket {
            addr: Some(SockAddr::Unix {
                path: "/run/x".into(),
                is_abstract: false,
            }),
            socket_type: None,
            dns_query: None,
        };
        assert!(!call(Syscall::Connect, &unix, Verdict::Allowed));
        let exec = Target::Exec {
            path: "/usr/bin/curl".into(),
            program: None,
            argv: vec!["curl".into()],
            env_names: vec![],
        };
        assert!(call(Syscall::Execve, &exec, Verdict::Allowed));
        let init = ProcessInfo {
            argv: vec![crate::sandbox::init::INIT_ARGV0.into()],
            ..ProcessInfo::default()
        };
        assert!(!askable(&Call {
            syscall: Syscall::Execve,
            target: &exec,
            process: &init,
            verdict: Verdict::Allowed,
            errno: None,
        }));
        assert_eq!(
            always_key(Syscall::Connect, &inet(80)),
            always_key(Syscall::Connect, &inet(80))
        );
        assert_ne!(
            always_key(Syscall::Connect, &inet(80)),
            always_key(Syscall::Connect, &inet(81))
        );
    }

    #[test]
    fn the_latest_origin_of_a_pid_is_found_in_the_stream() {
        let line = |pid: u32, origin: &str| {
            format!(
                "{{\"v\":1,\"pid\":{pid},\"ppid\":1,\"t\":1,\"seq\":0,\"ev\":\"x\",\"args\":[],\"origin\":\"{origin}\",\"stack\":[]}}\n"
            )
        };
        let stream = [
            line(5, "/build/src/setup.py:3"),
            line(6, "/build/src/other.py:9"),
            line(5, "/build/src/setup.py:12"),
            "{not json\n".to_string(),
        ]
        .concat();
        assert_eq!(
            latest_origin(stream.as_bytes(), 5).as_deref(),
            Some("/build/src/setup.py:12")
        );
        assert_eq!(
            latest_origin(stream.as_bytes(), 6).as_deref(),
            Some("/build/src/other.py:9")
        );
        assert_eq!(latest_origin(stream.as_bytes(), 7), None);
    }

    #[test]
    fn answers_say_what_they_did() {
        assert!(Answer::AllowOnce.allows() && Answer::Always.allows());
        assert!(!Answer::NoTerminal.allows() && !Answer::TimedOut.allows());
        assert_eq!(
            Answer::NoTerminal.describe(30),
            "denied: no terminal to ask"
        );
        assert!(Answer::TimedOut.describe(30).contains("30 s"));
    }
}
