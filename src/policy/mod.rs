//! Policy: a profile plus the paths of one build, compiled into a
//! [`SandboxPlan`].
//!
//! [`compile`] is a pure function: given the profile, the host's layout and
//! the build's paths, it decides every mount, Landlock rule, limit and
//! environment variable. The kernel is not involved, so all of it is
//! unit-tested without root.
//!
//! Layering: `policy` depends on `sandbox` for the plan's types (and the
//! network modes and uid it re-exports, which are the plan's own), never
//! the reverse and never on `events`; inside, `mod` compiles what
//! `profile` parses.

pub mod profile;

use std::path::{Path, PathBuf};

use crate::sandbox::plan::NetworkPlan;
use crate::sandbox::{Access, LandlockPlan, Layer, Limits, Mode, MountEntry, SandboxPlan};

pub use profile::{CtypesPolicy, NetworkMode, Profile, ProfileError};

/// Where the build's paths appear inside the sandbox.
pub mod inside {
    pub const SRC: &str = "/build/src";
    pub const OUT: &str = "/build/out";
    pub const CONTROL: &str = "/build/control";
    pub const SHIM: &str = "/sdist-box/shim";
    pub const HOME: &str = "/home/build";
    pub const TMP: &str = "/tmp";
}

pub use crate::sandbox::plan::ROOT_MAPS_TO;
/// The uid/gid of the build inside the sandbox.
pub const INNER_ID: u32 = 1000;

/// The system directories of this host (read at run time, not decided).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostLayout {
    /// Real directories to bind read-only at the same path.
    pub dirs: Vec<PathBuf>,
    /// Top-level symlinks to recreate (`/bin -> usr/bin` on merged-/usr).
    pub symlinks: Vec<(PathBuf, PathBuf)>,
    /// Device nodes that exist.
    pub devices: Vec<PathBuf>,
    /// The C/C++ toolchain's programs and directories (`gcc`, `cc1`,
    /// `collect2`, `as`, `ld`, …) and the dynamic loader, symlinks
    /// resolved: what a `restrict-exec` profile still lets the build run.
    pub toolchain: Vec<PathBuf>,
}

/// Program names of the C/C++ toolchain, found in `/usr/bin` also with a
/// target prefix (`x86_64-linux-gnu-gcc`) or a version (`gcc-12`).
const TOOLCHAIN_PROGRAMS: &[&str] = &[
    "cc",
    "c++",
    "gcc",
    "g++",
    "cpp",
    "ld",
    "ld.bfd",
    "ld.gold",
    "gold",
    "as",
    "ar",
    "ranlib",
    "nm",
    "strip",
    "objcopy",
    "gcc-ar",
    "gcc-nm",
    "gcc-ranlib",
];
/// Directories of the compiler's own programs (`cc1`, `cc1plus`,
/// `collect2`, `lto-wrapper`), as `gcc -v` shows them on Debian.
const TOOLCHAIN_DIRS: &[&str] = &["/usr/lib/gcc", "/usr/libexec/gcc"];
/// Where the dynamic loader lives (the kernel opens it for execution too).
const LOADER_DIRS: &[&str] = &[
    "/lib64",
    "/lib",
    "/usr/lib64",
    "/lib/x86_64-linux-gnu",
    "/lib/aarch64-linux-gnu",
];

/// Is `name` a toolchain program, with or without a target prefix and a
/// version suffix?
pub fn is_toolchain_program(name: &str) -> bool {
    let unprefixed = match name.find("-linux-gnu-") {
        Some(i) => &name[i + "-linux-gnu-".len()..],
        None => name,
    };
    let unversioned = match unprefixed.rsplit_once('-') {
        Some((base, v)) if !v.is_empty() && v.chars().all(|c| c.is_ascii_digit()) => base,
        _ => unprefixed,
    };
    TOOLCHAIN_PROGRAMS.contains(&unversioned)
}

