//! `sdist-box build-all`: many sdists, each in its own sandbox.

use std::path::PathBuf;

use clap::Args;

use super::build::BuildFlags;
use super::exit;
use crate::batch::{self, RunInput, Settings, Shard};
use crate::build::not_utf8;

pub const AFTER_HELP: &str = "\
INPUT is a directory (every .tar.gz, .tgz, .tar.bz2, .tar.xz, .tar and .zip in it,
not recursive) or a requirements-style file of local sdist paths, one per line,
in pip's syntax: `# comments`, `\\` line continuations, ${VAR} expansion, and
hash pins (`--hash=sha256:HEX`, repeatable; any one must match). A relative
path is relative to the file; `file://` URLs work too. An entry whose hash
does not match is refused and never extracted or built.

In DIR, per sdist: the wheel, `<sdist>.sdist-box.json` (its report) and
`<sdist>.build.log`; for the run: `build-all.json` (schema_version 1; rewritten
every few seconds while the run goes on, with `complete: false` until it ends). A rerun skips
every sdist whose report in DIR says `built` for the same input sha256 and
profile, and whose wheel is there with the hash that report names; the others (failed,
refused, new, changed) are built again. --rebuild builds everything. One run
at a time per DIR: a second one fails at once (DIR/.build-all.lock).

--shard I/N builds only the sdists whose shard is I (0 ≤ I < N). The shard is
sha256 of the project name taken from the file name (`name-version.tar.gz`,
normalized as in PEP 503), so N machines with I = 0..N-1 cover the input
exactly once, every version of a project lands on the same machine, and the
assignment never depends on the archive's content. --dry-run prints the plan
(one line per sdist of this shard: action, shard, project key, path) and
builds nothing. Names and paths on the terminal are escaped (control
characters as \\u{1b}, bytes that are not UTF-8 as \\xff); an sdist whose path
is not UTF-8 is refused (action `not-utf8`): rename it.

Exit code: the worst outcome over the sdists of this run, in this order
(worst first):
  4  the sandbox could not be set up as the profile requires (see `sdist-box doctor`)
  6  an error (I/O, build requirements not installable as wheels)
  5  an input was refused (hash mismatch, hostile or corrupt archive, bad metadata)
  3  a package's build failed (its log is in DIR)
  1  every wheel was built, but a report has findings that match --fail-on
  0  every wheel was built (or was already), nothing to report
  2  usage error (also: INPUT unreadable or not in the syntax above)
  130, 143  interrupted by SIGINT or SIGTERM: the builds in progress were finished
     and recorded, no new ones started (a second signal stops at once); rerun
     to build the rest";

/// Flags for `build-all`: the build flags of `build` that apply to a set of
/// sdists, plus how to run the set.
#[derive(Debug, Clone, Args)]
pub struct BuildAllArgs {
    /// A directory of sdists, or a requirements-style file of sdist paths (see below).
    #[arg(value_name = "INPUT")]
    pub input: PathBuf,
    /// Directory for the wheels, their reports and logs, and `build-all.json`.
    #[arg(short = 'o', long = "out-dir", value_name = "DIR")]
    pub out_dir: PathBuf,
    /// How many sandboxes run at once (default: the number of cores).
    #[arg(short = 'j', long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=256))]
    pub jobs: Option<u32>,
    /// Build only shard I of N (0-based), e.g. `--shard 0/4`.
    #[arg(long, value_name = "I/N", value_parser = Shard::parse)]
    pub shard: Option<Shard>,
    /// Print the plan (action, shard, project key, path per sdist) and build nothing.
    #[arg(long, visible_alias = "list")]
    pub dry_run: bool,
    /// Build every sdist again, even those already built in DIR.
    #[arg(long)]
    pub rebuild: bool,
    /// How each sdist is built: the flags of `build` that apply to a set.
    #[command(flatten)]
    pub flags: BuildFlags,
}

/// `sdist-box build-all`.
pub fn build_all_command(args: &BuildAllArgs) -> anyhow::Result<u8> {
    let unusable =
        not_utf8("INPUT", &args.input).or_else(|| not_utf8("the output directory", &args.out_dir));
    if let Some(why) = unusable {
        eprintln!("sdist-box: error: {why}");
        return Ok(exit::USAGE);
    }
    let entries = match batch::read_input(&args.input) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("sdist-box: error: {}", crate::text::shown(&e.to_string()));
            return Ok(exit::USAGE);
        }
    };
    let input_count = entries.len();
    let shard = args.shard.unwrap_or(Shard { index: 0, count: 1 });
    let planned: Vec<batch::Planned> = batch::plan(entries, shard.count)
        .into_iter()
        .filter(|p| p.shard == shard.index)
        .collect();
    let settings = settings(args)?;
    if args.dry_run {
        batch::dry_run(&planned, &settings, input_count, shard)?;
        return Ok(exit::OK);
    }
    let run = RunInput {
        input: &args.input,
        shard: args.shard,
        input_count,
        jobs: args.jobs,
    };
    let end = batch::run_all(settings, planned, &run)?;
    end.print();
    if let Some(signal) = end.interrupted {
        return Ok((128 + signal as i32) as u8);
    }
    Ok(exit::for_entries(&end.finished()))
}

/// What every build of the run shares, from the flags.
fn settings(args: &BuildAllArgs) -> anyhow::Result<Settings> {
    let out_dir = std::path::absolute(&args.out_dir).unwrap_or_else(|_| args.out_dir.clone());
    let prepared = args.flags.prepare(PathBuf::new(), out_dir.clone())?;
    Ok(Settings {
        out_dir,
        fail_on: prepared.fail_on,
        rebuild: args.rebuild,
        reproducible: prepared.epoch,
        template: prepared.request,
        exit_code: exit::for_entries,
    })
}
