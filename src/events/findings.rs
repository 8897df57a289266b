//! Pairing the two streams into findings.
//!
//! The kernel stream says what happened (every process, no way to hide);
//! the Python stream says where in the package it came from (but is
//! attacker-writable, so it only ever *adds* explanation). A finding is one
//! operation the package attempted: its kind, target, verdict, the layer
//! that decided, the origin `file:line` with that line's text (quoted only
//! from the sdist as shipped: [`super::sources`]), and the process chain.
//!
//! Evasion findings rank first: a kernel event from a hooked Python process
//! with no audit counterpart (ctypes, raw syscalls), a Python process that
//! ran without the hook (`-I`, `-S`, `-E`), a malformed or forged stream,
//! an origin that names a path leading out of the build tree.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::kernel::{KernelEvent, KernelLog, SockAddr, Syscall, Target, Verdict};
use super::python::{AuditEvent, Origin, ProcessStart, StreamIssue};
use super::sources::{Quoter, SourceTrees};

/// What kind of operation a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OpKind {
    FsRead,
    FsWrite,
    NetConnect,
    NetSend,
    NetBind,
    /// A socket of a network family (the degraded mode refuses them).
    NetSocket,
    Dns,
    Exec,
    Signal,
    Ptrace,
    NativeCode,
    DynamicCode,
    HookMissing,
    StreamTampered,
    /// The audit stream names a source file under the build tree that
    /// leads out of it (`..`, a link the build made): only tampering
    /// produces such a name, and sdist-box never opens it.
    ForgedOrigin,
    /// A `.pth` file in the wheel (runs at every interpreter start).
    WheelPth,
    /// A command or other entry point the wheel installs.
    WheelEntryPoint,
    /// Native code in the wheel: compiled in this build or shipped prebuilt.
    WheelNative,
    /// A wheel file that installs outside the project's own names.
    WheelLayout,
    /// `RECORD` (or the archive itself) does not match the wheel's members.
    WheelRecord,
    /// Two builds with the same inputs gave different wheels.
    NotReproducible,
    /// A limit of the sandbox was met: memory, disk, processes, CPU, wall
    /// clock, output size (see `report::resources`).
    Resource,
}

impl OpKind {
    pub fn name(self) -> &'static str {
        match self {
            OpKind::FsRead => "fs-read",
            OpKind::FsWrite => "fs-write",
            OpKind::NetConnect => "net-connect",
            OpKind::NetSend => "net-send",
            OpKind::NetBind => "net-bind",
            OpKind::NetSocket => "net-socket",
            OpKind::Dns => "dns",
            OpKind::Exec => "exec",
            OpKind::Signal => "signal",
            OpKind::Ptrace => "ptrace",
            OpKind::NativeCode => "native-code",
            OpKind::DynamicCode => "dynamic-code",
            OpKind::HookMissing => "hook-missing",
            OpKind::StreamTampered => "stream-tampered",
            OpKind::ForgedOrigin => "forged-origin",
            OpKind::WheelPth => "wheel-pth",
            OpKind::WheelEntryPoint => "wheel-entry-point",
            OpKind::WheelNative => "wheel-native",
            OpKind::WheelLayout => "wheel-layout",
            OpKind::WheelRecord => "wheel-record",
            OpKind::NotReproducible => "not-reproducible",
            OpKind::Resource => "resource",
        }
    }

    /// Findings about the built wheel rather than about what the build did.
    pub fn is_wheel(self) -> bool {
        matches!(
            self,
            OpKind::WheelPth
                | OpKind::WheelEntryPoint
                | OpKind::WheelNative
                | OpKind::WheelLayout
                | OpKind::WheelRecord
                | OpKind::NotReproducible
        )
    }
}

/// How serious a finding is; the order is the report's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    /// The package got around the explainer; the kernel still enforced.
    Evasion,
    /// The package tried something the sandbox refused.
    Blocked,
    /// Nothing was refused, but the wheel carries what should stop an
    /// unattended install until someone looked: a `.pth` file, prebuilt
    /// native code, a command shadowing a common one, files outside the
    /// project, a RECORD that does not match, a build that is not
    /// reproducible.
    Review,
    /// Allowed, but worth a reviewer's look (exec, dynamic code, ctypes).
    Notice,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindingVerdict {
    Blocked,
    Allowed,
}

/// Where in the sdist an operation came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceLocation {
    /// Relative to the sdist's top-level directory when inside it.
    pub file: String,
    pub line: u32,
    /// That line of the extracted source, trimmed (absent outside the tree).
    pub text: Option<String>,
    /// True when the file is part of the sdist.
    pub in_sdist: bool,
    /// `audit-hook`: from the audit hook, which the package could forge;
    /// `wheel-check`: the sdist file a wheel member was shipped as.
    pub supplied_by: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub severity: Severity,
    pub kind: OpKind,
    pub target: String,
    pub verdict: FindingVerdict,
    /// The layer that decided (`landlock (read-only rule set)`, …).
    pub decided_by: Option<String>,
    pub origin: Option<SourceLocation>,
    /// `python setup.py` → `sh -c …` → `curl …`.
    pub process_chain: Vec<String>,
    /// Which streams saw it: `kernel`, `audit-hook`.
    pub seen_by: Vec<&'static str>,
    /// One sentence.
    pub message: String,
    /// How many identical attempts this finding stands for.
    pub count: u64,
    /// For a blocked finding: the profile line(s) that would allow it (TOML,
    /// or a TOML comment when no profile setting can). Shown to the user to
    /// decide; never applied automatically.
    pub suggestion: Option<String>,
}

/// What the pairing needs to know about the sandbox.
#[derive(Debug, Clone)]
pub struct Context {
    /// The source tree inside the sandbox (`/build/src`).
    pub inside_src: PathBuf,
    /// Where origin lines may be quoted from (never the tree the build wrote).
    pub sources: SourceTrees,
    /// Paths the build may write (inside the sandbox).
    pub writable: Vec<PathBuf>,
    /// Paths the build may read (inside the sandbox).
    pub readable: Vec<PathBuf>,
    /// The sandbox's HOME (an empty tmpfs).
    pub home: PathBuf,
    /// The interpreter executables (to recognise Python processes).
    pub python_executables: Vec<String>,
    /// False in the degraded mode: no mount view, Landlock alone decides.
    pub mount_view: bool,
    /// The profile's network mode (who decided a network verdict).
    pub network: crate::sandbox::NetworkMode,
    /// The profile executes only beneath its exec list (`restrict-exec`).
    pub restrict_exec: bool,
    /// `[python] ctypes = "system"`: the directories libraries may come from.
    pub ctypes_allow: Option<Vec<PathBuf>>,
}

/// How long an audit event may precede its kernel counterpart.
const PAIR_WINDOW_NS: u64 = 10_000_000_000;

