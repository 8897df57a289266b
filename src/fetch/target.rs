//! The interpreter the wheels are built for, as PEP 508 environment markers
//! and `Requires-Python` see it.
//!
//! Markers are evaluated for the *target* interpreter (the one given to
//! `--python`), never for whatever runs sdist-box. Learning its values
//! runs that interpreter once with a fixed, stdlib-only script in isolated
//! mode (`-I`: no user site, no `PYTHON*` variables, no current directory
//! on the path); nothing fetched is on its path, so no package code runs.
//! Marker and specifier grammar is `pep508_rs`'s (see the commit that added
//! it for why a crate and not our own parser).

use std::path::Path;
use std::process::{Command, Stdio};
use std::str::FromStr;

use pep508_rs::pep440_rs::VersionSpecifiers;
use pep508_rs::{ExtraName, MarkerEnvironment, MarkerTree};

/// The values PEP 508 markers compare against, for one interpreter.
#[derive(Debug, Clone)]
pub struct Target {
    env: MarkerEnvironment,
}

#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("cannot run `{python}` to learn its marker values: {source}")]
    Spawn {
        python: String,
        source: std::io::Error,
    },
    #[error("`{python}` failed to report its marker values (exit {status}): {stderr}")]
    Failed {
        python: String,
        status: String,
        stderr: String,
    },
    #[error("`{python}` reported marker values that are not valid: {problem}")]
    Invalid { python: String, problem: String },
}

/// A marker or specifier that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not a valid {what}: {problem}")]
pub struct GrammarError {
    pub text: String,
    pub what: &'static str,
    pub problem: String,
}

/// The probe: the marker variables of PEP 508, computed as `packaging`
/// computes them (the `implementation_version` formatting included).
const PROBE: &str = r#"
import json, os, platform, sys
def fmt(info):
    v = "%d.%d.%d" % (info.major, info.minor, info.micro)
    if info.releaselevel != "final":
        v += info.releaselevel[0] + str(info.serial)
    return v
print(json.dumps({
    "implementation_name": sys.implementation.name,
    "implementation_version": fmt(sys.implementation.version),
    "os_name": os.name,
    "platform_machine": platform.machine(),
    "platform_python_implementation": platform.python_implementation(),
    "platform_release": platform.release(),
    "platform_system": platform.system(),
    "platform_version": platform.version(),
    "python_full_version": platform.python_version(),
    "python_version": ".".join(platform.python_version_tuple()[:2]),
    "sys_platform": sys.platform,
}))
"#;

impl Target {
    pub fn new(env: MarkerEnvironment) -> Target {
        Target { env }
    }

    /// Ask `python` for its marker values (see the module documentation).
    pub fn probe(python: &Path) -> Result<Target, TargetError> {
        let shown = python.display().to_string();
        let out = Command::new(python)
            .args(["-I", "-c", PROBE])
            .current_dir("/")
            .stdin(Stdio::null())
            .output()
            .map_err(|source| TargetError::Spawn {
                python: shown.clone(),
                source,
            })?;
        if !out.status.success() {
            return Err(TargetError::Failed {
                python: shown,
                status: out.status.to_string(),
                stderr: crate::text::one_line(&String::from_utf8_lossy(&out.stderr), 400),
            });
        }
        Target::from_json(&String::from_utf8_lossy(&out.stdout)).map_err(|problem| {
            TargetError::Invalid {
                python: shown,
                problem,
            }
        })
    }

    /// The probe's JSON answer (the field names of PEP 508).
    pub fn from_json(json: &str) -> Result<Target, String> {
        serde_json::from_str(json)
            .map(Target::new)
            .map_err(|e| e.to_string())
    }

    pub fn environment(&self) -> &MarkerEnvironment {
        &self.env
    }

    /// `3.11.7`: for messages.
    pub fn python_full_version(&self) -> String {
        self.env.python_full_version().to_string()
    }

    /// Whether `marker` holds for this interpreter with `extras` requested.
    pub fn marker_holds(&self, marker: &str, extras: &[ExtraName]) -> Result<bool, GrammarError> {
        Ok(parse_marker(marker)?.evaluate(&self.env, extras))
    }

