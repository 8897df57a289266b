//! Wheel checks: after the build, what in the wheel a reviewer should look
//! at before anyone installs it — `.pth` files (their import lines run at
//! every interpreter start), commands it installs and the ones that shadow
//! common tools, native binaries and whether they were compiled in this
//! build or shipped prebuilt in the sdist, files outside the project's own
//! top-level names, and whether `RECORD` matches the archive. Before any
//! of that, [`belongs_to`] decides whether the wheel is the sdist's own at
//! all (one `.dist-info`, named for its project and version, with a
//! `WHEEL` and a `METADATA` that say so): a wheel that is not fails the
//! build instead of being reported on.
//!
//! Invariants: the wheel was written by the package's build, so it is
//! attacker data. Member names are only ever compared and displayed, never
//! used as paths; every read is bounded (entry count, central-directory
//! size, bytes per member and in total, text kept in memory); the sdist
//! tree is walked without following links. [`check`] and [`findings`] are
//! functions of the wheel file and an extracted sdist tree only (unit-
//! tested on wheels made in the tests); the build's wheel-check stage, the
//! pipeline's one call, is given the sdist as shipped (a second extraction
//! made before any package code ran), because the build wrote into its
//! own. Nothing here decides an exit code: `--fail-on` does, from the
//! findings' severities.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256, Sha384, Sha512};

use crate::events::findings::{Finding, FindingVerdict, OpKind, Severity, SourceLocation};

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

/// One member of a wheel, as read (content hashed, metadata kept for
/// comparisons, the first bytes kept for recognising binaries).
#[derive(Debug, Clone)]
pub struct Member {
    /// The name as stored (lossy UTF-8); never used as a path.
    pub name: String,
    pub is_dir: bool,
    pub is_symlink: bool,
    pub size: u64,
    pub sha256: [u8; 32],
    /// Digests RECORD asked for that are not sha256 (`sha384`, `sha512`).
    pub other_digests: Vec<(String, Vec<u8>)>,
    pub magic: Vec<u8>,
    /// Full text for metadata files and `.pth` files (bounded).
    pub text: Option<Vec<u8>>,
    /// DOS date and time parts.
    pub modified: Option<(u16, u8, u8, u8, u8, u8)>,
    pub unix_mode: Option<u32>,
    pub compression: String,
    pub extra: Vec<u8>,
}

/// A wheel read under [`Limits`].
#[derive(Debug, Clone)]
pub struct WheelContents {
    pub members: Vec<Member>,
    pub duplicate_names: bool,
    pub comment: Vec<u8>,
    pub unpacked_bytes: u64,
}

