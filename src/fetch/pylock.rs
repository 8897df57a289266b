//! PEP 751 `pylock.toml` (the packaging specification "pylock.toml"): its
//! `[[packages]]` with `sdist` entries become [`Pin`]s.
//!
//! Decisions (the message of each says it where it applies):
//! - `lock-version` must be `1.x`; a newer minor version is a note, another
//!   major version an error, as the specification requires;
//! - the file-wide `requires-python` and `environments`, and each
//!   package's `marker` and `requires-python`, are kept for
//!   [`super::lock::select`], which checks them for the target;
//! - an entry with `vcs`, `directory` or `archive` is refused by name
//!   (sdist-box builds published sdists, pinned by hash); an entry with
//!   wheels and no `sdist` has no hash to check the sdist against and is
//!   refused unless unpinned entries are allowed; conflicting sources in one
//!   entry are refused (the specification makes that an error);
//! - `sdist.path` is relative to the lock file; `sdist.size` is checked when
//!   the file is fetched; the file name (`sdist.name`, else the URL's or
//!   path's last segment) must be an sdist of the entry's name and version;
//! - markers are evaluated with no extras and the lock's default groups: a
//!   lock that offers extras or dependency groups gets a note saying so.
//!
//! `packages.dependencies` is kept as names only: PEP 751 forbids
//! installers from acting on it.

use std::collections::BTreeSet;
use std::path::Path;

use toml::Value;

use super::lock::{LockError, LockFile, LockFormat, Pin, SdistRef, read_text};
use super::names;

/// Whether a file name is one PEP 751 gives lock files
/// (`pylock.toml`, `pylock.NAME.toml`).
pub fn is_pylock_name(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name == "pylock.toml"
        || (name.len() > 11 && name.starts_with("pylock.") && name.ends_with(".toml"))
}

pub fn read_pylock(path: &Path) -> Result<LockFile, LockError> {
    parse_pylock(&read_text(path)?, path)
}

const PACKAGE_KEYS: &[&str] = &[
    "name",
    "version",
    "marker",
    "requires-python",
    "dependencies",
    "vcs",
    "directory",
    "archive",
    "index",
    "sdist",
    "wheels",
    "attestation-identities",
    "tool",
];

pub fn parse_pylock(text: &str, path: &Path) -> Result<LockFile, LockError> {
    let doc: toml::Table = toml::from_str(text).map_err(|e| toml_error(path, text, &e))?;
    let field = |entry: &str, problem: String| LockError::Field {
        path: path.to_path_buf(),
        entry: entry.to_string(),
        problem,
    };
    let mut notes = Vec::new();

    let version = get_str(&doc, "lock-version").map_err(|p| field("lock-version", p))?;
    let Some(version) = version else {
        return Err(field(
            "lock-version",
            "is missing (is this a pylock.toml?)".into(),
        ));
    };
    match version.split_once('.') {
        Some(("1", "0")) => {}
        Some(("1", minor)) if minor.parse::<u32>().is_ok() => notes.push(format!(
            "lock-version {version} is newer than the 1.0 sdist-box reads; keys it does not know are ignored"
        )),
        _ => {
            return Err(field(
                "lock-version",
                format!("`{}` is not supported (sdist-box reads 1.x)", crate::text::one_line(version, 40)),
            ));
        }
    }
    if get_str(&doc, "created-by")
        .map_err(|p| field("created-by", p))?
        .is_none()
    {
        return Err(field(
            "created-by",
            "is missing (the specification requires it)".into(),
        ));
    }
    let requires_python = get_str(&doc, "requires-python")
        .map_err(|p| field("requires-python", p))?
        .map(str::to_string);
    let environments = get_str_array(&doc, "environments").map_err(|p| field("environments", p))?;
    for key in ["extras", "dependency-groups"] {
        let offered = get_str_array(&doc, key).map_err(|p| field(key, p))?;
        if !offered.is_empty() {
            notes.push(format!(
                "the lock offers {key} ({}); markers are evaluated with none selected and the default groups",
                offered.join(", ")
            ));
        }
    }

    let packages = match doc.get("packages") {
        Some(Value::Array(a)) => a,
        Some(_) => return Err(field("packages", "must be an array of tables".into())),
        None => return Err(field("packages", "is missing".into())),
    };
    let base = path.parent().unwrap_or(Path::new("."));
    let mut unknown = BTreeSet::new();
    let mut pins = Vec::with_capacity(packages.len());
    for (i, value) in packages.iter().enumerate() {
        let Value::Table(table) = value else {
            return Err(field(&format!("packages[{i}]"), "must be a table".into()));
        };
        for key in table.keys() {
            if !PACKAGE_KEYS.contains(&key.as_str()) {
                unknown.insert(key.clone());
            }
        }
        pins.push(package(table, i, path, base)?);
    }
    for key in unknown {
        notes.push(format!(
            "packages.{} is not a key of pylock 1.0; ignored",
            crate::text::one_line(&key, 60)
        ));
    }
    Ok(LockFile {
        pins,
        notes,
        requires_python,
        environments,
        ..LockFile::empty(path, LockFormat::Pylock)
    })
}

