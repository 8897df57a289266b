//! Where sdists are looked for (an index, a find-links page or directory)
//! and the credentials that go with it.
//!
//! Invariants:
//! - a [`Location`]'s URL never carries credentials: userinfo is split off
//!   when the location is made and kept in [`Credentials`], whose `Debug`
//!   and `Display` print `***`; so a URL formatted anywhere (an error, the
//!   summary, a log line) cannot leak them;
//! - credentials are offered only to URLs with the same origin (scheme,
//!   host, port) as the location they belong to: never to another host a
//!   page links to or a server redirects to;
//! - [`redact`] is the last line for text we did not build ourselves (a
//!   lock file's URL, an HTTP library's error): any `scheme://user:pass@`
//!   becomes `scheme://***@`.

use std::fmt;

use base64::Engine;
use url::Url;

/// A user name and password for one location. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    username: String,
    password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Credentials(***)")
    }
}

impl Credentials {
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Credentials {
        Credentials {
            username: username.into(),
            password: password.into(),
        }
    }

    /// The `Authorization` header value (HTTP basic).
    pub fn authorization(&self) -> String {
        let pair = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    }

    /// Whether `text` contains the secret part (for tests and a last check
    /// before anything is shown).
    pub fn appears_in(&self, text: &str) -> bool {
        (!self.password.is_empty() && text.contains(&self.password))
            || text.contains(&self.authorization()["Basic ".len()..])
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{shown}` is not a usable URL: {problem}")]
pub struct LocationError {
    /// The text, credentials redacted.
    pub shown: String,
    pub problem: String,
}

/// An index or find-links URL, its credentials kept apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    url: Url,
    credentials: Option<Credentials>,
}

impl Location {
    /// Parse `text` (http, https or file URL), splitting off userinfo.
    pub fn parse(text: &str) -> Result<Location, LocationError> {
        let err = |problem: &str| LocationError {
            shown: crate::text::one_line(&redact(text), 300),
            problem: problem.to_string(),
        };
        let mut url = Url::parse(text.trim()).map_err(|e| err(&e.to_string()))?;
        match url.scheme() {
            "http" | "https" if url.host_str().is_some() => {}
            "http" | "https" => return Err(err("it has no host")),
            "file" => {}
            other => {
                return Err(err(&format!(
                    "the scheme `{other}` is not supported (http, https or file)"
                )));
            }
        }
        let credentials = (!url.username().is_empty() || url.password().is_some()).then(|| {
            Credentials::new(
                super::names::percent_decode(url.username()),
                url.password()
                    .map(super::names::percent_decode)
                    .unwrap_or_default(),
            )
        });
        // Cannot fail for http/https/file URLs with a host.
        let _ = url.set_username("");
        let _ = url.set_password(None);
        url.set_fragment(None);
        Ok(Location { url, credentials })
    }

    /// A location from a URL that already has no credentials.
    pub fn from_url(mut url: Url, credentials: Option<Credentials>) -> Location {
        let _ = url.set_username("");
        let _ = url.set_password(None);
        Location { url, credentials }
    }

    pub fn url(&self) -> &Url {
        &self.url
    }

    pub fn credentials(&self) -> Option<&Credentials> {
        self.credentials.as_ref()
    }

    pub fn with_credentials(mut self, credentials: Option<Credentials>) -> Location {
        self.credentials = credentials;
        self
    }

    /// The credentials to send with a request for `url`: only to this
    /// location's origin.
    pub fn credentials_for(&self, url: &Url) -> Option<&Credentials> {
        self.credentials
            .as_ref()
            .filter(|_| same_origin(&self.url, url))
    }

    /// The URL as shown to people: `https://***@host/simple/` when
    /// credentials are in use, so the user sees that they are.
    pub fn shown(&self) -> String {
        match (&self.credentials, self.url.host_str()) {
            (Some(_), Some(host)) => {
                let mut s = self.url.to_string();
                if let Some(at) = s.find(host) {
                    s.insert_str(at, "***@");
                }
                s
            }
            _ => self.url.to_string(),
        }
    }

    /// The URL with a trailing `/` (a base to join project names onto).
    pub fn as_directory(&self) -> Url {
        let mut url = self.url.clone();
        if !url.path().ends_with('/') {
            let path = format!("{}/", url.path());
            url.set_path(&path);
        }
        url
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown())
    }
}

