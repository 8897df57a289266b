//! Who produced each wheel in an output directory, and placing a new wheel
//! there without taking another input's place.
//!
//! An output directory holds, per input, `<stem>.sdist-box.json` (the
//! report, named after the input's file name) and the wheel that report
//! names with its sha256. The report is the record of which input (file
//! name and sha256) produced which wheel: a wheel is *claimed* by the
//! reports that name it, and *vouched for* by one whose recorded hash is the
//! file's. One release (project and version, [`Release`]) belongs to at most
//! one input per directory:
//!
//! - a wheel of the same release that another input's report claims is
//!   never replaced, and no second wheel of that release is added beside
//!   it (another case, a build tag, other tags): [`place_wheel`] refuses,
//!   naming both inputs;
//! - the same input built again (its own report claims the wheel) replaces
//!   it; a wheel no report claims (left by hand, or by an older sdist-box
//!   that placed wheels before their reports) is replaced by a wheel of the
//!   same name;
//! - within one process (`build-all`'s parallel builds) a wheel placed but
//!   not yet reported counts as claimed by its input (a process-wide
//!   register), and a wheel that appears between the check and the rename
//!   is not overwritten (no-clobber rename).
//!
//! Two processes writing one directory at once can still both add a wheel
//! of one release under different file names; `index` lists neither then.
//!
//! Invariants: reports are read bounded, as attacker-influenced JSON (a
//! report carries the package's text); nothing read from them is used as a
//! path: wheel names are compared as strings, and only file names that
//! parse as wheel file names are looked at.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::Deserialize;

use crate::names::{Release, WheelFilename};

/// Most bytes of one report read.
const MAX_REPORT_BYTES: u64 = 256 << 20;

/// The input a wheel is being placed for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Producer {
    /// The report's file name in the directory (`<stem>.sdist-box.json`).
    pub report: String,
    pub input_filename: String,
    pub input_sha256: Option<String>,
}

impl Producer {
    /// The producer for the input file `filename`: the report is named
    /// after it, as `build` and `build-all` write it.
    pub fn for_input(filename: &str, sha256: Option<String>) -> Producer {
        Producer {
            report: report_file_name(filename),
            input_filename: filename.to_string(),
            input_sha256: sha256,
        }
    }

    fn describe(&self) -> String {
        describe_input(&self.input_filename, self.input_sha256.as_deref())
    }

    /// The same input: the same report slot and the same file name (its
    /// bytes may have changed: a rebuild of a corrected sdist). `x-1.zip`
    /// shares `x-1.tar.gz`'s report slot but is another input.
    pub fn same_input(&self, report: &str, input_filename: &str) -> bool {
        self.report == report && self.input_filename == input_filename
    }
}

/// `pkg-1.0.tar.gz` → `pkg-1.0.sdist-box.json`.
pub fn report_file_name(input_filename: &str) -> String {
    format!(
        "{}.sdist-box.json",
        crate::names::sdist_stem(input_filename)
    )
}

fn describe_input(filename: &str, sha256: Option<&str>) -> String {
    let name = crate::text::one_line(filename, 200);
    match sha256 {
        Some(sha) => format!("`{name}` (sha256 {})", crate::text::one_line(sha, 64)),
        None => format!("`{name}`"),
    }
}

/// What one report in the directory says about the wheel it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The report's file name in the directory.
    pub report: String,
    pub input_filename: String,
    pub input_sha256: Option<String>,
    pub status: String,
    pub wheel: String,
    pub wheel_sha256: Option<String>,
    /// The report's project (`normalized_name`, `version`), when valid.
    pub release: Option<Release>,
}

impl Claim {
    fn describe(&self) -> String {
        format!(
            "{}, report `{}`",
            describe_input(&self.input_filename, self.input_sha256.as_deref()),
            crate::text::one_line(&self.report, 200)
        )
    }
}

#[derive(Deserialize)]
struct ReportHead {
    #[serde(default)]
    input: Option<InputHead>,
    #[serde(default)]
    outcome: Option<OutcomeHead>,
    #[serde(default)]
    wheel: Option<WheelHead>,
    #[serde(default)]
    project: Option<ProjectHead>,
}

#[derive(Deserialize)]
struct InputHead {
    filename: Option<String>,
    sha256: Option<String>,
}

#[derive(Deserialize)]
struct OutcomeHead {
    status: Option<String>,
}

