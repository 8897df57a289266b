//! Where a report goes when a command is done: `--report FILE` and
//! `--format`.

use std::path::Path;

use clap::ValueEnum;

use crate::files::write_atomic;
use crate::report::BuildReport;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A summary and the findings for people (on stderr).
    Text,
    /// The JSON report on stdout.
    Json,
    /// SARIF 2.1.0 on stdout (for code-scanning tools).
    Sarif,
}

/// Write the report to `--report FILE` (SARIF if it ends in .sarif, else
/// JSON) and print it in `format`.
pub(crate) fn deliver(
    report: &BuildReport,
    report_file: Option<&Path>,
    format: Format,
) -> anyhow::Result<()> {
    let json = report.to_json();
    let sarif = || {
        serde_json::to_string_pretty(&crate::report::sarif::render(report))
            .expect("SARIF serializes")
    };
    if let Some(path) = report_file {
        let is_sarif = path.to_string_lossy().ends_with(".sarif")
            || path.to_string_lossy().ends_with(".sarif.json");
        write_atomic(path, &if is_sarif { sarif() } else { json.clone() })?;
    }
    match format {
        Format::Json => println!("{}", crate::text::json(&json)),
        Format::Sarif => println!("{}", crate::text::json(&sarif())),
        Format::Text => {
            let style = crate::report::text::Style::detect();
            eprint!("{}", crate::report::text::summary(report, style));
            eprint!("{}", crate::report::text::findings(report, style));
        }
    }
    Ok(())
}
