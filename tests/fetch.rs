//! The fetch library against real HTTP: a package index served on loopback
//! by `tests/fixtures/simple_index.py` (PEP 691 JSON and PEP 503 HTML, basic
//! auth, redirects to a second loopback address, flaky and yanked files),
//! real tool-made lock files, real sdists from the test cache. Nothing here
//! needs the internet; the one check against the real configured index
//! runs only with SDIST_BOX_NETWORK_TESTS=1.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::Sdist;
use sdist_box::fetch::cache::SdistCache;
use sdist_box::fetch::config::{IndexConfig, IndexSettings, PipConfig};
use sdist_box::fetch::fetcher::{FetchError, FetchOptions, Fetched, Fetcher};
use sdist_box::fetch::http::HttpOptions;
use sdist_box::fetch::lock::{Action, IndexOptions, Policy, Selected, select};
use sdist_box::fetch::netrc::Netrc;
use sdist_box::fetch::progress::{Progress, Provenance, Source};
use sdist_box::fetch::target::Target;
use serde_json::{Value, json};

// ---------------------------------------------------------------------------
// The local index

struct IndexServer {
    child: Child,
    port: u16,
    host: &'static str,
    scheme: &'static str,
    log: PathBuf,
}

impl IndexServer {
    fn start(dir: &Path, tag: &str, mut config: Value) -> IndexServer {
        let log = dir.join(format!("{tag}.log"));
        config["log"] = json!(log);
        let host = if config.get("bind").is_some() {
            "127.0.0.2"
        } else {
            "127.0.0.1"
        };
        let scheme = if config.get("https").is_some() {
            "https"
        } else {
            "http"
        };
        let config_path = dir.join(format!("{tag}.json"));
        std::fs::write(&config_path, config.to_string()).unwrap();
        let mut child = Command::new(common::python())
            .arg(common::repo().join("tests/fixtures/simple_index.py"))
            .arg(&config_path)
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs the test index");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .strip_prefix("PORT ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("the test index did not start: {line:?}"));
        IndexServer {
            child,
            port,
            host,
            scheme,
            log,
        }
    }

    fn base(&self) -> String {
        format!("{}://{}:{}", self.scheme, self.host, self.port)
    }

    fn index(&self) -> String {
        format!("{}/simple/", self.base())
    }

    fn requests(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn downloads(&self) -> usize {
        self.requests()
            .iter()
            .filter(|r| !r["path"].as_str().unwrap().starts_with("/simple/"))
            .count()
    }
}

impl Drop for IndexServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A tiny sdist and what the index says about it.
struct Served {
    filename: String,
    path: PathBuf,
    sha256: String,
}

fn tiny(dir: &Path, name: &str, version: &str) -> Served {
    let path = Sdist::new(name, version).write(dir);
    let sha256 = sdist_box::archive::sha256_file(&path).unwrap();
    Served {
        filename: path.file_name().unwrap().to_string_lossy().into_owned(),
        path,
        sha256,
    }
}

fn listed(s: &Served) -> Value {
    json!({"filename": s.filename, "path": s.path, "sha256": s.sha256, "size": true})
}

// ---------------------------------------------------------------------------
// The library, set up as the CLI will

fn target() -> Target {
    Target::probe(Path::new(&common::python())).unwrap()
}

fn fetcher_with(
    settings: IndexSettings,
    lock: &IndexOptions,
    cache: &Path,
    netrc: &Netrc,
    retries: u32,
    options: FetchOptions,
) -> Fetcher {
    // pip's own configuration on this machine stays out of the tests.
    let config = IndexConfig::resolve(&settings, lock, &PipConfig::default(), netrc, &|| {
        panic!("no default index in tests")
    })
    .unwrap();
    let mut http = HttpOptions::from_config(&config);
    http.retries = retries;
    http.backoff = Duration::from_millis(20);
    http.timeout = Duration::from_secs(10);
    Fetcher::new(
        config,
        http,
        SdistCache::open(cache).unwrap(),
        Some(target()),
        options,
    )
    .unwrap()
}

/// No retries, no netrc, default options.
fn fetcher_for(settings: IndexSettings, cache: &Path) -> Fetcher {
    fetcher_with(
        settings,
        &IndexOptions::default(),
        cache,
        &Netrc::default(),
        0,
        FetchOptions::default(),
    )
}

fn fetcher(index: &str, cache: &Path) -> Fetcher {
    let settings = IndexSettings {
        index_url: Some(index.to_string()),
        ..Default::default()
    };
    fetcher_with(
        settings,
        &IndexOptions::default(),
        cache,
        &Netrc::default(),
        2,
        FetchOptions::default(),
    )
}

