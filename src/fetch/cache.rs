//! The content-addressed store of fetched sdists:
//! `CACHE/sdists/sha256/<hex>/<file name>`.
//!
//! Invariants:
//! - a file is under `sha256/<hex>/` only if its bytes hash to `<hex>`: it
//!   is written to `tmp/`, hashed, fsynced and only then renamed into
//!   place (atomic on one file system), and a hit is hashed again before it
//!   is handed out (a cache directory is writable by whoever shares it; a
//!   changed or truncated file is removed and fetched anew);
//! - concurrent fetches of one pin (`build-all --jobs N`, two machines on
//!   one shared cache) are serialized by an advisory lock per pin
//!   (`locks/<key>.lock`), so the second finds the first's file; a crashed
//!   holder's lock is released by the kernel;
//! - only plain file names of sdists are stored (no separator, no leading
//!   dot, no control character), and only regular files are ever returned.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use super::names;

#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("cache `{path}`: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("`{0}` is not a file name sdist-box stores")]
    BadName(String),
}

pub struct SdistCache {
    root: PathBuf,
}

/// An exclusive hold on one pin's key; dropped, it is released.
pub struct KeyLock {
    _lock: Flock<File>,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> CacheError + '_ {
    move |source| CacheError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A file name that is safe as the last component of a path we build.
pub fn is_plain_sdist_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('.')
        && !name.contains(['/', '\\'])
        && !name.chars().any(char::is_control)
        && names::sdist_stem(name).is_some()
}

impl SdistCache {
    /// The store under `cache_dir/sdists` (created).
    pub fn open(cache_dir: &Path) -> Result<SdistCache, CacheError> {
        let root = cache_dir.join("sdists");
        for sub in ["sha256", "tmp", "locks"] {
            let dir = root.join(sub);
            std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        }
        Ok(SdistCache { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Hold `key` (a pin's `name==version`) until the returned lock drops.
    pub fn lock(&self, key: &str) -> Result<KeyLock, CacheError> {
        let safe: String = key
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '+') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let path = self.root.join("locks").join(format!("{safe}.lock"));
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io(&path))?;
        let lock =
            Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, errno)| CacheError::Io {
                path: path.clone(),
                source: std::io::Error::from(errno),
            })?;
        Ok(KeyLock { _lock: lock })
    }

    /// The cached file with this sha256 whose name `accept` takes, hashed
    /// again; a file that no longer matches is removed.
    pub fn lookup(&self, sha256: &str, accept: &dyn Fn(&str) -> bool) -> Option<PathBuf> {
        if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let dir = self.root.join("sha256").join(sha256.to_ascii_lowercase());
        for entry in std::fs::read_dir(&dir).ok()?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            let regular = std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file());
            if !regular || !is_plain_sdist_name(&name) || !accept(&name) {
                continue;
            }
            match crate::archive::sha256_file(&path) {
                Ok(actual) if actual.eq_ignore_ascii_case(sha256) => return Some(path),
                _ => {
                    tracing::warn!(
                        "{}: cached copy no longer matches its hash; removed",
                        crate::text::path(&path)
                    );
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        None
    }

    /// A new temporary file on the cache's file system.
    pub fn temp(&self) -> Result<tempfile::NamedTempFile, CacheError> {
        let dir = self.root.join("tmp");
        tempfile::Builder::new()
            .prefix(".part-")
            .tempfile_in(&dir)
            .map_err(io(&dir))
    }

    /// Move a verified temporary file into place as `sha256/<hex>/<name>`.
    /// The caller has checked that the bytes hash to `sha256`.
    pub fn store(
        &self,
        mut tmp: tempfile::NamedTempFile,
        sha256: &str,
        filename: &str,
    ) -> Result<PathBuf, CacheError> {
        if !is_plain_sdist_name(filename) {
            return Err(CacheError::BadName(crate::text::one_line(filename, 200)));
        }
        let tmp_path = tmp.path().to_path_buf();
        tmp.flush().map_err(io(&tmp_path))?;
        tmp.as_file().sync_all().map_err(io(&tmp_path))?;
        std::fs::set_permissions(&tmp_path, std::fs::Permissions::from_mode(0o644))
            .map_err(io(&tmp_path))?;
        let dir = self.root.join("sha256").join(sha256.to_ascii_lowercase());
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let dest = dir.join(filename);
        tmp.persist(&dest).map_err(|e| CacheError::Io {
            path: dest.clone(),
            source: e.error,
        })?;
        if let Ok(d) = File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(dest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY_SHA: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn stored_files_are_found_by_hash_and_rechecked() {
        let dir = tempfile::tempdir().unwrap();
        let cache = SdistCache::open(dir.path()).unwrap();
        let tmp = cache.temp().unwrap();
        let path = cache.store(tmp, EMPTY_SHA, "six-1.17.0.tar.gz").unwrap();
        assert_eq!(
            path,
            dir.path()
                .join("sdists/sha256")
                .join(EMPTY_SHA)
                .join("six-1.17.0.tar.gz")
        );
        assert_eq!(
            cache.lookup(EMPTY_SHA, &|n| n.starts_with("six-")),
            Some(path.clone())
        );
        assert_eq!(cache.lookup(EMPTY_SHA, &|n| n.starts_with("docopt-")), None);
        assert_eq!(cache.lookup(&"0".repeat(64), &|_| true), None);
        assert_eq!(cache.lookup("../../etc", &|_| true), None);
        // Someone changes the cached file: it is not handed out, and removed.
        std::fs::write(&path, b"tampered").unwrap();
        assert_eq!(cache.lookup(EMPTY_SHA, &|_| true), None);
        assert!(!path.exists());
        // A symbolic link planted in the cache is not followed.
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink("/dev/null", &path).unwrap();
        assert_eq!(cache.lookup(EMPTY_SHA, &|_| true), None);
    }

    #[test]
    fn only_plain_sdist_names_are_stored() {
        for bad in [
            "../x-1.tar.gz",
            ".hidden-1.tar.gz",
            "a/b-1.tar.gz",
            "x-1.whl",
            "x\u{1b}-1.tar.gz",
            "",
        ] {
            assert!(!is_plain_sdist_name(bad), "{bad:?}");
        }
        let dir = tempfile::tempdir().unwrap();
        let cache = SdistCache::open(dir.path()).unwrap();
        let e = cache
            .store(cache.temp().unwrap(), EMPTY_SHA, "../evil-1.tar.gz")
            .unwrap_err();
        assert!(matches!(e, CacheError::BadName(_)));
    }

    #[test]
    fn one_key_is_held_by_one_holder_at_a_time() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let dir = tempfile::tempdir().unwrap();
        let cache = std::sync::Arc::new(SdistCache::open(dir.path()).unwrap());
        let inside = std::sync::Arc::new(AtomicUsize::new(0));
        let most = std::sync::Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (cache, inside, most) = (cache.clone(), inside.clone(), most.clone());
                std::thread::spawn(move || {
                    for _ in 0..5 {
                        let _held = cache.lock("six==1.17.0").unwrap();
                        let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(std::time::Duration::from_millis(2));
                        inside.fetch_sub(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(most.load(Ordering::SeqCst), 1);
    }
}
