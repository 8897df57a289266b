//! One pin in, one verified sdist in the cache out.
//!
//! The procedure for a pin ([`Fetcher::fetch`]):
//! 1. hold the pin's key in the cache (concurrent fetches of it wait);
//! 2. a cached file with one of the pinned hashes is the answer (hashed
//!    again by the cache) — no network at all;
//! 3. the lock's own location (`sdist.path`, `sdist.url`) is tried first;
//!    a URL that is gone (404/410) falls back to the indexes, as PEP 751
//!    allows, the file still identified by its hash;
//! 4. otherwise the sources are searched in order — find-links, the index,
//!    the extra indexes, a pylock entry's `index` (unless there is no index
//!    at all: `--no-index`) — for files whose name is
//!    an sdist of the pin's name and version (PEP 503 names, PEP 440
//!    versions); yanked files and files whose `Requires-Python` excludes
//!    the target are set aside with their reason; a file the index lists
//!    with a sha256 that is not pinned is never downloaded;
//! 5. the candidate is downloaded into the cache's temporary directory
//!    (capped at the smaller of the caller's limit and the size the lock or
//!    index states), its size checked against those claims, its sha256
//!    against the pins, and only then moved into place.
//!
//! A failure is that pin's [`FetchError`], naming the entry; the others go
//! on. Nothing fetched is opened as anything but bytes.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use url::Url;

use super::cache::{CacheError, SdistCache};
use super::config::{FindLinks, IndexConfig};
use super::http::{Http, HttpError, HttpOptions};
use super::location::{Location, redact};
use super::lock::Pin;
use super::names;
use super::progress::{Progress, Provenance, Source};
use super::simple::{self, IndexFile, PageError};
use super::target::Target;

/// The default cap on one sdist (the largest real sdists are a few
/// hundred MiB).
pub const MAX_SDIST_BYTES: u64 = 1 << 30;

#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// No download may exceed this.
    pub max_download: u64,
    /// Use a yanked file when it is the pinned one (PEP 592 lets an exact
    /// pin do so; sdist-box refuses unless asked).
    pub allow_yanked: bool,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            max_download: MAX_SDIST_BYTES,
            allow_yanked: false,
        }
    }
}

/// A verified sdist.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// In the cache; its name is the sdist's file name.
    pub path: PathBuf,
    pub provenance: Provenance,
}

#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{entry}: no sdist of {label} found ({detail})")]
    NotFound {
        entry: String,
        label: String,
        detail: String,
    },
    #[error(
        "{entry}: sha256 mismatch for {filename}: {how} {got}, the lock pins {pinned}; the file is not used"
    )]
    HashMismatch {
        entry: String,
        filename: String,
        how: &'static str,
        got: String,
        pinned: String,
    },
    #[error(
        "{entry}: {filename} is yanked on the index{reason}; refused (a yanked file is used only when allowed)"
    )]
    Yanked {
        entry: String,
        filename: String,
        reason: String,
    },
    #[error("{entry}: {filename} requires Python {requires}; the target is Python {target}")]
    RequiresPython {
        entry: String,
        filename: String,
        requires: String,
        target: String,
    },
    #[error("{entry}: {filename} is {got} bytes; {claimed_by} says {expected}")]
    SizeMismatch {
        entry: String,
        filename: String,
        got: u64,
        expected: u64,
        claimed_by: &'static str,
    },
    #[error("{entry}: {source}")]
    Http { entry: String, source: HttpError },
    #[error("{entry}: {source}")]
    Cache { entry: String, source: CacheError },
    #[error("{entry}: {problem}")]
    Unusable { entry: String, problem: String },
    #[error("{entry}: no index or find-links location could be read: {problems}")]
    Sources { entry: String, problems: String },
}

impl FetchError {
    /// The message with any stray credentials removed (every variant's
    /// URLs already have none; this is the last check).
    pub fn message(&self) -> String {
        redact(&self.to_string())
    }
}

/// A project page, read once per run.
type Listing = Result<(String, Vec<IndexFile>), String>;

/// A file to try, with where it was found.
#[derive(Debug, Clone)]
struct Candidate {
    filename: String,
    url: Url,
    listed_sha256: Option<String>,
    size: Option<u64>,
    size_claimed_by: &'static str,
    /// The page it was listed on (for provenance).
    page: Option<String>,
    /// The location whose credentials may go with the download.
    auth: Option<Location>,
    yanked: Option<String>,
    requires_python: Option<String>,
}

