//! Limits a sandboxed run met, as `resource` findings and as the run's
//! `limit_hit`: memory and processes of the whole sandbox (its cgroup),
//! the sized file systems it could write, CPU and the wall clock.
//!
//! The cgroup's counters are read by sdist-box from outside the sandbox
//! after it ended; the package cannot forge them. Each finding names the
//! limit, the peak and the hook call in which it was met.

use crate::events::findings::{Finding, FindingVerdict, OpKind, Severity};
use crate::report::LimitHit;
use crate::sandbox::resources::bytes;
use crate::sandbox::{Limits, RunOutcome};

/// The PEP 517 hook a phase runs (`run` for `sdist-box run`).
pub fn hook_name(phase: &str) -> &str {
    match phase {
        "requires" => "get_requires_for_build_wheel",
        "metadata" => "prepare_metadata_for_build_wheel",
        "wheel" => "build_wheel",
        "run" => "the command",
        other => other,
    }
}

/// A limit of the whole sandbox the run met, from its cgroup and file
/// systems. Memory counts only when the kernel had to kill (or the run
/// failed with the cgroup at its limit): reclaiming page cache at the limit
/// is the limit working, not the build failing.
///
/// `failed`: the run failed (its exit, or the hook runner's own report).
pub fn sandbox_hit(outcome: &RunOutcome, failed: bool) -> Option<LimitHit> {
    if let Some(u) = &outcome.resources {
        match u.killed_for.as_deref() {
            Some("memory") => return Some(LimitHit::Memory),
            Some("processes") => return Some(LimitHit::Processes),
            _ => {}
        }
        if u.memory_oom_kills > 0 {
            return Some(LimitHit::Memory);
        }
        let at_limit = match (u.memory_peak_bytes, u.memory_limit_bytes) {
            (Some(p), Some(l)) => p >= l - l / 20,
            _ => false,
        };
        if failed && u.memory_limit_events > 0 && at_limit {
            return Some(LimitHit::Memory);
        }
        if pids_at_limit(u) {
            return Some(LimitHit::Processes);
        }
    }
    if failed && outcome.filesystems.iter().any(|f| f.full()) {
        return Some(LimitHit::Disk);
    }
    None
}

/// One sentence saying which limit of the whole sandbox ended the run, or
/// `None` when it was not one of these (the caller words the rest).
pub fn reason(phase: &str, outcome: &RunOutcome, hit: Option<LimitHit>) -> Option<String> {
    let hook = hook_name(phase);
    let u = outcome.resources.as_ref();
    match hit? {
        LimitHit::Memory if u.is_some_and(|u| u.memory_oom_kills > 0 || u.killed_for.is_some()) => {
            let u = u?;
            Some(format!(
                "{hook} ran out of memory: the whole sandbox reached its memory limit ({}; peak {}) and was killed with everything it started",
                bytes(u.memory_limit_bytes.unwrap_or(0)),
                bytes(u.memory_peak_bytes.unwrap_or(0))
            ))
        }
        LimitHit::Processes if u.is_some_and(pids_at_limit) => {
            let u = u?;
            Some(format!(
                "{hook} hit the process limit ({} processes for the whole sandbox; peak seen {}): a fork bomb or a runaway build; the sandbox was killed with everything it started",
                u.pids_limit.unwrap_or(0),
                u.pids_peak.unwrap_or(outcome.peak_processes)
            ))
        }
        LimitHit::Disk => {
            let full: Vec<String> = outcome
                .filesystems
                .iter()
                .filter(|f| f.full())
                .map(|f| format!("{} ({})", f.target.display(), bytes(f.size_bytes)))
                .collect();
            Some(format!(
                "{hook} filled its disk limit: {} full (the build got ENOSPC)",
                full.join(", ")
            ))
        }
        _ => None,
    }
}

/// The sandbox's process count met `pids.max` (a fork refused there, or
/// the peak at the limit: the rlimit of the same size, which counts the
/// build's uid but not init, may refuse the fork first).
fn pids_at_limit(u: &crate::sandbox::cgroup::Usage) -> bool {
    u.pids_limit_events > 0
        || matches!((u.pids_peak, u.pids_limit), (Some(p), Some(l)) if p + 2 >= l)
}

