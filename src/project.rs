//! Static project metadata: `PKG-INFO` headers and `pyproject.toml`'s
//! `[build-system]`, read without executing anything.
//!
//! Rules follow PEP 517/518 as pip applies them:
//! - no `pyproject.toml`, or one without `[build-system]` → the legacy
//!   default (`setuptools>=40.8.0`, `setuptools.build_meta:__legacy__`);
//! - `requires` without `build-backend` → those requirements with the
//!   legacy backend;
//! - `[build-system]` without `requires`, or fields of the wrong type, is an
//!   error naming the file and the field;
//! - `backend-path` entries are relative and stay inside the tree.
//!
//! The project's name and version come from up to three places: the sdist's
//! file name, `PKG-INFO` and `pyproject.toml`'s `[project]` (where static
//! there). Each one given must be a valid name (PEP 508) and version (PEP
//! 440), and all must agree after normalization ([`identify`]), or the input
//! is refused: the name goes into reports, events, file names and the check
//! that the wheel belongs to this sdist.
//!
//! Invariants: files are read with a size bound and must resolve inside
//! the project root (the archive stage already refuses links that leave the
//! tree; this is a second line). Everything read is attacker text and is
//! returned as data, never interpreted further; a name or version is
//! returned only once it is valid, and invalid text reaches error messages
//! only through [`crate::names::shown`].

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use fs_err as fs;
use serde::Serialize;

use crate::names::{self, Name, NameError, Release, Version};

/// The PEP 517 fallback backend for projects that do not name one.
pub const LEGACY_BACKEND: &str = "setuptools.build_meta:__legacy__";
/// What pip requires for the fallback backend.
pub const LEGACY_REQUIRES: &str = "setuptools>=40.8.0";
/// Largest `pyproject.toml` accepted, and most of `PKG-INFO` read.
pub const MAX_METADATA_BYTES: u64 = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BuildSystem {
    pub requires: Vec<String>,
    pub build_backend: String,
    pub backend_path: Vec<String>,
    pub source: BuildSystemSource,
}

/// Where [`BuildSystem`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BuildSystemSource {
    /// `[build-system]` with `requires` and `build-backend`.
    Pyproject,
    /// `[build-system]` with `requires` only: the legacy backend.
    PyprojectWithoutBackend,
    /// No `pyproject.toml` or no `[build-system]`: all defaults.
    LegacyDefault,
}

impl BuildSystem {
    fn legacy_default() -> Self {
        BuildSystem {
            requires: vec![LEGACY_REQUIRES.to_owned()],
            build_backend: LEGACY_BACKEND.to_owned(),
            backend_path: Vec::new(),
            source: BuildSystemSource::LegacyDefault,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ProjectMeta {
    /// A valid PEP 508 name (after [`identify`]: the one all sources agree on).
    pub name: Option<String>,
    /// PEP 503 form of `name`.
    pub normalized_name: Option<String>,
    /// A valid PEP 440 version, as written.
    pub version: Option<String>,
    /// PEP 440 normal form of `version`.
    pub normalized_version: Option<String>,
    pub metadata_version: Option<String>,
    pub build_system: BuildSystem,
    pub has_pyproject: bool,
    pub has_setup_py: bool,
    pub has_pkg_info: bool,
    /// What each metadata file says, for [`identify`].
    #[serde(skip)]
    pub declared: Declared,
}

/// The name and version each metadata file gives, validated.
#[derive(Debug, Clone, Default)]
pub struct Declared {
    pub pkg_info_name: Option<Name>,
    pub pkg_info_version: Option<Version>,
    /// `[project] name`.
    pub pyproject_name: Option<Name>,
    /// `[project] version`, unless `dynamic` lists it.
    pub pyproject_version: Option<Version>,
}

#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    /// An I/O error; fs-err puts the path in its message.
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error("`{path}` is not a regular file")]
    NotAFile { path: PathBuf },
    #[error(
        "the sdist does not appear to be a Python project: it has neither `pyproject.toml` nor `setup.py` (pip and build refuse it too)"
    )]
    NotAPythonProject,
    #[error("`{path}` resolves outside the project tree")]
    OutsideTree { path: PathBuf },
    #[error("`{path}` is larger than the limit of {limit} bytes")]
    TooLarge { path: PathBuf, limit: u64 },
    #[error("`{path}` is not valid UTF-8")]
    NotUtf8 { path: PathBuf },
    #[error("invalid TOML in `{path}` at line {line}, column {column}: {message}")]
    Toml {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("`{path}`: `{field}` {problem}")]
    Field {
        path: PathBuf,
        field: &'static str,
        problem: String,
    },
    #[error("`{path}`: `build-system.backend-path` entry `{entry}` {problem}")]
    BackendPath {
        path: PathBuf,
        entry: String,
        problem: &'static str,
    },
    #[error("`{path}`: {field}: {source}")]
    Invalid {
        path: PathBuf,
        field: &'static str,
        source: NameError,
    },
    #[error(
        "the sdist's file name, PKG-INFO and pyproject.toml do not give one project name and version: {sources}"
    )]
    Disagree {
        /// All three, as each gives them.
        sources: String,
    },
}

