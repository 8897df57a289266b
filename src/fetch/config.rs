//! Which indexes to ask, found the way pip finds them, so sdist-box fetches
//! from the index the user already configured.
//!
//! pip's configuration (pip 23–26, `configuration.py` and `cli/parser.py`,
//! read to learn):
//! - files, later ones winning: the global ones (`$XDG_CONFIG_DIRS`, default
//!   `/etc/xdg`, each `pip/pip.conf`; then `/etc/pip.conf`), the user's
//!   (`~/.pip/pip.conf`, then `$XDG_CONFIG_HOME/pip/pip.conf`, default
//!   `~/.config/pip/pip.conf`; skipped when `PIP_CONFIG_FILE` names a file
//!   that exists), the virtual environment's (`sys.prefix/pip.conf`, when
//!   the caller knows the prefix), and last `$PIP_CONFIG_FILE`;
//!   `PIP_CONFIG_FILE=/dev/null` loads no file at all;
//! - sections: `[global]`, then the command's section, then the `PIP_*`
//!   environment variables over both. Fetching an sdist is what
//!   `pip download` does, and most users configure `pip install`, so both
//!   command sections are read: `[global]` < `[install]` < `[download]`
//!   < environment;
//! - keys are lower-cased with `_` as `-`; list options (`extra-index-url`,
//!   `find-links`, `trusted-host`) are split on whitespace.
//!
//! Over pip's configuration, for the index: `--index-url` given by the
//! caller, then the lock file's own option lines, then pip's
//! configuration, then pip's built-in default, which is asked of pip itself
//! ([`pip_default_index`]): no index address is written in sdist-box.
//! Extra indexes, find-links and trusted hosts are the union of all.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::location::{Location, LocationError, redact};
use super::lock::IndexOptions;
use super::netrc::Netrc;

/// pip's default socket timeout and retry count.
const PIP_TIMEOUT: Duration = Duration::from_secs(15);
const PIP_RETRIES: u32 = 5;

#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read pip's configuration file `{path}`: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {problem}")]
    Syntax {
        path: PathBuf,
        line: usize,
        problem: String,
    },
    #[error("{setting} (from {source_name}): {error}")]
    Location {
        setting: &'static str,
        source_name: String,
        error: LocationError,
    },
    #[error("{setting} (from {source_name}): `{value}` is not {expected}")]
    Value {
        setting: &'static str,
        source_name: String,
        value: String,
        expected: &'static str,
    },
    #[error(
        "no package index is configured and pip's default could not be learnt from `{python}`: {problem}; give --index-url or set PIP_INDEX_URL"
    )]
    NoDefaultIndex { python: String, problem: String },
}

/// One value of pip's configuration and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub value: String,
    /// `PIP_INDEX_URL`, or `/etc/pip.conf [global]`.
    pub source: String,
}

/// pip's configuration, merged.
#[derive(Debug, Clone, Default)]
pub struct PipConfig {
    /// `section.key` → value, later files having replaced earlier ones.
    files: BTreeMap<String, Setting>,
    /// `key` → value from `PIP_*` variables.
    env: BTreeMap<String, Setting>,
    /// The files that were read, in order.
    pub files_read: Vec<PathBuf>,
}

/// What pip's configuration depends on besides files.
pub struct Environment<'a> {
    pub var: &'a dyn Fn(&str) -> Option<String>,
    /// Every variable's name (to find all `PIP_*`).
    pub var_names: Vec<String>,
    pub home: Option<PathBuf>,
    /// The target interpreter's `sys.prefix`, for a venv's `pip.conf`.
    pub site_prefix: Option<PathBuf>,
    /// Where `pip.conf` and `xdg/` are looked for: `/etc`.
    pub etc: PathBuf,
}

impl Environment<'_> {
    /// The process environment.
    pub fn process(site_prefix: Option<PathBuf>) -> Environment<'static> {
        Environment {
            var: &|k| std::env::var(k).ok(),
            var_names: std::env::vars_os()
                .filter_map(|(k, _)| k.into_string().ok())
                .collect(),
            home: std::env::var_os("HOME").map(PathBuf::from),
            site_prefix,
            etc: PathBuf::from("/etc"),
        }
    }
}

