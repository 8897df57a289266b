//! Project names, versions, and the file names made of them: what an sdist
//! and the wheel built from it may call themselves.
//!
//! - A name is a PEP 508 name (ASCII letters and digits, with `.`, `_` and
//!   `-` inside), compared in its PEP 503 form (`Zope.Interface` and
//!   `zope_interface` are one project).
//! - A version is a PEP 440 version (parsed by `pep440_rs`), compared as a
//!   version: `1.0` and `1.0.0` are equal, `1.0+local` is not `1.0`.
//! - A wheel file name is `{name}-{version}(-{build})?-{python}-{abi}-{platform}.whl`
//!   (PEP 427, PEP 491; the binary distribution format spec): the name
//!   escaped (no `-`), the build tag starting with a digit, the tags of
//!   letters, digits, `_` and `.` (compressed tag sets).
//! - An sdist file name is `{name}-{version}.{ext}`; legacy ones keep the
//!   project's dashes (`python-dateutil-2.9.0.post0.tar.gz`), so it is split
//!   where the name part matches the name the metadata gives.
//!
//! Invariants: a [`Name`] or [`Version`] that exists passed validation, so
//! its text is only ASCII letters, digits and `._-+!`: safe in file names,
//! JSON, HTML, terminals and shell words. Text that failed is the package's
//! and reaches messages only through [`shown`], which escapes everything
//! but those characters.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

/// Longest project name accepted (a wheel file name must fit in 255 bytes).
pub const MAX_NAME: usize = 200;
/// Longest version accepted.
pub const MAX_VERSION: usize = 128;
/// Longest wheel file name (one path component).
pub const MAX_WHEEL_FILENAME: usize = 255;

/// The archive suffixes an sdist file name may end in, longest first.
pub const SDIST_SUFFIXES: &[&str] = &[".tar.gz", ".tar.bz2", ".tar.xz", ".tgz", ".tar", ".zip"];

#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error(
        "`{shown}` is not a valid project name (PEP 508: ASCII letters and digits, with `.`, `_` or `-` between them){why}"
    )]
    Name { shown: String, why: &'static str },
    #[error("`{shown}` is not a valid version (PEP 440){why}")]
    Version { shown: String, why: &'static str },
    #[error("`{shown}` is not a valid wheel file name: {why}")]
    WheelFilename { shown: String, why: &'static str },
}

/// Text that failed validation, for a message: ASCII letters, digits and
/// `._-+!` as they are, every other character as `\xNN` (ASCII) or
/// `\u{N}`, at most `max` characters of the result. No markup, control
/// character, quote or shell syntax survives.
pub fn shown(s: &str, max: usize) -> String {
    let mut out = String::new();
    for c in s.chars() {
        let piece = if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+' | '!') {
            c.to_string()
        } else if c.is_ascii() {
            format!("\\x{:02x}", c as u32)
        } else {
            format!("\\u{{{:x}}}", c as u32)
        };
        if out.len() + piece.len() > max {
            out.push('…');
            break;
        }
        out.push_str(&piece);
    }
    out
}

/// PEP 503 normalization: lowercase, each run of `-`, `_`, `.` becomes `-`.
pub fn normalize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_run = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !in_run {
                out.push('-');
            }
            in_run = true;
        } else {
            out.extend(c.to_lowercase());
            in_run = false;
        }
    }
    out
}

/// A valid project name, as written, with its PEP 503 form.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Name {
    given: String,
    normalized: String,
}

impl Name {
    pub fn parse(s: &str) -> Result<Name, NameError> {
        let bad = |why| NameError::Name {
            shown: shown(s, 120),
            why,
        };
        if s.is_empty() {
            return Err(bad(": it is empty"));
        }
        if s.len() > MAX_NAME {
            return Err(bad(": it is longer than 200 characters"));
        }
        let inner = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        if !s.chars().all(inner) {
            return Err(bad(""));
        }
        let ends = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
        if !ends(s.chars().next()) || !ends(s.chars().last()) {
            return Err(bad(": it must start and end with a letter or digit"));
        }
        Ok(Name {
            given: s.to_string(),
            normalized: normalize(s),
        })
    }

    /// As written.
    pub fn as_str(&self) -> &str {
        &self.given
    }

    /// The PEP 503 form (`zope-interface`).
    pub fn normalized(&self) -> &str {
        &self.normalized
    }

