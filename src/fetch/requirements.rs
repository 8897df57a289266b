//! pip's requirements file format, as `pip-compile --generate-hashes` and
//! `uv pip compile --generate-hashes` write it: `name==version` (any case
//! and separator, extras allowed), `; marker`, `--hash=sha256:…` (several:
//! the sdist's and every wheel's), backslash continuations, `#` comments,
//! `${VAR}` expansion, and pip's option lines.
//!
//! Decisions, each stated in the message a user sees when it applies:
//! - `-r FILE` is followed (relative to the including file, as pip does;
//!   a cycle or a URL is an error); `-c FILE` is refused: every entry here
//!   is already one exact pin, and constraints would only add what sdist-box
//!   does not resolve;
//! - `--index-url`, `--extra-index-url`, `--find-links`, `--no-index` and
//!   `--trusted-host` are honoured (returned as [`super::lock::IndexOptions`]);
//!   `--no-binary`, `--only-binary`, `--prefer-binary`, `--require-hashes`,
//!   `--pre` and `--use-feature` change nothing here and become notes;
//!   `-e` and unknown options are errors;
//! - a line that is not exactly one version (`>=`, no version, `==1.*`), a
//!   VCS URL or a wheel URL is kept as an entry that will be refused by
//!   name, so the other entries still build;
//! - a requirement without a name (a bare path or URL) is an error: local
//!   sdists are what `build-all DIR|LIST` already takes.
//!
//! Comment, continuation and variable rules follow pip's `req_file.py`
//! (read to learn, not copied): a line ending in `\` joins the next unless
//! it holds a comment; a comment line ends a continuation.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use pep508_rs::pep440_rs::Operator;
use pep508_rs::{Requirement, VersionOrUrl};
use url::Url;

use super::lock::{LockError, LockFile, LockFormat, Pin, SdistRef, read_text};
use super::names;

/// How deep `-r` includes may nest (pip has no limit; a cycle is caught
/// separately, this bounds a chain of generated files).
const MAX_INCLUDE_DEPTH: usize = 16;

/// Read a requirements file (and the files it includes with `-r`).
/// `var` answers `${NAME}` (normally the process environment).
pub fn read_requirements(
    path: &Path,
    var: &dyn Fn(&str) -> Option<String>,
) -> Result<LockFile, LockError> {
    let mut lock = LockFile::empty(path, LockFormat::Requirements);
    let mut open = Vec::new();
    read_into(path, var, &mut lock, &mut open)?;
    Ok(lock)
}

/// Parse requirements text as if read from `file` (includes are read from
/// disk relative to it).
pub fn parse_requirements(
    text: &str,
    file: &Path,
    var: &dyn Fn(&str) -> Option<String>,
) -> Result<LockFile, LockError> {
    let mut lock = LockFile::empty(file, LockFormat::Requirements);
    let mut open = vec![identity(file)];
    parse_into(text, file, var, &mut lock, &mut open)?;
    Ok(lock)
}

fn identity(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

fn read_into(
    path: &Path,
    var: &dyn Fn(&str) -> Option<String>,
    lock: &mut LockFile,
    open: &mut Vec<PathBuf>,
) -> Result<(), LockError> {
    let text = read_text(path)?;
    open.push(identity(path));
    let result = parse_into(&text, path, var, lock, open);
    open.pop();
    result
}

fn parse_into(
    text: &str,
    file: &Path,
    var: &dyn Fn(&str) -> Option<String>,
    lock: &mut LockFile,
    open: &mut Vec<PathBuf>,
) -> Result<(), LockError> {
    let base = file.parent().unwrap_or(Path::new("."));
    for (n, raw) in logical_lines(text) {
        let line = expand_vars(strip_comment(&raw), var);
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let syntax = |problem: String| LockError::Syntax {
            file: file.to_path_buf(),
            line: n,
            problem,
        };
        if line.starts_with('-') {
            option_line(line, base, lock, open, var).map_err(|e| match e {
                OptionError::Problem(p) => syntax(p),
                OptionError::Include(e) => e,
            })?;
        } else {
            let pin = requirement_line(line, format!("{}:{n}", file.display())).map_err(syntax)?;
            lock.pins.push(pin);
        }
    }
    Ok(())
}

/// pip's joining of continuation lines; each joined line keeps the number
/// of its first physical line.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let comment = has_comment(raw);
        match raw.strip_suffix('\\') {
            Some(body) if !comment => {
                pending
                    .get_or_insert_with(|| (n, String::new()))
                    .1
                    .push_str(body);
            }
            _ => match pending.take() {
                // A comment line ends the continuation (its text is a comment).
                Some((first, mut joined)) => {
                    if comment {
                        joined.push(' ');
                    }
                    joined.push_str(raw);
                    out.push((first, joined));
                }
                None => out.push((n, raw.to_string())),
            },
        }
    }
    out.extend(pending);
    out
}

