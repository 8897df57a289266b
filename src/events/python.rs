//! The Python stream: JSON lines written by the audit hook in
//! `shim/sitecustomize.py`, one per event, from every Python process of the
//! build.
//!
//! The package can write to the same descriptor, so nothing here is trusted:
//! lines are bounded, parsed into a fixed shape, and anything that does not
//! fit — or breaks a process's sequence — becomes a [`StreamIssue`], which
//! the pairing reports as a possible evasion.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// A source location `file:line`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Origin {
    pub file: String,
    pub line: u32,
}

/// Parse `file:line` (the file may itself contain colons).
pub fn parse_origin(s: &str) -> Option<Origin> {
    let (file, line) = s.rsplit_once(':')?;
    let line: u32 = line.parse().ok()?;
    if file.is_empty() || file.len() > 4096 {
        return None;
    }
    Some(Origin {
        file: file.to_string(),
        line,
    })
}

/// One audit event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEvent {
    /// Pid inside the sandbox.
    pub pid: u32,
    pub ppid: Option<u32>,
    /// CLOCK_MONOTONIC, nanoseconds.
    pub t_ns: u64,
    pub seq: u64,
    pub event: String,
    pub args: Vec<serde_json::Value>,
    pub origin: Option<Origin>,
    pub stack: Vec<Origin>,
}

/// A Python process that started with the hook in place.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProcessStart {
    pub pid: u32,
    pub ppid: Option<u32>,
    pub executable: String,
    pub argv: Vec<String>,
    /// `sys.flags` isolated, no_site, ignore_environment.
    pub flags: Vec<bool>,
}

/// Something wrong with the stream itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum StreamIssue {
    Malformed { line_no: u64, excerpt: String },
    SequenceGap { pid: u32, expected: u64, got: u64 },
    TooLong { line_no: u64 },
    NoStart { pid: u32 },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    v: u32,
    pid: u32,
    ppid: Option<u32>,
    t: u64,
    seq: u64,
    ev: String,
    args: Vec<serde_json::Value>,
    origin: Option<String>,
    stack: Vec<String>,
}

const MAX_LINE: usize = 8 * 1024;
/// Events kept in detail per run: a real build makes a few thousand (the
/// C-extension benchmark: ~2,600 with every open traced); past this bound a
/// flood is counted as dropped, and a kernel event whose audit event was
/// dropped is still reported (as an evasion). ~1 KiB each in memory.
const MAX_EVENTS: usize = 50_000;
const MAX_ISSUES: usize = 1_000;

/// An incremental parser of the stream.
#[derive(Debug, Default)]
pub struct PythonStream {
    pending: Vec<u8>,
    skipping: bool,
    line_no: u64,
    events: Vec<AuditEvent>,
    starts: Vec<ProcessStart>,
    issues: Vec<StreamIssue>,
    next_seq: HashMap<u32, u64>,
    /// Events beyond the memory bound (counted, not kept).
    pub dropped: u64,
}

impl PythonStream {
    /// Accept any chunk of the stream.
    pub fn feed(&mut self, mut bytes: &[u8]) {
        while let Some(nl) = bytes.iter().position(|&b| b == b'\n') {
            let (head, rest) = bytes.split_at(nl);
            bytes = &rest[1..];
            if self.skipping {
                self.skipping = false;
                self.pending.clear();
                continue;
            }
            self.pending.extend_from_slice(head);
            let line = std::mem::take(&mut self.pending);
            self.line(&line);
        }
        if self.skipping {
            return;
        }
        self.pending.extend_from_slice(bytes);
        if self.pending.len() > MAX_LINE {
            self.line_no += 1;
            self.issue(StreamIssue::TooLong {
                line_no: self.line_no,
            });
            self.pending.clear();
            self.skipping = true;
        }
    }

    fn issue(&mut self, issue: StreamIssue) {
        if self.issues.len() < MAX_ISSUES {
            self.issues.push(issue);
        }
    }

