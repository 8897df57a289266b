//! A built wheel's core metadata (`*.dist-info/METADATA`), read for what
//! `--with-deps` needs: its `Requires-Dist`, with markers evaluated for the
//! target interpreter and the extras asked of it.
//!
//! The wheel was produced by package code in the sandbox, so its metadata
//! is attacker text: read from the zip with a size bound, exactly one
//! top-level `.dist-info/METADATA` accepted, names parsed and normalized
//! (never used as paths), and every problem reported with the line.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use pep508_rs::pep440_rs::VersionSpecifiers;
use pep508_rs::{ExtraName, Requirement, VersionOrUrl};
use url::Url;

use super::names::PackageName;
use super::target::Target;

/// The most METADATA read (a long description can be large; the headers
/// come first and are all that is used).
pub const MAX_METADATA_BYTES: u64 = 4 << 20;

#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error("cannot read the wheel `{path}`: {problem}")]
    Wheel { path: PathBuf, problem: String },
    #[error("`{path}` has {count} top-level .dist-info/METADATA files; exactly one is expected")]
    NotOne { path: PathBuf, count: usize },
    #[error("METADATA of {project}: `Requires-Dist: {line}` is not a valid requirement: {problem}")]
    Requirement {
        project: String,
        line: String,
        problem: String,
    },
}

/// The headers of a METADATA file that matter here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WheelMetadata {
    pub name: Option<String>,
    pub version: Option<String>,
    pub requires_python: Option<String>,
    pub requires_dist: Vec<String>,
    pub provides_extra: Vec<String>,
}

/// One dependency that applies to the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    pub name: PackageName,
    pub extras: Vec<ExtraName>,
    /// The version specifiers (`>=2.0,<3`), if any.
    pub specifiers: Option<VersionSpecifiers>,
    /// A direct URL reference (`name @ URL`), if that is what it is.
    pub url: Option<String>,
    /// The requirement as written, escaped for display.
    pub requirement: String,
}

/// Parse the header block of METADATA (RFC 822 style: `Key: value`,
/// continuation lines start with whitespace; the body after the first
/// empty line is ignored).
pub fn parse_metadata(text: &str) -> WheelMetadata {
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = headers.last_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let mut meta = WheelMetadata::default();
    for (k, v) in headers {
        match k.as_str() {
            "name" => meta.name = Some(v),
            "version" => meta.version = Some(v),
            "requires-python" => meta.requires_python = Some(v),
            "requires-dist" => meta.requires_dist.push(v),
            "provides-extra" => meta.provides_extra.push(v),
            _ => {}
        }
    }
    meta
}

/// Read METADATA from a wheel file.
pub fn read_wheel_metadata(wheel: &Path) -> Result<WheelMetadata, MetadataError> {
    let err = |problem: String| MetadataError::Wheel {
        path: wheel.to_path_buf(),
        problem,
    };
    let file = std::fs::File::open(wheel).map_err(|e| err(e.to_string()))?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| err(e.to_string()))?;
    let candidates: Vec<String> = zip
        .file_names()
        .filter_map(|n| n.ok().map(|n| n.into_owned()))
        .filter(|n| {
            n.strip_suffix("/METADATA")
                .is_some_and(|dir| dir.ends_with(".dist-info") && !dir.contains('/'))
        })
        .collect();
    if candidates.len() != 1 {
        return Err(MetadataError::NotOne {
            path: wheel.to_path_buf(),
            count: candidates.len(),
        });
    }
    let entry = zip
        .by_name(&candidates[0])
        .map_err(|e| err(e.to_string()))?;
    let mut bytes = Vec::new();
    entry
        .take(MAX_METADATA_BYTES)
        .read_to_end(&mut bytes)
        .map_err(|e| err(e.to_string()))?;
    Ok(parse_metadata(&String::from_utf8_lossy(&bytes)))
}

