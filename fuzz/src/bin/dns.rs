//! The DNS question decoder (a payload the build tried to send to port
//! 53). Invariant: no panic; a decoded name is printable ASCII within the
//! DNS bounds (255 octets, each escaped to at most 4 characters).

fn check(decoded: Option<(String, u16)>) {
    if let Some((name, _)) = decoded {
        assert!(name.bytes().all(|b| b.is_ascii_graphic()), "{name:?}");
        assert!(name.len() <= 255 * 4, "{}", name.len());
    }
}

fn main() {
    afl::fuzz!(|data: &[u8]| {
        check(sdist_box::events::dns::query_name(data));
        check(sdist_box::events::dns::query_name_tcp(data));
    });
}
