//! `sdist-box build-all`: many sdists, each in its own sandbox, `--jobs` at
//! once, optionally only this machine's share of them (`--shard I/N`).
//!
//! Invariants:
//! - one package's failure (a refused archive, a failed build, a panic in
//!   our own code) is that entry's outcome and never stops or corrupts the
//!   others;
//! - every output is written atomically, and a package's report is written
//!   after its wheel: a report that says `built` for the input's sha256,
//!   beside a wheel with the hash it names, marks the entry as done, so an
//!   interrupted run resumes where it stopped;
//! - the shard of an sdist is a pure function of its file name (see
//!   [`shard_key`]): every machine, every version of sdist-box, and every
//!   set of flags puts it in the same shard, even when the archive is
//!   corrupt;
//! - a hash pin that does not match makes that entry `refused`: nothing of
//!   it is extracted or built.

use std::collections::{BTreeMap, VecDeque};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::archive;
use crate::build::{self, BuildRequest, sdist_stem};
use crate::files::write_atomic;
use crate::report::FailOn;
use crate::report::{BuildReport, Status};

/// Bumped on any incompatible change of `build-all.json`.
pub const SUMMARY_SCHEMA_VERSION: u32 = 2;
/// The machine-readable summary, in the output directory.
pub const SUMMARY_FILE: &str = "build-all.json";
/// How often `build-all.json` is rewritten while a run goes on.
const SUMMARY_INTERVAL: Duration = Duration::from_secs(2);
/// File names `build-all` takes from a directory.
const SDIST_SUFFIXES: &[&str] = &[".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".tar", ".zip"];

/// `I/N`: this machine's share of the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    pub fn parse(s: &str) -> Result<Shard, String> {
        let bad = || format!("`{s}` is not I/N with 0 ≤ I < N (e.g. 0/4)");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let index: u32 = i.trim().parse().map_err(|_| bad())?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

/// The project key of an sdist, from its file name alone: the part before
/// the last `-` that starts a version (a digit follows it), PEP 503
/// normalized. `pdm_backend-2.4.5.tar.gz` → `pdm-backend`,
/// `python-dateutil-2.8.2.tar.gz` → `python-dateutil`. A name that does not
/// parse keeps its whole stem: still the same on every machine.
///
/// Why the file name and not `PKG-INFO`: reading `PKG-INFO` needs the
/// archive extracted, which fails for a corrupt archive, depends on the
/// archive limits given, and could change with sdist-box's metadata reader;
/// any of that differing between two machines would build an sdist twice
/// or never.
pub fn shard_key(filename: &str) -> String {
    let stem = sdist_stem(filename);
    let cut = stem
        .char_indices()
        .filter(|&(i, c)| c == '-' && stem[i + 1..].starts_with(|d: char| d.is_ascii_digit()))
        .map(|(i, _)| i)
        .next_back();
    let name = match cut {
        Some(i) if i > 0 => &stem[..i],
        _ => &stem[..],
    };
    crate::project::normalize_name(name)
}

/// Which of `count` shards `key` belongs to: the first 8 bytes of its
/// sha256, big-endian, modulo `count`.
pub fn shard_of(key: &str, count: u32) -> u32 {
    let digest = Sha256::digest(key.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(first) % u64::from(count.max(1))) as u32
}

/// One sdist to build, as the input named it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    pub path: PathBuf,
    /// Where it was named: `FILE:LINE`, or the directory.
    pub origin: String,
    /// The line of a requirements-style INPUT (None: from a directory).
    pub line: Option<usize>,
    /// Lowercase sha256 pins; empty when not pinned.
    pub sha256: Vec<String>,
}

/// INPUT could not be used at all (a usage error: nothing is built).
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("cannot read `{path}`: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{file}:{line}: {problem}")]
    Syntax {
        file: PathBuf,
        line: usize,
        problem: String,
    },
    #[error("`{0}` has no sdists (.tar.gz, .tgz, .tar.bz2, .tar.xz, .tar, .zip)")]
    Empty(PathBuf),
}

/// The entries of INPUT: a directory of sdists or a requirements-style file.
pub fn read_input(input: &Path) -> Result<Vec<Entry>, InputError> {
    let read_err = |source| InputError::Read {
        path: input.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(input).map_err(read_err)?;
    let entries = if meta.is_dir() {
        let mut entries = Vec::new();
        for e in std::fs::read_dir(input).map_err(read_err)? {
            let e = e.map_err(read_err)?;
            let name = e.file_name().to_string_lossy().into_owned();
            let is_file = e.file_type().map(|t| !t.is_dir()).unwrap_or(false);
            if is_file && !name.starts_with('.') && SDIST_SUFFIXES.iter().any(|s| name.ends_with(s))
            {
                entries.push(Entry {
                    path: e.path(),
                    origin: input.display().to_string(),
                    line: None,
                    sha256: Vec::new(),
                });
            }
        }
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        entries
    } else {
        let text = std::fs::read_to_string(input).map_err(read_err)?;
        parse_requirements(&text, input, &|k| std::env::var(k).ok())?
    };
    if entries.is_empty() {
        return Err(InputError::Empty(input.to_path_buf()));
    }
    Ok(entries)
}

/// pip's comment rule: `#` at the start of a line or after whitespace.
fn strip_comment(line: &str) -> &str {
    let bytes = line.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'#' && (i == 0 || bytes[i - 1].is_ascii_whitespace()) {
            return &line[..i];
        }
    }
    line
}