/// Same scheme, host and port (the default port made explicit).
pub fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

/// A host in 127.0.0.0/8, `::1` or `localhost`: plain HTTP is allowed
/// there (as pip treats it as secure).
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// Remove the userinfo of every `scheme://userinfo@` in `text`.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        let authority_end = tail
            .find(['/', '?', '#', ' ', '"', '\'', '<', '>', '\n'])
            .unwrap_or(tail.len());
        let authority = &tail[..authority_end];
        match authority.rfind('@') {
            Some(i) => {
                out.push_str("***@");
                out.push_str(&authority[i + 1..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[authority_end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_split_off_and_never_shown() {
        let loc = Location::parse("https://alice:s%40cret@index.invalid:8443/simple").unwrap();
        assert_eq!(loc.url().as_str(), "https://index.invalid:8443/simple");
        assert_eq!(loc.shown(), "https://***@index.invalid:8443/simple");
        let creds = loc.credentials().unwrap();
        assert_eq!(
            creds.authorization(),
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode("alice:s@cret")
            )
        );
        assert!(
            !format!("{loc:?} {loc}").contains("s@cret") && !format!("{loc:?}").contains("alice")
        );
        assert!(creds.appears_in("token s@cret here"));
        // A token as the user name alone (GitLab, Artifactory style).
        let loc = Location::parse("https://TOKEN123@index.invalid/simple/").unwrap();
        assert!(loc.credentials().is_some() && !loc.shown().contains("TOKEN123"));
    }

    #[test]
    fn credentials_go_to_the_same_origin_only() {
        let loc = Location::parse("https://u:p@index.invalid/simple/").unwrap();
        let url = |s: &str| Url::parse(s).unwrap();
        assert!(
            loc.credentials_for(&url("https://index.invalid:443/files/x.tar.gz"))
                .is_some()
        );
        assert!(
            loc.credentials_for(&url("https://files.invalid/x.tar.gz"))
                .is_none()
        );
        assert!(
            loc.credentials_for(&url("http://index.invalid/x.tar.gz"))
                .is_none()
        );
        assert!(
            loc.credentials_for(&url("https://index.invalid:8443/x"))
                .is_none()
        );
        assert!(
            loc.credentials_for(&url("https://index.invalid.evil.invalid/x"))
                .is_none()
        );
    }

    #[test]
    fn bad_locations_are_refused_without_their_secrets() {
        let e = Location::parse("ftp://u:hunter2@x.invalid/")
            .unwrap_err()
            .to_string();
        assert!(e.contains("ftp") && !e.contains("hunter2"), "{e}");
        assert!(Location::parse("not a url").is_err());
        assert!(Location::parse("file:///srv/simple").is_ok());
    }

    #[test]
    fn redaction_of_free_text() {
        assert_eq!(
            redact(
                "GET https://u:p@h.invalid/x failed; see http://h2.invalid/ and git+ssh://git@h3/x"
            ),
            "GET https://***@h.invalid/x failed; see http://h2.invalid/ and git+ssh://***@h3/x"
        );
        assert_eq!(redact("no urls"), "no urls");
        assert_eq!(redact("https://a:b@c@d.invalid/"), "https://***@d.invalid/");
    }

    #[test]
    fn loopback_hosts() {
        for (u, want) in [
            ("http://127.0.0.1:8000/", true),
            ("http://127.8.9.10/", true),
            ("http://[::1]/", true),
            ("http://localhost/", true),
            ("http://10.0.0.1/", false),
            ("http://index.invalid/", false),
        ] {
            assert_eq!(is_loopback(&Url::parse(u).unwrap()), want, "{u}");
        }
    }
}