#[derive(Deserialize)]
struct WheelHead {
    filename: Option<String>,
    sha256: Option<String>,
}

#[derive(Deserialize)]
struct ProjectHead {
    name: Option<String>,
    version: Option<String>,
}

/// The claim of the report at `path`, if it is a report that names a wheel
/// (a regular file: a link or a FIFO in its place is no report).
pub fn read_claim(path: &Path) -> Option<Claim> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut text = Vec::new();
    file.take(MAX_REPORT_BYTES).read_to_end(&mut text).ok()?;
    let head: ReportHead = serde_json::from_slice(&text).ok()?;
    let wheel = head.wheel?;
    let input = head.input?;
    let release = head.project.and_then(|p| {
        Some(Release {
            name: crate::names::Name::parse(&p.name?).ok()?,
            version: crate::names::Version::parse(&p.version?).ok()?,
        })
    });
    Some(Claim {
        report: path.file_name()?.to_string_lossy().into_owned(),
        input_filename: input.filename.unwrap_or_default(),
        input_sha256: input.sha256,
        status: head.outcome.and_then(|o| o.status).unwrap_or_default(),
        wheel: wheel.filename?,
        wheel_sha256: wheel.sha256,
        release,
    })
}

/// Every report in `dir` that names a wheel, sorted by report name.
pub fn claims(dir: &Path) -> Vec<Claim> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<Claim> = rd
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".sdist-box.json"))
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| read_claim(&e.path()))
        .collect();
    out.sort_by(|a, b| a.report.cmp(&b.report));
    out
}

/// Why a wheel was not placed.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum PlaceError {
    #[error(
        "the output directory already has `{existing}`, a wheel of {release} built from {owner}; this input {ours} builds the same project and version, so its wheel `{wheel}` was not placed there (use another output directory, or remove the other input's wheel and report first)"
    )]
    Collision {
        existing: String,
        release: String,
        owner: String,
        ours: String,
        wheel: String,
    },
    #[error("cannot place the wheel `{wheel}` in `{dir}`: {source}")]
    Io {
        wheel: String,
        dir: PathBuf,
        source: std::io::Error,
    },
}

/// Wheels this process placed, by directory and release: the input that
/// placed each and the file name, until its report is there to say so.
type Register = BTreeMap<(PathBuf, String, pep440_rs::Version), (Producer, String)>;

static PLACED: Mutex<Register> = Mutex::new(BTreeMap::new());

/// Who holds an existing wheel of the release being placed.
enum Holder {
    /// The input being placed (its own report names the wheel).
    Same,
    /// Another input: its description.
    Other(String),
    /// No report names it.
    Nobody,
}

/// Whether `place_wheel` would place `wheel` for `producer` in `dir` now
/// (the same checks, no rename): asked before the report that vouches for
/// the wheel is written, so a collision is refused with no report naming a
/// wheel that is not this input's.
pub fn may_place(dir: &Path, wheel: &WheelFilename, producer: &Producer) -> Result<(), PlaceError> {
    let placed = PLACED.lock().unwrap_or_else(|e| e.into_inner());
    check_place(&placed, dir, wheel, producer).map(drop)
}

/// The checks of [`place_wheel`]: the register key of the release and
/// whether the wheel replaces a file of its own name.
fn check_place(
    placed: &Register,
    dir: &Path,
    wheel: &WheelFilename,
    producer: &Producer,
) -> Result<((PathBuf, String, pep440_rs::Version), bool), PlaceError> {
    let canonical = std::fs::canonicalize(dir).map_err(|e| io_error(dir, wheel, e))?;
    let (name, version) = wheel.release.key();
    let key = (canonical, name, version);
    if let Some((other, file)) = placed.get(&key)
        && !producer.same_input(&other.report, &other.input_filename)
        && std::fs::symlink_metadata(dir.join(file)).is_ok()
    {
        return Err(collision(wheel, producer, file, other.describe()));
    }
    let mut replaces = false;
    for existing in same_release(dir, wheel).map_err(|e| io_error(dir, wheel, e))? {
        match holder(dir, &existing, producer) {
            Holder::Other(owner) => return Err(collision(wheel, producer, &existing, owner)),
            Holder::Same | Holder::Nobody => replaces |= existing == wheel.filename,
        }
    }
    Ok((key, replaces))
}

fn io_error(dir: &Path, wheel: &WheelFilename, source: std::io::Error) -> PlaceError {
    PlaceError::Io {
        wheel: wheel.filename.clone(),
        dir: dir.to_path_buf(),
        source,
    }
}

