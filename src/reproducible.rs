//! `--check-reproducible`: build the sdist twice from scratch with the same
//! fixed `SOURCE_DATE_EPOCH`, and say whether the two wheels are
//! byte-identical — and when not, which members differ and how (content
//! first; timestamps, permissions, compression, extra fields and member
//! order when the contents are equal).
//!
//! Invariants: the first build's wheel is the output; the second build
//! happens in its own work and output directories, which are removed
//! after the comparison. Both wheels are read with the wheel checker's
//! bounds (`wheelcheck::read_wheel`); member names are only compared and
//! displayed. This module compares; the two builds are
//! `build::build_twice`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Serialize;

use crate::wheelcheck::{self, Member, WheelContents};

/// 1980-01-01T00:00:00Z, the earliest time a zip entry can hold (DOS
/// dates start in 1980): the `wheel` package and setuptools clamp
/// SOURCE_DATE_EPOCH to it anyway. A constant keeps the check independent
/// of the host's clock and of the timestamps in the sdist, which the
/// package chose.
pub const DEFAULT_SOURCE_DATE_EPOCH: &str = "315532800";

/// Where the `SOURCE_DATE_EPOCH` of the two builds came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EpochSource {
    /// `--env SOURCE_DATE_EPOCH=…` or the profile's `environment.set`.
    Profile,
    /// The caller's own environment.
    Host,
    /// [`DEFAULT_SOURCE_DATE_EPOCH`].
    Default,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// The two wheels are the same bytes.
    Identical,
    /// They differ (or the second build failed where the first succeeded).
    Different,
    /// The first build failed: there was nothing to compare.
    NotChecked,
}

/// One way the two wheels differ.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    /// The member (empty for the archive as a whole).
    pub path: String,
    pub aspect: Aspect,
    pub first: Option<String>,
    pub second: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Aspect {
    FileName,
    Content,
    OnlyInFirst,
    OnlyInSecond,
    Timestamp,
    Permissions,
    Compression,
    ExtraField,
    Order,
    Comment,
    /// Members and their metadata are equal; other bytes of the zip are not.
    ArchiveBytes,
}

impl Aspect {
    fn name(self) -> &'static str {
        match self {
            Aspect::FileName => "file name",
            Aspect::Content => "content",
            Aspect::OnlyInFirst => "only in the first wheel",
            Aspect::OnlyInSecond => "only in the second wheel",
            Aspect::Timestamp => "timestamp",
            Aspect::Permissions => "permissions",
            Aspect::Compression => "compression",
            Aspect::ExtraField => "zip extra field",
            Aspect::Order => "member order",
            Aspect::Comment => "archive comment",
            Aspect::ArchiveBytes => "zip bytes",
        }
    }
}

/// The report's `reproducible` section.
#[derive(Debug, Clone, Serialize)]
pub struct Reproducibility {
    pub source_date_epoch: String,
    pub source_date_epoch_from: EpochSource,
    pub verdict: Verdict,
    /// Why it was not checked, or why the second build gave no wheel.
    pub reason: Option<String>,
    pub first_sha256: Option<String>,
    pub second_sha256: Option<String>,
    /// Bounded; `differences_total` counts all of them.
    pub differences: Vec<Difference>,
    pub differences_total: u64,
    /// Findings of the second build that the first did not have.
    pub second_build_new_findings: u64,
    /// How long the second build took, end to end.
    pub second_build_ms: f64,
}

pub(crate) const MAX_DIFFERENCES: usize = 500;

/// Give the profile a fixed `SOURCE_DATE_EPOCH` (keeping one the caller
/// set) and say where it came from.
pub fn fix_source_date_epoch(
    set: &mut BTreeMap<String, String>,
    host: Option<&str>,
) -> (String, EpochSource) {
    const NAME: &str = "SOURCE_DATE_EPOCH";
    if let Some(v) = set.get(NAME) {
        return (v.clone(), EpochSource::Profile);
    }
    let (value, from) = match host {
        Some(h) if !h.is_empty() && h.bytes().all(|b| b.is_ascii_digit()) => {
            (h.to_string(), EpochSource::Host)
        }
        _ => (DEFAULT_SOURCE_DATE_EPOCH.to_string(), EpochSource::Default),
    };
    set.insert(NAME.to_string(), value.clone());
    (value, from)
}

fn by_name(w: &WheelContents) -> BTreeMap<&str, &Member> {
    let mut map = BTreeMap::new();
    for m in &w.members {
        map.entry(m.name.as_str()).or_insert(m);
    }
    map
}

fn short(sha: &[u8; 32]) -> String {
    hex::encode(&sha[..8])
}

