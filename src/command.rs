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
use clap::Args;

use crate::events::ask::{HookHandle, TerminalAsk};
use crate::pipeline::{FailOn, Format};
use crate::policy::{self, BuildPaths, HostLayout, Profile, inside};
use crate::report::{
    BuildReport, HookRun, Input, Outcome, ProfileInfo, SandboxInfo, Status, Timings, Tool,
};
use crate::sandbox::{self, RunExit, RunOptions};

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Profile name (built-in) or path to a profile TOML file.
    #[arg(long, default_value = "default")]
    pub profile: String,
    /// Make this host directory the read-write working directory (/build/src).
    #[arg(long)]
    pub workdir: Option<PathBuf>,
    /// Also make these host directories readable at the same path.
    #[arg(long = "read")]
    pub read: Vec<PathBuf>,
    /// Ask on this terminal before a network connect or a program runs:
    /// [y] allow once, [n] deny, [a] always (this destination or program,
    /// this run). Asked on sdist-box's controlling terminal, never through
    /// the command's own output; without a terminal, every question is
    /// answered "deny". Decisions go into the report.
    #[arg(long)]
    pub ask: bool,
    /// Seconds to wait for an answer at the --ask prompt before denying.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub ask_timeout: u64,
    /// Also write the report to this file: SARIF if it ends in .sarif, else JSON.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Exit with code 1 when the command succeeded but the report has findings of this kind
    /// [default: the profile's `fail-on`, else blocked].
    #[arg(long, value_enum)]
    pub fail_on: Option<FailOn>,
    /// What to print when done.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// Python interpreter whose audit hook explains Python commands
    /// (default: `python3` on PATH). Without one, only the kernel stream runs.
    #[arg(long)]
    pub python: Option<OsString>,
    /// Where the compiled audit hook is cached (default: $SDIST_BOX_CACHE or ~/.cache/sdist-box).
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Also record every file open in the sandbox (slower).
    #[arg(long)]
    pub trace_files: bool,
    /// The command and its arguments (the program is looked up on the sandbox's PATH).
    #[arg(last = true, required = true)]
    pub command: Vec<OsString>,
}

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