/// What the wheel carries that a reviewer should see.
#[derive(Debug, Clone, Default, Serialize)]
pub struct WheelCheck {
    pub members: u64,
    pub unpacked_bytes: u64,
    /// The wheel's `.dist-info` directory.
    pub dist_info: Option<String>,
    /// The project's own top-level names, and where they came from.
    pub top_level: Vec<String>,
    pub top_level_from: TopLevelSource,
    pub pth_files: Vec<PthFile>,
    pub entry_points: Vec<EntryPoint>,
    pub native: Vec<NativeBinary>,
    /// Files that install outside the project's own names.
    pub outside: Vec<OutsideFile>,
    /// Files for the environment's prefix (`*.data/data/…`), bounded.
    pub data_files: Vec<String>,
    pub record: RecordCheck,
    /// Set when the check could not read everything; findings say so too.
    pub incomplete: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TopLevelSource {
    /// The wheel's `top_level.txt`.
    TopLevelTxt,
    /// The distribution's name and the names the sdist has.
    #[default]
    Derived,
}

#[derive(Debug, Clone, Serialize)]
pub struct PthFile {
    pub path: String,
    /// The first non-empty line (bounded).
    pub first_line: String,
    /// Lines starting with `import`: these run at every interpreter start.
    pub import_lines: u64,
    /// The sdist file with the same bytes, if any.
    pub in_sdist: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EntryPoint {
    pub group: String,
    pub name: String,
    pub value: String,
    /// The common command this one would shadow on PATH.
    pub shadows: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct NativeBinary {
    pub path: String,
    pub format: &'static str,
    pub sha256: String,
    pub size_bytes: u64,
    /// `compiled`: not in the sdist, so produced by this build;
    /// `prebuilt`: shipped as these very bytes in the sdist.
    pub provenance: Provenance,
    /// Where in the sdist the same bytes are (relative to its top level).
    pub sdist_path: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Provenance {
    Compiled,
    Prebuilt,
}

#[derive(Debug, Clone, Serialize)]
pub struct OutsideFile {
    pub path: String,
    pub why: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct RecordCheck {
    /// The `RECORD` path, when the wheel has one.
    pub path: Option<String>,
    pub listed: u64,
    /// Every inconsistency, bounded; empty when RECORD matches the archive.
    pub problems: Vec<RecordProblem>,
    pub problems_total: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct RecordProblem {
    pub path: String,
    pub problem: String,
}

const MAX_LISTED: usize = 500;
const MAGIC_BYTES: usize = 4;
const PTH_TEXT_BYTES: u64 = 64 << 10;
const MAX_FINDINGS_PER_KIND: usize = 50;

/// Commands a wheel's scripts would shadow on PATH: a package installing
/// `pip` or `sudo` takes over whatever a user types next.
const COMMON_COMMANDS: &[&str] = &[
    "pip",
    "python",
    "pipx",
    "uv",
    "poetry",
    "twine",
    "virtualenv",
    "conda",
    "pytest",
    "tox",
    "ls",
    "cp",
    "mv",
    "rm",
    "cat",
    "cd",
    "echo",
    "env",
    "find",
    "grep",
    "sed",
    "awk",
    "which",
    "ps",
    "id",
    "kill",
    "chmod",
    "chown",
    "mount",
    "tar",
    "sudo",
    "su",
    "login",
    "passwd",
    "sh",
    "bash",
    "zsh",
    "ssh",
    "ssh-add",
    "ssh-agent",
    "ssh-keygen",
    "scp",
    "rsync",
    "git",
    "gh",
    "curl",
    "wget",
    "gpg",
    "openssl",
    "make",
    "cc",
    "gcc",
    "ld",
    "docker",
    "kubectl",
    "aws",
    "gcloud",
    "az",
    "npm",
    "node",
    "apt",
    "apt-get",
    "yum",
    "dnf",
    "systemctl",
    "crontab",
    "vi",
    "vim",
    "nano",
    "less",
    "man",
];

/// Top-level modules that take over the interpreter or its tooling when a
/// wheel installs its own copy into site-packages.
const SHADOWED_MODULES: &[&str] = &[
    "os",
    "sys",
    "site",
    "subprocess",
    "socket",
    "ssl",
    "json",
    "base64",
    "hashlib",
    "http",
    "urllib",
    "importlib",
    "encodings",
    "codecs",
    "io",
    "pip",
    "setuptools",
    "pkg_resources",
    "distutils",
    "_distutils_hack",
];

/// Modules Python imports by itself at start-up, wherever they are found.
const STARTUP_MODULES: &[&str] = &["sitecustomize", "usercustomize"];

/// Read a wheel under `limits`: every member's content is hashed (sha256,
/// plus the digests `RECORD` asks for), metadata texts and `.pth` files are
/// kept. The central directory's claims are checked before anything is
/// decompressed; every member is read to its real end, never past a bound.
pub fn read_wheel(path: &Path, limits: &Limits) -> Result<WheelContents, WheelError> {
    let io_err = |source| WheelError::Io {
        path: path.to_path_buf(),
        source,
    };
    let limit = |what: String| WheelError::Limit {
        path: path.to_path_buf(),
        what,
    };
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
    let mut zip =
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
    // RECORD first: it says which digest each member needs.
    let mut wanted: HashMap<String, Vec<String>> = HashMap::new();
    let record_index = (0..zip.len()).find(|&i| {
        zip.by_index_data(i)
            .map(|e| is_record_name(&String::from_utf8_lossy(e.name_raw())))
            .unwrap_or(false)
    });
    if let Some(i) = record_index {
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
    }

    let mut members = Vec::with_capacity(zip.len());
    let mut total: u64 = 0;
    let mut kept: u64 = 0;
    let mut buf = vec![0u8; 64 * 1024];
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).map_err(|source| WheelError::Zip {
            path: path.to_path_buf(),
            source,
        })?;
        let name = String::from_utf8_lossy(entry.name_raw()).into_owned();
        let declared = entry.size();
        if declared > limits.max_member_bytes {
            return Err(limit(format!(
                "the member `{}` unpacks to {declared} bytes (at most {})",
                crate::text::one_line(&name, 200),
                limits.max_member_bytes
            )));
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
        .min(limits.max_kept_bytes.saturating_sub(kept));
        let keep_text = text_cap > 0;
        let digests = wanted.get(&name).cloned().unwrap_or_default();
        let mut sha256 = Sha256::new();
        let mut sha384 = digests.iter().any(|d| d == "sha384").then(Sha384::new);
        let mut sha512 = digests.iter().any(|d| d == "sha512").then(Sha512::new);
        let mut magic = Vec::new();
        let mut text = keep_text.then(Vec::new);
        let mut size: u64 = 0;
        // Never read past the member's own bound, whatever it declared.
        let mut reader = (&mut entry).take(limits.max_member_bytes + 1);
        loop {
            let n = reader.read(&mut buf).map_err(|source| WheelError::Member {
                path: path.to_path_buf(),
                member: crate::text::one_line(&name, 200),
                source,
            })?;
            if n == 0 {
                break;
            }
            let chunk = &buf[..n];
            size += n as u64;
            total += n as u64;
            if size > limits.max_member_bytes || total > limits.max_total_bytes {
                return Err(limit(format!(
                    "the members unpack to more than {} bytes (stopped at `{}`)",
                    limits.max_total_bytes.min(limits.max_member_bytes),
                    crate::text::one_line(&name, 200)
                )));
            }
            sha256.update(chunk);
            if let Some(h) = sha384.as_mut() {
                h.update(chunk);
            }
            if let Some(h) = sha512.as_mut() {
                h.update(chunk);
            }
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
        kept += text.as_ref().map_or(0, |t| t.len() as u64);
        let mut other_digests = Vec::new();
        if let Some(h) = sha384 {
            other_digests.push(("sha384".to_string(), h.finalize().to_vec()));
        }
        if let Some(h) = sha512 {
            other_digests.push(("sha512".to_string(), h.finalize().to_vec()));
        }
        members.push(Member {
            name,
            is_dir,
            is_symlink,
            size,
            sha256: sha256.finalize().into(),
            other_digests,
            magic,
            text,
            modified,
            unix_mode,
            compression,
            extra,
        });
    }
    Ok(WheelContents {
        members,
        duplicate_names: zip.has_duplicate_names(),
        comment: zip.comment().to_vec(),
        unpacked_bytes: total,
    })
}

/// The entry count and central-directory size the end-of-central-directory
/// record claims (zip64 aware), read before the zip reader loads the
/// directory into memory.
fn central_directory_claims(file: &mut std::fs::File) -> std::io::Result<(u64, u64)> {
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

fn is_record_name(name: &str) -> bool {
    name.strip_suffix("/RECORD")
        .is_some_and(|d| d.ends_with(".dist-info") && !d.contains('/'))
}

fn is_metadata_text(name: &str) -> bool {
    let Some((dir, file)) = name.split_once('/') else {
        return false;
    };
    dir.ends_with(".dist-info")
        && matches!(
            file,
            "RECORD" | "entry_points.txt" | "top_level.txt" | "WHEEL" | "METADATA"
        )
}

/// One row of `RECORD`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordRow {
    pub path: String,
    pub hash: String,
    pub size: String,
}

/// `RECORD` is CSV (RFC 4180: fields with commas or quotes are quoted, a
/// quote inside doubled). Rows without a path are skipped.
pub fn parse_record(text: &[u8]) -> Vec<RecordRow> {
    let text = String::from_utf8_lossy(text);
    let mut rows = Vec::new();
    for line in text.lines() {
        let mut fields: Vec<String> = Vec::new();
        let mut field = String::new();
        let mut quoted = false;
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '"' if quoted && chars.peek() == Some(&'"') => {
                    field.push('"');
                    chars.next();
                }
                '"' => quoted = !quoted,
                ',' if !quoted => fields.push(std::mem::take(&mut field)),
                c => field.push(c),
            }
        }
        fields.push(field);
        let get = |i: usize| fields.get(i).cloned().unwrap_or_default();
        let path = get(0);
        if path.is_empty() {
            continue;
        }
        rows.push(RecordRow {
            path,
            hash: get(1),
            size: get(2),
        });
    }
    rows
}

/// Unpadded URL-safe base64, as wheels write digests.
pub fn urlsafe_b64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// Check `RECORD` against the archive: every file listed once, with a
/// sha256-or-stronger digest and the size that match; RECORD itself listed
/// without either; nothing listed that is not there.
pub fn check_record(contents: &WheelContents, dist_info: Option<&str>) -> RecordCheck {
    let mut check = RecordCheck::default();
    let mut problems: Vec<RecordProblem> = Vec::new();
    let mut problem = |path: &str, what: String| {
        problems.push(RecordProblem {
            path: path.to_string(),
            problem: what,
        })
    };
    if contents.duplicate_names {
        // The zip reader keeps one entry per name, so which name is unknown
        // here; that there is one is what matters.
        problem(
            "",
            "the zip's central directory names a member twice: installers disagree on which copy wins, and RECORD can only vouch for one".into(),
        );
    }
    let Some(dist_info) = dist_info else {
        problem("", "the wheel has no .dist-info directory".into());
        check.problems_total = problems.len() as u64;
        check.problems = problems;
        return check;
    };
    let record_path = format!("{dist_info}/RECORD");
    let Some(record) = contents
        .members
        .iter()
        .find(|m| m.name == record_path)
        .and_then(|m| m.text.as_ref())
    else {
        problem(&record_path, "the wheel has no RECORD".into());
        check.problems_total = problems.len() as u64;
        check.problems = problems;
        return check;
    };
    check.path = Some(record_path.clone());
    let by_name: HashMap<&str, &Member> = contents
        .members
        .iter()
        .map(|m| (m.name.as_str(), m))
        .collect();
    let rows = parse_record(record);
    check.listed = rows.len() as u64;
    let mut listed: BTreeSet<&str> = BTreeSet::new();
    let signature =
        |p: &str| p == format!("{dist_info}/RECORD.jws") || p == format!("{dist_info}/RECORD.p7s");
    for row in &rows {
        if !listed.insert(row.path.as_str()) {
            problem(&row.path, "listed more than once".into());
            continue;
        }
        let Some(member) = by_name.get(row.path.as_str()) else {
            problem(&row.path, "listed in RECORD but not in the wheel".into());
            continue;
        };
        if row.path == record_path || signature(&row.path) {
            if row.path == record_path && (!row.hash.is_empty() || !row.size.is_empty()) {
                problem(
                    &row.path,
                    "RECORD lists a hash or size for itself (it must not)".into(),
                );
            }
            continue;
        }
        let Some((algo, digest)) = row.hash.split_once('=') else {
            problem(&row.path, "listed without a hash".into());
            continue;
        };
        let actual = match algo {
            "sha256" => Some(member.sha256.to_vec()),
            "sha384" | "sha512" => member
                .other_digests
                .iter()
                .find(|(a, _)| a == algo)
                .map(|(_, d)| d.clone()),
            _ => None,
        };
        match actual {
            None => problem(
                &row.path,
                format!(
                    "hashed with `{}`, which is not allowed (sha256 or stronger)",
                    crate::text::one_line(algo, 40)
                ),
            ),
            Some(d) if urlsafe_b64(&d) != digest => problem(
                &row.path,
                format!(
                    "the {algo} in RECORD does not match the content ({} listed, {} in the wheel)",
                    crate::text::one_line(digest, 100),
                    urlsafe_b64(&d)
                ),
            ),
            Some(_) => {}
        }
        match row.size.parse::<u64>() {
            Ok(s) if s == member.size => {}
            Ok(s) => problem(
                &row.path,
                format!("RECORD says {s} bytes, the wheel has {}", member.size),
            ),
            Err(_) => problem(&row.path, "listed without a valid size".into()),
        }
    }
    if !listed.contains(record_path.as_str()) {
        problem(&record_path, "RECORD does not list itself".into());
    }
    for m in &contents.members {
        if !m.is_dir && !listed.contains(m.name.as_str()) {
            problem(&m.name, "in the wheel but not listed in RECORD".into());
        }
    }
    check.problems_total = problems.len() as u64;
    problems.truncate(MAX_LISTED);
    check.problems = problems;
    check
}

/// `entry_points.txt`: INI sections of `name = object.ref [extras]`.
pub fn parse_entry_points(text: &[u8]) -> Vec<EntryPoint> {
    let text = String::from_utf8_lossy(text);
    let mut group = String::new();
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(g) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            group = g.trim().to_string();
            continue;
        }
        if let Some((name, value)) = line.split_once('=') {
            out.push(EntryPoint {
                group: group.clone(),
                name: name.trim().to_string(),
                value: value.trim().to_string(),
                shadows: None,
            });
        }
        if out.len() >= 10_000 {
            break;
        }
    }
    out
}

/// The common command `command` would shadow, unless the project is that
/// command's own (pip installs `pip3.12`; that is pip's to install).
pub fn shadowed_command(command: &str, project: &str) -> Option<String> {
    let lower = command.to_ascii_lowercase();
    let base = lower.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    let base = if base.is_empty() {
        lower.as_str()
    } else {
        base
    };
    let own = |c: &str| module_name(project) == module_name(c);
    if (COMMON_COMMANDS.contains(&lower.as_str()) || COMMON_COMMANDS.contains(&base))
        && !own(base)
        && !own(&lower)
    {
        Some(base.to_string())
    } else {
        None
    }
}

/// A command name an installer can safely use as a file name in `bin/`.
fn plain_command_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '+'))
}

