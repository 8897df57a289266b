//! SARIF 2.1.0: one result per finding, with a physical location in the
//! sdist's files where the origin is known, so that code-scanning tools
//! show the finding on the offending line.

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
                    "shortDescription": {"text": format!("{} ({:?})", f.kind.name(), f.severity).to_lowercase()},
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
            "message": {"text": text},
            "properties": {
                "verdict": f.verdict,
                "severity": f.severity,
                "target": f.target,
                "count": f.count,
                "seenBy": f.seen_by,
                "suggestion": f.suggestion,
            },
        });
        if let Some(o) = f.origin.as_ref().filter(|o| o.in_sdist) {
            let mut location = json!({
                "artifactLocation": {"uri": o.file, "uriBaseId": "SDISTROOT"},
            });
            // Line 0: the whole file (a binary shipped in the sdist).
            if o.line > 0 {
                let mut region = json!({"startLine": o.line});
                if let Some(t) = &o.text {
                    region["snippet"] = json!({"text": t});
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
                "SDISTROOT": {"description": {"text": format!("the top-level directory of {}", report.input.filename)}}
            },
            "artifacts": [{
                "location": {"uri": report.input.filename},
                "hashes": {"sha-256": report.input.sha256.clone().unwrap_or_default()},
            }],
            "results": results,
            "properties": {"project": name, "outcome": report.outcome.status},
        }],
    })
}