/// Sensitive paths: reading them is a finding even where it would succeed.
const SENSITIVE: &[&str] = &[
    ".ssh/",
    ".pypirc",
    ".netrc",
    ".aws/",
    ".config/gcloud",
    ".azure/",
    ".docker/config.json",
    ".kube/config",
    ".gnupg/",
    ".git-credentials",
    ".npmrc",
    ".cargo/credentials",
    "/etc/shadow",
    "/etc/sudoers",
    "/environ",
    ".bash_history",
    ".config/gh/",
];

fn is_sensitive(path: &str) -> bool {
    SENSITIVE.iter().any(|s| path.contains(s))
}

/// Persistence targets: writing them is always worth saying.
fn is_persistence(path: &str) -> bool {
    path.ends_with(".pth")
        || path.contains("/.bashrc")
        || path.contains("/.profile")
        || path.contains("/.zshrc")
        || path.contains("sitecustomize")
        || path.contains("usercustomize")
        || path.contains("/.config/autostart")
        || path.contains("/cron")
        || path.contains("/.ssh/authorized_keys")
}

struct Pairing<'a> {
    ctx: &'a Context,
    audit: &'a [AuditEvent],
    used: HashSet<usize>,
    /// Sandbox pid → its parent, from kernel events.
    parents: HashMap<u32, u32>,
    /// Sandbox pid → a short command line.
    commands: HashMap<u32, String>,
    hooked: HashSet<u32>,
    quoter: Quoter,
    /// Sandbox pid → when it first exec'd.
    first_exec: HashMap<u32, u64>,
    /// Sandbox pid → indices of its audit events, oldest first.
    by_pid: HashMap<u32, Vec<usize>>,
}

fn short_command(argv: &[String]) -> String {
    crate::text::one_line(&super::program::join_argv(argv), 120)
}

impl<'a> Pairing<'a> {
    fn location(&mut self, origin: &Origin) -> SourceLocation {
        let r = self.quoter.resolve(&origin.file);
        SourceLocation {
            file: r.file.clone(),
            line: origin.line,
            text: r.line(origin.line),
            in_sdist: r.in_sdist,
            supplied_by: "audit-hook",
        }
    }

    fn chain(&self, pid: u32) -> Vec<String> {
        let mut chain = Vec::new();
        let mut at = Some(pid);
        let mut seen = HashSet::new();
        while let Some(p) = at {
            if !seen.insert(p) || chain.len() >= 8 {
                break;
            }
            if let Some(cmd) = self.commands.get(&p) {
                chain.push(cmd.clone());
            }
            at = self.parents.get(&p).copied().filter(|&pp| pp > 1);
        }
        chain.reverse();
        chain
    }

    /// The audit event that explains a kernel event, if any.
    fn counterpart(&mut self, k: &KernelEvent) -> Option<usize> {
        let pid = k.process.pid?;
        let names: &[&str] = match (&k.syscall, &k.target) {
            (
                Syscall::Connect,
                Target::Socket {
                    addr: Some(SockAddr::Inet { port: 53, .. }),
                    ..
                },
            ) => &[
                "socket.getaddrinfo",
                "socket.gethostbyname",
                "socket.connect",
            ],
            (Syscall::Connect, _) => &[
                "socket.connect",
                "http.client.connect",
                "socket.getaddrinfo",
            ],
            (Syscall::Bind, _) => &["socket.bind"],
            (
                Syscall::Sendto | Syscall::Sendmsg | Syscall::Sendmmsg,
                Target::Socket {
                    dns_query: Some(_), ..
                },
            ) => &[
                "socket.getaddrinfo",
                "socket.gethostbyname",
                "socket.sendto",
                "socket.sendmsg",
            ],
            (Syscall::Sendto | Syscall::Sendmsg | Syscall::Sendmmsg, _) => &[
                "socket.sendto",
                "socket.sendmsg",
                "socket.connect",
                "http.client.send",
            ],
            (Syscall::Execve | Syscall::Execveat, _) => &[
                "subprocess.Popen",
                "os.system",
                "os.exec",
                "os.posix_spawn",
                "os.spawn",
            ],
            _ => return None,
        };
        let is_exec = matches!(k.syscall, Syscall::Execve | Syscall::Execveat);
        if is_exec {
            // The process asking to exec is a fork of (a fork of …) the
            // Python process that spawned it: its spawn event is the last
            // one before that fork first exec'd. One os.system may explain
            // several execs (sh, then curl), so events are reused.
            let own = self
                .audit
                .iter()
                .rposition(|a| a.pid == pid && a.event == "os.exec" && a.t_ns <= k.t_ns);
            return own.or_else(|| self.ancestor_spawn(pid, k.t_ns));
        }
        // A connect or datagram to an address pairs only with an audit event
        // naming that address, once: a second kernel connect with no audit
        // event of its own is exactly what ctypes looks like.
        let wanted: Option<(String, u16)> = match (&k.syscall, &k.target) {
            (
                Syscall::Connect | Syscall::Sendto,
                Target::Socket {
                    addr: Some(SockAddr::Inet { ip, port }),
                    dns_query: None,
                    ..
                },
            ) if *port != 53 => Some((ip.to_string(), *port)),
            _ => None,
        };
        let dns = matches!(
            &k.target,
            Target::Socket {
                dns_query: Some(_),
                ..
            }
        );
        let list = self.by_pid.get(&pid)?;
        let end = list.partition_point(|&i| self.audit[i].t_ns <= k.t_ns);
        let mut fallback = None;
        // Newest first: the hook fires just before the operation.
        for &i in list[..end].iter().rev() {
            let a = &self.audit[i];
            if k.t_ns - a.t_ns > PAIR_WINDOW_NS {
                break;
            }
            if !names.contains(&a.event.as_str()) {
                continue;
            }
            if let Some((ip, port)) = &wanted {
                if self.used.contains(&i) {
                    continue;
                }
                let addr = a
                    .args
                    .iter()
                    .find_map(|v| v.as_array().filter(|t| t.len() >= 2));
                let matches = addr.is_some_and(|t| {
                    t[0].as_str() == Some(ip.as_str()) && t[1].as_u64() == Some(*port as u64)
                });
                if a.event.starts_with("socket.") && !matches {
                    continue;
                }
            }
            // One lookup sends several datagrams (A, AAAA, retries), so DNS
            // events may explain more than one kernel event.
            if dns || !self.used.contains(&i) {
                self.used.insert(i);
                return Some(i);
            }
            fallback.get_or_insert(i);
        }
        fallback
    }

