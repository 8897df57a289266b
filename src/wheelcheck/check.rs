//! The checks in order, over a wheel already read, against the sdist as
//! shipped; and the result's summary for the stage event and the text report.

use std::collections::BTreeSet;
use std::path::Path;

use super::commands::commands;
use super::members::{TopLevelNames, place_members};
use super::model::{MAX_LISTED, Outside, Provenance, WheelCheck, WheelContents, module_name};
use super::native::native_code;
use super::pth::pth_files;
use super::reader::{Limits, read_wheel};
use super::record::check_record;
use super::sdist::SdistIndex;

/// The name and version part of a wheel file name, normalised for
/// comparison with its `.dist-info` directory.
pub(super) fn dist_info_for(wheel_filename: &str) -> Option<String> {
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

/// The wheel's own `.dist-info` directory (the one its file name names,
/// else the first); any other is flagged.
pub(super) fn own_dist_info(
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

pub(super) fn dist_info_matches(dir: &str, expected: Option<&str>) -> bool {
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
