//! What `build-all` shows while it fetches the sdists of a lock file, on
//! stderr: on a terminal, one redrawn line (files fetched of the total,
//! bytes so far); otherwise one plain line per finished fetch. And the
//! table of where each entry's sdist came from, after the run.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::batch::EntryResult;
use crate::fetch::progress::{Progress, Provenance, Source};

pub struct FetchProgress {
    tty: bool,
    total: usize,
    done: AtomicUsize,
    bytes: AtomicU64,
    /// Serializes the lines of concurrent workers.
    out: Mutex<()>,
}

impl FetchProgress {
    pub fn new(total: usize) -> FetchProgress {
        FetchProgress {
            tty: std::io::stderr().is_terminal()
                && std::env::var_os("TERM").is_none_or(|t| t != "dumb"),
            total,
            done: AtomicUsize::new(0),
            bytes: AtomicU64::new(0),
            out: Mutex::new(()),
        }
    }

    fn redraw(&self, what: &str) {
        let _held = self.out.lock();
        let line = format!(
            "fetching: {}/{} file(s), {} · {}",
            self.done.load(Ordering::SeqCst),
            self.total,
            size(self.bytes.load(Ordering::SeqCst)),
            crate::text::one_line(what, 60)
        );
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[K{line}");
        let _ = err.flush();
    }
}

impl Progress for FetchProgress {
    fn started(&self, _entry: &str, filename: &str, _total: Option<u64>) {
        if self.tty {
            self.redraw(filename);
        }
    }

    fn bytes(&self, entry: &str, n: u64) {
        let before = self.bytes.fetch_add(n, Ordering::SeqCst);
        // Redraw about every 256 KiB, not on every read.
        if self.tty && (before >> 18) != ((before + n) >> 18) {
            self.redraw(entry);
        }
    }

    fn finished(&self, entry: &str, outcome: Result<&Provenance, &str>) {
        self.done.fetch_add(1, Ordering::SeqCst);
        if self.tty {
            if outcome.is_ok() {
                self.redraw(entry);
            }
            return;
        }
        let t = crate::text::one_line;
        let line = match outcome {
            Ok(p) => format!(
                "{} {} {} ({}) from {}",
                source_word(p.source),
                t(&p.name, 60),
                t(p.version.as_deref().unwrap_or("-"), 30),
                size(p.size),
                t(&host_of(&p.url), 80)
            ),
            Err(why) => format!("not fetched: {}", t(why, 300)),
        };
        let _held = self.out.lock();
        eprintln!("sdist-box: {line}");
    }
}

fn source_word(s: Source) -> &'static str {
    match s {
        Source::Fetched => "fetched",
        Source::Cached => "cached",
        Source::Local => "copied",
    }
}

fn size(n: u64) -> String {
    match n {
        n if n >= 10 << 20 => format!("{} MiB", n >> 20),
        n if n >= 10 << 10 => format!("{} KiB", n >> 10),
        n => format!("{n} B"),
    }
}

/// `host:port` of a URL, or the text itself (a cache path).
fn host_of(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| {
            u.host_str().map(|h| {
                format!(
                    "{h}{}",
                    u.port().map(|p| format!(":{p}")).unwrap_or_default()
                )
            })
        })
        .unwrap_or_else(|| url.to_string())
}

/// Where each lock entry's sdist came from, for people: one line each.
pub fn sources_table(results: &[&EntryResult]) -> String {
    let t = crate::text::one_line;
    let mut out = String::new();
    for r in results {
        let Some(p) = &r.source else { continue };
        out.push_str(&format!(
            "  {:<30} {:<8} {}{} sha256:{}…\n",
            t(
                &format!("{} {}", p.name, p.version.as_deref().unwrap_or("-")),
                30
            ),
            source_word(p.source),
            if p.pinned { "" } else { "UNPINNED " },
            t(&host_of(&p.url), 60),
            &p.sha256[..p.sha256.len().min(12)],
        ));
    }
    if out.is_empty() {
        return out;
    }
    format!("\nsdists (from the lock file):\n{out}")
}
