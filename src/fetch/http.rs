//! The one HTTP client of the fetch module: pages and downloads, with
//! timeouts, bounded retries of transient failures, size caps, and
//! redirects followed by hand so that credentials stay with their origin.
//!
//! Invariants:
//! - plain `http://` is used only for loopback hosts and pip's trusted
//!   hosts, on the first request and on every redirect (as pip ignores an
//!   insecure index);
//! - credentials are attached per hop, only when the hop has the origin of
//!   the location they belong to ([`Location::credentials_for`]); a
//!   redirect to another host gets none;
//! - no body is read past its cap: a page past [`MAX_PAGE_BYTES`], a
//!   download past the caller's limit is an error, counted in bytes
//!   received, never in what a header claims;
//! - TLS is rustls with the system's CA store (or pip's `cert` bundle when
//!   configured), loaded explicitly: the crate's bundled roots are unused;
//! - URLs in errors carry no credentials (a [`Location`]'s URL has none,
//!   and every message passes through [`redact`]).

use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use url::Url;

use super::config::IndexConfig;
use super::location::{Location, is_loopback, redact};

/// The largest project page read (the biggest real ones are a few MiB of
/// JSON).
pub const MAX_PAGE_BYTES: u64 = 64 << 20;
const MAX_REDIRECTS: u32 = 10;
const CHUNK: usize = 64 * 1024;

/// How to talk to indexes.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Connect and per-read timeout (pip's `timeout`).
    pub timeout: Duration,
    /// Retries after the first attempt, for transient failures.
    pub retries: u32,
    /// The first pause between attempts; doubled each time.
    pub backoff: Duration,
    /// A CA bundle used instead of the system's (pip's `cert`).
    pub cert: Option<PathBuf>,
    pub proxy: Option<String>,
    /// Hosts that may be reached over plain HTTP.
    pub trusted_hosts: Vec<String>,
}

impl HttpOptions {
    pub fn from_config(config: &IndexConfig) -> HttpOptions {
        HttpOptions {
            timeout: config.timeout,
            retries: config.retries,
            backoff: Duration::from_millis(500),
            cert: config.cert.clone(),
            proxy: config.proxy.clone(),
            trusted_hosts: config.trusted_hosts.clone(),
        }
    }
}

#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error(
        "{url}: plain HTTP to a host that is neither loopback nor trusted; use https, or list the host in pip's trusted-host"
    )]
    Insecure { url: String },
    #[error("{url}: not found (HTTP {status})")]
    NotFound { url: String, status: u16 },
    #[error("{url}: HTTP {status}{hint}")]
    Status {
        url: String,
        status: u16,
        hint: &'static str,
    },
    #[error("{url}: {message} (gave up after {attempts} attempts)")]
    Transport {
        url: String,
        message: String,
        attempts: u32,
    },
    #[error("{url}: {problem}")]
    Redirect { url: String, problem: String },
    #[error("{url}: more than {limit} bytes; refused")]
    TooLarge { url: String, limit: u64 },
    #[error("{url}: {message}")]
    Tls { url: String, message: String },
    #[error("cannot load CA certificates ({source_name}): {problem}")]
    Certs {
        source_name: String,
        problem: String,
    },
    #[error("cannot read `{path}`: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write the download to `{path}`: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A page as received.
#[derive(Debug, Clone)]
pub struct Page {
    /// After redirects: links on the page resolve against it.
    pub url: Url,
    pub content_type: String,
    pub body: Vec<u8>,
}

/// One attempt's failure: worth another attempt, or final.
enum Failure {
    Transient(String),
    Final(HttpError),
}

pub struct Http {
    agent: ureq::Agent,
    options: HttpOptions,
}

impl Http {
    pub fn new(options: HttpOptions) -> Result<Http, HttpError> {
        let roots = root_certificates(options.cert.as_deref())?;
        let tls = ureq::tls::TlsConfig::builder()
            .root_certs(ureq::tls::RootCerts::Specific(Arc::new(roots)))
            .build();
        let mut config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_connect(Some(options.timeout))
            .timeout_recv_response(Some(options.timeout))
            .timeout_per_read(Some(options.timeout))
            .user_agent(concat!("sdist-box/", env!("CARGO_PKG_VERSION")))
            .tls_config(tls);
        if let Some(proxy) = &options.proxy {
            let proxy = ureq::Proxy::new(proxy).map_err(|e| HttpError::Transport {
                url: redact(proxy),
                message: format!("pip's proxy setting is not usable: {e}"),
                attempts: 0,
            })?;
            config = config.proxy(Some(proxy));
        }
        Ok(Http {
            agent: config.build().into(),
            options,
        })
    }

