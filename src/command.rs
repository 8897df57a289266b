//! `sdist-box run`: any command in the same sandbox as a build, with the
//! same two streams, findings and report (for `python setup.py …` by hand,
//! a test suite, a backend author checking what their backend does).
//!
//! The command gets no source tree unless `--workdir` names one (bound
//! read-write at `/build/src`), an empty HOME and a private /tmp. Its output
//! goes to our stderr, escaped. The report is the build report's shape with
//! `command` set and no project, wheel or build environment.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::events::ask::{HookHandle, TerminalAsk};
use crate::policy::{self, BuildPaths, HostLayout, Profile, inside};
use crate::report::{
    BuildReport, HookRun, Input, Outcome, ProfileInfo, SandboxInfo, Status, Timings, Tool,
};
use crate::sandbox::{self, RunExit, RunOptions};

fn host_env() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

/// Resolve a bare program name on the sandbox's PATH (the sandbox sees the
/// host's system directories at the same paths).
fn resolve_program(argv: &mut [String]) {
    let Some(prog) = argv.first_mut() else { return };
    if prog.contains('/') {
        return;
    }
    for dir in ["/usr/local/bin", "/usr/bin", "/bin"] {
        let candidate = format!("{dir}/{prog}");
        if Path::new(&candidate).exists() {
            *prog = candidate;
            return;
        }
    }
    *prog = format!("/usr/bin/{prog}");
}

/// The python3 the sandbox's PATH finds first, and a string that changes
/// when that file does (size and modification time).
fn system_python3() -> Option<(PathBuf, String)> {
    use std::os::unix::fs::MetadataExt;
    ["/usr/local/bin/python3", "/usr/bin/python3"]
        .iter()
        .find_map(|p| {
            let meta = std::fs::metadata(p).ok()?;
            Some((
                PathBuf::from(p),
                format!("{} bytes, mtime {}", meta.size(), meta.mtime()),
            ))
        })
}

/// One `sdist-box run`: the command and how its sandbox is made.
pub struct RunRequest {
    pub profile: Profile,
    /// The command and its arguments (the program is looked up on the
    /// sandbox's PATH).
    pub argv: Vec<String>,
    /// The host directory bound read-write at `/build/src`.
    pub workdir: Option<PathBuf>,
    /// Host directories readable at the same path.
    pub read: Vec<PathBuf>,
    /// `--ask`: put each connect and program start to the person at
    /// sdist-box's terminal, waiting this long for each answer.
    pub ask: Option<Duration>,
    /// The interpreter whose audit hook explains Python commands.
    pub python: Option<OsString>,
    /// Where the compiled audit hook is cached.
    pub cache_dir: Option<PathBuf>,
    pub trace_files: bool,
    /// Say on stderr how long set-up and the run took.
    pub verbose: bool,
}

/// The scratch space of one run: the control directory (the Python
/// stream's fallback file) and, in the degraded mode, a private HOME and
/// TMPDIR.
struct Scratch {
    _dir: crate::workdir::WorkDir,
    control: PathBuf,
    private: Option<policy::PrivateDirs>,
}