/// PEP 503 normalization: lowercase, each run of `-`, `_`, `.` becomes `-`.
pub use crate::names::normalize as normalize_name;

/// Read a project's metadata from its extracted source tree.
pub fn read_project(root: &Path) -> Result<ProjectMeta, ProjectError> {
    let root = fs::canonicalize(root)?;
    let pyproject_path = root.join("pyproject.toml");
    let pkg_info_path = root.join("PKG-INFO");

    let pkg_info = read_bounded(&root, &pkg_info_path, Bound::Truncate)?
        .map(|bytes| parse_pkg_info(&String::from_utf8_lossy(&bytes)));
    let pyproject = match read_bounded(&root, &pyproject_path, Bound::Refuse)? {
        Some(bytes) => {
            let text = String::from_utf8(bytes).map_err(|_| ProjectError::NotUtf8 {
                path: pyproject_path.clone(),
            })?;
            Some(parse_toml(&pyproject_path, &text)?)
        }
        None => None,
    };

    let build_system = match &pyproject {
        Some(doc) => build_system(&pyproject_path, doc)?,
        None => BuildSystem::legacy_default(),
    };

    let headers = pkg_info.unwrap_or_default();
    let invalid = |path: &Path, field| {
        let path = path.to_path_buf();
        move |source| ProjectError::Invalid {
            path,
            field,
            source,
        }
    };
    let mut declared = Declared {
        pkg_info_name: headers
            .name
            .as_deref()
            .map(Name::parse)
            .transpose()
            .map_err(invalid(&pkg_info_path, "Name"))?,
        pkg_info_version: headers
            .version
            .as_deref()
            .map(Version::parse)
            .transpose()
            .map_err(invalid(&pkg_info_path, "Version"))?,
        ..Declared::default()
    };
    if let Some(doc) = &pyproject {
        (declared.pyproject_name, declared.pyproject_version) =
            project_name_version(&pyproject_path, doc)?;
    }
    let name = declared
        .pkg_info_name
        .as_ref()
        .or(declared.pyproject_name.as_ref());
    let version = declared
        .pkg_info_version
        .as_ref()
        .or(declared.pyproject_version.as_ref());

    Ok(ProjectMeta {
        name: name.map(|n| n.as_str().to_owned()),
        normalized_name: name.map(|n| n.normalized().to_owned()),
        version: version.map(|v| v.as_str().to_owned()),
        normalized_version: version.map(Version::normalized),
        metadata_version: headers.metadata_version,
        build_system,
        has_pyproject: pyproject.is_some(),
        has_setup_py: is_file(&root.join("setup.py")),
        has_pkg_info: headers.present,
        declared,
    })
}

/// Something to build with: a `pyproject.toml` or a `setup.py`. Without
/// either, the legacy backend would make an `UNKNOWN-0.0.0` wheel of
/// whatever the tree holds.
pub fn check_buildable(meta: &ProjectMeta) -> Result<(), ProjectError> {
    if meta.has_pyproject || meta.has_setup_py {
        Ok(())
    } else {
        Err(ProjectError::NotAPythonProject)
    }
}

/// `[project]`'s static `name` and `version` (a version `dynamic` lists
/// is the backend's to compute: not static, not compared).
fn project_name_version(
    path: &Path,
    doc: &toml::Table,
) -> Result<(Option<Name>, Option<Version>), ProjectError> {
    let Some(table) = doc.get("project").and_then(toml::Value::as_table) else {
        return Ok((None, None));
    };
    let text = |key: &'static str| -> Result<Option<&str>, ProjectError> {
        match table.get(key) {
            None => Ok(None),
            Some(v) => v.as_str().map(Some).ok_or_else(|| ProjectError::Field {
                path: path.to_path_buf(),
                field: if key == "name" {
                    "project.name"
                } else {
                    "project.version"
                },
                problem: "must be a string".into(),
            }),
        }
    };
    let invalid = |field| {
        move |source| ProjectError::Invalid {
            path: path.to_path_buf(),
            field,
            source,
        }
    };
    let dynamic_version = table
        .get("dynamic")
        .and_then(toml::Value::as_array)
        .is_some_and(|d| d.iter().any(|v| v.as_str() == Some("version")));
    let name = text("name")?
        .map(Name::parse)
        .transpose()
        .map_err(invalid("[project] name"))?;
    let version = match dynamic_version {
        true => None,
        false => text("version")?
            .map(Version::parse)
            .transpose()
            .map_err(invalid("[project] version"))?,
    };
    Ok((name, version))
}