#[derive(Default)]
struct Recorder {
    bytes: AtomicU64,
    finished: Mutex<Vec<(String, Result<Source, String>)>>,
}

impl Progress for Recorder {
    fn bytes(&self, _entry: &str, n: u64) {
        self.bytes.fetch_add(n, Ordering::SeqCst);
    }
    fn finished(&self, entry: &str, outcome: Result<&Provenance, &str>) {
        self.finished.lock().unwrap().push((
            entry.to_string(),
            outcome.map(|p| p.source).map_err(str::to_string),
        ));
    }
}

/// Write `DIR/requirements.txt` and return its path.
fn requirements(dir: &Path, text: &str) -> PathBuf {
    let lock = dir.join("requirements.txt");
    std::fs::write(&lock, text).unwrap();
    lock
}

fn selected(lock_path: &Path, policy: Policy) -> Vec<Selected> {
    let lock = sdist_box::fetch::read_lock(lock_path, &|_| None).unwrap();
    select(&lock, &target(), policy).unwrap()
}

/// Fetch every entry the lock selects; results by project name.
fn fetch_all(
    f: &Fetcher,
    entries: &[Selected],
    progress: &dyn Progress,
) -> Vec<(String, Result<Fetched, FetchError>)> {
    entries
        .iter()
        .filter_map(|s| match s.action {
            Action::Fetch { pinned } => {
                Some((s.pin.name.to_string(), f.fetch(&s.pin, pinned, progress)))
            }
            _ => None,
        })
        .collect()
}

fn tmp_is_empty(cache: &Path) -> bool {
    std::fs::read_dir(cache.join("sdists/tmp"))
        .unwrap()
        .next()
        .is_none()
}

// ---------------------------------------------------------------------------

#[test]
fn a_hash_pinned_requirements_file_is_fetched_verified_and_cached() {
    let dir = tempfile::tempdir().unwrap();
    let alpha = tiny(dir.path(), "alpha", "1.0");
    let beta = tiny(dir.path(), "beta", "2.0.0");
    // A legacy file name: dashes and capitals kept, found by `my-pkg==1.0`.
    let legacy = tiny(dir.path(), "My_Pkg", "1.0");
    let legacy_name = "My_Pkg-1.0.tar.gz";
    let legacy_path = dir.path().join(legacy_name);
    std::fs::rename(&legacy.path, &legacy_path).unwrap();
    let server = IndexServer::start(
        dir.path(),
        "index",
        json!({"projects": {
            "alpha": [listed(&alpha)],
            "beta": [listed(&beta)],
            "my-pkg": [{"filename": legacy_name, "path": legacy_path, "sha256": legacy.sha256}],
        }}),
    );
    let lock = requirements(
        dir.path(),
        &format!(
            "Alpha==1.0 \\\n    --hash=sha256:{}\nbeta==2.0 ; python_version >= \"3\" --hash=sha256:{}\nmy.pkg==1.0.0 --hash=sha256:{}\n",
            alpha.sha256, beta.sha256, legacy.sha256
        ),
    );
    let cache = dir.path().join("cache");
    let entries = selected(&lock, Policy::default());
    let f = fetcher(&server.index(), &cache);
    let progress = Recorder::default();
    let results = fetch_all(&f, &entries, &progress);
    let mut total = 0;
    for (name, r) in &results {
        let got = r.as_ref().unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(got.provenance.source, Source::Fetched, "{name}");
        assert!(got.provenance.pinned);
        assert_eq!(
            sdist_box::archive::sha256_file(&got.path).unwrap(),
            got.provenance.sha256
        );
        assert!(
            got.path
                .starts_with(cache.join("sdists/sha256").join(&got.provenance.sha256))
        );
        assert!(
            got.provenance.url.starts_with(&server.base()),
            "{:?}",
            got.provenance
        );
        total += got.provenance.size;
    }
    assert_eq!(
        results[2].1.as_ref().unwrap().provenance.filename,
        legacy_name
    );
    assert_eq!(
        progress.bytes.load(Ordering::SeqCst),
        total,
        "progress saw every byte"
    );
    assert_eq!(progress.finished.lock().unwrap().len(), 3);
    assert!(tmp_is_empty(&cache));
    let json_asked = server
        .requests()
        .iter()
        .filter(|r| r["path"].as_str().unwrap().starts_with("/simple/"))
        .count();
    assert_eq!(json_asked, 3);
    println!(
        "fetched 3 sdists, {total} bytes, {} requests",
        server.requests().len()
    );

    // A second run: everything from the cache, nothing asked of the index.
    let before = server.requests().len();
    let again = fetcher(&server.index(), &cache);
    for (name, r) in fetch_all(&again, &entries, &Recorder::default()) {
        assert_eq!(r.unwrap().provenance.source, Source::Cached, "{name}");
    }
    assert_eq!(server.requests().len(), before);
}

