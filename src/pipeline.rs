//! One build, end to end: verify → extract → metadata → build env →
//! `get_requires_for_build_wheel` in the sandbox → second-round build env →
//! `build_wheel` in the sandbox → copy the wheel out → report.
//!
//! Invariants: nothing from the sdist runs outside the sandbox; the
//! project's name and version are valid and agree across the file name,
//! `PKG-INFO` and `pyproject.toml` before they are used; the sandbox
//! never writes the output directory (the wheel is copied out by us, after
//! every process of the sandbox has ended, as one regular file whose name
//! and metadata are this sdist's project and version, never in place of
//! another input's wheel); every file we read back from the sandbox's directories is
//! opened without following links and with a size bound; outputs are written
//! atomically.

use std::ffi::OsString;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, ValueEnum};
use sha2::{Digest, Sha256};

use crate::archive::{self, Limits as ArchiveLimits};
use crate::buildenv::{self, IndexOptions};
use crate::cli::exit;
use crate::policy::{self, BuildPaths, HostLayout, Profile, inside};
use crate::report::{
    BuildEnvInfo, BuildReport, HookRun, Input, InterpreterInfo, LimitHit, Outcome, ProfileInfo,
    SandboxInfo, Status, Timings, Tool, WheelInfo,
};
use crate::sandbox::{self, RunExit, RunOptions, SandboxError};
use crate::stages::{EventSink, PackageInfo, Stages};
use crate::{names, outputs, project};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A summary and the findings for people (on stderr).
    Text,
    /// The JSON report on stdout.
    Json,
    /// SARIF 2.1.0 on stdout (for code-scanning tools).
    Sarif,
}

/// The event streams a build runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Streams {
    /// The kernel stream (seccomp notifications) and the Python stream (audit hook).
    All,
    /// Only the kernel stream.
    Kernel,
    /// Only the Python stream.
    Python,
    /// Neither.
    None,
}

/// Which findings make `build` exit with code 1 (when the wheel was built).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    /// A blocked operation or an evasion (the default).
    Blocked,
    /// What `blocked` fails on, and wheel findings to review before
    /// installing: a .pth file, prebuilt native code, a command shadowing a
    /// common one, files outside the project, a RECORD that does not match,
    /// a build that is not reproducible (with --check-reproducible).
    /// Alias: `wheel`.
    #[value(alias = "wheel")]
    Review,
    /// Only an evasion of the audit hook.
    Evasion,
    /// Any finding, allowed ones included.
    Any,
    /// Never: exit 0 whenever the wheel was built.
    Never,
}

impl FailOn {
    /// `--fail-on` when given, else the profile's `fail-on`, else `blocked`.
    pub fn effective(cli: Option<FailOn>, profile: &Profile) -> FailOn {
        use crate::policy::profile::FailOnPolicy;
        cli.unwrap_or(match profile.fail_on {
            Some(FailOnPolicy::Blocked) | None => FailOn::Blocked,
            Some(FailOnPolicy::Evasion) => FailOn::Evasion,
            Some(FailOnPolicy::Any) => FailOn::Any,
            Some(FailOnPolicy::Never) => FailOn::Never,
        })
    }

    pub fn matches(self, findings: &[crate::events::findings::Finding]) -> bool {
        use crate::events::findings::Severity;
        findings.iter().any(|f| match self {
            FailOn::Blocked => matches!(f.severity, Severity::Blocked | Severity::Evasion),
            FailOn::Review => matches!(
                f.severity,
                Severity::Blocked | Severity::Evasion | Severity::Review
            ),
            FailOn::Evasion => f.severity == Severity::Evasion,
            FailOn::Any => true,
            FailOn::Never => false,
        })
    }
}

/// Limits on what an archive may unpack to.
#[derive(Debug, Clone, Args)]
pub struct ArchiveLimitArgs {
    /// Most entries an archive may have.
    #[arg(long, value_name = "N", default_value_t = ArchiveLimits::default().max_entries)]
    pub max_entries: u64,
    /// Most bytes an archive may unpack to, in total (e.g. 2G).
    #[arg(long, value_name = "SIZE", value_parser = parse_size_arg, default_value = "2G")]
    pub max_unpacked_size: u64,
    /// Largest single file an archive may hold (e.g. 512M).
    #[arg(long, value_name = "SIZE", value_parser = parse_size_arg, default_value = "512M")]
    pub max_file_size: u64,
    /// Highest ratio of unpacked bytes to archive bytes.
    #[arg(long, value_name = "N", default_value_t = ArchiveLimits::default().max_ratio)]
    pub max_ratio: u64,
}