    /// For a process that did not explain itself (curl, sh), the audit
    /// event of the nearest Python ancestor that started it.
    fn ancestor_origin(&self, pid: u32) -> Option<&'a AuditEvent> {
        self.ancestor_spawn(pid, u64::MAX).map(|i| &self.audit[i])
    }

    /// The index of the spawn event, in the nearest Python ancestor of
    /// `pid`, that started the branch `pid` is on: the ancestor's last
    /// spawn before its child on that path first exec'd.
    fn ancestor_spawn(&self, pid: u32, not_after: u64) -> Option<usize> {
        let mut child = pid;
        let mut at = self.parents.get(&pid).copied();
        for _ in 0..8 {
            let p = at?;
            let bound = self
                .first_exec
                .get(&child)
                .copied()
                .unwrap_or(not_after)
                .min(not_after);
            let spawn = self.audit.iter().rposition(|a| {
                a.pid == p
                    && a.t_ns <= bound
                    && matches!(
                        a.event.as_str(),
                        "subprocess.Popen"
                            | "os.system"
                            | "os.posix_spawn"
                            | "os.spawn"
                            | "os.exec"
                    )
            });
            if spawn.is_some() {
                return spawn;
            }
            child = p;
            at = self.parents.get(&p).copied();
        }
        None
    }

    fn is_python(&self, k: &KernelEvent) -> bool {
        let exe = k.process.exe.as_deref().unwrap_or("");
        let base = exe.rsplit('/').next().unwrap_or("");
        base.starts_with("python") || self.ctx.python_executables.iter().any(|p| p == exe)
    }
}

fn kernel_kind(k: &KernelEvent) -> Option<OpKind> {
    match (&k.syscall, &k.target) {
        (
            _,
            Target::Socket {
                dns_query: Some(_), ..
            },
        ) => Some(OpKind::Dns),
        (Syscall::Socket, _) => Some(OpKind::NetSocket),
        // Unix sockets are the build's own business, except one the
        // supervisor refused (an abstract address: the host's, when the
        // build shares the host's network namespace; any path in the
        // degraded mode).
        (_, Target::Socket { addr: Some(a), .. }) if !a.is_inet() => match k.syscall {
            Syscall::Connect if k.verdict == Verdict::Denied => Some(OpKind::NetConnect),
            Syscall::Bind if k.verdict == Verdict::Denied => Some(OpKind::NetBind),
            Syscall::Sendto | Syscall::Sendmsg | Syscall::Sendmmsg
                if k.verdict == Verdict::Denied =>
            {
                Some(OpKind::NetSend)
            }
            _ => None,
        },
        (
            Syscall::Connect,
            Target::Socket {
                addr: Some(SockAddr::Inet { port: 53, .. }),
                ..
            },
        ) if k.verdict == Verdict::Faked => {
            None // the resolver's connect; its datagram is the finding
        }
        (Syscall::Connect, _) => Some(OpKind::NetConnect),
        // Bytes on a TCP connection the supervisor let through (loopback,
        // allowlist modes): the connect was the finding. Python raises no
        // audit event for send/sendall, so these would look like evasion.
        (
            Syscall::Sendto | Syscall::Sendmsg | Syscall::Sendmmsg,
            Target::Socket {
                socket_type: Some(t),
                ..
            },
        ) if t == "stream" && k.verdict == Verdict::Allowed => None,
        (Syscall::Bind, _) => Some(OpKind::NetBind),
        (Syscall::Listen, _) if k.verdict == Verdict::Denied => Some(OpKind::NetBind),
        (Syscall::Listen, _) => None,
        (Syscall::Sendto | Syscall::Sendmsg | Syscall::Sendmmsg, _) => Some(OpKind::NetSend),
        (Syscall::Execve | Syscall::Execveat, _) => Some(OpKind::Exec),
        _ => None,
    }
}

fn kernel_target(k: &KernelEvent) -> String {
    match &k.target {
        Target::Socket {
            dns_query: Some(q), ..
        } => format!("DNS query {}", crate::text::one_line(q, 200)),
        Target::Socket { addr: Some(a), .. } => a.to_string(),
        Target::Socket { .. } => "an unknown peer".into(),
        // The program the kernel ran, not the argv[0] the package chose.
        Target::Exec {
            argv,
            path,
            program,
            ..
        } => super::program::exec_line(path, program.as_ref(), argv, 200),
        Target::File { path, .. } => crate::text::one_line(path, 200),
        Target::Unknown => "?".into(),
    }
}

/// Join the streams. `kernel` may be absent (no supervisor), `audit` empty.
pub fn pair(
    ctx: &Context,
    kernel: Option<&KernelLog>,
    audit: &[AuditEvent],
    starts: &[ProcessStart],
    issues: &[StreamIssue],
) -> Vec<Finding> {
    let events: &[KernelEvent] = kernel.map(|k| k.events.as_slice()).unwrap_or(&[]);
    let mut p = Pairing::new(ctx, audit, starts, events);
    let mut findings: Vec<Finding> = Vec::new();
    let mut unhooked_reported: HashSet<u32> = HashSet::new();

    // 1. Kernel events, each explained by the audit stream where possible.
    for k in events {
        findings.extend(p.kernel_finding(k, &mut unhooked_reported));
    }
    // 2. Python processes seen by the kernel that never started the hook.
    for k in events {
        findings.extend(p.hook_missing(k, &mut unhooked_reported));
    }
    // 2b. Execs allowed at the --ask prompt after which another program
    //     ran: the package changed what the path named after the question.
    let decisions = kernel.map(|k| k.decisions.as_slice()).unwrap_or(&[]);
    findings.extend(decisions.iter().filter_map(ran_instead));
    // 3. Audit-only operations: the file system (Landlock and the mount
    //    view deny those with a bare EACCES/ENOENT), signals, native code.
    for a in audit {
        if let Some(mut f) = audit_finding(&mut p, a) {
            if f.verdict == FindingVerdict::Blocked {
                f.suggestion = suggest_audit(ctx, &f);
            }
            findings.push(f);
        }
    }

    // 4. The stream itself.
    findings.extend(issues.iter().map(stream_finding));
    findings.extend(forged_origins(&mut p));

    merge(findings)
}

