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

/// The host-side I/O error in `e`'s chain, if any: a full or failing disk
/// (`ENOSPC`, `EDQUOT`, `EIO`, `EROFS`) is sdist-box's host's fault, never
/// the package's nor the input's.
pub(super) fn host_fault(e: &anyhow::Error) -> Option<&std::io::Error> {
    use std::io::ErrorKind;
    const HOST: [i32; 4] = [libc::ENOSPC, libc::EDQUOT, libc::EIO, libc::EROFS];
    e.chain().find_map(|cause| {
        let io =
            cause
                .downcast_ref::<std::io::Error>()
                .or_else(
                    || match cause.downcast_ref::<crate::archive::ArchiveError>() {
                        Some(crate::archive::ArchiveError::Io(io)) => Some(io),
                        _ => None,
                    },
                )?;
        let host = io.raw_os_error().is_some_and(|n| HOST.contains(&n))
            // A wrapped error (`fs_err` names the path) keeps the kind.
            || matches!(
                io.kind(),
                ErrorKind::StorageFull | ErrorKind::QuotaExceeded | ErrorKind::ReadOnlyFilesystem
            );
        host.then_some(io)
    })
}

/// An extraction failure: the input's fault (refused), unless the host's
/// disk failed under it (an error naming where it was extracting). On a
/// build tree of its own (`build_tree`: its `build-size`), a full tree is
/// the input's: it unpacks to more than the profile gives it.
pub(super) fn input_or_host(
    e: crate::archive::ArchiveError,
    work: &std::path::Path,
    build_tree: Option<u64>,
) -> Failure {
    let e = anyhow::Error::new(e);
    let full = |io: &std::io::Error| {
        io.kind() == std::io::ErrorKind::StorageFull || io.raw_os_error() == Some(libc::ENOSPC)
    };
    match (host_fault(&e), build_tree) {
        (Some(io), Some(size)) if full(io) => Failure {
            limit_hit: Some(LimitHit::Disk),
            ..refused(e.context(format!(
                "the sdist does not fit in its build tree (`[limits] build-size`, {size} bytes)"
            )))
        },
        (Some(_), _) => errored(e.context(format!(
            "cannot extract the sdist into `{}`",
            work.display()
        ))),
        (None, _) => refused(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// `/dev/full` fails every write with ENOSPC; through `fs_err` (as the
    /// archive code writes) only the error's kind says so.
    #[test]
    fn a_full_device_under_fs_err_is_a_host_fault() {
        let Ok(mut full) = fs_err::OpenOptions::new().write(true).open("/dev/full") else {
            eprintln!("skipped: no /dev/full");
            return;
        };
        let err = full
            .write_all(b"x")
            .and_then(|()| full.flush())
            .unwrap_err();
        let e = anyhow::Error::new(crate::archive::ArchiveError::Io(err));
        let found = host_fault(&e).expect("ENOSPC is found");
        assert!(found.to_string().contains("No space left on device"));
        assert!(format!("{e:#}").contains("/dev/full"), "{e:#}");
    }
}