/// What the sources had for one pin.
#[derive(Default)]
struct Gathered {
    candidates: Vec<Candidate>,
    looked_in: Vec<String>,
    problems: Vec<String>,
    versions: std::collections::BTreeSet<names::Version>,
}

impl Gathered {
    /// Why nothing was found: no source could be read, or what they list.
    fn nothing_found(&self, pin: &Pin, entry: &str) -> FetchError {
        if !self.looked_in.is_empty() && self.problems.len() == self.looked_in.len() {
            return FetchError::Sources {
                entry: entry.to_string(),
                problems: redact(&self.problems.join("; ")),
            };
        }
        let mut detail = format!("looked in {}", self.looked_in.join(", "));
        if self.versions.is_empty() {
            detail.push_str("; no sdist of this project is listed there");
        } else {
            let listed: Vec<String> = self
                .versions
                .iter()
                .rev()
                .take(8)
                .map(ToString::to_string)
                .collect();
            detail.push_str(&format!("; sdists listed there: {}", listed.join(", ")));
        }
        if !self.problems.is_empty() {
            detail.push_str(&format!("; errors: {}", self.problems.join("; ")));
        }
        FetchError::NotFound {
            entry: entry.to_string(),
            label: pin.label(),
            detail: redact(&detail),
        }
    }
}

/// The candidates `ok` keeps; when it keeps none, the error `why` gives
/// for the first one set aside.
fn keep(
    candidates: Vec<Candidate>,
    ok: impl Fn(&Candidate) -> bool,
    why: impl Fn(&Candidate) -> FetchError,
) -> Result<Vec<Candidate>, FetchError> {
    let (kept, set_aside): (Vec<_>, Vec<_>) = candidates.into_iter().partition(|c| ok(c));
    match (kept.is_empty(), set_aside.first()) {
        (true, Some(first)) => Err(why(first)),
        _ => Ok(kept),
    }
}

pub struct Fetcher {
    config: IndexConfig,
    http: Http,
    cache: SdistCache,
    target: Option<Target>,
    options: FetchOptions,
    pages: Mutex<HashMap<String, Arc<Listing>>>,
}

impl Fetcher {
    /// `target` is used to set aside files whose `Requires-Python`
    /// excludes the interpreter the wheels are built for.
    pub fn new(
        config: IndexConfig,
        http: HttpOptions,
        cache: SdistCache,
        target: Option<Target>,
        options: FetchOptions,
    ) -> Result<Fetcher, HttpError> {
        Ok(Fetcher {
            http: Http::new(http)?,
            config,
            cache,
            target,
            options,
            pages: Mutex::new(HashMap::new()),
        })
    }

    pub fn config(&self) -> &IndexConfig {
        &self.config
    }

    /// Fetch one pin (see the module documentation). `pinned` is false
    /// only for an entry the caller let through without a hash.
    pub fn fetch(
        &self,
        pin: &Pin,
        pinned: bool,
        progress: &dyn Progress,
    ) -> Result<Fetched, FetchError> {
        let result = self.fetch_inner(pin, pinned, progress);
        match &result {
            Ok(f) => progress.finished(&pin.origin, Ok(&f.provenance)),
            Err(e) => progress.finished(&pin.origin, Err(&e.message())),
        }
        result
    }

