//! SARIF 2.1.0: one result per finding, with a physical location in the
//! sdist's files where the origin is known, so that code-scanning tools
//! show the finding on the offending line.
//!
//! The log is read by people and tools that trust it more than the
//! package: invariants, whatever the package wrote —
//! - an `artifactLocation.uri` under `SDISTROOT` is a relative path of
//!   plain components naming a file of the sdist as shipped (`in_sdist`),
//!   percent-encoded; any other origin gets no location ([`sdist_uri`]);
//! - every `text` is plain text in which nothing can become a link: SARIF's
//!   embedded-link syntax (§3.11.6, `[text](target)`) and Markdown's links,
//!   autolinks and HTML are escaped ([`plain_text`]). sdist-box writes no
//!   `markdown` messages.

use std::path::Path;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Value, json};

use super::BuildReport;
use crate::events::findings::{Finding, Severity};

const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

fn rule_id(f: &Finding) -> String {
    let severity = match f.severity {
        Severity::Evasion => "evasion",
        Severity::Blocked => "blocked",
        Severity::Review => "review",
        Severity::Notice => "notice",
    };
    format!("{severity}/{}", f.kind.name())
}

fn level(f: &Finding) -> &'static str {
    match f.severity {
        Severity::Evasion | Severity::Blocked => "error",
        Severity::Review => "warning",
        Severity::Notice => "note",
    }
}

/// Text for a SARIF `text` property: `\`, `[`, `]`, `<` and `>` escaped
/// with a backslash. Without an unescaped bracket no embedded link (SARIF)
/// nor Markdown link or image can form; without `<` no autolink or HTML.
pub fn plain_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | '[' | ']' | '<' | '>') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// What stays as is in a URI path segment: RFC 3986's unreserved characters.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The relative URI of a file of the sdist, `None` unless `file` is a
/// relative path of plain components (no `..`, `.`, root or empty one).
pub fn sdist_uri(file: &str) -> Option<String> {
    if !crate::beneath::plain_relative(Path::new(file)) {
        return None;
    }
    let segments: Vec<String> = file
        .split('/')
        .map(|c| utf8_percent_encode(c, SEGMENT).to_string())
        .collect();
    Some(segments.join("/"))
}

/// The SARIF log for one build.
pub fn render(report: &BuildReport) -> Value {
    let mut rules: Vec<Value> = Vec::new();
    let mut rule_ids: Vec<String> = Vec::new();
    let mut results: Vec<Value> = Vec::new();
    for f in &report.findings {
        let id = rule_id(f);
        let rule_index = match rule_ids.iter().position(|r| *r == id) {
            Some(i) => i,
            None => {
                rule_ids.push(id.clone());
                rules.push(json!({
                    "id": id,
                    "name": id.replace(['/', '-'], "_"),
                    "shortDescription": {"text": plain_text(&format!("{} ({:?})", f.kind.name(), f.severity).to_lowercase())},
                    "defaultConfiguration": {"level": level(f)},
                }));
                rule_ids.len() - 1
            }
        };
        let mut text = format!("{}: {} — {}", f.kind.name(), f.target, f.message);
        if let Some(d) = &f.decided_by {
            text.push_str(&format!(" (decided by {d})"));
        }
        if !f.process_chain.is_empty() {
            text.push_str(&format!("; process chain: {}", f.process_chain.join(" → ")));
        }
        if let Some(s) = &f.suggestion {
            text.push_str(&format!(
                ". To allow it (never applied automatically), the profile line(s): {}",
                s.replace('\n', " ⏎ ")
            ));
        }
        let mut result = json!({
            "ruleId": id,
            "ruleIndex": rule_index,
            "level": level(f),
            "message": {"text": plain_text(&text)},
            "properties": {
                "verdict": f.verdict,
                "severity": f.severity,
                "target": f.target,
                "count": f.count,
                "seenBy": f.seen_by,
                "suggestion": f.suggestion,
            },
        });
        // Only a file of the sdist as shipped: any other origin (outside
        // the tree, made by the build, forged) stays in the message only.
        let located = f
            .origin
            .as_ref()
            .filter(|o| o.in_sdist)
            .and_then(|o| Some((o, sdist_uri(&o.file)?)));
        if let Some((o, uri)) = located {
            let mut location = json!({
                "artifactLocation": {"uri": uri, "uriBaseId": "SDISTROOT"},
            });
            // Line 0: the whole file (a binary shipped in the sdist).
            if o.line > 0 {
                let mut region = json!({"startLine": o.line});
                if let Some(t) = &o.text {
                    region["snippet"] = json!({"text": plain_text(t)});
                }
                location["region"] = region;
            }
            result["locations"] = json!([{ "physicalLocation": location }]);
        }
        results.push(result);
    }
    let name = report
        .project
        .as_ref()
        .and_then(|p| p.name.clone())
        .unwrap_or_default();
    json!({
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "sdist-box",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            "originalUriBaseIds": {
                "SDISTROOT": {"description": {"text": plain_text(&format!("the top-level directory of {}", report.input.filename))}}
            },
            "artifacts": [{
                "location": {"uri": utf8_percent_encode(&report.input.filename, SEGMENT).to_string()},
                "hashes": {"sha-256": report.input.sha256.clone().unwrap_or_default()},
            }],
            "results": results,
            "properties": {"project": name, "outcome": report.outcome.status},
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_has_no_link_syntax_left() {
        let hostile =
            "[Security fix: click here](https://example.invalid/) <a href=x> \\[x](y) ![i](j)";
        let t = plain_text(hostile);
        assert_eq!(
            t,
            "\\[Security fix: click here\\](https://example.invalid/) \\<a href=x\\> \\\\\\[x\\](y) !\\[i\\](j)"
        );
        // Every bracket and angle bracket is preceded by an odd run of
        // backslashes: escaped in SARIF's grammar and in Markdown's.
        let bytes = t.as_bytes();
        for (i, &b) in bytes.iter().enumerate() {
            if matches!(b, b'[' | b']' | b'<' | b'>') {
                let run = bytes[..i].iter().rev().take_while(|&&c| c == b'\\').count();
                assert_eq!(run % 2, 1, "unescaped {:?} at {i} in {t}", b as char);
            }
        }
        assert_eq!(
            plain_text("setup.py: os.system(x)"),
            "setup.py: os.system(x)"
        );
    }

    #[test]
    fn uris_are_plain_relative_and_percent_encoded() {
        assert_eq!(sdist_uri("setup.py").as_deref(), Some("setup.py"));
        assert_eq!(
            sdist_uri("src/my pkg/ünï#?%.py").as_deref(),
            Some("src/my%20pkg/%C3%BCn%C3%AF%23%3F%25.py")
        );
        for bad in [
            "../../.github/workflows/release.yml",
            "/etc/passwd",
            "a/../b",
            "./setup.py",
            "a//b",
            "",
            "/build/src/../../x",
        ] {
            assert_eq!(sdist_uri(bad), None, "{bad}");
        }
    }
}