/// pip's `${NAME}` expansion (names of `A-Z`, `0-9`, `_`); unset names stay.
fn expand_vars(s: &str, var: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find('}') {
            Some(end)
                if end > 0
                    && after[..end]
                        .chars()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_') =>
            {
                match var(&after[..end]) {
                    Some(v) => out.push_str(&v),
                    None => out.push_str(&rest[start..start + 2 + end + 1]),
                }
                rest = &after[end + 1..];
            }
            _ => {
                out.push_str("${");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Parse a requirements-style file of local sdist paths (see `build-all --help`).
pub fn parse_requirements(
    text: &str,
    file: &Path,
    var: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Entry>, InputError> {
    let base = file.parent().unwrap_or(Path::new("."));
    let syntax = |line: usize, problem: String| syntax_error(file, line, problem);
    // 1. Join continuation lines as pip does.
    let logical = logical_lines(text);
    // 2. Comments, variables, then the tokens of each line.
    let mut entries = Vec::new();
    for (n, line) in logical {
        let line = expand_vars(strip_comment(&line), var);
        let mut tokens = line.split_whitespace();
        let Some(first) = tokens.next() else {
            continue;
        };
        if first.starts_with('-') {
            return Err(syntax(
                n,
                format!(
                    "the option `{}` is not supported here: build-all takes only sdist paths with --hash pins (give index options on the command line)",
                    crate::text::one_line(first, 80)
                ),
            ));
        }
        let hashes = hash_pins(tokens, file, n)?;
        let path = Path::new(sdist_path(first, file, n)?);
        entries.push(Entry {
            path: if path.is_absolute() {
                path.to_path_buf()
            } else {
                base.join(path)
            },
            origin: format!("{}:{n}", file.display()),
            line: Some(n),
            sha256: hashes,
        });
    }
    Ok(entries)
}

fn syntax_error(file: &Path, line: usize, problem: String) -> InputError {
    InputError::Syntax {
        file: file.to_path_buf(),
        line,
        problem,
    }
}

/// The lines of `text` with continuations joined as pip does: a line
/// ending in `\` joins the next, except a comment line; the joined line
/// keeps the number of its first line.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut logical: Vec<(usize, String)> = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let is_comment = raw.trim_start().starts_with('#');
        if let Some(body) = raw.strip_suffix('\\').filter(|_| !is_comment) {
            let p = pending.get_or_insert_with(|| (n, String::new()));
            p.1.push_str(body);
            continue;
        }
        match pending.take() {
            Some((first, mut joined)) => {
                // A comment line ends a continuation, as in pip.
                if !is_comment {
                    joined.push_str(raw);
                }
                logical.push((first, joined));
            }
            None => logical.push((n, raw.to_string())),
        }
    }
    if let Some(p) = pending {
        logical.push(p);
    }
    logical
}

/// The sha256 pins of line `n` (`--hash=ALGO:HEX` or `--hash ALGO:HEX`
/// after the path): anything else after the path is refused, and so is a
/// line pinned only by algorithms sdist-box does not check.
fn hash_pins<'t>(
    mut tokens: impl Iterator<Item = &'t str>,
    file: &Path,
    n: usize,
) -> Result<Vec<String>, InputError> {
    let syntax = |problem: String| syntax_error(file, n, problem);
    let mut hashes = Vec::new();
    let mut other_algorithms = false;
    while let Some(tok) = tokens.next() {
        let value = if let Some(v) = tok.strip_prefix("--hash=") {
            v.to_string()
        } else if tok == "--hash" {
            tokens
                .next()
                .ok_or_else(|| syntax("`--hash` needs a value (sha256:HEX)".into()))?
                .to_string()
        } else {
            return Err(syntax(format!(
                "unexpected `{}` after the path (only --hash=sha256:HEX may follow; paths with spaces are not supported)",
                crate::text::one_line(tok, 80)
            )));
        };
        let (algo, hex) = value.split_once(':').ok_or_else(|| {
            syntax(format!(
                "`--hash={value}` is not ALGORITHM:HEX (e.g. sha256:…)"
            ))
        })?;
        match algo {
            "sha256" => {
                if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(syntax(format!("`{hex}` is not a sha256 (64 hex digits)")));
                }
                hashes.push(hex.to_ascii_lowercase());
            }
            "sha384" | "sha512" => other_algorithms = true,
            _ => {
                return Err(syntax(format!(
                    "unknown hash algorithm `{algo}` (pip knows sha256, sha384, sha512)"
                )));
            }
        }
    }
    if other_algorithms && hashes.is_empty() {
        return Err(syntax(
            "only sha256 pins are checked by sdist-box; add a --hash=sha256:… pin".into(),
        ));
    }
    Ok(hashes)
}

/// The local sdist path line `n` names (`file://` allowed): never a URL,
/// never a requirement on a name.
fn sdist_path<'t>(first: &'t str, file: &Path, n: usize) -> Result<&'t str, InputError> {
    let path_text = first.strip_prefix("file://").unwrap_or(first);
    if path_text.contains("://") {
        return Err(syntax_error(
            file,
            n,
            format!(
                "`{}` is a URL: build-all builds local files only (download first, then pin with --hash)",
                crate::text::one_line(first, 200)
            ),
        ));
    }
    let looks_like_file = SDIST_SUFFIXES.iter().any(|s| path_text.ends_with(s));
    if !looks_like_file {
        return Err(syntax_error(
            file,
            n,
            format!(
                "`{}` is not a path to an sdist (.tar.gz, .tgz, .tar.bz2, .tar.xz, .tar, .zip); requirements on names are not resolved here",
                crate::text::one_line(first, 200)
            ),
        ));
    }
    Ok(path_text)
}

/// An entry with what the plan decided about it.
#[derive(Debug, Clone)]
pub struct Planned {
    pub entry: Entry,
    pub filename: String,
    pub stem: String,
    pub key: String,
    pub shard: u32,
    /// Another entry earlier in the input has the same file name, or names
    /// the same project and version: their outputs would collide in DIR.
    pub duplicate_of: Option<String>,
    /// For a duplicate by project and version: the earlier entry's file name.
    pub same_release_as: Option<String>,
    /// Why the entry is refused before anything is read: its path is not
    /// UTF-8 (the summary and reports could not name it).
    pub not_utf8: Option<String>,
}

/// All entries with their shard, in input order.
pub fn plan(entries: Vec<Entry>, shard_count: u32) -> Vec<Planned> {
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    // Project and version → the first entry of it (origin, file name).
    let mut releases: std::collections::HashMap<_, (String, String)> = Default::default();
    entries
        .into_iter()
        .map(|entry| {
            let filename = entry
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let stem = sdist_stem(&filename);
            let key = shard_key(&filename);
            let mut same_release_as = None;
            let duplicate_of = match seen.get(&stem) {
                Some(first) => Some(first.clone()),
                None => {
                    seen.insert(stem.clone(), entry.origin.clone());
                    // The release the file name claims (the build refuses
                    // a file name its metadata disagrees with): a second
                    // input of it would build a second wheel of it.
                    use std::collections::hash_map::Entry::{Occupied, Vacant};
                    let release = crate::names::split_name_version(&stem, None);
                    let earlier = release.and_then(|r| match releases.entry(r.key()) {
                        Occupied(o) => Some(o.get().clone()),
                        Vacant(v) => {
                            v.insert((entry.origin.clone(), filename.clone()));
                            None
                        }
                    });
                    earlier.map(|(origin, first)| {
                        same_release_as = Some(first);
                        origin
                    })
                }
            };
            Planned {
                not_utf8: crate::build::not_utf8("its path", &entry.path),
                shard: shard_of(&key, shard_count),
                filename,
                stem,
                key,
                duplicate_of,
                same_release_as,
                entry,
            }
        })
        .collect()
}

/// How one sdist of the run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EntryStatus {
    Built,
    /// Built by an earlier run for the same input sha256; not built again.
    Skipped,
    BuildFailed,
    Refused,
    SandboxUnavailable,
    Error,
}

impl EntryStatus {
    fn from_report(s: Status) -> EntryStatus {
        match s {
            Status::Built => EntryStatus::Built,
            Status::BuildFailed => EntryStatus::BuildFailed,
            Status::Refused => EntryStatus::Refused,
            Status::SandboxUnavailable => EntryStatus::SandboxUnavailable,
            // `ran` is `sdist-box run`'s outcome; a build never has it.
            Status::Error | Status::Ran => EntryStatus::Error,
        }
    }

