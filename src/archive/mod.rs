//! placeholder until the archive module lands
#[derive(Debug, thiserror::Error)]
#[error("archive")]
pub struct ArchiveError;
