//! `sdist-box inspect`: verify, extract, read the metadata; run nothing.

use std::path::PathBuf;

use clap::Args;

use super::build::ArchiveLimitArgs;
use super::exit;
use super::output::Format;
use crate::build::not_utf8;
use crate::{archive, project};

#[derive(Debug, Clone, Args)]
pub struct InspectArgs {
    /// The sdist to inspect.
    pub sdist: PathBuf,
    /// Refuse the sdist unless its SHA-256 is this (hex).
    #[arg(long, value_name = "HEX")]
    pub sha256: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// Keep the extracted tree in this new directory (must not exist).
    #[arg(long, value_name = "DIR")]
    pub extract_to: Option<PathBuf>,
    #[command(flatten)]
    pub archive_limits: ArchiveLimitArgs,
}

/// `sdist-box inspect`: verify, extract, read metadata; run nothing.
pub fn inspect_command(args: &InspectArgs) -> anyhow::Result<u8> {
    if let Some(why) = not_utf8("the sdist's path", &args.sdist) {
        eprintln!("sdist-box: error: {why}");
        return Ok(exit::INPUT_REFUSED);
    }
    let sha = match &args.sha256 {
        Some(expected) => archive::verify_sha256(&args.sdist, expected)?,
        None => archive::sha256_file(&args.sdist)?,
    };
    let (tmp, dest) = match &args.extract_to {
        Some(dir) => (None, dir.clone()),
        None => {
            let tmp = tempfile::Builder::new()
                .prefix("sdist-box-inspect-")
                .tempdir()?;
            let dest = tmp.path().join("sdist");
            (Some(tmp), dest)
        }
    };
    let extracted = archive::extract(&args.sdist, &dest, &args.archive_limits.limits())?;
    let mut project = project::read_project(&extracted.root)?;
    let filename = args
        .sdist
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    project::identify(&mut project, &filename)?;
    let value = serde_json::json!({
        "schema_version": crate::report::SCHEMA_VERSION,
        "input": {
            "path": args.sdist,
            "sha256": sha,
            "sha256_pinned": args.sha256.is_some(),
        },
        "archive": extracted,
        "project": project,
    });
    match args.format {
        Format::Json | Format::Sarif => println!(
            "{}",
            crate::text::json(&serde_json::to_string_pretty(&value)?)
        ),
        Format::Text => {
            let t = crate::text::one_line;
            let bs = &project.build_system;
            println!("sdist      {}", crate::text::path(&args.sdist));
            println!(
                "sha256     {sha}{}",
                if args.sha256.is_some() {
                    " (pinned, matches)"
                } else {
                    ""
                }
            );
            println!(
                "archive    {:?}, {} entries, {} bytes unpacked, top-level `{}`",
                extracted.format,
                extracted.entries,
                extracted.total_bytes,
                t(&extracted.top_level, 200)
            );
            if !extracted.stripped_modes.is_empty() {
                println!(
                    "stripped   setuid/setgid/sticky bits on: {}",
                    t(&extracted.stripped_modes.join(", "), 400)
                );
            }
            println!(
                "name       {}",
                t(project.name.as_deref().unwrap_or("(unknown)"), 200)
            );
            println!(
                "version    {}",
                t(project.version.as_deref().unwrap_or("(unknown)"), 200)
            );
            println!("backend    {}", t(&bs.build_backend, 200));
            println!("requires   {}", t(&bs.requires.join(", "), 800));
            if !bs.backend_path.is_empty() {
                println!("backend-path {}", t(&bs.backend_path.join(", "), 400));
            }
            println!("source     {:?}", bs.source);
            if args.extract_to.is_some() {
                println!("extracted  {}", crate::text::path(&extracted.root));
            }
        }
    }
    drop(tmp);
    Ok(exit::OK)
}