    /// GET a project page (`accept` names the types wanted). `auth` is the
    /// location whose credentials may be sent (to its origin only).
    pub fn get_page(
        &self,
        url: &Url,
        accept: &str,
        auth: Option<&Location>,
    ) -> Result<Page, HttpError> {
        if url.scheme() == "file" {
            return read_file_page(url);
        }
        self.retrying(url, || {
            let (final_url, mut response) = self.exchange(url, Some(accept), auth)?;
            let content_type = header(&response, "content-type").unwrap_or_default();
            let mut body = Vec::new();
            let read = response
                .body_mut()
                .with_config()
                .limit(MAX_PAGE_BYTES + 1)
                .reader()
                .take(MAX_PAGE_BYTES + 1)
                .read_to_end(&mut body);
            match read {
                Ok(_) if body.len() as u64 > MAX_PAGE_BYTES => {
                    Err(Failure::Final(HttpError::TooLarge {
                        url: shown(&final_url),
                        limit: MAX_PAGE_BYTES,
                    }))
                }
                Ok(_) => Ok(Page {
                    url: final_url,
                    content_type,
                    body,
                }),
                Err(e) => Err(classify_io(&final_url, &e)),
            }
        })
    }

    /// Download `url` into `file` (truncated first, and again before each
    /// retry), calling `on_bytes` as bytes arrive. Fails past `limit`
    /// bytes. Returns the bytes written and the URL they came from (after
    /// redirects).
    pub fn download(
        &self,
        url: &Url,
        auth: Option<&Location>,
        file: &mut std::fs::File,
        path: &Path,
        limit: u64,
        on_bytes: &dyn Fn(u64),
    ) -> Result<(u64, Url), HttpError> {
        let write_err = |source| HttpError::Write {
            path: path.to_path_buf(),
            source,
        };
        if url.scheme() == "file" {
            let source = url.to_file_path().map_err(|()| HttpError::Redirect {
                url: shown(url),
                problem: "not a local path".into(),
            })?;
            return copy_local(&source, file, path, limit, on_bytes).map(|n| (n, url.clone()));
        }
        self.retrying(url, || {
            file.set_len(0)
                .and_then(|()| file.rewind())
                .map_err(|e| Failure::Final(write_err(e)))?;
            let (final_url, mut response) = self.exchange(url, None, auth)?;
            let mut reader = response
                .body_mut()
                .with_config()
                .limit(limit.saturating_add(1))
                .reader();
            let mut buf = vec![0u8; CHUNK];
            let mut total = 0u64;
            loop {
                let n = match reader.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) => return Err(classify_io(&final_url, &e)),
                };
                total += n as u64;
                if total > limit {
                    return Err(Failure::Final(HttpError::TooLarge {
                        url: shown(&final_url),
                        limit,
                    }));
                }
                file.write_all(&buf[..n])
                    .map_err(|e| Failure::Final(write_err(e)))?;
                on_bytes(n as u64);
            }
            file.flush().map_err(|e| Failure::Final(write_err(e)))?;
            Ok((total, final_url.clone()))
        })
    }

    fn retrying<T>(
        &self,
        url: &Url,
        mut attempt: impl FnMut() -> Result<T, Failure>,
    ) -> Result<T, HttpError> {
        let mut delay = self.options.backoff;
        let mut attempts = 0;
        loop {
            attempts += 1;
            match attempt() {
                Ok(v) => return Ok(v),
                Err(Failure::Final(e)) => return Err(e),
                Err(Failure::Transient(message)) if attempts > self.options.retries => {
                    return Err(HttpError::Transport {
                        url: shown(url),
                        message: redact(&message),
                        attempts,
                    });
                }
                Err(Failure::Transient(message)) => {
                    tracing::info!(
                        "{}: {}; retrying in {delay:?}",
                        shown(url),
                        redact(&message)
                    );
                    std::thread::sleep(delay);
                    delay = delay.saturating_mul(2);
                }
            }
        }
    }

    /// One request, redirects followed by hand; the final URL and response
    /// (status 2xx).
    fn exchange(
        &self,
        url: &Url,
        accept: Option<&str>,
        auth: Option<&Location>,
    ) -> Result<(Url, ureq::http::Response<ureq::Body>), Failure> {
        let mut current = url.clone();
        for _ in 0..=MAX_REDIRECTS {
            self.check_secure(&current).map_err(Failure::Final)?;
            let mut request = self.agent.get(current.as_str());
            if let Some(accept) = accept {
                request = request.header("Accept", accept);
            }
            if let Some(creds) = auth.and_then(|loc| loc.credentials_for(&current)) {
                request = request.header("Authorization", creds.authorization());
            }
            let response = request.call().map_err(|e| classify(&current, e))?;
            let status = response.status().as_u16();
            match status {
                200..=299 => return Ok((current, response)),
                301 | 302 | 303 | 307 | 308 => {
                    let target = header(&response, "location").ok_or_else(|| {
                        Failure::Final(HttpError::Redirect {
                            url: shown(&current),
                            problem: format!("HTTP {status} without a Location"),
                        })
                    })?;
                    let next = current.join(&target).map_err(|e| {
                        Failure::Final(HttpError::Redirect {
                            url: shown(&current),
                            problem: format!("unusable redirect target: {e}"),
                        })
                    })?;
                    if !matches!(next.scheme(), "http" | "https") {
                        return Err(Failure::Final(HttpError::Redirect {
                            url: shown(&current),
                            problem: format!("redirect to a `{}` URL refused", next.scheme()),
                        }));
                    }
                    current = next;
                }
                404 | 410 => {
                    return Err(Failure::Final(HttpError::NotFound {
                        url: shown(&current),
                        status,
                    }));
                }
                408 | 429 | 500 | 502..=504 | 506..=599 => {
                    return Err(Failure::Transient(format!("HTTP {status}")));
                }
                _ => {
                    let hint = match status {
                        401 => {
                            " (credentials missing or refused: give them in the index URL or ~/.netrc)"
                        }
                        403 => " (forbidden: are the credentials right for this index?)",
                        _ => "",
                    };
                    return Err(Failure::Final(HttpError::Status {
                        url: shown(&current),
                        status,
                        hint,
                    }));
                }
            }
        }
        Err(Failure::Final(HttpError::Redirect {
            url: shown(url),
            problem: format!("more than {MAX_REDIRECTS} redirects"),
        }))
    }

    fn check_secure(&self, url: &Url) -> Result<(), HttpError> {
        let trusted = url.host_str().is_some_and(|h| {
            self.options
                .trusted_hosts
                .iter()
                .any(|t| trusted_matches(t, h, url.port()))
        });
        if url.scheme() == "http" && !is_loopback(url) && !trusted {
            return Err(HttpError::Insecure { url: shown(url) });
        }
        Ok(())
    }
}