fn finding(target: String, decided_by: &str, message: String) -> Finding {
    Finding {
        severity: Severity::Blocked,
        kind: OpKind::Resource,
        target,
        verdict: FindingVerdict::Blocked,
        decided_by: Some(decided_by.to_string()),
        origin: None,
        process_chain: Vec::new(),
        seen_by: vec!["sandbox"],
        message,
        count: 1,
        suggestion: None,
    }
}

/// The `resource` findings of one run, given the limit it was found to
/// have hit (by [`sandbox_hit`] or the hook runner's own report).
pub fn findings(
    phase: &str,
    outcome: &RunOutcome,
    limits: &Limits,
    hit: Option<LimitHit>,
) -> Vec<Finding> {
    let hook = hook_name(phase);
    let u = outcome.resources.as_ref();
    let mut out = Vec::new();
    let memory_from_cgroup =
        u.is_some_and(|u| u.memory_oom_kills > 0 || u.killed_for.as_deref() == Some("memory"));
    match hit {
        Some(LimitHit::Memory) if memory_from_cgroup => {
            let u = u.expect("checked");
            out.push(finding(
                format!(
                    "memory: limit {}, peak {}",
                    bytes(u.memory_limit_bytes.unwrap_or(0)),
                    bytes(u.memory_peak_bytes.unwrap_or(0))
                ),
                "cgroup memory limit (whole sandbox: heap, page cache, tmpfs and memfd)",
                format!(
                    "{hook} reached the sandbox's memory limit; the kernel's OOM killer ran {} time(s) and the whole sandbox was killed",
                    u.memory_oom_kills.max(1)
                ),
            ));
        }
        Some(LimitHit::Memory) => out.push(finding(
            format!(
                "memory: limit {} per process{}",
                bytes(limits.memory_bytes.unwrap_or(0)),
                u.and_then(|u| u.memory_peak_bytes)
                    .map(|p| format!(", sandbox peak {}", bytes(p)))
                    .unwrap_or_default()
            ),
            "rlimit (address space)",
            format!("{hook} ran out of memory"),
        )),
        Some(LimitHit::Processes) => out.push(finding(
            format!(
                "processes: limit {}, peak {}",
                limits.processes.unwrap_or(0),
                u.and_then(|u| u.pids_peak)
                    .unwrap_or(outcome.peak_processes)
            ),
            if u.is_some_and(pids_at_limit) {
                "cgroup pids.max (whole sandbox)"
            } else {
                "rlimit (processes)"
            },
            format!(
                "{hook} hit the process limit{}",
                u.map(|u| format!(" ({} fork(s) refused)", u.pids_limit_events))
                    .unwrap_or_default()
            ),
        )),
        Some(LimitHit::Cpu) => out.push(finding(
            format!(
                "cpu: limit {} s per process",
                limits.cpu_seconds.unwrap_or(0)
            ),
            "rlimit (CPU time)",
            format!("{hook} used more than the CPU-time limit"),
        )),
        Some(LimitHit::WallClock) => out.push(finding(
            format!("wall clock: limit {} s", limits.wall_seconds),
            "sdist-box supervisor",
            format!(
                "{hook} exceeded the wall-clock limit and was killed with everything it started"
            ),
        )),
        Some(LimitHit::FileSize) => out.push(finding(
            format!(
                "file size: limit {}",
                bytes(limits.file_size_bytes.unwrap_or(0))
            ),
            "rlimit (file size)",
            format!("{hook} tried to write a file larger than the limit"),
        )),
        Some(LimitHit::Disk) | None => {}
    }
    // Every full file system, whatever else ended the run.
    for f in outcome.filesystems.iter().filter(|f| f.full()) {
        out.push(finding(
            format!(
                "disk: {} limit {}, used {}",
                f.target.display(),
                bytes(f.size_bytes),
                bytes(f.used_bytes)
            ),
            "size-limited file system",
            format!(
                "{hook} filled {} to its size limit (writes beyond it got ENOSPC; the host's disk is untouched)",
                f.target.display()
            ),
        ));
    }
    if let Some(u) = u
        && u.cpu_throttled > 0
        && let Some(m) = u.cpu_millicores
    {
        out.push(Finding {
            severity: Severity::Notice,
            verdict: FindingVerdict::Allowed,
            ..finding(
                format!("cpu: limit {:.2} CPUs", m as f64 / 1000.0),
                "cgroup CPU quota (whole sandbox)",
                format!(
                    "{hook} was held to its CPU limit ({} throttled period(s))",
                    u.cpu_throttled
                ),
            )
        });
    }
    out
}
