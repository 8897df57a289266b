//! What a lock file asks for, whatever its format ([`super::requirements`]
//! or [`super::pylock`]): pinned sdists, the index options the file itself
//! carries, and, once the target interpreter is known, what will be done
//! with each entry ([`select`]).
//!
//! Invariants:
//! - a parser never drops an entry silently: an entry sdist-box cannot
//!   fetch (a VCS source, a range instead of a pin, a lock with wheels
//!   only) is kept with the reason, and [`select`] refuses it by name, so
//!   build-all can report it and build the others;
//! - an entry without a sha256 pin is fetched only under
//!   [`Policy::allow_unpinned`], and is then marked unpinned for the report;
//! - two entries that apply to the target and name the same project with
//!   different pins are both refused (which one is meant is ambiguous), as
//!   PEP 751 requires of installers.

use std::collections::BTreeMap;
use std::path::PathBuf;

use pep508_rs::ExtraName;
use serde::Serialize;

use super::names::{PackageName, Version};
use super::target::Target;

/// The two lock formats sdist-box reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LockFormat {
    /// pip's requirements file format with `--hash` pins.
    Requirements,
    /// PEP 751 `pylock.toml`.
    Pylock,
}

/// A parsed lock file.
#[derive(Debug, Clone)]
pub struct LockFile {
    pub path: PathBuf,
    pub format: LockFormat,
    pub pins: Vec<Pin>,
    /// Index options written in the file (pip's option lines).
    pub options: IndexOptions,
    /// Things the parser accepted but did not use, for the user to see
    /// (`--prefer-binary` ignored, an unknown pylock key, …).
    pub notes: Vec<String>,
    /// pylock's file-wide `requires-python`, checked by [`select`].
    pub requires_python: Option<String>,
    /// pylock's `environments`: at least one must hold for the target.
    pub environments: Vec<String>,
}

/// Index options a requirements file sets for itself (pip's option lines).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexOptions {
    pub index_url: Option<String>,
    pub extra_index_urls: Vec<String>,
    /// URLs, or paths already made absolute against the file's directory.
    pub find_links: Vec<String>,
    pub no_index: bool,
    pub trusted_hosts: Vec<String>,
}

/// One entry of a lock file: a project pinned to one sdist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    /// `FILE:LINE` or `FILE: packages[N]`: where the user finds the entry.
    pub origin: String,
    pub name: PackageName,
    /// None only when the entry does not pin one version (then
    /// `unsupported` says so) or a pylock entry leaves it out.
    pub version: Option<Version>,
    pub extras: Vec<ExtraName>,
    /// The environment marker, as written.
    pub marker: Option<String>,
    /// Lowercase sha256 pins; any one matching is enough, as in pip (a
    /// pip-compile line lists the sdist's and every wheel's hash).
    pub sha256: Vec<String>,
    /// Pins in other algorithms (`sha512:…`), kept for the record: only
    /// sha256 is checked.
    pub other_hashes: Vec<String>,
    /// Where the lock says the sdist is, when it says.
    pub sdist: SdistRef,
    /// pylock `packages.index`: the index the locker found it on.
    pub index: Option<String>,
    pub requires_python: Option<String>,
    /// pylock `packages.dependencies` names (informational only: PEP 751
    /// forbids installing from them).
    pub dependencies: Vec<String>,
    /// Why this entry cannot be fetched, if it cannot.
    pub unsupported: Option<String>,
    /// Why the entry has no sha256 pin, when the format explains it (a
    /// pylock entry with wheels only); used in the refusal.
    pub unpinned_reason: Option<String>,
}

/// Where a lock file says an sdist is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SdistRef {
    pub filename: Option<String>,
    pub url: Option<String>,
    /// A local file, absolute (relative paths were resolved against the
    /// lock file's directory).
    pub path: Option<PathBuf>,
    pub size: Option<u64>,
    pub upload_time: Option<String>,
}

