//! Fetching sdists named by a lock file: from pinned requirements or a
//! PEP 751 `pylock.toml` to verified files in a content-addressed cache.
//!
//! Layout, in the order data flows:
//! - [`requirements`], [`pylock`]: the two lock formats, parsed into one
//!   model ([`lock`]); [`lock::select`] decides per entry, for the
//!   [`target`] interpreter's markers, what to fetch, skip or refuse;
//! - [`names`]: names, versions and sdist file names as installers compare
//!   them.
//!
//! Invariants of the whole module:
//! - nothing fetched is ever executed, imported or unpacked here: files are
//!   bytes to hash; the only process started is the target interpreter
//!   answering a fixed stdlib-only probe ([`target`]);
//! - this is library code: it returns typed data and errors and knows
//!   nothing of the command line.

pub mod config;
pub mod location;
pub mod lock;
pub mod names;
pub mod netrc;
pub mod pylock;
pub mod requirements;
pub mod target;