impl<'a> Pairing<'a> {
    /// The pairing's indexes: each pid's audit events in time order, its
    /// parent, its command (after an exec, the program that ran) and its
    /// first exec.
    fn new(
        ctx: &'a Context,
        audit: &'a [AuditEvent],
        starts: &[ProcessStart],
        events: &[KernelEvent],
    ) -> Pairing<'a> {
        let mut p = Pairing {
            ctx,
            audit,
            used: HashSet::new(),
            parents: HashMap::new(),
            commands: HashMap::new(),
            hooked: starts.iter().map(|s| s.pid).collect(),
            quoter: Quoter::new(&ctx.inside_src, &ctx.sources),
            first_exec: HashMap::new(),
            by_pid: HashMap::new(),
        };
        for (i, a) in audit.iter().enumerate() {
            p.by_pid.entry(a.pid).or_default().push(i);
        }
        for list in p.by_pid.values_mut() {
            list.sort_by_key(|&i| audit[i].t_ns);
        }
        for k in events {
            if let (Some(pid), Some(ppid)) = (k.process.pid, k.process.ppid) {
                p.parents.entry(pid).or_insert(ppid);
            }
            if let Some(pid) = k.process.pid
                && !k.process.argv.is_empty()
            {
                p.commands
                    .entry(pid)
                    .or_insert_with(|| short_command(&k.process.argv));
            }
        }
        for s in starts {
            if let Some(ppid) = s.ppid {
                p.parents.entry(s.pid).or_insert(ppid);
            }
            if !s.argv.is_empty() {
                p.commands
                    .entry(s.pid)
                    .or_insert_with(|| short_command(&s.argv));
            }
        }
        for k in events {
            if let (Some(pid), Syscall::Execve | Syscall::Execveat) = (k.process.pid, k.syscall) {
                p.first_exec.entry(pid).or_insert(k.t_ns);
            }
        }
        // After an exec, the process is the new command (named by the program
        // that ran, when argv[0] says otherwise).
        for k in events {
            if let (
                Some(pid),
                Target::Exec {
                    argv,
                    path,
                    program,
                    ..
                },
            ) = (k.process.pid, &k.target)
                && !argv.is_empty()
            {
                p.commands.insert(
                    pid,
                    super::program::exec_line(path, program.as_ref(), argv, 120),
                );
            }
        }
        p
    }

    /// Finding 1: a kernel event, explained by its audit event where one
    /// matches (and by what the process did last where none does).
    fn kernel_finding(
        &mut self,
        k: &KernelEvent,
        unhooked_reported: &mut HashSet<u32>,
    ) -> Option<Finding> {
        let ctx = self.ctx;
        let kind = kernel_kind(k)?;
        let pid = k.process.pid.unwrap_or(0);
        let blocked = k.verdict != Verdict::Allowed;
        let verdict = if blocked {
            FindingVerdict::Blocked
        } else {
            FindingVerdict::Allowed
        };
        let decided_by = kernel_decided_by(ctx, kind, k, blocked);
        let counterpart = self.counterpart(k);
        let mut seen_by = vec!["kernel"];
        let (origin, mut severity, mut message) = match counterpart {
            Some(i) => {
                seen_by.push("audit-hook");
                self.explained(i, blocked)
            }
            None => self.unexplained(k, kind, pid, blocked, unhooked_reported),
        };
        if kind == OpKind::Exec
            && k.process.argv.first().map(String::as_str) == Some(crate::sandbox::init::INIT_ARGV0)
        {
            // The command sdist-box itself started.
            return None;
        }
        if message.is_empty() {
            message = kernel_message(kind, blocked, k);
        }
        if severity == Severity::Notice && blocked {
            severity = Severity::Blocked;
        }
        Some(Finding {
            severity,
            kind,
            target: kernel_target(k),
            verdict,
            decided_by,
            origin,
            process_chain: self.chain(pid),
            seen_by,
            message,
            count: 1,
            suggestion: if blocked {
                suggest_kernel(ctx, kind, k)
            } else {
                None
            },
        })
    }

    /// A kernel event with its audit event: that event's origin.
    fn explained(&mut self, i: usize, blocked: bool) -> (Option<SourceLocation>, Severity, String) {
        let a = &self.audit[i];
        let origin = a.origin.as_ref().map(|o| self.location(o));
        (
            origin,
            if blocked {
                Severity::Blocked
            } else {
                Severity::Notice
            },
            String::new(),
        )
    }

    /// A kernel event no audit event explains: evasion from a hooked or an
    /// unhooked Python process, or a non-Python process placed by the
    /// nearest audited ancestor.
    fn unexplained(
        &mut self,
        k: &KernelEvent,
        kind: OpKind,
        pid: u32,
        blocked: bool,
        unhooked_reported: &mut HashSet<u32>,
    ) -> (Option<SourceLocation>, Severity, String) {
        // Python raises no audit event for listen: not an evasion.
        let python = self.is_python(k) && k.syscall != Syscall::Listen;
        if python && self.hooked.contains(&pid) && kind == OpKind::NetSocket {
            // The hook does not report creating a socket; the
            // newest origin of that process is the best guess.
            let last = self
                .audit
                .iter()
                .rev()
                .find(|a| a.pid == pid && a.t_ns <= k.t_ns && a.origin.is_some())
                .and_then(|a| a.origin.clone())
                .map(|o| self.location(&o));
            (last, Severity::Blocked, String::new())
        } else if python && self.hooked.contains(&pid) {
            // The last thing the hook saw that process do is the best
            // guess at where it happened (ctypes lookups, usually).
            let last = self
                .audit
                .iter()
                .rev()
                .find(|a| a.pid == pid && a.t_ns <= k.t_ns && a.origin.is_some())
                .and_then(|a| a.origin.clone())
                .map(|o| self.location(&o));
            (
                last,
                Severity::Evasion,
                format!(
                    "a Python process with the audit hook made this {} call with no matching audit event: ctypes or a raw system call got around the hook",
                    kind.name()
                ),
            )
        } else if python && kind != OpKind::Exec {
            unhooked_reported.insert(pid);
            let spawned_at = self
                .ancestor_origin(pid)
                .and_then(|a| a.origin.clone())
                .map(|o| self.location(&o));
            (
                spawned_at,
                Severity::Evasion,
                "a Python process running without the audit hook (started with -I, -S or -E, or with sitecustomize replaced)".to_string(),
            )
        } else {
            let origin = self
                .ancestor_origin(pid)
                .and_then(|a| a.origin.clone())
                .map(|o| self.location(&o));
            (
                origin,
                if blocked {
                    Severity::Blocked
                } else {
                    Severity::Notice
                },
                String::new(),
            )
        }
    }

    /// Finding 2: a Python interpreter the kernel saw started with flags
    /// that skip the audit hook.
    fn hook_missing(
        &mut self,
        k: &KernelEvent,
        unhooked_reported: &mut HashSet<u32>,
    ) -> Option<Finding> {
        let pid = k.process.pid?;
        let Target::Exec {
            path,
            argv,
            program,
            ..
        } = &k.target
        else {
            return None;
        };
        // By the name it was called and by the program that ran: a
        // symlink named `cc` to python is python.
        let resolved = program.as_ref().and_then(|p| p.path()).unwrap_or("");
        let looks_python = [path.as_str(), resolved]
            .iter()
            .any(|p| p.rsplit('/').next().unwrap_or("").starts_with("python"));
        let flags_off = argv
            .iter()
            .skip(1)
            .take_while(|a| a.starts_with('-'))
            .any(|a| {
                a.starts_with("-I")
                    || a.starts_with("-S")
                    || a.starts_with("-E")
                    || (a.len() > 1
                        && !a.starts_with("--")
                        && (a.contains('I') || a.contains('S') || a.contains('E')))
            });
        if !(looks_python && flags_off && !unhooked_reported.contains(&pid)) {
            return None;
        }
        unhooked_reported.insert(pid);
        let origin = self
            .ancestor_origin(pid)
            .or_else(|| {
                self.audit.iter().rev().find(|a| {
                    Some(a.pid) == k.process.pid.or(self.parents.get(&pid).copied())
                        && a.event.starts_with("subprocess")
                })
            })
            .and_then(|a| a.origin.clone())
            .map(|o| self.location(&o));
        Some(Finding {
            severity: Severity::Evasion,
            kind: OpKind::HookMissing,
            target: super::program::exec_line(path, program.as_ref(), argv, 200),
            verdict: FindingVerdict::Allowed,
            decided_by: None,
            origin,
            process_chain: self.chain(pid),
            seen_by: vec!["kernel"],
            message: "a Python interpreter was started with flags that skip the audit hook (-I, -S or -E); the kernel layers still applied".into(),
            count: 1,
            suggestion: None,
        })
    }
}