fn module_name(s: &str) -> String {
    s.to_ascii_lowercase().replace(['-', '.'], "_")
}

/// Recognise native code by its first bytes, or by its name when short.
fn native_format(m: &Member) -> Option<&'static str> {
    if m.magic.starts_with(b"\x7fELF") {
        return Some("elf");
    }
    if matches!(
        m.magic.as_slice(),
        [0xfe, 0xed, 0xfa, 0xce]
            | [0xfe, 0xed, 0xfa, 0xcf]
            | [0xce, 0xfa, 0xed, 0xfe]
            | [0xcf, 0xfa, 0xed, 0xfe]
    ) {
        return Some("mach-o");
    }
    let lower = m.name.to_ascii_lowercase();
    if m.magic.starts_with(b"MZ") && [".dll", ".pyd", ".exe"].iter().any(|e| lower.ends_with(e)) {
        return Some("pe");
    }
    let file = lower.rsplit('/').next().unwrap_or("");
    if file.ends_with(".so")
        || file.contains(".so.")
        || file.ends_with(".dylib")
        || file.ends_with(".pyd")
    {
        return Some("shared-library-name");
    }
    None
}

/// Is this member name something an installer could be tricked by?
fn unsafe_name(name: &str) -> Option<&'static str> {
    if name.starts_with('/') {
        return Some("an absolute path");
    }
    if name.contains('\\') {
        return Some("a backslash (a separator on Windows)");
    }
    if name.contains('\0') || name.chars().any(|c| c.is_control()) {
        return Some("control characters");
    }
    if name.contains('\u{fffd}') {
        return Some("bytes that are not UTF-8");
    }
    let trimmed = name.trim_end_matches('/');
    if trimmed.split('/').any(|c| c == "..") {
        return Some("a `..` component: it leaves the install directory");
    }
    if trimmed.split('/').any(|c| c.is_empty() || c == ".") {
        return Some("an empty or `.` component");
    }
    None
}

/// Names of directories and file stems in the sdist tree (what a derived
/// top-level name must match), and a size → paths index of its files.
struct SdistIndex {
    names: BTreeSet<String>,
    by_size: HashMap<u64, Vec<PathBuf>>,
    root: PathBuf,
}

impl SdistIndex {
    fn build(root: &Path) -> SdistIndex {
        let mut index = SdistIndex {
            names: BTreeSet::new(),
            by_size: HashMap::new(),
            root: root.to_path_buf(),
        };
        let mut stack = vec![root.to_path_buf()];
        let mut seen = 0usize;
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                seen += 1;
                if seen > 1_000_000 {
                    return index;
                }
                // symlink_metadata: a link in the tree is never followed.
                let Ok(meta) = std::fs::symlink_metadata(e.path()) else {
                    continue;
                };
                let name = e.file_name().to_string_lossy().into_owned();
                if meta.is_dir() {
                    index.names.insert(module_name(&name));
                    stack.push(e.path());
                } else if meta.is_file() {
                    let stem = name.split('.').next().unwrap_or("");
                    index.names.insert(module_name(stem));
                    index.by_size.entry(meta.len()).or_default().push(e.path());
                }
            }
        }
        index
    }

    /// The sdist file (relative path) holding exactly these bytes.
    fn find(&self, size: u64, sha256: &[u8; 32]) -> Option<String> {
        let mut candidates = self.by_size.get(&size)?.clone();
        candidates.sort();
        candidates.into_iter().find_map(|p| {
            (sha256_regular(&p, size)? == *sha256).then(|| {
                p.strip_prefix(&self.root)
                    .unwrap_or(&p)
                    .to_string_lossy()
                    .into_owned()
            })
        })
    }
}

/// The sha256 of a regular file of exactly `size` bytes, not following
/// links.
fn sha256_regular(path: &Path, size: u64) -> Option<[u8; 32]> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut hasher = Sha256::new();
    let mut reader = file.take(size + 1);
    let mut buf = vec![0u8; 64 * 1024];
    let mut seen = 0u64;
    loop {
        let n = reader.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        seen += n as u64;
        hasher.update(&buf[..n]);
    }
    (seen == size).then(|| hasher.finalize().into())
}

/// The name and version part of a wheel file name, normalised for
/// comparison with its `.dist-info` directory.
fn dist_info_for(wheel_filename: &str) -> Option<String> {
    let stem = wheel_filename.strip_suffix(".whl")?;
    let mut parts = stem.split('-');
    let name = parts.next()?;
    let version = parts.next()?;
    Some(format!(
        "{}-{}.dist-info",
        module_name(name),
        version.to_ascii_lowercase()
    ))
}

/// Check a wheel against the sdist it was built from.
pub fn check(
    wheel: &Path,
    wheel_filename: &str,
    sdist_tree: &Path,
    project: &str,
    limits: &Limits,
) -> WheelCheck {
    match read_wheel(wheel, limits) {
        Ok(contents) => check_contents(&contents, wheel_filename, sdist_tree, project),
        Err(e) => WheelCheck {
            incomplete: Some(e.to_string()),
            ..WheelCheck::default()
        },
    }
}