/// The release this sdist is: the name and version its file name,
/// `PKG-INFO` and static `[project]` table give, which must all be there
/// where the source has them and agree (PEP 503 names, PEP 440 versions).
/// The file name must always give both (`{name}-{version}.tar.gz`); it is
/// split where its name part is the metadata's name, so legacy names with
/// dashes work. Fills in `meta`'s name and version from the first source
/// that has them (`PKG-INFO`, `[project]`, the file name).
pub fn identify(meta: &mut ProjectMeta, sdist_filename: &str) -> Result<Release, ProjectError> {
    let d = &meta.declared;
    let meta_name = d.pkg_info_name.as_ref().or(d.pyproject_name.as_ref());
    let stem = names::sdist_stem(sdist_filename);
    let from_file = names::split_name_version(stem, meta_name)
        .or_else(|| names::split_name_version(stem, None));
    let names_agree = [&d.pkg_info_name, &d.pyproject_name]
        .into_iter()
        .flatten()
        .chain(from_file.as_ref().map(|r| &r.name))
        .all(|n| meta_name.is_none_or(|m| m.same_project(n)));
    let versions = [&d.pkg_info_version, &d.pyproject_version];
    let first_version = versions.iter().copied().flatten().next();
    let versions_agree = versions
        .iter()
        .copied()
        .flatten()
        .chain(from_file.as_ref().map(|r| &r.version))
        .all(|v| first_version.is_none_or(|f| f == v));
    let release = match &from_file {
        Some(file) if names_agree && versions_agree => Release {
            name: meta_name.unwrap_or(&file.name).clone(),
            version: first_version.unwrap_or(&file.version).clone(),
        },
        _ => {
            let says = |name: &Option<Name>, version: &Option<Version>| match (name, version) {
                (None, None) => "no name or version".to_string(),
                (Some(n), None) => format!("`{n}`, no version"),
                (None, Some(v)) => format!("no name, version `{v}`"),
                (Some(n), Some(v)) => format!("`{n}` `{v}`"),
            };
            let file = match &from_file {
                Some(r) => format!("`{}` `{}`", r.name, r.version),
                None => "not {name}-{version} with a PEP 440 version".to_string(),
            };
            let pyproject = match meta.has_pyproject {
                true => says(&d.pyproject_name, &d.pyproject_version),
                false => "(no pyproject.toml)".to_string(),
            };
            let pkg_info = match meta.has_pkg_info {
                true => says(&d.pkg_info_name, &d.pkg_info_version),
                false => "(no PKG-INFO)".to_string(),
            };
            return Err(ProjectError::Disagree {
                sources: format!(
                    "file name `{}`: {file}; PKG-INFO: {pkg_info}; pyproject.toml [project]: {pyproject}",
                    names::shown(sdist_filename, 200)
                ),
            });
        }
    };
    meta.name = Some(release.name.as_str().to_owned());
    meta.normalized_name = Some(release.name.normalized().to_owned());
    meta.version = Some(release.version.as_str().to_owned());
    meta.normalized_version = Some(release.version.normalized());
    Ok(release)
}