/// Run `req`'s command in the sandbox; the report of what it tried.
/// `Err` only when the run could not be prepared; a sandbox that cannot be
/// set up is the report's outcome.
pub fn run(req: &RunRequest) -> anyhow::Result<BuildReport> {
    let started = Instant::now();
    let profile = &req.profile;
    let shown = crate::text::one_line(&req.argv.join(" "), 200);
    // 1. the host paths the command sees, resolved before anything runs.
    let (mut read_only, workdir) = resolve_paths(&req.read, req.workdir.as_deref())?;
    // 2. namespaces, or (where there are none and the profile allows it)
    // the degraded mode, with a private HOME and TMPDIR in the scratch space.
    let mode = sandbox::choose_mode(profile.allow_degraded, &profile.origin);
    let scratch = make_scratch(mode.as_ref().ok().copied())?;
    if scratch.private.is_some() {
        crate::build::warn_degraded(&profile.origin);
    }
    // 3. the Python stream, when an interpreter is at hand to compile the hook.
    let (interp_paths, shim_dir) = python_stream(req);
    read_only.extend(interp_paths);
    // 4. the plan.
    let paths = BuildPaths {
        src: workdir.clone(),
        control: Some(scratch.control.clone()),
        shim: shim_dir.clone(),
        read_only_same_path: read_only.clone(),
        supervise: true,
        trace_files: req.trace_files,
        without_namespaces: scratch.private.clone(),
        ..BuildPaths::default()
    };
    let places = policy::Places::of(&paths);
    let mut compiled = compile_plan(req, &paths)?;
    if shim_dir.is_some() {
        let quiet: Vec<String> = read_only.iter().map(|p| p.display().to_string()).collect();
        crate::build::add_python_stream(
            &mut compiled.plan,
            &places.shim,
            &places.control,
            &places.src,
            &quiet,
        );
    }
    // 5. the run, and what it tried.
    let ask = req.ask.map(|timeout| {
        let ask = std::sync::Arc::new(TerminalAsk::start("/dev/tty", timeout));
        HookHandle(ask as std::sync::Arc<dyn crate::events::ask::DecisionHook>)
    });
    let opts = RunOptions {
        echo: true,
        ..RunOptions::new(crate::events::kernel::KernelSupervisor::handle(ask))
    };
    let mut report = new_report(&shown, profile, &compiled);
    let ran = mode.and_then(|_| sandbox::run(&compiled.plan, &opts));
    crate::workdir::halt_if_abandoned();
    match ran {
        Err(e) => {
            report.outcome = Outcome {
                status: Status::SandboxUnavailable,
                reason: Some(format!("{e:#}")),
                limit_hit: None,
            };
        }
        Ok(outcome) => {
            let ran = Ran {
                outcome: &outcome,
                compiled: &compiled,
                places: &places,
                control: &scratch.control,
                workdir: workdir.as_deref(),
            };
            record_run(&mut report, &ran);
            if req.verbose {
                eprintln!(
                    "sdist-box: set-up {:.1} ms, total {:.1} ms",
                    outcome.setup.as_secs_f64() * 1e3,
                    outcome.total.as_secs_f64() * 1e3
                );
            }
            record_exit(&mut report, outcome.exit, &shown);
            record_sandbox_limits(&mut report, &outcome, &compiled.plan.limits);
        }
    }
    report.timings.total_ms = started.elapsed().as_secs_f64() * 1e3;
    Ok(report)
}

/// `--read` and `--workdir`, canonical.
fn resolve_paths(
    read: &[PathBuf],
    workdir: Option<&Path>,
) -> anyhow::Result<(Vec<PathBuf>, Option<PathBuf>)> {
    let mut read_only = Vec::new();
    for p in read {
        read_only.push(
            std::fs::canonicalize(p).map_err(|e| anyhow::anyhow!("--read {}: {e}", p.display()))?,
        );
    }
    let workdir = match workdir {
        Some(w) => {
            Some(std::fs::canonicalize(w).with_context(|| format!("--workdir {}", w.display()))?)
        }
        None => None,
    };
    Ok((read_only, workdir))
}

/// Our own scratch space; `mode` is `None` when no sandbox will run (the
/// refusal is reported later), and its directories then stay ours.
fn make_scratch(mode: Option<sandbox::Mode>) -> anyhow::Result<Scratch> {
    let dir =
        crate::workdir::WorkDir::create(None, "run-").context("cannot create a work directory")?;
    let control = dir.path().join("control");
    let private = match mode {
        Some(sandbox::Mode::Degraded) => Some(policy::PrivateDirs {
            home: dir.path().join("home"),
            tmp: dir.path().join("tmp"),
        }),
        _ => None,
    };
    for dir in [
        Some(&control),
        private.as_ref().map(|p| &p.home),
        private.as_ref().map(|p| &p.tmp),
    ]
    .into_iter()
    .flatten()
    {
        std::fs::create_dir(dir).context("cannot prepare the work directory")?;
        // Only for a sandbox that will run (a refusal is reported below).
        if mode.is_some() && nix::unistd::geteuid().is_root() {
            let id = Some(policy::ROOT_MAPS_TO);
            std::os::unix::fs::chown(dir, id, id)
                .with_context(|| format!("cannot hand `{}` to the sandbox", dir.display()))?;
        }
    }
    Ok(Scratch {
        _dir: dir,
        control,
        private,
    })
}