    fn label(self) -> &'static str {
        match self {
            EntryStatus::Built => "built",
            EntryStatus::Skipped => "skipped",
            EntryStatus::BuildFailed => "build-failed",
            EntryStatus::Refused => "refused",
            EntryStatus::SandboxUnavailable => "no-sandbox",
            EntryStatus::Error => "error",
        }
    }

    fn wheel_ok(self) -> bool {
        matches!(self, EntryStatus::Built | EntryStatus::Skipped)
    }
}

/// One line of `build-all.json`.
#[derive(Debug, Clone, Serialize)]
pub struct EntryResult {
    pub sdist: PathBuf,
    pub origin: String,
    pub filename: String,
    pub shard_key: String,
    pub sha256: Option<String>,
    pub name: Option<String>,
    pub version: Option<String>,
    pub status: EntryStatus,
    /// Why it did not build (for people; attacker text is JSON-escaped only).
    pub reason: Option<String>,
    pub seconds: f64,
    pub findings: usize,
    /// The report has findings that match `--fail-on`.
    pub fails_on: bool,
    /// File names in the output directory.
    pub wheel: Option<String>,
    pub report: Option<String>,
    pub log: Option<String>,
    /// The resource limit the build ended at (`memory`, `disk`, …).
    pub limit_hit: Option<String>,
    /// Where the sdist came from, for an entry of a lock file (fetched or
    /// cached, URL, hash); None for a local path.
    pub source: Option<crate::fetch::progress::Provenance>,
}

/// `--fail-on` over the `severity` strings of a report's findings.
fn fails_on(fail_on: FailOn, severities: impl IntoIterator<Item = String>) -> bool {
    severities.into_iter().any(|s| match fail_on {
        FailOn::Blocked => s == "blocked" || s == "evasion",
        FailOn::Review => s == "blocked" || s == "evasion" || s == "review",
        FailOn::Evasion => s == "evasion",
        FailOn::Any => true,
        FailOn::Never => false,
    })
}

/// Everything every build of the run shares.
pub struct Settings {
    pub out_dir: PathBuf,
    pub fail_on: FailOn,
    /// `--rebuild`: build again what an earlier run built.
    pub rebuild: bool,
    /// `--check-reproducible`: the SOURCE_DATE_EPOCH of both builds.
    pub reproducible: Option<(String, crate::reproducible::EpochSource)>,
    /// Every build's request but for its sdist, pin and list entry.
    pub template: BuildRequest,
    /// The exit code of the command for these results, recorded in the
    /// summary (the command line decides the numbers).
    pub exit_code: fn(&[&EntryResult]) -> u8,
    /// INPUT is a lock file: its entries are fetched before they are built.
    pub lock: Option<Arc<crate::lock_input::LockRun>>,
}

impl Settings {
    /// The one place a batch entry becomes a [`BuildRequest`].
    fn request(&self, entry: &Entry, sha256: Option<String>) -> BuildRequest {
        BuildRequest {
            sdist: entry.path.clone(),
            sha256,
            input_entry: entry.line.map(|_| entry.origin.clone()),
            ..self.template.clone()
        }
    }
}

/// The report of an earlier run that makes this entry done, if there is one:
/// `built` for the same input sha256 under the same profile, its wheel
/// present with the hash the report names. (A rerun with another profile,
/// say `strict` after `default`, builds again.)
pub(crate) fn finished_report(
    out_dir: &Path,
    stem: &str,
    input_sha: &str,
    profile: &str,
) -> Option<serde_json::Value> {
    use std::io::Read;
    let path = out_dir.join(format!("{stem}.sdist-box.json"));
    let mut text = String::new();
    std::fs::File::open(&path)
        .ok()?
        .take(256 << 20)
        .read_to_string(&mut text)
        .ok()?;
    let report: serde_json::Value = serde_json::from_str(&text).ok()?;
    if report["input"]["sha256"].as_str() != Some(input_sha)
        || report["outcome"]["status"] != "built"
        || report["profile"]["name"].as_str() != Some(profile)
    {
        return None;
    }
    let wheel = report["wheel"]["filename"].as_str()?;
    if !build::valid_wheel_name(wheel) {
        return None;
    }
    let actual = archive::sha256_file(&out_dir.join(wheel)).ok()?;
    (report["wheel"]["sha256"].as_str() == Some(actual.as_str())).then_some(report)
}

fn file_name_in(out_dir: &Path, p: &Path) -> Option<String> {
    p.strip_prefix(out_dir)
        .ok()
        .map(|r| r.display().to_string())
        .or_else(|| p.file_name().map(|n| n.to_string_lossy().into_owned()))
}

fn result_from_report(
    planned: &Planned,
    report: &serde_json::Value,
    status: EntryStatus,
    seconds: f64,
    settings: &Settings,
) -> EntryResult {
    let findings = report["findings"].as_array().cloned().unwrap_or_default();
    let severities = findings
        .iter()
        .filter_map(|f| f["severity"].as_str().map(str::to_string));
    let log = report["log"]
        .as_str()
        .map(PathBuf::from)
        .filter(|p| p.exists())
        .and_then(|p| file_name_in(&settings.out_dir, &p));
    EntryResult {
        sdist: planned.entry.path.clone(),
        origin: planned.entry.origin.clone(),
        filename: planned.filename.clone(),
        shard_key: planned.key.clone(),
        sha256: report["input"]["sha256"].as_str().map(str::to_string),
        name: report["project"]["name"].as_str().map(str::to_string),
        version: report["project"]["version"].as_str().map(str::to_string),
        reason: report["outcome"]["reason"].as_str().map(str::to_string),
        seconds,
        findings: findings.len(),
        fails_on: status.wheel_ok() && fails_on(settings.fail_on, severities),
        wheel: report["wheel"]["filename"].as_str().map(str::to_string),
        report: Some(format!("{}.sdist-box.json", planned.stem)),
        log,
        status,
        limit_hit: report["outcome"]["limit_hit"].as_str().map(str::to_string),
        source: None,
    }
}

fn failed_result(planned: &Planned, status: EntryStatus, reason: String) -> EntryResult {
    EntryResult {
        sdist: utf8_lossy(&planned.entry.path),
        origin: planned.entry.origin.clone(),
        filename: planned.filename.clone(),
        shard_key: planned.key.clone(),
        sha256: None,
        name: None,
        version: None,
        status,
        reason: Some(reason),
        seconds: 0.0,
        findings: 0,
        fails_on: false,
        wheel: None,
        report: None,
        log: None,
        limit_hit: None,
        source: None,
    }
}

/// One entry, whatever happens in it: a panic in sdist-box's own code
/// while building it (a bug the entry's input found) is that entry's
/// `error`, and the worker goes on with the next one.
fn entry_alone(planned: &Planned, settings: &Settings) -> EntryResult {
    let run = std::panic::AssertUnwindSafe(|| fetch_and_run_entry(planned, settings));
    std::panic::catch_unwind(run).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".into());
        failed_result(
            planned,
            EntryStatus::Error,
            format!("sdist-box failed on this entry (a bug; please report it): {what}"),
        )
    })
}