/// pip's comment: `#` at the start or after whitespace, to the end.
fn has_comment(line: &str) -> bool {
    strip_comment(line).len() != line.len()
}

fn strip_comment(line: &str) -> &str {
    let mut prev_space = true;
    for (i, c) in line.char_indices() {
        if c == '#' && prev_space {
            return &line[..i];
        }
        prev_space = c.is_whitespace();
    }
    line
}

/// `${NAME}` with NAME of `A-Z`, `0-9`, `_` (pip's rule); unknown names
/// are left as written.
fn expand_vars(line: &str, var: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(at) = rest.find("${") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let name_len = after
            .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(after.len());
        let closed = after[name_len..].starts_with('}') && name_len > 0;
        match closed.then(|| var(&after[..name_len])).flatten() {
            Some(value) => {
                out.push_str(&value);
                rest = &after[name_len + 1..];
            }
            None => {
                out.push_str("${");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Split on whitespace, honouring simple single and double quotes (pip
/// reads option lines with `shlex`).
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut started = false;
    for c in line.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => cur.push(c),
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                started = true;
            }
            None if c.is_whitespace() => {
                if started || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                started = false;
            }
            None => cur.push(c),
        }
    }
    if started || !cur.is_empty() {
        out.push(cur);
    }
    out
}

enum OptionError {
    Problem(String),
    Include(LockError),
}

impl From<String> for OptionError {
    fn from(p: String) -> Self {
        OptionError::Problem(p)
    }
}

fn option_line(
    line: &str,
    base: &Path,
    lock: &mut LockFile,
    open: &mut Vec<PathBuf>,
    var: &dyn Fn(&str) -> Option<String>,
) -> Result<(), OptionError> {
    let words = words(line);
    let mut it = words.iter();
    while let Some(word) = it.next() {
        let (flag, inline) = match word.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (word.as_str(), None),
        };
        // Short options take their value joined (`-rfile`) or next.
        let (flag, inline) = match (flag, inline) {
            (f, None)
                if f.len() > 2
                    && !f.starts_with("--")
                    && ["-r", "-c", "-i", "-f", "-e"].contains(&&f[..2]) =>
            {
                (&f[..2], Some(f[2..].to_string()))
            }
            other => other,
        };
        let mut value = |what: &str| -> Result<String, OptionError> {
            match &inline {
                Some(v) => Ok(v.clone()),
                None => it
                    .next()
                    .cloned()
                    .ok_or_else(|| OptionError::Problem(format!("`{flag}` needs {what}"))),
            }
        };
        match flag {
            "-r" | "--requirement" => {
                let target = value("a file")?;
                include(&target, base, lock, open, var)?;
            }
            "-c" | "--constraint" => {
                return Err(format!(
                    "`{flag} {}`: constraints files are not followed; sdist-box builds exactly the pins listed (put them in this file)",
                    crate::text::one_line(&value("a file")?, 200)
                )
                .into());
            }
            "-i" | "--index-url" => lock.options.index_url = Some(value("a URL")?),
            "--extra-index-url" => {
                let v = value("a URL")?;
                lock.options.extra_index_urls.push(v);
            }
            "-f" | "--find-links" => {
                let v = value("a URL or directory")?;
                lock.options.find_links.push(find_link(&v, base));
            }
            "--no-index" => lock.options.no_index = true,
            "--trusted-host" => {
                let v = value("a host")?;
                lock.options.trusted_hosts.push(v);
            }
            "--no-binary" | "--only-binary" => {
                let v = value("a list of names")?;
                lock.notes.push(format!(
                    "`{flag} {}` ignored: sdist-box always fetches the sdist and builds it",
                    crate::text::one_line(&v, 200)
                ));
            }
            "--use-feature" => {
                let v = value("a feature")?;
                lock.notes.push(format!(
                    "`--use-feature {}` ignored",
                    crate::text::one_line(&v, 80)
                ));
            }
            "--prefer-binary" | "--pre" => {
                lock.notes.push(format!(
                    "`{flag}` ignored: every entry is already one exact pin"
                ));
            }
            "--require-hashes" => {
                lock.notes
                    .push("`--require-hashes` noted: sdist-box requires sha256 pins anyway".into());
            }
            "-e" | "--editable" => {
                return Err(format!(
                    "`{flag}`: editable requirements are source trees, not sdists; sdist-box builds published sdists only"
                )
                .into());
            }
            "--hash" => {
                return Err(
                    "`--hash` must follow a requirement on the same (continued) line"
                        .to_string()
                        .into(),
                );
            }
            other => {
                return Err(format!(
                    "the option `{}` is not supported in a lock file for sdist-box",
                    crate::text::one_line(other, 80)
                )
                .into());
            }
        }
    }
    Ok(())
}