fn time(m: &Member) -> Option<String> {
    m.modified
        .map(|(y, mo, d, h, mi, s)| format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}"))
}

/// How two wheels differ, member by member. Empty when every member, its
/// metadata, the order and the comment are equal (the caller compares the
/// files' hashes for the rest).
pub fn compare(first: &WheelContents, second: &WheelContents) -> Vec<Difference> {
    let mut out = Vec::new();
    let mut diff = |path: &str, aspect, a: Option<String>, b: Option<String>| {
        out.push(Difference {
            path: path.to_string(),
            aspect,
            first: a,
            second: b,
        })
    };
    let a = by_name(first);
    let b = by_name(second);
    for (name, m) in &a {
        let Some(n) = b.get(name) else {
            diff(name, Aspect::OnlyInFirst, None, None);
            continue;
        };
        if m.sha256 != n.sha256 || m.size != n.size {
            diff(
                name,
                Aspect::Content,
                Some(format!("{} bytes, sha256 {}…", m.size, short(&m.sha256))),
                Some(format!("{} bytes, sha256 {}…", n.size, short(&n.sha256))),
            );
            continue;
        }
        if m.modified != n.modified {
            diff(name, Aspect::Timestamp, time(m), time(n));
        }
        if m.unix_mode != n.unix_mode {
            let mode = |x: Option<u32>| x.map(|x| format!("{x:o}"));
            diff(
                name,
                Aspect::Permissions,
                mode(m.unix_mode),
                mode(n.unix_mode),
            );
        }
        if m.compression != n.compression {
            diff(
                name,
                Aspect::Compression,
                Some(m.compression.clone()),
                Some(n.compression.clone()),
            );
        }
        if m.extra != n.extra {
            diff(
                name,
                Aspect::ExtraField,
                Some(hex::encode(&m.extra[..m.extra.len().min(32)])),
                Some(hex::encode(&n.extra[..n.extra.len().min(32)])),
            );
        }
    }
    for name in b.keys() {
        if !a.contains_key(name) {
            diff(name, Aspect::OnlyInSecond, None, None);
        }
    }
    let common: BTreeSet<&str> = a.keys().filter(|k| b.contains_key(*k)).copied().collect();
    let order = |w: &WheelContents| -> Vec<String> {
        w.members
            .iter()
            .filter(|m| common.contains(m.name.as_str()))
            .map(|m| m.name.clone())
            .collect()
    };
    let (oa, ob) = (order(first), order(second));
    if oa != ob {
        let at = oa.iter().zip(&ob).position(|(x, y)| x != y).unwrap_or(0);
        diff(
            oa.get(at).map(String::as_str).unwrap_or(""),
            Aspect::Order,
            Some(format!("position {at}")),
            ob.iter()
                .position(|x| Some(x) == oa.get(at))
                .map(|p| format!("position {p}")),
        );
    }
    if first.comment != second.comment {
        diff(
            "",
            Aspect::Comment,
            Some(String::from_utf8_lossy(&first.comment).into_owned()),
            Some(String::from_utf8_lossy(&second.comment).into_owned()),
        );
    }
    out
}

/// Compare two wheel files: same bytes, or the differences.
pub fn compare_files(
    first: &Path,
    second: &Path,
) -> Result<(bool, Vec<Difference>), wheelcheck::WheelError> {
    let limits = wheelcheck::Limits::default();
    let hash = |p: &Path| crate::archive::sha256_file(p).ok();
    let same_bytes = hash(first).is_some() && hash(first) == hash(second);
    if same_bytes {
        return Ok((true, Vec::new()));
    }
    let a = wheelcheck::read_wheel(first, &limits)?;
    let b = wheelcheck::read_wheel(second, &limits)?;
    let mut diffs = compare(&a, &b);
    if diffs.is_empty() {
        diffs.push(Difference {
            path: String::new(),
            aspect: Aspect::ArchiveBytes,
            first: None,
            second: None,
        });
    }
    Ok((false, diffs))
}

pub(crate) fn describe(r: &Reproducibility) -> String {
    if let Some(reason) = &r.reason {
        return crate::text::one_line(reason, 300);
    }
    let shown: Vec<String> = r
        .differences
        .iter()
        .take(5)
        .map(|d| {
            if d.path.is_empty() {
                d.aspect.name().to_string()
            } else {
                format!(
                    "{} ({})",
                    crate::text::one_line(&d.path, 100),
                    d.aspect.name()
                )
            }
        })
        .collect();
    let more = if r.differences_total > 5 {
        format!(", and {} more", r.differences_total - 5)
    } else {
        String::new()
    };
    format!(
        "{} difference(s): {}{more}",
        r.differences_total,
        shown.join(", ")
    )
}

