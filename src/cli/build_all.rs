//! `sdist-box build-all`: many sdists, each in its own sandbox.

use std::path::PathBuf;

use clap::Args;

use std::sync::Arc;

use super::build::BuildFlags;
use super::exit;
use super::fetch_progress::{self, FetchProgress};
use crate::batch::{self, RunInput, Settings, Shard};
use crate::build::not_utf8;
use crate::fetch::config::IndexSettings;
use crate::fetch::fetcher::FetchOptions;
use crate::fetch::lock::Policy;
use crate::lock_input::{self, LockInputError, LockOptions, LockRun};

pub const AFTER_HELP: &str = "\
INPUT is a directory (every .tar.gz, .tgz, .tar.bz2, .tar.xz, .tar and .zip in it,
not recursive) or a requirements-style file of local sdist paths, one per line,
in pip's syntax: `# comments`, `\\` line continuations, ${VAR} expansion, and
hash pins (`--hash=sha256:HEX`, repeatable; any one must match). A relative
path is relative to the file; `file://` URLs work too. An entry whose hash
does not match is refused and never extracted or built.

In DIR, per sdist: the wheel, `<sdist>.sdist-box.json` (its report) and
`<sdist>.build.log`; for the run: `build-all.json` (schema_version 2; rewritten
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

LOCK FILES. INPUT may instead be a lock: `pylock.toml` / `pylock.NAME.toml`
(PEP 751), or a requirements file whose first requirement names a project
(`name==version --hash=sha256:HEX`, as `pip-compile --generate-hashes` and
`uv pip compile --generate-hashes` write it: markers, continuations, `-r`,
index options). Each entry's sdist is found through the simple API (PEP 691
JSON, else PEP 503 HTML) of --index-url, else the lock's index options, else
pip's configuration (pip.conf files, PIP_* variables; credentials from the
URL or ~/.netrc), plus --extra-index-url and --sdist-find-links; it is
downloaded, its sha256 checked against the pin before anything else, and
cached by hash (--sdist-cache, default the --cache-dir); nothing of it runs
outside the sandbox. A missing sdist, a hash mismatch or a yanked file
refuses that entry alone (exit 5), with the reason. An entry without a
sha256 pin is refused unless --allow-unpinned (then `pinned: false`). An
entry whose marker is false for the target interpreter (--python) is not
built (`lock.excluded` in the summary). Each entry's `source` in
build-all.json says where its sdist came from (URL, sha256, fetched or
cached). --with-deps reads each built wheel's Requires-Dist (markers for the
target) and fails the run (exit 5) listing every dependency the lock does
not pin, or pins at an excluded version; it never guesses a version. The
build flags --find-links and --no-index are about build-requirement wheels,
not the sdists. --dry-run prints `fetch` or `refuse` per entry and fetches
nothing. See docs/fetch.md.

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
    /// A directory of sdists, a requirements-style file of sdist paths, or a lock file (see below).
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
    /// Where the sdists of a lock file come from.
    #[command(flatten)]
    pub fetch: FetchArgs,
}

/// Flags for an INPUT that is a lock file (see `LOCK FILES` below). The
/// build flags `--find-links` and `--no-index` are about build-requirement
/// wheels; these are about the sdists.
#[derive(Debug, Clone, Args)]
pub struct FetchArgs {
    /// The package index (simple API) to find the lock's sdists on, over pip's configuration.
    #[arg(long, value_name = "URL")]
    pub index_url: Option<String>,
    /// Another index to search for sdists (repeatable).
    #[arg(long, value_name = "URL")]
    pub extra_index_url: Vec<String>,
    /// A directory or page of sdists to search first (pip's find-links, for the sdists).
    #[arg(long, value_name = "DIR|URL")]
    pub sdist_find_links: Vec<String>,
    /// Fetch and build lock entries that have no sha256 pin (each recorded `pinned: false`).
    #[arg(long)]
    pub allow_unpinned: bool,
    /// Use a yanked sdist when it is the pinned one (refused otherwise).
    #[arg(long)]
    pub allow_yanked: bool,
    /// After each wheel, check that what its Requires-Dist needs (for the target
    /// interpreter) is in the lock; what is not is listed and fails the run.
    #[arg(long)]
    pub with_deps: bool,
    /// Where fetched sdists are cached by hash (default: the --cache-dir).
    #[arg(long, value_name = "DIR")]
    pub sdist_cache: Option<PathBuf>,
    /// No sdist download may be larger than this many bytes.
    #[arg(long, value_name = "BYTES", default_value_t = crate::fetch::fetcher::MAX_SDIST_BYTES)]
    pub max_download: u64,
}

/// `sdist-box build-all`.
pub fn build_all_command(args: &BuildAllArgs) -> anyhow::Result<u8> {
    let unusable =
        not_utf8("INPUT", &args.input).or_else(|| not_utf8("the output directory", &args.out_dir));
    if let Some(why) = unusable {
        eprintln!("sdist-box: error: {why}");
        return Ok(exit::USAGE);
    }
    let (entries, lock) = match read_input(args) {
        Ok(e) => e,
        Err(code) => return Ok(code),
    };
    let input_count = entries.len();
    let shard = args.shard.unwrap_or(Shard { index: 0, count: 1 });
    let planned: Vec<batch::Planned> = batch::plan(entries, shard.count)
        .into_iter()
        .filter(|p| p.shard == shard.index)
        .collect();
    let mut settings = settings(args)?;
    settings.lock = lock;
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
    let lock = settings.lock.clone();
    let end = batch::run_all(settings, planned, &run)?;
    end.print();
    if let Some(lock) = lock {
        return Ok(lock_epilogue(&end, &lock, &args.out_dir));
    }
    if let Some(signal) = end.interrupted {
        return Ok((128 + signal as i32) as u8);
    }
    Ok(exit::for_entries(&end.finished()))
}