fn detect_toolchain() -> Vec<PathBuf> {
    let mut found = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/usr/bin") {
        for e in dir.flatten() {
            let name = e.file_name();
            if is_toolchain_program(&name.to_string_lossy())
                && let Ok(real) = std::fs::canonicalize(e.path())
            {
                found.push(real);
            }
        }
    }
    for d in TOOLCHAIN_DIRS {
        if let Ok(real) = std::fs::canonicalize(d) {
            found.push(real);
        }
    }
    for d in LOADER_DIRS {
        if let Ok(dir) = std::fs::read_dir(d) {
            for e in dir.flatten() {
                if e.file_name().to_string_lossy().starts_with("ld-linux")
                    && let Ok(real) = std::fs::canonicalize(e.path())
                {
                    found.push(real);
                }
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

const DEVICES: &[&str] = &[
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
];
const DEVICES_RW: &[&str] = &["/dev/null", "/dev/zero", "/dev/full"];

impl HostLayout {
    /// Everything, the C/C++ toolchain included.
    pub fn detect() -> HostLayout {
        Self::detect_with(true)
    }

    /// What `profile` needs: the toolchain (a scan of `/usr/bin` and the
    /// loader directories, ~1 ms) only for a `restrict-exec` profile, and
    /// then scanned once per process.
    pub fn detect_for(profile: &Profile) -> HostLayout {
        Self::detect_with(profile.filesystem.restrict_exec)
    }

    fn detect_with(toolchain: bool) -> HostLayout {
        static TOOLCHAIN: std::sync::OnceLock<Vec<PathBuf>> = std::sync::OnceLock::new();
        let mut layout = HostLayout {
            dirs: Vec::new(),
            symlinks: Vec::new(),
            devices: Vec::new(),
            toolchain: if toolchain {
                TOOLCHAIN.get_or_init(detect_toolchain).clone()
            } else {
                Vec::new()
            },
        };
        for dir in profile::SYSTEM_DIRS {
            let p = Path::new(dir);
            match std::fs::symlink_metadata(p) {
                Ok(m) if m.file_type().is_symlink() => {
                    if let Ok(target) = std::fs::read_link(p) {
                        layout.symlinks.push((p.to_path_buf(), target));
                    }
                }
                Ok(m) if m.is_dir() => layout.dirs.push(p.to_path_buf()),
                _ => {}
            }
        }
        for dev in DEVICES {
            if Path::new(dev).exists() {
                layout.devices.push(PathBuf::from(dev));
            }
        }
        layout
    }
}

/// The host paths of one sandboxed command.
#[derive(Debug, Clone, Default)]
pub struct BuildPaths {
    /// Host directory bound read-write at `/build/src` (the cwd).
    pub src: Option<PathBuf>,
    /// Host directory bound read-write at `/build/out`.
    pub out: Option<PathBuf>,
    /// Host directory bound read-write at `/build/control`.
    pub control: Option<PathBuf>,
    /// Host directory bound read-only at `/sdist-box/shim`.
    pub shim: Option<PathBuf>,
    /// Host directories bound read-only at their own path (interpreter,
    /// build environment: their files name themselves by absolute path).
    pub read_only_same_path: Vec<PathBuf>,
    /// The directory whose `bin/` goes first on PATH (the build env).
    pub bin_dir: Option<PathBuf>,
    /// Run the seccomp supervisor (the kernel stream).
    pub supervise: bool,
    /// Also notify the open family.
    pub trace_files: bool,
    /// The degraded mode (no namespaces): the private HOME and TMPDIR on
    /// the host, in the work directory. `None`: the namespaces mode.
    pub without_namespaces: Option<PrivateDirs>,
    /// The interpreter's executable (symlinks resolved): a `restrict-exec`
    /// profile lets the build execute it.
    pub executables: Vec<PathBuf>,
}

/// Host directories that stand in for the tmpfs HOME and /tmp when there
/// are no namespaces to mount them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivateDirs {
    pub home: PathBuf,
    pub tmp: PathBuf,
}

/// Where the command finds its directories: inside the sandbox's view in
/// the namespaces mode, the host paths in the degraded mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Places {
    pub src: PathBuf,
    pub out: PathBuf,
    pub control: PathBuf,
    pub shim: PathBuf,
    pub home: PathBuf,
    pub tmp: PathBuf,
}

impl Places {
    pub fn of(paths: &BuildPaths) -> Places {
        match &paths.without_namespaces {
            None => Places {
                src: inside::SRC.into(),
                out: inside::OUT.into(),
                control: inside::CONTROL.into(),
                shim: inside::SHIM.into(),
                home: inside::HOME.into(),
                tmp: inside::TMP.into(),
            },
            Some(private) => {
                let or = |p: &Option<PathBuf>, fallback: &PathBuf| {
                    p.clone().unwrap_or_else(|| fallback.clone())
                };
                Places {
                    src: or(&paths.src, &private.home),
                    out: or(&paths.out, &private.tmp),
                    control: or(&paths.control, &private.tmp),
                    shim: or(&paths.shim, &private.tmp),
                    home: private.home.clone(),
                    tmp: private.tmp.clone(),
                }
            }
        }
    }
}

/// Layers the degraded mode cannot have; a profile that allows that mode
/// does not require them there.
pub const NEED_NAMESPACES: &[Layer] =
    &[Layer::Namespaces, Layer::Mounts, Layer::Uid, Layer::Network];

/// A compiled plan and what the environment policy dropped.
#[derive(Debug, Clone)]
pub struct Compiled {
    pub plan: SandboxPlan,
    /// Names (never values) of host variables that did not reach the build.
    pub dropped_env: Vec<String>,
}

/// Compile `profile` for one command. Pure.
///
/// The steps: the system's view, the profile's and the build's own paths
/// (with their Landlock rights), the network, Landlock, then the
/// environment, limits and required layers.
pub fn compile(
    profile: &Profile,
    host: &HostLayout,
    paths: &BuildPaths,
    argv: Vec<String>,
    host_env: &[(String, String)],
) -> Compiled {
    if let Some(private) = &paths.without_namespaces {
        return compile_degraded(profile, host, paths, private, argv, host_env);
    }
    let mut mounts = system_mounts(profile, host);
    let rights = bind_paths(profile, host, paths, &mut mounts);
    // Parents before children: a mount must exist before one beneath it.
    mounts.sort_by_key(|m| m.target().components().count());
    mounts.dedup();
    let network = network_plan(&profile.network);
    let landlock = landlock_plan(profile, host, paths, rights);
    let fs = &profile.filesystem;

    let (env, dropped_env) = plan_env(profile, paths, host_env);
    let limits = limits_of(profile);
    // Sharing the host's network namespace leaves the supervisor as the
    // wall that says which addresses: it is then required, whatever the
    // event streams.
    let mut required = profile.require.clone();
    // resources: where no cgroup can be had, `allow-degraded` lets the
    // build run on the stated fallback (rlimits, sized file systems,
    // memfd_create refused) instead of refusing it.
    if profile.allow_degraded {
        required.retain(|l| *l != Layer::Resources);
    }
    let supervise = paths.supervise || network.shares_host_netns();
    if network.shares_host_netns() && !required.contains(&Layer::SeccompNotify) {
        required.push(Layer::SeccompNotify);
    }
    let cwd = if paths.src.is_some() {
        PathBuf::from(inside::SRC)
    } else {
        PathBuf::from(inside::HOME)
    };
    Compiled {
        plan: SandboxPlan {
            mode: Mode::Namespaces,
            argv,
            env,
            cwd,
            hostname: "sdist-box".into(),
            mounts,
            landlock,
            limits,
            required,
            inner_uid: INNER_ID,
            inner_gid: INNER_ID,
            root_maps_to: ROOT_MAPS_TO,
            notify: crate::sandbox::plan::NotifyPlan {
                enabled: supervise,
                trace_files: paths.trace_files || fs.record_opens,
            },
            events_fd: None,
            network,
        },
        dropped_env,
    }
}

/// The system's view: private `/tmp`, HOME, `/dev` and `/dev/shm`, the
/// sandbox's `/proc`, the host's system directories and devices.
fn system_mounts(profile: &Profile, host: &HostLayout) -> Vec<MountEntry> {
    let mut mounts = Vec::new();
    let tmp_size = profile.limits.tmp_size.unwrap_or(4 << 30);
    mounts.push(MountEntry::Tmpfs {
        target: inside::TMP.into(),
        size_bytes: tmp_size,
        mode: 0o1777,
    });
    mounts.push(MountEntry::Tmpfs {
        target: inside::HOME.into(),
        size_bytes: 256 << 20,
        mode: 0o700,
    });
    mounts.push(MountEntry::Tmpfs {
        target: "/dev".into(),
        size_bytes: 64 << 10,
        mode: 0o755,
    });
    mounts.push(MountEntry::Proc {
        target: "/proc".into(),
    });
    for dir in &host.dirs {
        mounts.push(MountEntry::Bind {
            source: dir.clone(),
            target: dir.clone(),
            access: Access::ReadOnly,
        });
    }
    for (link, to) in &host.symlinks {
        mounts.push(MountEntry::Symlink {
            target: link.clone(),
            link_to: to.clone(),
        });
    }
    for dev in &host.devices {
        mounts.push(MountEntry::Device {
            source: dev.clone(),
            target: dev.clone(),
        });
    }
    mounts.push(MountEntry::Tmpfs {
        target: "/dev/shm".into(),
        size_bytes: 256 << 20,
        mode: 0o1777,
    });
    for (name, to) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        mounts.push(MountEntry::Symlink {
            target: Path::new("/dev").join(name),
            link_to: to.into(),
        });
    }
    mounts
}