/// pip's normalization of a key.
fn normalize_key(key: &str) -> String {
    key.trim().to_ascii_lowercase().replace('_', "-")
}

impl PipConfig {
    /// Load pip's configuration files and `PIP_*` variables, in pip's order.
    pub fn load(env: &Environment<'_>) -> Result<PipConfig, ConfigError> {
        let var = |k: &str| (env.var)(k).filter(|v| !v.is_empty());
        let mut config = PipConfig::default();
        for name in &env.var_names {
            if let Some(key) = name.strip_prefix("PIP_")
                && !matches!(key, "CONFIG_FILE" | "VERSION" | "HELP")
                && let Some(value) = var(name)
            {
                config.env.insert(
                    normalize_key(key),
                    Setting {
                        value,
                        source: name.clone(),
                    },
                );
            }
        }
        let env_file = var("PIP_CONFIG_FILE").map(PathBuf::from);
        if env_file.as_deref() == Some(Path::new("/dev/null")) {
            return Ok(config);
        }
        for path in config_files(env, env_file.as_deref()) {
            match std::fs::read_to_string(&path) {
                Ok(text) => {
                    config.read_ini(&path, &text)?;
                    config.files_read.push(path);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(ConfigError::Read { path, source }),
            }
        }
        Ok(config)
    }

    /// pip reads its files with `configparser`: `[section]`, `key = value`
    /// or `key: value`, indented lines continuing a value, `#`/`;` comments.
    fn read_ini(&mut self, path: &Path, text: &str) -> Result<(), ConfigError> {
        let mut section: Option<String> = None;
        let mut last: Option<String> = None;
        for (i, line) in text.lines().enumerate() {
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
                continue;
            }
            if line.starts_with(char::is_whitespace)
                && let Some(key) = &last
            {
                if let Some(setting) = self.files.get_mut(key) {
                    setting.value.push('\n');
                    setting.value.push_str(trimmed);
                }
                continue;
            }
            if let Some(name) = trimmed.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
                section = Some(name.trim().to_string());
                last = None;
                continue;
            }
            let syntax = |problem: &str| ConfigError::Syntax {
                path: path.to_path_buf(),
                line: i + 1,
                problem: problem.to_string(),
            };
            let Some(section) = &section else {
                return Err(syntax("a setting before any [section]"));
            };
            let at = trimmed
                .find(['=', ':'])
                .ok_or_else(|| syntax("expected `key = value`"))?;
            let key = format!("{section}.{}", normalize_key(&trimmed[..at]));
            self.files.insert(
                key.clone(),
                Setting {
                    value: trimmed[at + 1..].trim().to_string(),
                    source: format!("{} [{section}]", path.display()),
                },
            );
            last = Some(key);
        }
        Ok(())
    }

    /// The value pip would use for `key`: environment, then `[download]`,
    /// `[install]`, `[global]`. Empty values count as unset, as in pip.
    pub fn get(&self, key: &str) -> Option<&Setting> {
        self.get_any(&[key])
    }

    /// [`PipConfig::get`] for an option with several names (pip's
    /// `--timeout` is also `--default-timeout`): the best source wins,
    /// whichever name it used.
    pub fn get_any(&self, keys: &[&str]) -> Option<&Setting> {
        let set = |s: &&Setting| !s.value.is_empty();
        keys.iter()
            .find_map(|k| self.env.get(*k).filter(set))
            .or_else(|| {
                ["download", "install", "global"]
                    .iter()
                    .find_map(|section| {
                        keys.iter()
                            .find_map(|k| self.files.get(&format!("{section}.{k}")).filter(set))
                    })
            })
    }

    /// A list option, split on whitespace. As in pip, the source that
    /// wins replaces the others' lists rather than adding to them.
    fn list(&self, key: &str) -> Vec<(String, String)> {
        self.get(key)
            .map(|s| {
                s.value
                    .split_whitespace()
                    .map(|v| (v.to_string(), s.source.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn flag(&self, key: &str) -> Result<bool, ConfigError> {
        let Some(s) = self.get(key) else {
            return Ok(false);
        };
        match s.value.to_ascii_lowercase().as_str() {
            "1" | "yes" | "true" | "on" | "y" | "t" => Ok(true),
            "0" | "no" | "false" | "off" | "n" | "f" => Ok(false),
            _ => Err(ConfigError::Value {
                setting: "no-index",
                source_name: s.source.clone(),
                value: s.value.clone(),
                expected: "a boolean (yes/no, true/false, 1/0)",
            }),
        }
    }
}

fn config_files(env: &Environment<'_>, env_file: Option<&Path>) -> Vec<PathBuf> {
    let var = |k: &str| (env.var)(k).filter(|v| !v.is_empty());
    let xdg = env.etc.join("xdg").display().to_string();
    let mut files: Vec<PathBuf> = var("XDG_CONFIG_DIRS")
        .unwrap_or(xdg)
        .split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join("pip/pip.conf"))
        .collect();
    files.push(env.etc.join("pip.conf"));
    let skip_user = env_file.is_some_and(Path::exists);
    if !skip_user && let Some(home) = &env.home {
        files.push(home.join(".pip/pip.conf"));
        let config_home = var("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| home.join(".config"));
        files.push(config_home.join("pip/pip.conf"));
    }
    if let Some(prefix) = &env.site_prefix {
        files.push(prefix.join("pip.conf"));
    }
    files.extend(env_file.map(Path::to_path_buf));
    files
}

/// A find-links entry: a local directory, or a page of links.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FindLinks {
    Dir(PathBuf),
    Page(Location),
}

impl std::fmt::Display for FindLinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FindLinks::Dir(d) => write!(f, "{}", crate::text::path(d)),
            FindLinks::Page(l) => write!(f, "{l}"),
        }
    }
}

