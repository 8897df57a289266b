//! The shared wheel reader: a wheel's members, bounded, hashed as read.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256, Sha384, Sha512};

use super::model::{Member, WheelContents};
use super::record::parse_record;

/// Bounds on what reading a wheel may cost.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_entries: u64,
    /// Bytes of the central directory (read into memory by the zip reader).
    pub max_central_directory: u64,
    /// Uncompressed bytes of one member.
    pub max_member_bytes: u64,
    /// Uncompressed bytes of all members together.
    pub max_total_bytes: u64,
    /// Bytes of one metadata text (RECORD, entry_points.txt) kept.
    pub max_text_bytes: u64,
    /// Bytes of all kept texts together (a wheel of a thousand `.pth`
    /// files or `.dist-info` directories must not fill the memory).
    pub max_kept_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_entries: 200_000,
            max_central_directory: 64 << 20,
            max_member_bytes: 2 << 30,
            max_total_bytes: 8 << 30,
            max_text_bytes: 16 << 20,
            max_kept_bytes: 64 << 20,
        }
    }
}

/// Why a wheel could not be read (the check then reports it as a finding).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WheelError {
    #[error("cannot read the wheel `{path}`: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the wheel `{path}` is not a readable zip archive: {source}")]
    Zip {
        path: PathBuf,
        source: zip::result::ZipError,
    },
    #[error("the wheel `{path}` is over a limit: {what}")]
    Limit { path: PathBuf, what: String },
    #[error("cannot read the member `{member}` of the wheel `{path}`: {source}")]
    Member {
        path: PathBuf,
        member: String,
        source: std::io::Error,
    },
}

pub(super) const MAGIC_BYTES: usize = 4;

pub(super) const PTH_TEXT_BYTES: u64 = 64 << 10;

/// Read a wheel under `limits`: every member's content is hashed (sha256,
/// plus the digests `RECORD` asks for), metadata texts and `.pth` files are
/// kept. The central directory's claims are checked before anything is
/// decompressed; every member is read to its real end, never past a bound.
pub fn read_wheel(path: &Path, limits: &Limits) -> Result<WheelContents, WheelError> {
    let zip_err = |source| WheelError::Zip {
        path: path.to_path_buf(),
        source,
    };
    // 1. the archive, once its central directory's claims are within bounds.
    let mut zip = open_bounded(path, limits)?;
    // 2. RECORD first: it says which digest each member needs.
    let wanted = wanted_digests(&mut zip, path, limits)?;
    // 3. every member, hashed, within the bounds of the whole.
    let mut reading = Reading {
        path,
        limits,
        wanted: &wanted,
        total: 0,
        kept: 0,
        buf: vec![0u8; 64 * 1024],
    };
    let mut members = Vec::with_capacity(zip.len());
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).map_err(zip_err)?;
        members.push(reading.member(&mut entry)?);
    }
    Ok(WheelContents {
        members,
        duplicate_names: zip.has_duplicate_names(),
        comment: zip.comment().to_vec(),
        unpacked_bytes: reading.total,
    })
}

fn limit_error(path: &Path, what: String) -> WheelError {
    WheelError::Limit {
        path: path.to_path_buf(),
        what,
    }
}

/// Open the wheel as a zip archive once the entry count and the central
/// directory's size it claims are within `limits`.
fn open_bounded(
    path: &Path,
    limits: &Limits,
) -> Result<zip::ZipArchive<std::io::BufReader<std::fs::File>>, WheelError> {
    let io_err = |source| WheelError::Io {
        path: path.to_path_buf(),
        source,
    };
    let limit = |what: String| limit_error(path, what);
    let mut file = std::fs::File::open(path).map_err(io_err)?;
    let (entries, cd_size) = central_directory_claims(&mut file).map_err(io_err)?;
    if entries > limits.max_entries {
        return Err(limit(format!(
            "{entries} entries (at most {})",
            limits.max_entries
        )));
    }
    if cd_size > limits.max_central_directory {
        return Err(limit(format!(
            "a central directory of {cd_size} bytes (at most {})",
            limits.max_central_directory
        )));
    }
    file.seek(SeekFrom::Start(0)).map_err(io_err)?;
    let zip =
        zip::ZipArchive::new(std::io::BufReader::new(file)).map_err(|source| WheelError::Zip {
            path: path.to_path_buf(),
            source,
        })?;
    if zip.len() as u64 > limits.max_entries {
        return Err(limit(format!(
            "{} entries (at most {})",
            zip.len(),
            limits.max_entries
        )));
    }
    Ok(zip)
}