/// What Landlock lets the build do beneath the paths of its view.
struct Rights {
    read_exec: Vec<PathBuf>,
    read_only: Vec<PathBuf>,
    read_write: Vec<PathBuf>,
}

/// The profile's extra paths and the build's own directories, bound into
/// `mounts`, with the Landlock rights each gets.
fn bind_paths(
    profile: &Profile,
    host: &HostLayout,
    paths: &BuildPaths,
    mounts: &mut Vec<MountEntry>,
) -> Rights {
    let covered_by_system =
        |p: &Path| host.dirs.iter().any(|d| p.starts_with(d)) && !p.starts_with("/etc");
    let fs = &profile.filesystem;
    let mut read_exec: Vec<PathBuf> = host.dirs.clone();
    let mut read_only: Vec<PathBuf> = vec!["/proc".into(), "/dev".into()];
    // The profile's extra paths: bound at their own path, read-only unless
    // listed under `write`.
    let mut extra_ro: Vec<PathBuf> = paths.read_only_same_path.clone();
    extra_ro.extend(fs.exec.iter().cloned());
    for dir in &fs.read {
        read_only.push(dir.clone());
        extra_ro.push(dir.clone());
    }
    for dir in &extra_ro {
        if !fs.read.contains(dir) {
            read_exec.push(dir.clone());
        }
        if !covered_by_system(dir) && !fs.write.iter().any(|w| dir.starts_with(w)) {
            mounts.push(MountEntry::Bind {
                source: dir.clone(),
                target: dir.clone(),
                access: Access::ReadOnly,
            });
        }
    }
    let mut read_write: Vec<PathBuf> =
        vec![inside::TMP.into(), inside::HOME.into(), "/dev/shm".into()];
    for dir in &fs.write {
        mounts.push(MountEntry::Bind {
            source: dir.clone(),
            target: dir.clone(),
            access: Access::ReadWrite,
        });
        read_write.push(dir.clone());
    }
    for (host_dir, target, access) in [
        (&paths.src, inside::SRC, Access::ReadWrite),
        (&paths.out, inside::OUT, Access::ReadWrite),
        (&paths.control, inside::CONTROL, Access::ReadWrite),
        (&paths.shim, inside::SHIM, Access::ReadOnly),
    ] {
        if let Some(source) = host_dir {
            mounts.push(MountEntry::Bind {
                source: source.clone(),
                target: target.into(),
                access,
            });
            match access {
                Access::ReadWrite => read_write.push(target.into()),
                Access::ReadOnly => read_exec.push(target.into()),
            }
        }
    }
    Rights {
        read_exec,
        read_only,
        read_write,
    }
}

/// The network as the profile says; the allowlist is resolved later
/// (`resolve_network`), outside the sandbox.
fn network_plan(net: &profile::NetworkPolicy) -> NetworkPlan {
    NetworkPlan {
        mode: net.mode,
        allow_names: net.allow.iter().map(|a| a.to_string()).collect(),
        allow: Vec::new(),
        resolved: Vec::new(),
        bind_ports: net.bind.clone(),
    }
}