fn package(table: &toml::Table, i: usize, path: &Path, base: &Path) -> Result<Pin, LockError> {
    let raw_name = table.get("name").and_then(Value::as_str);
    let entry = match raw_name {
        Some(n) => format!("packages[{i}] ({})", crate::text::one_line(n, 80)),
        None => format!("packages[{i}]"),
    };
    let field = |problem: String| LockError::Field {
        path: path.to_path_buf(),
        entry: entry.clone(),
        problem,
    };
    let name = names::package_name(raw_name.ok_or_else(|| field("`name` is missing".into()))?)
        .map_err(|e| field(format!("`name`: {e}")))?;
    let version = match get_str(table, "version").map_err(|p| field(format!("`version` {p}")))? {
        Some(v) => Some(names::version(v).map_err(|e| field(format!("`version`: {e}")))?),
        None => None,
    };
    let text = |key: &str| -> Result<Option<String>, LockError> {
        get_str(table, key)
            .map(|v| v.map(str::to_string))
            .map_err(|p| field(format!("`{key}` {p}")))
    };
    let dependencies = match table.get("dependencies") {
        Some(Value::Array(deps)) => deps
            .iter()
            .filter_map(|d| d.get("name").and_then(Value::as_str).map(str::to_string))
            .collect(),
        Some(_) => return Err(field("`dependencies` must be an array of tables".into())),
        None => Vec::new(),
    };
    let mut pin = Pin {
        origin: format!("{}: {entry}", path.display()),
        name,
        version,
        extras: Vec::new(),
        marker: text("marker")?,
        sha256: Vec::new(),
        other_hashes: Vec::new(),
        sdist: SdistRef::default(),
        index: text("index")?,
        requires_python: text("requires-python")?,
        dependencies,
        unsupported: None,
        unpinned_reason: None,
    };

    let direct: Vec<&str> = ["vcs", "directory", "archive"]
        .into_iter()
        .filter(|k| table.contains_key(*k))
        .collect();
    let has_sdist = table.contains_key("sdist");
    let has_wheels = table.contains_key("wheels");
    if direct.len() > 1 || (!direct.is_empty() && (has_sdist || has_wheels)) {
        pin.unsupported = Some(format!(
            "the entry gives conflicting sources ({}); the specification makes that an error",
            direct
                .iter()
                .copied()
                .chain(has_sdist.then_some("sdist"))
                .chain(has_wheels.then_some("wheels"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        return Ok(pin);
    }
    if let Some(kind) = direct.first() {
        pin.unsupported = Some(format!(
            "a `{kind}` source: sdist-box builds published sdists pinned by hash, not source trees"
        ));
        return Ok(pin);
    }
    match table.get("sdist") {
        Some(Value::Table(sdist)) => sdist_entry(&mut pin, sdist, base).map_err(field)?,
        Some(_) => return Err(field("`sdist` must be a table".into())),
        None if has_wheels => {
            pin.unpinned_reason = Some(
                "the lock records only wheels for it (no `sdist` entry), so there is no sdist hash to check; relock with sdists (e.g. `uv export --format pylock.toml`, `pip lock --no-binary :all:`)".into(),
            );
        }
        None => {
            pin.unsupported = Some(
                "the entry names no source (no sdist, wheels, vcs, directory or archive)".into(),
            )
        }
    }
    Ok(pin)
}

fn sdist_entry(pin: &mut Pin, sdist: &toml::Table, base: &Path) -> Result<(), String> {
    let text = |key: &str| -> Result<Option<String>, String> {
        get_str(sdist, key)
            .map(|v| v.map(str::to_string))
            .map_err(|p| format!("`sdist.{key}` {p}"))
    };
    let url = text("url")?;
    let path = text("path")?.map(|p| {
        let p = Path::new(&p);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            base.join(p)
        }
    });
    if url.is_none() && path.is_none() {
        return Err("`sdist` needs `url` or `path`".into());
    }
    let filename = match text("name")? {
        Some(n) => Some(n),
        None => url.as_deref().and_then(names::last_segment).or_else(|| {
            path.as_deref()
                .and_then(|p| p.to_str())
                .and_then(names::last_segment)
        }),
    };
    let size = match sdist.get("size") {
        Some(Value::Integer(n)) if *n >= 0 => Some(*n as u64),
        Some(_) => return Err("`sdist.size` must be a non-negative integer".into()),
        None => None,
    };
    let upload_time = match sdist.get("upload-time") {
        Some(Value::Datetime(d)) => Some(d.to_string()),
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err("`sdist.upload-time` must be a date-time".into()),
        None => None,
    };
    let hashes = match sdist.get("hashes") {
        Some(Value::Table(h)) if !h.is_empty() => h,
        Some(Value::Table(_)) => {
            return Err("`sdist.hashes` is empty (it must hold at least one hash)".into());
        }
        Some(_) => return Err("`sdist.hashes` must be a table of ALGORITHM = HEX".into()),
        None => return Err("`sdist.hashes` is missing (the specification requires it)".into()),
    };
    for (algo, value) in hashes {
        let hex = value
            .as_str()
            .ok_or_else(|| format!("`sdist.hashes.{algo}` must be a string"))?
            .to_ascii_lowercase();
        let expect = match algo.as_str() {
            "sha256" => Some(64),
            "sha384" => Some(96),
            "sha512" => Some(128),
            _ => None,
        };
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) || expect.is_some_and(|n| n != hex.len()) {
            return Err(format!(
                "`sdist.hashes.{}` = `{}` is not a valid digest",
                crate::text::one_line(algo, 40),
                crate::text::one_line(&hex, 140)
            ));
        }
        if algo == "sha256" {
            pin.sha256.push(hex);
        } else {
            pin.other_hashes
                .push(format!("{}:{hex}", crate::text::one_line(algo, 40)));
        }
    }
    pin.sdist = SdistRef {
        filename: filename.clone(),
        url,
        path,
        size,
        upload_time,
    };
    // The file name is the lock's claim about the file; it has to agree
    // with the entry, or the entry is not what it says.
    match filename
        .as_deref()
        .map(|f| (f, names::sdist_version(f, &pin.name)))
    {
        Some((_, Some(v))) => match &pin.version {
            Some(declared) if declared != &v => {
                pin.unsupported = Some(format!(
                    "the sdist's file name says version {v}, the entry says {declared}"
                ));
            }
            Some(_) => {}
            None => pin.version = Some(v),
        },
        Some((f, None)) => {
            pin.unsupported = Some(format!(
                "`{}` is not an sdist file name of {}",
                crate::text::one_line(f, 200),
                pin.name
            ));
        }
        None => {
            pin.unsupported =
                Some("the sdist has no file name (no `name`, and none in its url or path)".into())
        }
    }
    Ok(())
}

fn get_str<'a>(table: &'a toml::Table, key: &str) -> Result<Option<&'a str>, String> {
    match table.get(key) {
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err("must be a string".into()),
        None => Ok(None),
    }
}

