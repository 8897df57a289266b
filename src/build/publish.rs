//! Publishing one build's outputs in its output directory, in an order
//! that survives a crash at any point:
//!
//! 1. at the start, `*.whl.part` files of dead writers are swept, the old
//!    report's claim is remembered and room for the report is reserved
//!    (`<stem>.sdist-box.json.reserve`, `posix_fallocate`d), so a nearly
//!    full disk still takes the report;
//! 2. copy-out writes the wheel to a `.whl.part` file in the directory,
//!    holding an `flock` on it while it lives (so a sweep can tell a live
//!    writer's part from a dead one's), and fsyncs it;
//! 3. the reserve is freed and the final report (status, wheel file name
//!    and sha256) is written atomically (fsync, directory fsync);
//! 4. only then is the part renamed to the wheel's name, by
//!    [`outputs::place_wheel`]'s rules (directory fsync).
//!
//! Invariant: every wheel in the directory either has a report of its
//! input that names it with its hash, or is a `.part` / unvouched file that
//! `build-all`'s resume and `index` ignore. A build that ends without a
//! wheel retires the wheel its input's old report named (after its own
//! report no longer vouches for it), so `index` cannot keep publishing it.

use std::fs;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context;
use nix::fcntl::{Flock, FlockArg};

use super::failure;
use crate::files::{sync_dir, write_durable};
use crate::names::WheelFilename;
use crate::outputs::{self, Claim, PlaceError, Producer};
use crate::report::{BuildReport, Outcome, Status};

/// Room kept for the report while the build fills the directory: reports
/// are tens of KiB, the package's text in them is bounded well below this.
pub(super) const RESERVE_BYTES: i64 = 4 << 20;

/// A wheel copied out and checked, not yet under its name: its part file
/// (locked) and what placing it needs.
pub(super) struct Staged {
    pub(super) part: PartWheel,
    pub(super) wheel: WheelFilename,
    pub(super) producer: Producer,
}

/// A `.sdist-box-*.whl.part` file in the output directory, locked (`flock`)
/// for as long as this value lives.
pub(super) struct PartWheel {
    tmp: tempfile::NamedTempFile,
    _lock: Flock<fs::File>,
}

impl PartWheel {
    /// A new, locked part file in `dir`. A sweep may take the lock between
    /// the file's creation and ours and remove it: the file is then no
    /// longer at its path, and another is made.
    pub(super) fn create(dir: &Path) -> std::io::Result<PartWheel> {
        let mut last = None;
        for _ in 0..8 {
            let tmp = tempfile::Builder::new()
                .prefix(".sdist-box-")
                .suffix(".whl.part")
                .tempfile_in(dir)?;
            let lock = match tmp.reopen() {
                Ok(f) => Flock::lock(f, FlockArg::LockExclusive).map_err(|(_, e)| e)?,
                Err(e) => {
                    last = Some(e);
                    continue;
                }
            };
            let here = tmp.as_file().metadata()?;
            let still = fs::symlink_metadata(tmp.path())
                .is_ok_and(|m| (m.dev(), m.ino()) == (here.dev(), here.ino()));
            if still {
                return Ok(PartWheel { tmp, _lock: lock });
            }
        }
        Err(last.unwrap_or_else(|| std::io::Error::other("part files kept being swept")))
    }

    pub(super) fn file(&mut self) -> &mut fs::File {
        self.tmp.as_file_mut()
    }

    pub(super) fn path(&self) -> &Path {
        self.tmp.path()
    }
}

/// Remove the `*.whl.part` files in `dir` whose writer is gone (their lock
/// can be taken). Best effort: a part it cannot look at stays.
pub fn sweep_parts(dir: &Path) {
    let Ok(rd) = fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let is_part = e.file_name().to_string_lossy().ends_with(".whl.part")
            && e.file_type().is_ok_and(|t| t.is_file());
        if !is_part {
            continue;
        }
        let path = e.path();
        let Ok(file) = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&path)
        else {
            continue;
        };
        let Ok(locked) = Flock::lock(file, FlockArg::LockExclusiveNonblock) else {
            continue;
        };
        // The one we locked, still at its path: its writer is dead.
        let same = match (locked.metadata(), fs::symlink_metadata(&path)) {
            (Ok(a), Ok(b)) => (a.dev(), a.ino()) == (b.dev(), b.ino()),
            _ => false,
        };
        if same {
            let _ = fs::remove_file(&path);
        }
    }
}

