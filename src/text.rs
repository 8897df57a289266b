//! Safe display of attacker-controlled text.
//!
//! Paths, argv, output and names that come from a package may contain
//! terminal escape sequences that could hide or forge a line of our report,
//! and so may the names of the sdists a user is handed (file names are
//! bytes: anything but `/` and NUL). Everything of theirs goes through
//! these functions before it reaches a terminal: [`path`] and [`shown`]
//! in format arguments, [`one_line`] where a bound is wanted,
//! [`escape_bytes`] for output kept line by line, and [`Escaping`] around a
//! whole stream (diagnostics). One escaping rule underlies all of them.
//!
//! Invariant: what these return or write contains no control character but
//! newline and tab (none at all from [`path`], [`shown`], [`one_line`]), no
//! bidirectional control, and is valid UTF-8 (invalid bytes become `\xNN`).
//! `tests/terminal_text.rs` keeps `.display()` out of printing macros.

use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Escape control characters (except newline and tab) as `\u{NN}`, and
/// invalid UTF-8 as `\xNN`.
pub fn escape_bytes(input: &[u8]) -> Vec<u8> {
    let mut out = String::with_capacity(input.len());
    let _ = escape_into(input, false, &mut out);
    out.into_bytes()
}

/// The one escaping rule. `flat`: newline and tab escaped too (one line).
fn escape_into(input: &[u8], flat: bool, out: &mut impl fmt::Write) -> fmt::Result {
    for chunk in input.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\n' if flat => out.write_str("\\n")?,
                '\t' if flat => out.write_str("\\t")?,
                '\n' | '\t' => out.write_char(c)?,
                c if c.is_control() || is_bidi_control(c) => write!(out, "\\u{{{:x}}}", c as u32)?,
                c => out.write_char(c)?,
            }
        }
        for b in chunk.invalid() {
            write!(out, "\\x{b:02x}")?;
        }
    }
    Ok(())
}

/// Text of theirs in a format argument: displayed escaped, on one line.
#[derive(Debug, Clone, Copy)]
pub struct Shown<'a>(&'a [u8]);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        escape_into(self.0, true, f)
    }
}

/// `text` for a terminal: `eprintln!("… {}", text::shown(&name))`.
pub fn shown(text: &str) -> Shown<'_> {
    Shown(text.as_bytes())
}

/// A path for a terminal, from its bytes (an invalid UTF-8 byte shows as
/// `\xNN`, not as a replacement character): use instead of `.display()`.
pub fn path(p: &Path) -> Shown<'_> {
    Shown(p.as_os_str().as_bytes())
}

/// A path's last component for a terminal (the whole path if it has none).
pub fn file_name(p: &Path) -> Shown<'_> {
    Shown(p.file_name().unwrap_or(p.as_os_str()).as_bytes())
}

/// JSON for a terminal: serde escapes the C0 controls but leaves DEL, the
/// C1 controls (U+009B is CSI) and bidirectional controls raw. Those can
/// only stand inside JSON strings, where `\uXXXX` means the same (a raw
/// newline is the pretty printer's own, between values).
pub fn json(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c != '\n' && (c.is_control() || is_bidi_control(c)) {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// A writer that escapes everything written through it (newlines and tabs
/// kept): for streams that carry their text, such as diagnostics. Each
/// write is escaped on its own, so a character split across two writes
/// shows as `\xNN` bytes, never raw.
pub struct Escaping<W>(pub W);

impl<W: std::io::Write> std::io::Write for Escaping<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write_all(&escape_bytes(buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// Bidirectional-override characters can reorder what a reader sees.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}')
}

/// One line of attacker text for a terminal: escaped, newlines escaped too,
/// at most `max` characters.
pub fn one_line(input: &str, max: usize) -> String {
    let escaped = shown(input).to_string();
    if escaped.chars().count() > max {
        let mut s: String = escaped.chars().take(max.saturating_sub(1)).collect();
        s.push('…');
        s
    } else {
        escaped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_terminal_sequences_and_bidi() {
        let out = escape_bytes(b"ok\x1b[2Jgone\xff\n\xe2\x80\xaeevil");
        let out = String::from_utf8(out).unwrap();
        assert_eq!(out, "ok\\u{1b}[2Jgone\\xff\n\\u{202e}evil");
    }

    #[test]
    fn paths_show_their_bytes_escaped_on_one_line() {
        use std::ffi::OsStr;
        let raw = b"/in/evil\x1b]8;;x:127.0.0.1\x07link\xe2\x80\xae\r\n\x9b\xff.tar.gz";
        let p = Path::new(OsStr::from_bytes(raw));
        let out = path(p).to_string();
        assert_eq!(
            out,
            "/in/evil\\u{1b}]8;;x:127.0.0.1\\u{7}link\\u{202e}\\u{d}\\n\\x9b\\xff.tar.gz"
        );
        assert!(!out.chars().any(|c| c.is_control()));
        assert_eq!(file_name(p).to_string(), out.trim_start_matches("/in/"));
        // U+009B (CSI as a character) is a control too.
        assert_eq!(shown("a\u{9b}2J").to_string(), "a\\u{9b}2J");
    }

    #[test]
    fn json_keeps_its_meaning_without_raw_controls() {
        let v = serde_json::json!({"name": "a\u{202e}b\u{9b}c\u{7f}\u{1b}", "n": 1});
        let text = serde_json::to_string_pretty(&v).unwrap();
        let shown = json(&text);
        assert!(
            !shown
                .chars()
                .any(|c| (c.is_control() && c != '\n') || is_bidi_control(c))
        );
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&shown).unwrap(),
            v
        );
    }

    #[test]
    fn the_escaping_writer_passes_lines_through_escaped() {
        use std::io::Write;
        let mut w = Escaping(Vec::new());
        w.write_all(b"WARN name \x1b[31mred\x1b[0m\n").unwrap();
        assert_eq!(w.0, b"WARN name \\u{1b}[31mred\\u{1b}[0m\n");
    }

    #[test]
    fn one_line_bounds_and_flattens() {
        assert_eq!(one_line("a\nb", 10), "a\\nb");
        assert_eq!(one_line("abcdefghij", 5), "abcd…");
    }
}
