//! Safe display of attacker-controlled text.
//!
//! Paths, argv, output and names that come from a package may contain
//! terminal escape sequences that could hide or forge a line of our report.
//! Everything of theirs goes through these functions before it reaches a
//! terminal.

/// Escape control characters (except newline and tab) as `\xNN`, and invalid
/// UTF-8 as `\xNN` too.
pub fn escape_bytes(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    for chunk in input.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c == '\n' || c == '\t' || !(c.is_control() || is_bidi_control(c)) {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            } else {
                out.extend_from_slice(format!("\\u{{{:x}}}", c as u32).as_bytes());
            }
        }
        for b in chunk.invalid() {
            out.extend_from_slice(format!("\\x{b:02x}").as_bytes());
        }
    }
    out
}

/// Bidirectional-override characters can reorder what a reader sees.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}')
}

/// One line of attacker text for a terminal: escaped, newlines escaped too,
/// at most `max` characters.
pub fn one_line(input: &str, max: usize) -> String {
    let escaped = String::from_utf8_lossy(&escape_bytes(input.as_bytes()))
        .replace('\n', "\\n")
        .replace('\t', "\\t");
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
    fn one_line_bounds_and_flattens() {
        assert_eq!(one_line("a\nb", 10), "a\\nb");
        assert_eq!(one_line("abcdefghij", 5), "abcd…");
    }
}
