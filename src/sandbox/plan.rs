//! The sandbox plan: plain data saying *what* the sandbox looks like.
//!
//! A [`SandboxPlan`] is built outside the kernel (by `policy`), is fully
//! serializable, and is the only thing the sandbox code acts on. Host paths
//! appear only as bind sources; everything else is a path inside the sandbox.
//! Nothing here touches the system, so every decision in it is unit-testable.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The host uid/gid the sandbox maps to when sdist-box runs as root:
/// an unprivileged id that owns nothing on a normal system.
pub const ROOT_MAPS_TO: u32 = 4_000_000;

/// One layer of the sandbox, named as the report names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layer {
    /// User, mount, pid, network, ipc and uts namespaces.
    Namespaces,
    /// The private, mostly read-only file-system view.
    Mounts,
    /// An unprivileged uid inside, never host root outside.
    Uid,
    /// Every capability set cleared.
    Capabilities,
    /// Landlock file-system rules.
    LandlockFs,
    /// Landlock TCP bind/connect rules (ABI 4).
    LandlockNet,
    /// Landlock signal and abstract-socket scoping (ABI 6).
    LandlockScope,
    /// Resource limits (processes, memory, file size, CPU).
    Rlimits,
    /// The seccomp deny filter.
    SeccompDeny,
    /// The seccomp user-notification supervisor (the kernel stream).
    SeccompNotify,
    /// The empty network namespace with only `lo`.
    Network,
    /// The scrubbed environment.
    Environment,
    /// The whole sandbox's memory, processes and CPU (one cgroup), sized
    /// file systems, and no anonymous executables (see `sandbox::cgroup`).
    Resources,
}

impl Layer {
    pub const ALL: [Layer; 13] = [
        Layer::Namespaces,
        Layer::Mounts,
        Layer::Uid,
        Layer::Capabilities,
        Layer::LandlockFs,
        Layer::LandlockNet,
        Layer::LandlockScope,
        Layer::Rlimits,
        Layer::SeccompDeny,
        Layer::SeccompNotify,
        Layer::Network,
        Layer::Environment,
        Layer::Resources,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Layer::Namespaces => "namespaces",
            Layer::Mounts => "mounts",
            Layer::Uid => "uid",
            Layer::Capabilities => "capabilities",
            Layer::LandlockFs => "landlock-fs",
            Layer::LandlockNet => "landlock-net",
            Layer::LandlockScope => "landlock-scope",
            Layer::Rlimits => "rlimits",
            Layer::SeccompDeny => "seccomp-deny",
            Layer::SeccompNotify => "seccomp-notify",
            Layer::Network => "network",
            Layer::Environment => "environment",
            Layer::Resources => "resources",
        }
    }

    pub fn from_name(name: &str) -> Option<Layer> {
        Layer::ALL.into_iter().find(|l| l.name() == name)
    }
}

/// How a bind mount is exposed inside the sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Access {
    /// Read and execute.
    ReadOnly,
    /// Read, write, create, remove, execute.
    ReadWrite,
}

/// One entry of the sandbox's file-system view, applied in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum MountEntry {
    /// Bind a host directory or file (opened by the parent before the
    /// sandbox starts) at `target`.
    Bind {
        source: PathBuf,
        target: PathBuf,
        access: Access,
    },
    /// Bind a host device node (`/dev/null`, …). Device binds keep `dev`.
    Device { source: PathBuf, target: PathBuf },
    /// A fresh tmpfs.
    Tmpfs {
        target: PathBuf,
        size_bytes: u64,
        mode: u32,
    },
    /// A symbolic link (merged-/usr hosts have `/bin -> usr/bin`).
    Symlink { target: PathBuf, link_to: PathBuf },
    /// A fresh procfs of the sandbox's pid namespace.
    Proc { target: PathBuf },
}

impl MountEntry {
    pub fn target(&self) -> &PathBuf {
        match self {
            MountEntry::Bind { target, .. }
            | MountEntry::Device { target, .. }
            | MountEntry::Tmpfs { target, .. }
            | MountEntry::Symlink { target, .. }
            | MountEntry::Proc { target } => target,
        }
    }
}

/// Landlock rules, as paths inside the sandbox.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LandlockPlan {
    /// Read files, list directories, execute.
    pub read_exec: Vec<PathBuf>,
    /// Read files and list directories only.
    pub read_only: Vec<PathBuf>,
    /// Full access beneath (the build tree, `/tmp`, `HOME`).
    pub read_write: Vec<PathBuf>,
    /// Device files that may be read and written (`/dev/null`).
    pub devices_rw: Vec<PathBuf>,
    /// TCP ports that `connect` may reach (empty: none).
    pub tcp_connect: Vec<u16>,
    /// TCP ports that `bind` may use (empty: none).
    pub tcp_bind: Vec<u16>,
    /// Leave TCP connect to the supervisor alone (loopback mode: Landlock
    /// rules name ports, not addresses, so they cannot say "loopback").
    #[serde(default)]
    pub tcp_connect_by_supervisor: bool,
    /// Execute only beneath `exec` (and nowhere else, not even in the
    /// read-write build tree or `/tmp`).
    #[serde(default)]
    pub restrict_exec: bool,
    /// Files and directories whose files may be executed, when
    /// `restrict_exec` (the interpreter, the build env, the toolchain).
    #[serde(default)]
    pub exec: Vec<PathBuf>,
}

