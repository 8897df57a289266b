//! Profiles: named, versioned TOML files saying what a build may do.
//!
//! Unknown fields are errors (with the file, line and field, from the TOML
//! parser), so a typo never silently widens or narrows a sandbox. Values are
//! validated while they are parsed (absolute paths without `~` or `..`,
//! `host:port` entries, sizes), so those errors carry the line too.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer};

use crate::sandbox::Layer;
pub use crate::sandbox::plan::NetworkMode;

/// The profiles shipped with sdist-box, by name.
pub const BUILTIN: &[(&str, &str)] = &[
    ("default", include_str!("../../profiles/default.toml")),
    ("observe", include_str!("../../profiles/observe.toml")),
    ("strict", include_str!("../../profiles/strict.toml")),
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
    #[error("cannot resolve the network allowlist entry `{entry}`: {error}")]
    Resolve { entry: String, error: String },
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
    #[serde(default)]
    pub filesystem: FilesystemPolicy,
    #[serde(default)]
    pub network: NetworkPolicy,
    #[serde(default)]
    pub python: PythonPolicy,
    /// Which findings fail `build` (exit code 1) unless `--fail-on` says
    /// otherwise: `blocked` (the default), `evasion`, `any`, `never`.
    #[serde(default, rename = "fail-on")]
    pub fail_on: Option<FailOnPolicy>,
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
    /// Directories put on the build's PATH after the build environment's
    /// `bin` and before the system's (`/usr/local/bin:/usr/bin:/bin`), in
    /// this order. Each must be executable in the sandbox: beneath a
    /// `[filesystem] exec` entry or a system directory (checked by
    /// [`Profile::parse`]).
    #[serde(default, deserialize_with = "path_dirs")]
    pub path: Vec<PathBuf>,
}

/// Extra paths of the host, beyond the system directories, the interpreter
/// and the build environment that every build sees.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FilesystemPolicy {
    /// Bound read-only at the same path (read and list).
    #[serde(default, deserialize_with = "abs_paths")]
    pub read: Vec<PathBuf>,
    /// Bound read-write at the same path.
    #[serde(default, deserialize_with = "abs_paths")]
    pub write: Vec<PathBuf>,
    /// Bound read-only at the same path, with the right to execute.
    #[serde(default, deserialize_with = "abs_paths")]
    pub exec: Vec<PathBuf>,
    /// Execute only the interpreter, the build environment, the C/C++
    /// toolchain and `exec`; everything else (`/bin/sh`, `curl`, a script
    /// the build wrote) is refused by Landlock.
    #[serde(default)]
    pub restrict_exec: bool,
    /// Also record every file the build opens (the open family through the
    /// supervisor; like `--trace-files`).
    #[serde(default)]
    pub record_opens: bool,
}

/// The host's system directories, read-only (and executable) in every sandbox.
pub(super) const SYSTEM_DIRS: &[&str] = &[
    "/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
];