#[test]
fn a_wrong_hash_a_missing_version_and_a_yanked_file_each_fail_alone() {
    let dir = tempfile::tempdir().unwrap();
    let good = tiny(dir.path(), "good", "1.0");
    let listed_bad = tiny(dir.path(), "listed", "1.0");
    let unlisted_bad = tiny(dir.path(), "unlisted", "1.0");
    let old = tiny(dir.path(), "versions", "1.0");
    let newer = tiny(dir.path(), "versions", "1.1");
    let yanked = tiny(dir.path(), "yanked", "3.0");
    let server = IndexServer::start(
        dir.path(),
        "index",
        json!({"projects": {
            "good": [listed(&good)],
            "listed": [listed(&listed_bad)],
            "unlisted": [{"filename": unlisted_bad.filename, "path": unlisted_bad.path, "sha256": null}],
            "versions": [listed(&old), listed(&newer)],
            "yanked": [{"filename": yanked.filename, "path": yanked.path, "sha256": yanked.sha256, "yanked": "broken metadata"}],
        }}),
    );
    let wrong = "0".repeat(64);
    let lock = requirements(
        dir.path(),
        &format!(
            "good==1.0 --hash=sha256:{}\nlisted==1.0 --hash=sha256:{wrong}\nunlisted==1.0 --hash=sha256:{wrong}\nversions==9.9 --hash=sha256:{}\nyanked==3.0 --hash=sha256:{}\n",
            good.sha256, old.sha256, yanked.sha256
        ),
    );
    let cache = dir.path().join("cache");
    let f = fetcher(&server.index(), &cache);
    let results = fetch_all(
        &f,
        &selected(&lock, Policy::default()),
        &Recorder::default(),
    );
    let messages: Vec<String> = results
        .iter()
        .map(|(_, r)| r.as_ref().err().map(|e| e.message()).unwrap_or_default())
        .collect();
    for m in &messages {
        println!("{m}");
    }
    assert!(
        results[0].1.is_ok(),
        "the good entry is fetched: {}",
        messages[0]
    );
    // The index lists another hash: refused before any download.
    assert!(
        messages[1].contains("requirements.txt:2 (listed==1.0)")
            && messages[1].contains("the index lists sha256")
            && messages[1].contains(&listed_bad.sha256),
        "{}",
        messages[1]
    );
    // Not listed: downloaded, found wrong, discarded.
    assert!(
        messages[2].contains("requirements.txt:3")
            && messages[2].contains("downloaded")
            && messages[2].contains(&unlisted_bad.sha256)
            && messages[2].contains("not used"),
        "{}",
        messages[2]
    );
    // No such version: what is there is named.
    assert!(
        messages[3].contains("no sdist of versions==9.9") && messages[3].contains("1.1, 1.0"),
        "{}",
        messages[3]
    );
    assert!(
        messages[4].contains("yanked") && messages[4].contains("broken metadata"),
        "{}",
        messages[4]
    );
    let downloads: Vec<String> = server
        .requests()
        .iter()
        .filter_map(|r| {
            r["path"]
                .as_str()
                .filter(|p| p.starts_with("/files/"))
                .map(str::to_string)
        })
        .collect();
    assert_eq!(
        downloads,
        [
            format!("/files/{}", good.filename),
            format!("/files/{}", unlisted_bad.filename)
        ],
        "only the good and the unlisted file were downloaded"
    );
    // Only the good file is in the cache; nothing half-written is left.
    let stored: Vec<_> = std::fs::read_dir(cache.join("sdists/sha256"))
        .unwrap()
        .collect();
    assert_eq!(stored.len(), 1);
    assert!(tmp_is_empty(&cache));

    // With yanked files allowed (PEP 592's exact-pin rule), it is used and
    // the yank recorded.
    let settings = IndexSettings {
        index_url: Some(server.index()),
        ..Default::default()
    };
    let allow = FetchOptions {
        allow_yanked: true,
        ..Default::default()
    };
    let f = fetcher_with(
        settings,
        &IndexOptions::default(),
        &cache,
        &Netrc::default(),
        0,
        allow,
    );
    let entries = selected(&lock, Policy::default());
    let got = f
        .fetch(&entries[4].pin, true, &Recorder::default())
        .unwrap();
    assert_eq!(got.provenance.yanked.as_deref(), Some("broken metadata"));
}

