//! Exit codes, distinct per outcome (also in `sdist-box --help`), and the
//! one place where outcomes become them.

use crate::batch::{EntryResult, EntryStatus};
use crate::report::{BuildReport, FailOn, Status};
use crate::sandbox;

/// Built (or ran) and nothing to report per `--fail-on`.
pub const OK: u8 = 0;
/// Built, but the report has findings that `--fail-on` fails on.
pub const FINDINGS: u8 = 1;
/// The command line was wrong.
pub const USAGE: u8 = 2;
/// The package's build (or the command) failed.
pub const BUILD_FAILED: u8 = 3;
/// The sandbox could not be set up as the profile requires.
pub const SANDBOX_UNAVAILABLE: u8 = 4;
/// The input was refused before anything ran (hash, hostile archive,
/// unreadable metadata).
pub const INPUT_REFUSED: u8 = 5;
/// Anything else went wrong (I/O, build requirements not installable).
pub const ERROR: u8 = 6;

/// The exit code of a finished report.
pub fn exit_code(report: &BuildReport, fail_on: FailOn) -> u8 {
    match report.outcome.status {
        Status::Built | Status::Ran if fail_on.matches(&report.findings) => FINDINGS,
        Status::Built | Status::Ran => OK,
        Status::BuildFailed => BUILD_FAILED,
        Status::Refused => INPUT_REFUSED,
        Status::SandboxUnavailable => SANDBOX_UNAVAILABLE,
        Status::Error => ERROR,
    }
}

/// Map an error chain to the exit code of its outcome.
pub fn exit_code_for(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if cause.downcast_ref::<sandbox::SandboxError>().is_some() {
            return SANDBOX_UNAVAILABLE;
        }
        if cause
            .downcast_ref::<crate::archive::ArchiveError>()
            .is_some()
            || cause
                .downcast_ref::<crate::project::ProjectError>()
                .is_some()
        {
            return INPUT_REFUSED;
        }
        if cause
            .downcast_ref::<crate::policy::ProfileError>()
            .is_some()
        {
            return USAGE;
        }
    }
    ERROR
}

/// The exit code of one `build-all` entry.
pub fn for_entry(entry: &EntryResult) -> u8 {
    match entry.status {
        EntryStatus::Built | EntryStatus::Skipped if entry.fails_on => FINDINGS,
        EntryStatus::Built | EntryStatus::Skipped => OK,
        EntryStatus::BuildFailed => BUILD_FAILED,
        EntryStatus::Refused => INPUT_REFUSED,
        EntryStatus::SandboxUnavailable => SANDBOX_UNAVAILABLE,
        EntryStatus::Error => ERROR,
    }
}

/// The exit code of a `build-all` run: its entries' worst.
pub fn for_entries(entries: &[&EntryResult]) -> u8 {
    worst_exit(entries.iter().map(|e| for_entry(e)))
}

/// How bad an exit code is, for "the worst outcome wins" (see `build-all --help`).
pub fn severity_rank(code: u8) -> u8 {
    match code {
        OK => 0,
        FINDINGS => 1,
        BUILD_FAILED => 2,
        INPUT_REFUSED => 3,
        ERROR => 4,
        SANDBOX_UNAVAILABLE => 5,
        _ => 4,
    }
}

/// The worst of a run's exit codes.
pub fn worst_exit(codes: impl IntoIterator<Item = u8>) -> u8 {
    codes
        .into_iter()
        .max_by_key(|c| severity_rank(*c))
        .unwrap_or(OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    mod exit {
        pub use super::super::*;
    }

    #[test]
    fn the_worst_outcome_decides_the_exit_code() {
        assert_eq!(worst_exit([]), exit::OK);
        assert_eq!(worst_exit([exit::OK, exit::FINDINGS]), exit::FINDINGS);
        assert_eq!(
            worst_exit([exit::FINDINGS, exit::BUILD_FAILED, exit::OK]),
            exit::BUILD_FAILED
        );
        assert_eq!(
            worst_exit([exit::BUILD_FAILED, exit::INPUT_REFUSED]),
            exit::INPUT_REFUSED
        );
        assert_eq!(worst_exit([exit::INPUT_REFUSED, exit::ERROR]), exit::ERROR);
        assert_eq!(
            worst_exit([exit::ERROR, exit::SANDBOX_UNAVAILABLE, exit::OK]),
            exit::SANDBOX_UNAVAILABLE
        );
    }
}
