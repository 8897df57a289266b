//! The destination tree: the one place that writes extracted entries.
//!
//! Invariants:
//! - The destination is fresh and private (0700), so the only links in it
//!   are the ones this module made; it keeps a map of every path it created
//!   and consults the map, not the file system, to refuse writing through a
//!   link, over an earlier entry, or over an entry differing only in case.
//! - Files are opened with `O_CREAT | O_EXCL | O_NOFOLLOW` all the same, so a
//!   mistake in the map cannot turn into a write through a link.
//! - Modes are normalized (0644/0755 for files, 0755 for directories);
//!   setuid, setgid and sticky bits are dropped and recorded; ownership is
//!   never taken from the archive.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use fs_err as fs;
use fs_err::os::unix::fs::OpenOptionsExt;

use super::limits::Budget;
use super::path::{self, Escape, Name};
use super::{ArchiveError, EntryProblem};

/// Latest mtime kept (2100-01-01); later ones are clamped to it.
const MAX_MTIME: u64 = 4_102_444_800;

/// Earliest mtime kept (1980-01-02, a day after the zip format's epoch so
/// that no time zone puts it before 1980); earlier ones are raised to it.
/// Zip-based backends (every wheel is a zip) refuse older file times:
/// "ZIP does not support timestamps before 1980".
const MIN_MTIME: u64 = 315_619_200;

/// Longest symlink target accepted (Linux's PATH_MAX).
pub(crate) const MAX_LINK_TARGET: usize = 4096;

const COPY_BUF: usize = 64 * 1024;

#[derive(Debug)]
enum Node {
    /// `explicit`: the archive had an entry for it (not just a parent of one).
    Dir {
        explicit: bool,
    },
    File,
    Symlink {
        target: String,
    },
}

/// What an entry is, as far as the tree cares.
pub(crate) struct FileMeta {
    /// Permission bits from the archive (`& 0o7777`).
    pub mode: u32,
    /// Seconds since the epoch; clamped.
    pub mtime: u64,
    /// The size the archive declares, when it declares one that the
    /// reader does not already enforce (zip).
    pub declared: Option<u64>,
}

pub(crate) struct Tree<'a> {
    dest: PathBuf,
    archive: &'a Path,
    nodes: HashMap<String, Node>,
    /// Lowercased path → the path as created, to catch case collisions.
    folded: HashMap<String, String>,
    /// First components, in the order seen.
    tops: Vec<String>,
    /// Symlinks in archive order: (normalized path, display name).
    links: Vec<(String, String)>,
    stripped: Vec<String>,
    pub(crate) budget: Budget<'a>,
}

/// What a finished extraction produced.
pub(crate) struct Finished {
    pub top_level: String,
    pub entries: u64,
    pub total_bytes: u64,
    pub stripped_modes: Vec<String>,
}

impl<'a> Tree<'a> {
    pub(crate) fn new(dest: &Path, archive: &'a Path, budget: Budget<'a>) -> Self {
        Tree {
            dest: dest.to_path_buf(),
            archive,
            nodes: HashMap::new(),
            folded: HashMap::new(),
            tops: Vec::new(),
            links: Vec::new(),
            stripped: Vec::new(),
            budget,
        }
    }

    pub(crate) fn entry_error(&self, display: &str, problem: EntryProblem) -> ArchiveError {
        ArchiveError::Entry {
            archive: self.archive.to_path_buf(),
            entry: display.to_owned(),
            problem,
        }
    }

    /// Count an entry and check its name. `Ok(None)`: the name is the
    /// archive root itself (`./`), which is skipped if it is a directory.
    pub(crate) fn begin(
        &mut self,
        raw: &[u8],
        zip_rules: bool,
        is_dir: bool,
    ) -> Result<Option<Name>, ArchiveError> {
        self.budget.add_entry()?;
        let name = path::parse_name(raw, zip_rules).map_err(|(d, p)| self.entry_error(&d, p))?;
        if name.components.is_empty() {
            if is_dir {
                return Ok(None);
            }
            return Err(self.entry_error(&name.display, EntryProblem::EmptyName));
        }
        if name.components.len() == 1 && !is_dir {
            return Err(self.entry_error(&name.display, EntryProblem::TopLevelFile));
        }
        Ok(Some(name))
    }

    fn full(&self, rel: &str) -> PathBuf {
        self.dest.join(rel)
    }

    fn note_stripped(&mut self, name: &Name, mode: u32) {
        if mode & 0o7000 != 0 {
            tracing::debug!(entry = %name.display, mode = format!("{mode:o}"), "stripped special mode bits");
            self.stripped.push(name.display.clone());
        }
    }

    /// Record a new path; refuses duplicates and case collisions. An
    /// explicit directory entry for a directory made implicitly as a parent
    /// is not a duplicate.
    fn claim(&mut self, name: &Name, node: Node) -> Result<bool, ArchiveError> {
        if let Some(old) = self.nodes.get_mut(&name.path) {
            return match (old, &node) {
                (Node::Dir { explicit }, Node::Dir { .. }) if !*explicit => {
                    *explicit = true;
                    Ok(false)
                }
                _ => Err(self.entry_error(&name.display, EntryProblem::Duplicate)),
            };
        }
        self.check_case(&name.path, &name.display)?;
        if !self.tops.contains(&name.components[0]) {
            self.tops.push(name.components[0].clone());
        }
        self.nodes.insert(name.path.clone(), node);
        Ok(true)
    }