/// The audit hook compiled for the interpreter at hand: the paths that
/// interpreter needs readable, and the hook's directory (`None`: no Python
/// stream, said on stderr).
fn python_stream(req: &RunRequest) -> (Vec<PathBuf>, Option<PathBuf>) {
    let cache = req
        .cache_dir
        .clone()
        .unwrap_or_else(crate::buildenv::default_cache_dir);
    let cache = std::path::absolute(&cache).unwrap_or(cache);
    let shim = match &req.python {
        // Named: resolved (links, shims) and its tree made visible.
        Some(spec) => crate::buildenv::resolve_interpreter(Some(spec))
            .map_err(anyhow::Error::from)
            .and_then(|interp| {
                let dir = crate::shim::ensure_compiled(
                    &cache,
                    &interp.executable,
                    &interp.version,
                    inside::SHIM,
                )?;
                Ok((interp.read_paths, dir))
            }),
        // Otherwise the python3 on the sandbox's PATH, which is in the
        // sandbox anyway; not probed (a pyenv shim on the host's PATH costs
        // 100 ms and would make /root appear), keyed by its file's identity.
        None => system_python3()
            .ok_or_else(|| anyhow::anyhow!("no python3 in /usr/local/bin or /usr/bin"))
            .and_then(|(exe, identity)| {
                Ok((
                    Vec::new(),
                    crate::shim::ensure_compiled(&cache, &exe, &identity, inside::SHIM)?,
                ))
            }),
    };
    match shim {
        Ok((paths, dir)) => (paths, Some(dir)),
        Err(e) => {
            tracing::warn!("no Python stream (the audit hook could not be prepared): {e:#}");
            (Vec::new(), None)
        }
    }
}

/// The profile compiled for this command: its network allowlist resolved,
/// its program found on the sandbox's PATH (and allowed to run under
/// `restrict-exec`), connects left to the supervisor with `--ask`.
fn compile_plan(req: &RunRequest, paths: &BuildPaths) -> anyhow::Result<policy::Compiled> {
    let profile = &req.profile;
    let mut compiled = policy::compile(
        profile,
        &HostLayout::detect_for(profile),
        paths,
        req.argv.clone(),
        &host_env(),
    );
    policy::resolve_network(&mut compiled.plan.network)?;
    resolve_program(&mut compiled.plan.argv);
    // `restrict-exec`: the command the user asked for may itself run.
    if compiled.plan.landlock.restrict_exec
        && let Some(prog) = compiled.plan.argv.first()
        && let Ok(real) = std::fs::canonicalize(prog)
    {
        compiled.plan.landlock.exec.push(real);
    }
    // With --ask, a person decides each connect in the supervisor (which
    // makes an allowed one itself); Landlock keeps refusing binds.
    compiled.plan.landlock.tcp_connect_by_supervisor |= req.ask.is_some();
    Ok(compiled)
}