fn parse_env_arg(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}` is not NAME=VALUE"))?;
    if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!("`{k}` is not a variable name"));
    }
    Ok((k.to_string(), v.to_string()))
}

fn parse_size_arg(s: &str) -> Result<u64, String> {
    policy::profile::parse_size(s).ok_or_else(|| format!("`{s}` is not a size (like 512M or 2G)"))
}

impl ArchiveLimitArgs {
    pub fn limits(&self) -> ArchiveLimits {
        ArchiveLimits {
            max_entries: self.max_entries,
            max_total_bytes: self.max_unpacked_size,
            max_file_bytes: self.max_file_size,
            max_ratio: self.max_ratio,
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct BuildArgs {
    /// The sdist to build (.tar.gz, .zip, .tar.bz2, .tar.xz).
    pub sdist: PathBuf,
    /// Directory for the wheel, its report (`<sdist>.sdist-box.json`) and the build log.
    #[arg(short = 'o', long = "out-dir", default_value = "dist")]
    pub out_dir: PathBuf,
    /// Refuse the sdist unless its SHA-256 is this (hex).
    #[arg(long, value_name = "HEX")]
    pub sha256: Option<String>,
    /// Also write the report to this file: SARIF if it ends in .sarif, else JSON.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// What to print when done.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// Keep the work directory (extracted sources, hook results) for inspection.
    #[arg(long)]
    pub keep_work: bool,
    /// Ask on this terminal before a network connect or a program the rules
    /// would refuse runs: [y] allow once, [n] deny, [a] always (this
    /// destination or program, this hook call). Asked on sdist-box's
    /// controlling terminal, never through the build's output; without a
    /// terminal every question is answered "deny". Decisions go into the report.
    #[arg(long)]
    pub ask: bool,
    /// Seconds to wait for an answer at the --ask prompt before denying.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub ask_timeout: u64,
    #[command(flatten)]
    pub flags: BuildFlags,
}

/// The flags `build` and `build-all` share: how each sdist is built.
#[derive(Debug, Clone, Args)]
pub struct BuildFlags {
    /// Profile name (see `sdist-box profiles`) or path to a profile TOML file
    /// (settings: docs/profiles.md; a start: profiles/site-example.toml).
    #[arg(long, default_value = "default")]
    pub profile: String,
    /// Python interpreter to build with (default: `python3` on PATH; shims are resolved).
    #[arg(long)]
    pub python: Option<OsString>,
    /// Look for build-requirement wheels in this directory (repeatable).
    #[arg(long = "find-links", value_name = "DIR")]
    pub find_links: Vec<PathBuf>,
    /// Do not use any package index for build requirements (with --find-links).
    #[arg(long)]
    pub no_index: bool,
    /// Exit with code 1 when a wheel was built but its report has findings of this kind
    /// (default: the profile's `fail-on`, else `blocked`).
    #[arg(long, value_enum)]
    pub fail_on: Option<FailOn>,
    /// Where build environments are cached (default: $SDIST_BOX_CACHE or ~/.cache/sdist-box).
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Create temporary work directories under this directory (default: $TMPDIR).
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
    /// Do not call `prepare_metadata_for_build_wheel` before `build_wheel`.
    #[arg(long)]
    pub no_prepare_metadata: bool,
    /// Set a variable in the build's environment (repeatable), e.g. CIBUILDWHEEL=1.
    #[arg(long = "env", value_name = "NAME=VALUE", value_parser = parse_env_arg)]
    pub env: Vec<(String, String)>,
    /// Which event streams explain the build (`none` keeps every layer but
    /// reports nothing the package tried; for measuring their cost).
    #[arg(long, value_enum, default_value = "all")]
    pub streams: Streams,
    /// Also record every file open in the sandbox (slower; off by default).
    #[arg(long)]
    pub trace_files: bool,
    /// Write stage events (JSON lines: verify, extract, metadata, pre-build,
    /// buildenv, each PEP 517 hook call, wheel-check, done) to FILE or to an
    /// inherited descriptor `fd:N` (see docs/events.md). With build-all, the
    /// builds' events interleave by whole lines, each naming its list entry.
    #[arg(long, value_name = "FILE|fd:N")]
    pub events: Option<String>,
    /// Run CMD (with `sh -c`) outside the sandbox after extraction, before any
    /// package code: stage metadata as JSON on its stdin, the extracted
    /// sources as its working directory. A non-zero exit refuses the build;
    /// changes it makes to the sources are built and recorded in the report.
    #[arg(long, value_name = "CMD")]
    pub pre_build: Option<String>,
    /// Kill the pre-build hook (and refuse the build) after this many seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub pre_build_timeout: u64,
    /// Build a second time from scratch and compare the two wheels byte for
    /// byte (the report's `reproducible` section says which members differ).
    /// Both builds get SOURCE_DATE_EPOCH: your `--env SOURCE_DATE_EPOCH=…`,
    /// else the caller's, else 315532800 (1980-01-01, the earliest zip time).
    /// The first build's wheel is the output; `--fail-on review` fails when
    /// the wheels differ.
    #[arg(long)]
    pub check_reproducible: bool,
    #[command(flatten)]
    pub archive_limits: ArchiveLimitArgs,
}

/// What [`BuildFlags::prepare`] resolves: a request to fill in per sdist,
/// and what the run decides with.
pub struct Prepared {
    pub request: BuildRequest,
    pub fail_on: FailOn,
    /// `--check-reproducible`: the SOURCE_DATE_EPOCH of both builds.
    pub epoch: Option<(String, crate::reproducible::EpochSource)>,
}

impl BuildFlags {
    /// Load the profile, apply `--env` and `--check-reproducible` to it, and
    /// make the request for `sdist` into `out_dir`; the per-command fields
    /// (hash pin, echo, `--ask`, …) keep their quiet defaults.
    pub fn prepare(&self, sdist: PathBuf, out_dir: PathBuf) -> anyhow::Result<Prepared> {
        let mut profile = Profile::load(&self.profile)?;
        let fail_on = FailOn::effective(self.fail_on, &profile);
        for (k, v) in &self.env {
            profile.environment.set.insert(k.clone(), v.clone());
        }
        let epoch = self.check_reproducible.then(|| {
            crate::reproducible::fix_source_date_epoch(
                &mut profile.environment.set,
                std::env::var("SOURCE_DATE_EPOCH").ok().as_deref(),
            )
        });
        // Paths go into the sandbox's mount table and the build env's
        // scripts: make them absolute.
        let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
        let request = BuildRequest {
            sdist,
            out_dir,
            profile,
            python: self.python.clone(),
            sha256: None,
            index: IndexOptions {
                find_links: self.find_links.iter().map(|p| absolute(p)).collect(),
                no_index: self.no_index,
            },
            cache_dir: absolute(
                &self
                    .cache_dir
                    .clone()
                    .unwrap_or_else(buildenv::default_cache_dir),
            ),
            work_parent: self.work_dir.clone(),
            keep_work: false,
            prepare_metadata: !self.no_prepare_metadata,
            archive_limits: self.archive_limits.limits(),
            echo: false,
            print_failure_tail: false,
            trace_files: self.trace_files,
            streams: self.streams,
            events: self.events.as_deref().map(EventSink::open).transpose()?,
            pre_build: self.pre_build.clone(),
            pre_build_timeout: Duration::from_secs(self.pre_build_timeout),
            input_entry: None,
            init_exe: None,
            ask: None,
        };
        Ok(Prepared {
            request,
            fail_on,
            epoch,
        })
    }
}

#[derive(Debug, Clone, Args)]
pub struct InspectArgs {
    /// The sdist to inspect.
    pub sdist: PathBuf,
    /// Refuse the sdist unless its SHA-256 is this (hex).
    #[arg(long, value_name = "HEX")]
    pub sha256: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// Keep the extracted tree in this new directory (must not exist).
    #[arg(long, value_name = "DIR")]
    pub extract_to: Option<PathBuf>,
    #[command(flatten)]
    pub archive_limits: ArchiveLimitArgs,
}

/// A failure that ends the build before a wheel exists, classified so the
/// report and the exit code can say which kind it was.
#[derive(Debug)]
struct Failure {
    status: Status,
    error: anyhow::Error,
    limit_hit: Option<LimitHit>,
}

impl Failure {
    fn new(status: Status, error: anyhow::Error) -> Failure {
        Failure {
            status,
            error,
            limit_hit: None,
        }
    }
}

fn refused(e: impl Into<anyhow::Error>) -> Failure {
    Failure::new(Status::Refused, e.into())
}

fn errored(e: impl Into<anyhow::Error>) -> Failure {
    Failure::new(Status::Error, e.into())
}

fn from_sandbox(e: SandboxError) -> Failure {
    Failure::new(Status::SandboxUnavailable, e.into())
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}

/// Everything one build needs, resolved from the command line (or from
/// [`crate::api::Build`]).
#[derive(Clone)]
pub struct BuildRequest {
    pub sdist: PathBuf,
    pub out_dir: PathBuf,
    pub profile: Profile,
    pub python: Option<OsString>,
    pub sha256: Option<String>,
    pub index: IndexOptions,
    pub cache_dir: PathBuf,
    pub work_parent: Option<PathBuf>,
    pub keep_work: bool,
    pub prepare_metadata: bool,
    pub archive_limits: ArchiveLimits,
    /// Copy the build's output to stderr as it happens.
    pub echo: bool,
    /// When a hook fails, print the last lines of its output on stderr
    /// (`build-all` turns this off: its progress and table say it).
    pub print_failure_tail: bool,
    /// Notify the open family too (costly; see the benchmark).
    pub trace_files: bool,
    pub streams: Streams,
    /// Where stage events go (`--events`).
    pub events: Option<EventSink>,
    /// The user's command run before any package code (`--pre-build`).
    pub pre_build: Option<String>,
    pub pre_build_timeout: Duration,
    /// For `build-all`: the input list entry this sdist came from.
    pub input_entry: Option<String>,
    /// sdist-box's executable to run as the sandbox's init (default: this
    /// process's own executable).
    pub init_exe: Option<PathBuf>,
    /// `--ask`: put connects and execs the rules would refuse to the person
    /// at sdist-box's terminal, waiting this long for each answer.
    pub ask: Option<Duration>,
}

/// Where a `metadata` run leaves the `.dist-info` for `build_wheel`: inside
/// the output directory, the one directory both runs may write.
const METADATA_SUBDIR: &str = ".sdist-box-metadata";

/// Reports, summaries and events are JSON, which names a path exactly only
/// when it is UTF-8: a path that is not is refused (the user renames it),
/// never written down under a name it does not have. `None`: usable.
pub fn not_utf8(what: &str, path: &Path) -> Option<String> {
    path.to_str().is_none().then(|| {
        format!(
            "{what} `{}` is not UTF-8: reports name their inputs and outputs exactly, in JSON; rename it",
            crate::text::path(path)
        )
    })
}

/// Build one sdist. Always returns a report; `report.outcome` says how it went.
pub fn build(req: &BuildRequest) -> BuildReport {
    let started = Instant::now();
    let filename = req
        .sdist
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut stages = Stages::new(
        req.events.clone(),
        PackageInfo {
            source: std::path::absolute(&req.sdist).unwrap_or_else(|_| req.sdist.clone()),
            filename: filename.clone(),
            input_entry: req.input_entry.clone(),
            ..PackageInfo::default()
        },
    );
    let mut report = BuildReport {
        schema_version: crate::report::SCHEMA_VERSION,
        tool: Tool::default(),
        input: Input {
            path: req.sdist.clone(),
            filename,
            ..Input::default()
        },
        project: None,
        profile: ProfileInfo {
            name: req.profile.origin.clone(),
            description: req.profile.description.clone(),
            required_layers: req.profile.require.clone(),
            network: None,
        },
        interpreter: None,
        build_env: None,
        sandbox: None,
        hooks: Vec::new(),
        outcome: Outcome {
            status: Status::Built,
            reason: None,
            limit_hit: None,
        },
        wheel: None,
        wheel_check: None,
        reproducible: None,
        log: None,
        timings: Timings::default(),
        findings: Vec::new(),
        streams: Default::default(),
        kernel_events: Vec::new(),
        command: None,
        decisions: Vec::new(),
        pre_build: None,
    };
    let mut work: Option<tempfile::TempDir> = None;
    let result = build_inner(req, &mut report, &mut work, &mut stages);
    if let Err(failure) = result {
        let reason = format!("{:#}", failure.error);
        stages.end_open(failure.status.as_str(), &reason);
        report.outcome = Outcome {
            status: failure.status,
            reason: Some(reason),
            limit_hit: failure.limit_hit,
        };
    }
    if let Some(work) = work {
        if req.keep_work {
            let kept = work.keep();
            eprintln!(
                "sdist-box: work directory kept at {}",
                crate::text::path(&kept)
            );
        } else {
            force_remove(work.path());
        }
    }
    report.timings.total_ms = ms(started);
    if stages.enabled() {
        let detail = serde_json::json!({
            "wheel": report.wheel,
            "findings": report.findings.len(),
            "total_ms": report.timings.total_ms,
        });
        stages.done(
            report.outcome.status.as_str(),
            report.outcome.reason.as_deref(),
            detail,
        );
    }
    report
}

fn build_inner(
    req: &BuildRequest,
    report: &mut BuildReport,
    work_slot: &mut Option<tempfile::TempDir>,
    st: &mut Stages,
) -> Result<(), Failure> {
    // 1. verify: the hash first, before any byte of the archive is parsed.
    let t = Instant::now();
    st.start("verify", None);
    let meta = fs::metadata(&req.sdist)
        .with_context(|| format!("cannot read the sdist `{}`", req.sdist.display()))
        .map_err(refused)?;
    if !meta.is_file() {
        return Err(refused(anyhow::anyhow!(
            "`{}` is not a regular file",
            req.sdist.display()
        )));
    }
    report.input.size_bytes = meta.len();
    let sha = match &req.sha256 {
        Some(expected) => {
            let sha = archive::verify_sha256(&req.sdist, expected).map_err(refused)?;
            report.input.sha256_pinned = true;
            sha
        }
        None => archive::sha256_file(&req.sdist).map_err(refused)?,
    };
    st.package.sha256 = Some(sha.clone());
    st.package.sha256_pinned = report.input.sha256_pinned;
    report.input.sha256 = Some(sha);
    report.timings.verify_ms = ms(t);
    st.end("ok", None, None);

    // 2. extract into a fresh work directory.
    let t = Instant::now();
    st.start("extract", None);
    let mut builder = tempfile::Builder::new();
    builder.prefix("sdist-box-");
    let work = match &req.work_parent {
        Some(dir) => builder.tempdir_in(dir),
        None => builder.tempdir(),
    }
    .context("cannot create a work directory")
    .map_err(errored)?;
    let work_path = work.path().to_path_buf();
    *work_slot = Some(work);
    // resources: the build tree on its own size-limited file system
    // (sandbox::tree), mounted until this build ends.
    let _tree = sandbox::tree::BuildTree::for_build(
        policy::limits_of(&req.profile).build_tree_bytes,
        sandbox::user_namespaces().is_ok(),
        &work_path,
    )
    .map_err(|e| errored(anyhow::Error::new(e)))?;
    let extracted = archive::extract(&req.sdist, &work_path.join("sdist"), &req.archive_limits)
        .map_err(refused)?;
    let src = extracted.root.clone();
    st.package.source_dir = Some(src.clone());
    let detail = serde_json::json!({
        "entries": extracted.entries,
        "total_bytes": extracted.total_bytes,
    });
    report.input.archive = Some(extracted);
    // 2b. the sdist as shipped, a second time: origin lines and the wheel
    // check read this copy, which no sandbox ever sees.
    let shipped = extract_shipped(req, report, &work_path)?;
    report.timings.extract_ms = ms(t);
    st.end("ok", None, Some(detail));

    // 3. static metadata.
    let t = Instant::now();
    st.start("metadata", None);
    let mut project = project::read_project(&src).map_err(refused)?;
    // Before the name or version is used anywhere (events, report, the
    // pre-build hook, the wheel's check): valid, and one for all sources.
    let mut release = project::identify(&mut project, &report.input.filename).map_err(refused)?;
    describe_project(st, &project);
    report.project = Some(project.clone());
    report.timings.metadata_ms = ms(t);
    st.end("ok", None, None);

    // 3b. the user's pre-build hook: may veto, may patch the sources.
    let mut sources = crate::events::sources::SourceTrees {
        shipped: Some(shipped.clone()),
        patched: Default::default(),
        live: Some(src.clone()),
    };
    if let Some(command) = &req.pre_build {
        let t = Instant::now();
        st.start("pre-build", None);
        let pre = run_pre_build(command, req.pre_build_timeout, &src, st)?;
        report.pre_build = Some(pre.clone());
        report.timings.pre_build_ms = ms(t);
        if pre.verdict == crate::prebuild::Verdict::Vetoed {
            return Err(refused(anyhow::anyhow!(pre.veto_reason())));
        }
        if pre.modified {
            // What the hook left is what gets built, and what origin
            // lines in those files quote: read before any package code.
            sources.patched = std::sync::Arc::new(patched_files(&src, &pre.changes));
            // The patched tree is what gets built: read its metadata anew.
            project = project::read_project(&src)
                .context("after the pre-build hook changed the sources")
                .map_err(refused)?;
            release = project::identify(&mut project, &report.input.filename)
                .context("after the pre-build hook changed the sources")
                .map_err(refused)?;
            describe_project(st, &project);
            report.project = Some(project.clone());
        }
        let detail = serde_json::json!({
            "modified": pre.modified,
            "changes": pre.changes,
        });
        st.end("ok", None, Some(detail));
    }

    // 4. the build environment (trusted: wheels only, outside the sandbox).
    let t = Instant::now();
    st.start("buildenv", None);
    let interp = buildenv::resolve_interpreter_cached(req.python.as_deref(), &req.cache_dir)
        .map_err(errored)?;
    report.interpreter = Some(InterpreterInfo {
        executable: interp.executable.clone(),
        version: interp.version.clone(),
    });
    let static_reqs = project.build_system.requires.clone();
    let mut env = buildenv::ensure(&interp, &static_reqs, &req.index, &req.cache_dir)
        .map_err(|e| env_failure(e, Status::Refused))?;
    report.build_env = Some(env_info(&env, &[]));
    report.timings.buildenv_ms = ms(t);
    st.end("ok", None, Some(buildenv_detail(&env, 1)));

    fs::create_dir_all(&req.out_dir)
        .with_context(|| {
            format!(
                "cannot create the output directory `{}`",
                req.out_dir.display()
            )
        })
        .map_err(errored)?;
    let stem = sdist_stem(&report.input.filename);
    let log_path = req.out_dir.join(format!("{stem}.build.log"));
    report.log = Some(log_path.clone());

    // 5. get_requires_for_build_wheel, in the sandbox.
    let t = Instant::now();
    st.start("hook", Some("get_requires_for_build_wheel"));
    let ctx = SandboxContext::new(req, &work_path, &src, &project, &interp, sources)?;
    let first = ctx.run_phase(report, &env, "requires", &log_path, false, None)?;
    report.timings.requires_ms = ms(t);
    let dynamic: Vec<String> = hook_return(&first, "get_requires_for_build_wheel")
        .and_then(|v| v.as_array())
        .map(|list| {
            list.iter()
                .filter_map(|v| v.as_str())
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .take(200)
                .collect()
        })
        .unwrap_or_default();
    st.end("ok", None, Some(serde_json::json!({ "return": dynamic })));
    let new: Vec<String> = dynamic
        .iter()
        .filter(|d| !static_reqs.iter().any(|s| same_requirement(s, d)))
        .cloned()
        .collect();

    // 6. second round: what the backend asked for at run time.
    if !new.is_empty() {
        let t = Instant::now();
        st.start("buildenv", None);
        let mut all = static_reqs.clone();
        all.extend(new.iter().cloned());
        tracing::info!(
            "the backend asked for {:?}: second build-environment round",
            new
        );
        env = buildenv::ensure(&interp, &all, &req.index, &req.cache_dir)
            .map_err(|e| env_failure(e, Status::BuildFailed))?;
        report.timings.buildenv_ms += ms(t);
        st.end("ok", None, Some(buildenv_detail(&env, 2)));
    }
    report.build_env = Some(env_info(&env, &dynamic));

    // 7. prepare_metadata_for_build_wheel, in a sandbox of its own (as
    // pyproject-hooks runs each hook call in a fresh process).
    let mut metadata_path = None;
    if req.prepare_metadata {
        let t = Instant::now();
        st.start("hook", Some("prepare_metadata_for_build_wheel"));
        let result = ctx.run_phase(report, &env, "metadata", &log_path, true, None)?;
        let returned = hook_return(&result, "prepare_metadata_for_build_wheel")
            .and_then(|v| v.as_str())
            .map(str::to_string);
        if let Some(name) = &returned {
            metadata_path = Some(checked_metadata_dir(&ctx.out, name)?);
        }
        report.timings.prepare_metadata_ms = ms(t);
        let status = if returned.is_some() { "ok" } else { "missing" };
        st.end(
            status,
            None,
            Some(serde_json::json!({ "return": returned })),
        );
    }

    // 8. build_wheel, in the sandbox.
    let t = Instant::now();
    st.start("hook", Some("build_wheel"));
    let second = ctx.run_phase(
        report,
        &env,
        "wheel",
        &log_path,
        true,
        metadata_path.as_deref(),
    )?;
    report.timings.wheel_ms = ms(t);
    let wheel_name = hook_return(&second, "build_wheel")
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .ok_or_else(|| {
            Failure::new(
                Status::BuildFailed,
                anyhow::anyhow!("build_wheel returned no wheel name"),
            )
        })?;
    st.end(
        "ok",
        None,
        Some(serde_json::json!({ "return": wheel_name })),
    );

    // 9. copy the wheel out and check it.
    st.start("wheel-check", None);
    let max_wheel = req
        .profile
        .limits
        .output_size
        .unwrap_or(MAX_WHEEL_BYTES)
        .min(MAX_WHEEL_BYTES);
    let producer =
        outputs::Producer::for_input(&report.input.filename, report.input.sha256.clone());
    let (wheel, contents) = copy_wheel_out(
        &ctx.out,
        &wheel_name,
        &req.out_dir,
        max_wheel,
        &release,
        &producer,
    )?;
    let detail = serde_json::json!({ "wheel": wheel });
    report.wheel = Some(wheel);
    // What the wheel carries, checked against the sdist as shipped.
    crate::wheelcheck::check_built_wheel(report, &contents, &shipped);
    let detail = crate::wheelcheck::stage_detail(detail, report.wheel_check.as_ref());
    st.end("ok", None, Some(detail));
    Ok(())
}

/// Where the sdist as shipped is extracted, in the work directory.
const SHIPPED_DIR: &str = "sdist-as-shipped";

/// Extract the sdist once more, with the same limits, and check that it
/// still has the hash the build started from; the copy's top-level
/// directory. Nothing of the package has run yet, and this copy is never
/// bound into a sandbox nor handed to its uid: it is the sdist as shipped
/// for as long as the build lasts.
fn extract_shipped(
    req: &BuildRequest,
    report: &BuildReport,
    work: &Path,
) -> Result<PathBuf, Failure> {
    let shipped = archive::extract(&req.sdist, &work.join(SHIPPED_DIR), &req.archive_limits)
        .context("cannot extract the sdist a second time (the copy origin lines are quoted from)")
        .map_err(errored)?;
    let sha = archive::sha256_file(&req.sdist).map_err(refused)?;
    if Some(&sha) != report.input.sha256.as_ref() {
        return Err(refused(anyhow::anyhow!(
            "the sdist `{}` changed while it was being extracted",
            req.sdist.display()
        )));
    }
    Ok(shipped.root)
}

/// Most bytes of one file the pre-build hook changed kept for origin lines,
/// and of all of them together.
const MAX_PATCHED_FILE: u64 = 4 << 20;
const MAX_PATCHED_TOTAL: usize = 64 << 20;

/// The files the pre-build hook added or changed, read (beneath `src`, no
/// links) before any package code runs: origin lines in them quote these
/// bytes. A changed path that is no longer a regular file, or is over the
/// bounds, maps to `None` (no text).
fn patched_files(
    src: &Path,
    changes: &[crate::prebuild::FileChange],
) -> std::collections::BTreeMap<String, Option<Vec<u8>>> {
    let tree = crate::beneath::Beneath::open(src).ok();
    let mut kept = 0usize;
    changes
        .iter()
        .map(|c| {
            let bytes = tree
                .as_ref()
                .filter(|_| c.after.is_some())
                .and_then(|t| t.read_regular(Path::new(&c.path), MAX_PATCHED_FILE).ok())
                .filter(|b| kept + b.len() <= MAX_PATCHED_TOTAL);
            kept += bytes.as_ref().map_or(0, Vec::len);
            (c.path.clone(), bytes)
        })
        .collect()
}

/// The value a hook returned, from a hook runner's result.
fn hook_return<'a>(result: &'a serde_json::Value, hook: &str) -> Option<&'a serde_json::Value> {
    result
        .get("hooks")?
        .as_array()?
        .iter()
        .find(|h| h["name"] == hook)
        .map(|h| &h["return"])
}

/// The `.dist-info` directory a `metadata` run named, checked to be one
/// plain directory the run left in the metadata directory; its in-sandbox
/// path for `build_wheel`.
fn checked_metadata_dir(out: &Path, name: &str) -> Result<String, Failure> {
    let fail = |why: String| Failure::new(Status::BuildFailed, anyhow::anyhow!(why));
    let plain = !name.is_empty()
        && name.len() <= 255
        && name.ends_with(".dist-info")
        && !name.contains('/')
        && !name.starts_with('.');
    if !plain {
        return Err(fail(format!(
            "prepare_metadata_for_build_wheel returned `{}`, which is not a .dist-info directory name",
            crate::text::one_line(name, 200)
        )));
    }
    // The run made METADATA_SUBDIR itself (it could be a link): looked up
    // beneath `out` with no link at any depth.
    let kind = crate::beneath::Beneath::open(out)
        .ok()
        .and_then(|b| b.lookup(&Path::new(METADATA_SUBDIR).join(name)).ok());
    if kind != Some(crate::beneath::Kind::Dir) {
        return Err(fail(format!(
            "prepare_metadata_for_build_wheel returned `{}` but left no such directory",
            crate::text::one_line(name, 200)
        )));
    }
    Ok(format!("{}/{METADATA_SUBDIR}/{name}", inside::OUT))
}

fn describe_project(st: &mut Stages, project: &project::ProjectMeta) {
    st.package.name = project.name.clone();
    st.package.version = project.version.clone();
    st.package.build_backend = Some(project.build_system.build_backend.clone());
    st.package.build_requires = project.build_system.requires.clone();
    st.package.backend_path = project.build_system.backend_path.clone();
}

fn buildenv_detail(env: &buildenv::BuildEnv, round: u32) -> serde_json::Value {
    serde_json::json!({
        "round": round,
        "key": env.key,
        "reused": env.reused,
        "requirements": env.requirements,
    })
}

/// Run the pre-build hook on the extracted tree and record what it changed.
fn run_pre_build(
    command: &str,
    timeout: Duration,
    src: &Path,
    st: &Stages,
) -> Result<crate::prebuild::PreBuild, Failure> {
    use crate::prebuild;
    let digest = |when: &str| {
        prebuild::tree_digest(src)
            .with_context(|| format!("cannot hash the source tree {when} the pre-build hook"))
            .map_err(errored)
    };
    let before = digest("before")?;
    let input = serde_json::json!({
        "schema_version": crate::stages::SCHEMA_VERSION,
        "stage": "pre-build",
        "package": st.package,
    });
    let mut pre =
        prebuild::run(command, src, input.to_string().as_bytes(), timeout).map_err(errored)?;
    let after = digest("after")?;
    pre.changes = prebuild::diff(&before, &after);
    pre.modified = !pre.changes.is_empty();
    Ok(pre)
}

fn env_info(env: &buildenv::BuildEnv, dynamic: &[String]) -> BuildEnvInfo {
    BuildEnvInfo {
        key: env.key.clone(),
        path: env.path.clone(),
        requirements: env.requirements.clone(),
        reused: env.reused,
        dynamic_requirements: dynamic.to_vec(),
        installed: env.installed.clone(),
    }
}

/// Requirement strings compared loosely: case and spaces do not matter.
fn same_requirement(a: &str, b: &str) -> bool {
    let norm = |s: &str| -> String {
        s.chars()
            .filter(|c| !c.is_whitespace())
            .map(|c| {
                if c == '_' || c == '.' {
                    '-'
                } else {
                    c.to_ascii_lowercase()
                }
            })
            .collect()
    };
    norm(a) == norm(b)
}

/// `pkg-1.0.tar.gz` → `pkg-1.0`.
pub fn sdist_stem(filename: &str) -> String {
    crate::names::sdist_stem(filename).to_string()
}

/// The parts of a build that stay the same across its sandboxed runs.
struct SandboxContext<'a> {
    req: &'a BuildRequest,
    work: PathBuf,
    src: PathBuf,
    out: PathBuf,
    shim: PathBuf,
    interp_paths: Vec<PathBuf>,
    interp_exe: PathBuf,
    backend: String,
    backend_path: Vec<String>,
    host: HostLayout,
    runs: std::cell::Cell<u32>,
    /// The degraded mode's private HOME and TMPDIR (`None`: namespaces).
    private: Option<policy::PrivateDirs>,
    /// Where origin lines are quoted from.
    sources: crate::events::sources::SourceTrees,
}

impl<'a> SandboxContext<'a> {
    fn new(
        req: &'a BuildRequest,
        work: &Path,
        src: &Path,
        project: &project::ProjectMeta,
        interp: &buildenv::Interpreter,
        sources: crate::events::sources::SourceTrees,
    ) -> Result<Self, Failure> {
        let out = work.join("out");
        fs::create_dir(&out)
            .context("cannot prepare the work directory")
            .map_err(errored)?;
        let mode = sandbox::choose_mode(req.profile.allow_degraded, &req.profile.origin)
            .map_err(from_sandbox)?;
        let private = match mode {
            sandbox::Mode::Namespaces => None,
            sandbox::Mode::Degraded => {
                let private = policy::PrivateDirs {
                    home: work.join("home"),
                    tmp: work.join("tmp"),
                };
                for dir in [&private.home, &private.tmp] {
                    fs::create_dir(dir)
                        .context("cannot prepare the work directory")
                        .map_err(errored)?;
                }
                if nix::unistd::geteuid().is_root() {
                    for p in &interp.read_paths {
                        unreachable_by_others(p).map_err(errored)?;
                    }
                }
                warn_degraded(&req.profile.origin);
                Some(private)
            }
        };
        let shim = crate::shim::ensure_compiled(
            &req.cache_dir,
            &interp.executable,
            &interp.version,
            inside::SHIM,
        )
        .context("cannot prepare the shim")
        .map_err(errored)?;
        let ctx = SandboxContext {
            req,
            work: work.to_path_buf(),
            src: src.to_path_buf(),
            out,
            shim,
            interp_paths: interp.read_paths.clone(),
            interp_exe: fs::canonicalize(&interp.executable)
                .unwrap_or_else(|_| interp.executable.clone()),
            backend: project.build_system.build_backend.clone(),
            backend_path: project.build_system.backend_path.clone(),
            host: HostLayout::detect_for(&req.profile),
            runs: std::cell::Cell::new(0),
            private,
            sources,
        };
        // The copy of the sdist as shipped stays ours (root's).
        hand_over(&ctx.work, Some(&ctx.work.join(SHIPPED_DIR))).map_err(errored)?;
        Ok(ctx)
    }

    /// One sandboxed run of the hook runner for `phase`; returns its result.
    fn run_phase(
        &self,
        report: &mut BuildReport,
        env: &buildenv::BuildEnv,
        phase: &str,
        log_path: &Path,
        append_log: bool,
        metadata_path: Option<&str>,
    ) -> Result<serde_json::Value, Failure> {
        let n = self.runs.get() + 1;
        self.runs.set(n);
        // A fresh control directory per run: nothing the previous run left
        // there is ever read or written through.
        let control = self.work.join(format!("control-{n}"));
        fs::create_dir(&control)
            .context("cannot create a control directory")
            .map_err(errored)?;
        let mut read_only = self.interp_paths.clone();
        read_only.push(env.path.clone());
        let paths = BuildPaths {
            src: Some(self.src.clone()),
            out: Some(self.out.clone()),
            control: Some(control.clone()),
            shim: Some(self.shim.clone()),
            read_only_same_path: read_only,
            bin_dir: Some(env.path.clone()),
            supervise: matches!(self.req.streams, Streams::All | Streams::Kernel),
            trace_files: self.req.trace_files,
            without_namespaces: self.private.clone(),
            executables: vec![self.interp_exe.clone()],
        };
        // Where the hook runner finds its directories (inside the sandbox's
        // view, or on the host in the degraded mode).
        let places = policy::Places::of(&paths);
        // The prepared metadata, where this run sees the output directory.
        let metadata_path = metadata_path.map(|m| match m.strip_prefix(inside::OUT) {
            Some(rest) => format!("{}{rest}", places.out.display()),
            None => m.to_string(),
        });
        let backend_path: Vec<String> = self
            .backend_path
            .iter()
            .map(|p| format!("{}/{}", places.src.display(), p.trim_start_matches("./")))
            .collect();
        let input = serde_json::json!({
            "protocol": 1,
            "source_dir": places.src,
            "backend": self.backend,
            "backend_path": backend_path,
            "phase": phase,
            "config_settings": {},
            "wheel_directory": places.out,
            "metadata_directory": places.out.join(METADATA_SUBDIR),
            "metadata_path": metadata_path,
            "prepare_metadata": false,
        });
        fs::write(control.join("input.json"), input.to_string())
            .context("cannot write the hook runner's input")
            .map_err(errored)?;
        hand_over(&control, None).map_err(errored)?;

        let argv = vec![
            env.python.display().to_string(),
            places
                .shim
                .join(crate::shim::HOOK_RUNNER)
                .display()
                .to_string(),
            places.control.display().to_string(),
        ];
        let mut compiled =
            policy::compile(&self.req.profile, &self.host, &paths, argv, &host_env());
        // The Python stream: the audit hook (shim/sitecustomize.py) in every
        // Python process, writing to descriptor 3, or to a file in the
        // control directory when a child lost the descriptor.
        let quiet: Vec<String> = paths
            .read_only_same_path
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        let python_stream = matches!(self.req.streams, Streams::All | Streams::Python);
        if python_stream {
            add_python_stream(
                &mut compiled.plan,
                &places.shim,
                &places.control,
                &places.src,
                &quiet,
            );
        } else if compiled
            .plan
            .env
            .iter()
            .any(|(k, _)| k == "SDIST_BOX_CTYPES")
        {
            // No stream, but the profile restricts ctypes: the hook still
            // loads (it then only refuses, and records nothing).
            compiled.plan.env.retain(|(name, _)| name != "PYTHONPATH");
            compiled
                .plan
                .env
                .push(("PYTHONPATH".into(), places.shim.display().to_string()));
        }
        // An allowlist's names are resolved here, outside the sandbox.
        policy::resolve_network(&mut compiled.plan.network)
            .map_err(|e| Failure::new(Status::SandboxUnavailable, e.into()))?;
        report.profile.network = Some(crate::report::NetworkInfo::from_plan(
            &compiled.plan.network,
        ));
        // --ask: a person at sdist-box's own terminal decides what the
        // rules would refuse (asked afresh for each hook call's sandbox);
        // an allowed connect is made by the supervisor, so Landlock leaves
        // TCP connects to it.
        let ask = self.req.ask.map(|timeout| {
            compiled.plan.landlock.tcp_connect_by_supervisor = true;
            std::sync::Arc::new(crate::events::ask::TerminalAsk::start("/dev/tty", timeout))
        });
        let opts = RunOptions {
            log_path: Some(log_path.to_path_buf()),
            echo: self.req.echo,
            append_log,
            init_exe: self.req.init_exe.clone(),
            // The log keeps at most the output-size limit, and never more
            // than its own default.
            max_log_bytes: compiled
                .plan
                .limits
                .output_bytes
                .unwrap_or(MAX_LOG_BYTES)
                .min(MAX_LOG_BYTES),
            decision_hook: ask.map(|a| {
                crate::events::ask::HookHandle(
                    a as std::sync::Arc<dyn crate::events::ask::DecisionHook>,
                )
            }),
        };
        let outcome = sandbox::run(&compiled.plan, &opts).map_err(from_sandbox)?;
        report.sandbox = Some(SandboxInfo {
            enforcement: outcome.enforcement.clone(),
            dropped_env: compiled.dropped_env.clone(),
            limits: compiled.plan.limits.clone(),
        });
        let result = read_bounded_json(&control.join("result.json"));
        explain_run(
            report,
            &outcome,
            Some(&control),
            &compiled.plan,
            &places,
            &self.sources,
        );
        report.hooks.push(HookRun {
            phase: phase.to_string(),
            result: result.clone(),
            exit: outcome.exit,
            peak_processes: outcome.peak_processes,
            max_rss_kib: outcome.max_rss_kib,
            setup_ms: outcome.setup.as_secs_f64() * 1e3,
            total_ms: outcome.total.as_secs_f64() * 1e3,
            resources: outcome.resources.clone(),
            filesystems: outcome.filesystems.clone(),
        });
        let runner_outcome = result
            .as_ref()
            .and_then(|r| r.get("outcome"))
            .and_then(|o| o.as_str())
            .unwrap_or("")
            .to_string();
        let limits = &compiled.plan.limits;
        let near_process_limit = limits
            .processes
            .is_some_and(|max| outcome.peak_processes + 4 >= max);
        // resources: a limit of the whole sandbox (cgroup, sized file systems).
        let sandbox_hit = crate::report::resources::sandbox_hit(
            &outcome,
            runner_outcome != "ok" || !outcome.exit.success(),
        );
        let limit_hit = match (&outcome.exit, runner_outcome.as_str()) {
            (RunExit::TimedOut { .. }, _) => Some(LimitHit::WallClock),
            (_, "memory-limit") => Some(LimitHit::Memory),
            (_, "process-limit") => Some(LimitHit::Processes),
            (_, "file-size-limit") => Some(LimitHit::FileSize),
            _ if sandbox_hit.is_some() => sandbox_hit,
            (RunExit::Signaled { signal }, _) if *signal == libc::SIGXCPU => Some(LimitHit::Cpu),
            _ if near_process_limit => Some(LimitHit::Processes),
            _ => None,
        };
        report.findings.extend(crate::report::resources::findings(
            phase, &outcome, limits, limit_hit,
        ));
        if runner_outcome == "ok" && outcome.exit.success() && limit_hit.is_none() {
            return Ok(result.unwrap_or_default());
        }
        let reason = crate::report::resources::reason(phase, &outcome, limit_hit)
            .unwrap_or_else(|| failure_reason(phase, &outcome, result.as_ref(), limit_hit, limits));
        if self.req.print_failure_tail {
            print_tail(&outcome.output_tail, log_path);
        }
        Err(Failure {
            status: Status::BuildFailed,
            error: anyhow::anyhow!(reason),
            limit_hit,
        })
    }
}

/// In the degraded mode, as root, the build runs as an unprivileged uid
/// with no bind mounts to carry the interpreter in: it must be reachable
/// by others (an interpreter under /root is not).
fn unreachable_by_others(path: &Path) -> anyhow::Result<()> {
    for dir in path.ancestors().skip(1) {
        let Ok(meta) = fs::metadata(dir) else {
            continue;
        };
        if meta.mode() & 0o001 == 0 {
            anyhow::bail!(
                "in the degraded mode the build runs as unprivileged uid {}, which cannot reach the interpreter at `{}` (`{}` is not searchable by others); pass --python with one outside it, such as /usr/bin/python3",
                policy::ROOT_MAPS_TO,
                path.display(),
                dir.display()
            );
        }
    }
    Ok(())
}

/// Say on the terminal, before anything runs, what the degraded mode
/// does not enforce (the report's `sandbox.enforcement` says it per layer).
pub(crate) fn warn_degraded(profile: &str) {
    // A profile given as a file is named by its path.
    let profile = crate::text::shown(profile);
    eprintln!(
        "sdist-box: WARNING: user namespaces are not available here; the profile `{profile}` allows the DEGRADED mode.\n\
         sdist-box:   NOT enforced: namespaces (pid, mount, network, ipc, uts), the private read-only file-system view (mounts),\n\
         sdist-box:   a user namespace (as root, the build runs as an unprivileged uid; else as you), the empty network namespace (partly replaced: sockets other\n\
         sdist-box:   than unix refused by seccomp, TCP by Landlock, unix sockets by path by the supervisor).\n\
         sdist-box:   Enforced: Landlock (files; TCP), seccomp, no_new_privs, rlimits, scrubbed environment.\n\
         sdist-box:   Leftover processes are killed by process group (best effort). `sdist-box doctor` shows the fix."
    );
}

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
    let found = findings::pair(&ctx, outcome.kernel.as_ref(), &audit, &starts, &issues);
    let k = outcome.kernel.as_ref();
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

fn failure_reason(
    phase: &str,
    outcome: &sandbox::RunOutcome,
    result: Option<&serde_json::Value>,
    limit: Option<LimitHit>,
    limits: &sandbox::Limits,
) -> String {
    let hook = match phase {
        "requires" => "get_requires_for_build_wheel",
        "metadata" => "prepare_metadata_for_build_wheel",
        _ => "build_wheel",
    };
    let gib = |b: Option<u64>| {
        b.map(|b| format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64))
            .unwrap_or_default()
    };
    match limit {
        Some(LimitHit::WallClock) => {
            return format!(
                "{hook} exceeded the wall-clock limit of {} s and was killed with everything it started",
                limits.wall_seconds
            );
        }
        Some(LimitHit::Memory) => {
            return format!(
                "{hook} ran out of memory: a process reached the memory limit ({} of address space)",
                gib(limits.memory_bytes)
            );
        }
        Some(LimitHit::Processes) => {
            return format!(
                "{hook} hit the process limit ({} processes; peak seen {}): a fork bomb or a runaway build",
                limits.processes.unwrap_or(0),
                outcome.peak_processes
            );
        }
        Some(LimitHit::FileSize) => {
            return format!(
                "{hook} tried to write a file larger than the file-size limit ({})",
                gib(limits.file_size_bytes)
            );
        }
        Some(LimitHit::Disk) => {
            return format!("{hook} filled a size-limited file system of the sandbox");
        }
        Some(LimitHit::Cpu) => {
            return format!(
                "{hook} used more than the CPU-time limit ({} s)",
                limits.cpu_seconds.unwrap_or(0)
            );
        }
        None => {}
    }
    let Some(result) = result else {
        if outcome.exit == (RunExit::Exited { code: 127 }) {
            return format!(
                "{hook}: the hook runner could not be started in the sandbox (see the log)"
            );
        }
        return format!(
            "{hook} ended ({}) without a result from the hook runner: the package ended the process itself",
            describe_exit(&outcome.exit)
        );
    };
    let kind = result["outcome"].as_str().unwrap_or("unknown");
    let err_type = result["error"]["type"].as_str().unwrap_or("");
    let err_msg = result["error"]["message"].as_str().unwrap_or("");
    let detail = if err_type.is_empty() && err_msg.is_empty() {
        String::new()
    } else {
        format!(": {err_type}: {}", crate::text::one_line(err_msg, 300))
    };
    match kind {
        "backend-unavailable" => format!("the build backend could not be imported{detail}"),
        "backend-invalid" => format!("the build backend is not inside its backend-path{detail}"),
        "hook-missing" => format!("the build backend has no {hook} hook{detail}"),
        "backend-error" => format!("{hook} raised an exception{detail}"),
        _ => format!(
            "{hook} failed ({}, outcome `{kind}`){detail}",
            describe_exit(&outcome.exit)
        ),
    }
}

fn describe_exit(exit: &RunExit) -> String {
    match exit {
        RunExit::Exited { code } => format!("exit code {code}"),
        RunExit::Signaled { signal } => format!("killed by signal {signal}"),
        RunExit::TimedOut { seconds } => format!("timed out after {seconds} s"),
    }
}

fn print_tail(tail: &[u8], log: &Path) {
    let log = crate::text::path(log);
    let text = String::from_utf8_lossy(&crate::text::escape_bytes(tail)).into_owned();
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(30);
    if !lines.is_empty() {
        eprintln!(
            "---- last {} lines of the build output (all of it: {}) ----",
            lines.len() - start,
            log
        );
        for line in &lines[start..] {
            eprintln!("  {line}");
        }
        eprintln!("----");
    }
}

fn host_env() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

/// When we run as root, the sandbox runs as an unprivileged host uid: give
/// it the tree it may write, except `keep` (which stays root's). Links are
/// not followed. Runs before any package code, on trees sdist-box made.
fn hand_over(dir: &Path, keep: Option<&Path>) -> anyhow::Result<()> {
    if !nix::unistd::geteuid().is_root() {
        return Ok(());
    }
    let id = Some(policy::ROOT_MAPS_TO);
    fn walk(p: &Path, id: Option<u32>, keep: Option<&Path>) -> std::io::Result<()> {
        if keep == Some(p) {
            return Ok(());
        }
        std::os::unix::fs::lchown(p, id, id)?;
        let meta = fs::symlink_metadata(p)?;
        if meta.is_dir() {
            for entry in fs::read_dir(p)? {
                walk(&entry?.path(), id, keep)?;
            }
        }
        Ok(())
    }
    walk(dir, id, keep)
        .with_context(|| format!("cannot hand `{}` to the sandbox's uid", dir.display()))
}

/// Remove a tree the sandbox may have made hard to remove (read-only
/// directories). Links are never followed.
fn force_remove(dir: &Path) {
    if fs::remove_dir_all(dir).is_err() {
        open_up_tree(dir);
        if let Err(e) = fs::remove_dir_all(dir) {
            tracing::warn!(
                "could not remove the work directory {}: {e}",
                crate::text::path(dir)
            );
        }
    }
}

/// Make every directory of the tree at `dir` 0700 (so it can be emptied).
/// The walk goes by descriptor, each directory opened `O_NOFOLLOW`
/// relative to its parent: a directory swapped for a link (by a process
/// the degraded mode could not kill) is skipped, never chmod'ed through.
fn open_up_tree(dir: &Path) {
    use nix::fcntl::{OFlag, openat};
    use nix::sys::stat::{Mode, fchmod};
    use std::os::fd::AsFd;
    const DIR_FLAGS: OFlag = OFlag::O_RDONLY
        .union(OFlag::O_DIRECTORY)
        .union(OFlag::O_NOFOLLOW)
        .union(OFlag::O_CLOEXEC);
    fn open_up(fd: std::os::fd::OwnedFd, depth: usize) {
        let _ = fchmod(fd.as_fd(), Mode::from_bits_truncate(0o700));
        // One descriptor per level is open: stay well under the usual
        // 1024 (deeper read-only directories are left, with a warning).
        if depth > 256 {
            return;
        }
        let Ok(mut listing) = nix::dir::Dir::from_fd(fd) else {
            return;
        };
        let names: Vec<std::ffi::CString> = listing
            .iter()
            .flatten()
            // No d_type on some file systems: try those too (O_DIRECTORY
            // refuses what is not one).
            .filter(|e| matches!(e.file_type(), Some(nix::dir::Type::Directory) | None))
            .map(|e| e.file_name().to_owned())
            .filter(|n| n.as_bytes() != b"." && n.as_bytes() != b"..")
            .collect();
        for name in names {
            if let Ok(child) = openat(listing.as_fd(), name.as_c_str(), DIR_FLAGS, Mode::empty()) {
                open_up(child, depth + 1);
            }
        }
    }
    if let Ok(fd) = nix::fcntl::open(dir, DIR_FLAGS, Mode::empty()) {
        open_up(fd, 0);
    }
}

/// Open a file the sandbox could have written: no links, regular file only.
fn open_untrusted(path: &Path) -> std::io::Result<(fs::File, fs::Metadata)> {
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    Ok((file, meta))
}

fn read_bounded_json(path: &Path) -> Option<serde_json::Value> {
    const MAX: u64 = 4 << 20;
    let (file, _) = open_untrusted(path).ok()?;
    let mut text = String::new();
    file.take(MAX).read_to_string(&mut text).ok()?;
    serde_json::from_str(&text).ok()
}

/// A wheel file name: `{dist}-{version}(-{build})?-{py}-{abi}-{plat}.whl`
/// as [`names::WheelFilename`] parses it (one path component, a
/// conservative character set).
pub fn valid_wheel_name(name: &str) -> bool {
    names::WheelFilename::parse(name).is_ok()
}

const MAX_WHEEL_BYTES: u64 = 2 << 30;
/// Most build output kept in the log.
const MAX_LOG_BYTES: u64 = 64 << 20;

/// Take the wheel `build_wheel` named out of the sandbox's output
/// directory `out` into `dest_dir`, if it is this sdist's: its file name
/// parses and is `release`'s (checked before a byte is copied); copied
/// (bounded, hashed) to a temporary file beside its destination, where the
/// sandbox cannot reach; read back and checked to hold `release`'s own
/// metadata ([`crate::wheelcheck::belongs_to`]); then placed unless a
/// wheel of the same release from another input is there
/// ([`outputs::place_wheel`]). Returns the wheel as read, for the checks.
fn copy_wheel_out(
    out: &Path,
    name: &str,
    dest_dir: &Path,
    max_bytes: u64,
    release: &names::Release,
    producer: &outputs::Producer,
) -> Result<(WheelInfo, crate::wheelcheck::WheelContents), Failure> {
    let failed = |e: anyhow::Error| Failure::new(Status::BuildFailed, e);
    let wheel = names::WheelFilename::parse(name).map_err(|e| {
        failed(anyhow::Error::new(e).context("build_wheel returned a name that is not a wheel's"))
    })?;
    if !wheel.release.same(release) {
        return Err(failed(anyhow::anyhow!(
            "build_wheel returned `{name}`, a wheel of {}, but this sdist is {release}: the wheel of an sdist is of its project and version",
            wheel.release
        )));
    }
    let (tmp, sha256, size) =
        copy_out(&out.join(name), name, dest_dir, max_bytes).map_err(failed)?;
    let contents = crate::wheelcheck::read_wheel(tmp.path(), &Default::default()).map_err(|e| {
        failed(anyhow::Error::new(e).context(format!("cannot read the wheel `{name}`")))
    })?;
    crate::wheelcheck::belongs_to(&contents, name, release).map_err(|e| failed(e.into()))?;
    let dest = outputs::place_wheel(tmp, dest_dir, &wheel, producer).map_err(|e| match e {
        outputs::PlaceError::Collision { .. } => refused(e),
        _ => errored(e),
    })?;
    let info = WheelInfo {
        filename: name.to_string(),
        path: dest,
        sha256,
        size_bytes: size,
    };
    Ok((info, contents))
}

/// Copy the file the sandbox left at `source` (named `name`) into a
/// temporary file in `dest_dir`: no links, at most `max_bytes`, hashed as
/// copied. Returns the temporary file, its sha256 and size.
fn copy_out(
    source: &Path,
    name: &str,
    dest_dir: &Path,
    max_bytes: u64,
) -> anyhow::Result<(tempfile::NamedTempFile, String, u64)> {
    let (file, meta) = open_untrusted(source).with_context(|| {
        format!("the backend named `{name}` but did not leave it as a regular file")
    })?;
    if meta.size() > max_bytes {
        anyhow::bail!(
            "the wheel `{name}` is larger than the output-size limit ({max_bytes} bytes)"
        );
    }
    let mut tmp = tempfile::Builder::new()
        .prefix(".sdist-box-")
        .suffix(".whl.part")
        .tempfile_in(dest_dir)
        .with_context(|| format!("cannot write into `{}`", dest_dir.display()))?;
    let mut hasher = Sha256::new();
    let mut reader = file.take(max_bytes + 1);
    let mut buf = vec![0u8; 256 * 1024];
    let mut size = 0u64;
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        tmp.write_all(&buf[..n])?;
        size += n as u64;
    }
    if size > max_bytes {
        anyhow::bail!("the wheel `{name}` grew past {max_bytes} bytes while copied");
    }
    tmp.as_file().sync_all()?;
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o644))?;
    Ok((tmp, hex::encode(hasher.finalize()), size))
}

/// Write `text` to `path` atomically (temporary file + rename).
pub fn write_atomic(path: &Path, text: &str) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".sdist-box-")
        .tempfile_in(dir)
        .with_context(|| format!("cannot write into `{}`", dir.display()))?;
    tmp.write_all(text.as_bytes())?;
    tmp.as_file().sync_all()?;
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o644))?;
    tmp.persist(path)
        .with_context(|| format!("cannot write `{}`", path.display()))?;
    Ok(())
}

/// `sdist-box build`.
pub fn build_command(args: &BuildArgs, verbose: u8) -> anyhow::Result<u8> {
    let refused = not_utf8("the sdist's path", &args.sdist)
        .map(|why| (why, exit::INPUT_REFUSED))
        .or_else(|| not_utf8("the output directory", &args.out_dir).map(|why| (why, exit::USAGE)));
    if let Some((why, code)) = refused {
        eprintln!("sdist-box: error: {why}");
        return Ok(code);
    }
    let Prepared {
        request: mut req,
        fail_on,
        epoch,
    } = args
        .flags
        .prepare(args.sdist.clone(), args.out_dir.clone())?;
    req.sha256 = args.sha256.clone();
    req.keep_work = args.keep_work;
    req.echo = verbose > 0;
    req.print_failure_tail = true;
    req.ask = args.ask.then(|| Duration::from_secs(args.ask_timeout));
    if verbose == 0 {
        eprintln!(
            "sdist-box: building {} in the sandbox…",
            crate::text::path(&args.sdist)
        );
    }
    let report = match epoch {
        Some(epoch) => crate::reproducible::build_twice(&req, epoch),
        None => build(&req),
    };
    let json = report.to_json();
    let stem = sdist_stem(&report.input.filename);
    let beside = args.out_dir.join(format!("{stem}.sdist-box.json"));
    // Every outcome leaves its report beside where the wheel would be,
    // refusals included: that is where the user looks for why.
    fs::create_dir_all(&args.out_dir).with_context(|| {
        format!(
            "cannot create the output directory `{}`",
            args.out_dir.display()
        )
    })?;
    write_atomic(&beside, &json)?;
    deliver(&report, args.report.as_deref(), args.format)?;
    Ok(exit_code(&report, fail_on))
}

/// Write the report to `--report FILE` (SARIF if it ends in .sarif, else
/// JSON) and print it in `format`.
pub(crate) fn deliver(
    report: &BuildReport,
    report_file: Option<&Path>,
    format: Format,
) -> anyhow::Result<()> {
    let json = report.to_json();
    let sarif = || {
        serde_json::to_string_pretty(&crate::report::sarif::render(report))
            .expect("SARIF serializes")
    };
    if let Some(path) = report_file {
        let is_sarif = path.to_string_lossy().ends_with(".sarif")
            || path.to_string_lossy().ends_with(".sarif.json");
        write_atomic(path, &if is_sarif { sarif() } else { json.clone() })?;
    }
    match format {
        Format::Json => println!("{}", crate::text::json(&json)),
        Format::Sarif => println!("{}", crate::text::json(&sarif())),
        Format::Text => {
            let style = crate::report::text::Style::detect();
            eprint!("{}", crate::report::text::summary(report, style));
            eprint!("{}", crate::report::text::findings(report, style));
        }
    }
    Ok(())
}

/// The exit code of a finished report.
pub(crate) fn exit_code(report: &BuildReport, fail_on: FailOn) -> u8 {
    match report.outcome.status {
        Status::Built | Status::Ran if fail_on.matches(&report.findings) => exit::FINDINGS,
        Status::Built | Status::Ran => exit::OK,
        Status::BuildFailed => exit::BUILD_FAILED,
        Status::Refused => exit::INPUT_REFUSED,
        Status::SandboxUnavailable => exit::SANDBOX_UNAVAILABLE,
        Status::Error => exit::ERROR,
    }
}

/// `sdist-box inspect`: verify, extract, read metadata; run nothing.
pub fn inspect_command(args: &InspectArgs) -> anyhow::Result<u8> {
    if let Some(why) = not_utf8("the sdist's path", &args.sdist) {
        eprintln!("sdist-box: error: {why}");
        return Ok(exit::INPUT_REFUSED);
    }
    let sha = match &args.sha256 {
        Some(expected) => archive::verify_sha256(&args.sdist, expected)?,
        None => archive::sha256_file(&args.sdist)?,
    };
    let (tmp, dest) = match &args.extract_to {
        Some(dir) => (None, dir.clone()),
        None => {
            let tmp = tempfile::Builder::new()
                .prefix("sdist-box-inspect-")
                .tempdir()?;
            let dest = tmp.path().join("sdist");
            (Some(tmp), dest)
        }
    };
    let extracted = archive::extract(&args.sdist, &dest, &args.archive_limits.limits())?;
    let mut project = project::read_project(&extracted.root)?;
    let filename = args
        .sdist
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    project::identify(&mut project, &filename)?;
    let value = serde_json::json!({
        "schema_version": crate::report::SCHEMA_VERSION,
        "input": {
            "path": args.sdist,
            "sha256": sha,
            "sha256_pinned": args.sha256.is_some(),
        },
        "archive": extracted,
        "project": project,
    });
    match args.format {
        Format::Json | Format::Sarif => println!(
            "{}",
            crate::text::json(&serde_json::to_string_pretty(&value)?)
        ),
        Format::Text => {
            let t = crate::text::one_line;
            let bs = &project.build_system;
            println!("sdist      {}", crate::text::path(&args.sdist));
            println!(
                "sha256     {sha}{}",
                if args.sha256.is_some() {
                    " (pinned, matches)"
                } else {
                    ""
                }
            );
            println!(
                "archive    {:?}, {} entries, {} bytes unpacked, top-level `{}`",
                extracted.format,
                extracted.entries,
                extracted.total_bytes,
                t(&extracted.top_level, 200)
            );
            if !extracted.stripped_modes.is_empty() {
                println!(
                    "stripped   setuid/setgid/sticky bits on: {}",
                    t(&extracted.stripped_modes.join(", "), 400)
                );
            }
            println!(
                "name       {}",
                t(project.name.as_deref().unwrap_or("(unknown)"), 200)
            );
            println!(
                "version    {}",
                t(project.version.as_deref().unwrap_or("(unknown)"), 200)
            );
            println!("backend    {}", t(&bs.build_backend, 200));
            println!("requires   {}", t(&bs.requires.join(", "), 800));
            if !bs.backend_path.is_empty() {
                println!("backend-path {}", t(&bs.backend_path.join(", "), 400));
            }
            println!("source     {:?}", bs.source);
            if args.extract_to.is_some() {
                println!("extracted  {}", crate::text::path(&extracted.root));
            }
        }
    }
    drop(tmp);
    Ok(exit::OK)
}

/// A build-environment failure: a requirement the package named that is
/// refused is the package's doing (`refused` before anything ran, `build
/// failed` when its backend asked for it); anything else is an error.
fn env_failure(e: buildenv::BuildEnvError, package_fault: Status) -> Failure {
    match e {
        buildenv::BuildEnvError::Requirement { .. } => Failure::new(package_fault, e.into()),
        other => errored(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wheel_names() {
        assert!(valid_wheel_name("six-1.16.0-py2.py3-none-any.whl"));
        assert!(valid_wheel_name(
            "markupsafe-2.1.5-cp311-cp311-linux_x86_64.whl"
        ));
        assert!(valid_wheel_name("pkg-1.0-1-py3-none-any.whl"));
        assert!(!valid_wheel_name("../evil-1.0-py3-none-any.whl"));
        assert!(!valid_wheel_name("a/b-1.0-py3-none-any.whl"));
        assert!(!valid_wheel_name("pkg-1.0.tar.gz"));
        assert!(!valid_wheel_name("pkg-1.0-py3-none.whl"));
        assert!(!valid_wheel_name(".hidden-1.0-py3-none-any.whl"));
        assert!(!valid_wheel_name("pkg-1.0-py3-none-any\n.whl"));
    }

    #[test]
    fn opening_up_a_tree_never_chmods_through_a_link() {
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("victim");
        fs::create_dir(&victim).unwrap();
        fs::set_permissions(&victim, fs::Permissions::from_mode(0o751)).unwrap();
        let tree = tempfile::tempdir().unwrap();
        let locked = tree.path().join("a/locked");
        fs::create_dir_all(locked.join("deeper")).unwrap();
        std::os::unix::fs::symlink(&victim, locked.join("link")).unwrap();
        std::os::unix::fs::symlink(&victim, tree.path().join("top-link")).unwrap();
        fs::set_permissions(locked.join("deeper"), fs::Permissions::from_mode(0o500)).unwrap();
        fs::set_permissions(&locked, fs::Permissions::from_mode(0o500)).unwrap();
        open_up_tree(tree.path());
        let mode = |p: &Path| fs::symlink_metadata(p).unwrap().mode() & 0o777;
        assert_eq!(mode(&locked), 0o700);
        assert_eq!(mode(&locked.join("deeper")), 0o700);
        assert_eq!(mode(&victim), 0o751, "a link was followed");
        force_remove(tree.path());
        assert!(!tree.path().exists());
        assert!(victim.is_dir());
    }

    #[test]
    fn the_metadata_directory_is_looked_up_without_links() {
        let out = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        fs::create_dir(elsewhere.path().join("evil-1.0.dist-info")).unwrap();
        // The run made .sdist-box-metadata a link to a directory of the host.
        std::os::unix::fs::symlink(elsewhere.path(), out.path().join(METADATA_SUBDIR)).unwrap();
        assert!(checked_metadata_dir(out.path(), "evil-1.0.dist-info").is_err());
        fs::remove_file(out.path().join(METADATA_SUBDIR)).unwrap();
        fs::create_dir_all(out.path().join(METADATA_SUBDIR).join("good-1.0.dist-info")).unwrap();
        assert_eq!(
            checked_metadata_dir(out.path(), "good-1.0.dist-info").unwrap(),
            format!("{}/{METADATA_SUBDIR}/good-1.0.dist-info", inside::OUT)
        );
        assert!(checked_metadata_dir(out.path(), "../x.dist-info").is_err());
    }

    #[test]
    fn fail_on_comes_from_the_command_line_then_the_profile() {
        let observe = Profile::load("observe").unwrap();
        let default = Profile::load("default").unwrap();
        assert_eq!(FailOn::effective(None, &observe), FailOn::Never);
        assert_eq!(FailOn::effective(None, &default), FailOn::Blocked);
        assert_eq!(
            FailOn::effective(Some(FailOn::Evasion), &observe),
            FailOn::Evasion
        );
    }

    #[test]
    fn stems_and_requirements() {
        assert_eq!(sdist_stem("six-1.16.0.tar.gz"), "six-1.16.0");
        assert_eq!(sdist_stem("x-1.zip"), "x-1");
        assert!(same_requirement(
            "setuptools >= 40.8.0",
            "Setuptools>=40.8.0"
        ));
        assert!(same_requirement("setuptools_scm", "setuptools-scm"));
        assert!(!same_requirement("wheel", "setuptools"));
    }
}