#[test]
fn credentials_go_to_the_index_host_only_and_never_appear_in_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let pkg = tiny(dir.path(), "private-pkg", "1.0");
    // "Another host": a second server on 127.0.0.2 serving the files.
    let files = IndexServer::start(
        dir.path(),
        "files",
        json!({"bind": "127.0.0.2", "projects": {"private-pkg": [listed(&pkg)]}}),
    );
    let secret = "s3cret-PASSW0RD";
    let index = IndexServer::start(
        dir.path(),
        "index",
        json!({
            "auth": format!("alice:{secret}"),
            "redirect_files": files.base(),
            "projects": {"private-pkg": [listed(&pkg)]},
        }),
    );
    let lock = requirements(
        dir.path(),
        &format!(
            "private-pkg==1.0 --hash=sha256:{}\nprivate-pkg==2.0 --hash=sha256:{}\n",
            pkg.sha256, pkg.sha256
        ),
    );
    let entries = selected(&lock, Policy::default());
    let cache = dir.path().join("cache");

    // 1. Credentials in the index URL.
    let url = format!("http://alice:{secret}@127.0.0.1:{}/simple/", index.port);
    let f = fetcher(&url, &cache);
    let progress = Recorder::default();
    let ok = f.fetch(&entries[0].pin, true, &progress).unwrap();
    let missing = f.fetch(&entries[1].pin, true, &progress).unwrap_err();
    let index_requests = index.requests();
    assert!(
        index_requests
            .iter()
            .all(|r| r["authorization"].is_string()),
        "the index got credentials: {index_requests:?}"
    );
    let file_requests = files.requests();
    assert_eq!(file_requests.len(), 1, "{file_requests:?}");
    assert!(
        file_requests[0]["authorization"].is_null(),
        "the redirect target got no credentials: {file_requests:?}"
    );
    assert!(
        ok.provenance.url.contains("127.0.0.2"),
        "{:?}",
        ok.provenance
    );
    let mut shown = vec![
        missing.message(),
        format!("{missing:?}"),
        format!("{:?}", ok.provenance),
        serde_json::to_string(&ok.provenance).unwrap(),
        f.config().notes.join("\n"),
        format!("{:?}", f.config()),
    ];
    shown.extend(
        progress
            .finished
            .lock()
            .unwrap()
            .iter()
            .map(|(e, r)| format!("{e} {r:?}")),
    );
    let encoded = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(format!("alice:{secret}"))
    };
    for text in &shown {
        assert!(
            !text.contains(secret) && !text.contains(&encoded) && !text.contains("alice"),
            "leaked in: {text}"
        );
    }
    assert!(
        missing.message().contains("***@127.0.0.1"),
        "the user sees that credentials were used: {}",
        missing.message()
    );

    // 2. Credentials from netrc, for that host only; a wrong password is a
    //    clear 401 that still names no secret.
    let netrc = Netrc::parse(&format!(
        "machine 127.0.0.1 login alice password {secret}\nmachine 127.0.0.2 login x password y\n"
    ));
    let settings = IndexSettings {
        index_url: Some(index.index()),
        ..Default::default()
    };
    let cache2 = dir.path().join("cache2");
    let f = fetcher_with(
        settings.clone(),
        &IndexOptions::default(),
        &cache2,
        &netrc,
        0,
        FetchOptions::default(),
    );
    f.fetch(&entries[0].pin, true, &Recorder::default())
        .unwrap();
    assert!(
        files
            .requests()
            .iter()
            .all(|r| r["authorization"].is_null()),
        "netrc's entry for 127.0.0.2 is not used: 127.0.0.2 is not a configured index"
    );
    let wrong = Netrc::parse("machine 127.0.0.1 login alice password wrong-one\n");
    let f = fetcher_with(
        settings,
        &IndexOptions::default(),
        &dir.path().join("cache3"),
        &wrong,
        0,
        FetchOptions::default(),
    );
    let e = f
        .fetch(&entries[0].pin, true, &Recorder::default())
        .unwrap_err()
        .message();
    assert!(
        e.contains("401") && e.contains("credentials") && !e.contains("wrong-one"),
        "{e}"
    );
}