/// `sdist-box run`.
pub fn run_command(args: &RunArgs, verbose: u8) -> anyhow::Result<u8> {
    let started = Instant::now();
    let profile = Profile::load(&args.profile)?;
    let mut argv: Vec<String> = Vec::new();
    for a in &args.command {
        argv.push(
            a.clone()
                .into_string()
                .map_err(|a| anyhow::anyhow!("argument {a:?} is not valid UTF-8"))?,
        );
    }
    let shown = crate::text::one_line(&argv.join(" "), 200);
    let mut read_only = Vec::new();
    for p in &args.read {
        read_only.push(
            std::fs::canonicalize(p).map_err(|e| anyhow::anyhow!("--read {}: {e}", p.display()))?,
        );
    }
    let workdir = match &args.workdir {
        Some(w) => {
            Some(std::fs::canonicalize(w).with_context(|| format!("--workdir {}", w.display()))?)
        }
        None => None,
    };
    // Our own scratch space: the Python stream's fallback file.
    let scratch = tempfile::Builder::new()
        .prefix("sdist-box-run-")
        .tempdir()
        .context("cannot create a work directory")?;
    let control = scratch.path().join("control");
    // Namespaces, or (where there are none and the profile allows it) the
    // degraded mode, with a private HOME and TMPDIR in the scratch space.
    let mode = sandbox::choose_mode(profile.allow_degraded, &profile.origin);
    let private = match mode {
        Ok(sandbox::Mode::Degraded) => Some(policy::PrivateDirs {
            home: scratch.path().join("home"),
            tmp: scratch.path().join("tmp"),
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
        if mode.is_ok() && nix::unistd::geteuid().is_root() {
            let id = Some(policy::ROOT_MAPS_TO);
            std::os::unix::fs::chown(dir, id, id)
                .with_context(|| format!("cannot hand `{}` to the sandbox", dir.display()))?;
        }
    }
    if private.is_some() {
        crate::pipeline::warn_degraded(&profile.origin);
    }

    // The Python stream, when an interpreter is at hand to compile the hook.
    let cache = args
        .cache_dir
        .clone()
        .unwrap_or_else(crate::buildenv::default_cache_dir);
    let cache = std::path::absolute(&cache).unwrap_or(cache);
    let shim = match &args.python {
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
    let (interp_paths, shim_dir) = match shim {
        Ok((paths, dir)) => (paths, Some(dir)),
        Err(e) => {
            tracing::warn!("no Python stream (the audit hook could not be prepared): {e:#}");
            (Vec::new(), None)
        }
    };
    read_only.extend(interp_paths);
    let paths = BuildPaths {
        src: workdir.clone(),
        control: Some(control.clone()),
        shim: shim_dir.clone(),
        read_only_same_path: read_only.clone(),
        supervise: true,
        trace_files: args.trace_files,
        without_namespaces: private.clone(),
        ..BuildPaths::default()
    };
    let places = policy::Places::of(&paths);
    let mut compiled = policy::compile(
        &profile,
        &HostLayout::detect_for(&profile),
        &paths,
        argv,
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
    compiled.plan.landlock.tcp_connect_by_supervisor |= args.ask;
    if shim_dir.is_some() {
        let quiet: Vec<String> = read_only.iter().map(|p| p.display().to_string()).collect();
        crate::pipeline::add_python_stream(
            &mut compiled.plan,
            &places.shim,
            &places.control,
            &places.src,
            &quiet,
        );
    }

    let ask = args.ask.then(|| {
        std::sync::Arc::new(TerminalAsk::start(
            "/dev/tty",
            Duration::from_secs(args.ask_timeout),
        ))
    });
    let opts = RunOptions {
        echo: true,
        decision_hook: ask
            .clone()
            .map(|a| HookHandle(a as std::sync::Arc<dyn crate::events::ask::DecisionHook>)),
        ..RunOptions::default()
    };
    let mut report = BuildReport {
        schema_version: crate::report::SCHEMA_VERSION,
        tool: Tool::default(),
        input: Input {
            filename: shown.clone(),
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
    };
    match mode.and_then(|_| sandbox::run(&compiled.plan, &opts)) {
        Err(e) => {
            report.outcome = Outcome {
                status: Status::SandboxUnavailable,
                reason: Some(format!("{e:#}")),
                limit_hit: None,
            };
        }
        Ok(outcome) => {
            report.sandbox = Some(SandboxInfo {
                enforcement: outcome.enforcement.clone(),
                dropped_env: compiled.dropped_env.clone(),
                limits: compiled.plan.limits.clone(),
            });
            // No sdist here: the working directory is the user's own, and
            // lines are quoted from it as the command left it (beneath it,
            // no link or `..` at any depth, like any tree the sandbox wrote).
            let sources = crate::events::sources::SourceTrees {
                shipped: workdir.clone(),
                patched: Default::default(),
                live: workdir.clone(),
            };
            crate::pipeline::explain_run(
                &mut report,
                &outcome,
                Some(&control),
                &compiled.plan,
                &places,
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
            if verbose > 0 {
                eprintln!(
                    "sdist-box: set-up {:.1} ms, total {:.1} ms",
                    outcome.setup.as_secs_f64() * 1e3,
                    outcome.total.as_secs_f64() * 1e3
                );
            }
            match outcome.exit {
                RunExit::Exited { code: 0 } => {}
                RunExit::Exited { code } => {
                    report.outcome.status = Status::BuildFailed;
                    report.outcome.reason = Some(format!("`{shown}` exited with code {code}"));
                }
                RunExit::Signaled { signal } => {
                    report.outcome.status = Status::BuildFailed;
                    report.outcome.reason =
                        Some(format!("`{shown}` was killed by signal {signal}"));
                }
                RunExit::TimedOut { seconds } => {
                    report.outcome.status = Status::BuildFailed;
                    report.outcome.reason = Some(format!(
                        "`{shown}` was killed at the wall-clock limit ({seconds} s)"
                    ));
                    report.outcome.limit_hit = Some(crate::report::LimitHit::WallClock);
                }
            }
            // resources: a limit of the whole sandbox (cgroup, sized file
            // systems) is a finding, and the run's limit_hit.
            let hit = report.outcome.limit_hit.or_else(|| {
                crate::report::resources::sandbox_hit(&outcome, !outcome.exit.success())
            });
            if hit.is_some() && report.outcome.limit_hit.is_none() {
                report.outcome.limit_hit = hit;
                if let Some(why) = crate::report::resources::reason("run", &outcome, hit) {
                    report.outcome.reason = Some(why);
                }
            }
            report.findings.extend(crate::report::resources::findings(
                "run",
                &outcome,
                &compiled.plan.limits,
                hit,
            ));
        }
    }
    report.timings.total_ms = started.elapsed().as_secs_f64() * 1e3;
    crate::pipeline::deliver(&report, args.report.as_deref(), args.format)?;
    Ok(crate::pipeline::exit_code(
        &report,
        FailOn::effective(args.fail_on, &profile),
    ))
}