/// [`check`] over a wheel already read.
pub fn check_contents(
    contents: &WheelContents,
    wheel_filename: &str,
    sdist_tree: &Path,
    project: &str,
) -> WheelCheck {
    let sdist = SdistIndex::build(sdist_tree);
    let mut out = WheelCheck {
        members: contents.members.len() as u64,
        unpacked_bytes: contents.unpacked_bytes,
        ..WheelCheck::default()
    };
    let mut outside = Vec::new();
    let mut flag = |path: &str, why: String| {
        outside.push(OutsideFile {
            path: path.to_string(),
            why,
        })
    };

    // 1. The metadata directory: exactly one, the wheel's own.
    let dist_infos: BTreeSet<&str> = contents
        .members
        .iter()
        .filter_map(|m| m.name.split_once('/').map(|(d, _)| d))
        .filter(|d| d.ends_with(".dist-info"))
        .collect();
    let expected = dist_info_for(wheel_filename);
    let own = dist_infos
        .iter()
        .find(|d| dist_info_matches(d, expected.as_deref()))
        .or_else(|| dist_infos.iter().next())
        .map(|d| d.to_string());
    for d in &dist_infos {
        if Some(*d) != own.as_deref() {
            flag(
                d,
                "a second .dist-info directory: metadata of another distribution, which installing this wheel would overwrite".into(),
            );
        }
    }
    out.dist_info = own.clone();
    let data_dir = own
        .as_deref()
        .map(|d| format!("{}.data", d.trim_end_matches(".dist-info")));
    let text_of = |file: &str| -> Option<&Vec<u8>> {
        let want = format!("{}/{file}", own.as_deref()?);
        contents
            .members
            .iter()
            .find(|m| m.name == want)
            .and_then(|m| m.text.as_ref())
    };

    // 2. The project's own top-level names.
    let listed_top: Option<BTreeSet<String>> = text_of("top_level.txt").map(|t| {
        String::from_utf8_lossy(t)
            .lines()
            .map(|l| l.trim().replace('\\', "/"))
            .filter(|l| !l.is_empty())
            .map(|l| module_name(l.split('/').next().unwrap_or("")))
            .take(1000)
            .collect()
    });
    out.top_level_from = if listed_top.is_some() {
        TopLevelSource::TopLevelTxt
    } else {
        TopLevelSource::Derived
    };
    let project_module = module_name(project);
    let belongs = |module: &str| -> bool {
        match &listed_top {
            Some(set) => set.contains(module),
            None => module == project_module || sdist.names.contains(module),
        }
    };
    let mut top_level = BTreeSet::new();

    // 3. Every member, by where it installs.
    let mut scripts: Vec<String> = Vec::new();
    let mut landed: HashMap<&str, &str> = HashMap::new();
    for m in &contents.members {
        let name = m.name.as_str();
        if let Some(why) = unsafe_name(name) {
            flag(name, format!("the member name has {why}"));
            continue;
        }
        if m.is_symlink {
            flag(name, "a symbolic link in the wheel".into());
        }
        if m.is_dir {
            continue;
        }
        let (first, rest) = name.split_once('/').unwrap_or((name, ""));
        if first.ends_with(".dist-info") {
            continue;
        }
        // Where in site-packages (or elsewhere) this member lands.
        let site_path: Option<&str> = if Some(first) == data_dir.as_deref() {
            let (scheme, inner) = rest.split_once('/').unwrap_or((rest, ""));
            match scheme {
                "purelib" | "platlib" => Some(inner),
                "scripts" => {
                    scripts.push(inner.to_string());
                    None
                }
                "headers" => None,
                "data" => {
                    if out.data_files.len() < MAX_LISTED {
                        out.data_files.push(inner.to_string());
                    }
                    let risky = inner.starts_with("lib/")
                        || inner.starts_with("lib64/")
                        || inner.starts_with("bin/")
                        || inner.starts_with("etc/")
                        || inner.contains("site-packages/")
                        || inner.ends_with(".pth");
                    if risky {
                        flag(
                            name,
                            format!(
                                "installs `{inner}` under the environment's prefix, beside the interpreter's own files"
                            ),
                        );
                    }
                    None
                }
                _ => {
                    flag(
                        name,
                        format!(
                            "an unknown install scheme `{}` in the .data directory",
                            crate::text::one_line(scheme, 60)
                        ),
                    );
                    None
                }
            }
        } else if first.ends_with(".data") {
            flag(
                name,
                "a .data directory that does not belong to this wheel's distribution".into(),
            );
            None
        } else {
            Some(name)
        };
        let Some(site_path) = site_path else {
            continue;
        };
        if site_path.is_empty() {
            continue;
        }
        // The root and `*.data/purelib|platlib` all land in site-packages:
        // two members for one place, and the installer picks one.
        if let Some(other) = landed.insert(site_path, name) {
            flag(
                name,
                format!(
                    "installs to the same place in site-packages as `{}`; one silently replaces the other",
                    crate::text::one_line(other, 200)
                ),
            );
        }
        let (top, below) = site_path.split_once('/').unwrap_or((site_path, ""));
        let is_root_file = below.is_empty();
        if is_root_file && top.ends_with(".pth") {
            // Reported as a .pth file below.
            continue;
        }
        let module = module_name(top.split('.').next().unwrap_or(top));
        if STARTUP_MODULES.contains(&module.as_str()) {
            flag(
                name,
                format!(
                    "`{module}` is imported by Python itself at every start: code that runs in every interpreter of the environment"
                ),
            );
            continue;
        }
        if SHADOWED_MODULES.contains(&module.as_str())
            && module != project_module
            && project_module != "setuptools"
        {
            flag(
                name,
                format!(
                    "installs its own `{module}`, shadowing the module of that name for every program in the environment"
                ),
            );
            continue;
        }
        let importable = !is_root_file
            || [".py", ".so", ".pyd", ".pyc"]
                .iter()
                .any(|e| top.ends_with(e));
        if belongs(&module) && importable {
            top_level.insert(module);
        } else if !importable {
            flag(
                name,
                "a file at the top of site-packages that is not a module".into(),
            );
        } else {
            let why = match &listed_top {
                Some(_) => format!("`{module}` is not one of the names in top_level.txt"),
                None => {
                    format!("`{module}` is neither the distribution's name nor a name in the sdist")
                }
            };
            flag(name, why);
        }
    }
    out.top_level = top_level.into_iter().collect();

    // 4. .pth files: at the top of site-packages they are read at every
    //    interpreter start; their `import` lines are executed.
    for m in &contents.members {
        let site = m
            .name
            .strip_prefix(
                data_dir
                    .as_deref()
                    .map(|d| format!("{d}/purelib/"))
                    .unwrap_or_default()
                    .as_str(),
            )
            .or_else(|| {
                m.name.strip_prefix(
                    data_dir
                        .as_deref()
                        .map(|d| format!("{d}/platlib/"))
                        .unwrap_or_default()
                        .as_str(),
                )
            })
            .unwrap_or(&m.name);
        if m.is_dir
            || !site.ends_with(".pth")
            || site.contains('/')
            || unsafe_name(&m.name).is_some()
        {
            continue;
        }
        let text = String::from_utf8_lossy(m.text.as_deref().unwrap_or_default()).into_owned();
        let first_line = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("")
            .chars()
            .take(300)
            .collect();
        let import_lines = text
            .lines()
            .filter(|l| l.starts_with("import ") || l.starts_with("import\t"))
            .count() as u64;
        out.pth_files.push(PthFile {
            path: m.name.clone(),
            first_line,
            import_lines,
            in_sdist: sdist.find(m.size, &m.sha256),
        });
    }

    // 5. Commands: console and GUI scripts, and scripts in the data dir.
    if let Some(t) = text_of("entry_points.txt") {
        out.entry_points = parse_entry_points(t);
    }
    for s in scripts {
        out.entry_points.push(EntryPoint {
            group: "data-scripts".into(),
            name: s,
            value: String::new(),
            shadows: None,
        });
    }
    for ep in &mut out.entry_points {
        if matches!(
            ep.group.as_str(),
            "console_scripts" | "gui_scripts" | "data-scripts"
        ) {
            ep.shadows = shadowed_command(&ep.name, project);
        }
    }

    // 6. Native code, and whether the sdist shipped it as is.
    for m in &contents.members {
        if m.is_dir || unsafe_name(&m.name).is_some() {
            continue;
        }
        let Some(format) = native_format(m) else {
            continue;
        };
        let sdist_path = sdist.find(m.size, &m.sha256);
        out.native.push(NativeBinary {
            path: m.name.clone(),
            format,
            sha256: hex::encode(m.sha256),
            size_bytes: m.size,
            provenance: if sdist_path.is_some() {
                Provenance::Prebuilt
            } else {
                Provenance::Compiled
            },
            sdist_path,
        });
    }

    // 7. RECORD.
    out.record = check_record(contents, own.as_deref());
    outside.truncate(MAX_LISTED);
    out.outside = outside;
    out
}

fn dist_info_matches(dir: &str, expected: Option<&str>) -> bool {
    let Some(expected) = expected else {
        return false;
    };
    let Some(stem) = dir.strip_suffix(".dist-info") else {
        return false;
    };
    let Some((name, version)) = stem.rsplit_once('-') else {
        return false;
    };
    format!(
        "{}-{}.dist-info",
        module_name(name),
        version.to_ascii_lowercase()
    ) == expected
}

fn wheel_finding(
    severity: Severity,
    kind: OpKind,
    target: &str,
    message: String,
    origin: Option<SourceLocation>,
) -> Finding {
    Finding {
        severity,
        kind,
        target: crate::text::one_line(target, 300),
        verdict: FindingVerdict::Allowed,
        decided_by: None,
        origin,
        process_chain: Vec::new(),
        seen_by: vec!["wheel-check"],
        message,
        count: 1,
        suggestion: None,
    }
}

/// A location in the sdist for a wheel member shipped as is.
fn sdist_origin(path: &str, line: u32, text: Option<String>) -> SourceLocation {
    SourceLocation {
        file: path.to_string(),
        line,
        text,
        in_sdist: true,
        supplied_by: "wheel-check",
    }
}

