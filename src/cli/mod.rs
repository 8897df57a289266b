//! The command line: the clap definitions, one file per command (`build`,
//! `build_all`, `index`, `inspect`, `run`, `doctor`, `profiles`), where a
//! report goes (`output`) and the one place where outcomes become exit
//! codes (`exit`). Everything it does is a call into the library; nothing
//! outside this folder and `main.rs` imports it.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod build;
mod build_all;
mod doctor;
mod exit;
mod fetch_progress;
mod index;
mod inspect;
mod output;
mod profiles;
mod run;
mod signals;

use exit::exit_code_for;

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
    Build(Box<build::BuildArgs>),
    /// Build many sdists (a directory or a hash-pinned list), each in its own
    /// sandbox, several at once; resumable and shardable across machines.
    #[command(name = "build-all", after_help = build_all::AFTER_HELP)]
    BuildAll(Box<build_all::BuildAllArgs>),
    /// Write a PEP 503 / PEP 691 simple index of the wheels in a directory
    /// (for `pip install --index-url file://DIR/simple`).
    #[command(after_help = index::AFTER_HELP)]
    Index(index::IndexArgs),
    /// Verify and safely extract an sdist, and show its static metadata. Runs nothing.
    Inspect(inspect::InspectArgs),
    /// Run any command inside the sandbox, with the same streams and report as a build.
    ///
    /// For `python setup.py …` by hand, a test suite, or a backend author's
    /// check: the command gets an empty HOME, a private /tmp and no source
    /// tree unless --workdir names one. What it tried is reported like a
    /// build's findings; --ask puts each network connect and program start
    /// to you on your terminal.
    ///
    /// Example: sdist-box run --ask --workdir . -- python3 setup.py bdist_wheel
    Run(run::RunArgs),
    /// Show, layer by layer, what this host can enforce.
    Doctor(doctor::DoctorArgs),
    /// List the built-in profiles.
    Profiles,
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
            // Errors name files and entries: the sdist's own names among them.
            eprintln!(
                "sdist-box: error: {}",
                crate::text::shown(&format!("{e:#}"))
            );
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
    // Diagnostics carry package text (requirements, paths): every line goes
    // through the escaping writer, so they have no colours of their own.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| crate::text::Escaping(std::io::stderr()))
        .with_ansi(false)
        .with_target(false)
        .without_time()
        .try_init();
}

fn dispatch(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Build(args) => build::build_command(&args, cli.verbose),
        Command::BuildAll(args) => build_all::build_all_command(&args),
        Command::Index(args) => index::index_command(&args),
        Command::Inspect(args) => inspect::inspect_command(&args),
        Command::Run(args) => run::run_command(&args, cli.verbose),
        Command::Doctor(args) => doctor::doctor_command(&args),
        Command::Profiles => profiles::profiles_command(),
    }
}