/// INPUT's entries, and the lock run when INPUT is a lock file; `Err`:
/// the exit code after the message is printed.
fn read_input(args: &BuildAllArgs) -> Result<(Vec<batch::Entry>, Option<Arc<LockRun>>), u8> {
    let fail = |e: &dyn std::fmt::Display, code| {
        eprintln!("sdist-box: error: {}", crate::text::shown(&e.to_string()));
        code
    };
    if !lock_input::is_lock(&args.input) {
        let entries = batch::read_input(&args.input).map_err(|e| fail(&e, exit::USAGE))?;
        return Ok((entries, None));
    }
    let options = lock_options(args).map_err(|e| fail(&format!("{e:#}"), exit::USAGE))?;
    // Entries are counted once the lock is read; the progress learns its
    // total then.
    let progress = Arc::new(LateProgress::default());
    let (run, entries) = LockRun::open(&args.input, &options, progress.clone()).map_err(|e| {
        let code = match e {
            LockInputError::Lock(_) | LockInputError::Empty(_) | LockInputError::Select(_) => {
                exit::USAGE
            }
            _ => exit::ERROR,
        };
        fail(&e, code)
    })?;
    let _ = progress.0.set(FetchProgress::new(entries.len()));
    let entries = entries
        .into_iter()
        .map(|e| batch::Entry {
            path: e.path,
            origin: e.origin,
            line: Some(e.line),
            sha256: Vec::new(),
        })
        .collect();
    Ok((entries, Some(Arc::new(run))))
}

/// A [`FetchProgress`] made once the number of entries is known.
#[derive(Default)]
struct LateProgress(std::sync::OnceLock<FetchProgress>);

impl crate::fetch::progress::Progress for LateProgress {
    fn started(&self, entry: &str, filename: &str, total: Option<u64>) {
        if let Some(p) = self.0.get() {
            p.started(entry, filename, total)
        }
    }
    fn bytes(&self, entry: &str, n: u64) {
        if let Some(p) = self.0.get() {
            p.bytes(entry, n)
        }
    }
    fn finished(&self, entry: &str, outcome: Result<&crate::fetch::progress::Provenance, &str>) {
        if let Some(p) = self.0.get() {
            p.finished(entry, outcome)
        }
    }
}

fn lock_options(args: &BuildAllArgs) -> anyhow::Result<LockOptions> {
    let f = &args.fetch;
    let cache_dir = f
        .sdist_cache
        .clone()
        .or_else(|| args.flags.cache_dir.clone())
        .unwrap_or_else(crate::buildenv::default_cache_dir);
    Ok(LockOptions {
        python: args
            .flags
            .python
            .clone()
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("python3")),
        cache_dir: std::path::absolute(&cache_dir)?,
        index: IndexSettings {
            index_url: f.index_url.clone(),
            extra_index_urls: f.extra_index_url.clone(),
            find_links: f.sdist_find_links.clone(),
            no_index: false,
        },
        policy: Policy {
            allow_unpinned: f.allow_unpinned,
        },
        fetch: FetchOptions {
            max_download: f.max_download,
            allow_yanked: f.allow_yanked,
        },
        with_deps: f.with_deps,
    })
}

/// After a lock's run: where each sdist came from, what `--with-deps`
/// found missing; the exit code (a missing dependency is a refused input).
fn lock_epilogue(end: &batch::RunEnd, lock: &LockRun, out_dir: &std::path::Path) -> u8 {
    let finished = end.finished();
    eprint!("{}", fetch_progress::sources_table(&finished));
    let summary = lock.summary();
    for e in &summary.excluded {
        eprintln!(
            "sdist-box: not for this interpreter: {}: {}",
            crate::text::one_line(&e.origin, 200),
            crate::text::one_line(&e.reason, 200)
        );
    }
    let code = match end.interrupted {
        Some(signal) => return (128 + signal as i32) as u8,
        None => exit::for_entries(&finished),
    };
    if summary.unresolved.is_empty() {
        return code;
    }
    eprintln!("sdist-box: --with-deps: the closure is not complete; the lock does not give:");
    for u in &summary.unresolved {
        eprintln!("  {}", crate::text::one_line(u, 300));
    }
    let code = exit::worst_exit([code, exit::INPUT_REFUSED]);
    // The summary was written over the entries alone: its exit code says
    // the run's.
    let path = out_dir.join(batch::SUMMARY_FILE);
    let rewritten = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .map(|mut v| {
            v["exit_code"] = code.into();
            serde_json::to_string_pretty(&v).expect("the summary serializes")
        });
    if let Some(text) = rewritten
        && let Err(e) = crate::files::write_atomic(&path, &text)
    {
        tracing::warn!("{e:#}");
    }
    code
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
        lock: None,
    })
}
