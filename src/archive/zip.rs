//! Zip reader: checks the central directory's claims first (entry count,
//! declared sizes, encryption), then decompresses each entry into the tree,
//! refusing any entry that produces more bytes than it declared. Unix file
//! types come from the external attributes, so a zip symlink is a symlink.

use std::io::{self, BufReader, Read};
use std::path::Path;

use ::zip::ZipArchive;

use super::path;
use super::tree::{FileMeta, MAX_LINK_TARGET, Tree};
use super::{ArchiveError, EntryProblem, LimitExceeded};

const S_IFMT: u32 = 0o170_000;
const S_IFREG: u32 = 0o100_000;
const S_IFDIR: u32 = 0o040_000;
const S_IFLNK: u32 = 0o120_000;
const S_IFCHR: u32 = 0o020_000;
const S_IFBLK: u32 = 0o060_000;
const S_IFIFO: u32 = 0o010_000;
const S_IFSOCK: u32 = 0o140_000;

pub(crate) fn extract(archive: &Path, tree: &mut Tree<'_>) -> Result<(), ArchiveError> {
    let zip_error = |source| ArchiveError::Zip {
        archive: archive.to_path_buf(),
        source,
    };
    let file = BufReader::new(super::open_input(archive)?);
    let mut zip = ZipArchive::new(file).map_err(zip_error)?;

    // 1. The central directory's claims: refuse what is over a limit before
    //    decompressing anything.
    let limits = *tree.budget.limits();
    if zip.len() as u64 > limits.max_entries {
        return Err(ArchiveError::Limit {
            archive: archive.to_path_buf(),
            exceeded: LimitExceeded::Entries {
                limit: limits.max_entries,
            },
        });
    }
    let mut declared_total: u64 = 0;
    for i in 0..zip.len() {
        let entry = zip.by_index_data(i).map_err(zip_error)?;
        let shown = || path::display_bytes(entry.name_raw());
        if entry.encrypted() {
            return Err(tree.entry_error(&shown(), EntryProblem::Encrypted));
        }
        if entry.size() > limits.max_file_bytes {
            let limit = limits.max_file_bytes;
            return Err(tree.entry_error(&shown(), EntryProblem::FileTooLarge { limit }));
        }
        declared_total = declared_total.saturating_add(entry.size());
    }
    tree.budget.check_declared_total(declared_total)?;

    // 2. The entries themselves, counting what they really produce.
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).map_err(zip_error)?;
        // Names are UTF-8 or CP437 by the entry's flag; check the raw bytes
        // for what Windows extractors would treat as separators.
        let raw = entry.name_raw().to_vec();
        if raw.contains(&b'\\') {
            let shown = path::display_bytes(&raw);
            return Err(tree.entry_error(
                &shown,
                EntryProblem::WindowsPath {
                    what: "a backslash",
                },
            ));
        }
        let name_str = entry.name().map_err(zip_error)?.into_owned();
        let mode = entry.unix_mode().unwrap_or(0);
        let file_type = mode & S_IFMT;
        let is_dir = file_type == S_IFDIR || (file_type == 0 && name_str.ends_with('/'));
        let Some(name) = tree.begin(name_str.as_bytes(), true, is_dir)? else {
            continue;
        };
        // The zip crate clears setuid/setgid/sticky in `unix_mode`; take them
        // from the raw attributes so that stripping them is recorded.
        let special = if entry.system() == ::zip::System::Unix {
            (entry.external_attributes() >> 16) & 0o7000
        } else {
            0
        };
        let perm = (mode & 0o777) | special;
        match file_type {
            _ if is_dir => tree.add_dir(&name, perm)?,
            S_IFLNK => {
                let mut target = Vec::new();
                (&mut entry)
                    .take(MAX_LINK_TARGET as u64 + 1)
                    .read_to_end(&mut target)
                    .map_err(|e| corrupt(archive, e))?;
                tree.add_symlink(&name, &target, perm)?;
            }
            0 | S_IFREG if !name_str.ends_with('/') => {
                let meta = FileMeta {
                    mode: perm,
                    mtime: entry.last_modified().map_or(0, |t| {
                        dos_to_unix(
                            t.year(),
                            t.month(),
                            t.day(),
                            t.hour(),
                            t.minute(),
                            t.second(),
                        )
                    }),
                    declared: Some(entry.size()),
                };
                tree.add_file(&name, &meta, &mut entry, &|e| corrupt(archive, e))?;
            }
            other => {
                let kind = match other {
                    S_IFCHR => "character device",
                    S_IFBLK => "block device",
                    S_IFIFO => "FIFO",
                    S_IFSOCK => "socket",
                    S_IFREG => "regular file whose name ends in `/`",
                    _ => "file of unknown type",
                };
                return Err(tree.entry_error(
                    &name.display,
                    EntryProblem::SpecialFile {
                        kind: kind.to_owned(),
                    },
                ));
            }
        }
    }
    Ok(())
}

fn corrupt(archive: &Path, source: io::Error) -> ArchiveError {
    ArchiveError::Corrupt {
        archive: archive.to_path_buf(),
        source,
    }
}

/// A zip timestamp (local time of the packer, no zone; taken as UTC) in
/// seconds since the epoch.
fn dos_to_unix(year: u16, month: u8, day: u8, hour: u8, minute: u8, second: u8) -> u64 {
    // Days from civil (Howard Hinnant's algorithm), for years >= 1970.
    let (y, m, d) = (i64::from(year), i64::from(month), i64::from(day));
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second);
    u64::try_from(secs).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::dos_to_unix;

    #[test]
    fn dos_times_convert_to_unix_seconds() {
        assert_eq!(dos_to_unix(1980, 1, 1, 0, 0, 0), 315_532_800);
        assert_eq!(dos_to_unix(2024, 2, 29, 12, 30, 15), 1_709_209_815);
    }
}
