//! The report for people: a few lines on the terminal.

use std::fmt::Write;

use super::{BuildReport, SandboxInfo, Status};
use crate::sandbox::LayerState;
use crate::text::one_line;

/// Colours only when asked (a TTY without `NO_COLOR`).
#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub color: bool,
}

impl Style {
    pub fn detect() -> Style {
        use std::io::IsTerminal;
        Style {
            color: std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

/// The summary printed after a build.
pub fn summary(report: &BuildReport, style: Style) -> String {
    let mut out = String::new();
    let name = report
        .project
        .as_ref()
        .and_then(|p| p.name.clone())
        .unwrap_or_else(|| report.input.filename.clone());
    let version = report
        .project
        .as_ref()
        .and_then(|p| p.version.clone())
        .unwrap_or_default();
    let head = match report.outcome.status {
        Status::Built => style.paint("1;32", "BUILT"),
        Status::Ran => style.paint("1;32", "RAN"),
        Status::BuildFailed => style.paint("1;31", "FAILED"),
        Status::Refused => style.paint("1;31", "REFUSED"),
        Status::SandboxUnavailable => style.paint("1;31", "NO SANDBOX"),
        Status::Error => style.paint("1;31", "ERROR"),
    };
    let _ = writeln!(
        out,
        "{head} {} {}",
        one_line(&name, 80),
        one_line(&version, 40)
    );
    if let Some(w) = &report.wheel {
        let _ = writeln!(out, "  wheel    {}", crate::text::path(&w.path));
        let _ = writeln!(out, "  sha256   {}", w.sha256);
    }
    if let Some(c) = &report.wheel_check {
        let _ = writeln!(out, "  contents {}", crate::wheelcheck::summary_line(c));
    }
    if let Some(reason) = &report.outcome.reason {
        let _ = writeln!(out, "  reason   {}", one_line(reason, 400));
    }
    if let Some(p) = &report.project {
        let bs = &p.build_system;
        let _ = writeln!(
            out,
            "  backend  {} (requires: {})",
            one_line(&bs.build_backend, 100),
            one_line(&bs.requires.join(", "), 200)
        );
    }
    if let Some(pre) = &report.pre_build {
        let what = if pre.modified {
            format!(
                "changed {} file(s) of the sources before the build (listed in the report)",
                pre.changes.len()
            )
        } else {
            "left the sources unchanged".to_string()
        };
        let _ = writeln!(out, "  pre-build `{}` {what}", one_line(&pre.command, 100));
    }
    if let Some(sb) = &report.sandbox {
        sandbox_lines(&mut out, report, sb, style);
    }
    let t = &report.timings;
    let _ = writeln!(
        out,
        "  time     {:.2} s (build env {:.2} s, hooks {:.2} s)",
        t.total_ms / 1e3,
        t.buildenv_ms / 1e3,
        (t.requires_ms + t.prepare_metadata_ms + t.wheel_ms) / 1e3
    );
    for d in &report.decisions {
        let _ = writeln!(
            out,
            "  asked    {} {} — {}",
            format!("{:?}", d.syscall).to_lowercase(),
            one_line(&d.target, 120),
            one_line(&d.reason, 120)
        );
    }
    if let Some(log) = &report.log {
        let _ = writeln!(out, "  log      {}", crate::text::path(log));
    }
    if let Some(r) = &report.reproducible {
        let _ = writeln!(
            out,
            "  reproducible {}",
            crate::reproducible::summary_line(r)
        );
    }
    out
}

/// What the sandbox enforced, under which profile and network, and what
/// it did not enforce, in words.
fn sandbox_lines(out: &mut String, report: &BuildReport, sb: &SandboxInfo, style: Style) {
    let layers: Vec<String> = sb
        .enforcement
        .layers
        .iter()
        .map(|l| match l.state {
            LayerState::Enforced => l.layer.name().to_string(),
            LayerState::Partial => format!("{} (partial)", l.layer.name()),
            LayerState::NotEnforced => format!("{} (NOT enforced)", l.layer.name()),
        })
        .collect();
    let _ = writeln!(out, "  sandbox  {}", layers.join(", "));
    let _ = writeln!(out, "  profile  {}", one_line(&report.profile.name, 200));
    if let Some(net) = report
        .profile
        .network
        .as_ref()
        .filter(|n| n.mode != crate::policy::NetworkMode::None)
    {
        let allow: Vec<String> = net
            .allow
            .iter()
            .map(|a| {
                let addrs: Vec<String> = a.addresses.iter().map(|x| x.to_string()).collect();
                format!("{} → {}", one_line(&a.entry, 100), addrs.join(" "))
            })
            .collect();
        let _ = writeln!(
            out,
            "  network  {}{}",
            net.mode.name(),
            if allow.is_empty() {
                String::new()
            } else {
                format!(": {}", allow.join(", "))
            }
        );
    }
    // What was not (fully) enforced, in words: the degraded mode, or
    // an older kernel under a profile that allows it.
    for l in &sb.enforcement.layers {
        let word = match l.state {
            LayerState::Enforced => continue,
            LayerState::Partial => "PARTIAL",
            LayerState::NotEnforced => "NOT ENFORCED",
        };
        let _ = writeln!(
            out,
            "  {}  {}: {}",
            style.paint("1;33", word),
            l.layer.name(),
            one_line(&l.detail, 300)
        );
    }
    if !sb.dropped_env.is_empty() {
        let _ = writeln!(
            out,
            "  env      {} host variables withheld from the build",
            sb.dropped_env.len()
        );
    }
}

/// The findings, one line each, most serious first, with the origin's
/// source line and the process chain beneath.
pub fn findings(report: &BuildReport, style: Style) -> String {
    use crate::events::findings::{FindingVerdict, Severity};
    let mut out = String::new();
    if report.findings.is_empty() {
        return out;
    }
    let _ = writeln!(
        out,
        "\nwhat the build tried ({} finding(s)):",
        report.findings.len()
    );
    for f in &report.findings {
        let head = match (f.severity, f.verdict) {
            (Severity::Evasion, _) => style.paint("1;35", "EVASION"),
            (Severity::Blocked, _) => style.paint("1;31", "BLOCKED"),
            (_, FindingVerdict::Blocked) => style.paint("31", "BLOCKED"),
            (Severity::Review, _) => style.paint("1;33", "REVIEW"),
            (Severity::Notice, _) if f.kind.is_wheel() => style.paint("36", "WHEEL"),
            (Severity::Notice, FindingVerdict::Allowed) => style.paint("33", "ALLOWED"),
        };
        let location = match &f.origin {
            Some(o) if o.line == 0 => format!("sdist: {}", one_line(&o.file, 80)),
            Some(o) if o.supplied_by == "wheel-check" => {
                format!("sdist: {}:{}", one_line(&o.file, 80), o.line)
            }
            Some(o) => format!("{}:{}", one_line(&o.file, 80), o.line),
            None if f.kind.is_wheel() => "(in the wheel)".into(),
            None if f.kind == crate::events::findings::OpKind::ForgedOrigin => {
                "(named by the audit stream; not opened)".into()
            }
            None if f.kind == crate::events::findings::OpKind::Resource => {
                "(the whole sandbox)".into()
            }
            None => "(no Python origin)".into(),
        };
        let count = if f.count > 1 {
            format!(" ×{}", f.count)
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "  {head:<7} {:<12} {:<40} {location}{count}",
            f.kind.name(),
            one_line(&f.target, 120),
        );
        if let Some(text) = f.origin.as_ref().and_then(|o| o.text.as_ref()) {
            let _ = writeln!(out, "           │ {}", one_line(text, 160));
        }
        let mut why = one_line(&f.message, 200);
        if let Some(d) = &f.decided_by {
            why = format!("{why} — {}", one_line(d, 160));
        }
        let _ = writeln!(out, "           {why}");
        if f.process_chain.len() > 1 {
            let chain: Vec<String> = f.process_chain.iter().map(|c| one_line(c, 60)).collect();
            let _ = writeln!(out, "           via {}", chain.join(" → "));
        }
        if let Some(s) = &f.suggestion {
            // Profile lines are built by sdist-box, but may quote a path or
            // address the package chose: escaped line by line.
            let lines: Vec<String> = s.lines().map(|l| one_line(l, 200)).collect();
            let _ = writeln!(
                out,
                "           to allow it (your decision; never applied automatically), in a profile:"
            );
            for l in lines {
                let _ = writeln!(out, "             {l}");
            }
        }
    }
    out
}