    fn check_case(&mut self, path: &str, display: &str) -> Result<(), ArchiveError> {
        let folded = path.to_lowercase();
        if let Some(other) = self.folded.get(&folded) {
            if other != path {
                let other = path::display_str(other);
                return Err(self.entry_error(display, EntryProblem::CaseCollision { other }));
            }
        } else {
            self.folded.insert(folded, path.to_owned());
        }
        Ok(())
    }

    /// Make sure every parent of `name` is a directory this tree made,
    /// creating missing ones; refuse a parent that is a link or a file.
    fn ensure_parents(&mut self, name: &Name) -> Result<(), ArchiveError> {
        for i in 1..name.components.len() {
            let prefix = name.components[..i].join("/");
            match self.nodes.get(&prefix) {
                Some(Node::Dir { .. }) => continue,
                Some(Node::Symlink { .. }) => {
                    let link = path::display_str(&prefix);
                    return Err(self.entry_error(&name.display, EntryProblem::ThroughLink { link }));
                }
                Some(Node::File) => {
                    let file = path::display_str(&prefix);
                    return Err(self.entry_error(&name.display, EntryProblem::UnderFile { file }));
                }
                None => {
                    self.check_case(&prefix, &name.display)?;
                    if i == 1 && !self.tops.contains(&prefix) {
                        self.tops.push(prefix.clone());
                    }
                    self.make_dir(&prefix)?;
                    self.nodes.insert(prefix, Node::Dir { explicit: false });
                }
            }
        }
        Ok(())
    }

    fn make_dir(&self, rel: &str) -> Result<(), ArchiveError> {
        let full = self.full(rel);
        // mkdir never follows a link in its last component; the map
        // guarantees the earlier ones are directories we made.
        fs::create_dir(&full)?;
        fs::set_permissions(&full, std::fs::Permissions::from_mode(0o755))?;
        Ok(())
    }

    pub(crate) fn add_dir(&mut self, name: &Name, mode: u32) -> Result<(), ArchiveError> {
        self.ensure_parents(name)?;
        let new = self.claim(name, Node::Dir { explicit: true })?;
        if new {
            self.make_dir(&name.path)?;
        }
        self.note_stripped(name, mode);
        Ok(())
    }

    /// Create a regular file with the bytes of `data`, counting every byte
    /// against the limits before writing it. `read_error` turns a read
    /// failure into the right error (a limit hit inside the decompressor
    /// is not corruption).
    pub(crate) fn add_file(
        &mut self,
        name: &Name,
        meta: &FileMeta,
        data: &mut dyn Read,
        read_error: &dyn Fn(io::Error) -> ArchiveError,
    ) -> Result<(), ArchiveError> {
        if let Some(declared) = meta.declared
            && declared > self.budget.limits().max_file_bytes
        {
            return Err(self.too_large(name));
        }
        self.ensure_parents(name)?;
        self.claim(name, Node::File)?;
        let mut file = self.create_file(&name.path)?;
        self.copy_counted(name, data, &mut file, meta.declared, read_error)?;
        self.finish_file(&file, name, meta.mode, meta.mtime)
    }

    fn too_large(&self, name: &Name) -> ArchiveError {
        self.entry_error(
            &name.display,
            EntryProblem::FileTooLarge {
                limit: self.budget.limits().max_file_bytes,
            },
        )
    }

    fn create_file(&self, rel: &str) -> Result<fs::File, ArchiveError> {
        let file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(self.full(rel))?;
        Ok(file)
    }

