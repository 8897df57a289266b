//! The build of one sdist as its stages in order: verify → extract →
//! metadata → pre-build → buildenv → the hooks (each call one sandboxed
//! run, `hook_call`) → copy-out → wheel-check; each stage says in the
//! report and the stage events what it did.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;

use super::copy_out::{MAX_WHEEL_BYTES, copy_wheel_out};
use super::failure::{Failure, env_failure, errored, refused};
use super::hook_call::SandboxContext;
use super::request::{BuildRequest, METADATA_SUBDIR, SHIPPED_DIR};
use super::wheel_check;
use crate::archive;
use crate::buildenv;
use crate::events::sources::SourceTrees;
use crate::policy::inside;
use crate::report::{
    BuildEnvInfo, BuildReport, Input, InterpreterInfo, Outcome, ProfileInfo, Status, Timings, Tool,
};
use crate::stages::{PackageInfo, Stages};
use crate::{names, outputs, project};

pub(super) fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
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
    let mut work: Option<crate::workdir::WorkDir> = None;
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
            drop(work);
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

/// The build of one sdist, stage by stage; each stage is a method of
/// [`Steps`] and says in `report` and the stage events what it did.
pub(super) fn build_inner(
    req: &BuildRequest,
    report: &mut BuildReport,
    work_slot: &mut Option<crate::workdir::WorkDir>,
    st: &mut Stages,
) -> Result<(), Failure> {
    let mut b = Steps { req, report, st };
    // 1. verify: the hash first, before any byte of the archive is parsed.
    b.verify()?;
    // 2. extract into a fresh work directory, and the sdist as shipped once more.
    let tree = b.extract(work_slot)?;
    // 3. static metadata: a valid name and version, one for all sources.
    let (mut project, mut release) = b.metadata(&tree.src)?;
    // 3b. the user's pre-build hook: may veto, may patch the sources.
    let mut sources = SourceTrees {
        shipped: Some(tree.shipped.clone()),
        patched: Default::default(),
        live: Some(tree.src.clone()),
    };
    if let Some(command) = &req.pre_build
        && let Some(patched) = b.pre_build(command, &tree.src)?
    {
        sources.patched = std::sync::Arc::new(patched.files);
        (project, release) = (patched.project, patched.release);
    }
    // 4. the build environment (trusted: wheels only, outside the sandbox).
    let (interp, env) = b.buildenv(&project)?;
    let log_path = b.output_dir()?;
    let ctx = SandboxContext::new(req, &tree.work, &tree.src, &project, &interp, sources)?;
    let hooks = HookCalls {
        ctx: &ctx,
        log_path: &log_path,
    };
    // 5. get_requires_for_build_wheel, in the sandbox.
    let dynamic = b.get_requires(&hooks, &env)?;
    // 6. second round: what the backend asked for at run time.
    let static_reqs = &project.build_system.requires;
    let env = b.second_buildenv(&interp, static_reqs, &dynamic, env)?;
    b.report.build_env = Some(env_info(&env, &dynamic));
    // 7. prepare_metadata_for_build_wheel, in a sandbox of its own (as
    // pyproject-hooks runs each hook call in a fresh process).
    let metadata_path = match req.prepare_metadata {
        true => b.prepare_metadata(&hooks, &env)?,
        false => None,
    };
    // 8. build_wheel, in the sandbox.
    let wheel_name = b.build_wheel(&hooks, &env, metadata_path.as_deref())?;
    // 9. copy the wheel out and check it against the sdist as shipped.
    b.copy_out_and_check(&ctx, &wheel_name, &release, &tree.shipped)
}

/// A build's request, its report so far and its stage events.
pub(super) struct Steps<'a> {
    req: &'a BuildRequest,
    report: &'a mut BuildReport,
    st: &'a mut Stages,
}

/// The trees of a build's work directory.
pub(super) struct Trees {
    work: PathBuf,
    /// The extracted sources the sandbox builds.
    src: PathBuf,
    /// The sdist as shipped, which no sandbox ever sees.
    shipped: PathBuf,
    /// resources: the size-limited file system under `work` (if any),
    /// unmounted when the build ends, before the work directory goes.
    _build_tree: Option<crate::sandbox::tree::BuildTree>,
}

/// What a pre-build hook that changed the sources leaves to build.
pub(super) struct Patched {
    files: std::collections::BTreeMap<String, Option<Vec<u8>>>,
    project: project::ProjectMeta,
    release: names::Release,
}

/// Where a build's hook calls run and log.
pub(super) struct HookCalls<'a> {
    ctx: &'a SandboxContext<'a>,
    log_path: &'a Path,
}

