//! Verify an sdist's hash and extract it safely.
//!
//! Extraction runs on the host, often as root, on attacker bytes. Its
//! invariants:
//! - all-or-nothing: `dest` must not exist; it is created (0700), filled, and
//!   on any error removed again; nothing outside it is ever written;
//! - nothing is written through a link, and no link may point outside the
//!   top-level directory, even through other links;
//! - only regular files, directories and links are created; special files,
//!   absolute names, `..`, duplicates and case collisions are refused;
//! - limits count bytes actually produced, never sizes headers claim;
//! - every refusal is an [`ArchiveError`] naming the archive and the entry
//!   (escaped: entry names are attacker text).
//!
//! Layout: `limits` (what may be unpacked, and the account),
//! `path` (names and link targets, pure), `tree` (the only writer),
//! `tar` and `zip` (readers that feed the tree).

mod limits;
mod path;
mod tar;
mod tree;
mod zip;

use std::io::{self, Read};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use fs_err as fs;
use serde::Serialize;
use sha2::{Digest, Sha256};

pub use limits::{Limits, RATIO_FLOOR_BYTES};

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

/// The result of a successful [`extract`].
#[derive(Debug, Clone, Serialize)]
pub struct Extracted {
    /// `dest/<top_level>`: the project's source tree.
    pub root: PathBuf,
    pub top_level: String,
    pub format: ArchiveFormat,
    /// Entries in the archive (files, directories, links).
    pub entries: u64,
    /// Bytes written to disk.
    pub total_bytes: u64,
    /// Entries whose setuid, setgid or sticky bits were removed.
    pub stripped_modes: Vec<String>,
}

/// Why an entry was refused.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryProblem {
    #[error("has an empty name")]
    EmptyName,
    #[error("has a NUL byte in its name")]
    NulByte,
    #[error("has a name that is not valid UTF-8")]
    NotUtf8,
    #[error("has an absolute path")]
    Absolute,
    #[error("has a `..` component")]
    ParentDir,
    #[error("has a Windows-style path ({what})")]
    WindowsPath { what: &'static str },
    #[error("is a file at the top level: an sdist has exactly one top-level directory")]
    TopLevelFile,
    #[error("appears more than once in the archive")]
    Duplicate,
    #[error(
        "differs only in case from `{other}`: one would overwrite the other on a case-insensitive file system"
    )]
    CaseCollision { other: String },
    #[error("would be written through the link `{link}`")]
    ThroughLink { link: String },
    #[error("would be written inside the file `{file}`")]
    UnderFile { file: String },
    #[error("is a symlink to the absolute path `{target}`")]
    LinkAbsolute { target: String },
    #[error("is a symlink to `{target}`, which leaves the top-level directory")]
    LinkEscapes { target: String },
    #[error("is a symlink to `{target}`, which passes through too many links")]
    LinkLoop { target: String },
    #[error("is a symlink with an invalid target `{target}`")]
    BadLinkTarget { target: String },
    #[error("is a hard link to `{target}`, which is not an earlier regular file of the archive")]
    HardlinkTarget { target: String },
    #[error("is a {kind}: only regular files, directories and links are extracted")]
    SpecialFile { kind: String },
    #[error("is encrypted")]
    Encrypted,
    #[error("is larger than the limit of {limit} bytes for one file")]
    FileTooLarge { limit: u64 },
    #[error("holds more than the {declared} bytes its header declares")]
    LargerThanDeclared { declared: u64 },
}

/// Which limit an archive went over.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitExceeded {
    #[error("has more than {limit} entries")]
    Entries { limit: u64 },
    #[error("unpacks to more than {limit} bytes")]
    TotalBytes { limit: u64 },
    #[error(
        "exceeds the compression ratio limit: it unpacks to more than {limit} times its size of {archive_bytes} bytes (a decompression bomb?)"
    )]
    Ratio { limit: u64, archive_bytes: u64 },
}

#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// An I/O error; fs-err puts the path in its message.
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error("`{path}` is a {kind}, not a regular file")]
    NotRegular { path: PathBuf, kind: &'static str },
    #[error(
        "`{path}` is not an archive sdist-box can read: {reason} (expected .tar.gz, .tar.bz2, .tar.xz, .tar or .zip)"
    )]
    UnknownFormat { path: PathBuf, reason: &'static str },
    #[error("`{input}` is not a sha256 digest: expected 64 hex digits")]
    BadDigest { input: String },
    #[error("sha256 mismatch for `{path}`: expected {expected}, got {actual}")]
    DigestMismatch {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("cannot extract into `{path}`: it already exists")]
    DestExists { path: PathBuf },
    #[error("entry `{entry}` in `{archive}` {problem}")]
    Entry {
        archive: PathBuf,
        entry: String,
        problem: EntryProblem,
    },
    #[error("archive `{archive}` {exceeded}")]
    Limit {
        archive: PathBuf,
        exceeded: LimitExceeded,
    },
    #[error("archive `{archive}` {reason}")]
    Layout { archive: PathBuf, reason: String },
    #[error("archive `{archive}` is corrupt: {source}")]
    Corrupt { archive: PathBuf, source: io::Error },
    #[error("archive `{archive}` is corrupt: {source}")]
    Zip {
        archive: PathBuf,
        source: ::zip::result::ZipError,
    },
}