impl LockFile {
    /// A lock file with nothing in it yet.
    pub fn empty(path: &std::path::Path, format: LockFormat) -> LockFile {
        LockFile {
            path: path.to_path_buf(),
            format,
            pins: Vec::new(),
            options: IndexOptions::default(),
            notes: Vec::new(),
            requires_python: None,
            environments: Vec::new(),
        }
    }
}

impl Pin {
    /// `name==version` (or the name alone), for messages.
    pub fn label(&self) -> String {
        match &self.version {
            Some(v) => format!("{}=={v}", self.name),
            None => self.name.to_string(),
        }
    }

    pub fn is_hash_pinned(&self) -> bool {
        !self.sha256.is_empty()
    }
}

/// A lock file that cannot be used at all (nothing of it is fetched).
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("cannot read `{path}`: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("`{path}` is larger than the limit of {limit} bytes")]
    TooLarge { path: PathBuf, limit: u64 },
    #[error("{file}:{line}: {problem}")]
    Syntax {
        file: PathBuf,
        line: usize,
        problem: String,
    },
    #[error("invalid TOML in `{path}` at line {line}, column {column}: {message}")]
    Toml {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{path}: {entry}: {problem}")]
    Field {
        path: PathBuf,
        entry: String,
        problem: String,
    },
}

/// The largest lock file read (a pip-compile file of a few thousand pins
/// with every wheel's hash is a few MiB).
pub const MAX_LOCK_BYTES: u64 = 32 << 20;

/// Read a lock file as text, bounded.
pub(super) fn read_text(path: &std::path::Path) -> Result<String, LockError> {
    use std::io::Read;
    let read = |source| LockError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .map_err(read)?
        .take(MAX_LOCK_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read)?;
    if bytes.len() as u64 > MAX_LOCK_BYTES {
        return Err(LockError::TooLarge {
            path: path.to_path_buf(),
            limit: MAX_LOCK_BYTES,
        });
    }
    String::from_utf8(bytes).map_err(|_| {
        read(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "not valid UTF-8",
        ))
    })
}

/// What the caller allows.
#[derive(Debug, Clone, Copy, Default)]
pub struct Policy {
    /// Fetch entries that carry no sha256 pin (recorded as unpinned).
    pub allow_unpinned: bool,
}

/// What will be done with one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Fetch it; `pinned` is false for an entry let through by
    /// [`Policy::allow_unpinned`].
    Fetch { pinned: bool },
    /// Not for this interpreter (its marker is false).
    Skip { reason: String },
    /// Cannot or may not be fetched; the reason names the entry's problem.
    Refuse { reason: String },
}

#[derive(Debug, Clone)]
pub struct Selected {
    pub pin: Pin,
    pub action: Action,
}

/// The lock file as a whole does not fit the target.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum SelectError {
    #[error("{file}: the lock requires Python {requires}; the target is Python {target}")]
    RequiresPython {
        file: String,
        requires: String,
        target: String,
    },
    #[error("{file}: none of the lock's environments holds for the target ({environments})")]
    Environments { file: String, environments: String },
    #[error("{file}: {source}")]
    Grammar {
        file: String,
        source: super::target::GrammarError,
    },
}

/// Decide, for the target interpreter, what to do with every entry.
pub fn select(
    lock: &LockFile,
    target: &Target,
    policy: Policy,
) -> Result<Vec<Selected>, SelectError> {
    let file = lock.path.display().to_string();
    let grammar = |source| SelectError::Grammar {
        file: file.clone(),
        source,
    };
    if let Some(requires) = &lock.requires_python
        && !target.python_satisfies(requires).map_err(grammar)?
    {
        return Err(SelectError::RequiresPython {
            file,
            requires: requires.clone(),
            target: target.python_full_version(),
        });
    }
    if !lock.environments.is_empty() {
        let mut any = false;
        for env in &lock.environments {
            any |= target.marker_holds(env, &[]).map_err(grammar)?;
        }
        if !any {
            return Err(SelectError::Environments {
                file,
                environments: lock.environments.join(" | "),
            });
        }
    }
    let mut selected: Vec<Selected> = lock
        .pins
        .iter()
        .map(|pin| Selected {
            action: action_for(pin, target, policy),
            pin: pin.clone(),
        })
        .collect();
    refuse_ambiguous(&mut selected);
    Ok(selected)
}