/// The digests other than sha256 that `RECORD` names, by member.
fn wanted_digests(
    zip: &mut zip::ZipArchive<std::io::BufReader<std::fs::File>>,
    path: &Path,
    limits: &Limits,
) -> Result<HashMap<String, Vec<String>>, WheelError> {
    let mut wanted: HashMap<String, Vec<String>> = HashMap::new();
    let record_index = (0..zip.len()).find(|&i| {
        zip.by_index_data(i)
            .map(|e| is_record_name(&String::from_utf8_lossy(e.name_raw())))
            .unwrap_or(false)
    });
    let Some(i) = record_index else {
        return Ok(wanted);
    };
    let mut entry = zip.by_index(i).map_err(|source| WheelError::Zip {
        path: path.to_path_buf(),
        source,
    })?;
    let mut text = Vec::new();
    (&mut entry)
        .take(limits.max_text_bytes)
        .read_to_end(&mut text)
        .map_err(|source| WheelError::Member {
            path: path.to_path_buf(),
            member: "RECORD".into(),
            source,
        })?;
    for row in parse_record(&text) {
        if let Some((algo, _)) = row.hash.split_once('=')
            && (algo == "sha384" || algo == "sha512")
        {
            wanted.entry(row.path).or_default().push(algo.to_string());
        }
    }
    Ok(wanted)
}

/// The reading of one wheel's members: the bounds of the whole, what has
/// been read and kept so far.
struct Reading<'a> {
    path: &'a Path,
    limits: &'a Limits,
    wanted: &'a HashMap<String, Vec<String>>,
    /// Bytes unpacked, all members so far.
    total: u64,
    /// Bytes of text kept, all members so far.
    kept: u64,
    buf: Vec<u8>,
}

/// The digests of one member, as it is read.
struct Digests {
    sha256: Sha256,
    sha384: Option<Sha384>,
    sha512: Option<Sha512>,
}

impl Digests {
    fn new(wanted: &[String]) -> Digests {
        Digests {
            sha256: Sha256::new(),
            sha384: wanted.iter().any(|d| d == "sha384").then(Sha384::new),
            sha512: wanted.iter().any(|d| d == "sha512").then(Sha512::new),
        }
    }

    fn update(&mut self, chunk: &[u8]) {
        self.sha256.update(chunk);
        if let Some(h) = self.sha384.as_mut() {
            h.update(chunk);
        }
        if let Some(h) = self.sha512.as_mut() {
            h.update(chunk);
        }
    }

    /// sha256, and the others by name.
    fn finish(self) -> ([u8; 32], Vec<(String, Vec<u8>)>) {
        let mut other = Vec::new();
        if let Some(h) = self.sha384 {
            other.push(("sha384".to_string(), h.finalize().to_vec()));
        }
        if let Some(h) = self.sha512 {
            other.push(("sha512".to_string(), h.finalize().to_vec()));
        }
        (self.sha256.finalize().into(), other)
    }
}