    fn fetch_inner(
        &self,
        pin: &Pin,
        pinned: bool,
        progress: &dyn Progress,
    ) -> Result<Fetched, FetchError> {
        let entry = format!("{} ({})", pin.origin, pin.label());
        let cache_err = |source| FetchError::Cache {
            entry: entry.clone(),
            source,
        };
        if pinned && pin.sha256.is_empty() {
            return Err(FetchError::Unusable {
                entry,
                problem: "it has no sha256 pin".into(),
            });
        }
        if pin.version.is_none() && pin.sdist.url.is_none() && pin.sdist.path.is_none() {
            return Err(FetchError::Unusable {
                entry,
                problem: "no version is pinned, so there is nothing to look for".into(),
            });
        }
        // 1. One fetch of this pin at a time.
        let _held = self.cache.lock(&pin.label()).map_err(cache_err)?;
        // 2. The cache.
        if let Some(hit) = self.cached(pin) {
            return Ok(hit);
        }
        // 3. The lock's own location.
        let mut failures: Vec<FetchError> = Vec::new();
        if let Some(candidate) = self.lock_location(pin) {
            match self.try_candidate(pin, pinned, &entry, &candidate, progress) {
                Ok(f) => return Ok(f),
                Err(FetchError::Http {
                    source: HttpError::NotFound { .. },
                    ..
                }) if pin.sdist.url.is_some() => {
                    tracing::info!("{entry}: the lock's URL is gone; searching the indexes");
                }
                Err(e) => return Err(e),
            }
        }
        // 4. The indexes and find-links.
        let candidates = self.search(pin, pinned, &entry)?;
        // 5. Download and verify; a mismatching unlisted copy is not the
        //    last word while another candidate remains.
        for candidate in &candidates {
            match self.try_candidate(pin, pinned, &entry, candidate, progress) {
                Ok(f) => return Ok(f),
                Err(e) => failures.push(e),
            }
        }
        let mismatch = failures.iter().position(|e| {
            matches!(
                e,
                FetchError::HashMismatch { .. } | FetchError::SizeMismatch { .. }
            )
        });
        Err(match mismatch {
            Some(i) => failures.swap_remove(i),
            None => failures.into_iter().next().unwrap_or(FetchError::NotFound {
                entry,
                label: pin.label(),
                detail: "no candidate".into(),
            }),
        })
    }

    fn accepts_name(pin: &Pin, filename: &str) -> bool {
        match &pin.version {
            Some(v) => names::is_sdist_of(filename, &pin.name, v),
            None => names::sdist_version(filename, &pin.name).is_some(),
        }
    }

    fn cached(&self, pin: &Pin) -> Option<Fetched> {
        for sha in &pin.sha256 {
            let accept = |name: &str| {
                Self::accepts_name(pin, name)
                    && pin.sdist.filename.as_deref().is_none_or(|f| f == name)
            };
            if let Some(path) = self.cache.lookup(sha, &accept) {
                let filename = path.file_name()?.to_string_lossy().into_owned();
                let size = std::fs::metadata(&path).ok()?.len();
                return Some(Fetched {
                    provenance: Provenance {
                        entry: pin.origin.clone(),
                        name: pin.name.to_string(),
                        version: pin.version.as_ref().map(ToString::to_string),
                        filename,
                        url: path.display().to_string(),
                        index: None,
                        sha256: sha.clone(),
                        size,
                        source: Source::Cached,
                        pinned: true,
                        yanked: None,
                    },
                    path,
                });
            }
        }
        None
    }

    /// The location a lock file gives for the sdist itself.
    fn lock_location(&self, pin: &Pin) -> Option<Candidate> {
        let filename = pin.sdist.filename.clone()?;
        let url = match (&pin.sdist.path, &pin.sdist.url) {
            (Some(path), _) => Url::from_file_path(path).ok()?,
            (None, Some(url)) => Location::parse(url).ok()?.url().clone(),
            (None, None) => return None,
        };
        let auth = self
            .locations()
            .find(|l| l.credentials_for(&url).is_some())
            .cloned();
        Some(Candidate {
            filename,
            url,
            listed_sha256: None,
            size: pin.sdist.size,
            size_claimed_by: "the lock file",
            page: None,
            auth,
            yanked: None,
            requires_python: None,
        })
    }

    /// Every configured location that could hold credentials.
    fn locations(&self) -> impl Iterator<Item = &Location> {
        self.config
            .index
            .iter()
            .chain(self.config.extra.iter())
            .chain(self.config.find_links.iter().filter_map(|f| match f {
                FindLinks::Page(l) => Some(l),
                FindLinks::Dir(_) => None,
            }))
    }

    /// The files of every source that are sdists of this pin, best first;
    /// or why there is none worth trying.
    fn search(&self, pin: &Pin, pinned: bool, entry: &str) -> Result<Vec<Candidate>, FetchError> {
        let found = self.gather(pin);
        if found.candidates.is_empty() {
            return Err(found.nothing_found(pin, entry));
        }
        let mut candidates = self.set_aside(found.candidates, pin, pinned, entry)?;
        // Listed with a matching hash first, then .tar.gz, then the rest.
        candidates.sort_by_key(|c| {
            (
                c.listed_sha256.is_none(),
                !c.filename.to_ascii_lowercase().ends_with(".tar.gz"),
            )
        });
        Ok(candidates)
    }

