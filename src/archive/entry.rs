//! Entry names: what an archive says a path is, checked before use.

use super::{ArchiveError, entry_err};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
    Hardlink,
}

/// Normalize an entry name to `a/b/c`: refuses absolute paths, `..`,
/// drive letters and empty names; drops `.` components and trailing `/`.
pub fn normalize_entry_path(raw: &str) -> Result<String, ArchiveError> {
    if raw.starts_with('/') {
        return Err(entry_err(raw, "has an absolute path"));
    }
    if raw.len() >= 2 && raw.as_bytes()[1] == b':' {
        return Err(entry_err(raw, "has a drive-letter path"));
    }
    let mut parts = Vec::new();
    for part in raw.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(entry_err(raw, "has a `..` component")),
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        return Err(entry_err(raw, "has an empty name"));
    }
    Ok(parts.join("/"))
}