impl Steps<'_> {
    fn verify(&mut self) -> Result<(), Failure> {
        let (req, report) = (self.req, &mut *self.report);
        let t = Instant::now();
        self.st.start("verify", None);
        // Opened as every input is (no link followed, never blocking, a
        // regular file only): a FIFO named like an sdist is refused here.
        let meta = match archive::open_input(&req.sdist) {
            Ok(file) => file.metadata(),
            Err(archive::ArchiveError::Io(e)) => Err(e),
            Err(e) => return Err(refused(e)),
        }
        .with_context(|| format!("cannot read the sdist `{}`", req.sdist.display()))
        .map_err(refused)?;
        report.input.size_bytes = meta.len();
        let sha = match &req.sha256 {
            Some(expected) => {
                let sha = archive::verify_sha256(&req.sdist, expected).map_err(refused)?;
                report.input.sha256_pinned = true;
                sha
            }
            None => archive::sha256_file(&req.sdist).map_err(refused)?,
        };
        self.st.package.sha256 = Some(sha.clone());
        self.st.package.sha256_pinned = report.input.sha256_pinned;
        report.input.sha256 = Some(sha);
        report.timings.verify_ms = ms(t);
        self.st.end("ok", None, None);
        Ok(())
    }

    fn extract(
        &mut self,
        work_slot: &mut Option<crate::workdir::WorkDir>,
    ) -> Result<Trees, Failure> {
        let req = self.req;
        let t = Instant::now();
        self.st.start("extract", None);
        let work = crate::workdir::WorkDir::create(req.work_parent.as_deref(), "")
            .context("cannot create a work directory")
            .map_err(errored)?;
        let work_path = work.path().to_path_buf();
        *work_slot = Some(work);
        // resources: the build tree on its own size-limited file system
        // (sandbox::tree), mounted until this build ends.
        let build_tree = crate::sandbox::tree::BuildTree::for_build(
            crate::policy::limits_of(&req.profile).build_tree_bytes,
            crate::sandbox::user_namespaces().is_ok(),
            &work_path,
        )
        .map_err(|e| errored(anyhow::Error::new(e)))?;
        let extracted = archive::extract(&req.sdist, &work_path.join("sdist"), &req.archive_limits)
            .map_err(refused)?;
        let src = extracted.root.clone();
        self.st.package.source_dir = Some(src.clone());
        let detail = serde_json::json!({
            "entries": extracted.entries,
            "total_bytes": extracted.total_bytes,
        });
        self.report.input.archive = Some(extracted);
        // The sdist as shipped, a second time: origin lines and the wheel
        // check read this copy, which no sandbox ever sees.
        let shipped = extract_shipped(req, self.report, &work_path)?;
        self.report.timings.extract_ms = ms(t);
        self.st.end("ok", None, Some(detail));
        Ok(Trees {
            work: work_path,
            src,
            shipped,
            _build_tree: build_tree,
        })
    }

    fn metadata(&mut self, src: &Path) -> Result<(project::ProjectMeta, names::Release), Failure> {
        let t = Instant::now();
        self.st.start("metadata", None);
        let mut project = project::read_project(src).map_err(refused)?;
        project::check_buildable(&project).map_err(refused)?;
        // Before the name or version is used anywhere (events, report, the
        // pre-build hook, the wheel's check): valid, and one for all sources.
        let release =
            project::identify(&mut project, &self.report.input.filename).map_err(refused)?;
        describe_project(self.st, &project);
        self.report.project = Some(project.clone());
        self.report.timings.metadata_ms = ms(t);
        self.st.end("ok", None, None);
        Ok((project, release))
    }

    /// Run the pre-build hook; what it changed, when it changed anything.
    fn pre_build(&mut self, command: &str, src: &Path) -> Result<Option<Patched>, Failure> {
        let t = Instant::now();
        self.st.start("pre-build", None);
        let pre = run_pre_build(command, self.req.pre_build_timeout, src, self.st)?;
        self.report.pre_build = Some(pre.clone());
        self.report.timings.pre_build_ms = ms(t);
        if pre.verdict == crate::prebuild::Verdict::Vetoed {
            return Err(refused(anyhow::anyhow!(pre.veto_reason())));
        }
        let mut patched = None;
        if pre.modified {
            // What the hook left is what gets built, and what origin
            // lines in those files quote: read before any package code.
            let files = patched_files(src, &pre.changes);
            // The patched tree is what gets built: read its metadata anew.
            let mut project = project::read_project(src)
                .context("after the pre-build hook changed the sources")
                .map_err(refused)?;
            let release = project::identify(&mut project, &self.report.input.filename)
                .context("after the pre-build hook changed the sources")
                .map_err(refused)?;
            describe_project(self.st, &project);
            self.report.project = Some(project.clone());
            patched = Some(Patched {
                files,
                project,
                release,
            });
        }
        let detail = serde_json::json!({
            "modified": pre.modified,
            "changes": pre.changes,
        });
        self.st.end("ok", None, Some(detail));
        Ok(patched)
    }

    /// The interpreter, and the build environment of the static requirements.
    fn buildenv(
        &mut self,
        project: &project::ProjectMeta,
    ) -> Result<(buildenv::Interpreter, buildenv::BuildEnv), Failure> {
        let req = self.req;
        let t = Instant::now();
        self.st.start("buildenv", None);
        let interp = buildenv::resolve_interpreter_cached(req.python.as_deref(), &req.cache_dir)
            .map_err(errored)?;
        self.report.interpreter = Some(InterpreterInfo {
            executable: interp.executable.clone(),
            version: interp.version.clone(),
        });
        let static_reqs = &project.build_system.requires;
        let env = buildenv::ensure(&interp, static_reqs, &req.index, &req.cache_dir)
            .map_err(|e| env_failure(e, Status::Refused))?;
        self.report.build_env = Some(env_info(&env, &[]));
        self.report.timings.buildenv_ms = ms(t);
        self.st.end("ok", None, Some(buildenv_detail(&env, 1)));
        Ok((interp, env))
    }

    /// Create the output directory; the build log's path in it.
    fn output_dir(&mut self) -> Result<PathBuf, Failure> {
        let req = self.req;
        fs::create_dir_all(&req.out_dir)
            .with_context(|| {
                format!(
                    "cannot create the output directory `{}`",
                    req.out_dir.display()
                )
            })
            .map_err(errored)?;
        let stem = sdist_stem(&self.report.input.filename);
        let log_path = req.out_dir.join(format!("{stem}.build.log"));
        self.report.log = Some(log_path.clone());
        Ok(log_path)
    }

    /// `get_requires_for_build_wheel`: the requirements the backend names.
    fn get_requires(
        &mut self,
        hooks: &HookCalls,
        env: &buildenv::BuildEnv,
    ) -> Result<Vec<String>, Failure> {
        let t = Instant::now();
        self.st.start("hook", Some("get_requires_for_build_wheel"));
        let first =
            hooks
                .ctx
                .run_phase(self.report, env, "requires", hooks.log_path, false, None)?;
        self.report.timings.requires_ms = ms(t);
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
        self.st
            .end("ok", None, Some(serde_json::json!({ "return": dynamic })));
        Ok(dynamic)
    }

    /// The build environment again when the backend asked for more than
    /// the static requirements; else `env` as it is.
    fn second_buildenv(
        &mut self,
        interp: &buildenv::Interpreter,
        static_reqs: &[String],
        dynamic: &[String],
        env: buildenv::BuildEnv,
    ) -> Result<buildenv::BuildEnv, Failure> {
        let new: Vec<String> = dynamic
            .iter()
            .filter(|d| !static_reqs.iter().any(|s| same_requirement(s, d)))
            .cloned()
            .collect();
        if new.is_empty() {
            return Ok(env);
        }
        let req = self.req;
        let t = Instant::now();
        self.st.start("buildenv", None);
        let mut all = static_reqs.to_vec();
        all.extend(new.iter().cloned());
        tracing::info!(
            "the backend asked for {:?}: second build-environment round",
            new
        );
        let env = buildenv::ensure(interp, &all, &req.index, &req.cache_dir)
            .map_err(|e| env_failure(e, Status::BuildFailed))?;
        self.report.timings.buildenv_ms += ms(t);
        self.st.end("ok", None, Some(buildenv_detail(&env, 2)));
        Ok(env)
    }

    /// `prepare_metadata_for_build_wheel`: the `.dist-info` it left, as
    /// `build_wheel` will see it (`None`: the backend has no such hook).
    fn prepare_metadata(
        &mut self,
        hooks: &HookCalls,
        env: &buildenv::BuildEnv,
    ) -> Result<Option<String>, Failure> {
        let t = Instant::now();
        self.st
            .start("hook", Some("prepare_metadata_for_build_wheel"));
        let result =
            hooks
                .ctx
                .run_phase(self.report, env, "metadata", hooks.log_path, true, None)?;
        let returned = hook_return(&result, "prepare_metadata_for_build_wheel")
            .and_then(|v| v.as_str())
            .map(str::to_string);
        let mut metadata_path = None;
        if let Some(name) = &returned {
            metadata_path = Some(checked_metadata_dir(&hooks.ctx.out, name)?);
        }
        self.report.timings.prepare_metadata_ms = ms(t);
        let status = if returned.is_some() { "ok" } else { "missing" };
        self.st.end(
            status,
            None,
            Some(serde_json::json!({ "return": returned })),
        );
        Ok(metadata_path)
    }

    /// `build_wheel`: the wheel's file name it returned.
    fn build_wheel(
        &mut self,
        hooks: &HookCalls,
        env: &buildenv::BuildEnv,
        metadata_path: Option<&str>,
    ) -> Result<String, Failure> {
        let t = Instant::now();
        self.st.start("hook", Some("build_wheel"));
        let second = hooks.ctx.run_phase(
            self.report,
            env,
            "wheel",
            hooks.log_path,
            true,
            metadata_path,
        )?;
        self.report.timings.wheel_ms = ms(t);
        let wheel_name = hook_return(&second, "build_wheel")
            .and_then(|v| v.as_str())
            .map(str::to_string)
            .ok_or_else(|| {
                Failure::new(
                    Status::BuildFailed,
                    anyhow::anyhow!("build_wheel returned no wheel name"),
                )
            })?;
        self.st.end(
            "ok",
            None,
            Some(serde_json::json!({ "return": wheel_name })),
        );
        Ok(wheel_name)
    }

    /// Copy the wheel out of the sandbox's output directory and check what
    /// it carries against the sdist as shipped.
    fn copy_out_and_check(
        &mut self,
        ctx: &SandboxContext,
        wheel_name: &str,
        release: &names::Release,
        shipped: &Path,
    ) -> Result<(), Failure> {
        let req = self.req;
        self.st.start("wheel-check", None);
        let max_wheel = req
            .profile
            .limits
            .output_size
            .unwrap_or(MAX_WHEEL_BYTES)
            .min(MAX_WHEEL_BYTES);
        let producer = outputs::Producer::for_input(
            &self.report.input.filename,
            self.report.input.sha256.clone(),
        );
        let (wheel, contents) = copy_wheel_out(
            &ctx.out,
            wheel_name,
            &req.out_dir,
            max_wheel,
            release,
            &producer,
        )?;
        let detail = serde_json::json!({ "wheel": wheel });
        self.report.wheel = Some(wheel);
        wheel_check::check_built_wheel(self.report, &contents, shipped);
        let detail = crate::wheelcheck::stage_detail(detail, self.report.wheel_check.as_ref());
        self.st.end("ok", None, Some(detail));
        Ok(())
    }
}

