//! The simple repository API's project pages, read into one list of files:
//! PEP 691 JSON (`application/vnd.pypi.simple.v1+json`) and PEP 503 HTML
//! (anchors with `#sha256=` fragments, `data-yanked`,
//! `data-requires-python`, `data-dist-info-metadata`/`data-core-metadata`),
//! and find-links directories.
//!
//! Everything here is data from the index, so a claim: the file name picks
//! the candidate, the listed hash is cross-checked against the pin before
//! downloading, and only the hash of the downloaded bytes decides. URLs are
//! resolved against the page's final URL (or its `<base href>`), and any
//! credentials a page puts into a link are dropped.
//!
//! The HTML reader is a small tolerant scanner for `<a>`, `<base>` and the
//! repository-version `<meta>` (PEP 503 pages are generated and simple; an
//! HTML5 parser crate would bring far more than these three tags need).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use url::Url;

use super::names;

/// One file a project page lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexFile {
    pub filename: String,
    /// Absolute, without credentials or fragment.
    pub url: Url,
    /// The sha256 the page claims, lowercase.
    pub sha256: Option<String>,
    pub requires_python: Option<String>,
    /// Some when yanked: the reason, possibly empty.
    pub yanked: Option<String>,
    pub size: Option<u64>,
    pub upload_time: Option<String>,
}

/// A page that could not be read as a project page.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PageError {
    #[error("malformed PEP 691 JSON: {0}")]
    Json(String),
    #[error("the page declares repository API version {0}; sdist-box reads 1.x")]
    Version(String),
    #[error("unexpected Content-Type `{0}` (neither PEP 691 JSON nor HTML)")]
    ContentType(String),
    #[error("the page is not valid UTF-8")]
    NotUtf8,
}

pub const JSON_TYPE: &str = "application/vnd.pypi.simple.v1+json";
pub const HTML_TYPE: &str = "application/vnd.pypi.simple.v1+html";

/// What sdist-box asks an index for: JSON first, HTML as fallback.
pub const ACCEPT: &str = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01";

/// Read a project page of the given Content-Type.
pub fn parse_page(
    content_type: &str,
    body: &[u8],
    base: &Url,
) -> Result<Vec<IndexFile>, PageError> {
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match mime.as_str() {
        JSON_TYPE => parse_json(body, base),
        // A static tree (`sdist-box index`, a file:// index) serves its
        // index.json as plain JSON.
        "application/json" => parse_json(body, base),
        HTML_TYPE | "text/html" | "" => parse_html(
            std::str::from_utf8(body).map_err(|_| PageError::NotUtf8)?,
            base,
        ),
        other => Err(PageError::ContentType(crate::text::one_line(other, 100))),
    }
}

#[derive(Deserialize)]
struct JsonPage {
    meta: JsonMeta,
    files: Vec<JsonFile>,
}