/// What the caller (the command line) sets, over everything else.
#[derive(Debug, Clone, Default)]
pub struct IndexSettings {
    pub index_url: Option<String>,
    pub extra_index_urls: Vec<String>,
    pub find_links: Vec<String>,
    pub no_index: bool,
}

/// Where to look for sdists and how to talk to those places.
#[derive(Debug, Clone)]
pub struct IndexConfig {
    /// The main index; None under `--no-index`.
    pub index: Option<Location>,
    pub extra: Vec<Location>,
    pub find_links: Vec<FindLinks>,
    /// Hosts that may be reached over plain HTTP.
    pub trusted_hosts: Vec<String>,
    /// pip's `cert`: a CA bundle used instead of the system's.
    pub cert: Option<PathBuf>,
    pub timeout: Duration,
    pub retries: u32,
    /// pip's `proxy` (the standard `*_PROXY` variables apply otherwise).
    pub proxy: Option<String>,
    /// Where the index came from and what was ignored, for the user.
    pub notes: Vec<String>,
}

impl IndexConfig {
    /// Combine the caller's settings, the lock file's options, pip's
    /// configuration and netrc (module documentation has the order).
    /// `default_index` is called only when no index is configured at all.
    pub fn resolve(
        cli: &IndexSettings,
        lock: &IndexOptions,
        pip: &PipConfig,
        netrc: &Netrc,
        default_index: &dyn Fn() -> Result<String, ConfigError>,
    ) -> Result<IndexConfig, ConfigError> {
        let mut notes = Vec::new();
        let locate = Locate { netrc };
        let no_index = cli.no_index || lock.no_index || pip.flag("no-index")?;
        let (index, extra) = if no_index {
            notes.push("no index: only find-links locations are searched".to_string());
            (None, Vec::new())
        } else {
            let index = main_index(cli, lock, pip, &locate, default_index, &mut notes)?;
            let extra = extra_indexes(cli, lock, pip, &locate, &index, &mut notes)?;
            (Some(index), extra)
        };
        let find_links = find_links(cli, lock, pip, &locate, &mut notes)?;
        let mut trusted_hosts: Vec<String> = lock.trusted_hosts.clone();
        trusted_hosts.extend(pip.list("trusted-host").into_iter().map(|(v, _)| v));
        for key in ["client-cert", "keyring-provider"] {
            if let Some(s) = pip.get(key)
                && !(key == "keyring-provider" && s.value == "disabled")
            {
                notes.push(format!(
                    "pip's `{key}` (from {}) is not supported by sdist-box and is ignored",
                    s.source
                ));
            }
        }
        Ok(IndexConfig {
            index,
            extra,
            find_links,
            trusted_hosts,
            cert: pip.get("cert").map(|s| PathBuf::from(&s.value)),
            timeout: timeout(pip)?,
            retries: retries(pip)?,
            proxy: pip.get("proxy").map(|s| s.value.clone()),
            notes: notes.into_iter().map(|n| redact(&n)).collect(),
        })
    }
}