/// An entry of a lock file: fetched (or found in the cache) first, then
/// built from the cached file with the hash that matched; a fetch failure
/// is the entry's `refused` result. Any other entry: [`run_entry`].
fn fetch_and_run_entry(planned: &Planned, settings: &Settings) -> EntryResult {
    let Some(lock) = &settings.lock else {
        return run_entry(planned, settings);
    };
    // Refusals that need no sdist come first: nothing is fetched for them.
    if planned.not_utf8.is_some() || planned.duplicate_of.is_some() {
        return run_entry(planned, settings);
    }
    match lock.fetch(&planned.entry.origin) {
        None => run_entry(planned, settings),
        Some(Err(why)) => failed_result(planned, EntryStatus::Refused, why),
        Some(Ok(fetched)) => {
            let filename = fetched
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let local = Planned {
                entry: Entry {
                    path: fetched.path.clone(),
                    sha256: vec![fetched.provenance.sha256.clone()],
                    ..planned.entry.clone()
                },
                stem: sdist_stem(&filename),
                filename,
                ..planned.clone()
            };
            let mut result = run_entry(&local, settings);
            if let (true, Some(name), Some(wheel)) =
                (result.status.wheel_ok(), &result.name, &result.wheel)
            {
                lock.built(name, &settings.out_dir.join(wheel));
            }
            result.source = Some(fetched.provenance);
            result
        }
    }
}

/// Build (or skip) one entry. Never panics through; never fails the run.
fn run_entry(planned: &Planned, settings: &Settings) -> EntryResult {
    let started = Instant::now();
    if let Some(why) = &planned.not_utf8 {
        return failed_result(planned, EntryStatus::Refused, why.clone());
    }
    if let Some(first) = &planned.duplicate_of {
        let t = crate::text::one_line;
        let why = match &planned.same_release_as {
            Some(other) => format!(
                "`{}` names the same project and version as `{}` (at {}): a collision, their wheels would take each other's place",
                t(&planned.filename, 200),
                t(other, 200),
                t(first, 200)
            ),
            None => format!(
                "`{}` is named twice (first at {first}); its outputs would overwrite each other",
                planned.filename
            ),
        };
        return failed_result(planned, EntryStatus::Refused, why);
    }
    // The input's hash: for resuming, and to pick which of several pins to
    // hand the pipeline (any one matching is enough, as in pip).
    let actual = archive::sha256_file(&planned.entry.path).ok();
    if !settings.rebuild
        && let Some(sha) = &actual
        && let Some(report) = finished_report(
            &settings.out_dir,
            &planned.stem,
            sha,
            &settings.template.profile.origin,
        )
    {
        return result_from_report(
            planned,
            &report,
            EntryStatus::Skipped,
            started.elapsed().as_secs_f64(),
            settings,
        );
    }
    let pin = match (&planned.entry.sha256[..], &actual) {
        ([], _) => None,
        (pins, Some(a)) if pins.contains(a) => Some(a.clone()),
        // No pin matches (or the file is unreadable): the pipeline refuses
        // it against the first pin, before extracting anything, and says so
        // in the report.
        (pins, _) => Some(pins[0].clone()),
    };
    let req = settings.request(&planned.entry, pin);
    let built = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        match &settings.reproducible {
            Some(epoch) => crate::build::build_twice(&req, epoch.clone()),
            None => build::build(&req),
        }
    }));
    let report: BuildReport = match built {
        Ok(r) => r,
        Err(panic) => {
            let what = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            return failed_result(
                planned,
                EntryStatus::Error,
                format!(
                    "internal error while building `{}`: {what}",
                    planned.filename
                ),
            );
        }
    };
    // The build wrote its report beside the wheel (and placed the wheel
    // only after it); a report it could not write made the outcome an
    // error, and left no wheel.
    let report_path = settings
        .out_dir
        .join(format!("{}.sdist-box.json", planned.stem));
    let value: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap_or_default();
    let mut result = result_from_report(
        planned,
        &value,
        EntryStatus::from_report(report.outcome.status),
        started.elapsed().as_secs_f64(),
        settings,
    );
    if result.status == EntryStatus::Error && !report_path.is_file() {
        result.report = None;
    }
    result
}

/// What the workers tell the main thread.
enum Event {
    Started(usize),
    Finished(usize, Box<EntryResult>),
}

/// The whole run, as written to `build-all.json`.
#[derive(Debug, Serialize)]
struct Summary<'a> {
    schema_version: u32,
    tool: crate::report::Tool,
    input: &'a Path,
    out_dir: &'a Path,
    shard: Option<Shard>,
    jobs: u32,
    fail_on: String,
    /// False while the run is going on (or when it was interrupted).
    complete: bool,
    /// The signal that interrupted the run (SIGINT, SIGTERM), if one did.
    interrupted: Option<String>,
    elapsed_seconds: f64,
    counts: Counts,
    exit_code: u8,
    /// INPUT as a lock file: its format, indexes, notes, excluded entries.
    lock: Option<crate::lock_input::LockSummary>,
    entries: Vec<&'a EntryResult>,
    /// Entries of the input not yet finished (or not started).
    pending: Vec<PathBuf>,
}

#[derive(Debug, Default, Clone, Serialize)]
struct Counts {
    /// Entries in the input.
    input: usize,
    /// Entries in this shard (all of them without --shard).
    selected: usize,
    built: usize,
    skipped: usize,
    build_failed: usize,
    refused: usize,
    sandbox_unavailable: usize,
    error: usize,
    /// Built or skipped, with findings matching --fail-on.
    fails_on: usize,
    /// Builds that ended at a resource limit (memory, disk, processes, …).
    limit_hits: usize,
}

impl Counts {
    fn add(&mut self, r: &EntryResult) {
        match r.status {
            EntryStatus::Built => self.built += 1,
            EntryStatus::Skipped => self.skipped += 1,
            EntryStatus::BuildFailed => self.build_failed += 1,
            EntryStatus::Refused => self.refused += 1,
            EntryStatus::SandboxUnavailable => self.sandbox_unavailable += 1,
            EntryStatus::Error => self.error += 1,
        }
        if r.fails_on {
            self.fails_on += 1;
        }
        if r.limit_hit.is_some() {
            self.limit_hits += 1;
        }
    }

    fn failed(&self) -> usize {
        self.build_failed + self.refused + self.sandbox_unavailable + self.error
    }
}

/// Progress on stderr: a redrawn status line on a terminal, plain lines
/// otherwise.
struct Progress {
    tty: bool,
    total: usize,
    started: Instant,
    drawn: bool,
}

impl Progress {
    fn new(total: usize) -> Progress {
        Progress {
            tty: std::io::stderr().is_terminal()
                && std::env::var_os("TERM").is_none_or(|t| t != "dumb"),
            total,
            started: Instant::now(),
            drawn: false,
        }
    }

