//! Safe extraction of an sdist, and its hash.
//!
//! Extraction runs outside the sandbox, often as root, on attacker bytes, so
//! it is written defensively: every entry's path is checked before anything
//! is written; nothing is ever written through a link; special files are
//! refused; limits (entries, bytes, one file, compression ratio) count bytes
//! actually written, not header claims. Extraction goes into a fresh
//! directory and is all-or-nothing: on any error that directory is removed
//! and nothing outside it was touched.

mod entry;
mod limits;

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};

pub use entry::{EntryKind, normalize_entry_path};
pub use limits::Limits;

/// Archive formats sdists come in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ArchiveFormat {
    TarGz,
    TarBz2,
    TarXz,
    Tar,
    Zip,
}

#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("failed to read `{path}`: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error(
        "`{path}` is not an archive sdist-box can read (expected .tar.gz, .tar.bz2, .tar.xz, .tar or .zip)"
    )]
    UnknownFormat { path: PathBuf },
    #[error("`{0}` is not a SHA-256 hex digest (64 hex digits)")]
    BadHash(String),
    #[error("sha256 mismatch for `{path}`: expected {expected}, got {actual}")]
    HashMismatch {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("entry `{entry}` {reason}")]
    Entry { entry: String, reason: String },
    #[error("archive `{path}`: {reason}")]
    Limit { path: PathBuf, reason: String },
    #[error("archive `{path}` {reason}")]
    Layout { path: PathBuf, reason: String },
    #[error("archive `{path}` is corrupt: {source}")]
    Corrupt { path: PathBuf, source: io::Error },
    #[error("cannot extract into `{path}`: {source}")]
    Dest { path: PathBuf, source: io::Error },
}

fn entry_err(entry: &str, reason: impl Into<String>) -> ArchiveError {
    ArchiveError::Entry {
        entry: crate::text::one_line(entry, 300),
        reason: reason.into(),
    }
}

/// Detect the format from the file's first bytes.
pub fn detect_format(path: &Path) -> Result<ArchiveFormat, ArchiveError> {
    let io_err = |source| ArchiveError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut f = File::open(path).map_err(io_err)?;
    let mut head = [0u8; 512];
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..]).map_err(io_err)? {
            0 => break,
            k => n += k,
        }
    }
    let head = &head[..n];
    Ok(if head.starts_with(&[0x1f, 0x8b]) {
        ArchiveFormat::TarGz
    } else if head.starts_with(b"BZh") {
        ArchiveFormat::TarBz2
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        ArchiveFormat::TarXz
    } else if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        ArchiveFormat::Zip
    } else if (head.len() >= 262 && &head[257..262] == b"ustar")
        || (head.len() == 512 && path.extension().is_some_and(|e| e == "tar"))
    {
        // ustar/GNU magic, or an old v7 header in a file named .tar.
        ArchiveFormat::Tar
    } else {
        return Err(ArchiveError::UnknownFormat {
            path: path.to_path_buf(),
        });
    })
}

/// SHA-256 of a file, lowercase hex, streamed.
pub fn sha256_file(path: &Path) -> Result<String, ArchiveError> {
    let io_err = |source| ArchiveError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut f = File::open(path).map_err(io_err)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f.read(&mut buf).map_err(io_err)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Verify `path` against a pinned SHA-256; returns the hash.
pub fn verify_sha256(path: &Path, expected_hex: &str) -> Result<String, ArchiveError> {
    let expected = expected_hex.trim().to_ascii_lowercase();
    if expected.len() != 64 || !expected.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ArchiveError::BadHash(crate::text::one_line(
            expected_hex,
            100,
        )));
    }
    let actual = sha256_file(path)?;
    if actual != expected {
        return Err(ArchiveError::HashMismatch {
            path: path.to_path_buf(),
            expected,
            actual,
        });
    }
    Ok(actual)
}

/// What an extraction produced.
#[derive(Debug, Clone, Serialize)]
pub struct Extracted {
    /// `dest/<top-level directory>`.
    pub root: PathBuf,
    pub top_level: String,
    pub format: ArchiveFormat,
    pub entries: u64,
    pub total_bytes: u64,
    /// Entries whose setuid, setgid or sticky bits were removed.
    pub stripped_modes: Vec<String>,
}

