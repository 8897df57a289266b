//! TEMPORARY stub (replaced by the real module)
use std::path::{Path, PathBuf};
#[derive(Debug, thiserror::Error)]
#[error("archive")]
pub struct ArchiveError;
pub struct Limits {
    pub max_entries: u64,
    pub max_total_bytes: u64,
    pub max_file_bytes: u64,
    pub max_ratio: u64,
}
impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_entries: 1,
            max_total_bytes: 1,
            max_file_bytes: 1,
            max_ratio: 1,
        }
    }
}
#[derive(Debug, Clone, serde::Serialize)]
pub enum ArchiveFormat {
    TarGz,
}
#[derive(Debug, Clone, serde::Serialize)]
pub struct Extracted {
    pub root: PathBuf,
    pub top_level: String,
    pub format: ArchiveFormat,
    pub entries: u64,
    pub total_bytes: u64,
    pub stripped_modes: Vec<String>,
}
pub fn sha256_file(_: &Path) -> Result<String, ArchiveError> {
    Err(ArchiveError)
}
pub fn verify_sha256(_: &Path, _: &str) -> Result<String, ArchiveError> {
    Err(ArchiveError)
}
pub fn extract(_: &Path, _: &Path, _: &Limits) -> Result<Extracted, ArchiveError> {
    Err(ArchiveError)
}