/// A build's output directory from the build's start: the report slot,
/// the reserve, and the claim the slot's old report made.
pub(super) struct Outbox {
    dir: PathBuf,
    report_path: PathBuf,
    reserve: Option<PathBuf>,
    old: Option<Claim>,
}

impl Outbox {
    /// Create the directory, sweep dead parts and read the old claim.
    pub(super) fn open(dir: &Path, input_filename: &str) -> anyhow::Result<Outbox> {
        fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the output directory `{}`", dir.display()))?;
        sweep_parts(dir);
        let producer = Producer::for_input(input_filename, None);
        let report_path = dir.join(&producer.report);
        let old = outputs::read_claim(&report_path)
            .filter(|c| producer.same_input(&c.report, &c.input_filename));
        Ok(Outbox {
            dir: dir.to_path_buf(),
            report_path,
            reserve: None,
            old,
        })
    }

    /// Reserve room for the report; an error when the disk has none.
    pub(super) fn reserve(&mut self) -> anyhow::Result<()> {
        self.reserve = reserve(&self.report_path)?;
        Ok(())
    }

    /// Publish the report (and the staged wheel, when the build gave one)
    /// in the order of the module header. A failure to publish becomes the
    /// report's outcome (`error`, or `refused` for a collision).
    pub(super) fn publish(mut self, report: &mut BuildReport, staged: Option<Staged>) {
        self.release_reserve();
        let staged = staged.filter(|_| report.outcome.status == Status::Built);
        let Some(staged) = staged else {
            report.wheel = None;
            if let Err(e) = write_durable(&self.report_path, &report.to_json()) {
                fail(report, Status::Error, &e);
            }
            self.retire_old(None);
            return;
        };
        if let Err(e) = write_durable(&self.report_path, &report.to_json()) {
            fail(report, Status::Error, &e);
            drop(staged);
            let _ = write_durable(&self.report_path, &report.to_json());
            self.retire_old(None);
            return;
        }
        let Staged {
            part,
            wheel,
            producer,
        } = staged;
        let placed =
            outputs::place_wheel(part.tmp, &self.dir, &wheel, &producer).and_then(|dest| {
                sync_dir(&self.dir).map_err(|source| PlaceError::Io {
                    wheel: wheel.filename.clone(),
                    dir: self.dir.clone(),
                    source,
                })?;
                Ok(dest)
            });
        drop(part._lock);
        match placed {
            Ok(_) => self.retire_old(Some(&wheel.filename)),
            Err(e) => {
                let status = match e {
                    PlaceError::Collision { .. } => Status::Refused,
                    _ => Status::Error,
                };
                fail(report, status, &e.into());
                let _ = write_durable(&self.report_path, &report.to_json());
                self.retire_old(None);
            }
        }
    }

    fn release_reserve(&mut self) {
        if let Some(p) = self.reserve.take() {
            let _ = fs::remove_file(p);
        }
    }

    /// Remove the wheel the slot's old report (this input's) named, unless
    /// it is `keep` or no longer the file that report vouched for.
    fn retire_old(&self, keep: Option<&str>) {
        let Some(old) = &self.old else {
            return;
        };
        if keep == Some(old.wheel.as_str()) || WheelFilename::parse(&old.wheel).is_err() {
            return;
        }
        let path = self.dir.join(&old.wheel);
        let vouched = crate::archive::sha256_file(&path)
            .ok()
            .is_some_and(|sha| old.wheel_sha256.as_deref() == Some(sha.as_str()));
        if vouched && fs::remove_file(&path).is_ok() {
            let _ = sync_dir(&self.dir);
            tracing::info!(
                "removed `{}`, the wheel of this input's earlier build",
                crate::text::one_line(&old.wheel, 200)
            );
        }
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        self.release_reserve();
    }
}