/// Extract the sdist once more, with the same limits, and check that it
/// still has the hash the build started from; the copy's top-level
/// directory. Nothing of the package has run yet, and this copy is never
/// bound into a sandbox nor handed to its uid: it is the sdist as shipped
/// for as long as the build lasts.
pub(super) fn extract_shipped(
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
pub(super) const MAX_PATCHED_FILE: u64 = 4 << 20;

pub(super) const MAX_PATCHED_TOTAL: usize = 64 << 20;

/// The files the pre-build hook added or changed, read (beneath `src`, no
/// links) before any package code runs: origin lines in them quote these
/// bytes. A changed path that is no longer a regular file, or is over the
/// bounds, maps to `None` (no text).
pub(super) fn patched_files(
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
pub(super) fn hook_return<'a>(
    result: &'a serde_json::Value,
    hook: &str,
) -> Option<&'a serde_json::Value> {
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
pub(super) fn checked_metadata_dir(out: &Path, name: &str) -> Result<String, Failure> {
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

pub(super) fn describe_project(st: &mut Stages, project: &project::ProjectMeta) {
    st.package.name = project.name.clone();
    st.package.version = project.version.clone();
    st.package.build_backend = Some(project.build_system.build_backend.clone());
    st.package.build_requires = project.build_system.requires.clone();
    st.package.backend_path = project.build_system.backend_path.clone();
}

pub(super) fn buildenv_detail(env: &buildenv::BuildEnv, round: u32) -> serde_json::Value {
    serde_json::json!({
        "round": round,
        "key": env.key,
        "reused": env.reused,
        "repaired": env.repaired,
        "requirements": env.requirements,
    })
}

/// Run the pre-build hook on the extracted tree and record what it changed.
pub(super) fn run_pre_build(
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

pub(super) fn env_info(env: &buildenv::BuildEnv, dynamic: &[String]) -> BuildEnvInfo {
    BuildEnvInfo {
        key: env.key.clone(),
        path: env.path.clone(),
        requirements: env.requirements.clone(),
        reused: env.reused,
        repaired: env.repaired.clone(),
        dynamic_requirements: dynamic.to_vec(),
        installed: env.installed.clone(),
    }
}

/// Requirement strings compared loosely: case and spaces do not matter.
pub(super) fn same_requirement(a: &str, b: &str) -> bool {
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
