//! One cgroup per sandbox: memory (heap, page cache, tmpfs and memfd pages
//! alike, no swap), processes and, on request, CPU, for the whole sandbox
//! rather than per process.
//!
//! Where the cgroups come from ([`find_base`]), in order:
//! 1. `SDIST_BOX_CGROUP`: directories a delegator made for us (colon
//!    separated; cgroup v2: one directory; v1: one per hierarchy, the
//!    `memory` and `pids` ones at least), writable by the caller;
//! 2. the caller's own cgroup, from `/proc/self/cgroup`, when it may create
//!    children there: root; a delegated systemd scope or user session; a
//!    container's writable cgroup namespace.
//!
//! Each sandbox gets `sdist-box-<pid>-<n>` beneath that base (in each v1
//! hierarchy). The sandbox's first process moves itself in before it does
//! anything else (a thread moving itself skips the kernel's global lock,
//! ~10 ms when the parent moves it); everything the build starts is then
//! charged there.
//! A watcher ([`Watch`]) kills the whole sandbox when a limit is hit (cgroup
//! v2 does it itself with `memory.oom.group`; v1 only kills one process).
//! The cgroup is removed when the run ends, and cgroups of an sdist-box
//! that was killed (its pid gone) are swept at the next start.
//!
//! Invariants: nothing is written above the base; the caller's own process
//! is moved only on cgroup v2, only into a leaf with no limits, and only
//! when its own cgroup must give up its processes to delegate controllers.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::plan::Limits;
use super::sys;

/// The environment variable naming a delegated cgroup.
pub const CGROUP_ENV: &str = "SDIST_BOX_CGROUP";
const PREFIX: &str = "sdist-box-";
/// A cgroup of a gone sdist-box is swept once it is this old.
const STALE_AFTER: Duration = Duration::from_secs(60);

#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("no cgroup for the sandbox: {why}")]
    Unavailable {
        why: String,
        /// The command that fixes it, for `doctor` and the report.
        fix: String,
    },
    #[error("failed to {what} `{}`: {source}", .path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

fn io_at(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> CgroupError {
    let path = path.to_path_buf();
    move |source| CgroupError::Io { what, path, source }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Version {
    V1,
    V2,
}

/// How sdist-box came by its cgroup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// `SDIST_BOX_CGROUP` named it.
    Environment,
    /// Beneath the caller's own cgroup (root, a delegated scope, a
    /// container's cgroup namespace).
    Own,
}

/// Where the sandboxes' cgroups are made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Base {
    pub version: Version,
    pub source: Source,
    /// v2: the one directory; v1: the memory hierarchy's.
    pub memory: PathBuf,
    /// v2: the same as `memory`; v1: the pids hierarchy's.
    pub pids: PathBuf,
    /// v1: the cpu hierarchy's, when writable; v2: `memory` when the
    /// `cpu` controller is delegated.
    pub cpu: Option<PathBuf>,
}

impl Base {
    pub fn describe(&self) -> String {
        let how = match self.source {
            Source::Environment => format!("delegated by {CGROUP_ENV}"),
            Source::Own if nix::unistd::geteuid().is_root() => "own subtree (root)".to_string(),
            Source::Own => "own delegated subtree".to_string(),
        };
        match self.version {
            Version::V2 => format!("cgroup v2 {} ({how})", self.memory.display()),
            Version::V1 => format!(
                "cgroup v1 memory {}, pids {} ({how})",
                self.memory.display(),
                self.pids.display()
            ),
        }
    }

    fn dirs(&self) -> Vec<&Path> {
        let mut d = vec![self.memory.as_path()];
        if self.pids != self.memory {
            d.push(&self.pids);
        }
        if let Some(c) = &self.cpu
            && !d.contains(&c.as_path())
        {
            d.push(c);
        }
        d
    }
}

/// The command that gives an unprivileged user a delegated cgroup here.
pub fn fix_command(version: Option<Version>) -> String {
    let user = nix::unistd::User::from_uid(nix::unistd::geteuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| nix::unistd::geteuid().to_string());
    match version {
        Some(Version::V1) => format!(
            "as root: for c in memory pids; do mkdir -p /sys/fs/cgroup/$c/sdist-box-{user} && chown -R {user} /sys/fs/cgroup/$c/sdist-box-{user}; done; then: export {CGROUP_ENV}=/sys/fs/cgroup/memory/sdist-box-{user}:/sys/fs/cgroup/pids/sdist-box-{user}"
        ),
        _ => "systemd-run --user --scope -p Delegate=yes sdist-box … (or run it in a systemd user session, which delegates memory and pids)".to_string(),
    }
}