/// Write the report of a build whose outputs are already published again
/// (`--check-reproducible` adds its comparison): same wheel, same hash.
pub(super) fn rewrite_report(dir: &Path, report: &mut BuildReport) {
    let path = dir.join(outputs::report_file_name(&report.input.filename));
    if let Err(e) = write_durable(&path, &report.to_json()) {
        fail(report, Status::Error, &e);
    }
}

fn fail(report: &mut BuildReport, status: Status, e: &anyhow::Error) {
    let reason = format!("{e:#}");
    tracing::error!("{reason}");
    report.outcome = Outcome {
        status,
        reason: Some(reason),
        limit_hit: None,
    };
    report.wheel = None;
}

/// Reserve [`RESERVE_BYTES`] beside the report. `None` where the file
/// system cannot preallocate (the report then takes its chances); an error
/// when it has no room.
fn reserve(report_path: &Path) -> anyhow::Result<Option<PathBuf>> {
    let mut name = report_path.as_os_str().to_owned();
    name.push(".reserve");
    let path = PathBuf::from(name);
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .with_context(|| format!("cannot reserve room for the report: `{}`", path.display()))?;
    match nix::fcntl::posix_fallocate(&file, 0, RESERVE_BYTES) {
        Ok(()) => Ok(Some(path)),
        Err(errno @ (nix::errno::Errno::ENOSPC | nix::errno::Errno::EDQUOT)) => {
            let _ = fs::remove_file(&path);
            Err(std::io::Error::from(errno)).with_context(|| {
                format!(
                    "no room for the report in `{}`",
                    report_path.parent().unwrap_or(Path::new(".")).display()
                )
            })
        }
        Err(_) => {
            let _ = fs::remove_file(&path);
            Ok(None)
        }
    }
}

