//! The audit-stream parser (the package can write any bytes to the
//! descriptor). The first byte sets the chunk size the stream is fed in.
//! Invariant: no panic, and what it keeps stays within its bounds.

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let Some((&chunk, body)) = data.split_first() else {
            return;
        };
        let mut stream = sdist_box::events::python::PythonStream::default();
        for part in body.chunks(usize::from(chunk).max(1)) {
            stream.feed(part);
        }
        let (events, starts, issues) = stream.finish();
        assert!(events.len() + starts.len() <= body.len() + 1);
        assert!(issues.len() <= 1_000 + 1);
    });
}