/// The text summary's line.
pub fn summary_line(r: &Reproducibility) -> String {
    match r.verdict {
        Verdict::Identical => format!(
            "yes: two builds gave byte-identical wheels (SOURCE_DATE_EPOCH={})",
            r.source_date_epoch
        ),
        Verdict::Different => format!(
            "NO (SOURCE_DATE_EPOCH={}): {}",
            r.source_date_epoch,
            describe(r)
        ),
        Verdict::NotChecked => format!(
            "not checked: {}",
            crate::text::one_line(r.reason.as_deref().unwrap_or(""), 200)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wheelcheck::tests::TestWheel;

    fn write(w: &TestWheel, dir: &Path, name: &str) -> std::path::PathBuf {
        let p = dir.join(name);
        let di = "demo-1.0.dist-info";
        w.write(&p, Some((di, &w.record(di))));
        p
    }

    fn base() -> TestWheel {
        TestWheel::new("demo-1.0")
            .add("demo/__init__.py", b"VALUE = 1\n")
            .add("demo/_stamp.py", b"STAMP = 1\n")
    }

    #[test]
    fn identical_builds_compare_equal() {
        let dir = tempfile::tempdir().unwrap();
        let a = write(&base(), dir.path(), "a.whl");
        let b = write(&base(), dir.path(), "b.whl");
        let (same, diffs) = compare_files(&a, &b).unwrap();
        assert!(same, "{diffs:?}");
        assert!(diffs.is_empty());
    }

    #[test]
    fn a_changed_file_is_named_with_its_content_difference() {
        let dir = tempfile::tempdir().unwrap();
        let a = write(&base(), dir.path(), "a.whl");
        let mut changed = base();
        changed.members[3].1 = b"STAMP = 2\n".to_vec();
        let b = write(&changed, dir.path(), "b.whl");
        let (same, diffs) = compare_files(&a, &b).unwrap();
        assert!(!same);
        let content: Vec<&str> = diffs
            .iter()
            .filter(|d| d.aspect == Aspect::Content)
            .map(|d| d.path.as_str())
            .collect();
        // The file, and RECORD (which holds its hash).
        assert_eq!(content, vec!["demo-1.0.dist-info/RECORD", "demo/_stamp.py"]);
    }

    #[test]
    fn equal_contents_with_other_metadata_name_the_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let a = write(&base(), dir.path(), "a.whl");
        let mut later = base();
        later.year = 2024;
        later.mode = 0o755;
        let b = write(&later, dir.path(), "b.whl");
        let (same, diffs) = compare_files(&a, &b).unwrap();
        assert!(!same);
        assert!(
            diffs.iter().all(|d| d.aspect != Aspect::Content),
            "{diffs:?}"
        );
        let ts = diffs
            .iter()
            .find(|d| d.aspect == Aspect::Timestamp && d.path == "demo/_stamp.py")
            .unwrap();
        assert_eq!(ts.first.as_deref(), Some("1980-01-01 00:00:00"));
        assert_eq!(ts.second.as_deref(), Some("2024-01-01 00:00:00"));
        assert!(
            diffs
                .iter()
                .any(|d| d.aspect == Aspect::Permissions && d.second.as_deref() == Some("100755"))
        );

        let mut reordered = base();
        reordered.members.swap(2, 3);
        let c = write(&reordered, dir.path(), "c.whl");
        let (_, diffs) = compare_files(&a, &c).unwrap();
        assert!(diffs.iter().any(|d| d.aspect == Aspect::Order), "{diffs:?}");
    }

    #[test]
    fn the_epoch_is_the_callers_else_the_hosts_else_1980() {
        let mut set = BTreeMap::new();
        assert_eq!(
            fix_source_date_epoch(&mut set, None),
            ("315532800".to_string(), EpochSource::Default)
        );
        assert_eq!(set["SOURCE_DATE_EPOCH"], "315532800");
        let mut set = BTreeMap::new();
        assert_eq!(
            fix_source_date_epoch(&mut set, Some("1700000000")).1,
            EpochSource::Host
        );
        assert_eq!(
            fix_source_date_epoch(&mut BTreeMap::new(), Some("yesterday")).1,
            EpochSource::Default
        );
        let mut set = BTreeMap::from([("SOURCE_DATE_EPOCH".to_string(), "42".to_string())]);
        assert_eq!(
            fix_source_date_epoch(&mut set, Some("1700000000")),
            ("42".to_string(), EpochSource::Profile)
        );
    }
}