/// The status a failure ends with: a host-side I/O fault (a full disk, a
/// read-only or failing file system) is an `error`, whichever stage met it
/// (but a limit the profile sets, met, stays what its stage made it).
pub(super) fn host_status(f: &failure::Failure) -> Status {
    match f.status {
        Status::BuildFailed | Status::Refused | Status::SandboxUnavailable
            if f.limit_hit.is_none() && failure::host_fault(&f.error).is_some() =>
        {
            Status::Error
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const WHEEL: &str = "good-1.0-py3-none-any.whl";

    fn report_naming(dir: &Path, sha: &str) {
        let doc = serde_json::json!({
            "input": {"filename": "good-1.0.tar.gz", "sha256": "input-sha"},
            "outcome": {"status": "built"},
            "profile": {"name": "default"},
            "project": {"name": "good", "version": "1.0"},
            "wheel": {"filename": WHEEL, "sha256": sha},
        });
        write_durable(&dir.join("good-1.0.sdist-box.json"), &doc.to_string()).unwrap();
    }

    fn staged_part(dir: &Path, bytes: &[u8]) -> PartWheel {
        let mut part = PartWheel::create(dir).unwrap();
        part.file().write_all(bytes).unwrap();
        part.file().sync_all().unwrap();
        part
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    /// Killed after step 3 (the report) and before step 4 (the rename):
    /// the report names a wheel that is not there; `index` lists nothing,
    /// resume builds again, and the next build's sweep removes the part.
    #[test]
    fn a_crash_between_report_and_rename_publishes_nothing() {
        let d = tempfile::tempdir().unwrap();
        let part = staged_part(d.path(), b"WHEEL BYTES");
        let sha = crate::archive::sha256_file(part.path()).unwrap();
        report_naming(d.path(), &sha);
        // The crash: the process is gone, its part file stays, unlocked.
        let PartWheel { tmp, _lock } = part;
        drop(_lock);
        let left = tmp.into_temp_path().keep().unwrap();
        assert!(left.to_string_lossy().ends_with(".whl.part"));

        let scan = crate::index::scan(d.path(), false).unwrap();
        assert!(scan.projects.is_empty() && scan.skipped.is_empty());
        let resumed = crate::batch::finished_report(d.path(), "good-1.0", "input-sha", "default");
        assert!(resumed.is_none(), "resume must build again");

        sweep_parts(d.path());
        assert_eq!(names(d.path()), vec!["good-1.0.sdist-box.json"]);
    }

    /// The same order run to its end: once renamed, the wheel is vouched
    /// for and resume skips it.
    #[test]
    fn after_the_rename_the_wheel_is_vouched_for() {
        let d = tempfile::tempdir().unwrap();
        let part = staged_part(d.path(), b"WHEEL BYTES");
        let sha = crate::archive::sha256_file(part.path()).unwrap();
        report_naming(d.path(), &sha);
        let wheel = WheelFilename::parse(WHEEL).unwrap();
        let producer = Producer::for_input("good-1.0.tar.gz", Some("input-sha".into()));
        outputs::place_wheel(part.tmp, d.path(), &wheel, &producer).unwrap();
        let scan = crate::index::scan(d.path(), false).unwrap();
        let listed = &scan.projects["good"];
        assert_eq!(listed[0].report.as_deref(), Some("good-1.0.sdist-box.json"));
        let resumed = crate::batch::finished_report(d.path(), "good-1.0", "input-sha", "default");
        assert!(resumed.is_some());
    }

    #[test]
    fn a_live_writers_part_is_not_swept_a_dead_ones_is() {
        let d = tempfile::tempdir().unwrap();
        let live = staged_part(d.path(), b"being written");
        let dead = staged_part(d.path(), b"abandoned");
        let PartWheel { tmp, _lock } = dead;
        drop(_lock);
        let dead_path = tmp.into_temp_path().keep().unwrap();
        sweep_parts(d.path());
        assert!(live.path().exists(), "a live writer's part was swept");
        assert!(!dead_path.exists(), "a dead writer's part was kept");
    }

    #[test]
    fn the_reserve_holds_room_and_goes() {
        let d = tempfile::tempdir().unwrap();
        let report = d.path().join("x-1.sdist-box.json");
        let Some(path) = reserve(&report).unwrap() else {
            eprintln!("skipped: this file system cannot preallocate");
            return;
        };
        let meta = fs::metadata(&path).unwrap();
        assert_eq!(meta.len(), RESERVE_BYTES as u64);
        assert!(meta.blocks() * 512 >= RESERVE_BYTES as u64);
        fs::remove_file(path).unwrap();
    }

    #[test]
    fn a_full_disk_is_an_error_not_the_packages_failure() {
        let full = std::io::Error::from_raw_os_error(libc::ENOSPC);
        let e = anyhow::Error::new(full).context("cannot copy the wheel `w` into `/out`");
        assert!(format!("{e:#}").contains("No space left on device"));
        let status = |s, e| host_status(&failure::Failure::new(s, e));
        assert_eq!(status(Status::BuildFailed, e), Status::Error);
        let quota = std::io::Error::from_raw_os_error(libc::EDQUOT);
        let archive = anyhow::Error::new(crate::archive::ArchiveError::Io(quota));
        assert_eq!(status(Status::Refused, archive), Status::Error);
        let other = || anyhow::Error::new(std::io::Error::from_raw_os_error(libc::ENOENT));
        assert_eq!(status(Status::BuildFailed, other()), Status::BuildFailed);
        assert_eq!(status(Status::Refused, other()), Status::Refused);
        // A limit met (the build tree's own size) is not the host's fault.
        let enospc = std::io::Error::from_raw_os_error(libc::ENOSPC);
        let tree = crate::archive::ArchiveError::Io(enospc);
        let f = failure::input_or_host(tree, Path::new("/w"), Some(1 << 20));
        assert_eq!(f.status, Status::Refused);
        assert_eq!(host_status(&f), Status::Refused);
    }
}