fn collision(
    wheel: &WheelFilename,
    producer: &Producer,
    existing: &str,
    owner: String,
) -> PlaceError {
    PlaceError::Collision {
        existing: crate::text::one_line(existing, 200),
        release: wheel.release.to_string(),
        owner,
        ours: producer.describe(),
        wheel: wheel.filename.clone(),
    }
}

/// Move `tmp` (the copied, checked wheel) to `dir/<wheel.filename>`,
/// unless that would replace or sit beside a wheel of the same release
/// that another input produced (see the module header).
pub fn place_wheel(
    tmp: tempfile::NamedTempFile,
    dir: &Path,
    wheel: &WheelFilename,
    producer: &Producer,
) -> Result<PathBuf, PlaceError> {
    // One placement at a time in this process: the check and the rename
    // must not interleave with another build's.
    let mut placed = PLACED.lock().unwrap_or_else(|e| e.into_inner());
    let (key, replaces) = check_place(&placed, dir, wheel, producer)?;
    let dest = dir.join(&wheel.filename);
    let persisted = match replaces {
        true => tmp.persist(&dest).map(drop),
        false => tmp.persist_noclobber(&dest).map(drop),
    };
    if let Err(e) = persisted {
        if e.error.kind() == std::io::ErrorKind::AlreadyExists {
            return Err(collision(
                wheel,
                producer,
                &wheel.filename,
                "another build while this one was being placed".into(),
            ));
        }
        return Err(io_error(dir, wheel, e.error));
    }
    placed.insert(key, (producer.clone(), wheel.filename.clone()));
    Ok(dest)
}

/// File names in `dir` of wheels of `wheel`'s release (its own name too).
fn same_release(dir: &Path, wheel: &WheelFilename) -> std::io::Result<Vec<String>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let name = e?.file_name().to_string_lossy().into_owned();
        if let Ok(other) = WheelFilename::parse(&name)
            && other.release.same(&wheel.release)
        {
            out.push(name);
        }
    }
    out.sort();
    Ok(out)
}