impl Reading<'_> {
    /// Read one member to its real end, never past a bound.
    fn member<R: Read>(
        &mut self,
        entry: &mut zip::read::ZipFile<'_, R>,
    ) -> Result<Member, WheelError> {
        let limits = self.limits;
        let name = String::from_utf8_lossy(entry.name_raw()).into_owned();
        let declared = entry.size();
        if declared > limits.max_member_bytes {
            return Err(limit_error(
                self.path,
                format!(
                    "the member `{}` unpacks to {declared} bytes (at most {})",
                    crate::text::one_line(&name, 200),
                    limits.max_member_bytes
                ),
            ));
        }
        let is_dir = entry.is_dir();
        let is_symlink = entry.is_symlink();
        let modified = entry.last_modified().map(|t| {
            (
                t.year(),
                t.month(),
                t.day(),
                t.hour(),
                t.minute(),
                t.second(),
            )
        });
        let unix_mode = entry.unix_mode();
        let compression = format!("{:?}", entry.compression());
        let mut extra = entry.extra_data().unwrap_or_default();
        extra.truncate(4096);
        // A .pth file only needs its first lines and a count of imports.
        let text_cap = if is_metadata_text(&name) {
            limits.max_text_bytes
        } else if name.ends_with(".pth") {
            PTH_TEXT_BYTES
        } else {
            0
        }
        .min(limits.max_kept_bytes.saturating_sub(self.kept));
        let mut digests = Digests::new(self.wanted.get(&name).map_or(&[], Vec::as_slice));
        let mut magic = Vec::new();
        let mut text = (text_cap > 0).then(Vec::new);
        let mut size: u64 = 0;
        // Never read past the member's own bound, whatever it declared.
        let mut reader = entry.take(limits.max_member_bytes + 1);
        loop {
            let n = reader
                .read(&mut self.buf)
                .map_err(|source| WheelError::Member {
                    path: self.path.to_path_buf(),
                    member: crate::text::one_line(&name, 200),
                    source,
                })?;
            if n == 0 {
                break;
            }
            let chunk = &self.buf[..n];
            size += n as u64;
            self.total += n as u64;
            if size > limits.max_member_bytes || self.total > limits.max_total_bytes {
                return Err(limit_error(
                    self.path,
                    format!(
                        "the members unpack to more than {} bytes (stopped at `{}`)",
                        limits.max_total_bytes.min(limits.max_member_bytes),
                        crate::text::one_line(&name, 200)
                    ),
                ));
            }
            digests.update(chunk);
            if magic.len() < MAGIC_BYTES {
                let take = (MAGIC_BYTES - magic.len()).min(n);
                magic.extend_from_slice(&chunk[..take]);
            }
            if let Some(t) = text.as_mut()
                && (t.len() as u64) < text_cap
            {
                let room = (text_cap - t.len() as u64) as usize;
                t.extend_from_slice(&chunk[..n.min(room)]);
            }
        }
        self.kept += text.as_ref().map_or(0, |t| t.len() as u64);
        let (sha256, other_digests) = digests.finish();
        Ok(Member {
            name,
            is_dir,
            is_symlink,
            size,
            sha256,
            other_digests,
            magic,
            text,
            modified,
            unix_mode,
            compression,
            extra,
        })
    }
}

/// The entry count and central-directory size the end-of-central-directory
/// record claims (zip64 aware), read before the zip reader loads the
/// directory into memory.
pub(super) fn central_directory_claims(file: &mut std::fs::File) -> std::io::Result<(u64, u64)> {
    let len = file.metadata()?.len();
    let tail_len = len.min(65_535 + 22);
    file.seek(SeekFrom::Start(len - tail_len))?;
    let mut tail = vec![0u8; tail_len as usize];
    file.read_exact(&mut tail)?;
    let Some(eocd) = (0..tail.len().saturating_sub(21))
        .rev()
        .find(|&i| tail[i..i + 4] == [0x50, 0x4b, 0x05, 0x06])
    else {
        // No record: the zip reader will refuse the file with its own error.
        return Ok((0, 0));
    };
    let u16_at = |b: &[u8], i: usize| u64::from(u16::from_le_bytes([b[i], b[i + 1]]));
    let u32_at =
        |b: &[u8], i: usize| u64::from(u32::from_le_bytes(b[i..i + 4].try_into().unwrap()));
    let u64_at = |b: &[u8], i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap());
    let mut entries = u16_at(&tail, eocd + 10);
    let mut cd_size = u32_at(&tail, eocd + 12);
    // Zip64: the locator sits just before the record and points at the
    // zip64 end-of-central-directory record.
    if (entries == 0xffff || cd_size == 0xffff_ffff) && eocd >= 20 {
        let loc = eocd - 20;
        if tail[loc..loc + 4] == [0x50, 0x4b, 0x06, 0x07] {
            let at = u64_at(&tail, loc + 8);
            if at.checked_add(56).is_some_and(|end| end <= len) {
                let mut rec = [0u8; 56];
                file.seek(SeekFrom::Start(at))?;
                file.read_exact(&mut rec)?;
                if rec[..4] == [0x50, 0x4b, 0x06, 0x06] {
                    entries = u64_at(&rec, 32);
                    cd_size = u64_at(&rec, 40);
                }
            }
        }
    }
    Ok((entries, cd_size))
}

pub(super) fn is_record_name(name: &str) -> bool {
    name.strip_suffix("/RECORD")
        .is_some_and(|d| d.ends_with(".dist-info") && !d.contains('/'))
}

pub(super) fn is_metadata_text(name: &str) -> bool {
    let Some((dir, file)) = name.split_once('/') else {
        return false;
    };
    dir.ends_with(".dist-info")
        && matches!(
            file,
            "RECORD" | "entry_points.txt" | "top_level.txt" | "WHEEL" | "METADATA"
        )
}
