//! The command line: clap definitions and the mapping of outcomes to exit
//! codes. Everything it does is a call into the library.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::policy::{self, BuildPaths, HostLayout, Profile};
use crate::sandbox::{self, RunExit, RunOptions};

/// Exit codes, distinct per outcome (also in `sdist-box --help`).
pub mod exit {
    /// Built (or ran) and nothing to report per `--fail-on`.
    pub const OK: u8 = 0;
    /// Built, but the report has findings that `--fail-on` fails on.
    pub const FINDINGS: u8 = 1;
    /// The command line was wrong.
    pub const USAGE: u8 = 2;
    /// The package's build (or the command) failed.
    pub const BUILD_FAILED: u8 = 3;
    /// The sandbox could not be set up as the profile requires.
    pub const SANDBOX_UNAVAILABLE: u8 = 4;
    /// The input was refused before anything ran (hash, hostile archive,
    /// unreadable metadata).
    pub const INPUT_REFUSED: u8 = 5;
    /// Anything else went wrong (I/O, build requirements not installable).
    pub const ERROR: u8 = 6;
}

const AFTER_HELP: &str = "\
Exit codes:
  0  built, nothing to report
  1  built, but a finding matched --fail-on
  2  usage error
  3  the package's build failed (its output is in the log)
  4  the sandbox could not be set up as the profile requires (see `sdist-box doctor`)
  5  the input was refused before anything ran (hash mismatch, hostile archive, bad metadata)
  6  other error (I/O, build requirements not installable as wheels)

Environment: SDIST_BOX_CACHE (build environments; default ~/.cache/sdist-box),
NO_COLOR, RUST_LOG (diagnostics on stderr, e.g. RUST_LOG=sdist_box=debug).";

#[derive(Debug, Parser)]
#[command(
    name = "sdist-box",
    version,
    about = "Build wheels from untrusted Python sdists inside a kernel sandbox",
    long_about = "Build wheels from untrusted Python source distributions inside a kernel \
sandbox (namespaces, Landlock, seccomp, rlimits), and report what the package's build \
was allowed to do and what was enforced.",
    after_help = AFTER_HELP
)]
pub struct Cli {
    /// More diagnostics on stderr (repeat for more).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build a wheel from an sdist inside the sandbox.
    Build(Box<crate::pipeline::BuildArgs>),
    /// Build many sdists (a directory or a hash-pinned list), each in its own
    /// sandbox, several at once; resumable and shardable across machines.
    #[command(name = "build-all", after_help = crate::batch::AFTER_HELP)]
    BuildAll(crate::batch::BuildAllArgs),
    /// Write a PEP 503 / PEP 691 simple index of the wheels in a directory
    /// (for `pip install --index-url file://DIR/simple`).
    #[command(after_help = crate::index::AFTER_HELP)]
    Index(crate::index::IndexArgs),
    /// Verify and safely extract an sdist, and show its static metadata. Runs nothing.
    Inspect(crate::pipeline::InspectArgs),
    /// Run any command inside the sandbox (no source tree; HOME is empty).
    Run(RunArgs),
    /// Show, layer by layer, what this host can enforce.
    Doctor(crate::doctor::DoctorArgs),
    /// List the built-in profiles.
    Profiles,
}

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
    /// The command and its arguments (the program is looked up on the sandbox's PATH).
    #[arg(last = true, required = true)]
    pub command: Vec<OsString>,
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            });
        }
    };
    init_tracing(cli.verbose);
    match dispatch(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("sdist-box: error: {e:#}");
            ExitCode::from(exit_code_for(&e))
        }
    }
}

fn init_tracing(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "sdist_box=warn",
        1 => "sdist_box=info",
        _ => "sdist_box=debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .try_init();
}