/// Tell the format from the first bytes of the file (never the name: a
/// file name is a claim).
pub fn detect_format(path: &Path) -> Result<ArchiveFormat, ArchiveError> {
    let mut head = Vec::with_capacity(512);
    open_input(path)?.take(512).read_to_end(&mut head)?;
    let unknown = |reason| ArchiveError::UnknownFormat {
        path: path.to_path_buf(),
        reason,
    };
    if head.is_empty() {
        return Err(unknown("the file is empty"));
    }
    let format = if head.starts_with(&[0x1f, 0x8b]) {
        ArchiveFormat::TarGz
    } else if head.starts_with(b"BZh") {
        ArchiveFormat::TarBz2
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        ArchiveFormat::TarXz
    } else if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        ArchiveFormat::Zip
    } else if head.len() >= 262 && &head[257..262] == b"ustar" {
        ArchiveFormat::Tar
    } else {
        return Err(unknown("its first bytes match no known format"));
    };
    Ok(format)
}

/// Open an input archive for reading: never through a link, never
/// blocking (a FIFO, a device or a socket named `*.tar.gz` would otherwise
/// stall the whole run at the first read), and only if what was opened is
/// a regular file. Every read of an input goes through this.
pub fn open_input(path: &Path) -> Result<fs::File, ArchiveError> {
    use fs_err::os::unix::fs::OpenOptionsExt;
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => ArchiveError::NotRegular {
                path: path.to_path_buf(),
                kind: "symbolic link (inputs are opened without following links: name the file it points to)",
            },
            _ => ArchiveError::Io(e),
        })?;
    let kind = file.metadata()?.file_type();
    if !kind.is_file() {
        use std::os::unix::fs::FileTypeExt;
        let kind = if kind.is_dir() {
            "directory"
        } else if kind.is_fifo() {
            "FIFO"
        } else if kind.is_socket() {
            "socket"
        } else if kind.is_char_device() || kind.is_block_device() {
            "device"
        } else {
            "special file"
        };
        return Err(ArchiveError::NotRegular {
            path: path.to_path_buf(),
            kind,
        });
    }
    Ok(file)
}

/// The file's SHA-256, lowercase hex, read in a streaming way.
pub fn sha256_file(path: &Path) -> Result<String, ArchiveError> {
    let mut file = open_input(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Check the file against an expected SHA-256 (hex, either case; spaces
/// around it are ignored). Returns the hash.
pub fn verify_sha256(path: &Path, expected_hex: &str) -> Result<String, ArchiveError> {
    let expected = expected_hex.trim();
    if expected.len() != 64 || !expected.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ArchiveError::BadDigest {
            input: path::display_str(expected_hex),
        });
    }
    let expected = expected.to_ascii_lowercase();
    let actual = sha256_file(path)?;
    if actual != expected {
        return Err(ArchiveError::DigestMismatch {
            path: path.to_path_buf(),
            expected,
            actual,
        });
    }
    Ok(actual)
}

/// Extract `archive` into `dest`, which must not exist yet. See the module
/// documentation for what is refused; on any error `dest` is removed.
pub fn extract(archive: &Path, dest: &Path, limits: &Limits) -> Result<Extracted, ArchiveError> {
    let _span = tracing::info_span!("extract", archive = %crate::text::path(archive)).entered();
    let format = detect_format(archive)?;
    let archive_len = open_input(archive)?.metadata()?.len();

    // 1. Make the destination ourselves, private, failing if anything (a
    //    directory, a file, a link planted by someone) is already there.
    match std::fs::DirBuilder::new().mode(0o700).create(dest) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            return Err(ArchiveError::DestExists {
                path: dest.to_path_buf(),
            });
        }
        Err(e) => {
            return Err(ArchiveError::Io(io::Error::new(
                e.kind(),
                format!("failed to create directory `{}`: {e}", dest.display()),
            )));
        }
    }

    // 2. Fill it; 3. on any failure remove all of it (remove_dir_all does not
    //    follow links, so links in the tree cannot redirect the removal).
    let result = extract_into(archive, archive_len, format, dest, limits);
    match result {
        Ok(done) => {
            tracing::info!(
                entries = done.entries,
                bytes = done.total_bytes,
                top_level = %done.top_level,
                "extracted"
            );
            Ok(Extracted {
                root: dest.join(&done.top_level),
                top_level: done.top_level,
                format,
                entries: done.entries,
                total_bytes: done.total_bytes,
                stripped_modes: done.stripped_modes,
            })
        }
        Err(err) => {
            if let Err(e) = std::fs::remove_dir_all(dest) {
                tracing::warn!(dest = %crate::text::path(dest), error = %e, "failed to remove a partial extraction");
            }
            Err(err)
        }
    }
}

fn extract_into(
    archive: &Path,
    archive_len: u64,
    format: ArchiveFormat,
    dest: &Path,
    limits: &Limits,
) -> Result<tree::Finished, ArchiveError> {
    let budget = limits::Budget::new(limits, archive, archive_len);
    let mut tree = tree::Tree::new(dest, archive, budget);
    match format {
        ArchiveFormat::Zip => zip::extract(archive, &mut tree)?,
        tar_format => tar::extract(archive, tar_format, &mut tree)?,
    }
    tree.finish()
}

#[cfg(test)]
mod tests;
