//! Stage events: one JSON line before and one after each stage of a build,
//! for other tools to act on (`--events FILE|fd:N`).
//!
//! Every event carries what is known about the package at that moment
//! (name, version, where it came from, its hash, the extracted tree that
//! will be built verbatim, its backend and build requirements), so a
//! consumer can decide about a package before any of its code runs. The
//! form is versioned ([`SCHEMA_VERSION`]) and described by
//! `schema/events.schema.json`.
//!
//! The events are written by sdist-box itself, from outside the sandbox:
//! nothing the package prints can forge or reorder them.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// Bumped on any incompatible change of the event form.
pub const SCHEMA_VERSION: u32 = 1;

/// The stages, in the order a build goes through them. `hook` repeats, once
/// per PEP 517 hook call; `pre-build` only runs with `--pre-build`;
/// `done` is a single event at the very end, whatever happened.
pub const STAGES: &[&str] = &[
    "verify",
    "extract",
    "metadata",
    "pre-build",
    "buildenv",
    "hook",
    "wheel-check",
    "done",
];

/// Where events go. Cloning shares the destination: the events of builds
/// running at the same time interleave by whole lines.
#[derive(Clone)]
pub struct EventSink {
    out: Arc<Mutex<Box<dyn Write + Send>>>,
    description: String,
}

impl std::fmt::Debug for EventSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventSink")
            .field("to", &self.description)
            .finish()
    }
}

impl EventSink {
    /// Events to any writer (a file, a pipe, a `Vec<u8>` behind a shared
    /// handle in a library user's program).
    pub fn new(out: impl Write + Send + 'static, description: impl Into<String>) -> EventSink {
        EventSink {
            out: Arc::new(Mutex::new(Box::new(out))),
            description: description.into(),
        }
    }

    /// `FILE` (created or truncated) or `fd:N` (a descriptor sdist-box
    /// inherited, e.g. `3>events.jsonl` in a shell, or a pipe).
    pub fn open(spec: &str) -> anyhow::Result<EventSink> {
        if let Some(n) = spec.strip_prefix("fd:") {
            let fd: i32 = n
                .parse()
                .ok()
                .filter(|&fd| fd >= 0)
                .ok_or_else(|| anyhow::anyhow!("`{spec}`: `fd:` takes a descriptor number"))?;
            if fd == 0 {
                anyhow::bail!("`{spec}`: descriptor 0 is standard input, not an output");
            }
            let file = crate::sandbox::sys::dup_inherited(fd).map_err(|e| {
                anyhow::anyhow!("`{spec}`: descriptor {fd} is not open for writing: {e}")
            })?;
            return Ok(EventSink::new(file, spec));
        }
        let path = Path::new(spec);
        let file = fs::File::create(path)
            .map_err(|e| anyhow::anyhow!("cannot create the events file `{spec}`: {e}"))?;
        Ok(EventSink::new(file, spec))
    }

    fn write_line(&self, line: &str) {
        let mut out = match self.out.lock() {
            Ok(out) => out,
            Err(poisoned) => poisoned.into_inner(),
        };
        // A consumer that went away must not fail the build: the event is
        // lost and the report still says everything.
        let result = out
            .write_all(line.as_bytes())
            .and_then(|_| out.write_all(b"\n"))
            .and_then(|_| out.flush());
        if let Err(e) = result
            && e.kind() != io::ErrorKind::BrokenPipe
        {
            tracing::warn!("could not write a stage event to {}: {e}", self.description);
        }
    }
}

/// What is known about the package when an event is written.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct PackageInfo {
    /// From PKG-INFO / pyproject.toml, read statically (null before `metadata`).
    pub name: Option<String>,
    pub version: Option<String>,
    /// The sdist as given (a local path).
    pub source: PathBuf,
    pub filename: String,
    /// Known from the end of `verify` on.
    pub sha256: Option<String>,
    /// True when the sdist was pinned by hash and the pin matched.
    pub sha256_pinned: bool,
    /// The extracted tree that is built verbatim (from the end of `extract` on).
    pub source_dir: Option<PathBuf>,
    pub build_backend: Option<String>,
    pub build_requires: Vec<String>,
    pub backend_path: Vec<String>,
    /// For `build-all`: the input list entry (file:line) this sdist came from.
    pub input_entry: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
struct Event<'a> {
    schema_version: u32,
    event: &'static str,
    stage: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    hook: Option<&'a str>,
    /// Per build, from 0.
    seq: u64,
    /// Seconds since the Unix epoch.
    time: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<serde_json::Value>,
    package: &'a PackageInfo,
}