fn get_str_array(table: &toml::Table, key: &str) -> Result<Vec<String>, String> {
    match table.get(key) {
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| "must be an array of strings".to_string())
            })
            .collect(),
        Some(_) => Err("must be an array of strings".into()),
        None => Ok(Vec::new()),
    }
}

fn toml_error(path: &Path, text: &str, e: &toml::de::Error) -> LockError {
    let offset = e.span().map_or(0, |s| s.start).min(text.len());
    let (line, column) = text[..offset]
        .split('\n')
        .fold((0, 0), |(n, _), l| (n + 1, l.chars().count() + 1));
    LockError::Toml {
        path: path.to_path_buf(),
        line: line.max(1),
        column: column.max(1),
        message: e.message().trim().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fetch::lock::{Action, Policy, select};
    use crate::fetch::target::tests::linux_311;

    const SHA: &str = "37228cda29411948b422fae072f57e31d3396d2ee1c9783775980ee9c9990af6";

    fn parse(text: &str) -> LockFile {
        parse_pylock(text, Path::new("/locks/pylock.toml")).unwrap()
    }

    fn parse_err(text: &str) -> String {
        parse_pylock(text, Path::new("/locks/pylock.toml"))
            .unwrap_err()
            .to_string()
    }

    fn head() -> String {
        "lock-version = \"1.0\"\ncreated-by = \"test\"\n".into()
    }

    #[test]
    fn sdist_entries_become_pins() {
        let lock = parse(&format!(
            "{}requires-python = \">=3.10\"\n\
             [[packages]]\nname = \"apipkg\"\nversion = \"1.5\"\nindex = \"https://index.invalid/simple\"\n\
             sdist = {{ url = \"https://files.invalid/a8/apipkg-1.5.tar.gz\", upload-time = 2018-07-05T05:49:26Z, size = 11186, hashes = {{ sha256 = \"{SHA}\" }} }}\n\
             dependencies = [{{ name = \"six\" }}]\n\
             [[packages]]\nname = \"local\"\nversion = \"2.0\"\nmarker = \"sys_platform == 'win32'\"\n\
             [packages.sdist]\npath = \"dist/local-2.0.tar.gz\"\n[packages.sdist.hashes]\nsha256 = \"{}\"\nblake2b = \"ab\"\n",
            head(),
            SHA.to_uppercase()
        ));
        assert_eq!(lock.format, LockFormat::Pylock);
        assert_eq!(lock.requires_python.as_deref(), Some(">=3.10"));
        let a = &lock.pins[0];
        assert_eq!(a.label(), "apipkg==1.5");
        assert_eq!(a.sha256, vec![SHA]);
        assert_eq!(a.sdist.filename.as_deref(), Some("apipkg-1.5.tar.gz"));
        assert_eq!(a.sdist.size, Some(11186));
        assert_eq!(a.sdist.upload_time.as_deref(), Some("2018-07-05T05:49:26Z"));
        assert_eq!(a.index.as_deref(), Some("https://index.invalid/simple"));
        assert_eq!(a.dependencies, vec!["six"]);
        assert_eq!(a.origin, "/locks/pylock.toml: packages[0] (apipkg)");
        let b = &lock.pins[1];
        assert_eq!(
            b.sdist.path.as_deref(),
            Some(Path::new("/locks/dist/local-2.0.tar.gz"))
        );
        assert_eq!(b.sha256, vec![SHA], "hex is lowercased");
        assert_eq!(b.other_hashes, vec!["blake2b:ab"]);
        let actions: Vec<Action> = select(&lock, &linux_311(), Policy::default())
            .unwrap()
            .into_iter()
            .map(|s| s.action)
            .collect();
        assert_eq!(actions[0], Action::Fetch { pinned: true });
        assert!(matches!(&actions[1], Action::Skip { .. }), "{actions:?}");
    }

    #[test]
    fn unsupported_sources_are_refused_by_name() {
        let lock = parse(&format!(
            "{}\
             [[packages]]\nname = \"a\"\nvcs = {{ type = \"git\", url = \"https://x.invalid/a\", commit-id = \"abc\" }}\n\
             [[packages]]\nname = \"b\"\ndirectory = {{ path = \"./b\" }}\n\
             [[packages]]\nname = \"c\"\narchive = {{ url = \"https://x.invalid/c.tar.gz\", hashes = {{ sha256 = \"{SHA}\" }} }}\n\
             [[packages]]\nname = \"d\"\nversion = \"1.0\"\nwheels = [{{ url = \"https://x.invalid/d-1.0-py3-none-any.whl\", hashes = {{ sha256 = \"{SHA}\" }} }}]\n\
             [[packages]]\nname = \"e\"\nversion = \"1.0\"\nsdist = {{ url = \"https://x.invalid/e-2.0.tar.gz\", hashes = {{ sha256 = \"{SHA}\" }} }}\n\
             [[packages]]\nname = \"f\"\nversion = \"1.0\"\nsdist = {{ url = \"https://x.invalid/f-1.0-py3-none-any.whl\", hashes = {{ sha256 = \"{SHA}\" }} }}\n\
             [[packages]]\nname = \"g\"\nversion = \"1.0\"\nvcs = {{ type = \"git\", url = \"u\", commit-id = \"c\" }}\nsdist = {{ url = \"https://x.invalid/g-1.0.tar.gz\", hashes = {{ sha256 = \"{SHA}\" }} }}\n",
            head()
        ));
        let reasons: Vec<String> = select(&lock, &linux_311(), Policy::default())
            .unwrap()
            .into_iter()
            .map(|s| match s.action {
                Action::Refuse { reason } => reason,
                other => panic!("{other:?}"),
            })
            .collect();
        assert!(reasons[0].contains("`vcs` source"), "{reasons:?}");
        assert!(reasons[1].contains("`directory` source"), "{reasons:?}");
        assert!(reasons[2].contains("`archive` source"), "{reasons:?}");
        assert!(reasons[3].contains("only wheels"), "{reasons:?}");
        assert!(
            reasons[4].contains("says version 2.0") && reasons[4].contains("1.0"),
            "{reasons:?}"
        );
        assert!(reasons[5].contains("not an sdist file name"), "{reasons:?}");
        assert!(
            reasons[6].contains("conflicting sources (vcs, sdist)"),
            "{reasons:?}"
        );
        // Wheels only, allowed unpinned: fetched by name from the index.
        let allowed = select(
            &lock,
            &linux_311(),
            Policy {
                allow_unpinned: true,
            },
        )
        .unwrap();
        assert_eq!(allowed[3].action, Action::Fetch { pinned: false });
    }

    #[test]
    fn file_level_errors_name_the_field() {
        assert!(parse_err("created-by = \"x\"\npackages = []\n").contains("lock-version"));
        assert!(
            parse_err("lock-version = \"2.0\"\ncreated-by = \"x\"\npackages = []\n")
                .contains("`2.0` is not supported")
        );
        assert!(parse_err("lock-version = \"1.0\"\npackages = []\n").contains("created-by"));
        assert!(
            parse_err(&format!("{}[[packages]]\nversion = \"1\"\n", head()))
                .contains("packages[0]: `name` is missing")
        );
        let e = parse_err(&format!(
            "{}[[packages]]\nname = \"a\"\nsdist = {{ url = \"https://x.invalid/a-1.tar.gz\" }}\n",
            head()
        ));
        assert!(
            e.contains("packages[0] (a)") && e.contains("hashes` is missing"),
            "{e}"
        );
        let e = parse_err(&format!(
            "{}[[packages]]\nname = \"a\"\nsdist = {{ hashes = {{ sha256 = \"{SHA}\" }} }}\n",
            head()
        ));
        assert!(e.contains("needs `url` or `path`"), "{e}");
        let e = parse_err(&format!(
            "{}[[packages]]\nname = \"a\"\nsdist = {{ url = \"u/a-1.tar.gz\", hashes = {{ sha256 = \"xyz\" }} }}\n",
            head()
        ));
        assert!(e.contains("not a valid digest"), "{e}");
        let e = parse_err("lock-version = \"1.0\"\n[[packages]\n");
        assert!(e.contains("line 2"), "{e}");
        let lock = parse(
            "lock-version = \"1.1\"\ncreated-by = \"x\"\nextras = [\"yaml\"]\n[[packages]]\nname = \"a\"\nfuture-key = 1\nwheels = []\n",
        );
        assert_eq!(lock.notes.len(), 3, "{:?}", lock.notes);
    }

    /// Real tool output (tests/fixtures/locks/README.md says how it was made).
    #[test]
    fn real_uv_and_pip_locks() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/locks");
        for file in [
            "pylock.uv-pip-compile.toml",
            "pylock.uv-export.toml",
            "pylock.pip-no-binary.toml",
        ] {
            let lock = read_pylock(&dir.join(file)).unwrap();
            let selected = select(&lock, &linux_311(), Policy::default()).unwrap();
            let fetch: Vec<String> = selected
                .iter()
                .filter(|s| s.action == Action::Fetch { pinned: true })
                .map(|s| s.pin.label())
                .collect();
            assert!(fetch.len() >= 13, "{file}: {fetch:?} {selected:?}");
            assert!(
                fetch.contains(&"markupsafe==3.0.3".to_string()),
                "{file}: {fetch:?}"
            );
            let docopt = selected
                .iter()
                .find(|s| s.pin.name.as_ref() == "docopt")
                .unwrap();
            assert_eq!(
                docopt.pin.sha256,
                vec!["49b3a825280bd66b3aa83585ef59c4a8c82f2c8a522dbe754a8bc8d08c85c491"]
            );
            assert_eq!(
                docopt.pin.sdist.filename.as_deref(),
                Some("docopt-0.6.2.tar.gz")
            );
        }
        // uv export: tomli only below 3.11, so skipped for 3.11.7.
        let lock = read_pylock(&dir.join("pylock.uv-export.toml")).unwrap();
        let selected = select(&lock, &linux_311(), Policy::default()).unwrap();
        let tomli = selected
            .iter()
            .find(|s| s.pin.name.as_ref() == "tomli")
            .unwrap();
        assert!(
            matches!(&tomli.action, Action::Skip { reason } if reason.contains("3.11")),
            "{tomli:?}"
        );
        // pip lock without --no-binary records wheels: only docopt has an sdist.
        let lock = read_pylock(&dir.join("pylock.pip.toml")).unwrap();
        let selected = select(&lock, &linux_311(), Policy::default()).unwrap();
        let fetch: Vec<String> = selected
            .iter()
            .filter(|s| matches!(s.action, Action::Fetch { .. }))
            .map(|s| s.pin.label())
            .collect();
        assert_eq!(fetch, ["docopt==0.6.2"]);
        assert!(selected.iter().filter(|s| matches!(&s.action, Action::Refuse { reason } if reason.contains("only wheels"))).count() >= 12);
    }

    #[test]
    fn lock_file_names() {
        assert!(is_pylock_name(Path::new("/x/pylock.toml")));
        assert!(is_pylock_name(Path::new("pylock.dev.toml")));
        assert!(!is_pylock_name(Path::new("requirements.txt")));
        assert!(!is_pylock_name(Path::new("pylock.tom")));
    }
}