const CGROUP2_MAGIC: i64 = 0x6367_7270;
const CGROUP1_MAGIC: i64 = 0x0027_e0eb;

fn fs_magic(path: &Path) -> Option<i64> {
    nix::sys::statfs::statfs(path)
        .ok()
        .map(|s| s.filesystem_type().0)
}

fn writable(path: &Path) -> bool {
    nix::unistd::access(path, nix::unistd::AccessFlags::W_OK).is_ok()
        && nix::unistd::access(&path.join("cgroup.procs"), nix::unistd::AccessFlags::W_OK).is_ok()
}

fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

fn write(path: &Path, value: &str) -> Result<(), CgroupError> {
    std::fs::write(path, value).map_err(io_at("write", path))
}

/// Find where this process may make its sandboxes' cgroups.
pub fn find_base() -> Result<Base, CgroupError> {
    if let Some(list) = std::env::var_os(CGROUP_ENV).filter(|v| !v.is_empty()) {
        let dirs: Vec<PathBuf> = std::env::split_paths(&list).collect();
        return base_from_dirs(&dirs, Source::Environment);
    }
    let own = read(Path::new("/proc/self/cgroup")).unwrap_or_default();
    let mounts = read(Path::new("/proc/self/mountinfo")).unwrap_or_default();
    let dirs = own_dirs(&own, &mounts);
    if dirs.v1_memory.is_some() || dirs.v2.is_none() {
        let (Some(memory), Some(pids)) = (dirs.v1_memory, dirs.v1_pids) else {
            return Err(CgroupError::Unavailable {
                why: "this host mounts neither a cgroup v2 hierarchy with the memory controller nor the v1 memory and pids controllers".into(),
                fix: "mount the cgroup file systems (systemd does), or pass a delegated cgroup in SDIST_BOX_CGROUP".into(),
            });
        };
        let mut list = vec![memory, pids];
        list.extend(dirs.v1_cpu.filter(|c| writable(c)));
        return base_from_dirs(&list, Source::Own);
    }
    let v2 = dirs.v2.expect("checked above");
    base_from_dirs(&[v2], Source::Own)
}

#[derive(Debug, Default, PartialEq)]
struct OwnDirs {
    v2: Option<PathBuf>,
    v1_memory: Option<PathBuf>,
    v1_pids: Option<PathBuf>,
    v1_cpu: Option<PathBuf>,
}