/// A `--find-links` value: a URL as written, a path made absolute against
/// the requirements file's directory (pip resolves it there).
fn find_link(value: &str, base: &Path) -> String {
    if value.contains("://") {
        return value.to_string();
    }
    let p = Path::new(value);
    if p.is_absolute() {
        value.to_string()
    } else {
        base.join(p).display().to_string()
    }
}

fn include(
    target: &str,
    base: &Path,
    lock: &mut LockFile,
    open: &mut Vec<PathBuf>,
    var: &dyn Fn(&str) -> Option<String>,
) -> Result<(), OptionError> {
    if target.contains("://") {
        return Err(format!(
            "`-r {}`: including a file by URL is not supported (download it and pin it in the repository)",
            crate::text::one_line(target, 200)
        )
        .into());
    }
    let path = base.join(target);
    if open.contains(&identity(&path)) {
        return Err(
            format!("`-r {target}` includes a file that is already being read (a cycle)").into(),
        );
    }
    if open.len() >= MAX_INCLUDE_DEPTH {
        return Err(format!("`-r {target}`: includes nest deeper than {MAX_INCLUDE_DEPTH}").into());
    }
    read_into(&path, var, lock, open).map_err(OptionError::Include)
}

/// One requirement line: the requirement, then its `--hash` options.
fn requirement_line(line: &str, origin: String) -> Result<Pin, String> {
    let tokens: Vec<&str> = line.split_whitespace().collect();
    let split = tokens
        .iter()
        .position(|t| t.starts_with('-'))
        .unwrap_or(tokens.len());
    let requirement = tokens[..split].join(" ");
    let (sha256, other_hashes) = hash_options(&tokens[split..])?;
    let req = Requirement::<Url>::from_str(&requirement).map_err(|e| {
        if looks_like_location(&requirement) {
            format!(
                "`{}` names no project: sdist-box fetches `name==version` pins; local sdists are built with `build-all DIR|LIST`",
                crate::text::one_line(&requirement, 200)
            )
        } else {
            format!(
                "`{}` is not a valid requirement: {}",
                crate::text::one_line(&requirement, 200),
                crate::text::one_line(&e.message.to_string(), 200)
            )
        }
    })?;
    let mut pin = Pin {
        origin,
        name: req.name.clone(),
        version: None,
        extras: req.extras.clone(),
        marker: req.marker.try_to_string(),
        sha256,
        other_hashes,
        sdist: SdistRef::default(),
        index: None,
        requires_python: None,
        dependencies: Vec::new(),
        unsupported: None,
        unpinned_reason: None,
    };
    match &req.version_or_url {
        Some(VersionOrUrl::VersionSpecifier(specs)) => {
            let exact = match specs.iter().collect::<Vec<_>>().as_slice() {
                [one] if matches!(one.operator(), Operator::Equal | Operator::ExactEqual) => {
                    Some(one.version().clone())
                }
                _ => None,
            };
            match exact {
                Some(v) => pin.version = Some(v),
                None => {
                    pin.unsupported = Some(format!(
                        "`{specs}` is not one exact version: sdist-box fetches `==` pins (a resolver's output) and resolves nothing"
                    ))
                }
            }
        }
        Some(VersionOrUrl::Url(url)) => direct_reference(&mut pin, url),
        None => {
            pin.unsupported = Some(
                "no version is pinned (`name==version` expected): sdist-box resolves nothing"
                    .into(),
            )
        }
    }
    Ok(pin)
}