/// The findings a check stands for: `review` for what should stop an
/// unattended install, `notice` for what a reviewer should know.
pub fn findings(check: &WheelCheck, wheel_filename: &str) -> Vec<Finding> {
    use crate::text::one_line;
    let mut out = Vec::new();
    if let Some(why) = &check.incomplete {
        out.push(wheel_finding(
            Severity::Review,
            OpKind::WheelRecord,
            wheel_filename,
            format!("the wheel could not be checked: {}", one_line(why, 300)),
            None,
        ));
        return out;
    }
    for p in &check.pth_files {
        let first = if p.first_line.is_empty() {
            "(empty)".to_string()
        } else {
            format!("`{}`", one_line(&p.first_line, 160))
        };
        out.push(wheel_finding(
            Severity::Review,
            OpKind::WheelPth,
            &p.path,
            format!(
                "a .pth file for site-packages: its import lines run at every interpreter start ({} import line(s)); first line: {first}",
                p.import_lines
            ),
            p.in_sdist
                .as_ref()
                .map(|s| sdist_origin(s, 1, Some(p.first_line.clone()))),
        ));
    }
    let mut commands = 0usize;
    let mut groups: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for ep in &check.entry_points {
        let is_command = matches!(
            ep.group.as_str(),
            "console_scripts" | "gui_scripts" | "data-scripts"
        );
        if !is_command {
            groups
                .entry(ep.group.as_str())
                .or_default()
                .push(ep.name.as_str());
            continue;
        }
        let what = if ep.group == "data-scripts" {
            "a script from the wheel's data directory".to_string()
        } else {
            format!("`{}`", one_line(&ep.value, 120))
        };
        if !plain_command_name(&ep.name) {
            out.push(wheel_finding(
                Severity::Review,
                OpKind::WheelEntryPoint,
                &ep.name,
                format!(
                    "a command name that is not a plain file name: installers write the script at bin/NAME, so a separator or `..` puts it elsewhere; it runs {what}"
                ),
                None,
            ));
        } else if let Some(cmd) = &ep.shadows {
            out.push(wheel_finding(
                Severity::Review,
                OpKind::WheelEntryPoint,
                &ep.name,
                format!(
                    "installs a command named like `{cmd}`, which it would shadow on PATH; it runs {what}"
                ),
                None,
            ));
        } else if commands < MAX_FINDINGS_PER_KIND {
            commands += 1;
            out.push(wheel_finding(
                Severity::Notice,
                OpKind::WheelEntryPoint,
                &ep.name,
                format!(
                    "installs the command `{}`, which runs {what}",
                    one_line(&ep.name, 80)
                ),
                None,
            ));
        }
    }
    for (group, names) in groups.iter().take(MAX_FINDINGS_PER_KIND) {
        let shown: Vec<String> = names.iter().take(10).map(|n| one_line(n, 60)).collect();
        let more = if names.len() > 10 {
            format!(" and {} more", names.len() - 10)
        } else {
            String::new()
        };
        out.push(wheel_finding(
            Severity::Notice,
            OpKind::WheelEntryPoint,
            &format!("[{group}]"),
            format!(
                "{} entry point(s) that programs reading the group load: {}{more}",
                names.len(),
                shown.join(", ")
            ),
            None,
        ));
    }
    for n in check.native.iter().take(MAX_FINDINGS_PER_KIND * 4) {
        match n.provenance {
            Provenance::Prebuilt => {
                let at = n.sdist_path.as_deref().unwrap_or("");
                out.push(wheel_finding(
                    Severity::Review,
                    OpKind::WheelNative,
                    &n.path,
                    format!(
                        "native code ({}) that was not compiled in this build: prebuilt, shipped in the sdist at {}",
                        n.format,
                        one_line(at, 200)
                    ),
                    Some(sdist_origin(at, 0, None)),
                ));
            }
            Provenance::Compiled => out.push(wheel_finding(
                Severity::Notice,
                OpKind::WheelNative,
                &n.path,
                format!(
                    "native code ({}) compiled during this build (no file of the sdist has these bytes)",
                    n.format
                ),
                None,
            )),
        }
    }
    for o in check.outside.iter().take(MAX_FINDINGS_PER_KIND) {
        out.push(wheel_finding(
            Severity::Review,
            OpKind::WheelLayout,
            &o.path,
            format!("installs outside the project's own names: {}", o.why),
            None,
        ));
    }
    if check.outside.len() > MAX_FINDINGS_PER_KIND {
        out.push(wheel_finding(
            Severity::Review,
            OpKind::WheelLayout,
            wheel_filename,
            format!(
                "and {} more files outside the project's own names (see wheel_check.outside)",
                check.outside.len() - MAX_FINDINGS_PER_KIND
            ),
            None,
        ));
    }
    let plain_data = check.data_files.len();
    if plain_data > 0 {
        out.push(wheel_finding(
            Severity::Notice,
            OpKind::WheelLayout,
            &format!("{}.data/data", check.dist_info.as_deref().unwrap_or("?").trim_end_matches(".dist-info")),
            format!(
                "{plain_data} file(s) installed under the environment's prefix rather than site-packages (see wheel_check.data_files)"
            ),
            None,
        ));
    }
    for p in check.record.problems.iter().take(MAX_FINDINGS_PER_KIND) {
        out.push(wheel_finding(
            Severity::Review,
            OpKind::WheelRecord,
            if p.path.is_empty() {
                wheel_filename
            } else {
                &p.path
            },
            format!("RECORD does not match the wheel: {}", p.problem),
            None,
        ));
    }
    if check.record.problems_total > MAX_FINDINGS_PER_KIND as u64 {
        out.push(wheel_finding(
            Severity::Review,
            OpKind::WheelRecord,
            wheel_filename,
            format!(
                "and {} more RECORD problems (see wheel_check.record)",
                check.record.problems_total - MAX_FINDINGS_PER_KIND as u64
            ),
            None,
        ));
    }
    out
}

/// Why a built wheel is not the sdist's own: a build failure, never a
/// finding (installers would refuse such a wheel, or install it as
/// another project).
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum NotItsWheel {
    #[error("the wheel `{wheel}` has no .dist-info directory")]
    NoDistInfo { wheel: String },
    #[error(
        "the wheel `{wheel}` has {count} .dist-info directories ({dirs}); a wheel has one, its own"
    )]
    SeveralDistInfo {
        wheel: String,
        count: usize,
        dirs: String,
    },
    #[error(
        "the wheel `{wheel}` holds the .dist-info directory `{dir}`, which is not that of {release} (`{expected}`)"
    )]
    DistInfoName {
        wheel: String,
        dir: String,
        release: String,
        expected: String,
    },
    #[error("the wheel `{wheel}` has no `{dir}/{file}`")]
    Missing {
        wheel: String,
        dir: String,
        file: &'static str,
    },
    #[error("the wheel `{wheel}`: `{dir}/{file}` {problem}")]
    Invalid {
        wheel: String,
        dir: String,
        file: &'static str,
        problem: String,
    },
    #[error("the wheel `{wheel}`'s METADATA says it is `{found}`, but the sdist is {release}")]
    OtherRelease {
        wheel: String,
        found: String,
        release: String,
    },
}

/// Check that a wheel (already read; its file name already checked to be
/// `release`'s) is `release`'s own: exactly one top-level `.dist-info`
/// directory, named for that project and version; its `WHEEL` (with a
/// `Wheel-Version` 1.x) and `METADATA` (with `Metadata-Version`, and a
/// `Name` and `Version` that are `release`'s, PEP 503/440) there and
/// readable. Returns the `.dist-info` directory's name.
pub fn belongs_to(
    contents: &WheelContents,
    wheel: &str,
    release: &crate::names::Release,
) -> Result<String, NotItsWheel> {
    use crate::names::{Name, Version, shown, split_name_version};
    let wheel = wheel.to_string();
    let dirs: BTreeSet<&str> = contents
        .members
        .iter()
        .filter_map(|m| m.name.split_once('/').map(|(d, _)| d))
        .filter(|d| d.ends_with(".dist-info"))
        .collect();
    let dir = match dirs.len() {
        0 => return Err(NotItsWheel::NoDistInfo { wheel }),
        1 => dirs.first().copied().unwrap_or_default(),
        count => {
            let listed: Vec<String> = dirs.iter().take(5).map(|d| shown(d, 100)).collect();
            return Err(NotItsWheel::SeveralDistInfo {
                wheel,
                count,
                dirs: listed.join(", "),
            });
        }
    };
    let stem = dir.trim_end_matches(".dist-info");
    let named = split_name_version(stem, Some(&release.name));
    if !named.is_some_and(|r| r.version == release.version) {
        return Err(NotItsWheel::DistInfoName {
            wheel,
            dir: shown(dir, 200),
            release: release.to_string(),
            expected: format!("{}-{}.dist-info", release.name.escaped(), release.version),
        });
    }
    let dir = dir.to_string();
    let headers = |file: &'static str| -> Result<Vec<(String, String)>, NotItsWheel> {
        let path = format!("{dir}/{file}");
        let member = contents
            .members
            .iter()
            .find(|m| m.name == path && !m.is_dir)
            .ok_or_else(|| NotItsWheel::Missing {
                wheel: wheel.clone(),
                dir: dir.clone(),
                file,
            })?;
        let text = member.text.as_deref().unwrap_or_default();
        Ok(crate::project::parse_headers(&String::from_utf8_lossy(
            text,
        )))
    };
    let invalid = |file, problem: String| NotItsWheel::Invalid {
        wheel: wheel.clone(),
        dir: dir.clone(),
        file,
        problem,
    };
    let header = crate::project::header;

    let wheel_headers = headers("WHEEL")?;
    let wheel_version = header(&wheel_headers, "wheel-version")
        .ok_or_else(|| invalid("WHEEL", "has no `Wheel-Version`".into()))?;
    let major_one = wheel_version.split_once('.').is_some_and(|(major, minor)| {
        major == "1" && !minor.is_empty() && minor.bytes().all(|b| b.is_ascii_digit())
    });
    if !major_one {
        return Err(invalid(
            "WHEEL",
            format!(
                "has `Wheel-Version: {}`; only 1.x is understood",
                shown(wheel_version, 40)
            ),
        ));
    }

    let metadata = headers("METADATA")?;
    let field = |key: &str, label: &str| {
        header(&metadata, key).ok_or_else(|| invalid("METADATA", format!("has no `{label}`")))
    };
    field("metadata-version", "Metadata-Version")?;
    let name = field("name", "Name")?;
    let version = field("version", "Version")?;
    let name = Name::parse(name).map_err(|e| invalid("METADATA", format!("`Name`: {e}")))?;
    let version =
        Version::parse(version).map_err(|e| invalid("METADATA", format!("`Version`: {e}")))?;
    if !name.same_project(&release.name) || version != release.version {
        return Err(NotItsWheel::OtherRelease {
            wheel,
            found: format!("{name} {version}"),
            release: release.to_string(),
        });
    }
    Ok(dir)
}