/// Parses configured locations, adding netrc credentials.
struct Locate<'a> {
    netrc: &'a Netrc,
}

impl Locate<'_> {
    fn parse(
        &self,
        setting: &'static str,
        value: &str,
        source: &str,
    ) -> Result<Location, ConfigError> {
        Location::parse(value)
            .map(|l| with_netrc(l, self.netrc))
            .map_err(|error| ConfigError::Location {
                setting,
                source_name: source.to_string(),
                error,
            })
    }
}

/// The index: the caller's, the lock's, pip's, else pip's default.
fn main_index(
    cli: &IndexSettings,
    lock: &IndexOptions,
    pip: &PipConfig,
    locate: &Locate<'_>,
    default_index: &dyn Fn() -> Result<String, ConfigError>,
    notes: &mut Vec<String>,
) -> Result<Location, ConfigError> {
    let (value, source) = match (&cli.index_url, &lock.index_url, pip.get("index-url")) {
        (Some(v), _, _) => (v.clone(), "--index-url".to_string()),
        (None, Some(v), _) => (v.clone(), "the lock file".to_string()),
        (None, None, Some(s)) => (s.value.clone(), s.source.clone()),
        (None, None, None) => (default_index()?, "pip's default".to_string()),
    };
    let loc = locate.parse("index-url", &value, &source)?;
    notes.push(format!("index {loc} (from {source})"));
    Ok(loc)
}

fn extra_indexes(
    cli: &IndexSettings,
    lock: &IndexOptions,
    pip: &PipConfig,
    locate: &Locate<'_>,
    index: &Location,
    notes: &mut Vec<String>,
) -> Result<Vec<Location>, ConfigError> {
    let mut extra = Vec::new();
    let sources = layered(
        &cli.extra_index_urls,
        "--extra-index-url",
        &lock.extra_index_urls,
        pip,
        "extra-index-url",
    );
    for (value, source) in sources {
        let loc = locate.parse("extra-index-url", &value, &source)?;
        if !extra.contains(&loc) && index != &loc {
            notes.push(format!("extra index {loc} (from {source})"));
            extra.push(loc);
        }
    }
    Ok(extra)
}

/// find-links: URLs and existing directories (a missing one is a note, as
/// pip ignores it with a warning).
fn find_links(
    cli: &IndexSettings,
    lock: &IndexOptions,
    pip: &PipConfig,
    locate: &Locate<'_>,
    notes: &mut Vec<String>,
) -> Result<Vec<FindLinks>, ConfigError> {
    let mut found = Vec::new();
    let sources = layered(
        &cli.find_links,
        "--find-links",
        &lock.find_links,
        pip,
        "find-links",
    );
    for (value, source) in sources {
        let entry = if value.contains("://") {
            let loc = locate.parse("find-links", &value, &source)?;
            match loc.url().scheme() {
                "file" => loc.url().to_file_path().ok().map(FindLinks::Dir),
                _ => Some(FindLinks::Page(loc)),
            }
        } else {
            Some(FindLinks::Dir(PathBuf::from(&value)))
        };
        match entry {
            Some(FindLinks::Dir(d)) if !d.is_dir() => notes.push(format!(
                "find-links {} (from {source}) is ignored: it is not a directory",
                d.display()
            )),
            Some(e) if !found.contains(&e) => found.push(e),
            _ => {}
        }
    }
    Ok(found)
}

