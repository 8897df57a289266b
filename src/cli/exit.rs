//! Exit codes, distinct per outcome (also in `sdist-box --help`), and the
//! one place where outcomes become them.

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