fn looks_like_location(s: &str) -> bool {
    s.contains('/') || s.contains("://") || names::SDIST_SUFFIXES.iter().any(|x| s.ends_with(x))
}

/// `name @ URL`: an sdist URL or a local file is fetched from there; a VCS
/// or a wheel is refused.
fn direct_reference(pin: &mut Pin, url: &Url) {
    let filename = names::last_segment(url.path());
    let is_sdist = filename.as_deref().and_then(names::sdist_stem).is_some();
    match url.scheme() {
        "http" | "https" | "file" if is_sdist => {
            pin.version = filename
                .as_deref()
                .and_then(|f| names::sdist_version(f, &pin.name));
            pin.sdist.filename = filename;
            if url.scheme() == "file" {
                pin.sdist.path = url.to_file_path().ok();
            } else {
                pin.sdist.url = Some(url.to_string());
            }
        }
        "http" | "https" | "file" => {
            pin.unsupported = Some(format!(
                "`{}` is not an sdist (.tar.gz, .zip, …)",
                filename.unwrap_or_else(|| "the URL".into())
            ));
        }
        scheme if scheme.contains('+') => {
            pin.unsupported = Some(format!(
                "a VCS source (`{scheme}`): sdist-box builds published sdists only"
            ));
        }
        scheme => pin.unsupported = Some(format!("the URL scheme `{scheme}` is not supported")),
    }
}