/// Finding 2b: an exec allowed at the `--ask` prompt after which another
/// program ran (the package changed what the path named).
fn ran_instead(d: &super::ask::Decision) -> Option<Finding> {
    let ran = d.ran_instead.as_ref()?;
    Some(Finding {
        severity: Severity::Evasion,
        kind: OpKind::Exec,
        target: ran.clone(),
        verdict: FindingVerdict::Allowed,
        decided_by: Some("sdist-box --ask, checking after the exec".into()),
        origin: None,
        process_chain: d.process_chain.clone(),
        seen_by: vec!["kernel"],
        message: format!(
            "this program ran instead of {}, which was allowed at the --ask prompt: the package changed what the path names between the question and the exec",
            d.program.as_deref().unwrap_or("the program shown")
        ),
        count: 1,
        suggestion: None,
    })
}

/// Finding 4: what is wrong with the audit stream itself.
fn stream_finding(issue: &StreamIssue) -> Finding {
    let (target, message) = match issue {
        StreamIssue::Malformed { line_no, excerpt } => (
            format!("line {line_no}: {}", crate::text::one_line(excerpt, 80)),
            "the audit stream carries a line the hook never writes: forged or corrupted".to_string(),
        ),
        StreamIssue::SequenceGap { pid, expected, got } => (
            format!("pid {pid}: expected #{expected}, got #{got}"),
            "audit events are missing or out of order: the stream was tampered with or closed early".to_string(),
        ),
        StreamIssue::TooLong { line_no } => (
            format!("line {line_no}"),
            "the audit stream carries an over-long line: forged".to_string(),
        ),
        StreamIssue::NoStart { pid } => (
            format!("pid {pid}"),
            "events from a process that never announced the hook: forged lines".to_string(),
        ),
    };
    Finding {
        severity: Severity::Evasion,
        kind: OpKind::StreamTampered,
        target,
        verdict: FindingVerdict::Allowed,
        decided_by: None,
        origin: None,
        process_chain: vec![],
        seen_by: vec!["audit-hook"],
        message,
        count: 1,
        suggestion: None,
    }
}

/// Who decided a kernel event: the degraded mode's supervisor, a person
/// at the `--ask` prompt, or the layer [`decided_by_kernel`] names.
fn kernel_decided_by(
    ctx: &Context,
    kind: OpKind,
    k: &KernelEvent,
    blocked: bool,
) -> Option<String> {
    let decided_by = match kind {
        OpKind::NetSocket => Some("seccomp supervisor (degraded mode: no network namespace, so no network socket may be made)".to_string()),
        _ if !ctx.mount_view && matches!(&k.target, Target::Socket { addr: Some(SockAddr::Unix { .. }), .. }) => Some("seccomp supervisor (degraded mode: the host's unix sockets are visible by path, so none may be reached)".to_string()),
        _ => decided_by_kernel(ctx, kind, blocked),
    };
    // A person decided at the --ask prompt: say so, whatever the kind.
    let decided_by = match &k.decided_at_prompt {
        Some(said) => Some(format!("{said} (sdist-box --ask)")),
        None => decided_by,
    };
    // An executable with no path (see anon_exec.rs).
    match anonymous_exec(k) && blocked {
        true => Some("seccomp supervisor (a file with no path: no Landlock rule can name it; the profile restricts exec)".into()),
        false => decided_by,
    }
}

/// Is this kernel event an exec of a file with no path (see anon_exec.rs)?
fn anonymous_exec(k: &KernelEvent) -> bool {
    matches!(&k.target, Target::Exec { program, .. }
        if super::anon_exec::is_anonymous(program.as_ref()))
}

/// The message of a kernel finding nothing else explained.
fn kernel_message(kind: OpKind, blocked: bool, k: &KernelEvent) -> String {
    let anonymous = anonymous_exec(k);
    match (kind, blocked) {
        (OpKind::Exec, true) if anonymous => "an executable with no path (anonymous memory: a memfd or a deleted file) was refused: the profile executes only the files it lists".into(),
        (OpKind::Exec, false) if anonymous => "an exec of anonymous memory: a program with no path (a memfd or a deleted file) ran, not a file of the sandbox".into(),
        (OpKind::Dns, _) => "a DNS lookup was attempted and refused".into(),
        (OpKind::Exec, true) if k.decided_at_prompt.is_some() => "a program was refused".into(),
        (OpKind::Exec, true) => {
            "a program the profile may not execute was started, and refused".into()
        }
        (OpKind::Exec, false) => "a program was executed".into(),
        (OpKind::NetSocket, _) => {
            "a network socket was refused (the degraded mode allows only unix sockets)".into()
        }
        (_, true) => format!("a {} was attempted and refused", kind.name()),
        (_, false) => format!("a {} was allowed", kind.name()),
    }
}

/// Distinct forged origin files reported one by one; past this, one
/// finding counts the rest (a stream naming thousands is one attack).
const MAX_FORGED_SHOWN: usize = 32;

/// One finding per origin file the audit stream claimed under the build
/// tree that leads out of it, counted over every event (origins and stacks,
/// whether or not the event made a finding of its own).
fn forged_origins(p: &mut Pairing<'_>) -> Vec<Finding> {
    // Claimed file → (why, events naming it, the first such event's pid).
    let mut forged: BTreeMap<String, (&'static str, u64, u32)> = BTreeMap::new();
    for a in p.audit {
        let named = a.origin.iter().chain(&a.stack).map(|o| o.file.as_str());
        let mut seen_here: HashSet<&str> = HashSet::new();
        for file in named {
            if !seen_here.insert(file) {
                continue;
            }
            if let Some(why) = p.quoter.resolve(file).forged {
                forged.entry(file.to_string()).or_insert((why, 0, a.pid)).1 += 1;
            }
        }
    }
    let decided_by = "sdist-box (source lines are read only from the sdist as shipped, beneath its top-level directory, with no link or `..` at any depth; this path was not opened)";
    let mut out: Vec<Finding> = Vec::new();
    let mut rest = (0usize, 0u64);
    for (file, (why, count, pid)) in forged {
        if out.len() >= MAX_FORGED_SHOWN {
            rest.0 += 1;
            rest.1 += count;
            continue;
        }
        out.push(Finding {
            severity: Severity::Evasion,
            kind: OpKind::ForgedOrigin,
            target: crate::text::one_line(&file, 200),
            verdict: FindingVerdict::Blocked,
            decided_by: Some(decided_by.into()),
            origin: None,
            process_chain: p.chain(pid),
            seen_by: vec!["audit-hook"],
            message: format!(
                "the audit stream names this as the source file of an event, under the build tree, but {why}: code compiled under a made-up file name or a forged stream line, aimed at making sdist-box quote a file of the host"
            ),
            count,
            suggestion: None,
        });
    }
    if rest.0 > 0 {
        out.push(Finding {
            severity: Severity::Evasion,
            kind: OpKind::ForgedOrigin,
            target: format!("{} more forged origin file(s)", rest.0),
            verdict: FindingVerdict::Blocked,
            decided_by: Some(decided_by.into()),
            origin: None,
            process_chain: vec![],
            seen_by: vec!["audit-hook"],
            message: "the audit stream names further source files that lead out of the build tree (not listed one by one)".into(),
            count: rest.1,
            suggestion: None,
        });
    }
    out
}

fn arg_str(a: &AuditEvent, i: usize) -> Option<&str> {
    a.args.get(i).and_then(|v| v.as_str())
}

fn beneath(path: &str, roots: &[PathBuf]) -> bool {
    let p = Path::new(path);
    roots.iter().any(|r| p.starts_with(r))
}

/// May the build write `path`? The most specific rule decides: a
/// read-only bind inside a writable directory (a profile's `read` path
/// under `/tmp`) is read-only.
fn writable(path: &str, ctx: &Context) -> bool {
    let p = Path::new(path);
    let depth = |roots: &[PathBuf]| {
        roots
            .iter()
            .filter(|r| p.starts_with(r))
            .map(|r| r.components().count())
            .max()
    };
    match (depth(&ctx.writable), depth(&ctx.readable)) {
        (Some(w), Some(r)) => w >= r,
        (Some(_), None) => true,
        _ => false,
    }
}

/// Normalize a path lexically (the hook reports it as passed).
fn absolute(cwd: &Path, path: &str) -> String {
    let joined = if path.starts_with('/') {
        PathBuf::from(path)
    } else {
        cwd.join(path)
    };
    let mut out = PathBuf::from("/");
    for c in joined.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::Normal(n) => out.push(n),
            _ => {}
        }
    }
    out.display().to_string()
}

