//! A failure that ends a build before a wheel exists, classified by the
//! report's status.

use crate::buildenv;
use crate::report::{LimitHit, Status};
use crate::sandbox::SandboxError;

/// A failure that ends the build before a wheel exists, classified so the
/// report and the exit code can say which kind it was.
#[derive(Debug)]
pub(super) struct Failure {
    pub(super) status: Status,
    pub(super) error: anyhow::Error,
    pub(super) limit_hit: Option<LimitHit>,
}

impl Failure {
    pub(super) fn new(status: Status, error: anyhow::Error) -> Failure {
        Failure {
            status,
            error,
            limit_hit: None,
        }
    }
}

pub(super) fn refused(e: impl Into<anyhow::Error>) -> Failure {
    Failure::new(Status::Refused, e.into())
}

pub(super) fn errored(e: impl Into<anyhow::Error>) -> Failure {
    Failure::new(Status::Error, e.into())
}

pub(super) fn from_sandbox(e: SandboxError) -> Failure {
    Failure::new(Status::SandboxUnavailable, e.into())
}

/// A build-environment failure: a requirement the package named that is
/// refused is the package's doing (`refused` before anything ran, `build
/// failed` when its backend asked for it); anything else is an error.
pub(super) fn env_failure(e: buildenv::BuildEnvError, package_fault: Status) -> Failure {
    match e {
        buildenv::BuildEnvError::Requirement { .. } => Failure::new(package_fault, e.into()),
        other => errored(other),
    }
}