/// Which input's report names `existing`: the producer's own report slot
/// is asked first (the common case of a rebuild), every other only if not.
fn holder(dir: &Path, existing: &str, producer: &Producer) -> Holder {
    let own = read_claim(&dir.join(&producer.report)).filter(|c| c.wheel == existing);
    if let Some(c) = own {
        return match producer.same_input(&c.report, &c.input_filename) {
            true => Holder::Same,
            false => Holder::Other(c.describe()),
        };
    }
    match claims(dir).into_iter().find(|c| c.wheel == existing) {
        Some(c) => Holder::Other(c.describe()),
        None => Holder::Nobody,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn report(dir: &Path, input: &str, wheel: &str, sha: &str) {
        let doc = serde_json::json!({
            "input": {"filename": input, "sha256": format!("{input}-sha")},
            "outcome": {"status": "built"},
            "project": {"name": "good", "version": "1.0"},
            "wheel": {"filename": wheel, "sha256": sha},
        });
        std::fs::write(dir.join(report_file_name(input)), doc.to_string()).unwrap();
    }

    fn temp_wheel(dir: &Path, bytes: &[u8]) -> tempfile::NamedTempFile {
        let mut tmp = tempfile::Builder::new()
            .suffix(".whl.part")
            .tempfile_in(dir)
            .unwrap();
        tmp.write_all(bytes).unwrap();
        tmp
    }

    fn place(dir: &Path, wheel: &str, input: &str, bytes: &[u8]) -> Result<PathBuf, PlaceError> {
        place_wheel(
            temp_wheel(dir, bytes),
            dir,
            &WheelFilename::parse(wheel).unwrap(),
            &Producer::for_input(input, Some(format!("{input}-sha"))),
        )
    }

    #[test]
    fn another_inputs_wheel_of_the_release_is_never_replaced_or_joined() {
        let d = tempfile::tempdir().unwrap();
        let good = "good-1.0-py3-none-any.whl";
        place(d.path(), good, "good-1.0.tar.gz", b"GOOD").unwrap();
        report(d.path(), "good-1.0.tar.gz", good, "h");
        for (wheel, input) in [
            (good, "Good-1.0.tar.gz"),
            ("Good-1.0-py3-none-any.whl", "Good-1.0.tar.gz"),
            ("good-1.0-1-py3-none-any.whl", "good-1.0.zip"),
            (
                "good-1.0.0-cp311-cp311-linux_x86_64.whl",
                "good-1.0.0.tar.gz",
            ),
        ] {
            let err = place(d.path(), wheel, input, b"OTHER").unwrap_err();
            let msg = err.to_string();
            assert!(matches!(err, PlaceError::Collision { .. }), "{msg}");
            assert!(
                msg.contains("`good-1.0.tar.gz`") && msg.contains(input),
                "{msg}"
            );
            assert!(msg.contains(good) && msg.contains(wheel), "{msg}");
        }
        assert_eq!(std::fs::read(d.path().join(good)).unwrap(), b"GOOD");
        let wheels: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".whl"))
            .collect();
        assert_eq!(wheels.len(), 1, "no second wheel of good 1.0");
        // Another version is another release.
        place(
            d.path(),
            "good-1.1-py3-none-any.whl",
            "good-1.1.tar.gz",
            b"1.1",
        )
        .unwrap();
    }

    #[test]
    fn the_same_input_rebuilt_replaces_its_wheel_and_an_unclaimed_one_is_replaced() {
        let d = tempfile::tempdir().unwrap();
        let good = "good-1.0-py3-none-any.whl";
        place(d.path(), good, "good-1.0.tar.gz", b"FIRST").unwrap();
        report(d.path(), "good-1.0.tar.gz", good, "h");
        place(d.path(), good, "good-1.0.tar.gz", b"SECOND").unwrap();
        assert_eq!(std::fs::read(d.path().join(good)).unwrap(), b"SECOND");

        // No report names it (a run killed before its report), and no
        // build of this process placed it: replaced.
        let e = tempfile::tempdir().unwrap();
        std::fs::write(e.path().join("solo-2.0-py3-none-any.whl"), b"ORPHAN").unwrap();
        place(
            e.path(),
            "solo-2.0-py3-none-any.whl",
            "solo-2.0.tar.gz",
            b"NEW",
        )
        .unwrap();
        assert_eq!(
            std::fs::read(e.path().join("solo-2.0-py3-none-any.whl")).unwrap(),
            b"NEW"
        );
    }

    #[test]
    fn a_wheel_placed_but_not_yet_reported_counts_as_claimed() {
        let d = tempfile::tempdir().unwrap();
        let wheel = "race-1.0-py3-none-any.whl";
        place(d.path(), wheel, "race-1.0.tar.gz", b"FIRST").unwrap();
        // No report yet: the register says who placed it.
        let err = place(d.path(), wheel, "Race-1.0.zip", b"SECOND").unwrap_err();
        assert!(err.to_string().contains("race-1.0.tar.gz"), "{err}");
        assert_eq!(std::fs::read(d.path().join(wheel)).unwrap(), b"FIRST");
        // Its own input again is fine.
        place(d.path(), wheel, "race-1.0.tar.gz", b"AGAIN").unwrap();
    }

    #[test]
    fn claims_come_from_reports_that_name_a_wheel() {
        let d = tempfile::tempdir().unwrap();
        report(
            d.path(),
            "good-1.0.tar.gz",
            "good-1.0-py3-none-any.whl",
            "h",
        );
        std::fs::write(
            d.path().join("failed-1.0.sdist-box.json"),
            r#"{"input": {"filename": "failed-1.0.tar.gz"}, "outcome": {"status": "build-failed"}, "wheel": null}"#,
        )
        .unwrap();
        std::fs::write(d.path().join("junk.sdist-box.json"), b"{not json").unwrap();
        // Neither a link nor a FIFO is read (a FIFO would block).
        std::os::unix::fs::symlink(
            d.path().join("good-1.0.sdist-box.json"),
            d.path().join("link-1.0.sdist-box.json"),
        )
        .unwrap();
        nix::unistd::mkfifo(
            &d.path().join("fifo-1.0.sdist-box.json"),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        assert!(read_claim(&d.path().join("fifo-1.0.sdist-box.json")).is_none());
        assert!(read_claim(&d.path().join("link-1.0.sdist-box.json")).is_none());
        let c = claims(d.path());
        assert_eq!(c.len(), 1, "{c:?}");
        assert_eq!(c[0].report, "good-1.0.sdist-box.json");
        assert_eq!(c[0].wheel, "good-1.0-py3-none-any.whl");
        assert_eq!(c[0].release.as_ref().unwrap().to_string(), "good 1.0");
    }
}