    /// The form for wheel and `.dist-info` names (`zope_interface`).
    pub fn escaped(&self) -> String {
        self.normalized.replace('-', "_")
    }

    /// The same project (PEP 503).
    pub fn same_project(&self, other: &Name) -> bool {
        self.normalized == other.normalized
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.given)
    }
}

/// A valid PEP 440 version, as written (without surrounding blanks).
/// Equal and hashed as a version: `1.0` is `1.0.0`.
#[derive(Debug, Clone)]
pub struct Version {
    given: String,
    parsed: pep440_rs::Version,
}

impl Version {
    pub fn parse(s: &str) -> Result<Version, NameError> {
        let bad = |why| NameError::Version {
            shown: shown(s, 120),
            why,
        };
        // PEP 440 allows blanks around a version; nothing else that is not
        // part of one (a line break, `;`, `$`) is ever passed on.
        let trimmed = s.trim_matches([' ', '\t']);
        if trimmed.is_empty() {
            return Err(bad(": it is empty"));
        }
        if trimmed.len() > MAX_VERSION {
            return Err(bad(": it is longer than 128 characters"));
        }
        let allowed =
            |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+' | '!');
        if !trimmed.chars().all(allowed) {
            return Err(bad(""));
        }
        let parsed = pep440_rs::Version::from_str(trimmed).map_err(|_| bad(""))?;
        Ok(Version {
            given: trimmed.to_string(),
            parsed,
        })
    }

    /// As written.
    pub fn as_str(&self) -> &str {
        &self.given
    }

    /// The normalized form (`1.0-1` → `1.0.post1`).
    pub fn normalized(&self) -> String {
        self.parsed.to_string()
    }

    pub fn pep440(&self) -> &pep440_rs::Version {
        &self.parsed
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.parsed == other.parsed
    }
}

impl Eq for Version {}

impl Hash for Version {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.parsed.hash(state)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.given)
    }
}

/// One release of one project: what at most one input may build into an
/// output directory.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Release {
    pub name: Name,
    pub version: Version,
}

impl Release {
    /// The same project (PEP 503) and the same version (PEP 440).
    pub fn same(&self, other: &Release) -> bool {
        self.name.same_project(&other.name) && self.version == other.version
    }

    /// A key equal for [`Release::same`] releases.
    pub fn key(&self) -> (String, pep440_rs::Version) {
        (self.name.normalized.clone(), self.version.parsed.clone())
    }
}

impl fmt::Display for Release {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.name, self.version)
    }
}

/// A parsed wheel file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WheelFilename {
    pub filename: String,
    pub release: Release,
    pub build: Option<String>,
    pub python: String,
    pub abi: String,
    pub platform: String,
}

impl WheelFilename {
    pub fn parse(filename: &str) -> Result<WheelFilename, NameError> {
        let bad = |why| NameError::WheelFilename {
            shown: shown(filename, 200),
            why,
        };
        if filename.len() > MAX_WHEEL_FILENAME {
            return Err(bad("longer than 255 bytes"));
        }
        let stem = filename
            .strip_suffix(".whl")
            .ok_or_else(|| bad("it does not end in .whl"))?;
        let parts: Vec<&str> = stem.split('-').collect();
        let (name, version, build, tags) = match parts[..] {
            [n, v, p, a, pl] => (n, v, None, [p, a, pl]),
            [n, v, b, p, a, pl] => (n, v, Some(b), [p, a, pl]),
            _ => {
                return Err(bad(
                    "it is not {name}-{version}(-{build})?-{python}-{abi}-{platform}.whl",
                ));
            }
        };
        // Escaped as the binary distribution format says: no `-` in the
        // name (the split above), nothing but name characters.
        let name = Name::parse(name).map_err(|_| bad("the name part is not a project name"))?;
        let version = Version::parse(version)
            .map_err(|_| bad("the version part is not a PEP 440 version"))?;
        if version.given.contains(['-', ' ', '\t']) {
            return Err(bad("the version part is not a PEP 440 version"));
        }
        let tag_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.');
        if let Some(b) = build
            && !(b.starts_with(|c: char| c.is_ascii_digit()) && b.chars().all(tag_char))
        {
            return Err(bad("the build tag must start with a digit"));
        }
        if tags
            .iter()
            .any(|t| t.is_empty() || t.starts_with('.') || !t.chars().all(tag_char))
        {
            return Err(bad(
                "a compatibility tag is empty or has characters other than letters, digits, `_` and `.`",
            ));
        }
        Ok(WheelFilename {
            filename: filename.to_string(),
            release: Release { name, version },
            build: build.map(str::to_string),
            python: tags[0].to_string(),
            abi: tags[1].to_string(),
            platform: tags[2].to_string(),
        })
    }
}