fn action_for(pin: &Pin, target: &Target, policy: Policy) -> Action {
    if let Some(marker) = &pin.marker {
        match target.marker_holds(marker, &[]) {
            Ok(true) => {}
            Ok(false) => {
                return Action::Skip {
                    reason: format!(
                        "its marker `{marker}` is false for Python {}",
                        target.python_full_version()
                    ),
                };
            }
            Err(e) => {
                return Action::Refuse {
                    reason: e.to_string(),
                };
            }
        }
    }
    if let Some(reason) = &pin.unsupported {
        return Action::Refuse {
            reason: reason.clone(),
        };
    }
    if let Some(requires) = &pin.requires_python {
        match target.python_satisfies(requires) {
            Ok(true) => {}
            Ok(false) => {
                return Action::Refuse {
                    reason: format!(
                        "it requires Python {requires}; the target is Python {}",
                        target.python_full_version()
                    ),
                };
            }
            Err(e) => {
                return Action::Refuse {
                    reason: e.to_string(),
                };
            }
        }
    }
    if pin.is_hash_pinned() {
        Action::Fetch { pinned: true }
    } else if policy.allow_unpinned {
        Action::Fetch { pinned: false }
    } else if let Some(reason) = &pin.unpinned_reason {
        Action::Refuse {
            reason: format!("{reason}; refused unless unpinned entries are allowed"),
        }
    } else if !pin.other_hashes.is_empty() {
        Action::Refuse {
            reason: "it is pinned only by hashes other than sha256, which sdist-box does not check; add a sha256 pin".into(),
        }
    } else {
        Action::Refuse {
            reason: "it has no sha256 pin (--hash=sha256:… or a pylock `hashes` table); refused unless unpinned entries are allowed".into(),
        }
    }
}