/// The `--hash` options after a requirement: sha256 pins, and others kept.
fn hash_options(tokens: &[&str]) -> Result<(Vec<String>, Vec<String>), String> {
    let mut sha256 = Vec::new();
    let mut other = Vec::new();
    let mut it = tokens.iter();
    while let Some(tok) = it.next() {
        let value = if let Some(v) = tok.strip_prefix("--hash=") {
            v
        } else if *tok == "--hash" {
            it.next().ok_or("`--hash` needs a value (sha256:HEX)")?
        } else {
            return Err(format!(
                "`{}` after a requirement is not supported (only --hash=sha256:HEX may follow)",
                crate::text::one_line(tok, 80)
            ));
        };
        let (algo, hex) = value.split_once(':').ok_or_else(|| {
            format!(
                "`--hash={}` is not ALGORITHM:HEX",
                crate::text::one_line(value, 100)
            )
        })?;
        let want_len = match algo {
            "sha256" => 64,
            "sha384" => 96,
            "sha512" => 128,
            _ => {
                return Err(format!(
                    "unknown hash algorithm `{}` (pip knows sha256, sha384, sha512)",
                    crate::text::one_line(algo, 40)
                ));
            }
        };
        if hex.len() != want_len || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!(
                "`{}` is not a {algo} ({want_len} hex digits)",
                crate::text::one_line(hex, 140)
            ));
        }
        let hex = hex.to_ascii_lowercase();
        if algo == "sha256" {
            sha256.push(hex);
        } else {
            other.push(format!("{algo}:{hex}"));
        }
    }
    // The same hash twice is one pin.
    let mut seen = BTreeSet::new();
    sha256.retain(|h| seen.insert(h.clone()));
    Ok((sha256, other))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_vars(_: &str) -> Option<String> {
        None
    }

    fn parse(text: &str) -> LockFile {
        parse_requirements(text, Path::new("/lock/requirements.txt"), &no_vars).unwrap()
    }

    fn parse_err(text: &str) -> String {
        parse_requirements(text, Path::new("/lock/requirements.txt"), &no_vars)
            .unwrap_err()
            .to_string()
    }

    const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB";

    #[test]
    fn pins_with_hashes_markers_extras_and_continuations() {
        let text = format!(
            "# header comment \\\n\
             Flask_Login[async]==0.6.3 \\\n    --hash=sha256:{A} \\\n    --hash sha256:{B}\n    # via -r requirements.in\n\
             tomli==2.3.0 ; python_version < \"3.11\" \\\n    --hash=sha256:{A}\n\
             six===1.17.0 --hash=sha512:{}  # trailing comment\n",
            "c".repeat(128)
        );
        let lock = parse(&text);
        assert_eq!(lock.pins.len(), 3, "{lock:?}");
        let p = &lock.pins[0];
        assert_eq!(p.name.to_string(), "flask-login");
        assert_eq!(p.version.as_ref().unwrap().to_string(), "0.6.3");
        assert_eq!(p.extras.len(), 1);
        assert_eq!(p.sha256, vec![A.to_string(), B.to_ascii_lowercase()]);
        assert_eq!(p.origin, "/lock/requirements.txt:2");
        assert_eq!(
            lock.pins[1].marker.as_deref(),
            Some("python_full_version < '3.11'")
        );
        assert_eq!(lock.pins[1].origin, "/lock/requirements.txt:6");
        let six = &lock.pins[2];
        assert!(
            six.sha256.is_empty() && six.other_hashes.len() == 1,
            "{six:?}"
        );
        assert!(lock.pins.iter().all(|p| p.unsupported.is_none()));
    }

    #[test]
    fn what_is_not_one_exact_pin_is_kept_and_explained() {
        let lock = parse(
            "requests>=2\nidna\nsix==1.*\n\
             pkg @ git+https://example.invalid/pkg@abc\n\
             wheelish @ https://example.invalid/w-1.0-py3-none-any.whl\n\
             direct @ https://example.invalid/f/direct-2.0.tar.gz --hash=sha256:{A}\n"
                .replace("{A}", A)
                .as_str(),
        );
        let reasons: Vec<String> = lock
            .pins
            .iter()
            .map(|p| p.unsupported.clone().unwrap_or_default())
            .collect();
        assert!(
            reasons[0].contains(">=2") && reasons[0].contains("exact"),
            "{reasons:?}"
        );
        assert!(reasons[1].contains("no version"), "{reasons:?}");
        assert!(reasons[2].contains("==1.*"), "{reasons:?}");
        assert!(reasons[3].contains("VCS"), "{reasons:?}");
        assert!(reasons[4].contains("not an sdist"), "{reasons:?}");
        assert_eq!(reasons[5], "");
        let direct = &lock.pins[5];
        assert_eq!(direct.version.as_ref().unwrap().to_string(), "2.0");
        assert_eq!(
            direct.sdist.url.as_deref(),
            Some("https://example.invalid/f/direct-2.0.tar.gz")
        );
        assert_eq!(direct.sdist.filename.as_deref(), Some("direct-2.0.tar.gz"));
    }

    #[test]
    fn option_lines_are_honoured_or_explained() {
        let lock = parse(
            "--index-url https://${USER_X}@mirror.invalid/simple\n\
             --extra-index-url=https://extra.invalid/simple\n\
             -f ./wheels\n--find-links https://links.invalid/\n\
             --trusted-host mirror.invalid\n--no-binary :all:\n--prefer-binary\n--require-hashes\n\
             six==1.17.0 --hash=sha256:{A}\n"
                .replace("{A}", A)
                .as_str(),
        );
        assert_eq!(
            lock.options.index_url.as_deref(),
            Some("https://${USER_X}@mirror.invalid/simple")
        );
        assert_eq!(
            lock.options.extra_index_urls,
            vec!["https://extra.invalid/simple"]
        );
        assert_eq!(
            lock.options.find_links,
            vec!["/lock/./wheels", "https://links.invalid/"]
        );
        assert_eq!(lock.options.trusted_hosts, vec!["mirror.invalid"]);
        assert_eq!(lock.notes.len(), 3, "{:?}", lock.notes);
        let vars = |k: &str| (k == "USER_X").then(|| "tok".to_string());
        let lock = parse_requirements(
            "-i https://${USER_X}@m.invalid/s\n",
            Path::new("r.txt"),
            &vars,
        )
        .unwrap();
        assert_eq!(
            lock.options.index_url.as_deref(),
            Some("https://tok@m.invalid/s")
        );
    }

    #[test]
    fn errors_name_the_file_and_line() {
        let e = parse_err("six==1.17.0\n\n-e ./src\n");
        assert!(
            e.starts_with("/lock/requirements.txt:3:") && e.contains("editable"),
            "{e}"
        );
        assert!(parse_err("-c constraints.txt\n").contains("constraints files are not followed"));
        assert!(parse_err("--frobnicate\n").contains("`--frobnicate` is not supported"));
        assert!(
            parse_err(
                "./dist/six-1.17.0.tar.gz --hash=sha256:{A}\n"
                    .replace("{A}", A)
                    .as_str()
            )
            .contains("names no project")
        );
        assert!(parse_err("six==1.17.0 --hash=md5:abc\n").contains("unknown hash algorithm"));
        assert!(parse_err("six==1.17.0 --hash=sha256:abc\n").contains("64 hex digits"));
        assert!(parse_err("six==1.17.0 --no-deps\n").contains("only --hash"));
        assert!(parse_err("six = = 1\n").contains("not a valid requirement"));
        let e = parse_err("-r https://example.invalid/r.txt\n");
        assert!(e.contains("by URL"), "{e}");
        // Attacker text in a message is escaped.
        let e = parse_err("--\u{1b}[2Jx\n");
        assert!(e.contains("\\u{1b}") && !e.contains('\u{1b}'), "{e}");
    }

    #[test]
    fn includes_are_followed_relative_and_cycles_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(
            dir.path().join("main.txt"),
            format!("-r sub/more.txt\nsix==1.17.0 --hash=sha256:{A}\n"),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("sub/more.txt"),
            format!("docopt==0.6.2 --hash=sha256:{A}\n-f ../wheels\n"),
        )
        .unwrap();
        let lock = read_requirements(&dir.path().join("main.txt"), &no_vars).unwrap();
        let names: Vec<String> = lock.pins.iter().map(|p| p.name.to_string()).collect();
        assert_eq!(names, ["docopt", "six"]);
        assert!(
            lock.pins[0].origin.ends_with("sub/more.txt:1"),
            "{}",
            lock.pins[0].origin
        );
        assert_eq!(
            lock.options.find_links,
            vec![dir.path().join("sub/../wheels").display().to_string()]
        );

        std::fs::write(dir.path().join("sub/more.txt"), "-r ../main.txt\n").unwrap();
        let e = read_requirements(&dir.path().join("main.txt"), &no_vars)
            .unwrap_err()
            .to_string();
        assert!(e.contains("cycle") && e.contains("more.txt:1"), "{e}");
        std::fs::write(dir.path().join("sub/more.txt"), "-r missing.txt\n").unwrap();
        let e = read_requirements(&dir.path().join("main.txt"), &no_vars)
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing.txt"), "{e}");
    }

    #[test]
    fn comments_and_continuations_follow_pip() {
        assert_eq!(strip_comment("a==1 # c"), "a==1 ");
        assert_eq!(strip_comment("a==1#not-a-comment"), "a==1#not-a-comment");
        assert_eq!(strip_comment("# all"), "");
        // A line with a comment is never continued, even if it ends in `\`.
        let lines = logical_lines("a==1 # c \\\nb==2\nc==3 \\\n--hash=x\n");
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[2], (3, "c==3 --hash=x".to_string()));
        assert_eq!(
            expand_vars("${A}/${lower}/${B", &|k| (k == "A").then(|| "x".into())),
            "x/${lower}/${B"
        );
        assert_eq!(
            words("--index-url 'https://a b'  x"),
            vec!["--index-url", "https://a b", "x"]
        );
    }

    /// Real tool output: pip-compile 7.6.2 and uv 0.13.9 (see
    /// tests/fixtures/locks/README.md).
    #[test]
    fn real_pip_compile_and_uv_outputs() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/locks");
        for file in ["requirements-pip-compile.txt", "requirements-uv.txt"] {
            let lock = read_requirements(&dir.join(file), &no_vars).unwrap();
            let names: Vec<String> = lock.pins.iter().map(|p| p.label()).collect();
            assert_eq!(lock.pins.len(), 13, "{file}: {names:?}");
            assert!(
                names.contains(&"markupsafe==3.0.3".to_string()),
                "{names:?}"
            );
            assert!(names.contains(&"docopt==0.6.2".to_string()), "{names:?}");
            for p in &lock.pins {
                assert!(
                    p.unsupported.is_none() && !p.sha256.is_empty(),
                    "{file}: {p:?}"
                );
            }
            let docopt = lock
                .pins
                .iter()
                .find(|p| p.name.as_ref() == "docopt")
                .unwrap();
            assert_eq!(
                docopt.sha256,
                vec!["49b3a825280bd66b3aa83585ef59c4a8c82f2c8a522dbe754a8bc8d08c85c491"]
            );
            let markupsafe = lock
                .pins
                .iter()
                .find(|p| p.name.as_ref() == "markupsafe")
                .unwrap();
            assert!(
                markupsafe.sha256.len() > 50,
                "every wheel's hash and the sdist's"
            );
            assert!(markupsafe.sha256.contains(
                &"722695808f4b6457b320fdc131280796bdceb04ab50fe1795cd540799ebe1698".to_string()
            ));
        }
    }
}