/// `pkg-1.0.tar.gz` → `pkg-1.0` (the whole name when no sdist suffix matches).
pub fn sdist_stem(filename: &str) -> &str {
    SDIST_SUFFIXES
        .iter()
        .find_map(|ext| filename.strip_suffix(ext))
        .unwrap_or(filename)
}

/// Split `{name}-{version}` (an sdist stem, a `.dist-info` stem). With
/// `known`, only where the name part is that project (legacy names keep
/// their dashes: `python-dateutil-2.9.0.post0`); without, at the first
/// dash after which a version follows. `None` when no split works.
pub fn split_name_version(stem: &str, known: Option<&Name>) -> Option<Release> {
    stem.match_indices('-').find_map(|(i, _)| {
        let (name, version) = (&stem[..i], &stem[i + 1..]);
        if let Some(known) = known
            && normalize(name) != known.normalized
        {
            return None;
        }
        Some(Release {
            name: Name::parse(name).ok()?,
            version: Version::parse(version)
                .ok()
                .filter(|v| v.given == version)?,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> Name {
        Name::parse(s).unwrap()
    }

    fn version(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn names_follow_pep_508_and_compare_as_pep_503() {
        for ok in [
            "a",
            "Django",
            "zope.interface",
            "zope_interface",
            "python-dateutil",
            "A1",
            "x--y",
        ] {
            assert!(Name::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "-a",
            "a-",
            ".a",
            "a_",
            "a b",
            "é",
            "a\nb",
            "evil\u{0}",
            "<script>",
            "a;b",
            "a/b",
            &"x".repeat(201),
        ] {
            assert!(Name::parse(bad).is_err(), "{bad:?}");
        }
        assert!(name("Zope.Interface").same_project(&name("zope_interface")));
        assert!(name("python-dateutil").same_project(&name("Python_DateUtil")));
        assert!(!name("good").same_project(&name("goods")));
        assert_eq!(name("My_Pkg.Name").normalized(), "my-pkg-name");
        assert_eq!(name("My_Pkg.Name").escaped(), "my_pkg_name");
        assert_eq!(normalize("a--_..b"), "a-b");
    }

    #[test]
    fn versions_follow_pep_440_and_nothing_else_passes() {
        for (given, normal) in [
            ("1.0", "1.0"),
            ("1.0.post1", "1.0.post1"),
            ("1.0-1", "1.0.post1"),
            ("2.0rc1", "2.0rc1"),
            ("2.0RC1", "2.0rc1"),
            ("1.0+Local.7", "1.0+local.7"),
            ("1!2.0", "1!2.0"),
            ("2.9.0.post0", "2.9.0.post0"),
            (" 1.0 ", "1.0"),
        ] {
            assert_eq!(version(given).normalized(), normal, "{given}");
        }
        assert_eq!(version(" 1.0 ").as_str(), "1.0");
        for bad in [
            "",
            "1.0; $(id)\r\n",
            "1.0\n",
            "1.0\r",
            "1.0\u{0}",
            "\u{1b}[31m1.0",
            "1.0.*",
            "one",
            "1.0 1",
            "99999999999999999999999",
        ] {
            let err = Version::parse(bad).unwrap_err().to_string();
            for raw in ["\n", "\r", "\u{0}", "\u{1b}", "$(", ";"] {
                assert!(!err.contains(raw), "{err:?} carries {raw:?}");
            }
        }
        assert_eq!(version("1.0"), version("1.0.0"));
        assert_ne!(version("1.0"), version("1.0+local"));
        assert_ne!(version("1.0"), version("1.0.post0"));
    }

    #[test]
    fn shown_keeps_only_harmless_characters() {
        assert_eq!(
            shown("evil\n\u{0}\u{1b}[1m<script>", 200),
            "evil\\x0a\\x00\\x1b\\x5b1m\\x3cscript\\x3e"
        );
        assert_eq!(shown("ok-1.0+x!", 50), "ok-1.0+x!");
        assert_eq!(shown("\u{202e}", 50), "\\u{202e}");
        assert!(shown(&"<".repeat(100), 20).chars().count() <= 21);
    }

    #[test]
    fn wheel_file_names_parse_as_the_binary_distribution_format_says() {
        let w = WheelFilename::parse("six-1.16.0-py2.py3-none-any.whl").unwrap();
        assert_eq!(w.release.name.as_str(), "six");
        assert_eq!(w.release.version.as_str(), "1.16.0");
        assert_eq!(w.build, None);
        assert_eq!(
            (&*w.python, &*w.abi, &*w.platform),
            ("py2.py3", "none", "any")
        );
        let w = WheelFilename::parse("good-1.0-1-py3-none-any.whl").unwrap();
        assert_eq!(w.build.as_deref(), Some("1"));
        let w = WheelFilename::parse(
            "MarkupSafe-3.0.3-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        )
        .unwrap();
        assert_eq!(w.release.name.normalized(), "markupsafe");
        assert!(WheelFilename::parse("pkg-1.0+local.7-py3-none-any.whl").is_ok());
        assert!(WheelFilename::parse("zope.interface-7.0-cp312-cp312-linux_x86_64.whl").is_ok());
        for bad in [
            "../evil-1.0-py3-none-any.whl",
            "a/b-1.0-py3-none-any.whl",
            "pkg-1.0.tar.gz",
            "pkg-1.0-py3-none.whl",
            ".hidden-1.0-py3-none-any.whl",
            "pkg-1.0-py3-none-any\n.whl",
            "pkg-1.0-x-py3-none-any.whl",
            "pkg-one-py3-none-any.whl",
            "pkg-1.0-py3--any.whl",
            "pkg-1.0-py3-none-any-extra-x.whl",
            "_pkg-1.0-py3-none-any.whl",
            "pkg-1.0-py3-none-an<y.whl",
        ] {
            assert!(WheelFilename::parse(bad).is_err(), "{bad:?}");
        }
        let long = format!("{}-1.0-py3-none-any.whl", "a".repeat(250));
        assert!(WheelFilename::parse(&long).is_err());
    }

    #[test]
    fn releases_are_one_project_and_version_whatever_the_spelling() {
        let a = WheelFilename::parse("good-1.0-py3-none-any.whl").unwrap();
        let b = WheelFilename::parse("Good-1.0.0-1-cp311-cp311-linux_x86_64.whl").unwrap();
        let c = WheelFilename::parse("good-1.0.post1-py3-none-any.whl").unwrap();
        assert!(a.release.same(&b.release));
        assert_eq!(a.release.key(), b.release.key());
        assert!(!a.release.same(&c.release));
        assert_eq!(a.release.to_string(), "good 1.0");
    }

    #[test]
    fn sdist_file_names_split_where_the_name_matches() {
        let split = |stem: &str, known: Option<&str>| {
            let known = known.map(name);
            split_name_version(stem, known.as_ref())
                .map(|r| (r.name.as_str().to_string(), r.version.as_str().to_string()))
        };
        let pair = |n: &str, v: &str| Some((n.to_string(), v.to_string()));
        assert_eq!(
            split("python-dateutil-2.9.0.post0", Some("python-dateutil")),
            pair("python-dateutil", "2.9.0.post0")
        );
        assert_eq!(
            split("python-dateutil-2.9.0.post0", None),
            pair("python-dateutil", "2.9.0.post0")
        );
        assert_eq!(split("Django-4.2", Some("django")), pair("Django", "4.2"));
        assert_eq!(
            split("zope.interface-5.4.0", Some("zope_interface")),
            pair("zope.interface", "5.4.0")
        );
        assert_eq!(split("foo-1.0-1", Some("foo")), pair("foo", "1.0-1"));
        assert_eq!(split("foo-2-1.0", Some("foo-2")), pair("foo-2", "1.0"));
        assert_eq!(split("evil-1.0", Some("good")), None);
        assert_eq!(split("nodash", None), None);
        assert_eq!(split("pkg-", None), None);
        assert_eq!(split("pkg-1.0 ", None), None, "no blanks in a file name");
        assert_eq!(sdist_stem("six-1.16.0.tar.gz"), "six-1.16.0");
        assert_eq!(sdist_stem("x-1.zip"), "x-1");
        assert_eq!(sdist_stem("x-1.sdist"), "x-1.sdist");
    }
}
