//! What one build is asked to do ([`BuildRequest`]), and where it keeps
//! things in its work and output directories.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::ValueEnum;

use crate::archive::Limits as ArchiveLimits;
use crate::buildenv::IndexOptions;
use crate::policy::Profile;
use crate::stages::EventSink;

/// The event streams a build runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Streams {
    /// The kernel stream (seccomp notifications) and the Python stream (audit hook).
    All,
    /// Only the kernel stream.
    Kernel,
    /// Only the Python stream.
    Python,
    /// Neither.
    None,
}

/// Everything one build needs, resolved from the command line (or from
/// `api::Build`).
#[derive(Clone)]
pub struct BuildRequest {
    pub sdist: PathBuf,
    pub out_dir: PathBuf,
    pub profile: Profile,
    pub python: Option<OsString>,
    pub sha256: Option<String>,
    pub index: IndexOptions,
    pub cache_dir: PathBuf,
    pub work_parent: Option<PathBuf>,
    pub keep_work: bool,
    pub prepare_metadata: bool,
    pub archive_limits: ArchiveLimits,
    /// Copy the build's output to stderr as it happens.
    pub echo: bool,
    /// When a hook fails, print the last lines of its output on stderr
    /// (`build-all` turns this off: its progress and table say it).
    pub print_failure_tail: bool,
    /// Notify the open family too (costly; see the benchmark).
    pub trace_files: bool,
    pub streams: Streams,
    /// Where stage events go (`--events`).
    pub events: Option<EventSink>,
    /// The user's command run before any package code (`--pre-build`).
    pub pre_build: Option<String>,
    pub pre_build_timeout: Duration,
    /// For `build-all`: the input list entry this sdist came from.
    pub input_entry: Option<String>,
    /// sdist-box's executable to run as the sandbox's init (default: this
    /// process's own executable).
    pub init_exe: Option<PathBuf>,
    /// `--ask`: put connects and execs the rules would refuse to the person
    /// at sdist-box's terminal, waiting this long for each answer.
    pub ask: Option<Duration>,
}

/// Where a `metadata` run leaves the `.dist-info` for `build_wheel`: inside
/// the output directory, the one directory both runs may write.
pub(super) const METADATA_SUBDIR: &str = ".sdist-box-metadata";

/// Where the sdist as shipped is extracted, in the work directory.
pub(super) const SHIPPED_DIR: &str = "sdist-as-shipped";

/// Reports, summaries and events are JSON, which names a path exactly only
/// when it is UTF-8: a path that is not is refused (the user renames it),
/// never written down under a name it does not have. `None`: usable.
pub fn not_utf8(what: &str, path: &Path) -> Option<String> {
    path.to_str().is_none().then(|| {
        format!(
            "{what} `{}` is not UTF-8: reports name their inputs and outputs exactly, in JSON; rename it",
            crate::text::path(path)
        )
    })
}
