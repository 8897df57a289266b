//! Profiles: named, versioned TOML files saying what a build may do.
//!
//! Unknown fields are errors (with the line, from the TOML parser), so a typo
//! never silently widens or narrows a sandbox.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer};

use crate::sandbox::Layer;

/// The profiles shipped with sdist-box, by name.
pub const BUILTIN: &[(&str, &str)] = &[
    ("default", include_str!("../../profiles/default.toml")),
    ("observe", include_str!("../../profiles/observe.toml")),
];

#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("no profile named `{name}` (built-in: {builtin}); pass a file path to use your own")]
    Unknown { name: String, builtin: String },
    #[error("failed to read the profile `{path}`: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid profile `{origin}`: {message}")]
    Invalid { origin: String, message: String },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub version: u32,
    pub description: String,
    #[serde(default, deserialize_with = "layers")]
    pub require: Vec<Layer>,
    #[serde(default)]
    pub environment: EnvironmentPolicy,
    #[serde(default)]
    pub limits: LimitsPolicy,
    /// Where user namespaces are unavailable, run in the degraded mode
    /// (Landlock + seccomp, no namespaces) instead of refusing. What that
    /// mode cannot enforce is said on the terminal and in the report.
    #[serde(default, rename = "allow-degraded")]
    pub allow_degraded: bool,
    /// Set by the loader: the built-in name or the file path.
    #[serde(skip)]
    pub origin: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentPolicy {
    #[serde(default)]
    pub pass: Vec<String>,
    #[serde(default)]
    pub set: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LimitsPolicy {
    pub processes: Option<u64>,
    #[serde(default, deserialize_with = "size")]
    pub memory: Option<u64>,
    #[serde(default, deserialize_with = "size")]
    pub file_size: Option<u64>,
    pub cpu_seconds: Option<u64>,
    pub open_files: Option<u64>,
    pub wall_seconds: Option<u64>,
    #[serde(default, deserialize_with = "size")]
    pub tmp_size: Option<u64>,
}

fn layers<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Layer>, D::Error> {
    let names = Vec::<String>::deserialize(d)?;
    names
        .iter()
        .map(|n| {
            Layer::from_name(n).ok_or_else(|| {
                let known: Vec<&str> = Layer::ALL.iter().map(|l| l.name()).collect();
                serde::de::Error::custom(format!(
                    "unknown layer `{n}` (known: {})",
                    known.join(", ")
                ))
            })
        })
        .collect()
}

#[derive(Deserialize)]
#[serde(untagged)]
enum SizeValue {
    Int(u64),
    Text(String),
}

/// Parse `4096`, `"64K"`, `"8G"`, `"1.5G"` into bytes.
pub fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let (num, mult) = match t.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => {
            let mult: u64 = match t[i..].to_ascii_uppercase().trim_end_matches(['B', 'I']) {
                "K" => 1 << 10,
                "M" => 1 << 20,
                "G" => 1 << 30,
                "T" => 1 << 40,
                "" => 1,
                _ => return None,
            };
            (&t[..i], mult)
        }
        None => (t, 1),
    };
    let value: f64 = num.trim().parse().ok()?;
    if !(value.is_finite() && value >= 0.0) {
        return None;
    }
    Some((value * mult as f64) as u64)
}

fn size<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    match Option::<SizeValue>::deserialize(d)? {
        None => Ok(None),
        Some(SizeValue::Int(n)) => Ok(Some(n)),
        Some(SizeValue::Text(t)) => parse_size(&t).map(Some).ok_or_else(|| {
            serde::de::Error::custom(format!("`{t}` is not a size (like 512M or 8G)"))
        }),
    }
}

impl Profile {
    /// Parse profile text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Profile, ProfileError> {
        let mut profile: Profile = toml::from_str(text).map_err(|e| ProfileError::Invalid {
            origin: origin.to_string(),
            message: e.to_string().trim_end().to_string(),
        })?;
        if profile.version != 1 {
            return Err(ProfileError::Invalid {
                origin: origin.to_string(),
                message: format!(
                    "version {} is not supported by this sdist-box (it reads version 1)",
                    profile.version
                ),
            });
        }
        profile.origin = origin.to_string();
        Ok(profile)
    }

    /// A built-in name, or a path to a TOML file.
    pub fn load(name_or_path: &str) -> Result<Profile, ProfileError> {
        if let Some((name, text)) = BUILTIN.iter().find(|(n, _)| *n == name_or_path) {
            return Profile::parse(text, name);
        }
        let looks_like_path = name_or_path.contains('/') || name_or_path.ends_with(".toml");
        if !looks_like_path {
            return Err(ProfileError::Unknown {
                name: name_or_path.to_string(),
                builtin: BUILTIN
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        let path = Path::new(name_or_path);
        let text = std::fs::read_to_string(path).map_err(|source| ProfileError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Profile::parse(&text, &path.display().to_string())
    }

    /// Does the environment policy let the host variable `name` through?
    pub fn passes_env(&self, name: &str) -> bool {
        self.environment
            .pass
            .iter()
            .any(|p| match p.strip_suffix('*') {
                Some(prefix) => name.starts_with(prefix),
                None => p == name,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_profiles_parse() {
        for (name, _) in BUILTIN {
            let p = Profile::load(name).unwrap();
            assert!(!p.description.is_empty());
        }
        let d = Profile::load("default").unwrap();
        assert!(d.require.contains(&Layer::LandlockFs));
        assert_eq!(d.limits.memory, Some(8 << 30));
    }

    #[test]
    fn unknown_field_names_line_and_field() {
        let err = Profile::parse(
            "version = 1\ndescription = \"x\"\nnetwork_mode = \"open\"\n",
            "site.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("site.toml"), "{err}");
        assert!(err.contains("line 3"), "{err}");
        assert!(err.contains("network_mode"), "{err}");
    }

    #[test]
    fn unknown_layer_and_bad_size_rejected() {
        let e = Profile::parse(
            "version = 1\ndescription = \"x\"\nrequire = [\"magic\"]\n",
            "p",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("unknown layer `magic`"), "{e}");
        let e = Profile::parse(
            "version = 1\ndescription = \"x\"\n[limits]\nmemory = \"lots\"\n",
            "p",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("not a size"), "{e}");
        let e = Profile::parse("version = 2\ndescription = \"x\"\n", "p")
            .unwrap_err()
            .to_string();
        assert!(e.contains("version 2"), "{e}");
    }

    #[test]
    fn sizes_and_env_patterns() {
        assert_eq!(parse_size("8G"), Some(8 << 30));
        assert_eq!(parse_size("512M"), Some(512 << 20));
        assert_eq!(parse_size("1.5K"), Some(1536));
        assert_eq!(parse_size("64KiB"), Some(64 << 10));
        assert_eq!(parse_size("12"), Some(12));
        assert_eq!(parse_size("x"), None);
        let p = Profile::load("default").unwrap();
        assert!(p.passes_env("LC_ALL"));
        assert!(p.passes_env("LANG"));
        assert!(!p.passes_env("AWS_SECRET_ACCESS_KEY"));
        assert!(!p.passes_env("LCX"));
    }
}
