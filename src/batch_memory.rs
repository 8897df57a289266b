//! `build-all --jobs` against the host's memory: `jobs` sandboxes at once,
//! each allowed the profile's `sandbox-memory`, must fit in what the host
//! can give, or one batch could push the machine into its OOM killer.
//!
//! What the host can give: `MemAvailable` now, and no more than the memory
//! limit of the cgroup sdist-box itself runs in. The parallelism is lowered
//! (never below one) with a message saying why; it is never raised.

use std::path::Path;

/// `(jobs to run, why it was lowered)`.
pub fn cap_jobs(jobs: u32, per_build: Option<u64>) -> (u32, Option<String>) {
    let (Some(per_build), Some(budget)) = (per_build.filter(|b| *b > 0), host_budget()) else {
        return (jobs, None);
    };
    cap_with(jobs, per_build, budget)
}

fn cap_with(jobs: u32, per_build: u64, budget: u64) -> (u32, Option<String>) {
    let fits = (budget / per_build).clamp(1, u64::from(u32::MAX)) as u32;
    if jobs <= fits {
        return (jobs, None);
    }
    let b = crate::sandbox::resources::bytes;
    (
        fits,
        Some(format!(
            "--jobs {jobs} × sandbox-memory {} would exceed the {} this host can give; running {fits} at a time (lower `sandbox-memory` in the profile to run more)",
            b(per_build),
            b(budget)
        )),
    )
}

/// The memory this host can give sdist-box's builds now.
fn host_budget() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let available = meminfo.lines().find_map(|l| {
        let kib: u64 = l
            .strip_prefix("MemAvailable:")?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kib * 1024)
    })?;
    Some(available.min(own_cgroup_limit().unwrap_or(u64::MAX)))
}

/// The memory limit of the cgroup this process is in (v2 `memory.max`,
/// v1 `memory.limit_in_bytes`), if it has one.
fn own_cgroup_limit() -> Option<u64> {
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    own.lines().find_map(|l| {
        let mut f = l.splitn(3, ':');
        let (_, ctrl, path) = (f.next()?, f.next()?, f.next()?);
        let rel = path.trim_start_matches('/');
        let file = match ctrl {
            "" => Path::new("/sys/fs/cgroup").join(rel).join("memory.max"),
            c if c.split(',').any(|c| c == "memory") => Path::new("/sys/fs/cgroup/memory")
                .join(rel)
                .join("memory.limit_in_bytes"),
            _ => return None,
        };
        std::fs::read_to_string(file).ok()?.trim().parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_are_lowered_to_what_fits_never_raised() {
        const G: u64 = 1 << 30;
        assert_eq!(cap_with(8, 8 * G, 22 * G).0, 2);
        assert!(
            cap_with(8, 8 * G, 22 * G)
                .1
                .unwrap()
                .contains("running 2 at a time")
        );
        assert_eq!(cap_with(2, 8 * G, 22 * G), (2, None));
        assert_eq!(cap_with(4, 8 * G, 4 * G).0, 1);
    }
}