#[test]
fn html_indexes_find_links_and_plain_http_rules() {
    let dir = tempfile::tempdir().unwrap();
    let a = tiny(dir.path(), "html-only", "0.5");
    let server = IndexServer::start(
        dir.path(),
        "index",
        json!({"html_only": true, "projects": {"html-only": [listed(&a)]}}),
    );
    let lock = requirements(
        dir.path(),
        &format!("html-only==0.5 --hash=sha256:{}\n", a.sha256),
    );
    let entries = selected(&lock, Policy::default());
    let got = fetcher(&server.index(), &dir.path().join("c1"))
        .fetch(&entries[0].pin, true, &Recorder::default())
        .unwrap();
    assert_eq!(got.provenance.source, Source::Fetched);
    assert!(
        server.requests()[0]["accept"]
            .as_str()
            .unwrap()
            .starts_with("application/vnd.pypi.simple.v1+json")
    );

    // A find-links directory with --no-index: no request at all.
    let links = dir.path().join("links");
    std::fs::create_dir(&links).unwrap();
    std::fs::copy(&a.path, links.join(&a.filename)).unwrap();
    let before = server.requests().len();
    let settings = IndexSettings {
        no_index: true,
        find_links: vec![links.display().to_string()],
        ..Default::default()
    };
    let f = fetcher_for(settings, &dir.path().join("c2"));
    let got = f
        .fetch(&entries[0].pin, true, &Recorder::default())
        .unwrap();
    assert_eq!(got.provenance.source, Source::Local);
    assert_eq!(server.requests().len(), before);

    // A find-links page (the option line of the lock itself).
    std::fs::write(
        &lock,
        format!(
            "--no-index\n--find-links {}/links/\nhtml-only==0.5 --hash=sha256:{}\n",
            server.base(),
            a.sha256
        ),
    )
    .unwrap();
    let parsed = sdist_box::fetch::read_lock(&lock, &|_| None).unwrap();
    let f = fetcher_with(
        IndexSettings::default(),
        &parsed.options,
        &dir.path().join("c3"),
        &Netrc::default(),
        0,
        FetchOptions::default(),
    );
    let got = f
        .fetch(&parsed.pins[0], true, &Recorder::default())
        .unwrap();
    assert_eq!(
        got.provenance.index.as_deref(),
        Some(format!("{}/links/", server.base()).as_str())
    );

    // Plain HTTP to a host that is not loopback is refused before any
    // connection (an unroutable .invalid name would fail anyway; the
    // message says why it was not even tried).
    let f = fetcher("http://index.invalid/simple/", &dir.path().join("c4"));
    let e = f
        .fetch(&entries[0].pin, true, &Recorder::default())
        .unwrap_err()
        .message();
    assert!(e.contains("plain HTTP") && e.contains("trusted"), "{e}");
}

#[test]
fn transient_errors_are_retried_and_size_claims_are_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let a = tiny(dir.path(), "flaky", "1.0");
    let server = IndexServer::start(
        dir.path(),
        "index",
        json!({"flaky": {(a.filename.clone()): 2}, "projects": {"flaky": [listed(&a)]}}),
    );
    let lock = requirements(
        dir.path(),
        &format!("flaky==1.0 --hash=sha256:{}\n", a.sha256),
    );
    let entries = selected(&lock, Policy::default());
    let index = server.index();
    let settings = IndexSettings {
        index_url: Some(index.clone()),
        ..Default::default()
    };
    // One retry is not enough for two 503s…
    let f = fetcher_with(
        settings.clone(),
        &IndexOptions::default(),
        &dir.path().join("c1"),
        &Netrc::default(),
        1,
        FetchOptions::default(),
    );
    let e = f
        .fetch(&entries[0].pin, true, &Recorder::default())
        .unwrap_err()
        .message();
    assert!(
        e.contains("HTTP 503") && e.contains("after 2 attempts"),
        "{e}"
    );
    // …and the third attempt, after the server's second 503, succeeds.
    let f = fetcher_with(
        settings.clone(),
        &IndexOptions::default(),
        &dir.path().join("c2"),
        &Netrc::default(),
        3,
        FetchOptions::default(),
    );
    f.fetch(&entries[0].pin, true, &Recorder::default())
        .unwrap();
    assert_eq!(server.downloads(), 3);

    // A lock that states a smaller size than the file: the download stops
    // at the stated size and is refused.
    let size = std::fs::metadata(&a.path).unwrap().len();
    let pylock = dir.path().join("pylock.toml");
    std::fs::write(
        &pylock,
        format!(
            "lock-version = \"1.0\"\ncreated-by = \"test\"\n[[packages]]\nname = \"flaky\"\nversion = \"1.0\"\nsdist = {{ url = \"{}/files/{}\", size = {}, hashes = {{ sha256 = \"{}\" }} }}\n",
            server.base(),
            a.filename,
            size - 10,
            a.sha256
        ),
    )
    .unwrap();
    let entries = selected(&pylock, Policy::default());
    let f = fetcher(&index, &dir.path().join("c3"));
    let e = f
        .fetch(&entries[0].pin, true, &Recorder::default())
        .unwrap_err()
        .message();
    assert!(e.contains(&format!("more than {} bytes", size - 10)), "{e}");
    // The caller's cap holds too.
    let small = FetchOptions {
        max_download: 100,
        ..Default::default()
    };
    let f = fetcher_with(
        settings,
        &IndexOptions::default(),
        &dir.path().join("c4"),
        &Netrc::default(),
        0,
        small,
    );
    let e = f
        .fetch(
            &selected(&lock, Policy::default())[0].pin,
            true,
            &Recorder::default(),
        )
        .unwrap_err()
        .message();
    assert!(e.contains("more than 100 bytes"), "{e}");
    assert!(tmp_is_empty(&dir.path().join("c4")));
}