    fn elapsed(&self) -> String {
        let s = self.started.elapsed().as_secs();
        format!("{}:{:02}", s / 60, s % 60)
    }

    fn finished(&mut self, done: usize, r: &EntryResult) {
        let t = crate::text::one_line;
        let what = match (&r.name, &r.version) {
            (Some(n), Some(v)) => format!("{} {}", t(n, 60), t(v, 30)),
            // From the path's bytes (`filename` lost what was not UTF-8).
            _ => t(&crate::text::file_name(&r.sdist).to_string(), 90),
        };
        let mut line = format!(
            "[{done}/{}] {:<12} {what} ({:.1} s",
            self.total,
            r.status.label(),
            r.seconds
        );
        if r.findings > 0 {
            line.push_str(&format!(", {} finding(s)", r.findings));
        }
        line.push(')');
        if let (false, Some(reason)) = (r.status.wheel_ok(), &r.reason) {
            line.push_str(&format!(": {}", t(reason, 200)));
        }
        let mut err = std::io::stderr().lock();
        if self.tty && self.drawn {
            let _ = write!(err, "\r\x1b[K");
            self.drawn = false;
        }
        let _ = writeln!(err, "sdist-box: {line}");
    }

    fn status(&mut self, counts: &Counts, done: usize, running: &[String]) {
        if !self.tty {
            return;
        }
        let mut line = format!(
            "{done}/{} done, {} failed, {} skipped · {} · {}",
            self.total,
            counts.failed(),
            counts.skipped,
            self.elapsed(),
            running.join(", ")
        );
        // One terminal line, or `\r` would not return to its start.
        let width = std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.parse::<usize>().ok())
            .unwrap_or(80)
            .max(20);
        if line.chars().count() >= width {
            line = line.chars().take(width - 2).collect::<String>() + "…";
        }
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[K{line}");
        let _ = err.flush();
        self.drawn = true;
    }

    fn clear(&mut self) {
        if self.tty && self.drawn {
            let _ = write!(std::io::stderr(), "\r\x1b[K");
            self.drawn = false;
        }
    }
}

/// The table at the end, for people.
fn summary_table(results: &[&EntryResult]) -> String {
    let t = crate::text::one_line;
    let rows: Vec<[String; 5]> = results
        .iter()
        .map(|r| {
            [
                match &r.name {
                    Some(name) => t(name, 40),
                    None => t(&crate::text::file_name(&r.sdist).to_string(), 40),
                },
                t(r.version.as_deref().unwrap_or("-"), 20),
                format!(
                    "{}{}",
                    r.status.label(),
                    if r.fails_on { " (fails-on)" } else { "" }
                ),
                format!("{:.1}", r.seconds),
                r.findings.to_string(),
            ]
        })
        .collect();
    let header = ["package", "version", "status", "seconds", "findings"];
    let mut width = header.map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 5]| {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(width).enumerate() {
            let pad = w.saturating_sub(c.chars().count());
            if i == 3 || i == 4 {
                s.push_str(&" ".repeat(pad));
                s.push_str(c);
            } else {
                s.push_str(c);
                s.push_str(&" ".repeat(pad));
            }
            s.push_str("  ");
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(header);
    for row in &rows {
        out.push_str(&line([&row[0], &row[1], &row[2], &row[3], &row[4]]));
    }
    out
}

/// A path for JSON: as it is when UTF-8, else with replacement characters
/// (only ever of an entry refused for it, whose reason says so).
fn utf8_lossy(p: &Path) -> PathBuf {
    PathBuf::from(p.to_string_lossy().into_owned())
}

/// What a run is over, besides its settings: for the banner and the summary.
pub struct RunInput<'a> {
    /// INPUT as given (a directory or a list).
    pub input: &'a Path,
    /// `--shard`, when given.
    pub shard: Option<Shard>,
    /// Entries in the input (before sharding).
    pub input_count: usize,
    /// `--jobs`, when given (default: the number of cores).
    pub jobs: Option<u32>,
}

/// How a run ended: every entry's result (`None`: never started, when
/// interrupted), the counts, and the signal that interrupted it.
pub struct RunEnd {
    pub results: Vec<Option<EntryResult>>,
    counts: Counts,
    pub interrupted: Option<nix::sys::signal::Signal>,
    elapsed: Duration,
    summary_path: PathBuf,
}

impl RunEnd {
    /// The results of the entries that finished.
    pub fn finished(&self) -> Vec<&EntryResult> {
        self.results.iter().flatten().collect()
    }

    /// The table of results and the closing lines, on stderr.
    pub fn print(&self) {
        let counts = &self.counts;
        eprint!("\n{}", summary_table(&self.finished()));
        eprintln!(
            "\nsdist-box: {} built, {} skipped (already built), {} failed ({} build failed, {} refused, {} sandbox unavailable, {} error); {} with findings per --fail-on; {} at a resource limit; {:.1} s. Summary: {}",
            counts.built,
            counts.skipped,
            counts.failed(),
            counts.build_failed,
            counts.refused,
            counts.sandbox_unavailable,
            counts.error,
            counts.fails_on,
            counts.limit_hits,
            self.elapsed.as_secs_f64(),
            crate::text::path(&self.summary_path)
        );
        if let Some(signal) = self.interrupted {
            let pending = self.results.iter().filter(|r| r.is_none()).count();
            eprintln!(
                "sdist-box: interrupted by {signal}: {pending} sdist(s) not started; run the same command again to build them"
            );
        }
    }
}

/// Build every planned sdist, `jobs` at a time, keeping `build-all.json`
/// current; SIGINT and SIGTERM end the run gracefully.
pub fn run_all(
    settings: Settings,
    planned: Vec<Planned>,
    run: &RunInput,
) -> anyhow::Result<RunEnd> {
    // 1. the output directory, ours alone for the run.
    let _lock = take_out_dir(&settings.out_dir)?;
    let jobs = job_count(run.jobs, planned.len());
    // resources: jobs × sandbox-memory must fit in what the host can give.
    let (jobs, lowered) = crate::batch_memory::cap_jobs(
        jobs,
        settings
            .template
            .profile
            .limits
            .sandbox_memory
            .or(crate::sandbox::Limits::default().sandbox_memory_bytes),
    );
    if let Some(why) = lowered {
        eprintln!("sdist-box: {why}");
    }
    announce(&planned, run, jobs, &settings.out_dir);
    // 2. signals blocked before any thread exists, so every thread
    // inherits the mask.
    let interrupted = stop_on_signals()?;
    // 3. the workers, taking entries off one queue.
    let settings = Arc::new(settings);
    let planned = Arc::new(planned);
    let (rx, workers) = start_workers(jobs, &settings, &planned, &interrupted)?;
    // 4. their results, as they come, into the summary and the progress.
    let summary = SummaryWriter {
        path: settings.out_dir.join(SUMMARY_FILE),
        run,
        jobs,
        settings: &settings,
        planned: &planned,
        started: Instant::now(),
        interrupted: &interrupted,
    };
    let (mut results, mut counts) = collect_results(&rx, &planned, run.input_count, &summary);
    for w in workers {
        let _ = w.join();
    }
    // 5. the last summary: complete unless interrupted (what was not
    // started stays in `pending`, and a rerun builds it).
    let signal = *interrupted.lock().unwrap_or_else(|e| e.into_inner());
    if signal.is_none() {
        never_finished(&mut results, &mut counts, &planned);
    }
    summary.write(&results, &counts, signal.is_none());
    Ok(RunEnd {
        results,
        counts,
        interrupted: signal,
        elapsed: summary.started.elapsed(),
        summary_path: summary.path.clone(),
    })
}