/// Where the build may connect.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NetworkMode {
    /// An empty network namespace: nothing, not even the host's loopback.
    #[default]
    None,
    /// The host's loopback addresses (127.0.0.0/8, ::1), any port.
    Loopback,
    /// Only the `host:port` pairs of `allow`.
    Allowlist,
}

impl NetworkMode {
    pub fn name(self) -> &'static str {
        match self {
            NetworkMode::None => "none",
            NetworkMode::Loopback => "loopback",
            NetworkMode::Allowlist => "allowlist",
        }
    }
}

/// Where the build may connect (see [`NetworkMode`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkPlan {
    pub mode: NetworkMode,
    /// The allowlist as written (`host:port`), resolved by
    /// `policy::resolve_network` outside the sandbox before the run.
    pub allow_names: Vec<String>,
    /// The addresses the supervisor lets `connect`/`sendto` reach
    /// (allowlist mode), resolved from `allow_names`.
    pub allow: Vec<std::net::SocketAddr>,
    /// Each entry of `allow_names` with what it resolved to (for the report).
    #[serde(default)]
    pub resolved: Vec<(String, Vec<std::net::SocketAddr>)>,
    /// TCP ports a loopback `bind` may use.
    pub bind_ports: Vec<u16>,
}

impl NetworkPlan {
    /// The build shares the host's network namespace (loopback, allowlist):
    /// everything network-related then goes through the supervisor.
    pub fn shares_host_netns(&self) -> bool {
        self.mode != NetworkMode::None
    }
}

/// Resource limits of the build. `None` leaves the inherited value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Processes (and threads) of the build at once.
    pub processes: Option<u64>,
    /// Address space of one process, bytes.
    pub memory_bytes: Option<u64>,
    /// Largest file one process may write, bytes.
    pub file_size_bytes: Option<u64>,
    /// CPU seconds of one process.
    pub cpu_seconds: Option<u64>,
    /// Open files of one process.
    pub open_files: Option<u64>,
    /// Wall-clock limit of the whole run, seconds.
    pub wall_seconds: u64,
    /// Largest wheel copied out, bytes.
    #[serde(default)]
    pub output_bytes: Option<u64>,
    /// Most bytes of one run's output the log keeps (head and tail).
    #[serde(default)]
    pub log_bytes: Option<u64>,
    /// Memory of the whole sandbox (its cgroup: heap, page cache, tmpfs and
    /// memfd pages alike), no swap, bytes.
    #[serde(default)]
    pub sandbox_memory_bytes: Option<u64>,
    /// CPU of the whole sandbox, in thousandths of a core (cgroup).
    #[serde(default)]
    pub cpu_millicores: Option<u64>,
    /// Size of the build tree's own file system (a tmpfs), bytes.
    #[serde(default)]
    pub build_tree_bytes: Option<u64>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            processes: Some(512),
            memory_bytes: Some(8 << 30),
            file_size_bytes: Some(4 << 30),
            cpu_seconds: Some(3600),
            open_files: Some(4096),
            wall_seconds: 3600,
            output_bytes: Some(2 << 30),
            log_bytes: Some(DEFAULT_LOG_BYTES),
            sandbox_memory_bytes: Some(8 << 30),
            cpu_millicores: None,
            build_tree_bytes: Some(8 << 30),
        }
    }
}

/// What the seccomp user-notification supervisor is told about.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotifyPlan {
    /// Network and exec system calls (the kernel stream).
    pub enabled: bool,
    /// Also the open family (`--trace-files`).
    pub trace_files: bool,
}

/// How the sandbox is built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Every layer: new user, mount, pid, network, ipc and uts namespaces.
    #[default]
    Namespaces,
    /// No user namespaces on this host, and the profile allows it: Landlock,
    /// seccomp (with a socket-family filter), no_new_privs and rlimits only,
    /// on the host's own file system, network and pid space. Paths in the
    /// plan are host paths.
    Degraded,
}

/// Everything the sandbox needs to start one command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxPlan {
    /// Namespaces, or the degraded mode (then `mounts` is empty).
    #[serde(default)]
    pub mode: Mode,
    /// Program and arguments; the program is a path inside the sandbox.
    pub argv: Vec<String>,
    /// The complete environment of the command.
    pub env: Vec<(String, String)>,
    /// Working directory inside the sandbox.
    pub cwd: PathBuf,
    pub hostname: String,
    /// The file-system view, in order; the root is an empty read-only tmpfs.
    pub mounts: Vec<MountEntry>,
    pub landlock: LandlockPlan,
    pub limits: Limits,
    /// Layers that must be fully enforced, or the run is refused.
    pub required: Vec<Layer>,
    /// uid and gid of the command inside the sandbox (never 0).
    pub inner_uid: u32,
    pub inner_gid: u32,
    /// Host uid/gid the sandbox maps to when sdist-box runs as root.
    pub root_maps_to: u32,
    /// The kernel stream.
    pub notify: NotifyPlan,
    /// Give the command the write end of the Python event stream on this
    /// descriptor number (and its number in `SDIST_BOX_EVENTS_FD`).
    pub events_fd: Option<i32>,
    /// Network mode and allowlist (the supervisor's connect verdicts).
    #[serde(default)]
    pub network: NetworkPlan,
}

/// The log's cap when the caller names none: 16 MiB per run.
pub const DEFAULT_LOG_BYTES: u64 = 16 << 20;