/// The events of one build.
#[derive(Debug)]
pub struct Stages {
    sink: Option<EventSink>,
    seq: u64,
    pub package: PackageInfo,
    open: Option<(&'static str, Option<String>, Instant)>,
}

impl Stages {
    pub fn new(sink: Option<EventSink>, package: PackageInfo) -> Stages {
        Stages {
            sink,
            seq: 0,
            package,
            open: None,
        }
    }

    pub fn enabled(&self) -> bool {
        self.sink.is_some()
    }

    /// The event written before `stage` (with `hook` for the `hook` stage).
    pub fn start(&mut self, stage: &'static str, hook: Option<&str>) {
        debug_assert!(STAGES.contains(&stage), "unknown stage {stage}");
        self.open = Some((stage, hook.map(str::to_string), Instant::now()));
        self.emit("start", stage, hook, None, None, None, None);
    }

    /// The event written after the stage that is open: `ok`, or the
    /// failure's status and reason.
    pub fn end(&mut self, status: &str, error: Option<&str>, detail: Option<serde_json::Value>) {
        let Some((stage, hook, started)) = self.open.take() else {
            return;
        };
        let ms = started.elapsed().as_secs_f64() * 1e3;
        self.emit(
            "end",
            stage,
            hook.as_deref(),
            Some(status),
            Some(ms),
            error,
            detail,
        );
    }

    /// Close a stage left open by an early return (its end is a failure).
    pub fn end_open(&mut self, status: &str, error: &str) {
        if self.open.is_some() {
            self.end(status, Some(error), None);
        }
    }

    /// The single `done` event: the build's outcome.
    pub fn done(&mut self, status: &str, error: Option<&str>, detail: serde_json::Value) {
        self.emit("end", "done", None, Some(status), None, error, Some(detail));
    }

    #[allow(clippy::too_many_arguments)]
    fn emit(
        &mut self,
        event: &'static str,
        stage: &'static str,
        hook: Option<&str>,
        status: Option<&str>,
        duration_ms: Option<f64>,
        error: Option<&str>,
        detail: Option<serde_json::Value>,
    ) {
        let Some(sink) = &self.sink else {
            return;
        };
        let time = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        let e = Event {
            schema_version: SCHEMA_VERSION,
            event,
            stage,
            hook,
            seq: self.seq,
            time,
            status,
            duration_ms,
            error,
            detail,
            package: &self.package,
        };
        self.seq += 1;
        match serde_json::to_string(&e) {
            Ok(line) => sink.write_line(&line),
            Err(e) => tracing::warn!("could not serialize a stage event: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn start_end_pairs_carry_order_status_and_package() {
        let buf = Shared::default();
        let mut s = Stages::new(
            Some(EventSink::new(buf.clone(), "test")),
            PackageInfo {
                filename: "p-1.tar.gz".into(),
                ..PackageInfo::default()
            },
        );
        s.start("verify", None);
        s.package.sha256 = Some("ab".into());
        s.end("ok", None, None);
        s.start("hook", Some("build_wheel"));
        s.end_open("build-failed", "boom");
        s.end_open("never", "twice"); // nothing open: no event
        s.done("build-failed", Some("boom"), serde_json::json!({}));
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 5, "{text}");
        let seqs: Vec<u64> = lines.iter().map(|l| l["seq"].as_u64().unwrap()).collect();
        assert_eq!(seqs, [0, 1, 2, 3, 4]);
        assert_eq!(lines[0]["event"], "start");
        assert!(lines[0]["package"]["sha256"].is_null());
        assert_eq!(lines[1]["package"]["sha256"], "ab");
        assert_eq!(lines[1]["status"], "ok");
        assert_eq!(lines[2]["hook"], "build_wheel");
        assert_eq!(lines[3]["status"], "build-failed");
        assert_eq!(lines[3]["error"], "boom");
        assert_eq!(lines[4]["stage"], "done");
        assert!(lines.iter().all(|l| l["schema_version"] == SCHEMA_VERSION));
    }

    #[test]
    fn no_sink_no_work() {
        let mut s = Stages::new(None, PackageInfo::default());
        s.start("verify", None);
        s.end("ok", None, None);
        assert_eq!(s.seq, 0);
        assert!(!s.enabled());
    }

    #[test]
    fn fd_spec_is_validated() {
        assert!(EventSink::open("fd:x").is_err());
        assert!(EventSink::open("fd:0").is_err());
        assert!(EventSink::open("fd:987").is_err());
    }
}