fn audit_finding(p: &mut Pairing<'_>, a: &AuditEvent) -> Option<Finding> {
    let ctx = p.ctx;
    let origin = a.origin.as_ref().map(|o| p.location(o));
    let judged = match a.event.as_str() {
        "open" => judge_open(ctx, a)?,
        "os.kill" | "os.killpg" => judge_kill(a)?,
        "ctypes.dlopen" => judge_dlopen(ctx, a)?,
        "ctypes.dlsym" => judge_dlsym(a)?,
        "exec" | "compile" => judge_dynamic_code(a)?,
        _ => return None,
    };
    Some(Finding {
        severity: judged.severity,
        kind: judged.kind,
        target: judged.target,
        verdict: judged.verdict,
        decided_by: judged.decided_by,
        origin,
        process_chain: p.chain(a.pid),
        seen_by: vec!["audit-hook"],
        message: judged.message,
        count: 1,
        suggestion: None,
    })
}

/// What an audit event alone says: the finding but for where and who.
struct Judged {
    kind: OpKind,
    target: String,
    verdict: FindingVerdict,
    decided_by: Option<String>,
    message: String,
    severity: Severity,
}

impl Judged {
    fn new(
        kind: OpKind,
        target: String,
        verdict: FindingVerdict,
        decided_by: Option<String>,
        message: String,
        severity: Severity,
    ) -> Judged {
        Judged {
            kind,
            target,
            verdict,
            decided_by,
            message,
            severity,
        }
    }
}

/// `open`: a write outside the writable tree, a read outside what the build
/// may see, a credential probed, a persistence file in the private HOME.
fn judge_open(ctx: &Context, a: &AuditEvent) -> Option<Judged> {
    let raw = arg_str(a, 0)?;
    let path = absolute(&ctx.inside_src, raw);
    let mode = arg_str(a, 1).unwrap_or("r");
    let flags = a.args.get(2).and_then(|v| v.as_i64()).unwrap_or(0);
    let write = mode.contains(['w', 'a', 'x', '+'])
        || flags & (libc::O_WRONLY | libc::O_RDWR | libc::O_CREAT) as i64 != 0;
    let display = if path.starts_with(&ctx.home.display().to_string()) {
        path.replacen(&ctx.home.display().to_string(), "~", 1)
    } else {
        path.clone()
    };
    if write {
        if writable(&path, ctx) {
            if path.starts_with(&ctx.home.display().to_string()) && is_persistence(&path) {
                return Some(Judged::new(
                    OpKind::FsWrite,
                    display,
                    FindingVerdict::Allowed,
                    Some("the sandbox's HOME is a throw-away tmpfs".into()),
                    "a persistence file was written in the sandbox's private HOME (discarded after the build)".into(),
                    Severity::Notice,
                ));
            }
            return None;
        }
        let decided = match (beneath(&path, &ctx.readable), ctx.mount_view) {
            (true, true) => "read-only mount and landlock (read-only rule set)",
            (true, false) => "landlock (read-only rule set)",
            (false, true) => "mount view (path not in the sandbox) and landlock (no rule)",
            (false, false) => "landlock (no rule; degraded mode: the path is visible)",
        };
        return Some(Judged::new(
            OpKind::FsWrite,
            display,
            FindingVerdict::Blocked,
            Some(decided.into()),
            if is_persistence(&path) {
                "a persistence file (.pth, shell rc, autostart) outside the build tree was targeted and refused".into()
            } else {
                "a write outside the build tree was refused".into()
            },
            Severity::Blocked,
        ));
    }
    let readable = beneath(&path, &ctx.readable) || beneath(&path, &ctx.writable);
    if !readable {
        return Some(Judged::new(
            OpKind::FsRead,
            display,
            FindingVerdict::Blocked,
            Some(if ctx.mount_view {
                "mount view (path not in the sandbox) and landlock (no rule)".into()
            } else {
                "landlock (no rule; degraded mode: the path is visible)".into()
            }),
            "a read outside what the build may see was refused".into(),
            Severity::Blocked,
        ));
    }
    if is_sensitive(&path) {
        let in_home = path.starts_with(&ctx.home.display().to_string());
        return Some(Judged::new(
            OpKind::FsRead,
            display,
            if in_home {
                FindingVerdict::Blocked
            } else {
                FindingVerdict::Allowed
            },
            Some(if in_home {
                "mount view (the sandbox's HOME is empty: the user's secrets are not there)".into()
            } else {
                "landlock (read rule)".into()
            }),
            "a credential file was read or probed".into(),
            if in_home {
                Severity::Blocked
            } else {
                Severity::Notice
            },
        ));
    }
    None
}

/// `os.kill`: a signal to the sandbox's init or beyond, or to the build's own.
fn judge_kill(a: &AuditEvent) -> Option<Judged> {
    let pid = a.args.first().and_then(|v| v.as_i64()).unwrap_or(0);
    let sig = a.args.get(1).and_then(|v| v.as_i64()).unwrap_or(0);
    if sig == 0 {
        return None;
    }
    let outside = pid <= 1;
    Some(Judged::new(
        OpKind::Signal,
        format!("signal {sig} to pid {pid}"),
        if outside {
            FindingVerdict::Blocked
        } else {
            FindingVerdict::Allowed
        },
        Some(if outside {
            "pid namespace (the sandbox's init ignores signals; nothing outside is visible) and landlock signal scoping".into()
        } else {
            "pid namespace (only the build's own processes are reachable)".into()
        }),
        "a process tried to signal another process".into(),
        if outside {
            Severity::Blocked
        } else {
            Severity::Notice
        },
    ))
}