#[derive(Deserialize)]
struct JsonMeta {
    #[serde(rename = "api-version")]
    api_version: String,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Yanked {
    Flag(bool),
    Reason(String),
}

#[derive(Deserialize)]
struct JsonFile {
    filename: String,
    url: String,
    #[serde(default)]
    hashes: BTreeMap<String, String>,
    #[serde(rename = "requires-python")]
    requires_python: Option<String>,
    yanked: Option<Yanked>,
    size: Option<u64>,
    #[serde(rename = "upload-time")]
    upload_time: Option<String>,
}

pub fn parse_json(body: &[u8], base: &Url) -> Result<Vec<IndexFile>, PageError> {
    let page: JsonPage =
        serde_json::from_slice(body).map_err(|e| PageError::Json(e.to_string()))?;
    check_version(&page.meta.api_version)?;
    Ok(page
        .files
        .into_iter()
        .filter_map(|f| {
            let url = resolve(base, &f.url)?;
            let yanked = match f.yanked {
                Some(Yanked::Flag(true)) => Some(String::new()),
                Some(Yanked::Reason(r)) => Some(r),
                _ => None,
            };
            Some(IndexFile {
                sha256: f.hashes.get("sha256").map(|h| h.to_ascii_lowercase()),
                filename: f.filename,
                url,
                requires_python: f.requires_python,
                yanked,
                size: f.size,
                upload_time: f.upload_time,
            })
        })
        .collect())
}

fn check_version(version: &str) -> Result<(), PageError> {
    match version.split('.').next() {
        Some("1") => Ok(()),
        _ => Err(PageError::Version(crate::text::one_line(version, 40))),
    }
}

/// A link resolved against the page, credentials and fragment dropped. A
/// remote page may not point at local files (`file:` links count only on
/// a `file:` page).
fn resolve(base: &Url, href: &str) -> Option<Url> {
    let mut url = base.join(href.trim()).ok()?;
    let allowed = match url.scheme() {
        "http" | "https" => true,
        "file" => base.scheme() == "file",
        _ => false,
    };
    if !allowed {
        return None;
    }
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.set_fragment(None);
    Some(url)
}

pub fn parse_html(text: &str, page_url: &Url) -> Result<Vec<IndexFile>, PageError> {
    let mut base = page_url.clone();
    let mut files = Vec::new();
    for tag in tags(text) {
        match tag.name.as_str() {
            "base" => {
                if let Some(b) = tag.attr("href").and_then(|h| page_url.join(&h).ok()) {
                    base = b;
                }
            }
            "meta" if tag.attr("name").as_deref() == Some("pypi:repository-version") => {
                check_version(&tag.attr("content").unwrap_or_default())?;
            }
            "a" => {
                let Some(href) = tag.attr("href") else {
                    continue;
                };
                let Some(url) = resolve(&base, &href) else {
                    continue;
                };
                let fragment = base
                    .join(href.trim())
                    .ok()
                    .and_then(|u| u.fragment().map(str::to_string));
                let sha256 = fragment
                    .as_deref()
                    .and_then(|f| f.strip_prefix("sha256="))
                    .map(|h| h.to_ascii_lowercase());
                let Some(filename) = names::last_segment(url.path()) else {
                    continue;
                };
                files.push(IndexFile {
                    filename,
                    url,
                    sha256,
                    requires_python: tag.attr("data-requires-python"),
                    yanked: tag.attr("data-yanked"),
                    size: None,
                    upload_time: None,
                });
            }
            _ => {}
        }
    }
    Ok(files)
}

/// The sdists (by name) in a find-links directory; regular files only.
pub fn list_directory(dir: &Path) -> std::io::Result<Vec<IndexFile>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_file = entry.file_type().is_ok_and(|t| t.is_file());
        if !is_file || names::sdist_stem(&name).is_none() {
            continue;
        }
        if let Ok(url) = Url::from_file_path(entry.path()) {
            files.push(IndexFile {
                filename: name,
                url,
                sha256: None,
                requires_python: None,
                yanked: None,
                size: entry.metadata().ok().map(|m| m.len()),
                upload_time: None,
            });
        }
    }
    files.sort_by(|a, b| a.filename.cmp(&b.filename));
    Ok(files)
}

/// A start tag: its lowercase name and raw attributes.
struct Tag {
    name: String,
    attrs: Vec<(String, Option<String>)>,
}

impl Tag {
    /// An attribute's value, entities decoded; `Some("")` for a bare one.
    fn attr(&self, name: &str) -> Option<String> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_deref().map(unescape).unwrap_or_default())
    }
}

/// The start tags of an HTML text, comments skipped.
fn tags(text: &str) -> Vec<Tag> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(lt) = rest.find('<') {
        rest = &rest[lt + 1..];
        if let Some(after) = rest.strip_prefix("!--") {
            rest = after.find("-->").map_or("", |end| &after[end + 3..]);
            continue;
        }
        let name_len = rest
            .find(|c: char| !c.is_ascii_alphanumeric())
            .unwrap_or(rest.len());
        if name_len == 0 {
            continue;
        }
        let name = rest[..name_len].to_ascii_lowercase();
        let (attrs, consumed) = attributes(&rest[name_len..]);
        rest = &rest[name_len + consumed..];
        out.push(Tag { name, attrs });
    }
    out
}