/// pip's `trusted-host` is `host` or `host:port`.
fn trusted_matches(entry: &str, host: &str, port: Option<u16>) -> bool {
    match entry.rsplit_once(':') {
        Some((h, p)) if p.parse::<u16>().is_ok() => {
            h.eq_ignore_ascii_case(host) && port == p.parse().ok()
        }
        _ => entry.eq_ignore_ascii_case(host),
    }
}

fn header(response: &ureq::http::Response<ureq::Body>, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn shown(url: &Url) -> String {
    redact(url.as_str())
}

fn classify(url: &Url, e: ureq::Error) -> Failure {
    use ureq::Error as E;
    match e {
        E::Timeout(_) | E::HostNotFound | E::ConnectionFailed | E::Protocol(_) => {
            Failure::Transient(e.to_string())
        }
        E::Io(io) => classify_io(url, &io),
        E::Tls(_) | E::Pem(_) | E::Rustls(_) => Failure::Final(HttpError::Tls {
            url: shown(url),
            message: format!("TLS: {e}"),
        }),
        other => Failure::Final(HttpError::Transport {
            url: shown(url),
            message: redact(&other.to_string()),
            attempts: 1,
        }),
    }
}

fn classify_io(url: &Url, e: &std::io::Error) -> Failure {
    let message = e.to_string();
    // rustls reports a certificate it does not trust as an I/O error.
    if message.contains("certificate") || message.contains("UnknownIssuer") {
        Failure::Final(HttpError::Tls {
            url: shown(url),
            message: format!(
                "TLS: {message} (is the index's CA in the system store, or in pip's `cert`?)"
            ),
        })
    } else {
        Failure::Transient(message)
    }
}

/// The roots rustls trusts: pip's `cert` bundle, else the system store
/// (which honours `SSL_CERT_FILE` and `SSL_CERT_DIR`).
fn root_certificates(
    cert: Option<&Path>,
) -> Result<Vec<ureq::tls::Certificate<'static>>, HttpError> {
    let certs: Vec<ureq::tls::Certificate<'static>> = match cert {
        Some(path) => {
            let err = |problem: String| HttpError::Certs {
                source_name: format!("pip's cert `{}`", path.display()),
                problem,
            };
            let pem = std::fs::read(path).map_err(|e| err(e.to_string()))?;
            ureq::tls::parse_pem(&pem)
                .filter_map(|item| match item {
                    Ok(ureq::tls::PemItem::Certificate(c)) => Some(Ok(c)),
                    Ok(_) => None,
                    Err(e) => Some(Err(err(e.to_string()))),
                })
                .collect::<Result<_, _>>()?
        }
        None => rustls_native_certs::load_native_certs()
            .certs
            .iter()
            .map(|der| ureq::tls::Certificate::from_der(der.as_ref()).to_owned())
            .collect(),
    };
    if certs.is_empty() {
        return Err(HttpError::Certs {
            source_name: cert.map_or("the system store".into(), |p| p.display().to_string()),
            problem: "no certificate found".into(),
        });
    }
    Ok(certs)
}