/// Extract `archive` into the new directory `dest` (which must not exist).
pub fn extract(archive: &Path, dest: &Path, limits: &Limits) -> Result<Extracted, ArchiveError> {
    let format = detect_format(archive)?;
    let archive_size = fs::metadata(archive)
        .map_err(|source| ArchiveError::Io {
            path: archive.to_path_buf(),
            source,
        })?
        .len();
    fs::DirBuilder::new()
        .mode(0o700)
        .create(dest)
        .map_err(|source| ArchiveError::Dest {
            path: dest.to_path_buf(),
            source,
        })?;
    let mut x = Extractor::new(archive, dest, limits, archive_size);
    let result = match format {
        ArchiveFormat::Zip => x.run_zip(),
        _ => x.run_tar(format),
    }
    .and_then(|()| x.finish(format));
    if result.is_err() {
        let _ = fs::remove_dir_all(dest);
    }
    result
}

struct Extractor<'a> {
    archive: &'a Path,
    dest: &'a Path,
    limits: &'a Limits,
    archive_size: u64,
    entries: u64,
    total: u64,
    /// Normalized paths written so far, and lowercase forms.
    seen: HashSet<String>,
    seen_lower: HashMap<String, String>,
    /// Directories we created (only through these may anything be written).
    dirs: HashSet<String>,
    /// Regular files written (hardlink targets).
    files: HashSet<String>,
    /// Symlinks created: nothing may be written beneath them.
    links: HashSet<String>,
    top: Option<String>,
    stripped: Vec<String>,
}

impl<'a> Extractor<'a> {
    fn new(archive: &'a Path, dest: &'a Path, limits: &'a Limits, archive_size: u64) -> Self {
        Extractor {
            archive,
            dest,
            limits,
            archive_size,
            entries: 0,
            total: 0,
            seen: HashSet::new(),
            seen_lower: HashMap::new(),
            dirs: HashSet::new(),
            files: HashSet::new(),
            links: HashSet::new(),
            top: None,
            stripped: Vec::new(),
        }
    }

    fn limit(&self, reason: String) -> ArchiveError {
        ArchiveError::Limit {
            path: self.archive.to_path_buf(),
            reason,
        }
    }

    fn corrupt(&self, source: io::Error) -> ArchiveError {
        ArchiveError::Corrupt {
            path: self.archive.to_path_buf(),
            source,
        }
    }

    /// Bytes allowed in total right now by the ratio limit.
    fn ratio_budget(&self) -> u64 {
        // Tiny archives get a floor so that normal small sdists pass.
        let base = self.archive_size.max(64 * 1024);
        base.saturating_mul(self.limits.max_ratio)
    }

    /// Check a new entry's path; returns its normalized form.
    fn admit(&mut self, raw: &str, kind: EntryKind) -> Result<String, ArchiveError> {
        self.entries += 1;
        if self.entries > self.limits.max_entries {
            return Err(self.limit(format!(
                "more than {} entries (raise with --max-entries)",
                self.limits.max_entries
            )));
        }
        let norm = normalize_entry_path(raw)?;
        let top = norm.split('/').next().unwrap_or("").to_string();
        let is_top_dir = !norm.contains('/');
        match &self.top {
            None => self.top = Some(top.clone()),
            Some(t) if *t != top => {
                return Err(ArchiveError::Layout {
                    path: self.archive.to_path_buf(),
                    reason: format!(
                        "has more than one top-level entry (`{}`, `{}`): an sdist has exactly one top-level directory",
                        crate::text::one_line(t, 100),
                        crate::text::one_line(&top, 100)
                    ),
                });
            }
            _ => {}
        }
        if is_top_dir && kind != EntryKind::Dir {
            return Err(ArchiveError::Layout {
                path: self.archive.to_path_buf(),
                reason: format!(
                    "has a top-level entry `{}` that is not a directory: an sdist has exactly one top-level directory",
                    crate::text::one_line(&norm, 100)
                ),
            });
        }
        // Nothing may be written through a link we created.
        let mut prefix = String::new();
        for part in norm.split('/') {
            if !prefix.is_empty() {
                if self.links.contains(&prefix) {
                    return Err(entry_err(
                        raw,
                        format!(
                            "would be written through the link `{}`",
                            crate::text::one_line(&prefix, 200)
                        ),
                    ));
                }
                prefix.push('/');
            }
            prefix.push_str(part);
        }
        if kind == EntryKind::Dir && self.dirs.contains(&norm) {
            return Ok(norm); // repeated directory entries are harmless
        }
        if !self.seen.insert(norm.clone()) {
            return Err(entry_err(
                raw,
                "appears twice in the archive (the second would overwrite the first)",
            ));
        }
        let lower = norm.to_lowercase();
        if let Some(other) = self.seen_lower.get(&lower)
            && *other != norm
        {
            return Err(entry_err(
                raw,
                format!(
                    "collides with `{}` on a case-insensitive file system",
                    crate::text::one_line(other, 200)
                ),
            ));
        }
        self.seen_lower.insert(lower, norm.clone());
        Ok(norm)
    }

