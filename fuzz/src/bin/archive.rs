//! The archive extractor on arbitrary bytes (the format is told from the
//! first bytes, as for a real input: tar, gzip, bzip2, xz or zip).
//! Invariant: extraction succeeds or refuses, never panics, and never
//! writes anything outside its destination directory.

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let parent = tempfile::tempdir().expect("a temporary directory");
        let input = parent.path().join("pkg-1.0.tar.gz");
        std::fs::write(&input, data).expect("write the input");
        let dest = parent.path().join("dest");
        let limits = sdist_box::archive::Limits {
            max_entries: 200,
            max_total_bytes: 4 << 20,
            max_file_bytes: 1 << 20,
            max_ratio: 250,
        };
        let _ = sdist_box::archive::extract(&input, &dest, &limits);
        let mut names: Vec<_> = std::fs::read_dir(parent.path())
            .expect("list the parent")
            .map(|e| e.expect("an entry").file_name())
            .collect();
        names.sort();
        let dest_name = std::ffi::OsString::from("dest");
        let input_name = input.file_name().expect("a name").to_os_string();
        for name in &names {
            assert!(
                *name == dest_name || *name == input_name,
                "extraction wrote {name:?} beside its destination"
            );
        }
    });
}
