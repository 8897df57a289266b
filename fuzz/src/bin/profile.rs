//! The profile parser on arbitrary text. Invariant: a profile parses or is
//! refused with an error that names its origin; never a panic.

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        if let Err(e) = sdist_box::policy::profile::Profile::parse(text, "fuzz.toml") {
            assert!(e.to_string().contains("fuzz.toml"), "{e}");
        }
    });
}