    /// Whether this interpreter satisfies a `Requires-Python` specifier set.
    pub fn python_satisfies(&self, requires_python: &str) -> Result<bool, GrammarError> {
        let specifiers = parse_specifiers(requires_python, "Requires-Python")?;
        Ok(specifiers.contains(&self.env.python_full_version().version))
    }
}

pub fn parse_marker(text: &str) -> Result<MarkerTree, GrammarError> {
    MarkerTree::from_str(text).map_err(|e| {
        let mut problem = e.message.to_string();
        // PEP 751 added set-valued variables that PEP 508 parsers predating
        // it (pep508_rs 0.9 among them) do not know.
        if text.contains("dependency_groups") || text.contains("extras") {
            problem.push_str(
                "; the pylock `extras`/`dependency_groups` marker variables are not evaluated by sdist-box yet (lock for one set of extras and groups, e.g. `uv export --format pylock.toml --all-extras`)",
            );
        }
        GrammarError {
            text: crate::text::one_line(text, 200),
            what: "environment marker",
            problem,
        }
    })
}

pub fn parse_specifiers(text: &str, what: &'static str) -> Result<VersionSpecifiers, GrammarError> {
    VersionSpecifiers::from_str(text).map_err(|e| GrammarError {
        text: crate::text::one_line(text, 200),
        what,
        problem: e.to_string(),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// CPython 3.11.7 on x86_64 Linux.
    pub(crate) fn linux_311() -> Target {
        Target::from_json(
            r##"{"implementation_name": "cpython", "implementation_version": "3.11.7",
                "os_name": "posix", "platform_machine": "x86_64",
                "platform_python_implementation": "CPython", "platform_release": "6.18.0",
                "platform_system": "Linux", "platform_version": "#1 SMP",
                "python_full_version": "3.11.7", "python_version": "3.11",
                "sys_platform": "linux"}"##,
        )
        .unwrap()
    }

    #[test]
    fn markers_are_evaluated_for_the_target() {
        let t = linux_311();
        let holds = |m: &str| t.marker_holds(m, &[]).unwrap();
        assert!(holds(r#"python_version < "3.12""#));
        assert!(!holds(r#"python_version < "3.11""#));
        assert!(holds(
            "python_full_version >= '3.11.7' and sys_platform == 'linux'"
        ));
        assert!(!holds("platform_system == 'Windows'"));
        assert!(holds("implementation_name == 'cpython' or os_name == 'nt'"));
        assert!(!holds("extra == 'test'"));
        let test = ExtraName::from_str("test").unwrap();
        assert!(t.marker_holds("extra == 'test'", &[test]).unwrap());
        let err = t.marker_holds("python_version <<< '3'", &[]).unwrap_err();
        assert!(err.to_string().contains("environment marker"), "{err}");
        let err = t
            .marker_holds("'dev' in dependency_groups", &[])
            .unwrap_err();
        assert!(
            err.to_string().contains("not evaluated by sdist-box yet"),
            "{err}"
        );
    }

    #[test]
    fn requires_python_is_checked_against_the_full_version() {
        let t = linux_311();
        assert!(t.python_satisfies(">=3.8").unwrap());
        assert!(t.python_satisfies(">=3.11.7,<4").unwrap());
        assert!(!t.python_satisfies(">=3.12").unwrap());
        assert!(!t.python_satisfies("==3.11.6").unwrap());
        assert!(t.python_satisfies("~=3.11").unwrap());
        assert!(t.python_satisfies("=bad").is_err());
    }

    #[test]
    fn the_probe_reports_a_real_interpreter() {
        let python = std::env::var("SDIST_BOX_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
        let t = Target::probe(Path::new(&python)).expect("python3 answers the probe");
        assert!(t.marker_holds("python_version >= '3'", &[]).unwrap());
        assert!(t.marker_holds("sys_platform == 'linux'", &[]).unwrap());
        let missing = Target::probe(Path::new("/nonexistent/python3")).unwrap_err();
        assert!(
            missing.to_string().contains("/nonexistent/python3"),
            "{missing}"
        );
    }
}