/// `ctypes.dlopen` of a library by path outside the allowed directories.
fn judge_dlopen(ctx: &Context, a: &AuditEvent) -> Option<Judged> {
    // Only a library named by path can be outside the allowed
    // directories; the hook refused it (the same rule, re-applied
    // here rather than trusted from the stream).
    let allow = ctx.ctypes_allow.as_ref()?;
    let name = arg_str(a, 0)?;
    if !name.contains('/') {
        return None;
    }
    let path = absolute(&ctx.inside_src, name);
    if beneath(&path, allow) {
        return None;
    }
    Some(Judged::new(
        OpKind::NativeCode,
        format!("ctypes load of {}", crate::text::one_line(&path, 200)),
        FindingVerdict::Blocked,
        Some("audit hook (profile: [python] ctypes = \"system\")".into()),
        "ctypes tried to load a library from outside the build environment, the interpreter and the system library directories; the audit hook refused it".into(),
        Severity::Blocked,
    ))
}

/// `ctypes.dlsym` of a process-tampering or system-call function.
fn judge_dlsym(a: &AuditEvent) -> Option<Judged> {
    let name = a.args.get(1).and_then(|v| v.as_str()).unwrap_or("");
    let dangerous = [
        "ptrace",
        "process_vm_writev",
        "process_vm_readv",
        "syscall",
        "connect",
        "sendto",
        "execve",
        "socket",
    ];
    if name == "ptrace" || name.starts_with("process_vm") {
        return Some(Judged::new(
            OpKind::Ptrace,
            format!("libc {name}()"),
            FindingVerdict::Blocked,
            Some("seccomp deny filter (ptrace, process_vm_*: EPERM)".into()),
            "native code looked up a process-tampering function".into(),
            Severity::Blocked,
        ));
    }
    if dangerous.contains(&name) {
        return Some(Judged::new(
            OpKind::NativeCode,
            format!("libc {name}() through ctypes"),
            FindingVerdict::Allowed,
            None,
            "ctypes looked up a system-call wrapper: calls through it bypass the audit hook (the kernel stream still sees them)".into(),
            Severity::Notice,
        ));
    }
    None
}

/// `exec`/`compile` of code the package built as a string.
fn judge_dynamic_code(a: &AuditEvent) -> Option<Judged> {
    // Only reported by the hook for code given as a string by the
    // package (not for module imports).
    let what = a.args.first().and_then(|v| v.as_str()).unwrap_or("");
    if !what.starts_with("sha256:") {
        return None;
    }
    Some(Judged::new(
        OpKind::DynamicCode,
        format!("{} of a string ({what})", a.event),
        FindingVerdict::Allowed,
        None,
        "code built at run time was executed (an obfuscated payload?)".into(),
        Severity::Notice,
    ))
}

/// Which layer decided a kernel-stream finding, by the profile's network mode.
fn decided_by_kernel(ctx: &Context, kind: OpKind, blocked: bool) -> Option<String> {
    use crate::sandbox::NetworkMode;
    let mode = ctx.network;
    Some(match (kind, mode, blocked) {
        (OpKind::Exec, _, false) => return None,
        (OpKind::Exec, _, true) => {
            "landlock (no execute right: the profile restricts exec) and the seccomp supervisor"
                .into()
        }
        (OpKind::Dns, NetworkMode::None, _) => "seccomp supervisor (the datagram to port 53 was refused; the network namespace is empty)".into(),
        (OpKind::Dns, _, _) => format!(
            "seccomp supervisor (the datagram to port 53 was refused; network mode `{}`)",
            mode.name()
        ),
        (_, NetworkMode::None, true) => {
            "seccomp supervisor (and the empty network namespace)".into()
        }
        (_, NetworkMode::None, false) => "network namespace (loopback only)".into(),
        (_, NetworkMode::Loopback, true) => {
            "seccomp supervisor (network mode `loopback`: only loopback addresses; never abstract unix sockets)".into()
        }
        (_, NetworkMode::Loopback, false) => "seccomp supervisor (network mode `loopback`: a loopback address; the supervisor made the call itself)".into(),
        (OpKind::NetSend, NetworkMode::Allowlist, true) => "seccomp supervisor (network mode `allowlist`: not on the list; no landlock rule covers datagrams)".into(),
        (_, NetworkMode::Allowlist, true) => "seccomp supervisor (network mode `allowlist`: not on the list) and landlock (tcp ports of the list only)".into(),
        (_, NetworkMode::Allowlist, false) => "seccomp supervisor (network mode `allowlist`: on the list; the supervisor made the call itself)".into(),
    })
}

/// `["127.0.0.1:8080"]`-style TOML string of an address.
fn toml_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The profile lines that would allow a blocked kernel-stream finding.
fn suggest_kernel(ctx: &Context, kind: OpKind, k: &KernelEvent) -> Option<String> {
    use crate::sandbox::NetworkMode;
    match kind {
        OpKind::Exec => {
            let Target::Exec { path, program, .. } = &k.target else {
                return None;
            };
            if super::anon_exec::is_anonymous(program.as_ref()) {
                return Some("# no profile setting allows executing a file with no path (a memfd, a deleted file) under restrict-exec; a profile without restrict-exec reports it instead".into());
            }
            Some(format!("[filesystem]\nexec = [{}]", toml_str(path)))
        }
        OpKind::NetConnect | OpKind::NetSend | OpKind::Dns => {
            let (ip, port) = match &k.target {
                Target::Socket {
                    addr: Some(SockAddr::Inet { ip, port }),
                    ..
                } => (ip, port),
                Target::Socket {
                    addr:
                        Some(SockAddr::Unix {
                            is_abstract: true, ..
                        }),
                    ..
                } => {
                    return Some("# no profile setting allows abstract unix sockets: in the host's network namespace they are the host's (X11, D-Bus)".into());
                }
                _ => {
                    return Some(
                        "# no profile setting allows this address family or an unknown peer".into(),
                    );
                }
            };
            let entry = std::net::SocketAddr::new(*ip, *port).to_string();
            if ip.is_loopback() && ctx.network == NetworkMode::None {
                return Some(format!(
                    "[network]\nmode = \"loopback\"\n# or, narrower: mode = \"allowlist\" with allow = [{}]",
                    toml_str(&entry)
                ));
            }
            Some(format!(
                "[network]\nmode = \"allowlist\"\nallow = [{}]{}",
                toml_str(&entry),
                if ctx.network == NetworkMode::Allowlist {
                    "  # added to the profile's list"
                } else {
                    ""
                }
            ))
        }
        OpKind::NetBind => {
            let Target::Socket {
                addr: Some(SockAddr::Inet { ip, port }),
                ..
            } = &k.target
            else {
                return Some(
                    "# no profile setting allows binding an abstract unix socket in the host's network namespace".into(),
                );
            };
            if !ip.is_loopback() {
                return Some(
                    "# no profile setting lets a build listen on a non-loopback address".into(),
                );
            }
            Some(format!("[network]\nbind = [{port}]"))
        }
        _ => None,
    }
}

