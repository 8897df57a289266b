//! Tar reader (plain, gzip, bzip2, xz): turns each entry into a call on the
//! tree. The tar crate only parses here; it never writes (`unpack` is not
//! used). The decompressed stream is metered, so a bomb hidden in headers,
//! pax records or skipped data stops at the same limits as file data.

use std::io::{self, BufReader, Read};
use std::path::Path;

use ::tar::EntryType;

use super::limits::Meter;
use super::tree::{FileMeta, Tree};
use super::{ArchiveError, ArchiveFormat, EntryProblem};

pub(crate) fn extract(
    archive: &Path,
    format: ArchiveFormat,
    tree: &mut Tree<'_>,
) -> Result<(), ArchiveError> {
    let file = BufReader::new(super::open_input(archive)?);
    let decoder: Box<dyn Read> = match format {
        ArchiveFormat::TarGz => Box::new(flate2::read::MultiGzDecoder::new(file)),
        ArchiveFormat::TarBz2 => Box::new(bzip2::read::MultiBzDecoder::new(file)),
        ArchiveFormat::TarXz => Box::new(xz2::read::XzDecoder::new_multi_decoder(file)),
        ArchiveFormat::Tar => Box::new(file),
        ArchiveFormat::Zip => unreachable!("zip is not read as tar"),
    };
    let cap = tree.budget.stream_cap();
    let (meter, streamed) = Meter::new(decoder, cap);
    let mut reader = ::tar::Archive::new(meter);

    // Any read error while the stream is over its cap is the limit, not
    // corruption; the meter's shared count tells which.
    let over_cap = tree.budget.stream_limit();
    let stream_error = |e: io::Error| {
        if streamed.get() > cap {
            ArchiveError::Limit {
                archive: archive.to_path_buf(),
                exceeded: over_cap.clone(),
            }
        } else {
            ArchiveError::Corrupt {
                archive: archive.to_path_buf(),
                source: e,
            }
        }
    };

    let entries = reader.entries().map_err(stream_error)?;
    for entry in entries {
        let mut entry = entry.map_err(stream_error)?;
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions() {
            // Metadata for the whole archive (git archive writes one);
            // nothing to extract.
            continue;
        }
        let raw = entry.path_bytes().into_owned();
        let mode = entry.header().mode().unwrap_or(0o644) & 0o7777;
        // An unreadable or absurd mtime is clamped rather than refused.
        let mtime = pax_mtime(&mut entry).unwrap_or_else(|| entry.header().mtime().unwrap_or(0));
        let is_dir = kind == EntryType::Directory
            || (matches!(kind, EntryType::Regular | EntryType::Continuous) && raw.ends_with(b"/"));
        let Some(name) = tree.begin(&raw, false, is_dir)? else {
            continue;
        };
        match kind {
            _ if is_dir => tree.add_dir(&name, mode)?,
            EntryType::Regular | EntryType::Continuous => {
                let meta = FileMeta {
                    mode,
                    mtime,
                    // The tar reader never yields more than the entry's size,
                    // so the declared size needs no second check here.
                    declared: None,
                };
                if entry.size() > tree.budget.limits().max_file_bytes {
                    let limit = tree.budget.limits().max_file_bytes;
                    return Err(
                        tree.entry_error(&name.display, EntryProblem::FileTooLarge { limit })
                    );
                }
                tree.add_file(&name, &meta, &mut entry, &stream_error)?;
            }
            EntryType::Symlink => {
                let target = entry.link_name_bytes().unwrap_or_default().into_owned();
                tree.add_symlink(&name, &target, mode)?;
            }
            EntryType::Link => {
                let target = entry.link_name_bytes().unwrap_or_default().into_owned();
                tree.add_hardlink(&name, &target, mtime)?;
            }
            other => {
                let kind = match other {
                    EntryType::Char => "character device".to_owned(),
                    EntryType::Block => "block device".to_owned(),
                    EntryType::Fifo => "FIFO".to_owned(),
                    EntryType::GNUSparse => "sparse file".to_owned(),
                    other => format!(
                        "entry of unsupported tar type {:?}",
                        other.as_byte() as char
                    ),
                };
                return Err(tree.entry_error(&name.display, EntryProblem::SpecialFile { kind }));
            }
        }
    }
    Ok(())
}

/// The entry's PAX `mtime` record, whole seconds (it may carry a fraction,
/// and a negative time is before the epoch: 0). Tools that write PAX put the
/// real time there and 0 in the ustar field (flit_core's sdists do): reading
/// the header alone gives 1970, which zip-based backends cannot store.
/// The tar crate applies PAX `path`, `linkpath` and `size` itself, so the
/// names and sizes the tree checks are already the PAX ones.
fn pax_mtime<R: Read>(entry: &mut ::tar::Entry<'_, R>) -> Option<u64> {
    let extensions = entry.pax_extensions().ok()??;
    for ext in extensions {
        let ext = ext.ok()?;
        if ext.key_bytes() == b"mtime" {
            let value = std::str::from_utf8(ext.value_bytes()).ok()?;
            let whole = value.split('.').next()?;
            if whole.starts_with('-') {
                return Some(0);
            }
            return whole.parse().ok();
        }
    }
    None
}
