//! Fetching sdists named by a lock file: from pinned requirements or a
//! PEP 751 `pylock.toml` to verified files in a content-addressed cache,
//! and the pieces `--with-deps` needs to build a dependency closure.
//!
//! Layout, in the order data flows:
//! - [`requirements`], [`pylock`]: the two lock formats, parsed into one
//!   model ([`lock`]); [`lock::select`] decides per entry, for the
//!   [`target`] interpreter's markers, what to fetch, skip or refuse;
//! - [`config`]: which indexes, found as pip finds them (plus [`netrc`]);
//!   [`location`]: URLs whose credentials are kept apart and scoped;
//! - [`http`]: the client (TLS, timeouts, retries, caps, redirects);
//!   [`simple`]: PEP 691/503 project pages and find-links directories;
//! - [`fetcher`]: one pin to one verified file in the [`cache`], reported
//!   through [`progress`];
//! - [`metadata`], [`closure`]: a built wheel's `Requires-Dist` for the
//!   target, and the closure planner that takes versions only from the lock;
//! - [`names`]: names, versions and sdist file names as installers compare
//!   them.
//!
//! Invariants of the whole module:
//! - nothing fetched is ever executed, imported or unpacked here: files are
//!   bytes to hash; the only process started is the target interpreter
//!   answering fixed stdlib-only probes ([`target`], the default index in
//!   [`config`]);
//! - a file is handed out only after its sha256 matched a pin (or, for an
//!   entry the caller allowed unpinned, is recorded as unpinned);
//! - no credential appears in any message or record (see [`location`]);
//! - this is library code: it returns typed data and errors and knows
//!   nothing of the command line.

pub mod cache;
pub mod closure;
pub mod config;
pub mod fetcher;
pub mod http;
pub mod location;
pub mod lock;
pub mod metadata;
pub mod names;
pub mod netrc;
pub mod progress;
pub mod pylock;
pub mod requirements;
pub mod simple;
pub mod target;

use std::path::Path;

/// Read a lock file, its format told by its name: `pylock.toml` and
/// `pylock.NAME.toml` are PEP 751, anything else a requirements file.
pub fn read_lock(
    path: &Path,
    var: &dyn Fn(&str) -> Option<String>,
) -> Result<lock::LockFile, lock::LockError> {
    if pylock::is_pylock_name(path) {
        pylock::read_pylock(path)
    } else {
        requirements::read_requirements(path, var)
    }
}
