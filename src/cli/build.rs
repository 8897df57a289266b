//! `sdist-box build`: the flags, and one build's report delivered.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;

use super::exit::{self, exit_code};
use super::output::{Format, deliver};
use crate::archive::Limits as ArchiveLimits;
use crate::build::{BuildRequest, Streams, build, not_utf8};
use crate::buildenv::{self, IndexOptions};
use crate::policy::{self, Profile};
use crate::report::FailOn;
use crate::stages::EventSink;

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

/// `sdist-box build`.
pub fn build_command(args: &BuildArgs, verbose: u8) -> anyhow::Result<u8> {
    super::signals::clean_up_on_signals()?;
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
        Some(epoch) => crate::build::build_twice(&req, epoch),
        None => build(&req),
    };
    // Every outcome left its report beside where the wheel would be,
    // refusals included (that is where the user looks for why): the build
    // wrote it, before it placed the wheel the report vouches for.
    deliver(&report, args.report.as_deref(), args.format)?;
    Ok(exit_code(&report, fail_on))
}
