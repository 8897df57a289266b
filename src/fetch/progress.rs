//! What fetching reports as it goes, and where each sdist came from.
//!
//! The caller gives a [`Progress`] (the CLI will draw a TTY bar or print
//! plain lines; tests record); the fetcher calls it from whichever thread
//! fetches, so implementations are `Send + Sync`. [`Provenance`] is the
//! record kept per entry for the summary and `build-all.json`: its URLs
//! never carry credentials.

use serde::Serialize;

/// How an entry's sdist was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// Downloaded now.
    Fetched,
    /// Already in the cache under its hash (hashed again).
    Cached,
    /// Copied from a local path (a lock file's `path`, a find-links dir).
    Local,
}

/// Where one entry's sdist came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Provenance {
    /// The lock file entry (`FILE:LINE`).
    pub entry: String,
    pub name: String,
    pub version: Option<String>,
    pub filename: String,
    /// Where the bytes came from (credentials never included; for a cache
    /// hit, where they had been found is not known: the cache path).
    pub url: String,
    /// The page the file was listed on, if it was found through one.
    pub index: Option<String>,
    pub sha256: String,
    pub size: u64,
    pub source: Source,
    /// False when fetched without a hash pin (allowed by the caller).
    pub pinned: bool,
    /// The yank reason, when a yanked file was allowed.
    pub yanked: Option<String>,
}

/// Callbacks for progress; every method has a default that does nothing.
pub trait Progress: Send + Sync {
    /// A download starts (`total` when the size is known beforehand).
    fn started(&self, _entry: &str, _filename: &str, _total: Option<u64>) {}
    /// `n` more bytes of the entry's download arrived.
    fn bytes(&self, _entry: &str, _n: u64) {}
    /// The entry is done: `Ok` with where it came from, or the reason.
    fn finished(&self, _entry: &str, _outcome: Result<&Provenance, &str>) {}
}

/// Reports nothing.
pub struct NoProgress;

impl Progress for NoProgress {}
