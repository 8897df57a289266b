//! Static project metadata: `PKG-INFO` and `pyproject.toml`'s
//! `[build-system]`, read without executing anything.
//!
//! Rules follow PEP 517/518 as pip applies them: no `pyproject.toml` or no
//! `[build-system]` → the legacy setuptools backend; `requires` without
//! `build-backend` → those requirements with the legacy backend;
//! `[build-system]` without `requires` is an error.

use std::io::Read;
use std::path::{Component, Path, PathBuf};

use serde::Serialize;

const LEGACY_BACKEND: &str = "setuptools.build_meta:__legacy__";
const LEGACY_REQUIRES: &str = "setuptools>=40.8.0";
const MAX_FILE: u64 = 1 << 20;

#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    #[error("failed to read `{path}`: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("`{path}` is larger than {MAX_FILE} bytes")]
    TooLarge { path: PathBuf },
    #[error("invalid pyproject.toml: {0}")]
    Toml(String),
    #[error("pyproject.toml: {0}")]
    Field(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BuildSystemSource {
    Pyproject,
    PyprojectWithoutBackend,
    LegacyDefault,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BuildSystem {
    pub requires: Vec<String>,
    pub build_backend: String,
    pub backend_path: Vec<String>,
    pub source: BuildSystemSource,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProjectMeta {
    pub name: Option<String>,
    pub normalized_name: Option<String>,
    pub version: Option<String>,
    pub metadata_version: Option<String>,
    pub build_system: BuildSystem,
    pub has_pyproject: bool,
    pub has_setup_py: bool,
    pub has_pkg_info: bool,
}

/// PEP 503 normalization: lowercase, runs of `-_.` become `-`.
pub fn normalize_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut sep = false;
    for c in name.trim().chars() {
        if matches!(c, '-' | '_' | '.') {
            sep = true;
        } else {
            if sep && !out.is_empty() {
                out.push('-');
            }
            sep = false;
            out.extend(c.to_lowercase());
        }
    }
    out
}

fn read_bounded(path: &Path) -> Result<Option<String>, ProjectError> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(ProjectError::Io {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let mut buf = Vec::new();
    f.take(MAX_FILE + 1)
        .read_to_end(&mut buf)
        .map_err(|source| ProjectError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    if buf.len() as u64 > MAX_FILE {
        return Err(ProjectError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
}

/// RFC 822-style headers up to the first blank line (continuations joined).
pub fn parse_pkg_info(text: &str) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some(last) = headers.last_mut() {
                last.1.push('\n');
                last.1.push_str(line.trim());
            }
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    headers
}

fn string_list(v: &toml::Value, field: &str) -> Result<Vec<String>, ProjectError> {
    let arr = v
        .as_array()
        .ok_or_else(|| ProjectError::Field(format!("`{field}` must be a list of strings")))?;
    arr.iter()
        .map(|x| {
            x.as_str()
                .map(str::to_string)
                .ok_or_else(|| ProjectError::Field(format!("`{field}` must be a list of strings")))
        })
        .collect()
}

fn check_backend_path(entry: &str) -> Result<(), ProjectError> {
    let p = Path::new(entry);
    let mut depth: i32 = 0;
    for c in p.components() {
        match c {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir => depth -= 1,
            Component::RootDir | Component::Prefix(_) => depth = -1,
        }
        if depth < 0 {
            return Err(ProjectError::Field(format!(
                "backend-path entry `{}` leaves the source tree",
                crate::text::one_line(entry, 200)
            )));
        }
    }
    Ok(())
}

/// Read the project's static metadata from an extracted sdist root.
pub fn read_project(root: &Path) -> Result<ProjectMeta, ProjectError> {
    let pkg_info = read_bounded(&root.join("PKG-INFO"))?;
    let headers = pkg_info.as_deref().map(parse_pkg_info).unwrap_or_default();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let mut name = header("Name");
    let mut version = header("Version");
    let pyproject = read_bounded(&root.join("pyproject.toml"))?;
    let mut build_system = BuildSystem {
        requires: vec![LEGACY_REQUIRES.to_string()],
        build_backend: LEGACY_BACKEND.to_string(),
        backend_path: vec![],
        source: BuildSystemSource::LegacyDefault,
    };
    if let Some(text) = &pyproject {
        let doc: toml::Table = toml::from_str(text)
            .map_err(|e| ProjectError::Toml(e.to_string().trim_end().to_string()))?;
        if let Some(bs) = doc.get("build-system") {
            let bs = bs
                .as_table()
                .ok_or_else(|| ProjectError::Field("`build-system` must be a table".into()))?;
            let requires = bs.get("requires").ok_or_else(|| {
                ProjectError::Field(
                    "`[build-system]` has no `requires` (PEP 518 makes it mandatory)".into(),
                )
            })?;
            build_system.requires = string_list(requires, "build-system.requires")?;
            match bs.get("build-backend") {
                Some(b) => {
                    build_system.build_backend = b
                        .as_str()
                        .ok_or_else(|| {
                            ProjectError::Field(
                                "`build-system.build-backend` must be a string".into(),
                            )
                        })?
                        .trim()
                        .to_string();
                    build_system.source = BuildSystemSource::Pyproject;
                }
                None => build_system.source = BuildSystemSource::PyprojectWithoutBackend,
            }
            if let Some(bp) = bs.get("backend-path") {
                let paths = string_list(bp, "build-system.backend-path")?;
                for p in &paths {
                    check_backend_path(p)?;
                }
                build_system.backend_path = paths;
            }
        }
        if let Some(project) = doc.get("project").and_then(|p| p.as_table()) {
            if name.is_none() {
                name = project
                    .get("name")
                    .and_then(|v| v.as_str())
                    .map(str::to_string);
            }
            if version.is_none() {
                version = project
                    .get("version")
                    .and_then(|v| v.as_str())
                    .map(str::to_string);
            }
        }
    }
    Ok(ProjectMeta {
        normalized_name: name.as_deref().map(normalize_name),
        name,
        version,
        metadata_version: header("Metadata-Version"),
        build_system,
        has_pyproject: pyproject.is_some(),
        has_setup_py: root.join("setup.py").is_file(),
        has_pkg_info: pkg_info.is_some(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for (name, text) in files {
            let p = d.path().join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        d
    }

    #[test]
    fn pkg_info_only_gives_the_legacy_default() {
        let d = tree(&[(
            "PKG-INFO",
            "Metadata-Version: 2.1\nName: My_Pkg\nVersion: 1.0\nSummary: a\n  continued\n\nName: body",
        )]);
        let m = read_project(d.path()).unwrap();
        assert_eq!(m.name.as_deref(), Some("My_Pkg"));
        assert_eq!(m.normalized_name.as_deref(), Some("my-pkg"));
        assert_eq!(m.version.as_deref(), Some("1.0"));
        assert_eq!(m.build_system.build_backend, LEGACY_BACKEND);
        assert_eq!(m.build_system.requires, vec![LEGACY_REQUIRES]);
        assert_eq!(m.build_system.source, BuildSystemSource::LegacyDefault);
        let h = parse_pkg_info("Summary: a\n  continued\n");
        assert_eq!(h[0].1, "a\ncontinued");
    }

    #[test]
    fn pyproject_backend_and_backend_path() {
        let d = tree(&[(
            "pyproject.toml",
            "[build-system]\nrequires = [\"flit_core >=3.2\"]\nbuild-backend = \"backend\"\nbackend-path = [\"_build\"]\n[project]\nname = \"x.y\"\nversion = \"2\"\n",
        )]);
        let m = read_project(d.path()).unwrap();
        assert_eq!(m.build_system.requires, vec!["flit_core >=3.2"]);
        assert_eq!(m.build_system.build_backend, "backend");
        assert_eq!(m.build_system.backend_path, vec!["_build"]);
        assert_eq!(m.build_system.source, BuildSystemSource::Pyproject);
        assert_eq!(m.normalized_name.as_deref(), Some("x-y"));
        assert_eq!(m.version.as_deref(), Some("2"));
    }

    #[test]
    fn requires_without_backend_and_no_build_system() {
        let d = tree(&[(
            "pyproject.toml",
            "[build-system]\nrequires = [\"setuptools\", \"wheel\"]\n",
        )]);
        let m = read_project(d.path()).unwrap();
        assert_eq!(
            m.build_system.source,
            BuildSystemSource::PyprojectWithoutBackend
        );
        assert_eq!(m.build_system.build_backend, LEGACY_BACKEND);
        assert_eq!(m.build_system.requires, vec!["setuptools", "wheel"]);
        let d = tree(&[("pyproject.toml", "[tool.black]\nline-length = 1\n")]);
        assert_eq!(
            read_project(d.path()).unwrap().build_system.source,
            BuildSystemSource::LegacyDefault
        );
    }

    #[test]
    fn bad_pyprojects_are_errors_naming_the_field() {
        for (text, needle) in [
            ("[build-system]\nbuild-backend = \"x\"\n", "no `requires`"),
            (
                "[build-system]\nrequires = \"setuptools\"\n",
                "list of strings",
            ),
            ("[build-system]\nrequires = [1]\n", "list of strings"),
            (
                "[build-system]\nrequires = []\nbuild-backend = 3\n",
                "must be a string",
            ),
            (
                "[build-system]\nrequires = []\nbackend-path = [\"../../etc\"]\n",
                "leaves the source tree",
            ),
            (
                "[build-system]\nrequires = []\nbackend-path = [\"/abs\"]\n",
                "leaves the source tree",
            ),
            ("[build-system\n", "line 1"),
        ] {
            let d = tree(&[("pyproject.toml", text)]);
            let e = read_project(d.path()).unwrap_err().to_string();
            assert!(e.contains(needle), "{text:?}: {e}");
        }
    }

    #[test]
    fn normalizes_names() {
        assert_eq!(normalize_name("Foo.Bar__baz"), "foo-bar-baz");
        assert_eq!(normalize_name("a-_-b"), "a-b");
    }
}