fn is_file(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Bound {
    /// Over the bound is an error (a config file cut short would mislead).
    Refuse,
    /// Read up to the bound (headers come first; the rest is not needed).
    Truncate,
}

/// Read a file of the project if it exists: it must resolve inside `root`
/// and be a regular file. `root` is canonical.
fn read_bounded(root: &Path, path: &Path, bound: Bound) -> Result<Option<Vec<u8>>, ProjectError> {
    match fs::symlink_metadata(path) {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    // Links were checked at extraction; a link to a missing file is treated
    // as no file, one that resolves elsewhere is refused.
    let real = match fs::canonicalize(path) {
        Ok(real) => real,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    if !real.starts_with(root) {
        return Err(ProjectError::OutsideTree {
            path: path.to_path_buf(),
        });
    }
    let file = fs::File::open(&real)?;
    if !file.metadata()?.is_file() {
        return Err(ProjectError::NotAFile {
            path: path.to_path_buf(),
        });
    }
    let mut bytes = Vec::new();
    file.take(MAX_METADATA_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_METADATA_BYTES {
        match bound {
            Bound::Refuse => {
                return Err(ProjectError::TooLarge {
                    path: path.to_path_buf(),
                    limit: MAX_METADATA_BYTES,
                });
            }
            Bound::Truncate => bytes.truncate(MAX_METADATA_BYTES as usize),
        }
    }
    Ok(Some(bytes))
}

#[derive(Debug, Default)]
struct PkgInfo {
    present: bool,
    name: Option<String>,
    version: Option<String>,
    metadata_version: Option<String>,
}

/// Parse the header block of `PKG-INFO`; see [`parse_headers`].
fn parse_pkg_info(text: &str) -> PkgInfo {
    let headers = parse_headers(text);
    let get = |key: &str| header(&headers, key).map(str::to_owned);
    PkgInfo {
        present: true,
        name: get("name"),
        version: get("version"),
        metadata_version: get("metadata-version"),
    }
}

/// The first non-empty value of header `key` (lowercase), as with Python's
/// `email` parser.
pub(crate) fn header<'a>(headers: &'a [(String, String)], key: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// Parse an RFC 822-style header block (`PKG-INFO`, a wheel's `METADATA`
/// and `WHEEL`): `Key: value` lines, continuation lines start with space or
/// tab, the block ends at the first blank line (the description body
/// follows). Keys are lowercased, values trimmed.
pub(crate) fn parse_headers(text: &str) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = headers.last_mut() {
                let more = line.trim();
                if !more.is_empty() {
                    if !value.is_empty() {
                        value.push(' ');
                    }
                    value.push_str(more);
                }
                continue;
            }
            break;
        }
        let Some((key, value)) = line.split_once(':') else {
            // Not a header: the body starts here.
            break;
        };
        headers.push((key.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    headers
}

fn parse_toml(path: &Path, text: &str) -> Result<toml::Table, ProjectError> {
    toml::from_str::<toml::Table>(text).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start).min(text.len());
        let before = &text.as_bytes()[..offset];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let column = String::from_utf8_lossy(&before[line_start..])
            .chars()
            .count()
            + 1;
        ProjectError::Toml {
            path: path.to_path_buf(),
            line,
            column,
            message: e.message().trim().to_owned(),
        }
    })
}

fn build_system(path: &Path, doc: &toml::Table) -> Result<BuildSystem, ProjectError> {
    let field_error = |field: &'static str, problem: &str| ProjectError::Field {
        path: path.to_path_buf(),
        field,
        problem: problem.to_owned(),
    };
    let Some(table) = doc.get("build-system") else {
        return Ok(BuildSystem::legacy_default());
    };
    let table = table
        .as_table()
        .ok_or_else(|| field_error("build-system", "must be a table"))?;

    let requires = match table.get("requires") {
        None => {
            return Err(field_error(
                "build-system.requires",
                "is missing (PEP 518: a [build-system] table must list its requirements)",
            ));
        }
        Some(value) => string_list(value)
            .ok_or_else(|| field_error("build-system.requires", "must be a list of strings"))?,
    };

    let backend = match table.get("build-backend") {
        None => None,
        Some(value) => {
            let s = value
                .as_str()
                .ok_or_else(|| field_error("build-system.build-backend", "must be a string"))?;
            if s.trim().is_empty() {
                return Err(field_error(
                    "build-system.build-backend",
                    "must not be empty",
                ));
            }
            Some(s.to_owned())
        }
    };

    let backend_path = match table.get("backend-path") {
        None => Vec::new(),
        Some(value) => string_list(value)
            .ok_or_else(|| field_error("build-system.backend-path", "must be a list of strings"))?,
    };
    for entry in &backend_path {
        check_backend_path(entry).map_err(|problem| ProjectError::BackendPath {
            path: path.to_path_buf(),
            entry: escape(entry),
            problem,
        })?;
    }

    Ok(match backend {
        Some(build_backend) => BuildSystem {
            requires,
            build_backend,
            backend_path,
            source: BuildSystemSource::Pyproject,
        },
        None => BuildSystem {
            requires,
            build_backend: LEGACY_BACKEND.to_owned(),
            backend_path,
            source: BuildSystemSource::PyprojectWithoutBackend,
        },
    })
}

fn string_list(value: &toml::Value) -> Option<Vec<String>> {
    value
        .as_array()?
        .iter()
        .map(|v| v.as_str().map(str::to_owned))
        .collect()
}

/// A `backend-path` entry is a directory relative to the project root that,
/// normalized lexically, stays inside it (PEP 517).
fn check_backend_path(entry: &str) -> Result<(), &'static str> {
    if entry.contains('\0') {
        return Err("contains a NUL byte");
    }
    if entry.starts_with('/') || entry.starts_with('\\') || entry.get(1..2) == Some(":") {
        return Err("is absolute: it must be relative to the project root");
    }
    let mut depth: usize = 0;
    for c in entry.split(['/', '\\']) {
        match c {
            "" | "." => {}
            ".." => {
                depth = depth.checked_sub(1).ok_or("leaves the project tree")?;
            }
            _ => depth += 1,
        }
    }
    Ok(())
}