/// The dependencies that apply to `target` with `extras` requested, in
/// the order written; a line that is not a valid requirement is an error
/// (guessing what it meant could build the wrong thing).
pub fn dependencies(
    meta: &WheelMetadata,
    target: &Target,
    extras: &[ExtraName],
) -> Result<Vec<Dependency>, MetadataError> {
    let project = meta
        .name
        .as_deref()
        .map_or("the wheel".into(), |n| crate::text::one_line(n, 100));
    let mut out = Vec::new();
    for line in &meta.requires_dist {
        let req = Requirement::<Url>::from_str(line).map_err(|e| MetadataError::Requirement {
            project: project.clone(),
            line: crate::text::one_line(line, 200),
            problem: crate::text::one_line(&e.message.to_string(), 200),
        })?;
        if !req.marker.evaluate(target.environment(), extras) {
            continue;
        }
        let (specifiers, url) = match req.version_or_url {
            Some(VersionOrUrl::VersionSpecifier(s)) => (Some(s), None),
            Some(VersionOrUrl::Url(u)) => (None, Some(super::location::redact(u.as_str()))),
            None => (None, None),
        };
        out.push(Dependency {
            name: req.name,
            extras: req.extras,
            specifiers,
            url,
            requirement: crate::text::one_line(line, 200),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fetch::target::tests::linux_311;

    const FLASK: &str = "Metadata-Version: 2.4\nName: Flask\nVersion: 3.1.2\nRequires-Python: >=3.9\n\
        Requires-Dist: blinker>=1.9.0\nRequires-Dist: click>=8.1.3\n\
        Requires-Dist: importlib-metadata>=3.6.0; python_version < '3.10'\n\
        Requires-Dist: itsdangerous>=2.2.0\nRequires-Dist: jinja2>=3.1.2\n\
        Requires-Dist: markupsafe>=2.1.1\nRequires-Dist: werkzeug>=3.1.0\n\
        Requires-Dist: asgiref>=3.2 ; extra == \"async\"\n\
        Requires-Dist: python-dotenv ; extra == 'dotenv'\n\
        Provides-Extra: async\nProvides-Extra: dotenv\n\
        Description-Content-Type: text/markdown\n\nRequires-Dist: not-a-header-in-the-body\n";

    fn names(deps: &[Dependency]) -> Vec<String> {
        deps.iter().map(|d| d.name.to_string()).collect()
    }

    #[test]
    fn requires_dist_for_the_target_and_extras() {
        let meta = parse_metadata(FLASK);
        assert_eq!(meta.name.as_deref(), Some("Flask"));
        assert_eq!(meta.requires_dist.len(), 9, "the body is not read");
        assert_eq!(meta.provides_extra, ["async", "dotenv"]);
        let t = linux_311();
        let deps = dependencies(&meta, &t, &[]).unwrap();
        assert_eq!(
            names(&deps),
            [
                "blinker",
                "click",
                "itsdangerous",
                "jinja2",
                "markupsafe",
                "werkzeug"
            ]
        );
        assert_eq!(deps[0].specifiers.as_ref().unwrap().to_string(), ">=1.9.0");
        let asyncx = ExtraName::from_str("async").unwrap();
        let deps = dependencies(&meta, &t, &[asyncx]).unwrap();
        assert!(
            names(&deps).contains(&"asgiref".to_string())
                && !names(&deps).contains(&"python-dotenv".to_string())
        );
    }

    #[test]
    fn continuation_lines_and_bad_requirements() {
        let meta =
            parse_metadata("Name: x\nRequires-Dist: a\n  >=1\nrequires-dist: B_c[X] (>=2)\n");
        assert_eq!(meta.requires_dist, ["a >=1", "B_c[X] (>=2)"]);
        let deps = dependencies(&meta, &linux_311(), &[]).unwrap();
        assert_eq!(names(&deps), ["a", "b-c"]);
        assert_eq!(deps[1].extras.len(), 1);
        let bad = parse_metadata("Name: evil\nRequires-Dist: ../../etc \u{1b}[2J\n");
        let e = dependencies(&bad, &linux_311(), &[])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("evil") && e.contains("\\u{1b}") && !e.contains('\u{1b}'),
            "{e}"
        );
    }

    #[test]
    fn wheels_must_have_one_metadata() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, entries: &[(&str, &str)]| {
            let path = dir.path().join(name);
            let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
            for (n, text) in entries {
                zip.start_file(*n, zip::write::SimpleFileOptions::default())
                    .unwrap();
                zip.write_all(text.as_bytes()).unwrap();
            }
            zip.finish().unwrap();
            path
        };
        let good = write(
            "a.whl",
            &[
                ("a/__init__.py", ""),
                ("a-1.dist-info/METADATA", "Name: a\nRequires-Dist: b\n"),
            ],
        );
        assert_eq!(read_wheel_metadata(&good).unwrap().requires_dist, ["b"]);
        let two = write(
            "b.whl",
            &[
                ("a-1.dist-info/METADATA", ""),
                ("b-1.dist-info/METADATA", ""),
            ],
        );
        assert!(matches!(
            read_wheel_metadata(&two),
            Err(MetadataError::NotOne { count: 2, .. })
        ));
        let nested = write("c.whl", &[("x/a-1.dist-info/METADATA", "")]);
        assert!(matches!(
            read_wheel_metadata(&nested),
            Err(MetadataError::NotOne { count: 0, .. })
        ));
        std::fs::write(dir.path().join("junk.whl"), b"not a zip").unwrap();
        assert!(read_wheel_metadata(&dir.path().join("junk.whl")).is_err());
    }
}