/// Attributes up to the closing `>`; returns them and the bytes consumed.
fn attributes(s: &str) -> (Vec<(String, Option<String>)>, usize) {
    let bytes = s.as_bytes();
    let mut attrs = Vec::new();
    let mut i = 0;
    loop {
        while i < bytes.len() && (bytes[i].is_ascii_whitespace() || bytes[i] == b'/') {
            i += 1;
        }
        if i >= bytes.len() {
            return (attrs, i);
        }
        if bytes[i] == b'>' {
            return (attrs, i + 1);
        }
        let start = i;
        while i < bytes.len()
            && !bytes[i].is_ascii_whitespace()
            && !matches!(bytes[i], b'=' | b'>' | b'/')
        {
            i += 1;
        }
        let key = s[start..i].to_ascii_lowercase();
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i < bytes.len() && bytes[i] == b'=' {
            i += 1;
            while i < bytes.len() && bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            let value = match bytes.get(i) {
                Some(&q @ (b'"' | b'\'')) => {
                    let end = s[i + 1..].find(q as char).map_or(s.len(), |e| i + 1 + e);
                    let v = &s[i + 1..end];
                    i = (end + 1).min(s.len());
                    v
                }
                _ => {
                    let v_start = i;
                    while i < bytes.len() && !bytes[i].is_ascii_whitespace() && bytes[i] != b'>' {
                        i += 1;
                    }
                    &s[v_start..i]
                }
            };
            attrs.push((key, Some(value.to_string())));
        } else if !key.is_empty() {
            attrs.push((key, None));
        } else {
            i += 1;
        }
    }
}

