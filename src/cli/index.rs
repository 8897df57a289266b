//! `sdist-box index`: a PEP 503 / PEP 691 simple index of a directory's
//! wheels.

use std::path::PathBuf;

use clap::Args;

use super::exit;
use crate::index::write_index;

pub const AFTER_HELP: &str = "\
Lists every wheel directly in DIR (as `build` and `build-all` leave them) in
DIR/simple: PEP 503 HTML pages with #sha256= links and data-requires-python,
and PEP 691 JSON (index.json beside each page, api-version 1.1). Install from it:

  pip install --index-url file://$PWD/DIR/simple NAME

Only wheels a report vouches for are listed: a `built` report beside it that
names the file with its sha256 (a wheel left by a killed build, one whose
rebuild failed, one changed since is left out; --unvouched lists a wheel
without a report when it is the only one of its release). The report is
named on each wheel's line. One project version is listed from one input
only: wheels of it that the reports of two inputs vouch for are left out.
Every wheel left out is named on stderr, with why, and counted.
Running it again updates the index (pages are replaced atomically; projects
whose wheels are gone are removed).";

#[derive(Debug, Clone, Args)]
pub struct IndexArgs {
    /// The directory holding the wheels (and their reports).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Also list a wheel that no report vouches for, when it is the only
    /// wheel of its project version (wheels made by other tools).
    #[arg(long)]
    pub unvouched: bool,
}

/// `sdist-box index`.
pub fn index_command(args: &IndexArgs) -> anyhow::Result<u8> {
    let s = write_index(&args.dir, args.unvouched)?;
    let root = std::path::absolute(args.dir.join("simple")).unwrap_or(args.dir.join("simple"));
    eprintln!(
        "sdist-box: indexed {} wheel(s) of {} project(s) ({} with a report, {} left out){} in {}\n  pip install --index-url file://{} NAME",
        s.wheels,
        s.projects,
        s.with_report,
        s.skipped.len(),
        if s.removed_projects.is_empty() {
            String::new()
        } else {
            format!(
                "; removed {}",
                crate::text::shown(&s.removed_projects.join(", "))
            )
        },
        crate::text::path(&root),
        crate::text::path(&root)
    );
    for (wheel, why) in &s.skipped {
        eprintln!(
            "sdist-box: not listed: {}: {}",
            crate::text::one_line(wheel, 200),
            crate::text::one_line(why, 400)
        );
    }
    Ok(exit::OK)
}
