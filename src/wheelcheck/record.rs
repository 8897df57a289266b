//! `RECORD`: parsed, and checked against the archive's members.

use std::collections::{BTreeSet, HashMap};

use super::model::{MAX_LISTED, Member, RecordCheck, RecordProblem, WheelContents};

/// One row of `RECORD`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordRow {
    pub path: String,
    pub hash: String,
    pub size: String,
}

/// `RECORD` is CSV (RFC 4180: fields with commas or quotes are quoted, a
/// quote inside doubled). Rows without a path are skipped.
pub fn parse_record(text: &[u8]) -> Vec<RecordRow> {
    let text = String::from_utf8_lossy(text);
    let mut rows = Vec::new();
    for line in text.lines() {
        let mut fields: Vec<String> = Vec::new();
        let mut field = String::new();
        let mut quoted = false;
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '"' if quoted && chars.peek() == Some(&'"') => {
                    field.push('"');
                    chars.next();
                }
                '"' => quoted = !quoted,
                ',' if !quoted => fields.push(std::mem::take(&mut field)),
                c => field.push(c),
            }
        }
        fields.push(field);
        let get = |i: usize| fields.get(i).cloned().unwrap_or_default();
        let path = get(0);
        if path.is_empty() {
            continue;
        }
        rows.push(RecordRow {
            path,
            hash: get(1),
            size: get(2),
        });
    }
    rows
}

/// Unpadded URL-safe base64, as wheels write digests.
pub fn urlsafe_b64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// Check `RECORD` against the archive: every file listed once, with a
/// sha256-or-stronger digest and the size that match; RECORD itself listed
/// without either; nothing listed that is not there.
pub fn check_record(contents: &WheelContents, dist_info: Option<&str>) -> RecordCheck {
    let mut check = RecordCheck::default();
    let mut problems: Vec<RecordProblem> = Vec::new();
    let mut problem = |path: &str, what: String| {
        problems.push(RecordProblem {
            path: path.to_string(),
            problem: what,
        })
    };
    if contents.duplicate_names {
        // The zip reader keeps one entry per name, so which name is unknown
        // here; that there is one is what matters.
        problem(
            "",
            "the zip's central directory names a member twice: installers disagree on which copy wins, and RECORD can only vouch for one".into(),
        );
    }
    let Some(dist_info) = dist_info else {
        problem("", "the wheel has no .dist-info directory".into());
        check.problems_total = problems.len() as u64;
        check.problems = problems;
        return check;
    };
    let record_path = format!("{dist_info}/RECORD");
    let Some(record) = contents
        .members
        .iter()
        .find(|m| m.name == record_path)
        .and_then(|m| m.text.as_ref())
    else {
        problem(&record_path, "the wheel has no RECORD".into());
        check.problems_total = problems.len() as u64;
        check.problems = problems;
        return check;
    };
    check.path = Some(record_path.clone());
    let by_name: HashMap<&str, &Member> = contents
        .members
        .iter()
        .map(|m| (m.name.as_str(), m))
        .collect();
    let rows = parse_record(record);
    check.listed = rows.len() as u64;
    let mut listed: BTreeSet<&str> = BTreeSet::new();
    let signature =
        |p: &str| p == format!("{dist_info}/RECORD.jws") || p == format!("{dist_info}/RECORD.p7s");
    for row in &rows {
        if !listed.insert(row.path.as_str()) {
            problem(&row.path, "listed more than once".into());
            continue;
        }
        let Some(member) = by_name.get(row.path.as_str()) else {
            problem(&row.path, "listed in RECORD but not in the wheel".into());
            continue;
        };
        if row.path == record_path || signature(&row.path) {
            if row.path == record_path && (!row.hash.is_empty() || !row.size.is_empty()) {
                problem(
                    &row.path,
                    "RECORD lists a hash or size for itself (it must not)".into(),
                );
            }
            continue;
        }
        let Some((algo, digest)) = row.hash.split_once('=') else {
            problem(&row.path, "listed without a hash".into());
            continue;
        };
        let actual = match algo {
            "sha256" => Some(member.sha256.to_vec()),
            "sha384" | "sha512" => member
                .other_digests
                .iter()
                .find(|(a, _)| a == algo)
                .map(|(_, d)| d.clone()),
            _ => None,
        };
        match actual {
            None => problem(
                &row.path,
                format!(
                    "hashed with `{}`, which is not allowed (sha256 or stronger)",
                    crate::text::one_line(algo, 40)
                ),
            ),
            Some(d) if urlsafe_b64(&d) != digest => problem(
                &row.path,
                format!(
                    "the {algo} in RECORD does not match the content ({} listed, {} in the wheel)",
                    crate::text::one_line(digest, 100),
                    urlsafe_b64(&d)
                ),
            ),
            Some(_) => {}
        }
        match row.size.parse::<u64>() {
            Ok(s) if s == member.size => {}
            Ok(s) => problem(
                &row.path,
                format!("RECORD says {s} bytes, the wheel has {}", member.size),
            ),
            Err(_) => problem(&row.path, "listed without a valid size".into()),
        }
    }
    if !listed.contains(record_path.as_str()) {
        problem(&record_path, "RECORD does not list itself".into());
    }
    for m in &contents.members {
        if !m.is_dir && !listed.contains(m.name.as_str()) {
            problem(&m.name, "in the wheel but not listed in RECORD".into());
        }
    }
    check.problems_total = problems.len() as u64;
    problems.truncate(MAX_LISTED);
    check.problems = problems;
    check
}
