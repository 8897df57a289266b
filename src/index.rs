//! `sdist-box index DIR`: a simple repository over the wheels in DIR, in
//! both forms pip and other installers read: PEP 503 HTML and PEP 691 JSON.
//!
//!   DIR/simple/index.html, index.json             the project list
//!   DIR/simple/NORMALIZED/index.html, index.json    one project's wheels
//!
//! Links are relative (`../../<wheel>#sha256=…`), so the tree works as
//! `file://DIR/simple` and behind any static web server, wherever DIR is
//! copied. Each wheel's report (`<sdist>.sdist-box.json`, written by
//! `build`/`build-all` beside the wheel) is named next to it: as a
//! `data-sdist-box-report` attribute and in the text (never as an `<a>`, so
//! installers do not take it for a file), and under the private key
//! `_sdist-box-report` in the JSON (PEP 691 reserves keys starting with `_`).
//!
//! A report vouches for a wheel when it says `built`, names that file with
//! its sha256, and is a report of the wheel's project and version. Only
//! wheels a report vouches for are listed: a wheel left by a build killed
//! before its report, one whose rebuild failed since, one changed after it
//! was built is left out (`index` says which and why). One release (project
//! and version) is listed from one input only: wheels of it that reports of
//! two inputs vouch for are all left out. `--unvouched` also lists a wheel
//! no report vouches for when it is the only wheel of its release (wheels
//! made by other tools).
//!
//! Invariants: only regular files with a valid wheel name directly in DIR are
//! listed, hashed as read; every page is written atomically, the project
//! list last, and project pages of wheels no longer present are removed, so
//! re-running updates the index in place. Text from a wheel (its
//! `Requires-Python`) is escaped for HTML.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::Path;

use anyhow::Context;

use serde_json::json;

use crate::files::write_atomic;
use crate::names::WheelFilename;
use crate::outputs::Claim;

/// The PEP 629 / PEP 691 API version written.
pub const API_VERSION: &str = "1.1";

/// One wheel as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WheelFile {
    pub filename: String,
    pub project: String,
    pub version: String,
    pub sha256: String,
    pub size: u64,
    pub requires_python: Option<String>,
    /// The report's file name in DIR, when one names this wheel with this hash.
    pub report: Option<String>,
}

/// What was written.
#[derive(Debug, Clone, Default)]
pub struct IndexSummary {
    pub projects: usize,
    pub wheels: usize,
    pub with_report: usize,
    pub removed_projects: Vec<String>,
    /// Wheels not listed: file name, why.
    pub skipped: Vec<(String, String)>,
}

/// `Requires-Python` from the wheel's `*.dist-info/METADATA` (bounded).
fn requires_python(wheel: &Path) -> Option<String> {
    let file = std::fs::File::open(wheel).ok()?;
    let mut zip = zip::ZipArchive::new(file).ok()?;
    let name = zip
        .file_names()
        .filter_map(|n| n.ok())
        .find(|n| n.ends_with(".dist-info/METADATA") && n.matches('/').count() == 1)?
        .to_string();
    let entry = zip.by_name(&name).ok()?;
    let mut text = String::new();
    entry.take(1 << 20).read_to_string(&mut text).ok()?;
    text.lines()
        .take_while(|l| !l.is_empty())
        .find_map(|l| l.strip_prefix("Requires-Python:"))
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty() && v.len() <= 200)
}

/// The report that vouches for `wheel` (file name, sha256, release): one
/// that says `built`, names this file with this hash, and is a report of
/// this wheel's project and version (an older report of another project
/// naming it does not count).
fn voucher<'a>(claims: &'a [Claim], wheel: &WheelFilename, sha256: &str) -> Option<&'a Claim> {
    claims.iter().find(|c| {
        c.wheel == wheel.filename
            && c.wheel_sha256.as_deref() == Some(sha256)
            && c.status == "built"
            && c.release.as_ref().is_some_and(|r| r.same(&wheel.release))
    })
}