/// Escape control characters and bound length of attacker text in messages.
fn escape(s: &str) -> String {
    crate::text::one_line(s, 257)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            let p = dir.path().join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        dir
    }

    fn read(files: &[(&str, &str)]) -> Result<ProjectMeta, ProjectError> {
        let dir = project(files);
        read_project(dir.path())
    }

    const PKG_INFO: &str = "Metadata-Version: 2.1\nName: My_Pkg.Name\nVersion: 1.2.3\nSummary: x\n\nName: not-this\nbody text\n";

    #[test]
    fn normalize_name_follows_pep_503() {
        assert_eq!(normalize_name("My_Pkg.Name"), "my-pkg-name");
        assert_eq!(normalize_name("a--_..b"), "a-b");
        assert_eq!(normalize_name("Django"), "django");
        assert_eq!(normalize_name("zope.interface"), "zope-interface");
    }

    #[test]
    fn pkg_info_only_gives_legacy_default() {
        let m = read(&[("PKG-INFO", PKG_INFO), ("setup.py", "")]).unwrap();
        assert_eq!(m.name.as_deref(), Some("My_Pkg.Name"));
        assert_eq!(m.normalized_name.as_deref(), Some("my-pkg-name"));
        assert_eq!(m.version.as_deref(), Some("1.2.3"));
        assert_eq!(m.metadata_version.as_deref(), Some("2.1"));
        assert!(m.has_pkg_info && m.has_setup_py && !m.has_pyproject);
        assert_eq!(
            m.build_system,
            BuildSystem {
                requires: vec!["setuptools>=40.8.0".into()],
                build_backend: "setuptools.build_meta:__legacy__".into(),
                backend_path: vec![],
                source: BuildSystemSource::LegacyDefault,
            }
        );
    }

    #[test]
    fn pkg_info_headers_stop_at_the_first_blank_line() {
        let m = read(&[(
            "PKG-INFO",
            "Metadata-Version: 2.1\n\nName: body\nVersion: 9\n",
        )])
        .unwrap();
        assert_eq!(m.name, None);
        assert_eq!(m.version, None);
    }

    #[test]
    fn pkg_info_continuation_lines_and_crlf() {
        let text = "Metadata-Version: 1.0\r\nName:\r\n  folded-name\r\nSummary: one\r\n\ttwo\r\nVersion: 2.0\r\n\r\n";
        let m = read(&[("PKG-INFO", text)]).unwrap();
        assert_eq!(m.name.as_deref(), Some("folded-name"));
        assert_eq!(m.version.as_deref(), Some("2.0"));
        let h = parse_pkg_info("Summary: one\n\ttwo\n  three\n");
        assert!(h.present);
        let text = "Name: a\n b\nVersion: 1\n";
        let h = parse_pkg_info(text);
        assert_eq!(h.name.as_deref(), Some("a b"));
    }

    #[test]
    fn pkg_info_header_names_are_case_insensitive_and_first_wins() {
        let h = parse_pkg_info("name: first\nNAME: second\nversion: 1\n");
        assert_eq!(h.name.as_deref(), Some("first"));
        assert_eq!(h.version.as_deref(), Some("1"));
    }

    #[test]
    fn pkg_info_is_read_only_up_to_the_bound() {
        let mut text = String::from("Name: big\n");
        text.push_str(&"X-Filler: 0123456789\n".repeat(60_000));
        text.push_str("Version: 1\n");
        assert!(text.len() as u64 > MAX_METADATA_BYTES);
        let m = read(&[("PKG-INFO", &text)]).unwrap();
        assert_eq!(m.name.as_deref(), Some("big"));
        assert_eq!(m.version, None, "a header past 1 MiB is not read");
    }

    #[test]
    fn pyproject_with_backend_and_backend_path() {
        let toml = r#"
[build-system]
requires = ["flit_core >=3.2,<4", "wheel"]
build-backend = "backend:api"
backend-path = ["_build", "./tools/../_build2"]
"#;
        let m = read(&[("pyproject.toml", toml), ("PKG-INFO", PKG_INFO)]).unwrap();
        assert!(m.has_pyproject);
        assert_eq!(
            m.build_system,
            BuildSystem {
                requires: vec!["flit_core >=3.2,<4".into(), "wheel".into()],
                build_backend: "backend:api".into(),
                backend_path: vec!["_build".into(), "./tools/../_build2".into()],
                source: BuildSystemSource::Pyproject,
            }
        );
    }

    #[test]
    fn pyproject_without_backend_uses_legacy_backend_with_its_requires() {
        let toml = "[build-system]\nrequires = [\"setuptools>=61\", \"cython\"]\n";
        let m = read(&[("pyproject.toml", toml)]).unwrap();
        assert_eq!(m.build_system.requires, ["setuptools>=61", "cython"]);
        assert_eq!(m.build_system.build_backend, LEGACY_BACKEND);
        assert_eq!(
            m.build_system.source,
            BuildSystemSource::PyprojectWithoutBackend
        );
    }

    #[test]
    fn pyproject_without_build_system_is_legacy_default_and_gives_name() {
        let toml = "[project]\nname = \"From_Pyproject\"\nversion = \"0.1\"\n[tool.black]\nline-length = 99\n";
        let m = read(&[("pyproject.toml", toml)]).unwrap();
        assert_eq!(m.build_system.source, BuildSystemSource::LegacyDefault);
        assert_eq!(m.build_system.requires, [LEGACY_REQUIRES]);
        assert_eq!(m.name.as_deref(), Some("From_Pyproject"));
        assert_eq!(m.normalized_name.as_deref(), Some("from-pyproject"));
        assert_eq!(m.version.as_deref(), Some("0.1"));
        assert!(!m.has_pkg_info);
    }

    #[test]
    fn pkg_info_wins_over_project_table() {
        let toml = "[project]\nname = \"other\"\ndynamic = [\"version\"]\n";
        let m = read(&[("pyproject.toml", toml), ("PKG-INFO", "Name: real\n")]).unwrap();
        assert_eq!(m.name.as_deref(), Some("real"));
        assert_eq!(m.version, None);
    }

    #[test]
    fn neither_pyproject_nor_setup_py_is_not_buildable() {
        let e = check_buildable(&read(&[("PKG-INFO", PKG_INFO)]).unwrap()).unwrap_err();
        assert!(
            e.to_string()
                .contains("neither `pyproject.toml` nor `setup.py`"),
            "{e}"
        );
        check_buildable(&read(&[("PKG-INFO", PKG_INFO), ("setup.py", "")]).unwrap()).unwrap();
        check_buildable(&read(&[("pyproject.toml", "")]).unwrap()).unwrap();
    }

    #[test]
    fn nothing_at_all_is_legacy_default_without_name() {
        let m = read(&[]).unwrap();
        assert_eq!(m.build_system.source, BuildSystemSource::LegacyDefault);
        assert_eq!(m.name, None);
        assert!(!m.has_pkg_info && !m.has_pyproject && !m.has_setup_py);
    }

    fn field_error(toml: &str) -> (String, String) {
        match read(&[("pyproject.toml", toml)]).unwrap_err() {
            err @ ProjectError::Field { field, .. } => (field.to_owned(), err.to_string()),
            other => panic!("expected a field error, got {other:?}"),
        }
    }

    #[test]
    fn bad_types_are_errors_naming_file_and_field() {
        let (field, msg) = field_error("[build-system]\nbuild-backend = \"x\"\n");
        assert_eq!(field, "build-system.requires");
        assert!(
            msg.contains("pyproject.toml") && msg.contains("is missing"),
            "{msg}"
        );

        let (field, msg) = field_error("[build-system]\nrequires = \"setuptools\"\n");
        assert_eq!(field, "build-system.requires");
        assert!(msg.contains("must be a list of strings"), "{msg}");

        let (field, _) = field_error("[build-system]\nrequires = [\"a\", 1]\n");
        assert_eq!(field, "build-system.requires");

        let (field, msg) = field_error("[build-system]\nrequires = []\nbuild-backend = 3\n");
        assert_eq!(field, "build-system.build-backend");
        assert!(msg.contains("must be a string"), "{msg}");

        let (field, _) = field_error("[build-system]\nrequires = []\nbackend-path = \"x\"\n");
        assert_eq!(field, "build-system.backend-path");

        let (field, _) = field_error("build-system = 1\n");
        assert_eq!(field, "build-system");
    }

    #[test]
    fn escaping_backend_path_is_an_error_naming_the_entry() {
        for bad in [
            "..",
            "a/../..",
            "/abs",
            "../sibling",
            "C:\\x",
            "a\\..\\..\\b",
        ] {
            let toml = format!(
                "[build-system]\nrequires = []\nbuild-backend = \"b\"\nbackend-path = [\"ok\", {}]\n",
                toml::Value::String(bad.into())
            );
            let err = read(&[("pyproject.toml", &toml)]).unwrap_err();
            assert!(
                matches!(err, ProjectError::BackendPath { .. }),
                "{bad}: {err:?}"
            );
            let msg = err.to_string();
            assert!(msg.contains(&format!("entry `{bad}`")), "{msg}");
            assert!(msg.contains("pyproject.toml"), "{msg}");
        }
        // Staying inside after normalization is fine.
        assert!(check_backend_path("a/../b").is_ok());
        assert!(check_backend_path(".").is_ok());
    }

    #[test]
    fn toml_syntax_errors_give_line_and_column() {
        let err = read(&[(
            "pyproject.toml",
            "[build-system]\nrequires = [\"a\",\nx = 1\n",
        )])
        .unwrap_err();
        let ProjectError::Toml { line, column, .. } = &err else {
            panic!("expected a TOML error, got {err:?}");
        };
        assert_eq!((*line, *column), (3, 3), "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains("pyproject.toml") && msg.contains("line 3, column 3"),
            "{msg}"
        );
    }

    #[test]
    fn oversized_pyproject_is_refused() {
        let mut toml = String::from("[build-system]\nrequires = []\n# ");
        toml.push_str(&"x".repeat(MAX_METADATA_BYTES as usize));
        let err = read(&[("pyproject.toml", &toml)]).unwrap_err();
        assert!(matches!(err, ProjectError::TooLarge { .. }), "{err:?}");
        assert!(err.to_string().contains("pyproject.toml"));
    }

    #[test]
    fn metadata_files_must_resolve_inside_the_tree() {
        let outside = project(&[("secret", "[build-system]\nrequires = []\n")]);
        let dir = project(&[]);
        std::os::unix::fs::symlink(
            outside.path().join("secret"),
            dir.path().join("pyproject.toml"),
        )
        .unwrap();
        let err = read_project(dir.path()).unwrap_err();
        assert!(matches!(err, ProjectError::OutsideTree { .. }), "{err:?}");

        // A link inside the tree is fine.
        let dir = project(&[("real.toml", "[build-system]\nrequires = [\"x\"]\n")]);
        std::os::unix::fs::symlink("real.toml", dir.path().join("pyproject.toml")).unwrap();
        let m = read_project(dir.path()).unwrap();
        assert_eq!(m.build_system.requires, ["x"]);

        // A directory named pyproject.toml is not a file.
        let dir = project(&[]);
        std::fs::create_dir(dir.path().join("pyproject.toml")).unwrap();
        let err = read_project(dir.path()).unwrap_err();
        assert!(matches!(err, ProjectError::NotAFile { .. }), "{err:?}");
    }

    fn identified(files: &[(&str, &str)], filename: &str) -> Result<ProjectMeta, ProjectError> {
        let mut m = read(files)?;
        identify(&mut m, filename)?;
        Ok(m)
    }

    fn pkg_info(name: &str, version: &str) -> String {
        format!("Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    }

    #[test]
    fn real_sdist_spellings_agree() {
        for (file, name, version, normal) in [
            ("Django-4.2.tar.gz", "Django", "4.2", "django"),
            (
                "python-dateutil-2.8.2.tar.gz",
                "python-dateutil",
                "2.8.2",
                "python-dateutil",
            ),
            (
                "python_dateutil-2.9.0.post0.tar.gz",
                "python-dateutil",
                "2.9.0.post0",
                "python-dateutil",
            ),
            (
                "zope.interface-5.4.0.tar.gz",
                "zope.interface",
                "5.4.0",
                "zope-interface",
            ),
            (
                "zope_interface-7.0.tar.gz",
                "zope.interface",
                "7.0",
                "zope-interface",
            ),
            ("pkg-2.0rc1.zip", "pkg", "2.0rc1", "pkg"),
            ("pkg-1.0.post1.tar.gz", "pkg", "1.0.post1", "pkg"),
            ("pkg-1.0+local.7.tar.gz", "pkg", "1.0+local.7", "pkg"),
            ("pkg-1.0.0.tar.gz", "pkg", "1.0", "pkg"),
        ] {
            let m = identified(&[("PKG-INFO", &pkg_info(name, version))], file)
                .unwrap_or_else(|e| panic!("{file}: {e}"));
            assert_eq!(m.name.as_deref(), Some(name), "{file}");
            assert_eq!(m.normalized_name.as_deref(), Some(normal), "{file}");
            assert_eq!(m.version.as_deref(), Some(version), "{file}");
        }
    }

    #[test]
    fn dynamic_versions_and_missing_pkg_info_take_what_there_is() {
        // setuptools-scm: the version is dynamic in pyproject, PKG-INFO has it.
        let toml = "[project]\nname = \"scm_pkg\"\ndynamic = [\"version\"]\n";
        let m = identified(
            &[
                ("pyproject.toml", toml),
                ("PKG-INFO", &pkg_info("scm-pkg", "1.2.3.dev4")),
            ],
            "scm_pkg-1.2.3.dev4.tar.gz",
        )
        .unwrap();
        assert_eq!(m.normalized_version.as_deref(), Some("1.2.3.dev4"));
        // No PKG-INFO: the name from pyproject, the version from the file name.
        let m = identified(&[("pyproject.toml", toml)], "scm_pkg-7.0.tar.gz").unwrap();
        assert_eq!(
            (m.name.as_deref(), m.version.as_deref()),
            (Some("scm_pkg"), Some("7.0"))
        );
        // Nothing but setup.py: all from the file name.
        let m = identified(&[("setup.py", "")], "legacy-pkg-0.1.tar.gz").unwrap();
        assert_eq!(
            (m.name.as_deref(), m.version.as_deref()),
            (Some("legacy-pkg"), Some("0.1"))
        );
        // A static [project] version that agrees.
        let toml = "[project]\nname = \"Same\"\nversion = \"1.0.0\"\n";
        identified(
            &[
                ("pyproject.toml", toml),
                ("PKG-INFO", &pkg_info("same", "1.0")),
            ],
            "same-1.0.tar.gz",
        )
        .unwrap();
    }

    fn disagreement(files: &[(&str, &str)], filename: &str) -> String {
        match identified(files, filename) {
            Err(e @ ProjectError::Disagree { .. }) => e.to_string(),
            other => panic!("{filename}: expected a disagreement, got {other:?}"),
        }
    }

    #[test]
    fn sources_that_disagree_are_refused_showing_all_three() {
        let msg = disagreement(
            &[("PKG-INFO", &pkg_info("requests", "2.31.0"))],
            "evil-1.0.tar.gz",
        );
        for part in [
            "file name `evil-1.0.tar.gz`: `evil` `1.0`",
            "PKG-INFO: `requests` `2.31.0`",
            "pyproject.toml [project]: (no pyproject.toml)",
        ] {
            assert!(msg.contains(part), "{part} not in {msg}");
        }
        let msg = disagreement(
            &[
                ("PKG-INFO", &pkg_info("pkg", "1.0")),
                (
                    "pyproject.toml",
                    "[project]\nname = \"pkg\"\nversion = \"1.1\"\n",
                ),
            ],
            "pkg-1.0.tar.gz",
        );
        assert!(msg.contains("[project]: `pkg` `1.1`"), "{msg}");
        disagreement(
            &[("PKG-INFO", &pkg_info("pkg", "1.0"))],
            "pkg-1.0.post1.tar.gz",
        );
        disagreement(
            &[(
                "pyproject.toml",
                "[project]\nname = \"other\"\ndynamic = [\"version\"]\n",
            )],
            "pkg-1.0.tar.gz",
        );
        let msg = disagreement(&[("PKG-INFO", &pkg_info("pkg", "1.0"))], "pkg.tar.gz");
        assert!(msg.contains("not {name}-{version}"), "{msg}");
        let msg = disagreement(&[], "x\u{1b}[2J<b>.tar.gz");
        assert!(!msg.contains('\u{1b}') && !msg.contains('<'), "{msg}");
    }

    #[test]
    fn invalid_names_and_versions_are_refused_without_their_text() {
        let bad_names = [
            "evil\nname",
            "evil\u{0}",
            "evil\u{1b}[31m",
            "<script>alert(1)</script>",
        ];
        for bad in bad_names {
            let toml = format!("[project]\nname = {}\n", toml::Value::String(bad.into()));
            let err = read(&[("pyproject.toml", &toml)]).unwrap_err();
            assert!(
                matches!(
                    err,
                    ProjectError::Invalid {
                        field: "[project] name",
                        ..
                    }
                ),
                "{bad:?}: {err:?}"
            );
            let msg = err.to_string();
            assert!(msg.contains("not a valid project name"), "{msg}");
            for raw in ["\n", "\u{0}", "\u{1b}", "<"] {
                assert!(!msg.contains(raw), "{msg:?} carries {raw:?}");
            }
            let err = read(&[("PKG-INFO", &format!("Name: {bad}\nVersion: 1\n"))]);
            // PKG-INFO's line ends at the newline: `evil` alone is a name.
            if !bad.contains('\n') {
                assert!(
                    matches!(err, Err(ProjectError::Invalid { field: "Name", .. })),
                    "{bad:?}: {err:?}"
                );
            }
        }
        let toml = "[project]\nname = \"ok\"\nversion = \"1.0; $(id)\\r\\n\"\n";
        let err = read(&[("pyproject.toml", toml)]).unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(
                err,
                ProjectError::Invalid {
                    field: "[project] version",
                    ..
                }
            ),
            "{msg}"
        );
        assert!(
            !msg.contains("$(") && !msg.contains('\r') && !msg.contains(';'),
            "{msg:?}"
        );
        let err = read(&[("PKG-INFO", "Name: ok\nVersion: 1.0 `rm -rf`\n")]).unwrap_err();
        assert!(
            matches!(
                err,
                ProjectError::Invalid {
                    field: "Version",
                    ..
                }
            ),
            "{err}"
        );
        let err = read(&[("pyproject.toml", "[project]\nname = 3\n")]).unwrap_err();
        assert!(
            err.to_string().contains("`project.name` must be a string"),
            "{err}"
        );
        // A dynamic version is not read, whatever it holds.
        read(&[(
            "pyproject.toml",
            "[project]\nname = \"ok\"\nversion = \"$(id)\"\ndynamic = [\"version\"]\n",
        )])
        .unwrap();
    }

    #[test]
    fn build_system_serializes_kebab_case_source() {
        let m = read(&[]).unwrap();
        let json = serde_json::to_value(&m).unwrap();
        assert_eq!(json["build_system"]["source"], "legacy-default");
    }
}