/// One `host:port` of an allowlist, as written (resolved at run time, by
/// sdist-box itself, outside the sandbox).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AllowEntry {
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for AllowEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl AllowEntry {
    /// `host:port`, `1.2.3.4:443`, `[::1]:8080`.
    pub fn parse(text: &str) -> Result<AllowEntry, String> {
        let bad =
            || format!("`{text}` is not `host:port` (like \"127.0.0.1:8080\" or \"[::1]:5432\")");
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let (h, p) = rest.split_once("]:").ok_or_else(bad)?;
            h.parse::<std::net::Ipv6Addr>().map_err(|_| bad())?;
            (h, p)
        } else {
            text.rsplit_once(':').ok_or_else(bad)?
        };
        let port: u16 = port.parse().map_err(|_| bad())?;
        let host_ok = !host.is_empty()
            && host.len() <= 253
            && (host.contains(':')
                || host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-'));
        if !host_ok || port == 0 {
            return Err(bad());
        }
        Ok(AllowEntry {
            host: host.to_string(),
            port,
        })
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct NetworkPolicy {
    #[serde(default)]
    pub mode: NetworkMode,
    /// `host:port` pairs `connect` (and `sendto`) may reach; names are
    /// resolved by sdist-box when the build starts. Only with `mode =
    /// "allowlist"`.
    #[serde(default, deserialize_with = "allow_entries")]
    pub allow: Vec<AllowEntry>,
    /// TCP ports the build may `bind` on a loopback address (servers a
    /// build starts for its own tests). Port 0 means "any free port".
    #[serde(default)]
    pub bind: Vec<u16>,
}

/// What the audit hook refuses in Python.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CtypesPolicy {
    /// `ctypes` may load any library the sandbox can read.
    #[default]
    Any,
    /// Only libraries in the build environment, the interpreter's
    /// directories and the system library directories (or found by the
    /// loader's own search, a bare name like `libc.so.6`).
    System,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PythonPolicy {
    #[serde(default)]
    pub ctypes: CtypesPolicy,
}

/// `fail-on` in a profile (the same words as `--fail-on`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailOnPolicy {
    Blocked,
    Evasion,
    Any,
    Never,
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
    /// Largest wheel copied out; the build log keeps at most this much too
    /// (and never more than 64 MiB).
    #[serde(default, deserialize_with = "size")]
    pub output_size: Option<u64>,
    /// Memory of the whole sandbox (heap, page cache, tmpfs, memfd), no swap.
    #[serde(default, deserialize_with = "size")]
    pub sandbox_memory: Option<u64>,
    /// CPU of the whole sandbox, in cores (`1.5`).
    pub cpus: Option<f64>,
    /// The build tree's own size-limited file system (memory-backed).
    #[serde(default, deserialize_with = "size")]
    pub build_size: Option<u64>,
}

/// Paths in a profile: absolute, no `~`, no `.`/`..`, no NUL, and not `/`
/// itself (that would hand the build the whole host).
pub fn check_profile_path(text: &str) -> Result<PathBuf, String> {
    if text.starts_with('~') {
        return Err(format!(
            "`{text}`: `~` is not expanded in profiles (the sandbox has its own empty HOME); write the absolute path"
        ));
    }
    if !text.starts_with('/') {
        return Err(format!("`{text}` is not an absolute path"));
    }
    let p = Path::new(text);
    if p.components().any(|c| {
        matches!(
            c,
            std::path::Component::ParentDir | std::path::Component::CurDir
        )
    }) || text.contains('\0')
    {
        return Err(format!("`{text}` must not contain `.` or `..` components"));
    }
    if p.parent().is_none() {
        return Err("`/` would give the build the whole host; name the directories".to_string());
    }
    // The sandbox's own places: the host's cannot be put over or under them.
    const RESERVED: &[&str] = &["/proc", "/dev", "/build", "/sdist-box", "/home/build"];
    const RESERVED_EXACT: &[&str] = &["/tmp", "/home"];
    if RESERVED.iter().any(|r| p.starts_with(r)) || RESERVED_EXACT.iter().any(|r| p == Path::new(r))
    {
        return Err(format!(
            "`{text}` is one of the sandbox's own places ({} and {}); name a directory elsewhere",
            RESERVED.join(", "),
            RESERVED_EXACT.join(", ")
        ));
    }
    Ok(p.to_path_buf())
}

/// One path, validated as it is parsed (so the error has its own line).
struct ProfilePath(PathBuf);

impl<'de> Deserialize<'de> for ProfilePath {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        check_profile_path(&text)
            .map(ProfilePath)
            .map_err(serde::de::Error::custom)
    }
}

impl<'de> Deserialize<'de> for AllowEntry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        AllowEntry::parse(&text).map_err(serde::de::Error::custom)
    }
}

fn abs_paths<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<PathBuf>, D::Error> {
    Ok(Vec::<ProfilePath>::deserialize(d)?
        .into_iter()
        .map(|p| p.0)
        .collect())
}

/// `[environment] path` entries: profile paths that can also be joined
/// into PATH (no `:`, which would split one entry into two).
fn path_dirs<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<PathBuf>, D::Error> {
    let entries = Vec::<String>::deserialize(d)?;
    entries
        .iter()
        .map(|text| {
            if text.contains(':') {
                return Err(format!(
                    "`{text}` contains `:`, which separates PATH entries; name one directory per entry"
                ));
            }
            check_profile_path(text)
        })
        .collect::<Result<_, _>>()
        .map_err(serde::de::Error::custom)
}