/// The Landlock plan: `rights`, the devices, the TCP ports and the
/// execute rights.
fn landlock_plan(
    profile: &Profile,
    host: &HostLayout,
    paths: &BuildPaths,
    rights: Rights,
) -> LandlockPlan {
    let Rights {
        mut read_exec,
        read_only,
        read_write,
    } = rights;
    read_exec.dedup();
    let fs = &profile.filesystem;
    let net = &profile.network;
    // Landlock's TCP rules name ports only: an allowlist's ports are its
    // second wall; loopback mode (any port) leaves connect to the supervisor.
    let mut tcp_connect: Vec<u16> = match net.mode {
        NetworkMode::Allowlist => net.allow.iter().map(|a| a.port).collect(),
        _ => vec![],
    };
    tcp_connect.sort_unstable();
    tcp_connect.dedup();
    LandlockPlan {
        read_exec,
        read_only,
        read_write,
        devices_rw: devices_rw(host),
        tcp_connect,
        tcp_bind: net.bind.clone(),
        tcp_connect_by_supervisor: net.mode == NetworkMode::Loopback,
        restrict_exec: fs.restrict_exec,
        exec: exec_rights(profile, host, paths),
    }
}

pub fn limits_of(profile: &Profile) -> Limits {
    let l = &profile.limits;
    let defaults = Limits::default();
    Limits {
        processes: l.processes.or(defaults.processes),
        memory_bytes: l.memory.or(defaults.memory_bytes),
        file_size_bytes: l.file_size.or(defaults.file_size_bytes),
        cpu_seconds: l.cpu_seconds.or(defaults.cpu_seconds),
        open_files: l.open_files.or(defaults.open_files),
        wall_seconds: l.wall_seconds.unwrap_or(defaults.wall_seconds),
        output_bytes: l.output_size.or(defaults.output_bytes),
        sandbox_memory_bytes: l.sandbox_memory.or(defaults.sandbox_memory_bytes),
        cpu_millicores: l
            .cpus
            .filter(|c| c.is_finite() && *c > 0.0)
            .map(|c| (c * 1000.0).round().max(1.0) as u64),
        build_tree_bytes: l.build_size.or(defaults.build_tree_bytes),
    }
}

/// The degraded mode's plan: no mounts, so every path is a host path and
/// Landlock alone draws the file-system walls — read and execute the
/// system and the interpreter, read-write only the work directories (the
/// private HOME and TMPDIR among them). Layers that need namespaces are
/// not required of it.
fn compile_degraded(
    profile: &Profile,
    host: &HostLayout,
    paths: &BuildPaths,
    private: &PrivateDirs,
    argv: Vec<String>,
    host_env: &[(String, String)],
) -> Compiled {
    let places = Places::of(paths);
    let fs = &profile.filesystem;
    let mut read_exec: Vec<PathBuf> = host.dirs.clone();
    // Merged-/usr links (/bin -> usr/bin) resolve into /usr, which is there.
    read_exec.extend(paths.read_only_same_path.iter().cloned());
    read_exec.extend(paths.shim.iter().cloned());
    read_exec.extend(fs.exec.iter().cloned());
    read_exec.dedup();
    // /proc: the host's. Other processes' memory and environment stay out
    // of reach: Landlock refuses ptrace access outside the domain.
    let mut read_only = [vec![PathBuf::from("/proc")], host.devices.clone()].concat();
    read_only.extend(fs.read.iter().cloned());
    let mut read_write = vec![private.home.clone(), private.tmp.clone()];
    read_write.extend(
        [&paths.src, &paths.out, &paths.control]
            .into_iter()
            .flatten()
            .cloned(),
    );
    read_write.extend(fs.write.iter().cloned());
    let landlock = LandlockPlan {
        read_exec,
        read_only,
        read_write,
        devices_rw: devices_rw(host),
        tcp_connect: vec![],
        tcp_bind: vec![],
        tcp_connect_by_supervisor: false,
        restrict_exec: fs.restrict_exec,
        exec: exec_rights(profile, host, paths),
    };
    let (mut env, dropped_env) = plan_env(profile, paths, host_env);
    for (k, v) in &mut env {
        match k.as_str() {
            "HOME" => *v = places.home.display().to_string(),
            "TMPDIR" => *v = places.tmp.display().to_string(),
            _ => {}
        }
    }
    let required = profile
        .require
        .iter()
        .copied()
        .filter(|l| !NEED_NAMESPACES.contains(l))
        // resources: allow-degraded lets the fallback do (see `compile`).
        .filter(|l| *l != Layer::Resources)
        .collect();
    Compiled {
        plan: SandboxPlan {
            mode: Mode::Degraded,
            argv,
            env,
            cwd: paths.src.clone().unwrap_or_else(|| private.home.clone()),
            hostname: String::new(),
            mounts: Vec::new(),
            landlock,
            limits: limits_of(profile),
            required,
            inner_uid: INNER_ID,
            inner_gid: INNER_ID,
            root_maps_to: ROOT_MAPS_TO,
            // Always: without a network namespace, the supervisor is what
            // refuses network sockets and unix sockets outside the build.
            notify: crate::sandbox::plan::NotifyPlan {
                enabled: true,
                trace_files: paths.trace_files,
            },
            events_fd: None,
            // No network namespace to share or to keep empty: the degraded
            // mode's own filter and supervisor refuse every socket family
            // but unix, whatever the profile's network mode (stricter than
            // loopback and allowlist, which it cannot offer).
            network: NetworkPlan::default(),
        },
        dropped_env,
    }
}