/// An entry without a hash: refused, unless allowed; then fetched and
/// recorded as unpinned, with the hash it turned out to have.
#[test]
fn unpinned_entries_are_refused_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let a = tiny(dir.path(), "loose", "1.0");
    let server = IndexServer::start(
        dir.path(),
        "index",
        json!({"projects": {"loose": [listed(&a)]}}),
    );
    let lock = requirements(dir.path(), "loose==1.0\n");
    let refused = selected(&lock, Policy::default());
    assert!(
        matches!(&refused[0].action, Action::Refuse { reason } if reason.contains("no sha256 pin")),
        "{:?}",
        refused[0].action
    );
    let allowed = selected(
        &lock,
        Policy {
            allow_unpinned: true,
        },
    );
    assert_eq!(allowed[0].action, Action::Fetch { pinned: false });
    let got = fetcher(&server.index(), &dir.path().join("cache"))
        .fetch(&allowed[0].pin, false, &Recorder::default())
        .unwrap();
    assert!(!got.provenance.pinned);
    assert_eq!(got.provenance.sha256, a.sha256);
}

/// A server that lies with redirects: in a loop, or to a local file.
#[test]
fn redirect_loops_and_redirects_to_local_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let a = tiny(dir.path(), "redir", "1.0");
    let lock = requirements(
        dir.path(),
        &format!("redir==1.0 --hash=sha256:{}\n", a.sha256),
    );
    let pin = selected(&lock, Policy::default())[0].pin.clone();
    let looping = IndexServer::start(
        dir.path(),
        "loop",
        json!({"redirect_self": true, "projects": {"redir": [listed(&a)]}}),
    );
    let e = fetcher(&looping.index(), &dir.path().join("c1"))
        .fetch(&pin, true, &Recorder::default())
        .unwrap_err()
        .message();
    assert!(e.contains("more than 10 redirects"), "{e}");
    assert!(looping.downloads() <= 11, "{}", looping.downloads());
    let to_file = IndexServer::start(
        dir.path(),
        "to-file",
        json!({"redirect_files": "file://", "projects": {"redir": [listed(&a)]}}),
    );
    let e = fetcher(&to_file.index(), &dir.path().join("c2"))
        .fetch(&pin, true, &Recorder::default())
        .unwrap_err()
        .message();
    assert!(e.contains("redirect to a `file` URL refused"), "{e}");
}

#[test]
fn pylock_urls_are_used_directly_and_a_gone_url_falls_back_to_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let a = tiny(dir.path(), "direct", "1.0");
    let b = tiny(dir.path(), "moved", "2.0");
    let server = IndexServer::start(
        dir.path(),
        "index",
        json!({"projects": {"direct": [listed(&a)], "moved": [listed(&b)]}}),
    );
    let pylock = dir.path().join("pylock.toml");
    std::fs::write(
        &pylock,
        format!(
            "lock-version = \"1.0\"\ncreated-by = \"test\"\n\
             [[packages]]\nname = \"direct\"\nversion = \"1.0\"\nsdist = {{ url = \"{base}/packages/aa/{fa}\", hashes = {{ sha256 = \"{ha}\" }} }}\n\
             [[packages]]\nname = \"moved\"\nversion = \"2.0\"\nindex = \"{base}/simple/\"\nsdist = {{ url = \"{base}/gone/nothing-here.tar.gz\", name = \"{fb}\", hashes = {{ sha256 = \"{hb}\" }} }}\n",
            base = server.base(),
            fa = a.filename,
            ha = a.sha256,
            fb = b.filename,
            hb = b.sha256
        ),
    )
    .unwrap();
    // The configured index does not have it; the pylock entry's `index` does.
    let settings = IndexSettings {
        index_url: Some(format!("{}/empty/", server.base())),
        ..Default::default()
    };
    let f = fetcher_for(settings, &dir.path().join("cache"));
    let results = fetch_all(
        &f,
        &selected(&pylock, Policy::default()),
        &Recorder::default(),
    );
    let direct = results[0].1.as_ref().unwrap();
    assert_eq!(
        direct.provenance.url,
        format!("{}/packages/aa/{}", server.base(), a.filename)
    );
    assert_eq!(direct.provenance.index, None);
    let moved = results[1].1.as_ref().unwrap();
    assert_eq!(
        moved.provenance.index.as_deref(),
        Some(format!("{}/simple/moved/", server.base()).as_str())
    );
    let paths: Vec<String> = server
        .requests()
        .iter()
        .map(|r| r["path"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        paths,
        [
            format!("/packages/aa/{}", a.filename),
            "/gone/nothing-here.tar.gz".into(),
            "/empty/moved/".into(),
            "/simple/moved/".into(),
            format!("/files/{}", b.filename)
        ]
    );
}