/// This process's cgroup directories, from `/proc/self/cgroup` and the
/// mount table (a mount's root is subtracted: in a cgroup namespace both
/// are relative to its root).
fn own_dirs(cgroup: &str, mountinfo: &str) -> OwnDirs {
    let mut out = OwnDirs::default();
    for line in cgroup.lines() {
        let mut f = line.splitn(3, ':');
        let (Some(_), Some(ctrl), Some(path)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        for m in mountinfo.lines() {
            let Some((left, right)) = m.split_once(" - ") else {
                continue;
            };
            let l: Vec<&str> = left.split(' ').collect();
            let r: Vec<&str> = right.split(' ').collect();
            if l.len() < 5 || r.len() < 3 {
                continue;
            }
            let (root, point) = (l[3], l[4]);
            let opts: Vec<&str> = r[2].split(',').collect();
            let matches = match ctrl {
                "" => r[0] == "cgroup2",
                c => r[0] == "cgroup" && c.split(',').all(|c| opts.contains(&c)),
            };
            if !matches {
                continue;
            }
            let rel = Path::new(path)
                .strip_prefix(root)
                .unwrap_or(Path::new(path))
                .to_path_buf();
            let rel = rel.strip_prefix("/").unwrap_or(&rel);
            let dir = Path::new(point).join(rel);
            let slot = match ctrl {
                "" => &mut out.v2,
                c if c.split(',').any(|c| c == "memory") => &mut out.v1_memory,
                c if c.split(',').any(|c| c == "pids") => &mut out.v1_pids,
                c if c.split(',').any(|c| c == "cpu") => &mut out.v1_cpu,
                _ => continue,
            };
            slot.get_or_insert(dir);
            break;
        }
    }
    // A v2 hierarchy without the memory controller (a hybrid host's
    // `unified`) is no use.
    if let Some(v2) = &out.v2
        && !read(&v2.join("cgroup.controllers"))
            .unwrap_or_default()
            .split_whitespace()
            .any(|c| c == "memory")
        && out.v1_memory.is_some()
    {
        out.v2 = None;
    }
    out
}

fn base_from_dirs(dirs: &[PathBuf], source: Source) -> Result<Base, CgroupError> {
    let fix = |v| fix_command(Some(v));
    let mut v2 = None;
    let (mut memory, mut pids, mut cpu) = (None, None, None);
    for d in dirs {
        match fs_magic(d) {
            Some(CGROUP2_MAGIC) => v2 = Some(d.clone()),
            Some(CGROUP1_MAGIC) => {
                if d.join("memory.limit_in_bytes").exists() {
                    memory = Some(d.clone());
                } else if d.join("pids.max").exists() || is_v1_root_of(d, "pids") {
                    pids = Some(d.clone());
                } else if d.join("cpu.cfs_quota_us").exists() {
                    cpu = Some(d.clone());
                }
            }
            _ => {
                return Err(CgroupError::Unavailable {
                    why: format!("`{}` is not a cgroup directory", d.display()),
                    fix: fix(Version::V1),
                });
            }
        }
    }
    for d in dirs {
        if !writable(d) {
            return Err(CgroupError::Unavailable {
                why: format!(
                    "`{}` is not writable by uid {} (it needs a delegated subtree)",
                    d.display(),
                    nix::unistd::geteuid()
                ),
                fix: fix(if v2.is_some() {
                    Version::V2
                } else {
                    Version::V1
                }),
            });
        }
    }
    if let Some(dir) = v2 {
        let cpu = prepare_v2(&dir, source)?;
        return Ok(Base {
            version: Version::V2,
            source,
            pids: dir.clone(),
            cpu: cpu.then(|| dir.clone()),
            memory: dir,
        });
    }
    match (memory, pids) {
        (Some(memory), Some(pids)) => Ok(Base {
            version: Version::V1,
            source,
            memory,
            pids,
            cpu,
        }),
        (m, _) => Err(CgroupError::Unavailable {
            why: format!(
                "cgroup v1 needs a `{}` directory and none was given ({})",
                if m.is_none() { "memory" } else { "pids" },
                dirs.iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            fix: fix(Version::V1),
        }),
    }
}

/// The root of a v1 hierarchy has no `pids.max`; it is still a pids one.
fn is_v1_root_of(dir: &Path, controller: &str) -> bool {
    dir.file_name().and_then(|n| n.to_str()) == Some(controller)
        && dir.join("cgroup.sane_behavior").exists()
}

/// Cgroup v2: children get the memory and pids controllers only if the
/// base delegates them (`cgroup.subtree_control`), and a cgroup that
/// delegates controllers may hold no process ("no internal processes"):
/// sdist-box, alone in its scope, moves itself into a leaf first. Returns
/// whether the cpu controller is delegated too.
fn prepare_v2(dir: &Path, source: Source) -> Result<bool, CgroupError> {
    let controllers = read(&dir.join("cgroup.controllers")).unwrap_or_default();
    let has = |c: &str| controllers.split_whitespace().any(|x| x == c);
    if !has("memory") || !has("pids") {
        return Err(CgroupError::Unavailable {
            why: format!(
                "the cgroup v2 `{}` lacks the memory or pids controller (it has: {})",
                dir.display(),
                if controllers.trim().is_empty() {
                    "none"
                } else {
                    controllers.trim()
                }
            ),
            fix: fix_command(Some(Version::V2)),
        });
    }
    let want: Vec<&str> = ["memory", "pids", "cpu"]
        .into_iter()
        .filter(|c| has(c))
        .collect();
    let control = dir.join("cgroup.subtree_control");
    let enabled = read(&control).unwrap_or_default();
    let missing: Vec<String> = want
        .iter()
        .filter(|c| !enabled.split_whitespace().any(|x| x == **c))
        .map(|c| format!("+{c}"))
        .collect();
    if !missing.is_empty() && std::fs::write(&control, missing.join(" ")).is_err() {
        // Busy: processes live here. Only our own may be moved (into a leaf
        // without limits), and only when nothing else shares the cgroup.
        let procs = read(&dir.join("cgroup.procs")).unwrap_or_default();
        let me = std::process::id().to_string();
        let others = procs.lines().filter(|p| p.trim() != me).count();
        if source == Source::Environment || others > 0 {
            return Err(CgroupError::Unavailable {
                why: format!(
                    "the cgroup v2 `{}` holds other processes ({others}), so it cannot delegate memory and pids to the sandboxes",
                    dir.display()
                ),
                fix: fix_command(Some(Version::V2)),
            });
        }
        let leaf = dir.join(format!("{PREFIX}{}-self", std::process::id()));
        std::fs::create_dir_all(&leaf).map_err(io_at("create", &leaf))?;
        write(&leaf.join("cgroup.procs"), &me)?;
        write(&control, &missing.join(" "))?;
    }
    Ok(has("cpu"))
}

/// What the sandbox's cgroup holds it to, and what it used.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub cgroup: String,
    pub memory_limit_bytes: Option<u64>,
    pub memory_peak_bytes: Option<u64>,
    /// The kernel's OOM killer ran in the sandbox's cgroup.
    pub memory_oom_kills: u64,
    /// Times a charge met the limit (reclaim may have satisfied them).
    pub memory_limit_events: u64,
    pub swap_bounded: bool,
    pub pids_limit: Option<u64>,
    pub pids_peak: Option<u64>,
    /// Forks refused at `pids.max`.
    pub pids_limit_events: u64,
    pub cpu_millicores: Option<u64>,
    /// Throttled periods (the CPU limit was reached).
    pub cpu_throttled: u64,
    /// What made the watcher kill the whole sandbox, if anything.
    pub killed_for: Option<String>,
}

/// One sandbox's cgroup; removed when dropped.
#[derive(Debug)]
pub struct SandboxCgroup {
    version: Version,
    memory: PathBuf,
    pids: PathBuf,
    cpu: Option<PathBuf>,
    limits: (Option<u64>, Option<u64>, Option<u64>),
    swap_bounded: bool,
}

static SEQ: AtomicU64 = AtomicU64::new(0);

impl SandboxCgroup {
    /// Make a fresh cgroup beneath `base` with the plan's limits (after
    /// sweeping those a dead sdist-box left).
    pub fn create(base: &Base, limits: &Limits) -> Result<SandboxCgroup, CgroupError> {
        static SWEPT: std::sync::Once = std::sync::Once::new();
        SWEPT.call_once(|| {
            for d in base.dirs() {
                sweep_stale(d);
            }
        });
        let name = format!(
            "{PREFIX}{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let mk = |d: &Path| -> Result<PathBuf, CgroupError> {
            let p = d.join(&name);
            std::fs::create_dir(&p).map_err(io_at("create the cgroup", &p))?;
            Ok(p)
        };
        let memory = mk(&base.memory)?;
        let mut cg = SandboxCgroup {
            version: base.version,
            pids: memory.clone(),
            cpu: None,
            memory,
            limits: (
                limits.sandbox_memory_bytes,
                limits.processes,
                limits.cpu_millicores,
            ),
            swap_bounded: false,
        };
        if base.version == Version::V1 {
            cg.pids = mk(&base.pids)?;
        }
        if let (Some(c), Some(_)) = (&base.cpu, limits.cpu_millicores) {
            cg.cpu = Some(if *c == base.memory {
                cg.memory.clone()
            } else {
                mk(c)?
            });
        }
        // Dropped (and removed) on any error below.
        cg.set_limits()?;
        Ok(cg)
    }

    fn set_limits(&mut self) -> Result<(), CgroupError> {
        let (memory, pids, cpu) = self.limits;
        let m = &self.memory;
        match self.version {
            Version::V2 => {
                if let Some(b) = memory {
                    write(&m.join("memory.max"), &b.to_string())?;
                    let swap = m.join("memory.swap.max");
                    self.swap_bounded = !swap.exists() || std::fs::write(&swap, "0").is_ok();
                    write(&m.join("memory.oom.group"), "1")?;
                }
                if let Some(p) = pids {
                    write(&m.join("pids.max"), &p.to_string())?;
                }
                if let (Some(c), Some(dir)) = (cpu, &self.cpu) {
                    write(&dir.join("cpu.max"), &format!("{} 100000", c * 100))?;
                }
            }
            Version::V1 => {
                if let Some(b) = memory {
                    write(&m.join("memory.limit_in_bytes"), &b.to_string())?;
                    let memsw = m.join("memory.memsw.limit_in_bytes");
                    self.swap_bounded = memsw.exists() && write(&memsw, &b.to_string()).is_ok();
                    // Without memsw accounting, at least prefer not to swap.
                    let _ = std::fs::write(m.join("memory.swappiness"), "0");
                }
                if let Some(p) = pids {
                    write(&self.pids.join("pids.max"), &p.to_string())?;
                }
                if let (Some(c), Some(dir)) = (cpu, &self.cpu) {
                    write(&dir.join("cpu.cfs_period_us"), "100000")?;
                    write(&dir.join("cpu.cfs_quota_us"), &(c * 100).to_string())?;
                }
            }
        }
        Ok(())
    }

    fn dirs(&self) -> Vec<&Path> {
        let mut d = vec![self.memory.as_path()];
        if self.pids != self.memory {
            d.push(&self.pids);
        }
        if let Some(c) = &self.cpu
            && !d.contains(&c.as_path())
        {
            d.push(c);
        }
        d
    }

    /// The files the sandbox's first process writes `0` to, to move itself
    /// in (see `sys::ChildExec::cgroup_join`): v1 `tasks` of each
    /// hierarchy, v2 `cgroup.procs`.
    pub fn join_files(&self) -> Vec<PathBuf> {
        let file = match self.version {
            Version::V1 => "tasks",
            Version::V2 => "cgroup.procs",
        };
        self.dirs().iter().map(|d| d.join(file)).collect()
    }

    /// In words, for the report's `resources` layer.
    pub fn describe(&self) -> String {
        let (memory, pids, cpu) = self.limits;
        let mut parts = vec![format!(
            "cgroup {} {}",
            match self.version {
                Version::V1 => "v1",
                Version::V2 => "v2",
            },
            self.memory.display()
        )];
        if let Some(b) = memory {
            parts.push(format!(
                "memory {} for the whole sandbox ({}; {})",
                crate::sandbox::resources::bytes(b),
                if self.swap_bounded {
                    "no swap"
                } else {
                    "swap not bounded: memory.memsw is missing (boot with swapaccount=1)"
                },
                match self.version {
                    Version::V2 => "the whole group killed at the limit by memory.oom.group",
                    Version::V1 => "the whole sandbox killed by sdist-box at the limit",
                }
            ));
        }
        if let Some(p) = pids {
            parts.push(format!("{p} processes"));
        }
        if let Some(c) = cpu.filter(|_| self.cpu.is_some()) {
            parts.push(format!("{:.2} CPUs", c as f64 / 1000.0));
        }
        parts.join(", ")
    }

    /// A limit the sandbox met that ends it: the kernel's OOM killer ran
    /// (v1 kills one process only), or a fork met `pids.max`.
    pub fn hit(&self) -> Option<&'static str> {
        let (oom, _) = self.memory_events();
        if oom > 0 {
            return Some("memory");
        }
        if self.pids_events() > 0 {
            return Some("processes");
        }
        None
    }

    fn memory_events(&self) -> (u64, u64) {
        match self.version {
            Version::V2 => {
                let ev = read(&self.memory.join("memory.events")).unwrap_or_default();
                (
                    keyed(&ev, "oom_kill").max(keyed(&ev, "oom_group_kill")),
                    keyed(&ev, "max"),
                )
            }
            Version::V1 => (
                keyed(
                    &read(&self.memory.join("memory.oom_control")).unwrap_or_default(),
                    "oom_kill",
                ),
                number(&self.memory.join("memory.failcnt")).unwrap_or(0),
            ),
        }
    }

    fn pids_events(&self) -> u64 {
        keyed(
            &read(&self.pids.join("pids.events")).unwrap_or_default(),
            "max",
        )
    }

    /// Peaks and limit events, read when the sandbox has ended.
    pub fn usage(&self) -> Usage {
        let (oom, max_events) = self.memory_events();
        let peak = match self.version {
            Version::V2 => number(&self.memory.join("memory.peak")),
            Version::V1 => number(&self.memory.join("memory.max_usage_in_bytes")),
        };
        let throttled = self
            .cpu
            .as_ref()
            .map(|c| {
                let stat = read(&c.join("cpu.stat")).unwrap_or_default();
                keyed(&stat, "nr_throttled")
            })
            .unwrap_or(0);
        Usage {
            cgroup: self.memory.display().to_string(),
            memory_limit_bytes: self.limits.0,
            memory_peak_bytes: peak,
            memory_oom_kills: oom,
            memory_limit_events: max_events,
            swap_bounded: self.swap_bounded,
            pids_limit: self.limits.1,
            pids_peak: number(&self.pids.join("pids.peak")),
            pids_limit_events: self.pids_events(),
            cpu_millicores: self.limits.2.filter(|_| self.cpu.is_some()),
            cpu_throttled: throttled,
            killed_for: None,
        }
    }

    /// Watch for a limit that ends the sandbox, and kill it (through
    /// `pidfd`, the sandbox's first process: in a pid namespace the rest
    /// die with it; and every process the cgroup holds, for the degraded
    /// mode) when one is met.
    pub fn watch(self: &Arc<Self>, pidfd: OwnedFd) -> Watch {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let cg = self.clone();
        let thread = std::thread::spawn(move || {
            loop {
                // Woken at once when the run ends (the sender is dropped);
                // the first look comes after set-up, not competing with it.
                match stopped.recv_timeout(Duration::from_millis(20)) {
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                    _ => return None,
                }
                if let Some(what) = cg.hit() {
                    let _ = sys::pidfd_send_signal(pidfd.as_fd(), libc::SIGKILL);
                    cg.kill_all();
                    return Some(what.to_string());
                }
            }
        });
        Watch {
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// SIGKILL every process in the cgroup, until none is left.
    fn kill_all(&self) {
        if self.version == Version::V2
            && std::fs::write(self.memory.join("cgroup.kill"), "1").is_ok()
        {
            return;
        }
        kill_procs(&self.memory);
    }
}

impl Drop for SandboxCgroup {
    fn drop(&mut self) {
        for d in self.dirs() {
            remove(d);
        }
    }
}

/// The watcher thread of one run (stopped when dropped: a run that ends
/// early leaves no thread behind).
pub struct Watch {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Option<String>>>,
}

impl Watch {
    /// Stop watching; what the watcher killed the sandbox for, if it did.
    pub fn finish(mut self) -> Option<String> {
        drop(self.stop.take());
        self.thread.take()?.join().ok().flatten()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        drop(self.stop.take());
    }
}

fn kill_procs(dir: &Path) {
    for _ in 0..50 {
        let procs = read(&dir.join("cgroup.procs")).unwrap_or_default();
        let pids: Vec<i32> = procs
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect();
        if pids.is_empty() {
            return;
        }
        for p in pids {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(p),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Kill what is left and remove the directory (a killed process leaves
/// its cgroup a moment after SIGKILL: retried briefly).
fn remove(dir: &Path) {
    for attempt in 0..100 {
        match std::fs::remove_dir(dir) {
            Ok(()) => return,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return,
            Err(_) => {
                if attempt == 0 && std::fs::write(dir.join("cgroup.kill"), "1").is_err() {
                    kill_procs(dir);
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    }
    tracing::warn!("could not remove the cgroup {}", crate::text::path(dir));
}

/// Remove the cgroups of sdist-box processes that are gone (killed before
/// they could remove their own): empty ones, a minute old or more.
pub fn sweep_stale(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(owner) = name
            .to_str()
            .and_then(|n| n.strip_prefix(PREFIX))
            .and_then(|n| n.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        // Never kill here: only an empty cgroup is removed (the sandbox's
        // init dies with its sdist-box, and with it the pid namespace), and
        // only one made a minute ago or more, since a pid that is not in our
        // /proc may be a live sdist-box of another pid namespace sharing
        // the hierarchy, between its mkdir and its first process.
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age >= STALE_AFTER);
        if owner != std::process::id() && old && !Path::new(&format!("/proc/{owner}")).exists() {
            let _ = std::fs::remove_dir(e.path());
        }
    }
}

fn keyed(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(' ')?;
            (k == key).then(|| v.trim().parse().ok()).flatten()
        })
        .unwrap_or(0)
}

fn number(path: &Path) -> Option<u64> {
    read(path)?.trim().parse().ok()
}

/// The cgroup for one run: `(cgroup, what init is told)`. Where none can be
/// had, init is told why (with the fix) and falls back.
pub fn for_run(limits: &Limits) -> (Option<Arc<SandboxCgroup>>, super::resources::Setup) {
    static BASE: std::sync::OnceLock<Base> = std::sync::OnceLock::new();
    let base = match BASE.get() {
        Some(b) => Ok(b.clone()),
        None => find_base().inspect(|b| {
            let _ = BASE.set(b.clone());
        }),
    };
    let made = base.and_then(|b| SandboxCgroup::create(&b, limits).map(|cg| (b, cg)));
    match made {
        Ok((base, cg)) => {
            let setup = super::resources::Setup {
                cgroup: Some(format!("{}; {}", cg.describe(), base.describe())),
                why_not: None,
            };
            (Some(Arc::new(cg)), setup)
        }
        Err(e) => {
            let why_not = match &e {
                CgroupError::Unavailable { why, fix } => format!("{why}; fix: {fix}"),
                other => other.to_string(),
            };
            (
                None,
                super::resources::Setup {
                    cgroup: None,
                    why_not: Some(why_not),
                },
            )
        }
    }
}

/// What `sdist-box doctor` says about cgroups here: which base was found
/// and how, or why none, with the command that fixes it.
pub fn doctor_lines() -> Vec<String> {
    match find_base() {
        Ok(base) => vec![format!(
            "cgroup: {}; each sandbox gets its own cgroup beneath it",
            base.describe()
        )],
        Err(CgroupError::Unavailable { why, fix }) => vec![
            format!("cgroup: none usable: {why}"),
            format!("cgroup fix: {fix}"),
        ],
        Err(e) => vec![format!("cgroup: none usable: {e}")],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_directories_on_a_hybrid_host() {
        let cgroup = "9:name=systemd:/\n8:pids:/\n4:memory:/process_api/abc\n1:cpu:/\n0::/\n";
        let mounts = "\
35 25 0:30 / /sys/fs/cgroup/memory rw,relatime shared:12 - cgroup cgroup rw,memory
37 25 0:32 / /sys/fs/cgroup/pids rw,relatime shared:14 - cgroup cgroup rw,pids
31 25 0:26 / /sys/fs/cgroup/cpu rw,relatime shared:8 - cgroup cgroup rw,cpu
40 25 0:35 / /sys/fs/cgroup/unified rw,relatime shared:15 - cgroup2 cgroup2 rw
";
        let d = own_dirs(cgroup, mounts);
        assert_eq!(
            d.v1_memory.as_deref(),
            Some(Path::new("/sys/fs/cgroup/memory/process_api/abc"))
        );
        assert_eq!(d.v1_pids.as_deref(), Some(Path::new("/sys/fs/cgroup/pids")));
        assert_eq!(d.v1_cpu.as_deref(), Some(Path::new("/sys/fs/cgroup/cpu")));
    }

    #[test]
    fn own_directory_in_a_cgroup_namespace() {
        // Inside a container the mount's root and our path are both "/".
        let d = own_dirs(
            "0::/\n",
            "50 40 0:40 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw\n",
        );
        assert_eq!(d.v2.as_deref(), Some(Path::new("/sys/fs/cgroup")));
        // A systemd scope, seen from the host.
        let d = own_dirs(
            "0::/user.slice/user-1000.slice/user@1000.service/app.slice/run-r1.scope\n",
            "50 40 0:40 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw\n",
        );
        assert_eq!(
            d.v2.as_deref(),
            Some(Path::new(
                "/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/app.slice/run-r1.scope"
            ))
        );
    }

    #[test]
    fn keyed_files_are_read_by_key() {
        let ev = "low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n";
        assert_eq!(keyed(ev, "max"), 12);
        assert_eq!(keyed(ev, "oom_kill"), 1);
        assert_eq!(keyed(ev, "missing"), 0);
        let v1 = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
        assert_eq!(keyed(v1, "oom_kill"), 3);
    }
}
