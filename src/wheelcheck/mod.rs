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
mod native;
mod reader;
mod record;
mod sdist;

pub use commands::{parse_entry_points, shadowed_command};
pub use findings::findings;
pub use identity::{NotItsWheel, belongs_to};
pub use reader::{Limits, Member, WheelContents, WheelError, read_wheel};
pub use record::{RecordRow, check_record, parse_record, urlsafe_b64};

use native::native_format;
use sdist::SdistIndex;

use std::collections::{BTreeSet, HashMap};
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