/// The lock files real tools wrote (tests/fixtures/locks), served from the
/// test cache's real sdists on a local index.
#[test]
fn real_tool_locks_fetch_real_sdists_from_a_local_index() {
    let cached: Vec<PathBuf> = std::fs::read_dir(common::sdist_cache())
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    require!(
        cached.len() >= 5,
        "the real sdists are not in tests/.cache/sdists (scripts/setup-tests fetches them)"
    );
    let dir = tempfile::tempdir().unwrap();
    let locks = common::repo().join("tests/fixtures/locks");
    // Serve every cached sdist the locks name, under its project.
    let mut projects = serde_json::Map::new();
    for path in &cached {
        let filename = path.file_name().unwrap().to_string_lossy().into_owned();
        let project = filename
            .rsplit_once('-')
            .unwrap()
            .0
            .to_ascii_lowercase()
            .replace('_', "-");
        let sha = sdist_box::archive::sha256_file(path).unwrap();
        projects
            .entry(project)
            .or_insert_with(|| json!([]))
            .as_array_mut()
            .unwrap()
            .push(json!({"filename": filename, "path": path, "sha256": sha}));
    }
    let server = IndexServer::start(dir.path(), "index", json!({"projects": projects.clone()}));
    let available = |name: &str| projects.contains_key(name);
    for file in [
        "requirements-pip-compile.txt",
        "requirements-uv.txt",
        "pylock.uv-export.toml",
        "pylock.pip-no-binary.toml",
    ] {
        // The pylock URLs point at the registry's file host; here they
        // point at the local index, paths unchanged.
        let text = std::fs::read_to_string(locks.join(file))
            .unwrap()
            .replace("https://files.invalid/", &format!("{}/", server.base()));
        let copy = dir.path().join(file);
        std::fs::write(&copy, text).unwrap();
        let f = fetcher(&server.index(), &dir.path().join(format!("cache-{file}")));
        let entries: Vec<Selected> = selected(&copy, Policy::default())
            .into_iter()
            .filter(|s| available(s.pin.name.as_ref()))
            .collect();
        assert!(
            entries.len() >= 5,
            "{file}: {} entries with cached sdists",
            entries.len()
        );
        let results = fetch_all(&f, &entries, &Recorder::default());
        for (name, r) in &results {
            let got = r.as_ref().unwrap_or_else(|e| panic!("{file}: {name}: {e}"));
            assert!(got.provenance.pinned);
        }
        println!("{file}: {} real sdists fetched and verified", results.len());
    }
}

#[test]
fn concurrent_fetches_of_one_pin_download_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let a = tiny(dir.path(), "shared", "1.0");
    let server = IndexServer::start(
        dir.path(),
        "index",
        json!({"projects": {"shared": [listed(&a)]}}),
    );
    let lock = requirements(
        dir.path(),
        &format!("shared==1.0 --hash=sha256:{}\n", a.sha256),
    );
    let pin = selected(&lock, Policy::default())[0].pin.clone();
    let cache = dir.path().join("cache");
    let index = server.index();
    // Separate fetchers (as separate processes would be) on one cache.
    let sources: Vec<Source> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    fetcher(&index, &cache)
                        .fetch(&pin, true, &Recorder::default())
                        .unwrap()
                        .provenance
                        .source
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(server.downloads(), 1, "{:?}", server.requests());
    assert_eq!(
        sources.iter().filter(|s| **s == Source::Fetched).count(),
        1,
        "{sources:?}"
    );
}

/// Nothing fetched runs: a canary sdist whose setup.py would write a host
/// file if anything ran it is fetched, verified and cached; the file never
/// appears, and the cached copy is not executable.
#[test]
fn nothing_fetched_is_run() {
    let dir = tempfile::tempdir().unwrap();
    let canary = dir.path().join("CANARY-ran");
    let attack = format!("open({:?}, 'w').write('ran')", canary.display().to_string());
    let sdist = Sdist::setuptools_with("canary-pkg", &attack).write(dir.path());
    let sha = sdist_box::archive::sha256_file(&sdist).unwrap();
    let filename = sdist.file_name().unwrap().to_string_lossy().into_owned();
    let server = IndexServer::start(
        dir.path(),
        "index",
        json!({"projects": {"canary-pkg": [{"filename": filename, "path": sdist, "sha256": sha}]}}),
    );
    let lock = requirements(
        dir.path(),
        &format!("canary-pkg==0.1 --hash=sha256:{sha}\n"),
    );
    let f = fetcher(&server.index(), &dir.path().join("cache"));
    let got = f
        .fetch(
            &selected(&lock, Policy::default())[0].pin,
            true,
            &Recorder::default(),
        )
        .unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&got.path).unwrap().permissions().mode() & 0o111,
        0
    );
    assert!(!canary.exists(), "package code ran on the host");
}