/// The device nodes the build may write, of those the host has.
fn devices_rw(host: &HostLayout) -> Vec<PathBuf> {
    DEVICES_RW
        .iter()
        .filter(|d| host.devices.iter().any(|h| h == Path::new(d)))
        .map(PathBuf::from)
        .collect()
}

/// The paths a `restrict-exec` profile may execute (none listed otherwise).
fn exec_rights(profile: &Profile, host: &HostLayout, paths: &BuildPaths) -> Vec<PathBuf> {
    if profile.filesystem.restrict_exec {
        exec_paths(profile, host, paths)
    } else {
        vec![]
    }
}

/// The build's environment: the scrubbed one, then the Python policy's.
fn plan_env(
    profile: &Profile,
    paths: &BuildPaths,
    host_env: &[(String, String)],
) -> (Vec<(String, String)>, Vec<String>) {
    let (mut env, dropped) = environment(profile, paths, host_env);
    for (k, v) in python_policy_env(profile, paths) {
        env.retain(|(name, _)| *name != k);
        env.push((k, v));
    }
    (env, dropped)
}

/// What a `restrict-exec` profile may execute: the interpreter, the
/// non-system directories it and the build env live in, the toolchain and
/// the dynamic loader, and the profile's `exec` paths.
fn exec_paths(profile: &Profile, host: &HostLayout, paths: &BuildPaths) -> Vec<PathBuf> {
    let system = |p: &Path| host.dirs.iter().any(|d| p.starts_with(d));
    let mut exec: Vec<PathBuf> = paths.executables.clone();
    exec.extend(
        paths
            .read_only_same_path
            .iter()
            .filter(|p| !system(p))
            .cloned(),
    );
    exec.extend(paths.bin_dir.iter().cloned());
    exec.extend(host.toolchain.iter().cloned());
    exec.extend(profile.filesystem.exec.iter().cloned());
    exec.sort();
    exec.dedup();
    exec
}

/// Resolve an allowlist's names, here, outside the sandbox (the build
/// cannot answer for itself): every address each `host:port` has.
pub fn resolve_network(network: &mut NetworkPlan) -> Result<(), ProfileError> {
    use std::net::ToSocketAddrs;
    if network.mode != NetworkMode::Allowlist {
        return Ok(());
    }
    let mut all = Vec::new();
    let mut per_entry = Vec::new();
    for name in &network.allow_names {
        let resolved: Vec<std::net::SocketAddr> = name
            .to_socket_addrs()
            .map_err(|e| ProfileError::Resolve {
                entry: name.clone(),
                error: e.to_string(),
            })?
            .collect();
        if resolved.is_empty() {
            return Err(ProfileError::Resolve {
                entry: name.clone(),
                error: "no addresses".into(),
            });
        }
        all.extend(resolved.iter().copied());
        per_entry.push((name.clone(), resolved));
    }
    all.sort();
    all.dedup();
    network.allow = all;
    network.resolved = per_entry;
    Ok(())
}

/// Environment variables that tell the audit hook (shim/sitecustomize.py)
/// what the profile refuses in Python.
pub fn python_policy_env(profile: &Profile, paths: &BuildPaths) -> Vec<(String, String)> {
    match profile.python.ctypes {
        CtypesPolicy::Any => vec![],
        CtypesPolicy::System => {
            let mut allowed: Vec<String> = SYSTEM_LIB_DIRS.iter().map(|s| s.to_string()).collect();
            allowed.extend(
                paths
                    .read_only_same_path
                    .iter()
                    .map(|p| p.display().to_string()),
            );
            vec![
                ("SDIST_BOX_CTYPES".into(), "system".into()),
                ("SDIST_BOX_CTYPES_ALLOW".into(), allowed.join(":")),
            ]
        }
    }
}

/// Library directories `ctypes = "system"` accepts.
pub const SYSTEM_LIB_DIRS: &[&str] =
    &["/usr/lib", "/usr/lib64", "/lib", "/lib64", "/usr/local/lib"];

fn environment(
    profile: &Profile,
    paths: &BuildPaths,
    host_env: &[(String, String)],
) -> (Vec<(String, String)>, Vec<String>) {
    let mut path = String::new();
    if let Some(bin) = &paths.bin_dir {
        path.push_str(&bin.join("bin").display().to_string());
        path.push(':');
    }
    // The profile's directories after the build env (whose tools the
    // package asked for, and whose `python` must stay the build's) and
    // before the system's (so a toolchain named in the profile wins over
    // an older one the system happens to have, like Debian's cargo).
    for dir in &profile.environment.path {
        path.push_str(&dir.display().to_string());
        path.push(':');
    }
    path.push_str("/usr/local/bin:/usr/bin:/bin");
    let mut env: Vec<(String, String)> = vec![
        ("PATH".into(), path),
        ("HOME".into(), inside::HOME.into()),
        ("TMPDIR".into(), inside::TMP.into()),
        ("USER".into(), "build".into()),
        ("LOGNAME".into(), "build".into()),
        ("PYTHONNOUSERSITE".into(), "1".into()),
    ];
    let fixed = |name: &str| env_has(&env, name) || profile.environment.set.contains_key(name);
    let mut dropped = Vec::new();
    let mut passed = Vec::new();
    for (name, value) in host_env {
        if profile.passes_env(name) && !fixed(name) {
            passed.push((name.clone(), value.clone()));
        } else {
            dropped.push(name.clone());
        }
    }
    env.extend(passed);
    for (name, value) in &profile.environment.set {
        if !env_has(&env, name) {
            env.push((name.clone(), value.clone()));
        }
    }
    dropped.sort();
    dropped.dedup();
    (env, dropped)
}

