//! Limits on what an archive may unpack to.

/// Checked while extracting, against bytes actually written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_entries: u64,
    pub max_total_bytes: u64,
    pub max_file_bytes: u64,
    /// Unpacked bytes per archive byte (archives under 64 KiB count as 64 KiB).
    pub max_ratio: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_entries: 20_000,
            max_total_bytes: 2 << 30,
            max_file_bytes: 512 << 20,
            max_ratio: 250,
        }
    }
}