/// HTML character references (named ones PEP 503 pages use, and numeric).
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let Some(semi) = rest.find(';').filter(|&i| i <= 10) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..semi];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Url {
        Url::parse("https://index.invalid/simple/six/").unwrap()
    }

    #[test]
    fn pep_691_json() {
        let body = br#"{"meta": {"api-version": "1.1"}, "name": "six", "versions": ["1.17.0"],
          "files": [
            {"filename": "six-1.17.0.tar.gz", "url": "https://files.invalid/p/six-1.17.0.tar.gz",
             "hashes": {"sha256": "ABCD"}, "requires-python": ">=2.7", "size": 34703,
             "upload-time": "2024-12-04T17:35:28.174Z", "yanked": false},
            {"filename": "six-1.16.0.tar.gz", "url": "../../files/six-1.16.0.tar.gz", "hashes": {}, "yanked": "broken"},
            {"filename": "six-1.15.0.tar.gz", "url": "https://u:p@files.invalid/six-1.15.0.tar.gz", "hashes": {}, "yanked": true},
            {"filename": "x", "url": "javascript:alert(1)", "hashes": {}}
          ]}"#;
        let files = parse_page(
            "application/vnd.pypi.simple.v1+json; charset=utf-8",
            body,
            &base(),
        )
        .unwrap();
        assert_eq!(files.len(), 3, "the javascript: link is dropped");
        let local = br#"{"meta": {"api-version": "1.0"}, "files": [{"filename": "six-1.0.tar.gz", "url": "file:///home/u/six-1.0.tar.gz"}]}"#;
        assert!(
            parse_json(local, &base()).unwrap().is_empty(),
            "a remote page may not name local files"
        );
        let file_base = Url::parse("file:///srv/simple/six/").unwrap();
        assert_eq!(parse_json(local, &file_base).unwrap().len(), 1);
        assert_eq!(files[0].sha256.as_deref(), Some("abcd"));
        assert_eq!(files[0].size, Some(34703));
        assert_eq!(files[0].requires_python.as_deref(), Some(">=2.7"));
        assert_eq!(files[0].yanked, None);
        assert_eq!(
            files[1].url.as_str(),
            "https://index.invalid/files/six-1.16.0.tar.gz"
        );
        assert_eq!(files[1].yanked.as_deref(), Some("broken"));
        assert_eq!(files[2].yanked.as_deref(), Some(""));
        assert_eq!(
            files[2].url.as_str(),
            "https://files.invalid/six-1.15.0.tar.gz",
            "credentials dropped"
        );
        let v2 = br#"{"meta": {"api-version": "2.0"}, "files": []}"#;
        assert!(matches!(
            parse_json(v2, &base()),
            Err(PageError::Version(_))
        ));
        assert!(matches!(parse_json(b"{", &base()), Err(PageError::Json(_))));
        assert!(matches!(
            parse_page("application/zip", b"", &base()),
            Err(PageError::ContentType(_))
        ));
    }

    #[test]
    fn pep_503_html() {
        let html = r#"<!DOCTYPE html><html><head><meta name="pypi:repository-version" content="1.1">
          <title>Links for six</title></head><body><h1>Links for six</h1>
          <!-- <a href="/commented-1.0.tar.gz">no</a> -->
          <a href="https://files.invalid/p/six-1.17.0.tar.gz#sha256=ABCD" data-requires-python="&gt;=2.7, !=3.0.*" >six-1.17.0.tar.gz</a><br />
          <A HREF='../../files/six-1.16.0.tar.gz#sha256=ef' data-yanked="bad &amp; broken">six-1.16.0.tar.gz</A>
          <a href=six-1.15.0.zip data-yanked data-dist-info-metadata="sha256=00">six-1.15.0.zip</a>
          <a href="six%2Btest-1.0.tar.gz">x</a>
          </body></html>"#;
        let files = parse_page("text/html", html.as_bytes(), &base()).unwrap();
        let names: Vec<&str> = files.iter().map(|f| f.filename.as_str()).collect();
        assert_eq!(
            names,
            [
                "six-1.17.0.tar.gz",
                "six-1.16.0.tar.gz",
                "six-1.15.0.zip",
                "six+test-1.0.tar.gz"
            ]
        );
        assert_eq!(files[0].sha256.as_deref(), Some("abcd"));
        assert_eq!(files[0].requires_python.as_deref(), Some(">=2.7, !=3.0.*"));
        assert_eq!(
            files[0].url.as_str(),
            "https://files.invalid/p/six-1.17.0.tar.gz"
        );
        assert_eq!(
            files[1].url.as_str(),
            "https://index.invalid/files/six-1.16.0.tar.gz"
        );
        assert_eq!(files[1].yanked.as_deref(), Some("bad & broken"));
        assert_eq!(files[2].yanked.as_deref(), Some(""));
        assert_eq!(
            files[2].url.as_str(),
            "https://index.invalid/simple/six/six-1.15.0.zip"
        );
        assert!(files[2].sha256.is_none());
        let v2 = r#"<meta name="pypi:repository-version" content="2.0"><a href="a-1.tar.gz">a</a>"#;
        assert!(matches!(
            parse_html(v2, &base()),
            Err(PageError::Version(_))
        ));
        let based = r#"<base href="https://mirror.invalid/pkgs/"><a href="six-1.0.tar.gz">six</a>"#;
        assert_eq!(
            parse_html(based, &base()).unwrap()[0].url.as_str(),
            "https://mirror.invalid/pkgs/six-1.0.tar.gz"
        );
        // Junk never panics.
        for junk in [
            "<",
            "<a",
            "<a href=",
            "<a href='x",
            "&#xZZ; <a href=\"&#99999999;\">",
            "<<<>>>",
        ] {
            let _ = parse_html(junk, &base());
        }
        assert_eq!(unescape("&lt;&#62;&#x3c;&bogus;&amp"), "<><&bogus;&amp");
    }

    #[test]
    fn directories_list_regular_sdist_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("six-1.17.0.tar.gz"), b"x").unwrap();
        std::fs::write(dir.path().join("six-1.17.0-py3-none-any.whl"), b"x").unwrap();
        std::fs::create_dir(dir.path().join("dir-1.0.tar.gz")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("link-1.0.tar.gz")).unwrap();
        let files = list_directory(dir.path()).unwrap();
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].filename, "six-1.17.0.tar.gz");
        assert_eq!(files[0].url.scheme(), "file");
    }
}