/// The wheels directly in `dir`, by project, each version sorted, and the
/// wheels left out with the reason. One release (project and version) is
/// listed from at most one input: when reports of two inputs vouch for
/// wheels of one release, none of them is listed; beside a vouched-for
/// wheel, a wheel of the same release no report vouches for is left out;
/// two or more wheels of one release that no report vouches for are left
/// out (nothing says they came from one input).
pub fn scan(dir: &Path, unvouched: bool) -> anyhow::Result<Scan> {
    let claims = crate::outputs::claims(dir);
    // Keyed by PEP 440 order, in which `1.0` and `1.0.0` are one version.
    let mut releases: BTreeMap<(String, pep440_rs::Version), Vec<WheelFile>> = BTreeMap::new();
    let rd = std::fs::read_dir(dir).with_context(|| format!("cannot list `{}`", dir.display()))?;
    for e in rd {
        let e = e.with_context(|| format!("cannot list `{}`", dir.display()))?;
        let filename = e.file_name().to_string_lossy().into_owned();
        // Regular files only: a symlink could point anywhere.
        let Ok(parsed) = WheelFilename::parse(&filename) else {
            continue;
        };
        if !e.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let path = e.path();
        let sha256 = crate::archive::sha256_file(&path)
            .with_context(|| format!("cannot read the wheel `{}`", path.display()))?;
        let size = e.metadata().map(|m| m.len()).unwrap_or(0);
        let report = voucher(&claims, &parsed, &sha256).map(|c| c.report.clone());
        let project = parsed.release.name.normalized().to_string();
        releases
            .entry(parsed.release.key())
            .or_default()
            .push(WheelFile {
                requires_python: requires_python(&path),
                project,
                version: parsed.release.version.as_str().to_string(),
                filename,
                sha256,
                size,
                report,
            });
    }
    let mut out = Scan::default();
    for ((project, version), mut files) in releases {
        files.sort_by(|a, b| a.filename.cmp(&b.filename));
        let vouching: BTreeSet<String> = files.iter().filter_map(|f| f.report.clone()).collect();
        let release = format!("{project} {version}");
        let n_files = files.len();
        let (listed, left_out): (Vec<WheelFile>, Vec<WheelFile>) = match vouching.len() {
            0 if unvouched && files.len() == 1 => (files, Vec::new()),
            1 => files.into_iter().partition(|f| f.report.is_some()),
            _ => (Vec::new(), files),
        };
        for f in left_out {
            let why = match (vouching.len(), &f.report) {
                (0, _) if n_files == 1 => {
                    "no report vouches for it (none says `built` and names this file with this sha256; `--unvouched` lists it anyway)".to_string()
                }
                (0, _) => format!(
                    "one of several wheels of {release} and no report says which input built them"
                ),
                (1, _) => format!(
                    "no report vouches for it, and `{}` vouches for another wheel of {release}",
                    vouching.first().map(String::as_str).unwrap_or_default()
                ),
                (_, _) => format!(
                    "wheels of {release} come from more than one input (reports {})",
                    vouching
                        .iter()
                        .map(|r| format!("`{r}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            out.skipped.push((f.filename, why));
        }
        if !listed.is_empty() {
            out.projects.entry(project).or_default().extend(listed);
        }
    }
    for files in out.projects.values_mut() {
        files.sort_by(|a, b| a.filename.cmp(&b.filename));
    }
    Ok(out)
}

/// What [`scan`] found.
#[derive(Debug, Default)]
pub struct Scan {
    /// Listed wheels by project.
    pub projects: BTreeMap<String, Vec<WheelFile>>,
    /// Wheels left out: file name, why.
    pub skipped: Vec<(String, String)>,
}

/// Escape text for an HTML attribute or element.
fn html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html>\n  <head>\n    <meta name=\"pypi:repository-version\" content=\"{API_VERSION}\">\n    <title>{}</title>\n  </head>\n  <body>\n    <h1>{}</h1>\n{body}  </body>\n</html>\n",
        html(title),
        html(title)
    )
}

/// The project page (HTML, JSON) of one project.
pub fn project_pages(project: &str, files: &[WheelFile]) -> (String, String) {
    let mut body = String::new();
    for f in files {
        // File names passed `valid_wheel_name` (a conservative character
        // set); they are escaped anyway.
        let mut attrs = format!("href=\"../../{}#sha256={}\"", html(&f.filename), f.sha256);
        if let Some(rp) = &f.requires_python {
            attrs.push_str(&format!(" data-requires-python=\"{}\"", html(rp)));
        }
        if let Some(r) = &f.report {
            attrs.push_str(&format!(" data-sdist-box-report=\"../../{}\"", html(r)));
        }
        body.push_str(&format!("    <a {attrs}>{}</a>", html(&f.filename)));
        match &f.report {
            Some(r) => body.push_str(&format!(" — report: <code>{}</code>", html(r))),
            None => body.push_str(" — no sdist-box report beside it"),
        }
        body.push_str("<br>\n");
    }
    let html_page = page(&format!("Links for {project}"), &body);
    let mut versions: Vec<&str> = files.iter().map(|f| f.version.as_str()).collect();
    versions.dedup();
    let json_files: Vec<serde_json::Value> = files
        .iter()
        .map(|f| {
            let mut v = json!({
                "filename": f.filename,
                "url": format!("../../{}", f.filename),
                "hashes": { "sha256": f.sha256 },
                "requires-python": f.requires_python,
                "size": f.size,
                "yanked": false,
            });
            if let Some(r) = &f.report {
                v["_sdist-box-report"] = json!(format!("../../{r}"));
            }
            v
        })
        .collect();
    let json_page = json!({
        "meta": { "api-version": API_VERSION },
        "name": project,
        "versions": versions,
        "files": json_files,
    });
    (
        html_page,
        serde_json::to_string_pretty(&json_page).expect("serializes") + "\n",
    )
}

/// The project list (HTML, JSON).
pub fn root_pages(projects: &[&str]) -> (String, String) {
    let mut body = String::new();
    for p in projects {
        body.push_str(&format!("    <a href=\"{0}/\">{0}</a><br>\n", html(p)));
    }
    let json_page = json!({
        "meta": { "api-version": API_VERSION },
        "projects": projects.iter().map(|p| json!({ "name": p })).collect::<Vec<_>>(),
    });
    (
        page("Simple index", &body),
        serde_json::to_string_pretty(&json_page).expect("serializes") + "\n",
    )
}

/// Write (or update) `dir/simple`.
/// `unvouched`: also list a wheel no report vouches for when it is the
/// only wheel of its release.
pub fn write_index(dir: &Path, unvouched: bool) -> anyhow::Result<IndexSummary> {
    let Scan { projects, skipped } = scan(dir, unvouched)?;
    let simple = dir.join("simple");
    std::fs::create_dir_all(&simple)
        .with_context(|| format!("cannot create `{}`", simple.display()))?;
    let mut summary = IndexSummary {
        projects: projects.len(),
        skipped,
        ..IndexSummary::default()
    };
    for (project, files) in &projects {
        let pdir = simple.join(project);
        std::fs::create_dir_all(&pdir)
            .with_context(|| format!("cannot create `{}`", pdir.display()))?;
        let (h, j) = project_pages(project, files);
        write_atomic(&pdir.join("index.html"), &h)?;
        write_atomic(&pdir.join("index.json"), &j)?;
        summary.wheels += files.len();
        summary.with_report += files.iter().filter(|f| f.report.is_some()).count();
    }
    let names: Vec<&str> = projects.keys().map(String::as_str).collect();
    let (h, j) = root_pages(&names);
    write_atomic(&simple.join("index.json"), &j)?;
    write_atomic(&simple.join("index.html"), &h)?;
    // Projects whose wheels are gone: remove their pages, and only a
    // directory that holds nothing but our two pages.
    for e in std::fs::read_dir(&simple)
        .with_context(|| format!("cannot list `{}`", simple.display()))?
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        if projects.contains_key(&name) || !e.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let ours = std::fs::read_dir(e.path())
            .map(|rd| {
                rd.flatten()
                    .all(|f| matches!(f.file_name().to_str(), Some("index.html" | "index.json")))
            })
            .unwrap_or(false);
        if ours && std::fs::remove_dir_all(e.path()).is_ok() {
            summary.removed_projects.push(name);
        }
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wheel(dir: &Path, name: &str, metadata: &str) {
        let file = std::fs::File::create(dir.join(name)).unwrap();
        let mut zip = zip::ZipWriter::new(file);
        let dist = name.split('-').take(2).collect::<Vec<_>>().join("-");
        zip.start_file(
            format!("{dist}.dist-info/METADATA"),
            zip::write::SimpleFileOptions::default(),
        )
        .unwrap();
        use std::io::Write;
        zip.write_all(metadata.as_bytes()).unwrap();
        zip.finish().unwrap();
    }

    #[test]
    fn pages_list_wheels_with_hashes_reports_and_escaped_metadata() {
        let d = tempfile::tempdir().unwrap();
        wheel(
            d.path(),
            "Foo_Bar-1.0-py3-none-any.whl",
            "Metadata-Version: 2.1\nName: Foo_Bar\nRequires-Python: >=3.8,<4 \"'&\n\nbody\n",
        );
        wheel(
            d.path(),
            "foo_bar-2.0-py3-none-any.whl",
            "Name: foo_bar\n\n",
        );
        wheel(d.path(), "other-0.1-py3-none-any.whl", "Name: other\n\n");
        std::fs::write(d.path().join("not-a-wheel.txt"), "x").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", d.path().join("evil-1.0-py3-none-any.whl"))
            .unwrap();
        let sha =
            crate::archive::sha256_file(&d.path().join("foo_bar-2.0-py3-none-any.whl")).unwrap();
        std::fs::write(
            d.path().join("foo_bar-2.0.sdist-box.json"),
            json!({
                "input": {"filename": "foo_bar-2.0.tar.gz", "sha256": "00"},
                "outcome": {"status": "built"},
                "project": {"name": "foo_bar", "version": "2.0"},
                "wheel": {"filename": "foo_bar-2.0-py3-none-any.whl", "sha256": sha},
            })
            .to_string(),
        )
        .unwrap();
        // A report whose hash does not match its wheel is not linked.
        std::fs::write(
            d.path().join("other-0.1.sdist-box.json"),
            json!({"wheel": {"filename": "other-0.1-py3-none-any.whl", "sha256": "00"}})
                .to_string(),
        )
        .unwrap();

        let s = write_index(d.path(), true).unwrap();
        assert_eq!((s.projects, s.wheels, s.with_report), (2, 3, 1));
        let simple = d.path().join("simple");
        let root = std::fs::read_to_string(simple.join("index.html")).unwrap();
        assert!(root.contains("<a href=\"foo-bar/\">foo-bar</a>"), "{root}");
        assert!(!root.contains("evil"), "symlinks are not listed");
        let page = std::fs::read_to_string(simple.join("foo-bar/index.html")).unwrap();
        assert!(page.contains(&format!(
            "href=\"../../foo_bar-2.0-py3-none-any.whl#sha256={sha}\""
        )));
        assert!(
            page.contains("data-requires-python=\"&gt;=3.8,&lt;4 &quot;&#x27;&amp;\""),
            "{page}"
        );
        assert!(page.contains("report: <code>foo_bar-2.0.sdist-box.json</code>"));
        let j: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(simple.join("foo-bar/index.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(j["meta"]["api-version"], API_VERSION);
        assert_eq!(j["name"], "foo-bar");
        assert_eq!(j["versions"], json!(["1.0", "2.0"]));
        assert_eq!(j["files"][1]["hashes"]["sha256"], sha.as_str());
        assert_eq!(
            j["files"][1]["_sdist-box-report"],
            "../../foo_bar-2.0.sdist-box.json"
        );
        assert_eq!(j["files"][0]["requires-python"], ">=3.8,<4 \"'&");
        let other = std::fs::read_to_string(simple.join("other/index.html")).unwrap();
        assert!(other.contains("no sdist-box report"), "{other}");

        // Re-running after a wheel is gone drops its project.
        std::fs::remove_file(d.path().join("other-0.1-py3-none-any.whl")).unwrap();
        let s = write_index(d.path(), true).unwrap();
        assert_eq!(s.removed_projects, vec!["other".to_string()]);
        assert!(!simple.join("other").exists());
        let rj: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(simple.join("index.json")).unwrap())
                .unwrap();
        assert_eq!(rj["projects"], json!([{"name": "foo-bar"}]));
    }

    fn built_report(dir: &Path, input: &str, project: &str, wheel: &str) {
        let sha = crate::archive::sha256_file(&dir.join(wheel)).unwrap();
        let doc = json!({
            "input": {"filename": input, "sha256": "00"},
            "outcome": {"status": "built"},
            "project": {"name": project, "version": "1.0"},
            "wheel": {"filename": wheel, "sha256": sha},
        });
        std::fs::write(
            dir.join(crate::outputs::report_file_name(input)),
            doc.to_string(),
        )
        .unwrap();
    }

    #[test]
    fn one_release_is_listed_from_one_input_only() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        // good 1.0 from good-1.0.tar.gz, and an unvouched wheel of good 1.0
        // with a build tag beside it: only the vouched one is listed.
        wheel(p, "good-1.0-py3-none-any.whl", "Name: good\n\n");
        built_report(p, "good-1.0.tar.gz", "good", "good-1.0-py3-none-any.whl");
        wheel(p, "good-1.0-1-py3-none-any.whl", "Name: good\n\n");
        // twin 1.0: two inputs' reports vouch for one wheel each: neither.
        wheel(p, "twin-1.0-py3-none-any.whl", "Name: twin\n\n");
        built_report(p, "twin-1.0.tar.gz", "twin", "twin-1.0-py3-none-any.whl");
        wheel(p, "Twin-1.0-py3-none-any.whl", "Name: Twin\n\n");
        built_report(p, "Twin-1.0.zip", "Twin", "Twin-1.0-py3-none-any.whl");
        // A report of another project naming a wheel does not vouch for it.
        wheel(p, "other-1.0-py3-none-any.whl", "Name: other\n\n");
        built_report(p, "evil-1.0.tar.gz", "evil", "other-1.0-py3-none-any.whl");
        // Two unvouched wheels of one release: neither.
        wheel(p, "loose-1.0-py3-none-any.whl", "Name: loose\n\n");
        wheel(p, "loose-1.0.0-py2-none-any.whl", "Name: loose\n\n");

        let s = write_index(p, true).unwrap();
        let listed: Vec<String> = scan(p, true)
            .unwrap()
            .projects
            .into_values()
            .flatten()
            .map(|f| f.filename)
            .collect();
        assert_eq!(
            listed,
            ["good-1.0-py3-none-any.whl", "other-1.0-py3-none-any.whl"]
        );
        assert_eq!((s.projects, s.wheels, s.with_report), (2, 2, 1));
        let skipped: BTreeMap<&str, &str> = s
            .skipped
            .iter()
            .map(|(w, why)| (w.as_str(), why.as_str()))
            .collect();
        assert_eq!(skipped.len(), 5, "{skipped:?}");
        assert!(skipped["good-1.0-1-py3-none-any.whl"].contains("good-1.0.sdist-box.json"));
        assert!(skipped["twin-1.0-py3-none-any.whl"].contains("more than one input"));
        assert!(skipped["Twin-1.0-py3-none-any.whl"].contains("Twin-1.0.sdist-box.json"));
        assert!(skipped["loose-1.0-py3-none-any.whl"].contains("several wheels"));
        let page = std::fs::read_to_string(p.join("simple/other/index.html")).unwrap();
        assert!(!page.contains("evil"), "{page}");
        assert!(!p.join("simple/twin").exists() && !p.join("simple/loose").exists());
    }

    #[test]
    fn a_wheel_no_report_vouches_for_is_listed_only_when_asked() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        wheel(p, "good-1.0-py3-none-any.whl", "Name: good\n\n");
        built_report(p, "good-1.0.tar.gz", "good", "good-1.0-py3-none-any.whl");
        // Left by a build killed before its report.
        wheel(p, "orphan-1.0-py3-none-any.whl", "Name: orphan\n\n");
        // Its report says the rebuild failed.
        wheel(p, "failed-1.0-py3-none-any.whl", "Name: failed\n\n");
        built_report(
            p,
            "failed-1.0.tar.gz",
            "failed",
            "failed-1.0-py3-none-any.whl",
        );
        let r = p.join("failed-1.0.sdist-box.json");
        let text = std::fs::read_to_string(&r).unwrap();
        std::fs::write(&r, text.replace("\"built\"", "\"build-failed\"")).unwrap();
        // Changed after it was built.
        wheel(p, "changed-1.0-py3-none-any.whl", "Name: changed\n\n");
        built_report(
            p,
            "changed-1.0.tar.gz",
            "changed",
            "changed-1.0-py3-none-any.whl",
        );
        wheel(
            p,
            "changed-1.0-py3-none-any.whl",
            "Name: changed\nSummary: x\n\n",
        );

        let s = write_index(p, false).unwrap();
        assert_eq!((s.projects, s.wheels), (1, 1), "{:?}", s.skipped);
        let skipped: BTreeMap<&str, &str> = s
            .skipped
            .iter()
            .map(|(w, why)| (w.as_str(), why.as_str()))
            .collect();
        assert_eq!(skipped.len(), 3, "{skipped:?}");
        for w in ["orphan", "failed", "changed"] {
            let why = skipped[format!("{w}-1.0-py3-none-any.whl").as_str()];
            assert!(why.contains("no report vouches for it"), "{w}: {why}");
        }
        assert!(!p.join("simple/orphan").exists());
        let s = write_index(p, true).unwrap();
        assert_eq!(s.projects, 4);
    }
}