/// The report before the run: the command and the profile, status `ran`.
fn new_report(shown: &str, profile: &Profile, compiled: &policy::Compiled) -> BuildReport {
    BuildReport {
        schema_version: crate::report::SCHEMA_VERSION,
        tool: Tool::default(),
        input: Input {
            filename: shown.to_string(),
            ..Input::default()
        },
        project: None,
        profile: ProfileInfo {
            name: profile.origin.clone(),
            description: profile.description.clone(),
            required_layers: profile.require.clone(),
            network: Some(crate::report::NetworkInfo::from_plan(
                &compiled.plan.network,
            )),
        },
        interpreter: None,
        build_env: None,
        sandbox: None,
        hooks: Vec::new(),
        outcome: Outcome {
            status: Status::Ran,
            reason: None,
            limit_hit: None,
        },
        wheel: None,
        log: None,
        timings: Timings::default(),
        findings: Vec::new(),
        streams: Default::default(),
        kernel_events: Vec::new(),
        command: Some(compiled.plan.argv.clone()),
        decisions: Vec::new(),
        pre_build: None,
        wheel_check: None,
        reproducible: None,
    }
}

/// A finished sandboxed run and where it ran.
struct Ran<'a> {
    outcome: &'a sandbox::RunOutcome,
    compiled: &'a policy::Compiled,
    places: &'a policy::Places,
    control: &'a Path,
    workdir: Option<&'a Path>,
}

/// What was enforced, what the command tried, and the run itself.
fn record_run(report: &mut BuildReport, ran: &Ran) {
    let outcome = ran.outcome;
    report.sandbox = Some(SandboxInfo {
        enforcement: outcome.enforcement.clone(),
        dropped_env: ran.compiled.dropped_env.clone(),
        limits: ran.compiled.plan.limits.clone(),
    });
    // No sdist here: the working directory is the user's own, and
    // lines are quoted from it as the command left it (beneath it,
    // no link or `..` at any depth, like any tree the sandbox wrote).
    let sources = crate::events::sources::SourceTrees {
        shipped: ran.workdir.map(Path::to_path_buf),
        patched: Default::default(),
        live: ran.workdir.map(Path::to_path_buf),
    };
    crate::build::explain_run(
        report,
        outcome,
        Some(ran.control),
        &ran.compiled.plan,
        ran.places,
        &sources,
    );
    report.hooks.push(HookRun {
        phase: "run".into(),
        result: None,
        exit: outcome.exit,
        peak_processes: outcome.peak_processes,
        max_rss_kib: outcome.max_rss_kib,
        setup_ms: outcome.setup.as_secs_f64() * 1e3,
        total_ms: outcome.total.as_secs_f64() * 1e3,
        resources: outcome.resources.clone(),
        filesystems: outcome.filesystems.clone(),
    });
}

/// resources: a limit of the whole sandbox (cgroup, sized file systems)
/// is a finding, and the run's limit_hit.
fn record_sandbox_limits(
    report: &mut BuildReport,
    outcome: &sandbox::RunOutcome,
    limits: &sandbox::Limits,
) {
    let hit = report
        .outcome
        .limit_hit
        .or_else(|| crate::report::resources::sandbox_hit(outcome, !outcome.exit.success()));
    if hit.is_some() && report.outcome.limit_hit.is_none() {
        report.outcome.limit_hit = hit;
        if let Some(why) = crate::report::resources::reason("run", outcome, hit) {
            report.outcome.reason = Some(why);
        }
    }
    report.findings.extend(crate::report::resources::findings(
        "run", outcome, limits, hit,
    ));
}

/// The command's exit as the report's outcome.
fn record_exit(report: &mut BuildReport, exit: RunExit, shown: &str) {
    match exit {
        RunExit::Exited { code: 0 } => {}
        RunExit::Exited { code } => {
            report.outcome.status = Status::BuildFailed;
            report.outcome.reason = Some(format!("`{shown}` exited with code {code}"));
        }
        RunExit::Signaled { signal } => {
            report.outcome.status = Status::BuildFailed;
            report.outcome.reason = Some(format!("`{shown}` was killed by signal {signal}"));
        }
        RunExit::TimedOut { seconds } => {
            report.outcome.status = Status::BuildFailed;
            report.outcome.reason = Some(format!(
                "`{shown}` was killed at the wall-clock limit ({seconds} s)"
            ));
            report.outcome.limit_hit = Some(crate::report::LimitHit::WallClock);
        }
    }
}
