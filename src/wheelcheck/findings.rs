//! The wheel check's result as findings for the report.

use std::collections::BTreeMap;

use crate::events::findings::{Finding, FindingVerdict, OpKind, Severity, SourceLocation};
use crate::text::one_line;

use super::commands::plain_command_name;
use super::model::{Provenance, WheelCheck};

pub(super) const MAX_FINDINGS_PER_KIND: usize = 50;

pub(super) fn wheel_finding(
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
pub(super) fn sdist_origin(path: &str, line: u32, text: Option<String>) -> SourceLocation {
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
    pth_findings(check, &mut out);
    command_findings(check, &mut out);
    native_findings(check, &mut out);
    layout_findings(check, wheel_filename, &mut out);
    record_findings(check, wheel_filename, &mut out);
    out
}

/// Each `.pth` file: its import lines run at every interpreter start.
fn pth_findings(check: &WheelCheck, out: &mut Vec<Finding>) {
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
}

/// Commands: review a name that is not a plain file name or that shadows a
/// common one; other entry-point groups, one notice each.
fn command_findings(check: &WheelCheck, out: &mut Vec<Finding>) {
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
}

/// Native code: review what the sdist shipped prebuilt.
fn native_findings(check: &WheelCheck, out: &mut Vec<Finding>) {
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
}

/// Files outside the project's own names, and those for the prefix.
fn layout_findings(check: &WheelCheck, wheel_filename: &str, out: &mut Vec<Finding>) {
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
}

/// Where `RECORD` does not match the wheel.
fn record_findings(check: &WheelCheck, wheel_filename: &str, out: &mut Vec<Finding>) {
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
}
