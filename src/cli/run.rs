//! `sdist-box run`: any command in the sandbox, with a build's report.

use std::ffi::OsString;
use std::path::PathBuf;

use std::time::Duration;

use clap::Args;

use super::exit::exit_code;
use super::output::{Format, deliver};
use crate::command::{self, RunRequest};
use crate::policy::Profile;
use crate::report::FailOn;

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

/// `sdist-box run`.
pub fn run_command(args: &RunArgs, verbose: u8) -> anyhow::Result<u8> {
    super::signals::clean_up_on_signals()?;
    let profile = Profile::load(&args.profile)?;
    let mut argv: Vec<String> = Vec::new();
    for a in &args.command {
        argv.push(
            a.clone()
                .into_string()
                .map_err(|a| anyhow::anyhow!("argument {a:?} is not valid UTF-8"))?,
        );
    }
    let fail_on = FailOn::effective(args.fail_on, &profile);
    let req = RunRequest {
        profile,
        argv,
        workdir: args.workdir.clone(),
        read: args.read.clone(),
        ask: args.ask.then(|| Duration::from_secs(args.ask_timeout)),
        python: args.python.clone(),
        cache_dir: args.cache_dir.clone(),
        trace_files: args.trace_files,
        verbose: verbose > 0,
    };
    let report = command::run(&req)?;
    deliver(&report, args.report.as_deref(), args.format)?;
    Ok(exit_code(&report, fail_on))
}