/// The profile lines that would allow a blocked audit-stream finding.
fn suggest_audit(ctx: &Context, f: &Finding) -> Option<String> {
    let target = &f.target;
    let in_home = target.starts_with('~') || Path::new(target).starts_with(&ctx.home);
    match f.kind {
        OpKind::FsRead | OpKind::FsWrite if in_home => Some(
            "# no profile line gives the build your home directory: the sandbox's HOME is always an empty tmpfs"
                .into(),
        ),
        OpKind::FsRead => Some(format!("[filesystem]\nread = [{}]", toml_str(target))),
        OpKind::FsWrite => {
            let dir = Path::new(target)
                .parent()
                .filter(|d| d.parent().is_some())
                .map(|d| d.display().to_string())
                .unwrap_or_else(|| target.clone());
            Some(format!("[filesystem]\nwrite = [{}]", toml_str(&dir)))
        }
        OpKind::NativeCode => Some("[python]\nctypes = \"any\"".into()),
        OpKind::Signal | OpKind::Ptrace => Some(
            "# no profile setting allows this: the pid namespace and the seccomp deny filter always apply"
                .into(),
        ),
        _ => None,
    }
}

/// Merge identical findings (same severity, kind, target, origin) into one
/// with a count, and order by severity.
pub fn merge(findings: Vec<Finding>) -> Vec<Finding> {
    let mut out: Vec<Finding> = Vec::new();
    type Key = (Severity, OpKind, String, Option<(String, u32)>);
    let mut index: BTreeMap<Key, usize> = BTreeMap::new();
    for f in findings {
        let key = (
            f.severity,
            f.kind,
            f.target.clone(),
            f.origin.as_ref().map(|o| (o.file.clone(), o.line)),
        );
        match index.get(&key) {
            Some(&i) => {
                out[i].count += f.count;
                for s in f.seen_by {
                    if !out[i].seen_by.contains(&s) {
                        out[i].seen_by.push(s);
                    }
                }
            }
            None => {
                index.insert(key, out.len());
                out.push(f);
            }
        }
    }
    out.sort_by_key(|f| f.severity);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::NetworkMode;

    fn ctx(network: NetworkMode) -> Context {
        Context {
            inside_src: "/build/src".into(),
            sources: SourceTrees::default(),
            writable: vec!["/build/src".into(), "/tmp".into()],
            readable: vec!["/usr".into()],
            home: "/home/build".into(),
            python_executables: vec![],
            mount_view: true,
            network,
            restrict_exec: false,
            ctypes_allow: Some(vec!["/usr/lib".into()]),
        }
    }

    fn kernel(syscall: Syscall, target: Target) -> KernelEvent {
        KernelEvent {
            t_ns: 1,
            syscall,
            process: Default::default(),
            target,
            verdict: Verdict::Denied,
            errno: Some(libc::EACCES),
            decided_at_prompt: None,
        }
    }

    fn socket(addr: SockAddr) -> Target {
        Target::Socket {
            addr: Some(addr),
            socket_type: Some("stream".into()),
            dns_query: None,
        }
    }

    #[test]
    fn network_suggestions_name_the_mode_and_the_exact_address() {
        let lo = kernel(
            Syscall::Connect,
            socket(SockAddr::Inet {
                ip: "127.0.0.1".parse().unwrap(),
                port: 5432,
            }),
        );
        let s = suggest_kernel(&ctx(NetworkMode::None), OpKind::NetConnect, &lo).unwrap();
        assert!(s.starts_with("[network]\nmode = \"loopback\""), "{s}");
        let out = kernel(
            Syscall::Connect,
            socket(SockAddr::Inet {
                ip: "2001:db8::1".parse().unwrap(),
                port: 443,
            }),
        );
        let s = suggest_kernel(&ctx(NetworkMode::Loopback), OpKind::NetConnect, &out).unwrap();
        assert_eq!(
            s,
            "[network]\nmode = \"allowlist\"\nallow = [\"[2001:db8::1]:443\"]"
        );
        // The text parses as a profile fragment.
        let text = format!("version = 1\ndescription = \"x\"\n{s}\n");
        crate::policy::Profile::parse(&text, "suggested").unwrap();
        let x11 = kernel(
            Syscall::Connect,
            socket(SockAddr::Unix {
                path: "/tmp/.X11-unix/X0".into(),
                is_abstract: true,
            }),
        );
        let s = suggest_kernel(&ctx(NetworkMode::Loopback), OpKind::NetConnect, &x11).unwrap();
        assert!(s.starts_with("# no profile setting allows abstract"), "{s}");
        let exec = kernel(
            Syscall::Execve,
            Target::Exec {
                path: "/bin/sh".into(),
                program: None,
                argv: vec!["sh".into()],
                env_names: vec![],
            },
        );
        let s = suggest_kernel(&ctx(NetworkMode::None), OpKind::Exec, &exec).unwrap();
        assert_eq!(s, "[filesystem]\nexec = [\"/bin/sh\"]");
    }

    fn blocked(kind: OpKind, target: &str) -> Finding {
        Finding {
            severity: Severity::Blocked,
            kind,
            target: target.into(),
            verdict: FindingVerdict::Blocked,
            decided_by: None,
            origin: None,
            process_chain: vec![],
            seen_by: vec!["audit-hook"],
            message: String::new(),
            count: 1,
            suggestion: None,
        }
    }

    #[test]
    fn file_suggestions_and_what_no_profile_can_allow() {
        let c = ctx(NetworkMode::None);
        assert_eq!(
            suggest_audit(&c, &blocked(OpKind::FsRead, "/opt/data/x.csv")).unwrap(),
            "[filesystem]\nread = [\"/opt/data/x.csv\"]"
        );
        assert_eq!(
            suggest_audit(&c, &blocked(OpKind::FsWrite, "/srv/out/f.txt")).unwrap(),
            "[filesystem]\nwrite = [\"/srv/out\"]"
        );
        for home in ["~/.ssh/id_rsa", "/home/build/.pypirc"] {
            let s = suggest_audit(&c, &blocked(OpKind::FsRead, home)).unwrap();
            assert!(
                s.starts_with("# no profile line gives the build your home"),
                "{s}"
            );
        }
        assert_eq!(
            suggest_audit(
                &c,
                &blocked(OpKind::NativeCode, "ctypes load of /build/src/x.so")
            )
            .unwrap(),
            "[python]\nctypes = \"any\""
        );
        // Attacker-chosen text cannot break out of the TOML string.
        let s = suggest_audit(&c, &blocked(OpKind::FsRead, "/opt/a\"]\nmode = \"x")).unwrap();
        let text = format!("version = 1\ndescription = \"x\"\n{s}\n");
        let p = crate::policy::Profile::parse(&text, "suggested").unwrap();
        assert_eq!(p.filesystem.read.len(), 1);
    }
}