    fn copy_counted(
        &mut self,
        name: &Name,
        data: &mut dyn Read,
        file: &mut fs::File,
        declared: Option<u64>,
        read_error: &dyn Fn(io::Error) -> ArchiveError,
    ) -> Result<(), ArchiveError> {
        let mut buf = vec![0u8; COPY_BUF];
        let mut written: u64 = 0;
        loop {
            let n = match data.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(read_error(e)),
            };
            let next = written + n as u64;
            if let Some(declared) = declared
                && next > declared
            {
                return Err(
                    self.entry_error(&name.display, EntryProblem::LargerThanDeclared { declared })
                );
            }
            if next > self.budget.limits().max_file_bytes {
                return Err(self.too_large(name));
            }
            self.budget.add_written(n as u64)?;
            file.write_all(&buf[..n])?;
            written = next;
        }
        Ok(())
    }

    fn finish_file(
        &mut self,
        file: &fs::File,
        name: &Name,
        mode: u32,
        mtime: u64,
    ) -> Result<(), ArchiveError> {
        let perm = if mode & 0o100 != 0 { 0o755 } else { 0o644 };
        file.set_permissions(std::fs::Permissions::from_mode(perm))?;
        let when = SystemTime::UNIX_EPOCH + Duration::from_secs(mtime.clamp(MIN_MTIME, MAX_MTIME));
        file.set_modified(when)?;
        self.note_stripped(name, mode);
        Ok(())
    }

    pub(crate) fn add_symlink(
        &mut self,
        name: &Name,
        target_raw: &[u8],
        mode: u32,
    ) -> Result<(), ArchiveError> {
        let target = match std::str::from_utf8(target_raw) {
            Ok(t) if !t.contains('\0') && t.len() <= MAX_LINK_TARGET => t.to_owned(),
            _ => {
                let target = path::display_bytes(target_raw);
                return Err(self.entry_error(&name.display, EntryProblem::BadLinkTarget { target }));
            }
        };
        self.check_link(name, &name.path, &target)?;
        self.ensure_parents(name)?;
        self.claim(
            name,
            Node::Symlink {
                target: target.clone(),
            },
        )?;
        fs::os::unix::fs::symlink(&target, self.full(&name.path))?;
        self.links.push((name.path.clone(), name.display.clone()));
        self.note_stripped(name, mode);
        Ok(())
    }

    /// Resolve a link's target through the links known so far.
    fn check_link(&self, name: &Name, path: &str, target: &str) -> Result<(), ArchiveError> {
        let parent: Vec<String> = path.split('/').map(str::to_owned).collect();
        let parent = &parent[..parent.len() - 1];
        let lookup = |p: &str| match self.nodes.get(p) {
            Some(Node::Symlink { target }) => Some(target.as_str()),
            _ => None,
        };
        let target_shown = path::display_str(target);
        match path::resolve_link(parent, target, lookup) {
            Ok(()) => Ok(()),
            Err(Escape::Absolute) => Err(self.entry_error(
                &name.display,
                EntryProblem::LinkAbsolute {
                    target: target_shown,
                },
            )),
            Err(Escape::Empty) => Err(self.entry_error(
                &name.display,
                EntryProblem::BadLinkTarget {
                    target: target_shown,
                },
            )),
            Err(Escape::LeavesTree) => Err(self.entry_error(
                &name.display,
                EntryProblem::LinkEscapes {
                    target: target_shown,
                },
            )),
            Err(Escape::TooManyHops) => Err(self.entry_error(
                &name.display,
                EntryProblem::LinkLoop {
                    target: target_shown,
                },
            )),
        }
    }

    /// A hard link becomes a copy of an earlier regular file of the archive
    /// (a copy cannot alias anything outside the tree, and is counted
    /// against the limits like any other file).
    pub(crate) fn add_hardlink(
        &mut self,
        name: &Name,
        target_raw: &[u8],
        mtime: u64,
    ) -> Result<(), ArchiveError> {
        let bad = |tree: &Self| {
            tree.entry_error(
                &name.display,
                EntryProblem::HardlinkTarget {
                    target: path::display_bytes(target_raw),
                },
            )
        };
        let target = match path::parse_name(target_raw, false) {
            Ok(t) if matches!(self.nodes.get(&t.path), Some(Node::File)) => t,
            _ => return Err(bad(self)),
        };
        self.ensure_parents(name)?;
        self.claim(name, Node::File)?;
        let mut source = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(self.full(&target.path))?;
        let mode = source.metadata()?.permissions().mode() & 0o777;
        let mut file = self.create_file(&name.path)?;
        // fs-err's reads already name the file.
        self.copy_counted(name, &mut source, &mut file, None, &ArchiveError::Io)?;
        self.finish_file(&file, name, mode, mtime)
    }

    /// Final checks once every entry is in: every link resolves inside the
    /// tree given *all* links (a later link can change where an earlier one
    /// points), and there is exactly one top-level directory.
    pub(crate) fn finish(self) -> Result<Finished, ArchiveError> {
        for (path, display) in &self.links {
            let Some(Node::Symlink { target }) = self.nodes.get(path) else {
                continue;
            };
            let name = Name {
                display: display.clone(),
                path: path.clone(),
                components: Vec::new(),
                trailing_slash: false,
            };
            self.check_link(&name, path, target)?;
        }
        let layout = |reason: String| ArchiveError::Layout {
            archive: self.archive.to_path_buf(),
            reason,
        };
        match self.tops.as_slice() {
            [] => Err(layout(
                "is empty: an sdist has exactly one top-level directory".into(),
            )),
            [top] => match self.nodes.get(top) {
                Some(Node::Dir { .. }) => Ok(Finished {
                    top_level: top.clone(),
                    entries: self.budget.entries(),
                    total_bytes: self.budget.written(),
                    stripped_modes: self.stripped,
                }),
                _ => Err(layout(format!(
                    "has a top-level entry `{}` that is not a directory: an sdist has exactly one top-level directory",
                    path::display_str(top)
                ))),
            },
            tops => {
                const SHOWN: usize = 5;
                let mut list: Vec<String> = tops
                    .iter()
                    .take(SHOWN)
                    .map(|t| path::display_str(t))
                    .collect();
                if tops.len() > SHOWN {
                    list.push("…".into());
                }
                Err(layout(format!(
                    "has {} top-level entries ({}): an sdist has exactly one top-level directory",
                    tops.len(),
                    list.join(", ")
                )))
            }
        }
    }
}
