//! Limits on what an archive may unpack to, and the running account kept
//! against them while extracting.
//!
//! Invariant: every byte is counted *before* it is written, so a limit is
//! never exceeded on disk, and counts are of bytes actually produced by the
//! decompressor or written to disk, never of sizes that headers claim.

use std::cell::Cell;
use std::io::{self, Read};
use std::path::Path;
use std::rc::Rc;

use super::{ArchiveError, LimitExceeded};

/// Archives smaller than this are treated as if they had this size when the
/// compression ratio is checked: a 2 KiB sdist holding a 600 KiB file is
/// normal, and ratios of tiny archives say little.
pub const RATIO_FLOOR_BYTES: u64 = 64 * 1024;

/// What one archive may unpack to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Limits {
    /// Entries of any kind (files, directories, links).
    pub max_entries: u64,
    /// Bytes written to disk, all files together.
    pub max_total_bytes: u64,
    /// Bytes written for any one file.
    pub max_file_bytes: u64,
    /// Unpacked bytes per byte of archive on disk (see [`RATIO_FLOOR_BYTES`]).
    pub max_ratio: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_entries: 20_000,
            max_total_bytes: 2 << 30,
            max_file_bytes: 512 << 20,
            max_ratio: 250,
        }
    }
}

/// The running account of one extraction.
pub(crate) struct Budget<'a> {
    limits: &'a Limits,
    archive: &'a Path,
    archive_len: u64,
    entries: u64,
    written: u64,
}

impl<'a> Budget<'a> {
    pub(crate) fn new(limits: &'a Limits, archive: &'a Path, archive_len: u64) -> Self {
        Budget {
            limits,
            archive,
            archive_len,
            entries: 0,
            written: 0,
        }
    }

    pub(crate) fn limits(&self) -> &Limits {
        self.limits
    }

    pub(crate) fn entries(&self) -> u64 {
        self.entries
    }

    pub(crate) fn written(&self) -> u64 {
        self.written
    }

    /// Unpacked bytes allowed by the ratio limit.
    pub(crate) fn ratio_cap(&self) -> u64 {
        self.limits
            .max_ratio
            .saturating_mul(self.archive_len.max(RATIO_FLOOR_BYTES))
    }

    fn exceeded(&self, what: LimitExceeded) -> ArchiveError {
        ArchiveError::Limit {
            archive: self.archive.to_path_buf(),
            exceeded: what,
        }
    }

    fn ratio_limit(&self) -> LimitExceeded {
        LimitExceeded::Ratio {
            limit: self.limits.max_ratio,
            archive_bytes: self.archive_len,
        }
    }

    fn ratio_exceeded(&self) -> ArchiveError {
        self.exceeded(self.ratio_limit())
    }

    fn total_exceeded(&self) -> ArchiveError {
        self.exceeded(LimitExceeded::TotalBytes {
            limit: self.limits.max_total_bytes,
        })
    }

    /// Count one more entry.
    pub(crate) fn add_entry(&mut self) -> Result<(), ArchiveError> {
        self.entries += 1;
        if self.entries > self.limits.max_entries {
            return Err(self.exceeded(LimitExceeded::Entries {
                limit: self.limits.max_entries,
            }));
        }
        Ok(())
    }

    /// Count `n` bytes about to be written; refuses before they are.
    pub(crate) fn add_written(&mut self, n: u64) -> Result<(), ArchiveError> {
        let next = self.written.saturating_add(n);
        if next > self.limits.max_total_bytes {
            return Err(self.total_exceeded());
        }
        if next > self.ratio_cap() {
            return Err(self.ratio_exceeded());
        }
        self.written = next;
        Ok(())
    }