/// A `file://` index page: the directory's `index.json`, else its
/// `index.html` (what `sdist-box index` and static mirrors write).
fn read_file_page(url: &Url) -> Result<Page, HttpError> {
    let path = url.to_file_path().map_err(|()| HttpError::NotFound {
        url: shown(url),
        status: 404,
    })?;
    for (name, content_type) in [
        ("index.json", "application/json"),
        ("index.html", "text/html"),
    ] {
        let file = path.join(name);
        match std::fs::File::open(&file) {
            Ok(f) => {
                let mut body = Vec::new();
                f.take(MAX_PAGE_BYTES + 1)
                    .read_to_end(&mut body)
                    .map_err(|source| HttpError::File {
                        path: file.clone(),
                        source,
                    })?;
                if body.len() as u64 > MAX_PAGE_BYTES {
                    return Err(HttpError::TooLarge {
                        url: shown(url),
                        limit: MAX_PAGE_BYTES,
                    });
                }
                let mut dir_url = url.clone();
                if !dir_url.path().ends_with('/') {
                    let p = format!("{}/", dir_url.path());
                    dir_url.set_path(&p);
                }
                return Ok(Page {
                    url: dir_url,
                    content_type: content_type.into(),
                    body,
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => return Err(HttpError::File { path: file, source }),
        }
    }
    Err(HttpError::NotFound {
        url: shown(url),
        status: 404,
    })
}

/// Copy a local file (find-links directory, lock file path): a regular
/// file, not through a symbolic link, bounded.
fn copy_local(
    source: &Path,
    out: &mut std::fs::File,
    path: &Path,
    limit: u64,
    on_bytes: &dyn Fn(u64),
) -> Result<u64, HttpError> {
    use std::os::unix::fs::OpenOptionsExt;
    let read_err = |e| HttpError::File {
        path: source.to_path_buf(),
        source: e,
    };
    let mut input = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(source)
        .map_err(read_err)?;
    if !input.metadata().map_err(read_err)?.is_file() {
        return Err(read_err(std::io::Error::other("not a regular file")));
    }
    out.set_len(0)
        .and_then(|()| out.rewind())
        .map_err(|e| HttpError::Write {
            path: path.to_path_buf(),
            source: e,
        })?;
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        let n = input.read(&mut buf).map_err(read_err)?;
        if n == 0 {
            return Ok(total);
        }
        total += n as u64;
        if total > limit {
            return Err(HttpError::TooLarge {
                url: source.display().to_string(),
                limit,
            });
        }
        out.write_all(&buf[..n]).map_err(|e| HttpError::Write {
            path: path.to_path_buf(),
            source: e,
        })?;
        on_bytes(n as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trusted_hosts_match_host_or_host_and_port() {
        assert!(trusted_matches(
            "mirror.invalid",
            "Mirror.invalid",
            Some(8080)
        ));
        assert!(trusted_matches(
            "mirror.invalid:8080",
            "mirror.invalid",
            Some(8080)
        ));
        assert!(!trusted_matches(
            "mirror.invalid:8080",
            "mirror.invalid",
            Some(80)
        ));
        assert!(!trusted_matches("mirror.invalid", "other.invalid", None));
    }

    #[test]
    fn plain_http_only_to_loopback_or_trusted() {
        let http = Http::new(HttpOptions {
            timeout: Duration::from_secs(1),
            retries: 0,
            backoff: Duration::ZERO,
            cert: None,
            proxy: None,
            trusted_hosts: vec!["trusted.invalid".into()],
        })
        .unwrap();
        let ok = |u: &str| http.check_secure(&Url::parse(u).unwrap()).is_ok();
        assert!(ok("http://127.0.0.1:1/simple/"));
        assert!(ok("http://trusted.invalid/simple/"));
        assert!(ok("https://anything.invalid/"));
        assert!(!ok("http://index.invalid/simple/"));
        // Nothing is sent: the refusal comes before any connection.
        let e = http
            .get_page(
                &Url::parse("http://index.invalid/simple/x/").unwrap(),
                "text/html",
                None,
            )
            .unwrap_err();
        assert!(matches!(e, HttpError::Insecure { .. }), "{e}");
    }

    #[test]
    fn a_ca_bundle_without_certificates_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let e = root_certificates(Some(&empty)).unwrap_err().to_string();
        assert!(
            e.contains("no certificate") && e.contains("empty.pem"),
            "{e}"
        );
        assert!(
            root_certificates(None).is_ok_and(|c| !c.is_empty()),
            "the system store has roots"
        );
    }
}
