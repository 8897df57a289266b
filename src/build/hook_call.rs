//! One sandboxed call of the hook runner: the plan compiled from the
//! profile for this call, the sandbox run, and its outcome classified
//! (limits hit, the hook runner's result, a failure's reason).

use std::fs;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::failure::{Failure, errored, from_sandbox};
use super::request::{BuildRequest, METADATA_SUBDIR, SHIPPED_DIR, Streams};
use super::streams::{add_python_stream, explain_run};
use crate::buildenv;
use crate::files::{hand_over, open_untrusted};
use crate::policy::{self, BuildPaths, HostLayout, inside};
use crate::project;
use crate::report::{BuildReport, HookRun, LimitHit, SandboxInfo, Status};
use crate::sandbox::{self, RunExit, RunOptions};

/// The parts of a build that stay the same across its sandboxed runs.
pub(super) struct SandboxContext<'a> {
    req: &'a BuildRequest,
    work: PathBuf,
    src: PathBuf,
    pub(super) out: PathBuf,
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
    pub(super) fn new(
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
    pub(super) fn run_phase(
        &self,
        report: &mut BuildReport,
        env: &buildenv::BuildEnv,
        phase: &str,
        log_path: &Path,
        append_log: bool,
        metadata_path: Option<&str>,
    ) -> Result<serde_json::Value, Failure> {
        // 1. a fresh control directory per run: nothing the previous run
        // left there is ever read or written through.
        let control = self.new_control_dir()?;
        let paths = self.paths(env, &control);
        // Where the hook runner finds its directories (inside the sandbox's
        // view, or on the host in the degraded mode).
        let places = policy::Places::of(&paths);
        // 2. the hook runner's input, handed to the sandbox's uid.
        self.write_input(&control, &places, phase, metadata_path)?;
        // 3. the plan: the profile compiled for this call, with its streams.
        let argv = vec![
            env.python.display().to_string(),
            places
                .shim
                .join(crate::shim::HOOK_RUNNER)
                .display()
                .to_string(),
            places.control.display().to_string(),
        ];
        let mut compiled = self.compile(&paths, &places, argv)?;
        report.profile.network = Some(crate::report::NetworkInfo::from_plan(
            &compiled.plan.network,
        ));
        let opts = self.run_options(&mut compiled.plan, log_path, append_log);
        // 4. the run, and what it tried.
        let outcome = sandbox::run(&compiled.plan, &opts);
        crate::workdir::halt_if_abandoned();
        let outcome = outcome.map_err(from_sandbox)?;
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
        // 5. its result, or why there is none.
        let runner_outcome = result
            .as_ref()
            .and_then(|r| r.get("outcome"))
            .and_then(|o| o.as_str())
            .unwrap_or("")
            .to_string();
        let limits = &compiled.plan.limits;
        let limit_hit = limit_hit(&outcome, &runner_outcome, limits);
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

    fn new_control_dir(&self) -> Result<PathBuf, Failure> {
        let n = self.runs.get() + 1;
        self.runs.set(n);
        let control = self.work.join(format!("control-{n}"));
        fs::create_dir(&control)
            .context("cannot create a control directory")
            .map_err(errored)?;
        Ok(control)
    }

    /// What this call's sandbox sees: the sources and output read-write,
    /// the interpreter and the build environment read-only.
    fn paths(&self, env: &buildenv::BuildEnv, control: &Path) -> BuildPaths {
        let mut read_only = self.interp_paths.clone();
        read_only.push(env.path.clone());
        BuildPaths {
            src: Some(self.src.clone()),
            out: Some(self.out.clone()),
            control: Some(control.to_path_buf()),
            shim: Some(self.shim.clone()),
            read_only_same_path: read_only,
            bin_dir: Some(env.path.clone()),
            supervise: matches!(self.req.streams, Streams::All | Streams::Kernel),
            trace_files: self.req.trace_files,
            without_namespaces: self.private.clone(),
            executables: vec![self.interp_exe.clone()],
        }
    }

    /// Write the hook runner's `input.json` into `control` and hand the
    /// directory to the sandbox's uid.
    fn write_input(
        &self,
        control: &Path,
        places: &policy::Places,
        phase: &str,
        metadata_path: Option<&str>,
    ) -> Result<(), Failure> {
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
        hand_over(control, None).map_err(errored)
    }

    /// The profile compiled for one call of `argv`, with the Python stream
    /// (or, without it, the audit hook only where the profile restricts
    /// ctypes) and the network allowlist resolved.
    fn compile(
        &self,
        paths: &BuildPaths,
        places: &policy::Places,
        argv: Vec<String>,
    ) -> Result<policy::Compiled, Failure> {
        let mut compiled = policy::compile(&self.req.profile, &self.host, paths, argv, &host_env());
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
        Ok(compiled)
    }

    /// How the sandbox runs: the log, and with `--ask` the person who decides.
    fn run_options(
        &self,
        plan: &mut sandbox::SandboxPlan,
        log_path: &Path,
        append_log: bool,
    ) -> RunOptions {
        // --ask: a person at sdist-box's own terminal decides what the
        // rules would refuse (asked afresh for each hook call's sandbox);
        // an allowed connect is made by the supervisor, so Landlock leaves
        // TCP connects to it.
        let ask = self.req.ask.map(|timeout| {
            plan.landlock.tcp_connect_by_supervisor = true;
            std::sync::Arc::new(crate::events::ask::TerminalAsk::start("/dev/tty", timeout))
        });
        RunOptions {
            log_path: Some(log_path.to_path_buf()),
            echo: self.req.echo,
            append_log,
            init_exe: self.req.init_exe.clone(),
            // The log keeps at most the output-size limit, and never more
            // than its own default.
            max_log_bytes: plan
                .limits
                .output_bytes
                .unwrap_or(MAX_LOG_BYTES)
                .min(MAX_LOG_BYTES),
            supervisor: crate::events::kernel::KernelSupervisor::handle(ask.map(|a| {
                crate::events::ask::HookHandle(
                    a as std::sync::Arc<dyn crate::events::ask::DecisionHook>,
                )
            })),
        }
    }
}

/// The limit a run hit, from how it ended and what the hook runner said.
fn limit_hit(
    outcome: &sandbox::RunOutcome,
    runner_outcome: &str,
    limits: &sandbox::Limits,
) -> Option<LimitHit> {
    let near_process_limit = limits
        .processes
        .is_some_and(|max| outcome.peak_processes + 4 >= max);
    // resources: a limit of the whole sandbox (cgroup, sized file systems).
    let sandbox_hit = crate::report::resources::sandbox_hit(
        outcome,
        runner_outcome != "ok" || !outcome.exit.success(),
    );
    match (&outcome.exit, runner_outcome) {
        (RunExit::TimedOut { .. }, _) => Some(LimitHit::WallClock),
        (_, "memory-limit") => Some(LimitHit::Memory),
        (_, "process-limit") => Some(LimitHit::Processes),
        (_, "file-size-limit") => Some(LimitHit::FileSize),
        _ if sandbox_hit.is_some() => sandbox_hit,
        (RunExit::Signaled { signal }, _) if *signal == libc::SIGXCPU => Some(LimitHit::Cpu),
        _ if near_process_limit => Some(LimitHit::Processes),
        _ => None,
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

fn read_bounded_json(path: &Path) -> Option<serde_json::Value> {
    const MAX: u64 = 4 << 20;
    let (file, _) = open_untrusted(path).ok()?;
    let mut text = String::new();
    file.take(MAX).read_to_string(&mut text).ok()?;
    serde_json::from_str(&text).ok()
}

/// Most build output kept in the log.
const MAX_LOG_BYTES: u64 = 64 << 20;