fn env_has(env: &[(String, String)], name: &str) -> bool {
    env.iter().any(|(k, _)| k == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> HostLayout {
        HostLayout {
            dirs: vec!["/usr".into(), "/etc".into()],
            symlinks: vec![
                ("/bin".into(), "usr/bin".into()),
                ("/lib64".into(), "usr/lib64".into()),
            ],
            devices: vec!["/dev/null".into(), "/dev/urandom".into()],
            toolchain: vec![
                "/usr/bin/x86_64-linux-gnu-gcc-12".into(),
                "/usr/lib/gcc".into(),
            ],
        }
    }

    fn paths() -> BuildPaths {
        BuildPaths {
            src: Some("/tmp/w/src".into()),
            out: Some("/tmp/w/out".into()),
            control: Some("/tmp/w/control".into()),
            shim: Some("/tmp/w/shim".into()),
            read_only_same_path: vec![
                "/root/.pyenv/versions/3.11.7".into(),
                "/usr/lib/python3.11".into(),
                "/root/.cache/sdist-box/envs/abc".into(),
            ],
            bin_dir: Some("/root/.cache/sdist-box/envs/abc".into()),
            executables: vec!["/root/.pyenv/versions/3.11.7/bin/python3.11".into()],
            ..BuildPaths::default()
        }
    }

    fn with(extra: &str) -> Compiled {
        let text = format!("version = 1\ndescription = \"t\"\n{extra}");
        let profile = Profile::parse(&text, "t.toml").unwrap();
        compile(
            &profile,
            &host(),
            &paths(),
            vec!["/usr/bin/python3".into()],
            &[],
        )
    }

    fn bind(c: &Compiled, target: &str) -> Option<Access> {
        c.plan.mounts.iter().find_map(|m| match m {
            MountEntry::Bind {
                target: t, access, ..
            } if t == Path::new(target) => Some(*access),
            _ => None,
        })
    }

    #[test]
    fn filesystem_knobs_bind_and_rule_each_path() {
        let c = with(
            "[filesystem]\nread = [\"/srv/data\"]\nwrite = [\"/var/scratch\"]\nexec = [\"/opt/tools\"]\n",
        );
        assert_eq!(bind(&c, "/srv/data"), Some(Access::ReadOnly));
        assert_eq!(bind(&c, "/var/scratch"), Some(Access::ReadWrite));
        assert_eq!(bind(&c, "/opt/tools"), Some(Access::ReadOnly));
        let ll = &c.plan.landlock;
        assert!(ll.read_only.contains(&PathBuf::from("/srv/data")));
        assert!(!ll.read_exec.contains(&PathBuf::from("/srv/data")));
        assert!(ll.read_write.contains(&PathBuf::from("/var/scratch")));
        assert!(ll.read_exec.contains(&PathBuf::from("/opt/tools")));
        assert!(!ll.restrict_exec);
        // A path inside a system dir needs no second read-only bind.
        let c = with("[filesystem]\nread = [\"/usr/share/dict\"]\n");
        assert_eq!(bind(&c, "/usr/share/dict"), None);
        assert!(
            c.plan
                .landlock
                .read_only
                .contains(&PathBuf::from("/usr/share/dict"))
        );
    }

    #[test]
    fn profile_path_goes_after_the_build_env_and_before_the_system() {
        let env_path = |c: &Compiled| {
            c.plan
                .env
                .iter()
                .find(|(k, _)| k == "PATH")
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        let c = with(
            "[filesystem]\nexec = [\"/root/.rustup/toolchains/1.95.0\"]\n[environment]\npath = [\"/root/.rustup/toolchains/1.95.0/bin\", \"/usr/lib/ccache\"]\n",
        );
        assert_eq!(
            env_path(&c),
            "/root/.cache/sdist-box/envs/abc/bin:/root/.rustup/toolchains/1.95.0/bin:/usr/lib/ccache:/usr/local/bin:/usr/bin:/bin"
        );
        // The toolchain is bound at its own path and executable.
        assert_eq!(
            bind(&c, "/root/.rustup/toolchains/1.95.0"),
            Some(Access::ReadOnly)
        );
        assert!(
            c.plan
                .landlock
                .read_exec
                .contains(&PathBuf::from("/root/.rustup/toolchains/1.95.0"))
        );
        // Without the knob, PATH is what it always was; a host PATH never
        // reaches the build, with or without it.
        assert_eq!(
            env_path(&with("")),
            "/root/.cache/sdist-box/envs/abc/bin:/usr/local/bin:/usr/bin:/bin"
        );
        // The degraded mode (host paths, no binds) gets the same PATH.
        let mut p = paths();
        p.without_namespaces = Some(PrivateDirs {
            home: "/tmp/w/home".into(),
            tmp: "/tmp/w/tmp".into(),
        });
        let profile = Profile::parse(
            "version = 1\ndescription = \"t\"\n[filesystem]\nexec = [\"/opt/rust\"]\n[environment]\npath = [\"/opt/rust/bin\"]\n",
            "t.toml",
        )
        .unwrap();
        let d = compile(
            &profile,
            &host(),
            &p,
            vec![],
            &[("PATH".into(), "/evil".into())],
        );
        assert!(env_path(&d).contains(":/opt/rust/bin:/usr/local/bin:"));
        assert!(!env_path(&d).contains("/evil"));
        assert!(
            d.plan
                .landlock
                .read_exec
                .contains(&PathBuf::from("/opt/rust"))
        );
    }

    #[test]
    fn restrict_exec_allows_the_interpreter_env_and_toolchain_only() {
        let c = with("[filesystem]\nrestrict-exec = true\nexec = [\"/opt/tools\"]\n");
        let ll = &c.plan.landlock;
        assert!(ll.restrict_exec);
        for p in [
            "/root/.pyenv/versions/3.11.7/bin/python3.11",
            "/root/.pyenv/versions/3.11.7",
            "/root/.cache/sdist-box/envs/abc",
            "/usr/bin/x86_64-linux-gnu-gcc-12",
            "/usr/lib/gcc",
            "/opt/tools",
        ] {
            assert!(
                ll.exec.contains(&PathBuf::from(p)),
                "{p} missing: {:?}",
                ll.exec
            );
        }
        // Not the system dirs wholesale (they hold sh and curl), nor the tree.
        for p in ["/usr", "/usr/lib/python3.11", "/build/src", "/tmp"] {
            assert!(!ll.exec.contains(&PathBuf::from(p)), "{p}");
        }
        assert!(with("").plan.landlock.exec.is_empty());
    }

    #[test]
    fn toolchain_program_names() {
        for n in [
            "gcc",
            "gcc-12",
            "x86_64-linux-gnu-gcc-12",
            "cc",
            "c++",
            "ld.bfd",
            "as",
            "ar",
        ] {
            assert!(is_toolchain_program(n), "{n}");
        }
        for n in [
            "sh",
            "curl",
            "bash",
            "python3",
            "x86_64-linux-gnu-python3-config",
            "gcov",
        ] {
            assert!(!is_toolchain_program(n), "{n}");
        }
    }

    #[test]
    fn network_modes_compile_to_netns_supervisor_and_ports() {
        use crate::sandbox::Layer;
        let none = with("");
        assert!(!none.plan.network.shares_host_netns());
        assert!(none.plan.landlock.tcp_connect.is_empty());
        assert!(!none.plan.landlock.tcp_connect_by_supervisor);

        let lo = with("[network]\nmode = \"loopback\"\nbind = [0]\n");
        assert!(lo.plan.network.shares_host_netns());
        assert!(lo.plan.landlock.tcp_connect_by_supervisor);
        assert_eq!(lo.plan.landlock.tcp_bind, vec![0]);
        // The supervisor is the wall: on and required, whatever the streams.
        assert!(lo.plan.notify.enabled);
        assert!(lo.plan.required.contains(&Layer::SeccompNotify));

        let mut al = with(
            "[network]\nmode = \"allowlist\"\nallow = [\"127.0.0.1:8080\", \"localhost:9000\"]\n",
        );
        assert_eq!(al.plan.landlock.tcp_connect, vec![8080, 9000]);
        assert!(!al.plan.landlock.tcp_connect_by_supervisor);
        assert!(
            al.plan.network.allow.is_empty(),
            "resolved later, not by compile"
        );
        resolve_network(&mut al.plan.network).unwrap();
        assert!(
            al.plan
                .network
                .allow
                .contains(&"127.0.0.1:8080".parse().unwrap())
        );
        assert_eq!(al.plan.network.resolved.len(), 2);
        assert!(
            al.plan.network.resolved[1]
                .1
                .iter()
                .all(|a| a.port() == 9000 && a.ip().is_loopback())
        );
    }

    #[test]
    fn limits_output_size_fail_on_and_ctypes() {
        let c = with("fail-on = \"evasion\"\n[limits]\noutput-size = \"64M\"\n");
        assert_eq!(c.plan.limits.output_bytes, Some(64 << 20));
        assert_eq!(with("").plan.limits.output_bytes, Some(2 << 30));
        let c = with("[python]\nctypes = \"system\"\n");
        let get = |k: &str| {
            c.plan
                .env
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(get("SDIST_BOX_CTYPES").as_deref(), Some("system"));
        let allow = get("SDIST_BOX_CTYPES_ALLOW").unwrap();
        assert!(
            allow
                .split(':')
                .any(|p| p == "/root/.cache/sdist-box/envs/abc")
        );
        assert!(allow.split(':').any(|p| p == "/usr/lib"));
        assert!(!allow.contains("/build/src") && !allow.contains("/tmp"));
        assert!(
            with("")
                .plan
                .env
                .iter()
                .all(|(k, _)| k != "SDIST_BOX_CTYPES")
        );
    }

    fn compiled(env: &[(&str, &str)]) -> Compiled {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        compile(
            &Profile::load("default").unwrap(),
            &host(),
            &paths(),
            vec!["/usr/bin/python3".into()],
            &env,
        )
    }

    #[test]
    fn secrets_are_dropped_by_name_and_never_passed() {
        let c = compiled(&[
            ("AWS_SECRET_ACCESS_KEY", "s3cr3t"),
            ("GITHUB_TOKEN", "ghp"),
            ("LC_ALL", "C"),
            ("HOME", "/root"),
            ("PATH", "/evil"),
        ]);
        let names: Vec<&str> = c.plan.env.iter().map(|(k, _)| k.as_str()).collect();
        assert!(!names.contains(&"AWS_SECRET_ACCESS_KEY"));
        assert!(
            !c.plan
                .env
                .iter()
                .any(|(_, v)| v == "s3cr3t" || v == "ghp" || v == "/evil")
        );
        assert!(c.plan.env.contains(&("LC_ALL".into(), "C".into())));
        assert!(c.plan.env.contains(&("HOME".into(), "/home/build".into())));
        assert_eq!(
            c.dropped_env,
            vec!["AWS_SECRET_ACCESS_KEY", "GITHUB_TOKEN", "HOME", "PATH"]
        );
        let path = &c.plan.env.iter().find(|(k, _)| k == "PATH").unwrap().1;
        assert!(path.starts_with("/root/.cache/sdist-box/envs/abc/bin:"));
        assert!(c.plan.env.contains(&("LANG".into(), "C.UTF-8".into())));
    }

    #[test]
    fn only_build_dirs_are_writable() {
        let c = compiled(&[]);
        let rw: Vec<_> = c
            .plan
            .mounts
            .iter()
            .filter_map(|m| match m {
                MountEntry::Bind {
                    target,
                    access: Access::ReadWrite,
                    ..
                } => Some(target.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(
            rw,
            vec![
                PathBuf::from("/build/src"),
                PathBuf::from("/build/out"),
                PathBuf::from("/build/control")
            ]
        );
        let ll = &c.plan.landlock;
        assert!(
            ll.read_write
                .iter()
                .all(|p| !p.starts_with("/usr") && !p.starts_with("/root"))
        );
        assert!(
            ll.read_exec
                .contains(&PathBuf::from("/root/.pyenv/versions/3.11.7"))
        );
        assert_eq!(ll.devices_rw, vec![PathBuf::from("/dev/null")]);
        assert!(ll.tcp_connect.is_empty());
        assert_eq!(c.plan.cwd, PathBuf::from("/build/src"));
    }

    #[test]
    fn parents_are_mounted_before_children_and_system_paths_not_rebound() {
        let c = compiled(&[]);
        let targets: Vec<&PathBuf> = c.plan.mounts.iter().map(|m| m.target()).collect();
        let pos = |p: &str| {
            targets
                .iter()
                .position(|t| t.as_path() == Path::new(p))
                .unwrap()
        };
        assert!(pos("/dev") < pos("/dev/null"));
        assert!(pos("/tmp") < pos("/root/.cache/sdist-box/envs/abc"));
        // /usr/lib/python3.11 is inside /usr: no second bind.
        assert!(
            !targets
                .iter()
                .any(|t| t.as_path() == Path::new("/usr/lib/python3.11"))
        );
        assert!(c.plan.mounts.iter().any(
            |m| matches!(m, MountEntry::Symlink { target, .. } if target == Path::new("/bin"))
        ));
        assert!(
            !targets
                .iter()
                .any(|t| t.starts_with("/sys") || t.starts_with("/home/user"))
        );
    }

    #[test]
    fn the_degraded_mode_uses_host_paths_and_drops_only_namespace_layers() {
        let mut p = paths();
        p.without_namespaces = Some(PrivateDirs {
            home: "/tmp/w/home".into(),
            tmp: "/tmp/w/tmp".into(),
        });
        let c = compile(
            &Profile::load("default").unwrap(),
            &host(),
            &p,
            vec!["/usr/bin/python3".into()],
            &[("HOME".into(), "/root".into())],
        );
        let plan = &c.plan;
        assert_eq!(plan.mode, Mode::Degraded);
        assert!(plan.mounts.is_empty());
        assert_eq!(plan.cwd, PathBuf::from("/tmp/w/src"));
        assert!(plan.env.contains(&("HOME".into(), "/tmp/w/home".into())));
        assert!(plan.env.contains(&("TMPDIR".into(), "/tmp/w/tmp".into())));
        // Writable: exactly the work directories, on the host.
        let mut rw = plan.landlock.read_write.clone();
        rw.sort();
        let expected: Vec<PathBuf> = [
            "/tmp/w/control",
            "/tmp/w/home",
            "/tmp/w/out",
            "/tmp/w/src",
            "/tmp/w/tmp",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        assert_eq!(rw, expected);
        assert!(plan.landlock.read_exec.contains(&"/tmp/w/shim".into()));
        assert!(
            !plan
                .landlock
                .read_exec
                .iter()
                .any(|p| p.starts_with("/tmp/w/src"))
        );
        assert!(plan.landlock.tcp_connect.is_empty() && !plan.landlock.tcp_connect_by_supervisor);
        // Layers that need namespaces are not required there; the rest are.
        for l in NEED_NAMESPACES {
            assert!(!plan.required.contains(l), "{l:?}");
        }
        assert!(plan.required.contains(&Layer::LandlockFs));
        assert!(plan.required.contains(&Layer::SeccompDeny));
        let places = Places::of(&p);
        assert_eq!(places.src, PathBuf::from("/tmp/w/src"));
        assert_eq!(Places::of(&paths()).src, PathBuf::from(inside::SRC));
    }

    #[test]
    fn limits_and_required_layers_come_from_the_profile() {
        let c = compiled(&[]);
        assert_eq!(c.plan.limits.processes, Some(512));
        assert_eq!(c.plan.limits.memory_bytes, Some(8 << 30));
        assert_eq!(c.plan.limits.wall_seconds, 1800);
        assert!(
            c.plan
                .required
                .contains(&crate::sandbox::Layer::SeccompDeny)
        );
        assert_ne!(c.plan.inner_uid, 0);
        assert_ne!(c.plan.root_maps_to, 0);
    }
}
