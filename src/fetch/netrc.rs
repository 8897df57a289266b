//! `~/.netrc` credentials for an index host, as pip finds them (through
//! Python's `netrc` module): `machine HOST login USER password PASS`,
//! `default`, `account` and `macdef` understood.
//!
//! Decisions: the file is `$NETRC`, else `~/.netrc`; a `~/.netrc` that
//! others may read or that another user owns is ignored with a note, as
//! Python's `netrc` refuses it (requests then uses no credentials); the
//! credentials found are used only for the host they are for (the caller
//! attaches them to that host's [`super::location::Location`]).

use std::path::{Path, PathBuf};

use super::location::Credentials;

#[derive(Debug, Clone, Default)]
pub struct Netrc {
    machines: Vec<(String, Credentials)>,
    default: Option<Credentials>,
}

/// Where the netrc file is: `$NETRC`, else `HOME/.netrc`.
pub fn netrc_path(var: &dyn Fn(&str) -> Option<String>, home: Option<&Path>) -> Option<PathBuf> {
    var("NETRC")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| home.map(|h| h.join(".netrc")))
}

impl Netrc {
    /// Read `path` if it exists. Returns the file (empty when absent or
    /// refused) and a note when it was refused or unreadable.
    pub fn load(path: &Path) -> (Netrc, Option<String>) {
        use std::os::unix::fs::MetadataExt;
        let Ok(meta) = std::fs::metadata(path) else {
            return (Netrc::default(), None);
        };
        let me = nix::unistd::geteuid().as_raw();
        if meta.uid() != me || meta.mode() & 0o077 != 0 {
            return (
                Netrc::default(),
                Some(format!(
                    "{} is ignored: it must belong to you and be readable by you alone (chmod 600), as Python's netrc requires",
                    path.display()
                )),
            );
        }
        match std::fs::read(path) {
            Ok(bytes) if bytes.len() <= 1 << 20 => {
                (Netrc::parse(&String::from_utf8_lossy(&bytes)), None)
            }
            Ok(_) => (
                Netrc::default(),
                Some(format!("{} is larger than 1 MiB; ignored", path.display())),
            ),
            Err(e) => (
                Netrc::default(),
                Some(format!("cannot read {}: {e}", path.display())),
            ),
        }
    }

    /// Parse netrc text. Unknown tokens are skipped, as Python does for
    /// the ones it does not know; a `macdef` body runs to the next empty
    /// line.
    pub fn parse(text: &str) -> Netrc {
        let mut netrc = Netrc::default();
        let mut lines = text.lines();
        let mut tokens: Vec<String> = Vec::new();
        // Tokenize line by line so a macdef body can be skipped.
        while let Some(line) = lines.next() {
            let line = line.trim_start();
            if line.starts_with('#') {
                continue;
            }
            let words: Vec<&str> = line.split_whitespace().collect();
            if let Some(i) = words.iter().position(|w| *w == "macdef") {
                tokens.extend(words[..i].iter().map(|w| w.to_string()));
                for body in lines.by_ref() {
                    if body.trim().is_empty() {
                        break;
                    }
                }
                continue;
            }
            tokens.extend(words.iter().map(|w| w.to_string()));
        }
        let mut it = tokens.into_iter().peekable();
        while let Some(tok) = it.next() {
            let host = match tok.as_str() {
                "machine" => it.next(),
                "default" => None,
                _ => continue,
            };
            let (mut login, mut password) = (String::new(), String::new());
            while let Some(key) = it.peek() {
                if key == "machine" || key == "default" {
                    break;
                }
                let key = it.next().unwrap_or_default();
                let value = it.next().unwrap_or_default();
                match key.as_str() {
                    "login" => login = value,
                    "password" => password = value,
                    _ => {}
                }
            }
            let creds = Credentials::new(login, password);
            match host {
                Some(h) => netrc.machines.push((h.to_ascii_lowercase(), creds)),
                None => netrc.default = Some(creds),
            }
        }
        netrc
    }

    /// The credentials for `host` (the first `machine` entry, else
    /// `default`).
    pub fn for_host(&self, host: &str) -> Option<&Credentials> {
        let host = host.to_ascii_lowercase();
        self.machines
            .iter()
            .find(|(h, _)| *h == host)
            .map(|(_, c)| c)
            .or(self.default.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machines_default_and_macdef() {
        let n = Netrc::parse(
            "# comment\nmachine Index.invalid login alice password s3cret\n\
             macdef init\ncd /pub\nmachine evil.invalid login no password no\n\n\
             machine other.invalid\n  login bob\n  account x\n  password pw2\n\
             default login anon password guest\n",
        );
        let auth = |h: &str| n.for_host(h).map(|c| c.authorization());
        assert_eq!(
            auth("index.invalid"),
            Some(Credentials::new("alice", "s3cret").authorization())
        );
        assert_eq!(
            auth("other.invalid"),
            Some(Credentials::new("bob", "pw2").authorization())
        );
        // The macdef body is not parsed as entries.
        assert_eq!(
            auth("evil.invalid"),
            Some(Credentials::new("anon", "guest").authorization())
        );
        assert!(
            Netrc::parse("machine a login b password c\n")
                .for_host("z")
                .is_none()
        );
    }

    #[test]
    fn a_netrc_others_can_read_is_ignored() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".netrc");
        std::fs::write(&path, "machine h login u password p\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let (n, note) = Netrc::load(&path);
        assert!(n.for_host("h").is_none());
        assert!(note.unwrap().contains("chmod 600"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let (n, note) = Netrc::load(&path);
        assert!(n.for_host("h").is_some() && note.is_none());
        let (n, note) = Netrc::load(&dir.path().join("absent"));
        assert!(n.for_host("h").is_none() && note.is_none());
        let var = |k: &str| (k == "NETRC").then(|| "/etc/custom-netrc".to_string());
        assert_eq!(
            netrc_path(&var, Some(Path::new("/home/u"))),
            Some(PathBuf::from("/etc/custom-netrc"))
        );
        assert_eq!(
            netrc_path(&|_| None, Some(Path::new("/home/u"))),
            Some(PathBuf::from("/home/u/.netrc"))
        );
    }
}
