//! The two event streams of a sandboxed run: the Python stream wired into
//! the plan before the run, and both streams paired into the report's
//! findings after it.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::files::open_untrusted;
use crate::policy;
use crate::report::BuildReport;
use crate::sandbox;

/// The descriptor number of the Python stream inside the sandbox.
const EVENTS_FD: i32 = 3;

/// The Python stream's fallback file, in the control directory.
const EVENTS_FALLBACK: &str = "events-fallback.jsonl";

/// Give `plan` the Python stream: the audit hook from `shim` (as the
/// sandbox sees it) in every Python process, writing to [`EVENTS_FD`] or to
/// the fallback file in `control`; origins relative to `src`.
pub(crate) fn add_python_stream(
    plan: &mut sandbox::SandboxPlan,
    shim: &Path,
    control: &Path,
    src: &Path,
    quiet: &[String],
) {
    plan.events_fd = Some(EVENTS_FD);
    let stream_env = [
        ("PYTHONPATH", shim.display().to_string()),
        ("SDIST_BOX_EVENTS_FD", EVENTS_FD.to_string()),
        (
            "SDIST_BOX_EVENTS_FILE",
            control.join(EVENTS_FALLBACK).display().to_string(),
        ),
        ("SDIST_BOX_SOURCE_DIR", src.display().to_string()),
        ("SDIST_BOX_QUIET_PREFIXES", quiet.join(":")),
    ];
    for (k, v) in stream_env {
        plan.env.retain(|(name, _)| name != k);
        plan.env.push((k.to_string(), v));
    }
}

/// Pair one sandboxed run's two streams into findings and add them, with
/// the stream counts and kernel events, to `report`. `control` is the host
/// directory holding the Python stream's fallback file; `places` where the
/// command saw its directories, `sources` where origin lines are quoted from.
pub(crate) fn explain_run(
    report: &mut BuildReport,
    outcome: &sandbox::RunOutcome,
    control: Option<&Path>,
    plan: &sandbox::SandboxPlan,
    places: &policy::Places,
    sources: &crate::events::sources::SourceTrees,
) {
    use crate::events::{findings, python::PythonStream};
    let mut stream = PythonStream::default();
    stream.feed(&outcome.python_events);
    if !stream_ends_with_newline(&outcome.python_events) {
        stream.feed(b"\n");
    }
    if let Some(fallback) = control.and_then(|c| read_bounded(&c.join(EVENTS_FALLBACK), 24 << 20)) {
        stream.feed(&fallback);
    }
    let dropped = stream.dropped;
    let (audit, starts, issues) = stream.finish();
    let ctx = findings::Context {
        inside_src: places.src.clone(),
        sources: sources.clone(),
        writable: plan
            .landlock
            .read_write
            .iter()
            .chain(&plan.landlock.devices_rw)
            .cloned()
            .collect(),
        readable: readable_paths(plan),
        home: places.home.clone(),
        python_executables: vec![],
        mount_view: plan.mode == sandbox::Mode::Namespaces,
        network: plan.network.mode,
        restrict_exec: plan.landlock.restrict_exec,
        ctypes_allow: plan
            .env
            .iter()
            .any(|(k, v)| k == "SDIST_BOX_CTYPES" && v == "system")
            .then(|| {
                plan.env
                    .iter()
                    .filter(|(k, _)| k == "SDIST_BOX_CTYPES_ALLOW")
                    .flat_map(|(_, v)| v.split(':').map(PathBuf::from))
                    .collect()
            }),
    };
    let k = crate::events::kernel::log_of(outcome);
    let found = findings::pair(&ctx, k, &audit, &starts, &issues);
    report.streams.kernel_notifications += k.map_or(0, |k| k.notifications);
    report.streams.kernel_dropped += k.map_or(0, |k| k.dropped);
    report.streams.audit_events += audit.len() as u64;
    report.streams.audit_dropped += dropped;
    report.streams.hooked_processes += starts.len() as u64;
    report.findings.extend(found);
    if let Some(k) = k {
        let room = 2000usize.saturating_sub(report.kernel_events.len());
        report
            .kernel_events
            .extend(k.events.iter().take(room).cloned());
        report.decisions.extend(k.decisions.iter().cloned());
    }
    report.findings = findings::merge(std::mem::take(&mut report.findings));
}

/// What the build may read, with the top-level symlinks of merged-/usr
/// hosts (`/lib -> usr/lib`) counted as what they point to.
fn readable_paths(plan: &sandbox::SandboxPlan) -> Vec<PathBuf> {
    let mut readable: Vec<PathBuf> = plan
        .landlock
        .read_exec
        .iter()
        .chain(&plan.landlock.read_only)
        .cloned()
        .collect();
    for m in &plan.mounts {
        if let sandbox::MountEntry::Symlink { target, link_to } = m {
            let dest = target.parent().unwrap_or(Path::new("/")).join(link_to);
            if readable.iter().any(|r| dest.starts_with(r)) {
                readable.push(target.clone());
            }
        }
    }
    readable
}

fn stream_ends_with_newline(bytes: &[u8]) -> bool {
    bytes.last().is_none_or(|&b| b == b'\n')
}

fn read_bounded(path: &Path, max: u64) -> Option<Vec<u8>> {
    let (file, _) = open_untrusted(path).ok()?;
    let mut buf = Vec::new();
    file.take(max).read_to_end(&mut buf).ok()?;
    Some(buf)
}