/// Create the output directory, take its lock (one run per output
/// directory: two would build the same sdists and overwrite each other's
/// summary) and remove what an earlier run left half-written.
fn take_out_dir(out_dir: &Path) -> anyhow::Result<std::fs::File> {
    std::fs::create_dir_all(out_dir)
        .with_context(|| format!("cannot create the output directory `{}`", out_dir.display()))?;
    let lock = lock_out_dir(out_dir)?;
    remove_stale_temporaries(out_dir);
    Ok(lock)
}

/// `--jobs`, else the number of cores; never more than there are builds.
fn job_count(jobs: Option<u32>, builds: usize) -> u32 {
    jobs.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get() as u32)
            .unwrap_or(1)
    })
    .clamp(1, builds.max(1) as u32)
}

fn announce(planned: &[Planned], run: &RunInput, jobs: u32, out_dir: &Path) {
    eprintln!(
        "sdist-box: {} sdist(s){} from {}, {jobs} at a time, into {}",
        planned.len(),
        match run.shard {
            Some(s) => format!(" of {} in shard {}/{}", run.input_count, s.index, s.count),
            None => String::new(),
        },
        crate::text::path(run.input),
        crate::text::path(out_dir)
    );
}

/// The signal that interrupted the run, once one has.
type Interrupted = Arc<Mutex<Option<nix::sys::signal::Signal>>>;

/// SIGINT and SIGTERM end the run gracefully: no new builds start, the
/// ones in progress finish and are recorded, the summary says the run was
/// interrupted, and nothing is left in the work directories. They are
/// blocked here, before any thread exists, so every thread inherits the
/// mask and only the waiter started here takes them; children start with
/// an empty mask again (std's Command resets it, and so does the sandbox's
/// clone child). A second signal ends the process at once.
fn stop_on_signals() -> anyhow::Result<Interrupted> {
    let stop_signals = {
        use nix::sys::signal::{SigSet, Signal};
        let mut set = SigSet::empty();
        set.add(Signal::SIGINT);
        set.add(Signal::SIGTERM);
        set
    };
    stop_signals
        .thread_block()
        .context("cannot block SIGINT and SIGTERM")?;
    let interrupted: Interrupted = Arc::new(Mutex::new(None));
    let slot = interrupted.clone();
    std::thread::Builder::new()
        .name("build-all-signals".into())
        .spawn(move || {
            let Ok(signal) = stop_signals.wait() else {
                return;
            };
            if let Ok(mut slot) = slot.lock() {
                *slot = Some(signal);
            }
            eprintln!(
                "\nsdist-box: {signal} received: finishing the builds in progress, starting no new ones (again to stop at once)"
            );
            if stop_signals.wait().is_ok() {
                // At once now: the builds in progress end with us, and
                // their work directories go first.
                crate::workdir::abandon_all();
                std::process::exit(128 + signal as i32);
            }
        })
        .context("cannot start the signal thread")?;
    Ok(interrupted)
}

/// Start `jobs` workers over one queue of the planned entries; each
/// stops taking entries once the run is interrupted.
fn start_workers(
    jobs: u32,
    settings: &Arc<Settings>,
    planned: &Arc<Vec<Planned>>,
    interrupted: &Interrupted,
) -> anyhow::Result<(mpsc::Receiver<Event>, Vec<std::thread::JoinHandle<()>>)> {
    let queue = Arc::new(Mutex::new((0..planned.len()).collect::<VecDeque<usize>>()));
    let (tx, rx) = mpsc::channel::<Event>();
    let mut workers = Vec::new();
    for n in 0..jobs {
        let (settings, planned, queue, tx, interrupted) = (
            settings.clone(),
            planned.clone(),
            queue.clone(),
            tx.clone(),
            interrupted.clone(),
        );
        let stopping = move || interrupted.lock().map(|s| s.is_some()).unwrap_or(true);
        // Each sandbox's init gets SIGKILL when the thread that started it
        // ends (PR_SET_PDEATHSIG follows the thread); a worker outlives its
        // builds, since `build::build` waits for the sandbox to end.
        let worker = std::thread::Builder::new()
            .name(format!("build-all-{n}"))
            .spawn(move || {
                loop {
                    if stopping() {
                        break;
                    }
                    let next = queue.lock().map(|mut q| q.pop_front()).unwrap_or(None);
                    let Some(i) = next else { break };
                    if tx.send(Event::Started(i)).is_err() {
                        break;
                    }
                    let result = entry_alone(&planned[i], &settings);
                    if tx.send(Event::Finished(i, Box::new(result))).is_err() {
                        break;
                    }
                }
            })
            .context("cannot start a worker thread")?;
        workers.push(worker);
    }
    Ok((rx, workers))
}