/// Map an error chain to the exit code of its outcome.
pub fn exit_code_for(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if cause.downcast_ref::<sandbox::SandboxError>().is_some() {
            return exit::SANDBOX_UNAVAILABLE;
        }
        if cause
            .downcast_ref::<crate::archive::ArchiveError>()
            .is_some()
            || cause
                .downcast_ref::<crate::project::ProjectError>()
                .is_some()
        {
            return exit::INPUT_REFUSED;
        }
        if cause.downcast_ref::<policy::ProfileError>().is_some() {
            return exit::USAGE;
        }
    }
    exit::ERROR
}

fn dispatch(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Build(args) => crate::pipeline::build_command(&args, cli.verbose),
        Command::BuildAll(args) => crate::batch::build_all_command(&args),
        Command::Index(args) => crate::index::index_command(&args),
        Command::Inspect(args) => crate::pipeline::inspect_command(&args),
        Command::Run(args) => run_command(&args, cli.verbose),
        Command::Doctor(args) => crate::doctor::doctor_command(&args),
        Command::Profiles => {
            for (name, _) in policy::profile::BUILTIN {
                let p = Profile::load(name)?;
                println!("{name:<10} {}", p.description);
            }
            println!(
                "\nUse one with --profile NAME, or your own with --profile FILE.toml \
(start from profiles/site-example.toml; every setting: docs/profiles.md)."
            );
            Ok(exit::OK)
        }
    }
}

fn host_env() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

fn run_command(args: &RunArgs, verbose: u8) -> anyhow::Result<u8> {
    let profile = Profile::load(&args.profile)?;
    let mut argv: Vec<String> = Vec::new();
    for a in &args.command {
        argv.push(
            a.clone()
                .into_string()
                .map_err(|a| anyhow::anyhow!("argument {a:?} is not valid UTF-8"))?,
        );
    }
    let mut read_only = Vec::new();
    for p in &args.read {
        read_only.push(
            std::fs::canonicalize(p).map_err(|e| anyhow::anyhow!("--read {}: {e}", p.display()))?,
        );
    }
    let paths = BuildPaths {
        src: args.workdir.clone(),
        read_only_same_path: read_only,
        supervise: true,
        ..BuildPaths::default()
    };
    let compiled = policy::compile(&profile, &HostLayout::detect(), &paths, argv, &host_env());
    let mut plan = compiled.plan;
    policy::resolve_network(&mut plan.network)?;
    if let Some(prog) = plan.argv.first_mut()
        && !prog.contains('/')
    {
        *prog = format!("/usr/bin/{prog}");
        for dir in ["/usr/local/bin", "/usr/bin", "/bin"] {
            let candidate = format!("{dir}/{}", &plan.argv[0].rsplit('/').next().unwrap_or(""));
            if std::path::Path::new(&candidate).exists() {
                plan.argv[0] = candidate;
                break;
            }
        }
    }
    // `restrict-exec`: the command the user asked for may itself run.
    if plan.landlock.restrict_exec
        && let Some(prog) = plan.argv.first()
        && let Ok(real) = std::fs::canonicalize(prog)
    {
        plan.landlock.exec.push(real);
    }
    let opts = RunOptions {
        echo: true,
        ..RunOptions::default()
    };
    let outcome = sandbox::run(&plan, &opts)?;
    if verbose > 0 {
        eprintln!(
            "sdist-box: set-up {:.1} ms, total {:.1} ms",
            outcome.setup.as_secs_f64() * 1e3,
            outcome.total.as_secs_f64() * 1e3
        );
        if let Some(k) = &outcome.kernel {
            for e in &k.events {
                eprintln!(
                    "sdist-box: kernel: {}",
                    serde_json::to_string(e).unwrap_or_default()
                );
            }
        }
    }
    Ok(match outcome.exit {
        RunExit::Exited { code: 0 } => exit::OK,
        RunExit::Exited { .. } | RunExit::Signaled { .. } | RunExit::TimedOut { .. } => {
            if let RunExit::TimedOut { seconds } = outcome.exit {
                eprintln!(
                    "sdist-box: the command was killed at the wall-clock limit ({seconds} s)"
                );
            }
            exit::BUILD_FAILED
        }
    })
}
