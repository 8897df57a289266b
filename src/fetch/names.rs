//! Project names, versions and sdist file names, compared the way
//! installers compare them: names after PEP 503 normalization, versions by
//! PEP 440 equality (`1.0` is `1.0.0`), sdist file names split where the
//! prefix normalizes to the project's name (legacy names keep their dashes
//! and case: `python-dateutil-2.9.0.post0.tar.gz`). The file-name rules are
//! [`crate::names`]'s; this module gives them the `pep508_rs` types the
//! lock files are parsed into (the same `pep440_rs` versions underneath).
//!
//! Everything here is pure. File names come from an index and are the
//! index's claim; they decide which file is fetched, never what it holds
//! (the hash decides that).

use std::str::FromStr;

pub use pep508_rs::PackageName;
pub use pep508_rs::pep440_rs::Version;

pub use crate::names::SDIST_SUFFIXES;

/// A project name in its PEP 503 form, or why it is not one.
pub fn package_name(text: &str) -> Result<PackageName, String> {
    PackageName::from_str(text.trim()).map_err(|e| e.to_string())
}

/// A PEP 440 version, or why it is not one.
pub fn version(text: &str) -> Result<Version, String> {
    Version::from_str(text.trim()).map_err(|e| e.to_string())
}

/// The file name without its sdist suffix, if it has one.
pub fn sdist_stem(filename: &str) -> Option<&str> {
    let stem = crate::names::sdist_stem(filename);
    (stem.len() != filename.len() && !stem.is_empty()).then_some(stem)
}

/// The version an sdist file name carries for `project`, if the name is an
/// sdist of that project at all: split where the prefix is the project
/// (`crate::names::split_name_version`), so legacy names with dashes work
/// and a longer project's file (`flask-login-…` for `flask`) does not.
pub fn sdist_version(filename: &str, project: &PackageName) -> Option<Version> {
    if filename.contains(['/', '\\']) {
        return None;
    }
    let known = crate::names::Name::parse(project.as_ref()).ok()?;
    let release = crate::names::split_name_version(sdist_stem(filename)?, Some(&known))?;
    Some(release.version.pep440().clone())
}

/// Whether `filename` is an sdist of `project` at `want` (PEP 440 equality).
pub fn is_sdist_of(filename: &str, project: &PackageName, want: &Version) -> bool {
    sdist_version(filename, project).is_some_and(|v| &v == want)
}

/// The last path segment of a URL or path, percent-decoded: the file name
/// an index or a lock file gives a file.
pub fn last_segment(url_or_path: &str) -> Option<String> {
    let path = url_or_path.split(['?', '#']).next()?;
    let last = path.rsplit('/').next()?;
    if last.is_empty() {
        return None;
    }
    let decoded = percent_decode(last);
    (!decoded.contains('/') && decoded != "." && decoded != "..").then_some(decoded)
}

/// `%XX` decoded (invalid UTF-8 replaced): URL path segments and userinfo.
pub(crate) fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> PackageName {
        package_name(s).unwrap()
    }

    #[test]
    fn names_compare_normalized() {
        assert_eq!(name("Flask_Login"), name("flask.login"));
        assert_eq!(name("MarkupSafe").to_string(), "markupsafe");
        assert!(package_name("not a name").is_err());
    }

    #[test]
    fn versions_compare_by_pep_440() {
        assert_eq!(version("1.0").unwrap(), version("1.0.0").unwrap());
        assert_eq!(
            version("2.9.0.post0").unwrap(),
            version("2.9.0-post0").unwrap()
        );
        assert!(version("banana").is_err());
    }

    #[test]
    fn sdist_names_split_where_the_project_name_ends() {
        let v = |f: &str, p: &str| sdist_version(f, &name(p)).map(|v| v.to_string());
        assert_eq!(
            v("python-dateutil-2.9.0.post0.tar.gz", "python-dateutil").as_deref(),
            Some("2.9.0.post0")
        );
        assert_eq!(
            v("pdm_backend-2.4.5.tar.gz", "pdm-backend").as_deref(),
            Some("2.4.5")
        );
        assert_eq!(
            v("MarkupSafe-2.1.5.tar.gz", "markupsafe").as_deref(),
            Some("2.1.5")
        );
        assert_eq!(
            v("Flask-Login-0.6.3.zip", "flask-login").as_deref(),
            Some("0.6.3")
        );
        // Another project whose name starts with this one's.
        assert_eq!(v("flask-login-0.6.3.tar.gz", "flask"), None);
        // Wheels, bare names and paths are not sdists.
        assert_eq!(v("flask-3.1.2-py3-none-any.whl", "flask"), None);
        assert_eq!(v("flask.tar.gz", "flask"), None);
        assert_eq!(v("../flask-3.1.2.tar.gz", "flask"), None);
        assert!(is_sdist_of(
            "docopt-0.6.2.tar.gz",
            &name("docopt"),
            &version("0.6.2.0").unwrap()
        ));
        assert!(!is_sdist_of(
            "docopt-0.6.2.tar.gz",
            &name("docopt"),
            &version("0.6.3").unwrap()
        ));
    }

    #[test]
    fn last_segments_are_decoded_file_names() {
        assert_eq!(
            last_segment("https://h/a/b/six-1.17.0.tar.gz#sha256=ab").as_deref(),
            Some("six-1.17.0.tar.gz")
        );
        assert_eq!(
            last_segment("../../x%2By-1.0.tar.gz?x=1").as_deref(),
            Some("x+y-1.0.tar.gz")
        );
        assert_eq!(last_segment("https://h/dir/"), None);
        assert_eq!(last_segment("https://h/a%2F..%2Fb"), None);
    }
}
