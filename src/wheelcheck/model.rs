//! What the wheel check works on and finds: the wheel as read
//! ([`WheelContents`]), the check's result ([`WheelCheck`]) and the names
//! every check judges members by.

use serde::Serialize;

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

/// A wheel read under [`crate::wheelcheck::Limits`].
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

pub(super) const MAX_LISTED: usize = 500;

/// Top-level modules that take over the interpreter or its tooling when a
/// wheel installs its own copy into site-packages.
pub(super) const SHADOWED_MODULES: &[&str] = &[
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
pub(super) const STARTUP_MODULES: &[&str] = &["sitecustomize", "usercustomize"];

pub(super) fn module_name(s: &str) -> String {
    s.to_ascii_lowercase().replace(['-', '.'], "_")
}

/// Is this member name something an installer could be tricked by?
pub(super) fn unsafe_name(name: &str) -> Option<&'static str> {
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

/// The files that install outside the project's own names, with why.
#[derive(Default)]
pub(super) struct Outside(pub(super) Vec<OutsideFile>);

impl Outside {
    pub(super) fn flag(&mut self, path: &str, why: String) {
        self.0.push(OutsideFile {
            path: path.to_string(),
            why,
        })
    }
}