/// TLS with a private CA: trusted through pip's `cert`, refused without it.
#[test]
fn https_with_a_private_ca_needs_pips_cert() {
    let dir = tempfile::tempdir().unwrap();
    // A private CA and a server certificate it signed.
    let (ca, cert, key) = (
        dir.path().join("ca.pem"),
        dir.path().join("cert.pem"),
        dir.path().join("key.pem"),
    );
    std::fs::write(
        dir.path().join("san.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    let openssl = |args: &[&str]| {
        Command::new("openssl")
            .args(args)
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let made = openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=sdist-box test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]) && openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        "key.pem",
        "-out",
        "cert.csr",
    ]) && openssl(&[
        "x509",
        "-req",
        "-in",
        "cert.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "san.ext",
        "-out",
        "cert.pem",
    ]);
    require!(made, "openssl could not make a test certificate");
    let a = tiny(dir.path(), "tls-pkg", "1.0");
    let server = IndexServer::start(
        dir.path(),
        "https-index",
        json!({"https": {"cert": cert, "key": key}, "projects": {"tls-pkg": [listed(&a)]}}),
    );
    let lock = requirements(
        dir.path(),
        &format!("tls-pkg==1.0 --hash=sha256:{}\n", a.sha256),
    );
    let pin = selected(&lock, Policy::default())[0].pin.clone();
    let index = server.index();
    assert!(index.starts_with("https://127.0.0.1:"));
    // The system store does not know this CA.
    let e = fetcher(&index, &dir.path().join("c1"))
        .fetch(&pin, true, &Recorder::default())
        .unwrap_err()
        .message();
    assert!(e.contains("TLS") || e.contains("certificate"), "{e}");
    // pip's `cert` names it.
    let settings = IndexSettings {
        index_url: Some(index),
        ..Default::default()
    };
    let config = IndexConfig::resolve(
        &settings,
        &IndexOptions::default(),
        &PipConfig::default(),
        &Netrc::default(),
        &|| unreachable!(),
    )
    .unwrap();
    let mut http = HttpOptions::from_config(&config);
    http.cert = Some(ca.clone());
    http.retries = 0;
    let f = Fetcher::new(
        config,
        http,
        SdistCache::open(&dir.path().join("c2")).unwrap(),
        None,
        FetchOptions::default(),
    )
    .unwrap();
    assert_eq!(
        f.fetch(&pin, true, &Recorder::default())
            .unwrap()
            .provenance
            .source,
        Source::Fetched
    );
}

/// Opt-in (SDIST_BOX_NETWORK_TESTS=1): one real pin from the index pip is
/// configured to use (pip's own default when none is), skipped otherwise.
#[test]
fn the_real_configured_index_serves_a_pinned_sdist() {
    if std::env::var_os("SDIST_BOX_NETWORK_TESTS").is_none() {
        eprintln!("skipped: set SDIST_BOX_NETWORK_TESTS=1 to fetch from the real configured index");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let python = PathBuf::from(common::python());
    let env = sdist_box::fetch::config::Environment::process(None);
    let pip = PipConfig::load(&env).unwrap();
    let netrc_file =
        sdist_box::fetch::netrc::netrc_path(&|k| std::env::var(k).ok(), env.home.as_deref());
    let netrc = netrc_file.map(|p| Netrc::load(&p).0).unwrap_or_default();
    let config = IndexConfig::resolve(
        &IndexSettings::default(),
        &IndexOptions::default(),
        &pip,
        &netrc,
        &|| sdist_box::fetch::config::pip_default_index(&python),
    )
    .unwrap();
    println!("{}", config.notes.join("\n"));
    let http = HttpOptions::from_config(&config);
    let f = Fetcher::new(
        config,
        http,
        SdistCache::open(dir.path()).unwrap(),
        Some(target()),
        FetchOptions::default(),
    )
    .unwrap();
    let lock = dir.path().join("requirements.txt");
    std::fs::write(&lock, "docopt==0.6.2 --hash=sha256:49b3a825280bd66b3aa83585ef59c4a8c82f2c8a522dbe754a8bc8d08c85c491\n").unwrap();
    let got = f
        .fetch(
            &selected(&lock, Policy::default())[0].pin,
            true,
            &Recorder::default(),
        )
        .unwrap();
    println!("{:?}", got.provenance);
    assert_eq!(got.provenance.size, 25901);
}
