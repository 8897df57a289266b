//! The `resources` layer as init sees it: whether the parent put the
//! sandbox in a cgroup, the fallback where it could not, anonymous
//! executables, and how full the sandbox's sized file systems ended.
//!
//! The cgroup itself is made and read by the parent ([`super::cgroup`]);
//! init only learns its description. Without one, the walls left are the
//! per-process rlimits, the sizes of `/tmp` and `HOME`, and `memfd_create`
//! refused by seccomp (memfd pages are in no process's address space, so
//! no rlimit bounds them).

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::plan::{Layer, MountEntry, SandboxPlan};
// FsUse lives in status.rs, beside the init message that carries it.
pub use super::status::FsUse;
use super::status::{LayerState, LayerStatus};

/// What the parent tells init about the sandbox's cgroup.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Setup {
    /// The cgroup, in words, when the sandbox is in one.
    pub cgroup: Option<String>,
    /// Why it is not, otherwise.
    pub why_not: Option<String>,
}

/// Bytes for people: `256 MiB`, `1.5 GiB`.
pub fn bytes(b: u64) -> String {
    const GIB: u64 = 1 << 30;
    const MIB: u64 = 1 << 20;
    if b >= GIB {
        let g = b as f64 / GIB as f64;
        if b.is_multiple_of(GIB) {
            format!("{} GiB", b / GIB)
        } else {
            format!("{g:.1} GiB")
        }
    } else if b >= MIB {
        format!("{} MiB", (b + MIB / 2) / MIB)
    } else {
        format!("{} KiB", b.div_ceil(1024))
    }
}

/// Init, after the command ended: how full each sized tmpfs is (`/tmp`,
/// `HOME`; the ones the build can write).
pub fn fs_usage(plan: &SandboxPlan) -> Vec<FsUse> {
    plan.mounts
        .iter()
        .filter_map(|m| match m {
            MountEntry::Tmpfs {
                target, size_bytes, ..
            } if plan.landlock.read_write.iter().any(|w| w == target) => {
                let s = nix::sys::statvfs::statvfs(target.as_path()).ok()?;
                let block = s.fragment_size().max(1);
                let total = s.blocks() * block;
                let free = s.blocks_available() * block;
                Some(FsUse {
                    target: target.clone(),
                    size_bytes: (*size_bytes).min(total.max(1)),
                    used_bytes: total.saturating_sub(free),
                })
            }
            _ => None,
        })
        .collect()
}

/// The plan the rlimits are set from: with a cgroup, its `pids.max` is the
/// wall for processes (it counts the whole sandbox and its hits are seen
/// from outside), so the per-uid `RLIMIT_NPROC` is set above it and stays
/// only as a second bound.
pub fn rlimits_under(plan: &SandboxPlan, setup: &Setup) -> SandboxPlan {
    let mut plan = plan.clone();
    if setup.cgroup.is_some()
        && let Some(p) = plan.limits.processes
    {
        plan.limits.processes = Some(p.saturating_add(p / 4).saturating_add(8));
    }
    plan
}

/// The parent, after the run: how full each size-limited file system the
/// sandbox could write through a bind is (the build tree on its own
/// tmpfs, see `tree.rs`), once per file system, named by its first target.
pub fn bind_usage(plan: &SandboxPlan) -> Vec<FsUse> {
    const TMPFS_MAGIC: i64 = 0x0102_1994;
    let mut seen = Vec::new();
    let mut out = Vec::new();
    for m in &plan.mounts {
        let MountEntry::Bind {
            source,
            target,
            access: super::plan::Access::ReadWrite,
        } = m
        else {
            continue;
        };
        let Ok(fs) = nix::sys::statfs::statfs(source.as_path()) else {
            continue;
        };
        if fs.filesystem_type().0 != TMPFS_MAGIC {
            continue;
        }
        let Ok(s) = nix::sys::statvfs::statvfs(source.as_path()) else {
            continue;
        };
        if seen.contains(&s.filesystem_id()) {
            continue;
        }
        seen.push(s.filesystem_id());
        let block = s.fragment_size().max(1);
        let total = s.blocks() * block;
        out.push(FsUse {
            target: target.clone(),
            size_bytes: total,
            used_bytes: total.saturating_sub(s.blocks_available() * block),
        });
    }
    out
}

/// `vm.memfd_noexec = 2` in the sandbox's own pid namespace (Linux 6.3+):
/// every memfd is created non-executable and sealed so, and `MFD_EXEC` is
/// refused; a child pid namespace cannot lower it.
pub fn forbid_executable_memfds() -> std::io::Result<()> {
    std::fs::write(Path::new("/proc/sys/vm/memfd_noexec"), "2")
}

/// The `resources` layer's state, from what init could set up.
pub fn layer(
    plan: &SandboxPlan,
    setup: &Setup,
    anon_exec: &str,
    memfd_refused: bool,
) -> LayerStatus {
    let sizes: Vec<String> = plan
        .mounts
        .iter()
        .filter_map(|m| match m {
            MountEntry::Tmpfs {
                target, size_bytes, ..
            } if plan.landlock.read_write.iter().any(|w| w == target) => {
                Some(format!("{} {}", target.display(), bytes(*size_bytes)))
            }
            _ => None,
        })
        .collect();
    let sizes = if sizes.is_empty() {
        "no sized file system (degraded mode: the host's)".to_string()
    } else {
        format!("sized file systems: {}", sizes.join(", "))
    };
    match &setup.cgroup {
        Some(cg) => LayerStatus {
            layer: Layer::Resources,
            state: LayerState::Enforced,
            detail: format!("{cg}; {sizes}; {anon_exec}"),
        },
        None => LayerStatus {
            layer: Layer::Resources,
            state: LayerState::Partial,
            detail: format!(
                "no cgroup ({}); fallback: per-process rlimits, {}, {sizes}; {anon_exec}",
                setup.why_not.as_deref().unwrap_or("none found"),
                if memfd_refused {
                    "memfd_create refused (seccomp)"
                } else {
                    "memfd_create NOT refused"
                }
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_for_people() {
        assert_eq!(bytes(256 << 20), "256 MiB");
        assert_eq!(bytes(8 << 30), "8 GiB");
        assert_eq!(bytes(3 << 29), "1.5 GiB");
        assert_eq!(bytes(1000), "1 KiB");
    }

    #[test]
    fn a_file_system_is_full_near_its_size() {
        let f = |used| FsUse {
            target: "/tmp".into(),
            size_bytes: 128 << 20,
            used_bytes: used,
        };
        assert!(f(128 << 20).full());
        assert!(f((128 << 20) - 4096).full());
        assert!(!f(64 << 20).full());
    }
}