/// The `wheel-check` stage event's detail: `detail` (the wheel) with the
/// check's counts added as `checks`.
pub fn stage_detail(
    mut detail: serde_json::Value,
    check: Option<&WheelCheck>,
) -> serde_json::Value {
    if let (Some(c), Some(map)) = (check, detail.as_object_mut()) {
        let prebuilt = c
            .native
            .iter()
            .filter(|n| n.provenance == Provenance::Prebuilt)
            .count();
        map.insert(
            "checks".into(),
            serde_json::json!({
                "members": c.members,
                "pth_files": c.pth_files.len(),
                "entry_points": c.entry_points.len(),
                "native_compiled": c.native.len() - prebuilt,
                "native_prebuilt": prebuilt,
                "outside": c.outside.len(),
                "record_problems": c.record.problems_total,
                "incomplete": c.incomplete,
            }),
        );
    }
    detail
}

/// One line for the text summary: what the wheel holds, in counts.
pub fn summary_line(c: &WheelCheck) -> String {
    if let Some(why) = &c.incomplete {
        return format!("NOT CHECKED: {}", crate::text::one_line(why, 200));
    }
    let mut parts = vec![format!("{} member(s)", c.members)];
    if !c.native.is_empty() {
        let prebuilt = c
            .native
            .iter()
            .filter(|n| n.provenance == Provenance::Prebuilt)
            .count();
        parts.push(format!(
            "{} native ({} compiled here, {prebuilt} prebuilt)",
            c.native.len(),
            c.native.len() - prebuilt
        ));
    }
    let commands = c
        .entry_points
        .iter()
        .filter(|e| {
            matches!(
                e.group.as_str(),
                "console_scripts" | "gui_scripts" | "data-scripts"
            )
        })
        .count();
    if commands > 0 {
        parts.push(format!("{commands} command(s)"));
    }
    if !c.pth_files.is_empty() {
        parts.push(format!("{} .pth file(s)", c.pth_files.len()));
    }
    if !c.outside.is_empty() {
        parts.push(format!("{} outside the project", c.outside.len()));
    }
    parts.push(match c.record.problems_total {
        0 => "RECORD matches".to_string(),
        n => format!("RECORD: {n} problem(s)"),
    });
    parts.join(", ")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Write;

    /// Members of a test wheel: name, bytes, DOS time (year, second).
    pub(crate) struct TestWheel {
        pub members: Vec<(String, Vec<u8>)>,
        pub year: u16,
        pub mode: u32,
    }

    impl TestWheel {
        pub(crate) fn new(dist: &str) -> TestWheel {
            TestWheel {
                members: vec![
                    (
                        format!("{dist}.dist-info/METADATA"),
                        format!("Metadata-Version: 2.1\nName: {dist}\n").into_bytes(),
                    ),
                    (
                        format!("{dist}.dist-info/WHEEL"),
                        b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\n".to_vec(),
                    ),
                ],
                year: 1980,
                mode: 0o644,
            }
        }

        pub(crate) fn add(mut self, name: &str, data: &[u8]) -> TestWheel {
            self.members.push((name.to_string(), data.to_vec()));
            self
        }

        /// A RECORD that matches the members, with `RECORD,,` last.
        pub(crate) fn record(&self, dist_info: &str) -> String {
            let mut text = String::new();
            for (name, data) in &self.members {
                text.push_str(&format!(
                    "{name},sha256={},{}\n",
                    urlsafe_b64(&Sha256::digest(data)),
                    data.len()
                ));
            }
            text.push_str(&format!("{dist_info}/RECORD,,\n"));
            text
        }

        pub(crate) fn write(&self, path: &Path, record: Option<(&str, &str)>) {
            let file = std::fs::File::create(path).unwrap();
            let mut zip = zip::ZipWriter::new(file);
            let opts = zip::write::SimpleFileOptions::default()
                .last_modified_time(
                    zip::DateTime::from_date_and_time(self.year, 1, 1, 0, 0, 0).unwrap(),
                )
                .unix_permissions(self.mode);
            let mut all = self.members.clone();
            if let Some((dist_info, text)) = record {
                all.push((format!("{dist_info}/RECORD"), text.as_bytes().to_vec()));
            }
            for (name, data) in &all {
                zip.start_file(name.as_str(), opts).unwrap();
                zip.write_all(data).unwrap();
            }
            zip.finish().unwrap();
        }
    }

    fn checked(w: &TestWheel, record: Option<&str>, tree: &Path, project: &str) -> WheelCheck {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("demo-1.0-py3-none-any.whl");
        let di = "demo-1.0.dist-info";
        let rec = record.map(str::to_string).unwrap_or_else(|| w.record(di));
        w.write(&path, Some((di, &rec)));
        check(
            &path,
            "demo-1.0-py3-none-any.whl",
            tree,
            project,
            &Limits::default(),
        )
    }

    fn demo() -> TestWheel {
        TestWheel::new("demo-1.0")
            .add("demo/__init__.py", b"VALUE = 1\n")
            .add("demo-1.0.dist-info/top_level.txt", b"demo\n")
    }

    /// `belongs_to` over a wheel of `members` (RECORD added), as release demo 1.0.
    fn belongs(members: &[(&str, &str)]) -> Result<String, NotItsWheel> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("demo-1.0-py3-none-any.whl");
        let w = TestWheel {
            members: members
                .iter()
                .map(|(n, d)| (n.to_string(), d.as_bytes().to_vec()))
                .collect(),
            year: 1980,
            mode: 0o644,
        };
        w.write(&path, None);
        let contents = read_wheel(&path, &Limits::default()).unwrap();
        let release = crate::names::Release {
            name: crate::names::Name::parse("demo").unwrap(),
            version: crate::names::Version::parse("1.0").unwrap(),
        };
        belongs_to(&contents, "demo-1.0-py3-none-any.whl", &release)
    }

    const METADATA: &str = "Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n\nlong text\n";
    const WHEEL: &str = "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n";

    #[test]
    fn a_wheel_is_its_sdists_own_only_with_one_matching_dist_info() {
        let ok = |members: &[(&str, &str)]| belongs(members).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            ok(&[
                ("demo-1.0.dist-info/METADATA", METADATA),
                ("demo-1.0.dist-info/WHEEL", WHEEL),
                ("demo/__init__.py", ""),
            ]),
            "demo-1.0.dist-info"
        );
        // Older spellings of the same name and version.
        ok(&[
            (
                "Demo-1.0.0.dist-info/METADATA",
                "Metadata-Version: 1.2\nName: Demo\nVersion: 1.0.0\n",
            ),
            ("Demo-1.0.0.dist-info/WHEEL", "Wheel-Version: 1.1\n"),
        ]);

        let err = |members: &[(&str, &str)]| belongs(members).unwrap_err().to_string();
        let msg = err(&[("demo/__init__.py", "")]);
        assert!(msg.contains("no .dist-info"), "{msg}");
        let msg = err(&[
            ("demo-1.0.dist-info/METADATA", METADATA),
            ("demo-1.0.dist-info/WHEEL", WHEEL),
            ("good-1.0.dist-info/METADATA", "Name: good\n"),
        ]);
        assert!(
            msg.contains("2 .dist-info directories") && msg.contains("good-1.0.dist-info"),
            "{msg}"
        );
        let msg = err(&[
            ("good-1.0.dist-info/METADATA", METADATA),
            ("good-1.0.dist-info/WHEEL", WHEEL),
        ]);
        assert!(
            msg.contains("`good-1.0.dist-info`, which is not that of demo 1.0"),
            "{msg}"
        );
        let msg = err(&[
            ("demo-1.1.dist-info/METADATA", METADATA),
            ("demo-1.1.dist-info/WHEEL", WHEEL),
        ]);
        assert!(
            msg.contains("not that of demo 1.0 (`demo-1.0.dist-info`)"),
            "{msg}"
        );
        let msg = err(&[("demo-1.0.dist-info/METADATA", METADATA)]);
        assert!(msg.contains("has no `demo-1.0.dist-info/WHEEL`"), "{msg}");
        let msg = err(&[("demo-1.0.dist-info/WHEEL", WHEEL)]);
        assert!(
            msg.contains("has no `demo-1.0.dist-info/METADATA`"),
            "{msg}"
        );
        let msg = err(&[
            ("demo-1.0.dist-info/METADATA", METADATA),
            ("demo-1.0.dist-info/WHEEL", "Root-Is-Purelib: true\n"),
        ]);
        assert!(msg.contains("no `Wheel-Version`"), "{msg}");
        let msg = err(&[
            ("demo-1.0.dist-info/METADATA", METADATA),
            ("demo-1.0.dist-info/WHEEL", "Wheel-Version: 2.0\n"),
        ]);
        assert!(msg.contains("only 1.x"), "{msg}");
        let msg = err(&[
            (
                "demo-1.0.dist-info/METADATA",
                "Metadata-Version: 2.1\nName: good\nVersion: 1.0\n",
            ),
            ("demo-1.0.dist-info/WHEEL", WHEEL),
        ]);
        assert!(
            msg.contains("METADATA says it is `good 1.0`, but the sdist is demo 1.0"),
            "{msg}"
        );
        let msg = err(&[
            (
                "demo-1.0.dist-info/METADATA",
                "Metadata-Version: 2.1\nName: demo\nVersion: 2.0\n",
            ),
            ("demo-1.0.dist-info/WHEEL", WHEEL),
        ]);
        assert!(msg.contains("`demo 2.0`"), "{msg}");
        let msg = err(&[
            (
                "demo-1.0.dist-info/METADATA",
                "Metadata-Version: 2.1\nName: <demo>\nVersion: 1.0\n",
            ),
            ("demo-1.0.dist-info/WHEEL", WHEEL),
        ]);
        assert!(msg.contains("`Name`") && !msg.contains('<'), "{msg}");
        let msg = err(&[
            ("demo-1.0.dist-info/METADATA", "Name: demo\nVersion: 1.0\n"),
            ("demo-1.0.dist-info/WHEEL", WHEEL),
        ]);
        assert!(msg.contains("no `Metadata-Version`"), "{msg}");
    }

    #[test]
    fn digests_are_unpadded_urlsafe_base64() {
        assert_eq!(
            urlsafe_b64(&Sha256::digest(b"")),
            "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"
        );
        assert_eq!(urlsafe_b64(b"\xfb\xff"), "-_8");
        assert_eq!(urlsafe_b64(b"abc"), "YWJj");
    }

    #[test]
    fn record_parses_quoted_fields() {
        let rows = parse_record(b"\"a,b.py\",sha256=x,3\nplain.py,,\n\n\"q\"\"uote\",h,1\n");
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].path, "a,b.py");
        assert_eq!(rows[0].size, "3");
        assert_eq!(rows[1].hash, "");
        assert_eq!(rows[2].path, "q\"uote");
    }

    #[test]
    fn a_consistent_record_has_no_problems() {
        let tree = tempfile::tempdir().unwrap();
        let c = checked(&demo(), None, tree.path(), "demo");
        assert_eq!(c.incomplete, None);
        assert_eq!(c.record.path.as_deref(), Some("demo-1.0.dist-info/RECORD"));
        assert!(c.record.problems.is_empty(), "{:?}", c.record.problems);
        assert_eq!(c.record.listed, 5);
        assert_eq!(c.top_level, vec!["demo"]);
        assert_eq!(c.top_level_from, TopLevelSource::TopLevelTxt);
        assert!(c.outside.is_empty(), "{:?}", c.outside);
        assert!(findings(&c, "demo-1.0-py3-none-any.whl").is_empty());
    }

    #[test]
    fn a_tampered_record_is_reported_entry_by_entry() {
        let tree = tempfile::tempdir().unwrap();
        let w = demo();
        let good = w.record("demo-1.0.dist-info");
        // The content changed after RECORD was written (same length, new
        // hash), a file was dropped from RECORD, a listed file is missing,
        // and RECORD claims a hash for itself.
        let tampered = good
            .replace(
                &urlsafe_b64(&Sha256::digest(b"VALUE = 1\n")),
                &urlsafe_b64(&Sha256::digest(b"VALUE = 2\n")),
            )
            .lines()
            .filter(|l| !l.starts_with("demo-1.0.dist-info/top_level.txt"))
            .map(|l| {
                if l.starts_with("demo-1.0.dist-info/RECORD") {
                    "demo-1.0.dist-info/RECORD,sha256=AAAA,10".to_string()
                } else {
                    l.to_string()
                }
            })
            .chain(["demo/gone.py,sha256=AAAA,1".to_string()])
            .chain(["demo-1.0.dist-info/METADATA,md5=AAAA,1".to_string()])
            .collect::<Vec<_>>()
            .join("\n");
        let c = checked(&w, Some(&tampered), tree.path(), "demo");
        let problems: Vec<(String, String)> = c
            .record
            .problems
            .iter()
            .map(|p| (p.path.clone(), p.problem.clone()))
            .collect();
        let has =
            |path: &str, what: &str| problems.iter().any(|(p, m)| p == path && m.contains(what));
        assert!(
            has("demo/__init__.py", "does not match the content"),
            "{problems:?}"
        );
        assert!(
            has("demo-1.0.dist-info/top_level.txt", "not listed in RECORD"),
            "{problems:?}"
        );
        assert!(has("demo/gone.py", "not in the wheel"), "{problems:?}");
        assert!(
            has("demo-1.0.dist-info/RECORD", "for itself"),
            "{problems:?}"
        );
        assert!(
            has("demo-1.0.dist-info/METADATA", "listed more than once"),
            "{problems:?}"
        );
        // A wrong size and a weak algorithm, each on its own.
        let wrong_size = good.replacen(",10\n", ",11\n", 1);
        let c = checked(&w, Some(&wrong_size), tree.path(), "demo");
        assert!(
            c.record
                .problems
                .iter()
                .any(|p| p.problem.contains("says 11 bytes")),
            "{:?}",
            c.record.problems
        );
        let weak = good.replacen("demo/__init__.py,sha256=", "demo/__init__.py,md5=", 1);
        let c = checked(&w, Some(&weak), tree.path(), "demo");
        assert!(
            c.record
                .problems
                .iter()
                .any(|p| p.problem.contains("`md5`")),
            "{:?}",
            c.record.problems
        );
        let f = findings(&c, "demo-1.0-py3-none-any.whl");
        assert!(
            f.iter()
                .all(|f| f.severity == Severity::Review && f.kind == OpKind::WheelRecord)
        );
        assert!(!f.is_empty());
    }

    #[test]
    fn a_member_named_twice_is_reported() {
        let tree = tempfile::tempdir().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("demo-1.0-py3-none-any.whl");
        let w = demo()
            .add("demo/first_.py", b"SAFE = 1\n")
            .add("demo/second.py", b"EVIL = 1\n");
        w.write(
            &path,
            Some(("demo-1.0.dist-info", &w.record("demo-1.0.dist-info"))),
        );
        // Rename the second member to the first one's name, in its local
        // header and in the central directory (same length).
        let bytes = std::fs::read(&path).unwrap();
        let (from, to) = (b"demo/second.py", b"demo/first_.py");
        let mut patched = bytes.clone();
        let mut hits = 0;
        for i in 0..bytes.len() - from.len() {
            if &bytes[i..i + from.len()] == from {
                patched[i..i + from.len()].copy_from_slice(to);
                hits += 1;
            }
        }
        assert_eq!(
            hits, 2,
            "the name is in a local header and the central directory"
        );
        std::fs::write(&path, patched).unwrap();
        let c = check(
            &path,
            "demo-1.0-py3-none-any.whl",
            tree.path(),
            "demo",
            &Limits::default(),
        );
        assert_eq!(c.incomplete, None);
        assert!(
            c.record
                .problems
                .iter()
                .any(|p| p.problem.contains("names a member twice")),
            "{:?}",
            c.record.problems
        );
    }

    #[test]
    fn a_wheel_without_record_is_reported() {
        let tree = tempfile::tempdir().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("demo-1.0-py3-none-any.whl");
        demo().write(&path, None);
        let c = check(
            &path,
            "demo-1.0-py3-none-any.whl",
            tree.path(),
            "demo",
            &Limits::default(),
        );
        assert_eq!(c.record.problems.len(), 1);
        assert!(c.record.problems[0].problem.contains("no RECORD"));
    }

    #[test]
    fn pth_files_are_reported_with_their_first_line_and_sdist_origin() {
        let tree = tempfile::tempdir().unwrap();
        let pth = b"\nimport os; os.system('id')\n/some/path\n";
        std::fs::write(tree.path().join("demo_init.pth"), pth).unwrap();
        let w = demo()
            .add("demo_init.pth", pth)
            .add("demo-1.0.data/purelib/other.pth", b"/x\n")
            .add("demo/inner.pth", b"import x\n");
        let c = checked(&w, None, tree.path(), "demo");
        let paths: Vec<&str> = c.pth_files.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            vec!["demo_init.pth", "demo-1.0.data/purelib/other.pth"]
        );
        assert_eq!(c.pth_files[0].first_line, "import os; os.system('id')");
        assert_eq!(c.pth_files[0].import_lines, 1);
        assert_eq!(c.pth_files[0].in_sdist.as_deref(), Some("demo_init.pth"));
        assert_eq!(c.pth_files[1].import_lines, 0);
        let f = findings(&c, "demo-1.0-py3-none-any.whl");
        let pth_finding = f.iter().find(|f| f.target == "demo_init.pth").unwrap();
        assert_eq!(pth_finding.severity, Severity::Review);
        assert_eq!(pth_finding.kind, OpKind::WheelPth);
        assert!(pth_finding.message.contains("import os; os.system('id')"));
        let origin = pth_finding.origin.as_ref().unwrap();
        assert_eq!((origin.file.as_str(), origin.line), ("demo_init.pth", 1));
    }

    #[test]
    fn entry_points_are_listed_and_shadowing_commands_flagged() {
        let eps = parse_entry_points(
            b"[console_scripts]\ndemo = demo.cli:main\npip = demo.cli:pip\n\n[gui_scripts]\nls=demo:ls\n# comment\n[pytest11]\ndemo = demo.plugin\n",
        );
        assert_eq!(eps.len(), 4);
        assert_eq!(
            (
                eps[0].group.as_str(),
                eps[0].name.as_str(),
                eps[0].value.as_str()
            ),
            ("console_scripts", "demo", "demo.cli:main")
        );
        assert_eq!(shadowed_command("pip", "demo").as_deref(), Some("pip"));
        assert_eq!(
            shadowed_command("python3.12", "demo").as_deref(),
            Some("python")
        );
        assert_eq!(shadowed_command("pip3.12", "pip"), None);
        assert_eq!(shadowed_command("demo", "demo"), None);
        assert_eq!(shadowed_command("sudo", "demo").as_deref(), Some("sudo"));

        let tree = tempfile::tempdir().unwrap();
        let w = demo()
            .add(
                "demo-1.0.dist-info/entry_points.txt",
                b"[console_scripts]\ndemo = demo.cli:main\npip = demo.cli:pip\n../../etc/cron.d/x = demo:x\n[pytest11]\ndemo = demo.plugin\n",
            )
            .add("demo-1.0.data/scripts/git", b"#!/bin/sh\n");
        let c = checked(&w, None, tree.path(), "demo");
        assert_eq!(c.entry_points.len(), 5);
        let f = findings(&c, "demo-1.0-py3-none-any.whl");
        let escape = f.iter().find(|f| f.target == "../../etc/cron.d/x").unwrap();
        assert_eq!(escape.severity, Severity::Review);
        assert!(escape.message.contains("not a plain file name"));
        let sev = |t: &str| f.iter().find(|f| f.target == t).map(|f| f.severity);
        assert_eq!(sev("pip"), Some(Severity::Review));
        assert_eq!(sev("git"), Some(Severity::Review));
        assert_eq!(sev("demo"), Some(Severity::Notice));
        assert_eq!(sev("[pytest11]"), Some(Severity::Notice));
    }

    #[test]
    fn native_code_is_prebuilt_when_the_sdist_has_the_same_bytes() {
        let tree = tempfile::tempdir().unwrap();
        let shipped = b"\x7fELF\x02\x01\x01prebuilt".to_vec();
        std::fs::create_dir_all(tree.path().join("libs")).unwrap();
        std::fs::write(tree.path().join("libs/_fast.so"), &shipped).unwrap();
        // Same size, other bytes: not a match.
        std::fs::write(
            tree.path().join("libs/decoy.bin"),
            b"\x7fELF\x02\x01\x01xxxxxxxx",
        )
        .unwrap();
        let w = demo()
            .add("demo/_fast.so", &shipped)
            .add(
                "demo/_speed.cpython-311-x86_64-linux-gnu.so",
                b"\x7fELF\x02\x01\x01compiled",
            )
            .add("demo/hidden.dat", b"\x7fELFxx");
        let c = checked(&w, None, tree.path(), "demo");
        let by: BTreeMap<&str, &NativeBinary> =
            c.native.iter().map(|n| (n.path.as_str(), n)).collect();
        assert_eq!(by.len(), 3);
        assert_eq!(by["demo/_fast.so"].provenance, Provenance::Prebuilt);
        assert_eq!(
            by["demo/_fast.so"].sdist_path.as_deref(),
            Some("libs/_fast.so")
        );
        assert_eq!(by["demo/_fast.so"].format, "elf");
        assert_eq!(
            by["demo/_speed.cpython-311-x86_64-linux-gnu.so"].provenance,
            Provenance::Compiled
        );
        assert_eq!(by["demo/hidden.dat"].format, "elf");
        let f = findings(&c, "demo-1.0-py3-none-any.whl");
        let fast = f.iter().find(|f| f.target == "demo/_fast.so").unwrap();
        assert_eq!(fast.severity, Severity::Review);
        assert!(
            fast.message
                .contains("shipped in the sdist at libs/_fast.so")
        );
        let speed = f
            .iter()
            .find(|f| f.target.starts_with("demo/_speed"))
            .unwrap();
        assert_eq!(speed.severity, Severity::Notice);
        assert!(speed.message.contains("compiled during this build"));
    }

    #[test]
    fn files_outside_the_project_are_flagged() {
        let tree = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tree.path().join("src/helper")).unwrap();
        let w = demo()
            .add("stray.py", b"")
            .add("README.md", b"")
            .add("sitecustomize.py", b"import os\n")
            .add("../escape.py", b"")
            .add("os/__init__.py", b"")
            .add("other-2.0.dist-info/METADATA", b"")
            .add("demo-1.0.data/data/lib/python3.11/site-packages/x.py", b"")
            .add("demo-1.0.data/data/share/demo/readme.txt", b"")
            .add("demo-1.0.data/weird/x", b"")
            .add("demo-1.0.data/purelib/demo/__init__.py", b"EVIL = 1\n");
        let c = checked(&w, None, tree.path(), "demo");
        let flagged: BTreeSet<&str> = c.outside.iter().map(|o| o.path.as_str()).collect();
        for p in [
            "stray.py",
            "README.md",
            "sitecustomize.py",
            "../escape.py",
            "os/__init__.py",
            "other-2.0.dist-info",
            "demo-1.0.data/data/lib/python3.11/site-packages/x.py",
            "demo-1.0.data/weird/x",
            "demo-1.0.data/purelib/demo/__init__.py",
        ] {
            assert!(flagged.contains(p), "{p} not flagged: {:?}", c.outside);
        }
        assert!(!flagged.contains("demo/__init__.py"));
        assert!(!flagged.contains("demo-1.0.data/data/share/demo/readme.txt"));
        assert_eq!(c.data_files.len(), 2);

        // Without top_level.txt: the dist name and the sdist's names belong.
        let w = TestWheel::new("demo-1.0")
            .add("demo/__init__.py", b"")
            .add("helper/__init__.py", b"")
            .add("intruder.py", b"");
        let c = checked(&w, None, tree.path(), "demo");
        assert_eq!(c.top_level_from, TopLevelSource::Derived);
        assert_eq!(c.top_level, vec!["demo", "helper"]);
        let flagged: Vec<&str> = c.outside.iter().map(|o| o.path.as_str()).collect();
        assert_eq!(flagged, vec!["intruder.py"]);
    }

    #[test]
    fn end_records_are_read_without_trusting_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.whl");
        let eocd = |entries: u16, cd_size: u32| {
            let mut e = vec![0x50, 0x4b, 0x05, 0x06, 0, 0, 0, 0];
            e.extend_from_slice(&entries.to_le_bytes());
            e.extend_from_slice(&entries.to_le_bytes());
            e.extend_from_slice(&cd_size.to_le_bytes());
            e.extend_from_slice(&[0xff; 4]);
            e.extend_from_slice(&[0, 0]);
            e
        };
        // A zip64 locator pointing past the end of every file.
        let mut bytes = vec![0x50, 0x4b, 0x06, 0x07, 0, 0, 0, 0];
        bytes.extend_from_slice(&u64::MAX.to_le_bytes());
        bytes.extend_from_slice(&1u32.to_le_bytes());
        bytes.extend(eocd(0xffff, 0xffff_ffff));
        std::fs::write(&path, &bytes).unwrap();
        let limits = Limits {
            max_entries: 100_000,
            ..Limits::default()
        };
        assert!(read_wheel(&path, &limits).is_err());
        // The claimed entry count is refused before the directory is read.
        std::fs::write(&path, eocd(60_000, 100)).unwrap();
        let tight = Limits {
            max_entries: 100,
            ..Limits::default()
        };
        let err = read_wheel(&path, &tight).unwrap_err().to_string();
        assert!(err.contains("60000 entries (at most 100)"), "{err}");
        std::fs::write(&path, eocd(10, 200 << 20)).unwrap();
        let err = read_wheel(&path, &Limits::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("central directory of"), "{err}");
    }

    #[test]
    fn limits_are_checked_before_reading() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("demo-1.0-py3-none-any.whl");
        demo().write(&path, None);
        let tight = Limits {
            max_entries: 2,
            ..Limits::default()
        };
        let err = read_wheel(&path, &tight).unwrap_err().to_string();
        assert!(err.contains("4 entries (at most 2)"), "{err}");
        let small = Limits {
            max_member_bytes: 5,
            ..Limits::default()
        };
        let err = read_wheel(&path, &small).unwrap_err().to_string();
        assert!(err.contains("unpacks to"), "{err}");
        std::fs::write(&path, b"not a zip").unwrap();
        let tree = tempfile::tempdir().unwrap();
        let c = check(
            &path,
            "demo-1.0-py3-none-any.whl",
            tree.path(),
            "demo",
            &Limits::default(),
        );
        assert!(
            c.incomplete
                .as_deref()
                .unwrap()
                .contains("not a readable zip")
        );
        let f = findings(&c, "demo-1.0-py3-none-any.whl");
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].severity, Severity::Review);
    }
}