/// pip's `timeout` (alias `default-timeout`), seconds.
fn timeout(pip: &PipConfig) -> Result<Duration, ConfigError> {
    let Some(s) = pip.get_any(&["timeout", "default-timeout"]) else {
        return Ok(PIP_TIMEOUT);
    };
    match s.value.parse::<f64>() {
        Ok(secs) if secs > 0.0 && secs.is_finite() => Ok(Duration::from_secs_f64(secs)),
        _ => Err(ConfigError::Value {
            setting: "timeout",
            source_name: s.source.clone(),
            value: s.value.clone(),
            expected: "a number of seconds",
        }),
    }
}

fn retries(pip: &PipConfig) -> Result<u32, ConfigError> {
    let Some(s) = pip.get("retries") else {
        return Ok(PIP_RETRIES);
    };
    s.value.parse::<u32>().map_err(|_| ConfigError::Value {
        setting: "retries",
        source_name: s.source.clone(),
        value: s.value.clone(),
        expected: "a whole number",
    })
}

/// A list setting from every layer, the caller's first: each value with
/// where it came from.
fn layered(
    cli: &[String],
    flag: &str,
    lock: &[String],
    pip: &PipConfig,
    key: &str,
) -> Vec<(String, String)> {
    let tagged = |values: &[String], source: &str| {
        values
            .iter()
            .map(|v| (v.clone(), source.to_string()))
            .collect::<Vec<_>>()
    };
    let mut out = tagged(cli, flag);
    out.extend(tagged(lock, "the lock file"));
    out.extend(pip.list(key));
    out
}

/// Credentials from netrc for a location that has none in its URL: for
/// that location's host only.
fn with_netrc(loc: Location, netrc: &Netrc) -> Location {
    if loc.credentials().is_some() {
        return loc;
    }
    let creds = loc
        .url()
        .host_str()
        .and_then(|h| netrc.for_host(h))
        .cloned();
    loc.with_credentials(creds)
}