/// The 1-based line of the first `"value"` at or after the line of
/// `[section]` (0 when not found): for errors found after parsing.
fn line_of_value(text: &str, section: &str, value: &str) -> usize {
    let quoted = format!("\"{value}\"");
    let header = format!("[{section}]");
    let start = text.lines().position(|l| l.trim() == header).unwrap_or(0);
    text.lines()
        .enumerate()
        .skip(start)
        .find(|(_, l)| l.contains(&quoted))
        .map(|(i, _)| i + 1)
        .unwrap_or(0)
}

fn allow_entries<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<AllowEntry>, D::Error> {
    Vec::<AllowEntry>::deserialize(d)
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

/// `line 3, field `network_mode`: unknown field …` from a TOML error: the
/// line of its span, and the key written on that line (or the nearest one
/// above, for a value inside a multi-line array).
fn describe_toml_error(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim_end().to_string();
    let Some(span) = e.span() else {
        return message;
    };
    let start = span.start.min(text.len());
    let line_no = text[..start].matches('\n').count() + 1;
    let lines: Vec<&str> = text.lines().collect();
    let key = lines
        .iter()
        .take(line_no.min(lines.len()))
        .rev()
        .find_map(|l| {
            let l = l.trim();
            if l.starts_with('#') {
                return None;
            }
            if l.starts_with('[') && !l.contains('=') {
                return Some(l.to_string());
            }
            let (k, _) = l.split_once('=')?;
            Some(k.trim().trim_matches('"').to_string())
        });
    match key {
        Some(k) if !k.is_empty() => format!("line {line_no}, field `{k}`: {message}"),
        _ => format!("line {line_no}: {message}"),
    }
}

impl Profile {
    /// Parse profile text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Profile, ProfileError> {
        let mut profile: Profile = toml::from_str(text).map_err(|e| ProfileError::Invalid {
            origin: origin.to_string(),
            message: describe_toml_error(text, &e),
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
        let invalid = |message: String| ProfileError::Invalid {
            origin: origin.to_string(),
            message,
        };
        let net = &profile.network;
        if net.mode == NetworkMode::Allowlist && net.allow.is_empty() {
            return Err(invalid(
                "[network] mode = \"allowlist\" needs `allow = [\"host:port\", …]`".into(),
            ));
        }
        if net.mode != NetworkMode::Allowlist && !net.allow.is_empty() {
            return Err(invalid(format!(
                "[network] allow is only used with mode = \"allowlist\" (the mode is \"{}\")",
                net.mode.name()
            )));
        }
        // A PATH entry the build cannot execute from would only make a
        // missing tool look like a present one; and it is never granted
        // implicitly: the toolchain usually needs its whole directory (its
        // `lib/` as well as `bin/`), which only the profile's author knows.
        let fs = &profile.filesystem;
        for dir in &profile.environment.path {
            let executable = fs.exec.iter().any(|e| dir.starts_with(e))
                || SYSTEM_DIRS
                    .iter()
                    .any(|s| *s != "/etc" && dir.starts_with(s));
            if executable {
                continue;
            }
            let shown = dir.display().to_string();
            let grant = match dir.file_name() {
                Some(name) if name == "bin" => dir.parent().unwrap_or(dir),
                _ => dir.as_path(),
            };
            let line = line_of_value(text, "environment", &shown);
            let at = if line > 0 {
                format!("line {line}, field `path`")
            } else {
                "[environment] path".to_string()
            };
            return Err(invalid(format!(
                "{at}: `{shown}` is on PATH but the build cannot execute anything there; add it, or the directory it belongs to, under [filesystem] exec (e.g. exec = [\"{}\"])",
                grant.display()
            )));
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

    fn err(text: &str) -> String {
        Profile::parse(text, "/etc/sdist-box/site.toml")
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn malformed_values_name_file_line_and_field() {
        let e = err("version = 1\ndescription = \"x\"\n[filesystem]\nread = [\"~/.ssh\"]\n");
        assert!(e.contains("/etc/sdist-box/site.toml"), "{e}");
        assert!(e.contains("line 4, field `read`"), "{e}");
        assert!(e.contains("`~` is not expanded"), "{e}");
        let e = err(
            "version = 1\ndescription = \"x\"\n[filesystem]\nwrite = [\n  \"/srv/ok\",\n  \"relative/dir\",\n]\n",
        );
        // The line of the field (the entry itself is quoted).
        assert!(e.contains("line 4, field `write`"), "{e}");
        assert!(e.contains("`relative/dir`"), "{e}");
        assert!(e.contains("not an absolute path"), "{e}");
        let e = err("version = 1\ndescription = \"x\"\n[filesystem]\nexec = [\"/usr/../root\"]\n");
        assert!(e.contains("`..`"), "{e}");
        let e = err("version = 1\ndescription = \"x\"\n[filesystem]\nread = [\"/\"]\n");
        assert!(e.contains("whole host"), "{e}");
        for reserved in [
            "/proc/1",
            "/home",
            "/home/build/x",
            "/build/src",
            "/tmp",
            "/dev",
        ] {
            let e = err(&format!(
                "version = 1\ndescription = \"x\"\n[filesystem]\nwrite = [\"{reserved}\"]\n"
            ));
            assert!(e.contains("the sandbox's own places"), "{reserved}: {e}");
        }
        assert!(check_profile_path("/tmp/shared").is_ok());
        assert!(check_profile_path("/home/alice/data").is_ok());
        let e = err(
            "version = 1\ndescription = \"x\"\n[network]\nmode = \"allowlist\"\nallow = [\"example.org\"]\n",
        );
        assert!(e.contains("line 5, field `allow`"), "{e}");
        assert!(e.contains("not `host:port`"), "{e}");
        let e = err("version = 1\ndescription = \"x\"\n[network]\nmode = \"open\"\n");
        assert!(e.contains("line 4, field `mode`"), "{e}");
        let e = err("version = 1\ndescription = \"x\"\n[netwrk]\nmode = \"none\"\n");
        assert!(e.contains("line 3"), "{e}");
        assert!(e.contains("netwrk"), "{e}");
        let e = err("version = 1\ndescription = \"x\"\nfail-on = \"sometimes\"\n");
        assert!(e.contains("line 3, field `fail-on`"), "{e}");
        let e = err("version = 1\ndescription = \"x\"\n[limits]\noutput-size = \"huge\"\n");
        assert!(e.contains("line 4, field `output-size`"), "{e}");
    }

    #[test]
    fn path_entries_are_checked_like_paths_and_must_be_executable() {
        let ok = Profile::parse(
            "version = 1\ndescription = \"x\"\n[filesystem]\nexec = [\"/opt/rust\"]\n[environment]\npath = [\"/opt/rust/bin\", \"/usr/lib/ccache\"]\n",
            "p",
        )
        .unwrap();
        assert_eq!(
            ok.environment.path,
            [
                PathBuf::from("/opt/rust/bin"),
                PathBuf::from("/usr/lib/ccache")
            ]
        );
        for (entry, says) in [
            ("opt/rust/bin", "not an absolute path"),
            ("~/.cargo/bin", "`~` is not expanded"),
            ("/opt/rust/../bin", "`..`"),
            ("/opt/a:/opt/b", "contains `:`"),
            ("/build/src/bin", "the sandbox's own places"),
        ] {
            let e = err(&format!(
                "version = 1\ndescription = \"x\"\n[environment]\npass = []\npath = [\n  \"{entry}\",\n]\n"
            ));
            assert!(e.contains("/etc/sdist-box/site.toml"), "{entry}: {e}");
            assert!(e.contains("line 5, field `path`"), "{entry}: {e}");
            assert!(e.contains(says), "{entry}: {e}");
        }
        // On PATH but not executable: read-only, writable, or not bound at
        // all. The error names the line and the exec entry that would do.
        for fs in [
            "",
            "[filesystem]\nread = [\"/opt/rust\"]\n",
            "[filesystem]\nwrite = [\"/opt/rust\"]\n",
            "[filesystem]\nexec = [\"/opt/rus\"]\n",
        ] {
            let e = err(&format!(
                "version = 1\ndescription = \"x\"\n{fs}[environment]\npass = [\"LANG\"]\npath = [\"/opt/rust/bin\"]\n"
            ));
            let line = 5 + fs.matches('\n').count();
            assert!(
                e.contains(&format!("line {line}, field `path`")),
                "{fs}: {e}"
            );
            assert!(e.contains("cannot execute"), "{fs}: {e}");
            assert!(e.contains("exec = [\"/opt/rust\"]"), "{fs}: {e}");
        }
        // /etc is a system directory, but never an executable one.
        let e = err("version = 1\ndescription = \"x\"\n[environment]\npath = [\"/etc/tools\"]\n");
        assert!(e.contains("cannot execute"), "{e}");
    }

    #[test]
    fn rust_example_profile_puts_its_toolchain_on_path_offline() {
        let text = include_str!("../../profiles/rust-example.toml");
        let p = Profile::parse(text, "rust-example.toml").unwrap();
        let toolchain = PathBuf::from("/root/.rustup/toolchains/1.95.0-x86_64-unknown-linux-gnu");
        assert_eq!(p.filesystem.exec, std::slice::from_ref(&toolchain));
        assert_eq!(p.environment.path, [toolchain.join("bin")]);
        assert_eq!(p.network.mode, NetworkMode::None);
        let set = &p.environment.set;
        assert_eq!(set["CARGO_NET_OFFLINE"], "true");
        assert!(set["CARGO_HOME"].starts_with("/home/build/"));
        // default's walls, unchanged.
        let d = Profile::load("default").unwrap();
        assert_eq!(p.require, d.require);
        assert_eq!(p.environment.pass, d.environment.pass);
        assert!(!p.passes_env("CARGO_REGISTRY_TOKEN"));
        assert_eq!(p.limits.memory, d.limits.memory);
    }

    #[test]
    fn network_modes_and_allowlist_entries() {
        let p = Profile::parse(
            "version = 1\ndescription = \"x\"\n[network]\nmode = \"allowlist\"\nallow = [\"127.0.0.1:8080\", \"[::1]:9\", \"pypi.internal:443\"]\nbind = [0]\n",
            "p",
        )
        .unwrap();
        assert_eq!(p.network.mode, NetworkMode::Allowlist);
        let shown: Vec<String> = p.network.allow.iter().map(|a| a.to_string()).collect();
        assert_eq!(shown, ["127.0.0.1:8080", "[::1]:9", "pypi.internal:443"]);
        assert_eq!(p.network.bind, vec![0]);
        // An allowlist needs entries; entries need the allowlist mode.
        let e = err("version = 1\ndescription = \"x\"\n[network]\nmode = \"allowlist\"\n");
        assert!(e.contains("needs `allow"), "{e}");
        let e = err("version = 1\ndescription = \"x\"\n[network]\nallow = [\"a:1\"]\n");
        assert!(e.contains("only used with mode = \"allowlist\""), "{e}");
        assert!(AllowEntry::parse("host:0").is_err());
        assert!(AllowEntry::parse("bad host:80").is_err());
        assert!(AllowEntry::parse("[not-v6]:80").is_err());
    }

    #[test]
    fn shipped_profiles_say_what_the_issue_asks() {
        let d = Profile::load("default").unwrap();
        assert_eq!(d.network.mode, NetworkMode::None);
        assert!(!d.filesystem.restrict_exec);
        let s = Profile::load("strict").unwrap();
        assert!(s.filesystem.restrict_exec);
        assert_eq!(s.python.ctypes, CtypesPolicy::System);
        assert_eq!(s.network.mode, NetworkMode::None);
        let o = Profile::load("observe").unwrap();
        assert_eq!(o.network.mode, NetworkMode::None);
        assert!(o.filesystem.record_opens);
        assert!(!o.filesystem.read.is_empty());
        assert_eq!(o.fail_on, Some(FailOnPolicy::Never));
        // The site example parses and uses every section.
        let text = include_str!("../../profiles/site-example.toml");
        let site = Profile::parse(text, "site-example.toml").unwrap();
        assert_eq!(site.network.mode, NetworkMode::Allowlist);
        assert!(!site.filesystem.read.is_empty());
        assert!(site.limits.output_size.is_some());
        assert!(site.fail_on.is_some());
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