    /// Check sizes declared up front (a zip's central directory): a claim
    /// over a limit is refused before anything is decompressed. Claims under
    /// the limits prove nothing; written bytes are still counted.
    pub(crate) fn check_declared_total(&self, declared: u64) -> Result<(), ArchiveError> {
        if declared > self.limits.max_total_bytes {
            return Err(self.total_exceeded());
        }
        if declared > self.ratio_cap() {
            return Err(self.ratio_exceeded());
        }
        Ok(())
    }

    /// How many decompressed bytes the archive stream may produce. The
    /// stream holds more than file data (tar headers, padding, long names,
    /// pax records, data of entries that are skipped), so this is the
    /// written-bytes cap plus room for that overhead; it bounds what the tar
    /// reader buffers in memory and stops a bomb hidden outside file data.
    pub(crate) fn stream_cap(&self) -> u64 {
        let overhead = self
            .limits
            .max_entries
            .saturating_mul(1024)
            .saturating_add(1 << 20);
        self.limits
            .max_total_bytes
            .min(self.ratio_cap())
            .saturating_add(overhead)
    }

    /// Which limit the stream went over when it passed [`Self::stream_cap`].
    pub(crate) fn stream_limit(&self) -> LimitExceeded {
        if self.ratio_cap() <= self.limits.max_total_bytes {
            self.ratio_limit()
        } else {
            LimitExceeded::TotalBytes {
                limit: self.limits.max_total_bytes,
            }
        }
    }
}

/// Counts the bytes a decompressor produces and fails once they pass a cap.
/// The count is shared so that the extractor can tell a limit from
/// corruption when the tar reader hands back an opaque I/O error.
pub(crate) struct Meter<R> {
    inner: R,
    count: Rc<Cell<u64>>,
    cap: u64,
}

impl<R> Meter<R> {
    pub(crate) fn new(inner: R, cap: u64) -> (Self, Rc<Cell<u64>>) {
        let count = Rc::new(Cell::new(0));
        (
            Meter {
                inner,
                count: Rc::clone(&count),
                cap,
            },
            count,
        )
    }
}

impl<R: Read> Read for Meter<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let room = self.cap.saturating_sub(self.count.get());
        if room == 0 {
            // Set the count past the cap so the caller can see why.
            self.count.set(self.cap.saturating_add(1));
            return Err(io::Error::other("archive stream exceeds the unpack limit"));
        }
        let want = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_limits_are_the_documented_ones() {
        let l = Limits::default();
        assert_eq!(l.max_entries, 20_000);
        assert_eq!(l.max_total_bytes, 2 * 1024 * 1024 * 1024);
        assert_eq!(l.max_file_bytes, 512 * 1024 * 1024);
        assert_eq!(l.max_ratio, 250);
    }

    #[test]
    fn tiny_archives_get_the_ratio_floor() {
        let l = Limits::default();
        let b = Budget::new(&l, Path::new("x"), 100);
        assert_eq!(b.ratio_cap(), 250 * RATIO_FLOOR_BYTES);
        let b = Budget::new(&l, Path::new("x"), 1 << 20);
        assert_eq!(b.ratio_cap(), 250 << 20);
    }

    #[test]
    fn written_bytes_are_refused_before_they_pass_a_limit() {
        let l = Limits {
            max_total_bytes: 10,
            ..Limits::default()
        };
        let mut b = Budget::new(&l, Path::new("x"), 100);
        b.add_written(10).unwrap();
        let err = b.add_written(1).unwrap_err();
        assert!(matches!(
            err,
            ArchiveError::Limit {
                exceeded: LimitExceeded::TotalBytes { limit: 10 },
                ..
            }
        ));
        assert_eq!(b.written(), 10);
    }

    #[test]
    fn meter_stops_at_its_cap() {
        let data = [7u8; 100];
        let (mut m, count) = Meter::new(&data[..], 30);
        let mut out = Vec::new();
        let err = m.read_to_end(&mut out).unwrap_err();
        assert_eq!(out.len(), 30);
        assert!(count.get() > 30, "count shows the cap was hit");
        assert!(err.to_string().contains("unpack limit"));
    }
}
