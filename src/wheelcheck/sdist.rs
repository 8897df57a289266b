//! The sdist as shipped, indexed: its top-level names and its files by size and hash, to tell a prebuilt binary from one built here.

use std::collections::{BTreeSet, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::model::module_name;

/// Names of directories and file stems in the sdist tree (what a derived
/// top-level name must match), and a size → paths index of its files.
pub(super) struct SdistIndex {
    pub(super) names: BTreeSet<String>,
    by_size: HashMap<u64, Vec<PathBuf>>,
    root: PathBuf,
}

impl SdistIndex {
    pub(super) fn build(root: &Path) -> SdistIndex {
        let mut index = SdistIndex {
            names: BTreeSet::new(),
            by_size: HashMap::new(),
            root: root.to_path_buf(),
        };
        let mut stack = vec![root.to_path_buf()];
        let mut seen = 0usize;
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                seen += 1;
                if seen > 1_000_000 {
                    return index;
                }
                // symlink_metadata: a link in the tree is never followed.
                let Ok(meta) = std::fs::symlink_metadata(e.path()) else {
                    continue;
                };
                let name = e.file_name().to_string_lossy().into_owned();
                if meta.is_dir() {
                    index.names.insert(module_name(&name));
                    stack.push(e.path());
                } else if meta.is_file() {
                    let stem = name.split('.').next().unwrap_or("");
                    index.names.insert(module_name(stem));
                    index.by_size.entry(meta.len()).or_default().push(e.path());
                }
            }
        }
        index
    }

    /// The sdist file (relative path) holding exactly these bytes.
    pub(super) fn find(&self, size: u64, sha256: &[u8; 32]) -> Option<String> {
        let mut candidates = self.by_size.get(&size)?.clone();
        candidates.sort();
        candidates.into_iter().find_map(|p| {
            (sha256_regular(&p, size)? == *sha256).then(|| {
                p.strip_prefix(&self.root)
                    .unwrap_or(&p)
                    .to_string_lossy()
                    .into_owned()
            })
        })
    }
}

/// The sha256 of a regular file of exactly `size` bytes, not following
/// links.
pub(super) fn sha256_regular(path: &Path, size: u64) -> Option<[u8; 32]> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut hasher = Sha256::new();
    let mut reader = file.take(size + 1);
    let mut buf = vec![0u8; 64 * 1024];
    let mut seen = 0u64;
    loop {
        let n = reader.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        seen += n as u64;
        hasher.update(&buf[..n]);
    }
    (seen == size).then(|| hasher.finalize().into())
}