    /// Create the parent directories of `norm` (ours, never links).
    fn parents(&mut self, norm: &str) -> Result<PathBuf, ArchiveError> {
        let mut rel = String::new();
        let parts: Vec<&str> = norm.split('/').collect();
        for part in &parts[..parts.len() - 1] {
            if !rel.is_empty() {
                rel.push('/');
            }
            rel.push_str(part);
            if !self.dirs.contains(&rel) {
                if self.files.contains(&rel) || self.links.contains(&rel) {
                    return Err(entry_err(
                        norm,
                        format!("needs `{rel}` to be a directory, but it is a file or link"),
                    ));
                }
                self.mkdir(&rel, 0o755)?;
            }
        }
        Ok(self.dest.join(norm))
    }

    fn mkdir(&mut self, rel: &str, mode: u32) -> Result<(), ArchiveError> {
        let path = self.dest.join(rel);
        match fs::DirBuilder::new().mode(mode).create(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let meta = fs::symlink_metadata(&path).map_err(|source| ArchiveError::Dest {
                    path: path.clone(),
                    source,
                })?;
                if !meta.is_dir() {
                    return Err(entry_err(
                        rel,
                        "is a directory in one entry and not in another",
                    ));
                }
            }
            Err(source) => return Err(ArchiveError::Dest { path, source }),
        }
        self.dirs.insert(rel.to_string());
        Ok(())
    }

    fn mode_of(&mut self, norm: &str, raw_mode: u32, dir: bool) -> u32 {
        if raw_mode & 0o7000 != 0 {
            self.stripped.push(norm.to_string());
        }
        if dir || raw_mode & 0o111 != 0 {
            0o755
        } else {
            0o644
        }
    }

    fn write_file(
        &mut self,
        norm: &str,
        mode: u32,
        declared: u64,
        mut data: impl Read,
    ) -> Result<(), ArchiveError> {
        if declared > self.limits.max_file_bytes {
            return Err(entry_err(
                norm,
                format!(
                    "is {declared} bytes, over the single-file limit of {} (raise with --max-file-size)",
                    self.limits.max_file_bytes
                ),
            ));
        }
        let path = self.parents(norm)?;
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(|source| ArchiveError::Dest {
                path: path.clone(),
                source,
            })?;
        let mut buf = vec![0u8; 64 * 1024];
        let mut written = 0u64;
        loop {
            let n = data.read(&mut buf).map_err(|e| self.corrupt(e))?;
            if n == 0 {
                break;
            }
            written += n as u64;
            self.total += n as u64;
            if written > self.limits.max_file_bytes {
                return Err(entry_err(
                    norm,
                    format!(
                        "unpacks to more than the single-file limit of {} bytes (raise with --max-file-size)",
                        self.limits.max_file_bytes
                    ),
                ));
            }
            if self.total > self.limits.max_total_bytes {
                return Err(self.limit(format!(
                    "unpacks to more than {} bytes (raise with --max-unpacked-size)",
                    self.limits.max_total_bytes
                )));
            }
            if self.total > self.ratio_budget() {
                return Err(self.limit(format!(
                    "unpacks to more than {}× its size at `{}`: a decompression bomb? (raise with --max-ratio)",
                    self.limits.max_ratio,
                    crate::text::one_line(norm, 200)
                )));
            }
            f.write_all(&buf[..n])
                .map_err(|source| ArchiveError::Dest {
                    path: path.clone(),
                    source,
                })?;
        }
        // Permissions explicitly: the umask must not decide them.
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).map_err(|source| {
            ArchiveError::Dest {
                path: path.clone(),
                source,
            }
        })?;
        self.files.insert(norm.to_string());
        Ok(())
    }

    fn symlink(&mut self, raw: &str, norm: &str, target: &str) -> Result<(), ArchiveError> {
        if target.is_empty() || target.starts_with('/') || target.contains('\0') {
            return Err(entry_err(
                raw,
                format!(
                    "is a link to `{}`, outside the tree",
                    crate::text::one_line(target, 200)
                ),
            ));
        }
        // Resolve lexically from the link's directory; must stay beneath
        // the top-level directory.
        let mut stack: Vec<&str> = norm.split('/').collect();
        stack.pop();
        for part in target.split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    stack.pop();
                    if stack.is_empty() {
                        return Err(entry_err(
                            raw,
                            format!(
                                "is a link to `{}`, outside the tree",
                                crate::text::one_line(target, 200)
                            ),
                        ));
                    }
                }
                p => stack.push(p),
            }
        }
        let path = self.parents(norm)?;
        std::os::unix::fs::symlink(target, &path)
            .map_err(|source| ArchiveError::Dest { path, source })?;
        self.links.insert(norm.to_string());
        Ok(())
    }

    fn hardlink(&mut self, raw: &str, norm: &str, target_raw: &str) -> Result<(), ArchiveError> {
        let outside = || {
            entry_err(
                raw,
                format!(
                    "is a hard link to `{}`, which is not a file earlier in the archive",
                    crate::text::one_line(target_raw, 200)
                ),
            )
        };
        let target = normalize_entry_path(target_raw).map_err(|_| outside())?;
        if !self.files.contains(&target) {
            return Err(outside());
        }
        // A copy, not a link: two names for one inode invite surprises.
        let src = self.dest.join(&target);
        let meta = fs::symlink_metadata(&src).map_err(|source| ArchiveError::Dest {
            path: src.clone(),
            source,
        })?;
        let mode = meta.permissions().mode() & 0o777;
        let file = File::open(&src).map_err(|source| ArchiveError::Dest {
            path: src.clone(),
            source,
        })?;
        self.write_file(norm, mode, meta.len(), file)
    }

    fn run_tar(&mut self, format: ArchiveFormat) -> Result<(), ArchiveError> {
        let f = File::open(self.archive).map_err(|source| ArchiveError::Io {
            path: self.archive.to_path_buf(),
            source,
        })?;
        let reader: Box<dyn Read> = match format {
            ArchiveFormat::TarGz => Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(f))),
            ArchiveFormat::TarBz2 => Box::new(bzip2::read::MultiBzDecoder::new(BufReader::new(f))),
            ArchiveFormat::TarXz => {
                Box::new(xz2::read::XzDecoder::new_multi_decoder(BufReader::new(f)))
            }
            _ => Box::new(BufReader::new(f)),
        };
        let mut tar = tar::Archive::new(reader);
        let entries = tar.entries().map_err(|e| self.corrupt(e))?;
        for entry in entries {
            let entry = entry.map_err(|e| self.corrupt(e))?;
            let raw_bytes = entry.path_bytes().into_owned();
            let raw = String::from_utf8_lossy(&raw_bytes).into_owned();
            let header = entry.header();
            let raw_mode = header.mode().unwrap_or(0o644);
            let kind = match header.entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => EntryKind::File,
                tar::EntryType::Directory => EntryKind::Dir,
                tar::EntryType::Symlink => EntryKind::Symlink,
                tar::EntryType::Link => EntryKind::Hardlink,
                // Metadata entries the tar crate folds into the next entry.
                tar::EntryType::XGlobalHeader
                | tar::EntryType::XHeader
                | tar::EntryType::GNULongName
                | tar::EntryType::GNULongLink => continue,
                tar::EntryType::Char => return Err(entry_err(&raw, "is a character device")),
                tar::EntryType::Block => return Err(entry_err(&raw, "is a block device")),
                tar::EntryType::Fifo => return Err(entry_err(&raw, "is a FIFO")),
                other => {
                    return Err(entry_err(
                        &raw,
                        format!("has an unsupported type ({other:?})"),
                    ));
                }
            };
            if raw_bytes.contains(&0) || std::str::from_utf8(&raw_bytes).is_err() {
                return Err(entry_err(&raw, "has a name that is not valid UTF-8"));
            }
            let link = entry
                .link_name_bytes()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            let norm = self.admit(&raw, kind)?;
            match kind {
                EntryKind::Dir => {
                    self.mode_of(&norm, raw_mode, true);
                    if !self.dirs.contains(&norm) {
                        self.parents(&format!("{norm}/x"))?;
                    }
                }
                EntryKind::File => {
                    let mode = self.mode_of(&norm, raw_mode, false);
                    let declared = header.size().unwrap_or(0);
                    let mtime = header.mtime().ok();
                    self.write_file(&norm, mode, declared, entry)?;
                    if let Some(t) = mtime {
                        set_mtime(&self.dest.join(&norm), t);
                    }
                }
                EntryKind::Symlink => self.symlink(&raw, &norm, &link)?,
                EntryKind::Hardlink => self.hardlink(&raw, &norm, &link)?,
            }
        }
        Ok(())
    }

    fn run_zip(&mut self) -> Result<(), ArchiveError> {
        let f = File::open(self.archive).map_err(|source| ArchiveError::Io {
            path: self.archive.to_path_buf(),
            source,
        })?;
        let mut zip = zip::ZipArchive::new(BufReader::new(f))
            .map_err(|e| self.corrupt(io::Error::other(e)))?;
        if zip.len() as u64 > self.limits.max_entries {
            return Err(self.limit(format!(
                "has {} entries, more than {} (raise with --max-entries)",
                zip.len(),
                self.limits.max_entries
            )));
        }
        for i in 0..zip.len() {
            let file = zip
                .by_index(i)
                .map_err(|e| self.corrupt(io::Error::other(e)))?;
            let raw = String::from_utf8_lossy(file.name_raw()).into_owned();
            if std::str::from_utf8(file.name_raw()).is_err()
                || raw.contains('\\')
                || raw.contains('\0')
            {
                return Err(entry_err(
                    &raw,
                    "has a name with backslashes or invalid UTF-8",
                ));
            }
            let unix_mode = file.unix_mode();
            let is_symlink = unix_mode.is_some_and(|m| m & 0o170000 == 0o120000);
            let special = unix_mode.is_some_and(|m| {
                let t = m & 0o170000;
                t != 0 && t != 0o100000 && t != 0o040000 && t != 0o120000
            });
            if special {
                return Err(entry_err(&raw, "is a device, FIFO or socket"));
            }
            let kind = if file.is_dir() {
                EntryKind::Dir
            } else if is_symlink {
                EntryKind::Symlink
            } else {
                EntryKind::File
            };
            let norm = self.admit(&raw, kind)?;
            let raw_mode = unix_mode.unwrap_or(0o644);
            match kind {
                EntryKind::Dir => {
                    self.mode_of(&norm, raw_mode, true);
                    if !self.dirs.contains(&norm) {
                        self.parents(&format!("{norm}/x"))?;
                    }
                }
                EntryKind::Symlink => {
                    let mut target = String::new();
                    file.take(4096)
                        .read_to_string(&mut target)
                        .map_err(|e| self.corrupt(e))?;
                    self.symlink(&raw, &norm, &target)?;
                }
                _ => {
                    let mode = self.mode_of(&norm, raw_mode, false);
                    let declared = file.size();
                    self.write_file(&norm, mode, declared, file)?;
                }
            }
        }
        Ok(())
    }

    fn finish(&mut self, format: ArchiveFormat) -> Result<Extracted, ArchiveError> {
        let Some(top) = self.top.clone() else {
            return Err(ArchiveError::Layout {
                path: self.archive.to_path_buf(),
                reason: "is empty: an sdist has exactly one top-level directory".into(),
            });
        };
        if !self.dirs.contains(&top) {
            self.mkdir(&top, 0o755)?;
        }
        Ok(Extracted {
            root: self.dest.join(&top),
            top_level: top,
            format,
            entries: self.entries,
            total_bytes: self.total,
            stripped_modes: std::mem::take(&mut self.stripped),
        })
    }
}

fn set_mtime(path: &Path, mtime: u64) {
    // Clamp absurd values (before 1980 or in the far future).
    let t = mtime.clamp(315_532_800, 4_102_444_800);
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(t);
    if let Ok(f) = fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
    {
        let _ = f.set_modified(time);
    }
}

#[cfg(test)]
mod tests;
