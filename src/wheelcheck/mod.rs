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

mod commands;
mod findings;
mod identity;
mod members;
mod native;
mod pth;
mod reader;
mod record;
mod sdist;

pub use commands::{parse_entry_points, shadowed_command};
pub use findings::findings;
pub use identity::{NotItsWheel, belongs_to};
pub use reader::{Limits, Member, WheelContents, WheelError, read_wheel};
pub use record::{RecordRow, check_record, parse_record, urlsafe_b64};

use commands::commands;
use members::{TopLevelNames, place_members};
use native::native_code;
use pth::pth_files;
use sdist::SdistIndex;

use std::collections::BTreeSet;
use std::path::Path;

use serde::Serialize;

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

fn module_name(s: &str) -> String {
    s.to_ascii_lowercase().replace(['-', '.'], "_")
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
    let mut outside = Outside::default();
    // 1. The metadata directory: exactly one, the wheel's own.
    let own = own_dist_info(contents, wheel_filename, &mut outside);
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
    let names = TopLevelNames::read(text_of("top_level.txt"), project, &sdist);
    out.top_level_from = names.source();
    // 3. Every member, by where it installs.
    let scripts = place_members(
        contents,
        data_dir.as_deref(),
        &names,
        &mut out,
        &mut outside,
    );
    // 4. .pth files: at the top of site-packages they are read at every
    //    interpreter start; their `import` lines are executed.
    out.pth_files = pth_files(contents, data_dir.as_deref(), &sdist);
    // 5. Commands: console and GUI scripts, and scripts in the data dir.
    out.entry_points = commands(text_of("entry_points.txt"), scripts, project);
    // 6. Native code, and whether the sdist shipped it as is.
    out.native = native_code(contents, &sdist);
    // 7. RECORD.
    out.record = check_record(contents, own.as_deref());
    out.outside = outside.0;
    out.outside.truncate(MAX_LISTED);
    out
}

/// The files that install outside the project's own names, with why.
#[derive(Default)]
struct Outside(Vec<OutsideFile>);

impl Outside {
    fn flag(&mut self, path: &str, why: String) {
        self.0.push(OutsideFile {
            path: path.to_string(),
            why,
        })
    }
}

/// The wheel's own `.dist-info` directory (the one its file name names,
/// else the first); any other is flagged.
fn own_dist_info(
    contents: &WheelContents,
    wheel_filename: &str,
    outside: &mut Outside,
) -> Option<String> {
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
            outside.flag(
                d,
                "a second .dist-info directory: metadata of another distribution, which installing this wheel would overwrite".into(),
            );
        }
    }
    own
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
pub(crate) mod tests;