    /// Every source's files that name this pin's sdist.
    fn gather(&self, pin: &Pin) -> Gathered {
        let mut found = Gathered::default();
        for (source, auth) in self.sources(pin) {
            found.looked_in.push(match (&auth, Url::parse(&source)) {
                (Some(loc), Ok(url)) => Location::from_url(url, loc.credentials().cloned()).shown(),
                _ => source.clone(),
            });
            let listing = self.listing(&source, auth.as_ref());
            let (page, files) = match listing.as_ref() {
                Ok(l) => l,
                Err(problem) => {
                    found.problems.push(problem.clone());
                    continue;
                }
            };
            for f in files {
                if let Some(v) = names::sdist_version(&f.filename, &pin.name) {
                    found.versions.insert(v);
                }
                let wanted = pin
                    .sdist
                    .filename
                    .as_deref()
                    .is_none_or(|w| w == f.filename);
                if wanted && Self::accepts_name(pin, &f.filename) {
                    found.candidates.push(Candidate {
                        filename: f.filename.clone(),
                        url: f.url.clone(),
                        listed_sha256: f.sha256.clone(),
                        size: f.size.or(pin.sdist.size),
                        size_claimed_by: if f.size.is_some() {
                            "the index"
                        } else {
                            "the lock file"
                        },
                        page: Some(page.clone()),
                        auth: auth.clone().filter(|a| a.credentials_for(&f.url).is_some()),
                        yanked: f.yanked.clone(),
                        requires_python: f.requires_python.clone(),
                    });
                }
            }
        }
        found
    }