/// Take the workers' events until the last worker is done: results and
/// counts, the progress line, and the summary rewritten every
/// [`SUMMARY_INTERVAL`] (current while the run goes on, but not rewritten
/// after every one of thousands of packages).
fn collect_results(
    rx: &mpsc::Receiver<Event>,
    planned: &[Planned],
    input_count: usize,
    summary: &SummaryWriter,
) -> (Vec<Option<EntryResult>>, Counts) {
    let mut results: Vec<Option<EntryResult>> = vec![None; planned.len()];
    let mut running: BTreeMap<usize, String> = BTreeMap::new();
    let mut counts = Counts {
        input: input_count,
        selected: planned.len(),
        ..Counts::default()
    };
    let mut progress = Progress::new(planned.len());
    let mut done = 0usize;
    summary.write(&results, &counts, false);
    let mut last_summary = Instant::now();
    loop {
        match rx.recv_timeout(Duration::from_millis(500)) {
            Ok(Event::Started(i)) => {
                running.insert(
                    i,
                    crate::text::file_name(&planned[i].entry.path).to_string(),
                );
            }
            Ok(Event::Finished(i, result)) => {
                running.remove(&i);
                done += 1;
                counts.add(&result);
                progress.finished(done, &result);
                results[i] = Some(*result);
                if last_summary.elapsed() >= SUMMARY_INTERVAL {
                    summary.write(&results, &counts, false);
                    last_summary = Instant::now();
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        let names: Vec<String> = running
            .values()
            .map(|s| crate::text::one_line(s, 40))
            .collect();
        progress.status(&counts, done, &names);
    }
    progress.clear();
    (results, counts)
}

/// A worker that died (it cannot: every build is caught) would leave
/// entries unfinished; say so rather than report success.
fn never_finished(results: &mut [Option<EntryResult>], counts: &mut Counts, planned: &[Planned]) {
    for (slot, p) in results.iter_mut().zip(planned.iter()) {
        if slot.is_none() {
            let r = failed_result(p, EntryStatus::Error, "never finished".into());
            counts.add(&r);
            *slot = Some(r);
        }
    }
}

/// Writes `build-all.json` for one run.
struct SummaryWriter<'a> {
    path: PathBuf,
    run: &'a RunInput<'a>,
    jobs: u32,
    settings: &'a Settings,
    planned: &'a [Planned],
    started: Instant,
    interrupted: &'a Interrupted,
}

impl SummaryWriter<'_> {
    fn write(&self, results: &[Option<EntryResult>], counts: &Counts, complete: bool) {
        let finished: Vec<&EntryResult> = results.iter().flatten().collect();
        let summary = Summary {
            schema_version: SUMMARY_SCHEMA_VERSION,
            tool: crate::report::Tool::default(),
            input: self.run.input,
            out_dir: &self.settings.out_dir,
            shard: self.run.shard,
            jobs: self.jobs,
            fail_on: {
                use clap::ValueEnum;
                self.settings
                    .fail_on
                    .to_possible_value()
                    .map(|v| v.get_name().to_string())
                    .unwrap_or_default()
            },
            complete,
            interrupted: self
                .interrupted
                .lock()
                .ok()
                .and_then(|s| s.map(|sig| sig.as_str().to_string())),
            elapsed_seconds: self.started.elapsed().as_secs_f64(),
            counts: counts.clone(),
            exit_code: (self.settings.exit_code)(&finished),
            lock: self.settings.lock.as_ref().map(|l| l.summary()),
            pending: results
                .iter()
                .zip(self.planned.iter())
                .filter(|(r, _)| r.is_none())
                .map(|(_, p)| utf8_lossy(&p.entry.path))
                .collect(),
            entries: finished,
        };
        let text = serde_json::to_string_pretty(&summary).expect("the summary serializes");
        if let Err(e) = write_atomic(&self.path, &text) {
            tracing::warn!("{e:#}");
        }
    }
}

/// The lock file that keeps a second `build-all` out of an output directory.
pub const LOCK_FILE: &str = ".build-all.lock";

/// Take `DIR/.build-all.lock` (an exclusive POSIX record lock, released
/// when the run ends, however it ends), or fail at once naming the
/// directory. A record lock, not an `flock`: an `flock` belongs to the open
/// file description, which a sandbox's clone child shares until it execs,
/// so the lock of a `build-all` killed a moment ago could still refuse the
/// run that resumes it. The returned file holds the lock while it is open.
fn lock_out_dir(out_dir: &Path) -> anyhow::Result<std::fs::File> {
    use std::os::fd::AsFd;
    let path = out_dir.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open `{}`", path.display()))?;
    let whole = libc::flock {
        l_type: libc::F_WRLCK as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    };
    let busy = |e: nix::errno::Errno| {
        anyhow::anyhow!(
            "another `sdist-box build-all` is writing into `{}` (it holds `{LOCK_FILE}`: {e}); wait for it, or give another -o",
            out_dir.display()
        )
    };
    nix::fcntl::fcntl(file.as_fd(), nix::fcntl::FcntlArg::F_SETLK(&whole)).map_err(busy)?;
    // A run of an earlier sdist-box holds an `flock` instead: probe it (and
    // let go at once, so that nothing of ours can inherit it).
    let probe = file
        .try_clone()
        .with_context(|| format!("cannot open `{}`", path.display()))?;
    match nix::fcntl::Flock::lock(probe, nix::fcntl::FlockArg::LockExclusiveNonblock) {
        Ok(held) => drop(held),
        Err((_, e)) => return Err(busy(e)),
    }
    Ok(file)
}

/// Temporary files (`.sdist-box-*`) of an earlier run that was killed
/// before it could rename them into place. Only old ones: a `sdist-box
/// build -o` into the same directory could be writing a fresh one.
fn remove_stale_temporaries(out_dir: &Path) {
    let Ok(rd) = std::fs::read_dir(out_dir) else {
        return;
    };
    for e in rd.flatten() {
        let stale = e.file_name().to_string_lossy().starts_with(".sdist-box-")
            && e.file_type().is_ok_and(|t| t.is_file())
            && e.metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > Duration::from_secs(3600));
        if stale {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// `--dry-run`: the plan on stdout, one line per sdist of this shard.
pub fn dry_run(
    planned: &[Planned],
    settings: &Settings,
    input_count: usize,
    shard: Shard,
) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    for p in planned {
        let action = if p.duplicate_of.is_some() {
            "duplicate"
        } else if p.not_utf8.is_some() {
            "not-utf8"
        } else if let Some(action) = settings
            .lock
            .as_ref()
            .and_then(|l| l.planned_action(&p.entry.origin))
        {
            action
        } else {
            match archive::sha256_file(&p.entry.path) {
                Err(_) => "unreadable",
                Ok(sha) if !p.entry.sha256.is_empty() && !p.entry.sha256.contains(&sha) => {
                    "hash-mismatch"
                }
                Ok(sha)
                    if !settings.rebuild
                        && finished_report(
                            &settings.out_dir,
                            &p.stem,
                            &sha,
                            &settings.template.profile.origin,
                        )
                        .is_some() =>
                {
                    "skip"
                }
                Ok(_) => "build",
            }
        };
        writeln!(
            out,
            "{action}\t{}/{}\t{}\t{}",
            p.shard,
            shard.count,
            crate::text::shown(&p.key),
            crate::text::path(&p.entry.path)
        )?;
    }
    eprintln!(
        "sdist-box: {} of {input_count} sdist(s) in shard {}/{}; nothing was built (--dry-run)",
        planned.len(),
        shard.index,
        shard.count
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_vars(_: &str) -> Option<String> {
        None
    }

    const H1: &str = "49b3a825280bd66b3aa83585ef59c4a8c82f2c8a522dbe754a8bc8d08c85c491";
    const H2: &str = "37228cda29411948b422fae072f57e31d3396d2ee1c9783775980ee9c9990af6";

    #[test]
    fn requirements_in_pips_syntax() {
        let text = format!(
            "# a comment\n\
             ./sdists/docopt-0.6.2.tar.gz --hash=sha256:{H1}\n\
             \n\
             sdists/apipkg-1.5.tar.gz \\\n    --hash=sha256:{} \\\n    --hash sha256:{H1}  # trailing comment\n\
             /abs/x-1.0.zip\n\
             file:///abs/y-2.0.tar.gz\n\
             ${{SDISTS}}/z-3.tar.gz\n",
            H2.to_uppercase()
        );
        let vars = |k: &str| (k == "SDISTS").then(|| "/from/env".to_string());
        let got = parse_requirements(&text, Path::new("/in/reqs.txt"), &vars).unwrap();
        assert_eq!(got.len(), 5, "{got:?}");
        assert_eq!(got[0].path, Path::new("/in/./sdists/docopt-0.6.2.tar.gz"));
        assert_eq!(got[0].sha256, vec![H1.to_string()]);
        assert_eq!(got[0].origin, "/in/reqs.txt:2");
        assert_eq!(got[1].path, Path::new("/in/sdists/apipkg-1.5.tar.gz"));
        assert_eq!(got[1].sha256, vec![H2.to_string(), H1.to_string()]);
        assert_eq!(
            got[1].origin, "/in/reqs.txt:4",
            "a joined line keeps its first number"
        );
        assert_eq!(got[2].path, Path::new("/abs/x-1.0.zip"));
        assert!(got[2].sha256.is_empty());
        assert_eq!(got[3].path, Path::new("/abs/y-2.0.tar.gz"));
        assert_eq!(got[4].path, Path::new("/from/env/z-3.tar.gz"));
    }

    #[test]
    fn a_comment_line_is_never_continued() {
        let text = "# note \\\na-1.tar.gz\n";
        let got = parse_requirements(text, Path::new("r.txt"), &no_vars).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].origin, "r.txt:2");
    }

    #[test]
    fn bad_lines_name_file_and_line() {
        for (text, expect) in [
            ("a-1.tar.gz\n-r other.txt\n", "r.txt:2: the option `-r`"),
            (
                "requests==2.0\n",
                "r.txt:1: `requests==2.0` is not a path to an sdist",
            ),
            ("a-1.tar.gz --hash=md5:00\n", "unknown hash algorithm `md5`"),
            ("a-1.tar.gz --hash=sha256:abc\n", "is not a sha256"),
            (
                &format!("a-1.tar.gz --hash=sha512:{}\n", "0".repeat(128)),
                "only sha256 pins",
            ),
            ("https://example.invalid/a-1.tar.gz\n", "is a URL"),
            ("a-1.tar.gz extra\n", "unexpected `extra`"),
            ("a-1.tar.gz --hash\n", "`--hash` needs a value"),
        ] {
            let e = parse_requirements(text, Path::new("r.txt"), &no_vars)
                .unwrap_err()
                .to_string();
            assert!(e.contains(expect), "{text:?}: {e}");
        }
    }

    #[test]
    fn shard_keys_come_from_the_file_name() {
        assert_eq!(shard_key("pdm_backend-2.4.5.tar.gz"), "pdm-backend");
        assert_eq!(shard_key("python-dateutil-2.8.2.tar.gz"), "python-dateutil");
        assert_eq!(shard_key("Django-2fa-1.0.zip"), "django-2fa");
        assert_eq!(shard_key("foo-1.0-beta.tar.gz"), "foo");
        assert_eq!(shard_key("zope.interface-5.0.tar.gz"), "zope-interface");
        assert_eq!(shard_key("noversion.tar.gz"), "noversion");
        assert_eq!(shard_key("-1.0.tar.gz"), "-1-0");
        // Every version of a project lands in the same shard.
        assert_eq!(
            shard_of(&shard_key("MarkupSafe-2.1.5.tar.gz"), 7),
            shard_of(&shard_key("markupsafe-3.0.3.tar.gz"), 7)
        );
    }

    #[test]
    fn shards_partition_the_input_and_are_stable() {
        // Pinned values: a change here would move sdists between machines
        // that run different versions of sdist-box.
        assert_eq!(shard_of("tomli", 3), 2);
        assert_eq!(shard_of("docopt", 3), 2);
        assert_eq!(shard_of("markupsafe", 3), 0);
        assert_eq!(shard_of("markupsafe", 7), 5);
        let names: Vec<String> = (0..300).map(|i| format!("project{i}")).collect();
        let mut per_shard = [0usize; 3];
        for n in &names {
            per_shard[shard_of(n, 3) as usize] += 1;
        }
        assert_eq!(per_shard.iter().sum::<usize>(), 300);
        assert!(per_shard.iter().all(|&c| c > 60), "{per_shard:?}");
        assert!(names.iter().all(|n| shard_of(n, 1) == 0));
    }

    #[test]
    fn shard_arguments() {
        assert_eq!(Shard::parse("0/3").unwrap(), Shard { index: 0, count: 3 });
        assert_eq!(Shard::parse("2/3").unwrap(), Shard { index: 2, count: 3 });
        for bad in ["3/3", "1/0", "x/2", "1", "-1/2"] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
    }

    /// An entry of a directory input.
    fn e(path: &str) -> Entry {
        Entry {
            path: PathBuf::from(path),
            origin: path.into(),
            line: None,
            sha256: vec![],
        }
    }

    #[test]
    fn duplicates_are_found_by_stem() {
        let planned = plan(
            vec![e("/a/x-1.tar.gz"), e("/b/x-1.tar.gz"), e("/a/y-1.zip")],
            1,
        );
        assert_eq!(planned[0].duplicate_of, None);
        assert_eq!(planned[1].duplicate_of.as_deref(), Some("/a/x-1.tar.gz"));
        assert_eq!(planned[2].duplicate_of, None);
    }

    #[test]
    fn duplicates_are_found_by_project_and_version() {
        let planned = plan(
            vec![
                e("/a/good-1.0.tar.gz"),
                e("/a/Good-1.0.0.zip"),
                e("/a/good-1.1.tar.gz"),
                e("/b/GOOD_-1.0.tar.xz"),
                e("/a/goods-1.0.tar.gz"),
            ],
            1,
        );
        let dup: Vec<_> = planned
            .iter()
            .map(|p| (p.duplicate_of.as_deref(), p.same_release_as.as_deref()))
            .collect();
        assert_eq!(
            dup,
            [
                (None, None),
                (Some("/a/good-1.0.tar.gz"), Some("good-1.0.tar.gz")),
                (None, None),
                // Not a valid name: not a release (the build refuses it).
                (None, None),
                (None, None),
            ]
        );
    }

    #[test]
    fn table_lines_up() {
        let r = EntryResult {
            sdist: "x".into(),
            origin: "o".into(),
            filename: "tomli-2.3.0.tar.gz".into(),
            shard_key: "tomli".into(),
            sha256: None,
            name: Some("tomli".into()),
            version: Some("2.3.0".into()),
            status: EntryStatus::Built,
            reason: None,
            seconds: 12.34,
            findings: 2,
            fails_on: true,
            wheel: None,
            report: None,
            log: None,
            limit_hit: None,
            source: None,
        };
        let t = summary_table(&[&r]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("package  version  status"), "{t}");
        assert!(
            lines[1].starts_with("tomli    2.3.0    built (fails-on)"),
            "{t}"
        );
        assert!(lines[1].ends_with("12.3         2"), "{t}");
    }
}
