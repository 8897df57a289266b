//! The terminal escaping of attacker text. Invariant (src/text.rs): the
//! output is UTF-8 with no control character but newline and tab (none at
//! all on one line), no bidirectional control, and `one_line` keeps its
//! bound.

fn is_bidi(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}')
}

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let escaped = String::from_utf8(sdist_box::text::escape_bytes(data)).expect("UTF-8");
        assert!(
            escaped
                .chars()
                .all(|c| c == '\n' || c == '\t' || !(c.is_control() || is_bidi(c))),
            "{escaped:?}"
        );
        let text = String::from_utf8_lossy(data);
        let line = sdist_box::text::one_line(&text, 40);
        assert!(line.chars().count() <= 40, "{line:?}");
        assert!(line.chars().all(|c| !(c.is_control() || is_bidi(c))), "{line:?}");
        let shown = sdist_box::text::shown(&text).to_string();
        assert!(shown.chars().all(|c| !(c.is_control() || is_bidi(c))), "{shown:?}");
    });
}