    /// Set aside yanked files (unless allowed), files for other
    /// interpreters, and files the index lists with a hash that is not
    /// pinned; an error naming the reason when nothing is left.
    fn set_aside(
        &self,
        candidates: Vec<Candidate>,
        pin: &Pin,
        pinned: bool,
        entry: &str,
    ) -> Result<Vec<Candidate>, FetchError> {
        let allow_yanked = self.options.allow_yanked;
        let usable = keep(
            candidates,
            |c| allow_yanked || c.yanked.is_none(),
            |c| {
                let reason = c.yanked.clone().unwrap_or_default();
                FetchError::Yanked {
                    entry: entry.to_string(),
                    filename: c.filename.clone(),
                    reason: if reason.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", crate::text::one_line(&reason, 200))
                    },
                }
            },
        )?;
        let fits = |c: &Candidate| {
            c.requires_python
                .as_deref()
                .is_none_or(|rp| self.python_fits(rp))
        };
        let usable = keep(usable, fits, |c| FetchError::RequiresPython {
            entry: entry.to_string(),
            filename: c.filename.clone(),
            requires: crate::text::one_line(c.requires_python.as_deref().unwrap_or_default(), 100),
            target: self
                .target
                .as_ref()
                .map(Target::python_full_version)
                .unwrap_or_default(),
        })?;
        let listed_ok = |c: &Candidate| {
            !pinned
                || c.listed_sha256
                    .as_ref()
                    .is_none_or(|h| pin.sha256.contains(h))
        };
        keep(usable, listed_ok, |c| FetchError::HashMismatch {
            entry: entry.to_string(),
            filename: c.filename.clone(),
            how: "the index lists sha256",
            got: c.listed_sha256.clone().unwrap_or_default(),
            pinned: pin.sha256.join(" or "),
        })
    }

    /// Whether the target fits a file's `Requires-Python`; an unreadable
    /// claim, or no known target, is no reason to set the file aside (pip
    /// ignores what it cannot parse, too).
    fn python_fits(&self, requires: &str) -> bool {
        self.target
            .as_ref()
            .is_none_or(|t| t.python_satisfies(requires).unwrap_or(true))
    }

    /// The pages and directories to search for this pin, in order, each
    /// with the location whose credentials apply to it.
    fn sources(&self, pin: &Pin) -> Vec<(String, Option<Location>)> {
        let project = pin.name.to_string();
        let mut out: Vec<(String, Option<Location>)> = Vec::new();
        for f in &self.config.find_links {
            match f {
                FindLinks::Dir(d) => out.push((d.display().to_string(), None)),
                FindLinks::Page(l) => out.push((l.url().to_string(), Some(l.clone()))),
            }
        }
        // A pylock entry's own index is a fallback, not under --no-index.
        let pylock_index = pin
            .index
            .as_deref()
            .filter(|_| self.config.index.is_some())
            .and_then(|i| Location::parse(i).ok());
        for loc in self
            .config
            .index
            .iter()
            .chain(self.config.extra.iter())
            .chain(pylock_index.iter())
        {
            let page = loc
                .as_directory()
                .join(&format!("{project}/"))
                .map(|u| u.to_string());
            if let Ok(page) = page
                && !out.iter().any(|(p, _)| *p == page)
            {
                out.push((page, Some(loc.clone())));
            }
        }
        out
    }

    /// A source's files, read once per run: a directory listed, a page
    /// fetched (a project missing from an index is an empty listing).
    fn listing(&self, source: &str, auth: Option<&Location>) -> Arc<Listing> {
        if let Some(hit) = self
            .pages
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(source)
        {
            return hit.clone();
        }
        let listing: Listing = match Url::parse(source) {
            Err(_) => simple::list_directory(std::path::Path::new(source))
                .map(|files| (source.to_string(), files))
                .map_err(|e| format!("{source}: {e}")),
            Ok(url) => match self.http.get_page(&url, simple::ACCEPT, auth) {
                Ok(page) => simple::parse_page(&page.content_type, &page.body, &page.url)
                    .map(|files| (redact(page.url.as_str()), files))
                    .map_err(|e: PageError| format!("{}: {e}", redact(page.url.as_str()))),
                Err(HttpError::NotFound { .. }) => Ok((redact(source), Vec::new())),
                Err(e) => Err(redact(&e.to_string())),
            },
        };
        let listing = Arc::new(listing);
        self.pages
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(source.to_string(), listing.clone());
        listing
    }

    fn try_candidate(
        &self,
        pin: &Pin,
        pinned: bool,
        entry: &str,
        c: &Candidate,
        progress: &dyn Progress,
    ) -> Result<Fetched, FetchError> {
        let cache_err = |source| FetchError::Cache {
            entry: entry.to_string(),
            source,
        };
        if !super::cache::is_plain_sdist_name(&c.filename) {
            return Err(FetchError::Unusable {
                entry: entry.to_string(),
                problem: format!(
                    "`{}` is not a plain sdist file name",
                    crate::text::one_line(&c.filename, 200)
                ),
            });
        }
        let limit = c.size.map_or(self.options.max_download, |s| {
            s.min(self.options.max_download)
        });
        let mut tmp = self.cache.temp().map_err(cache_err)?;
        let tmp_path = tmp.path().to_path_buf();
        progress.started(&pin.origin, &c.filename, c.size);
        let (got, source_url) = self
            .http
            .download(
                &c.url,
                c.auth.as_ref(),
                tmp.as_file_mut(),
                &tmp_path,
                limit,
                &|n| progress.bytes(&pin.origin, n),
            )
            .map_err(|source| FetchError::Http {
                entry: entry.to_string(),
                source,
            })?;
        if let Some(expected) = c.size
            && expected != got
        {
            return Err(FetchError::SizeMismatch {
                entry: entry.to_string(),
                filename: c.filename.clone(),
                got,
                expected,
                claimed_by: c.size_claimed_by,
            });
        }
        let actual = crate::archive::sha256_file(&tmp_path).map_err(|e| FetchError::Unusable {
            entry: entry.to_string(),
            problem: e.to_string(),
        })?;
        if pinned && !pin.sha256.contains(&actual) {
            return Err(FetchError::HashMismatch {
                entry: entry.to_string(),
                filename: c.filename.clone(),
                how: "downloaded",
                got: format!("{actual} ({got} bytes)"),
                pinned: pin.sha256.join(" or "),
            });
        }
        let path = self
            .cache
            .store(tmp, &actual, &c.filename)
            .map_err(cache_err)?;
        Ok(Fetched {
            provenance: Provenance {
                entry: pin.origin.clone(),
                name: pin.name.to_string(),
                version: pin.version.as_ref().map(ToString::to_string),
                filename: c.filename.clone(),
                url: redact(source_url.as_str()),
                index: c.page.clone(),
                sha256: actual,
                size: got,
                source: if c.url.scheme() == "file" {
                    Source::Local
                } else {
                    Source::Fetched
                },
                pinned,
                yanked: c.yanked.clone(),
            },
            path,
        })
    }
}

#[cfg(test)]
mod tests {
    /// build-all's workers share one fetcher.
    #[test]
    fn a_fetcher_is_shared_between_threads() {
        fn shared<T: Send + Sync>() {}
        shared::<super::Fetcher>();
    }
}