/// Two applicable entries for one project: the same pin twice is one
/// entry (the second is skipped); different pins are both refused.
fn refuse_ambiguous(selected: &mut [Selected]) {
    let mut first: BTreeMap<PackageName, usize> = BTreeMap::new();
    for i in 0..selected.len() {
        if !matches!(selected[i].action, Action::Fetch { .. }) {
            continue;
        }
        let name = selected[i].pin.name.clone();
        let Some(&j) = first.get(&name) else {
            first.insert(name, i);
            continue;
        };
        let (a, b) = (&selected[j].pin, &selected[i].pin);
        let same = a.version == b.version && a.sha256 == b.sha256 && a.sdist == b.sdist;
        let (origin_a, origin_b) = (a.origin.clone(), b.origin.clone());
        if same {
            selected[i].action = match &selected[j].action {
                Action::Fetch { .. } => Action::Skip {
                    reason: format!("the same pin as {origin_a}"),
                },
                other => other.clone(),
            };
        } else {
            let reason = |other: &str| {
                format!("{name} is pinned differently at {other}; which one is meant is ambiguous")
            };
            selected[i].action = Action::Refuse {
                reason: reason(&origin_a),
            };
            if matches!(selected[j].action, Action::Fetch { .. }) {
                selected[j].action = Action::Refuse {
                    reason: reason(&origin_b),
                };
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::fetch::target::tests::linux_311;

    /// A hash-pinned entry (for the tests of this module and `closure`).
    pub(crate) fn pin(origin: &str, name: &str, version: &str) -> Pin {
        Pin {
            origin: origin.into(),
            name: super::super::names::package_name(name).unwrap(),
            version: Some(super::super::names::version(version).unwrap()),
            extras: vec![],
            marker: None,
            sha256: vec!["a".repeat(64)],
            other_hashes: vec![],
            sdist: SdistRef::default(),
            index: None,
            requires_python: None,
            dependencies: vec![],
            unsupported: None,
            unpinned_reason: None,
        }
    }

    fn lock(pins: Vec<Pin>) -> LockFile {
        LockFile {
            pins,
            ..LockFile::empty(std::path::Path::new("req.txt"), LockFormat::Requirements)
        }
    }

    fn actions(lock: &LockFile, policy: Policy) -> Vec<Action> {
        select(lock, &linux_311(), policy)
            .unwrap()
            .into_iter()
            .map(|s| s.action)
            .collect()
    }

    #[test]
    fn markers_skip_hashes_gate_and_unsupported_refuse() {
        let mut old = pin("r:1", "tomli", "2.3.0");
        old.marker = Some(r#"python_version < "3.11""#.into());
        let mut bare = pin("r:2", "six", "1.17.0");
        bare.sha256.clear();
        let mut vcs = pin("r:3", "x", "1");
        vcs.unsupported = Some("a VCS source".into());
        let mut py = pin("r:4", "newer", "1");
        py.requires_python = Some(">=3.12".into());
        let ok = pin("r:5", "docopt", "0.6.2");
        let l = lock(vec![old, bare, vcs, py, ok]);
        let a = actions(&l, Policy::default());
        assert!(
            matches!(&a[0], Action::Skip { reason } if reason.contains("python_version < \"3.11\"") && reason.contains("3.11.7")),
            "{a:?}"
        );
        assert!(
            matches!(&a[1], Action::Refuse { reason } if reason.contains("no sha256 pin")),
            "{a:?}"
        );
        assert_eq!(
            a[2],
            Action::Refuse {
                reason: "a VCS source".into()
            }
        );
        assert!(
            matches!(&a[3], Action::Refuse { reason } if reason.contains(">=3.12")),
            "{a:?}"
        );
        assert_eq!(a[4], Action::Fetch { pinned: true });
        let allowed = actions(
            &l,
            Policy {
                allow_unpinned: true,
            },
        );
        assert_eq!(allowed[1], Action::Fetch { pinned: false });
    }

    #[test]
    fn the_same_project_twice_is_refused_unless_it_is_the_same_pin() {
        let mut other = pin("r:2", "Six", "1.16.0");
        other.sha256 = vec!["b".repeat(64)];
        let l = lock(vec![
            pin("r:1", "six", "1.17.0"),
            other,
            pin("r:3", "six", "1.17.0"),
        ]);
        let a = actions(&l, Policy::default());
        assert!(
            matches!(&a[0], Action::Refuse { reason } if reason.contains("r:2")),
            "{a:?}"
        );
        assert!(
            matches!(&a[1], Action::Refuse { reason } if reason.contains("r:1")),
            "{a:?}"
        );
        // The third is like the first, which is already refused: refused too.
        assert_eq!(a[2], a[0]);

        let l = lock(vec![
            pin("r:1", "six", "1.17.0"),
            pin("r:9", "six", "1.17.0"),
        ]);
        let a = actions(&l, Policy::default());
        assert_eq!(a[0], Action::Fetch { pinned: true });
        assert!(
            matches!(&a[1], Action::Skip { reason } if reason.contains("r:1")),
            "{a:?}"
        );
    }

    #[test]
    fn file_wide_requirements_must_hold() {
        let mut l = lock(vec![]);
        l.requires_python = Some(">=3.12".into());
        let err = select(&l, &linux_311(), Policy::default()).unwrap_err();
        assert!(
            err.to_string().contains(">=3.12") && err.to_string().contains("3.11.7"),
            "{err}"
        );
        l.requires_python = None;
        l.environments = vec![
            "sys_platform == 'win32'".into(),
            "sys_platform == 'darwin'".into(),
        ];
        let err = select(&l, &linux_311(), Policy::default()).unwrap_err();
        assert!(err.to_string().contains("win32"), "{err}");
        l.environments.push("sys_platform == 'linux'".into());
        assert!(select(&l, &linux_311(), Policy::default()).is_ok());
    }
}