/// pip's built-in default index, asked of pip itself (`python -I`, a fixed
/// one-line script; pip's code is trusted host tooling, as for the build
/// requirements).
pub fn pip_default_index(python: &Path) -> Result<String, ConfigError> {
    let fail = |problem: String| ConfigError::NoDefaultIndex {
        python: python.display().to_string(),
        problem,
    };
    let out = Command::new(python)
        .args([
            "-I",
            "-c",
            "from pip._internal.models.index import PyPI; print(PyPI.simple_url)",
        ])
        .current_dir("/")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| fail(e.to_string()))?;
    let url = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || url.is_empty() {
        return Err(fail(crate::text::one_line(
            &String::from_utf8_lossy(&out.stderr),
            300,
        )));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake {
        dir: tempfile::TempDir,
        vars: BTreeMap<String, String>,
    }

    impl Fake {
        fn new() -> Fake {
            Fake {
                dir: tempfile::tempdir().unwrap(),
                vars: BTreeMap::new(),
            }
        }
        fn home(&self) -> PathBuf {
            self.dir.path().join("home")
        }
        fn write(&self, rel: &str, text: &str) -> PathBuf {
            let p = self.dir.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, text).unwrap();
            p
        }
        fn set(&mut self, k: &str, v: &str) {
            self.vars.insert(k.into(), v.into());
        }
        fn load(&mut self) -> PipConfig {
            let vars = self.vars.clone();
            let var = move |k: &str| vars.get(k).cloned();
            let env = Environment {
                var: &var,
                var_names: self.vars.keys().cloned().collect(),
                home: Some(self.home()),
                site_prefix: Some(self.dir.path().join("venv")),
                etc: self.dir.path().join("etc"),
            };
            PipConfig::load(&env).unwrap()
        }
    }

    fn resolve(pip: &PipConfig, cli: &IndexSettings, lock: &IndexOptions) -> IndexConfig {
        IndexConfig::resolve(cli, lock, pip, &Netrc::default(), &|| {
            Ok("https://default.invalid/simple".into())
        })
        .unwrap()
    }

    #[test]
    fn files_in_pips_order_and_sections_by_precedence() {
        let mut f = Fake::new();
        f.write(
            "etc/xdg/pip/pip.conf",
            "[global]\nindex-url = https://xdg.invalid/simple\ntimeout = 7\n",
        );
        f.write("etc/pip.conf", "[global]\nretries = 3\n");
        f.write(
            "home/.pip/pip.conf",
            "[global]\nindex_url = https://legacy.invalid/simple\n",
        );
        f.write(
            "home/.config/pip/pip.conf",
            "[global]\nindex-url = https://user.invalid/simple\nextra-index-url =\n    https://e1.invalid/simple\n    https://e2.invalid/simple\n[install]\ntrusted-host = e1.invalid\n",
        );
        let pip = f.load();
        let got = pip.get("index-url").unwrap();
        assert_eq!(got.value, "https://user.invalid/simple");
        assert!(
            got.source.ends_with(".config/pip/pip.conf [global]"),
            "{got:?}"
        );
        assert_eq!(pip.get("timeout").unwrap().value, "7");
        let cfg = resolve(&pip, &IndexSettings::default(), &IndexOptions::default());
        assert_eq!(
            cfg.index.unwrap().url().as_str(),
            "https://user.invalid/simple"
        );
        let extra: Vec<String> = cfg.extra.iter().map(|l| l.url().to_string()).collect();
        assert_eq!(
            extra,
            ["https://e1.invalid/simple", "https://e2.invalid/simple"]
        );
        assert_eq!(cfg.trusted_hosts, ["e1.invalid"]);
        assert_eq!(cfg.timeout, Duration::from_secs(7));
        assert_eq!(cfg.retries, 3);

        // The venv's file over the user's; [download] over [global].
        f.write(
            "venv/pip.conf",
            "[download]\nindex-url = https://venv.invalid/simple\n",
        );
        let pip = f.load();
        assert_eq!(
            pip.get("index-url").unwrap().value,
            "https://venv.invalid/simple"
        );

        // PIP_CONFIG_FILE last, and the user's files skipped when it exists.
        let env_file = f.write("env.conf", "[global]\nretries = 2\n");
        f.set("PIP_CONFIG_FILE", env_file.to_str().unwrap());
        let pip = f.load();
        assert_eq!(pip.get("retries").unwrap().value, "2");
        assert_eq!(
            pip.get("index-url").unwrap().value,
            "https://venv.invalid/simple"
        );
        assert!(
            pip.get("extra-index-url").is_none(),
            "user files are skipped"
        );

        // Environment variables over every file; /dev/null loads no file.
        f.set("PIP_INDEX_URL", "https://env.invalid/simple");
        f.set("PIP_DEFAULT_TIMEOUT", "180");
        let pip = f.load();
        assert_eq!(pip.get("index-url").unwrap().source, "PIP_INDEX_URL");
        assert_eq!(
            resolve(&pip, &IndexSettings::default(), &IndexOptions::default()).timeout,
            Duration::from_secs(180)
        );
        f.set("PIP_CONFIG_FILE", "/dev/null");
        let pip = f.load();
        assert!(pip.files_read.is_empty() && pip.get("retries").is_none());
    }

    #[test]
    fn caller_then_lock_then_pip_then_default() {
        let mut f = Fake::new();
        f.set("PIP_INDEX_URL", "https://pip.invalid/simple");
        f.set(
            "PIP_EXTRA_INDEX_URL",
            "https://px1.invalid/ https://px2.invalid/",
        );
        let pip = f.load();
        let lock = IndexOptions {
            index_url: Some("https://lock.invalid/simple".into()),
            extra_index_urls: vec!["https://lx.invalid/".into()],
            ..Default::default()
        };
        let cli = IndexSettings {
            index_url: Some("https://cli.invalid/simple".into()),
            ..Default::default()
        };
        let host = |c: &IndexConfig| {
            c.index
                .as_ref()
                .unwrap()
                .url()
                .host_str()
                .unwrap()
                .to_string()
        };
        assert_eq!(host(&resolve(&pip, &cli, &lock)), "cli.invalid");
        let cfg = resolve(&pip, &IndexSettings::default(), &lock);
        assert_eq!(host(&cfg), "lock.invalid");
        assert_eq!(cfg.extra.len(), 3, "{:?}", cfg.extra);
        assert_eq!(
            host(&resolve(
                &pip,
                &IndexSettings::default(),
                &IndexOptions::default()
            )),
            "pip.invalid"
        );
        let empty = Fake::new().load();
        let cfg = resolve(&empty, &IndexSettings::default(), &IndexOptions::default());
        assert_eq!(host(&cfg), "default.invalid");
        assert!(cfg.notes[0].contains("pip's default"), "{:?}", cfg.notes);
        let no = IndexSettings {
            no_index: true,
            find_links: vec![
                f.dir.path().display().to_string(),
                "/nonexistent-dir".into(),
            ],
            ..Default::default()
        };
        let cfg = resolve(&pip, &no, &lock);
        assert!(cfg.index.is_none() && cfg.extra.is_empty());
        assert_eq!(cfg.find_links, [FindLinks::Dir(f.dir.path().to_path_buf())]);
        assert!(
            cfg.notes
                .iter()
                .any(|n| n.contains("/nonexistent-dir") && n.contains("ignored")),
            "{:?}",
            cfg.notes
        );
    }

    #[test]
    fn credentials_from_url_or_netrc_for_that_host_only_and_never_in_notes() {
        let mut f = Fake::new();
        f.set(
            "PIP_INDEX_URL",
            "https://bob:hunter2@private.invalid/simple",
        );
        f.set(
            "PIP_EXTRA_INDEX_URL",
            "https://other.invalid/simple https://netrc.invalid/simple",
        );
        let pip = f.load();
        let netrc = Netrc::parse("machine netrc.invalid login n password from-netrc\n");
        let cfg = IndexConfig::resolve(
            &IndexSettings::default(),
            &IndexOptions::default(),
            &pip,
            &netrc,
            &|| unreachable!(),
        )
        .unwrap();
        let index = cfg.index.as_ref().unwrap();
        assert!(index.credentials().is_some());
        assert!(cfg.extra[0].credentials().is_none());
        assert!(cfg.extra[1].credentials().is_some());
        let shown = format!("{cfg:?} {}", cfg.notes.join("\n"));
        assert!(
            !shown.contains("hunter2") && !shown.contains("from-netrc") && !shown.contains("bob"),
            "{shown}"
        );
        assert!(
            cfg.notes[0].contains("https://***@private.invalid/simple"),
            "{:?}",
            cfg.notes
        );
    }

    fn resolve_err(pip: &PipConfig) -> String {
        IndexConfig::resolve(
            &IndexSettings::default(),
            &IndexOptions::default(),
            pip,
            &Netrc::default(),
            &|| unreachable!(),
        )
        .unwrap_err()
        .to_string()
    }

    #[test]
    fn bad_values_name_their_source() {
        let mut f = Fake::new();
        f.write(
            "home/.config/pip/pip.conf",
            "[global]\nno-index = perhaps\n",
        );
        let e = resolve_err(&f.load());
        assert!(
            e.contains("perhaps") && e.contains("pip.conf [global]"),
            "{e}"
        );
        f.write("home/.config/pip/pip.conf", "index-url = x\n");
        let vars = BTreeMap::<String, String>::new();
        let var = move |k: &str| vars.get(k).cloned();
        let env = Environment {
            var: &var,
            var_names: vec![],
            home: Some(f.home()),
            site_prefix: None,
            etc: f.dir.path().join("etc"),
        };
        let e = PipConfig::load(&env).unwrap_err().to_string();
        assert!(
            e.contains("pip.conf:1") && e.contains("before any [section]"),
            "{e}"
        );
        f.write("home/.config/pip/pip.conf", "[global]\n");
        f.set("PIP_INDEX_URL", "ftp://u:secret@x.invalid/");
        let e = resolve_err(&f.load());
        assert!(e.contains("PIP_INDEX_URL") && !e.contains("secret"), "{e}");
    }

    #[test]
    fn pips_default_index_comes_from_pip() {
        let python = std::env::var("SDIST_BOX_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
        let url = pip_default_index(Path::new(&python)).expect("this machine's python3 has pip");
        assert!(
            Location::parse(&url).is_ok_and(|l| l.url().scheme() == "https"),
            "{url}"
        );
        let e = pip_default_index(Path::new("/nonexistent/python"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("--index-url"), "{e}");
    }
}