    fn line(&mut self, raw: &[u8]) {
        self.line_no += 1;
        if raw.is_empty() {
            return;
        }
        if raw.len() > MAX_LINE {
            self.issue(StreamIssue::TooLong {
                line_no: self.line_no,
            });
            return;
        }
        let parsed: Option<Line> = serde_json::from_slice(raw).ok().filter(|l: &Line| l.v == 1);
        let Some(l) = parsed else {
            let excerpt = String::from_utf8_lossy(&raw[..raw.len().min(80)]).into_owned();
            self.issue(StreamIssue::Malformed {
                line_no: self.line_no,
                excerpt,
            });
            return;
        };
        // Sequence per process: a gap means lines were lost or forged.
        let expected = self.next_seq.get(&l.pid).copied();
        match expected {
            None if l.ev != "hook.start" && l.seq == 0 => {}
            None if l.ev != "hook.start" => self.issue(StreamIssue::NoStart { pid: l.pid }),
            Some(e) if e != l.seq && !(l.ev == "hook.start" && l.seq == 0) => {
                self.issue(StreamIssue::SequenceGap {
                    pid: l.pid,
                    expected: e,
                    got: l.seq,
                })
            }
            _ => {}
        }
        self.next_seq.insert(l.pid, l.seq + 1);
        if l.ev == "hook.start" {
            let s = |i: usize| {
                l.args
                    .get(i)
                    .and_then(|v| v.as_str())
                    .unwrap_or("")
                    .to_string()
            };
            self.starts.push(ProcessStart {
                pid: l.pid,
                ppid: l.ppid,
                executable: s(0),
                argv: l
                    .args
                    .get(1)
                    .and_then(|v| v.as_array())
                    .map(|a| {
                        a.iter()
                            .take(32)
                            .filter_map(|x| x.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default(),
                flags: l
                    .args
                    .get(2)
                    .and_then(|v| v.as_array())
                    .map(|a| a.iter().map(|x| x.as_bool().unwrap_or(false)).collect())
                    .unwrap_or_default(),
            });
            return;
        }
        if self.events.len() >= MAX_EVENTS {
            self.dropped += 1;
            return;
        }
        self.events.push(AuditEvent {
            pid: l.pid,
            ppid: l.ppid,
            t_ns: l.t,
            seq: l.seq,
            event: l.ev,
            args: l.args,
            origin: l.origin.as_deref().and_then(parse_origin),
            stack: l
                .stack
                .iter()
                .take(8)
                .filter_map(|s| parse_origin(s))
                .collect(),
        });
    }

    /// Everything parsed: events, process starts, issues.
    pub fn finish(mut self) -> (Vec<AuditEvent>, Vec<ProcessStart>, Vec<StreamIssue>) {
        if !self.pending.is_empty() && !self.skipping {
            let line = std::mem::take(&mut self.pending);
            self.line(&line);
        }
        (self.events, self.starts, self.issues)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(pid: u32, seq: u64, ev: &str) -> String {
        format!(
            "{{\"v\":1,\"pid\":{pid},\"ppid\":1,\"t\":{},\"seq\":{seq},\"ev\":\"{ev}\",\"args\":[\"x\",3],\"origin\":\"/build/src/setup.py:12\",\"stack\":[\"/build/src/setup.py:12\"]}}\n",
            1000 + seq
        )
    }

    #[test]
    fn parses_across_chunk_boundaries() {
        let text = line(5, 0, "hook.start") + &line(5, 1, "socket.connect") + &line(5, 2, "open");
        let bytes = text.as_bytes();
        let mut s = PythonStream::default();
        for chunk in bytes.chunks(7) {
            s.feed(chunk);
        }
        let (events, starts, issues) = s.finish();
        assert_eq!(starts.len(), 1);
        assert_eq!(events.len(), 2);
        assert!(issues.is_empty(), "{issues:?}");
        assert_eq!(events[0].event, "socket.connect");
        assert_eq!(
            events[0].origin,
            Some(Origin {
                file: "/build/src/setup.py".into(),
                line: 12
            })
        );
    }

    #[test]
    fn forged_and_broken_lines_are_issues() {
        let mut s = PythonStream::default();
        s.feed(line(5, 0, "hook.start").as_bytes());
        s.feed(b"not json at all\n");
        s.feed(b"{\"v\":1,\"pid\":\"5\",\"ppid\":1,\"t\":1,\"seq\":1,\"ev\":\"x\",\"args\":[],\"origin\":null,\"stack\":[]}\n");
        s.feed(b"{\"v\":1,\"pid\":5,\"ppid\":1,\"t\":1,\"seq\":1,\"ev\":\"x\",\"args\":[],\"origin\":null,\"stack\":[],\"extra\":1}\n");
        s.feed(line(5, 7, "open").as_bytes()); // gap: 1..6 missing
        s.feed(line(9, 3, "open").as_bytes()); // never started
        s.feed(&vec![b'a'; 10_000]);
        s.feed(b"\n");
        let (events, _, issues) = s.finish();
        assert_eq!(events.len(), 2);
        let malformed = issues
            .iter()
            .filter(|i| matches!(i, StreamIssue::Malformed { .. }))
            .count();
        assert_eq!(malformed, 3, "{issues:?}");
        assert!(issues.contains(&StreamIssue::SequenceGap {
            pid: 5,
            expected: 1,
            got: 7
        }));
        assert!(issues.contains(&StreamIssue::NoStart { pid: 9 }));
        assert!(
            issues
                .iter()
                .any(|i| matches!(i, StreamIssue::TooLong { .. }))
        );
    }

    #[test]
    fn origins() {
        assert_eq!(parse_origin("a:b.py:3").unwrap().file, "a:b.py");
        assert_eq!(parse_origin("x.py:nope"), None);
        assert_eq!(parse_origin(":3"), None);
    }
}
