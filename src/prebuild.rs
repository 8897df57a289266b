//! The pre-build hook (`--pre-build CMD`): a command of the user's, run
//! outside the sandbox after extraction and before any of the package's
//! code runs.
//!
//! It gets the stage-event metadata as JSON on stdin and the extracted
//! source tree as its working directory. A non-zero exit vetoes the build;
//! changes it makes to the tree (a team's patches for packages it rebuilds)
//! are detected by hashing the tree before and after, and recorded file by
//! file in the report. A hook that outlives its timeout is killed with its
//! whole process group.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

/// How much of the hook's output the report keeps (its end).
const OUTPUT_TAIL: usize = 8 * 1024;

/// What the pre-build hook did, as recorded in the report.
#[derive(Debug, Clone, Serialize)]
pub struct PreBuild {
    pub command: String,
    /// `allowed` (exit 0) or `vetoed`.
    pub verdict: Verdict,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub timed_out: bool,
    pub duration_ms: f64,
    /// The end of what the hook wrote to stdout and stderr.
    pub output_tail: String,
    /// True when the hook changed the source tree.
    pub modified: bool,
    /// Each file the hook added, removed or changed, with sha256 before and
    /// after (`null` where it did not exist; `link:TARGET` for symlinks).
    pub changes: Vec<FileChange>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Allowed,
    Vetoed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileChange {
    /// Relative to the source tree.
    pub path: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// A digest of every entry of a tree: path → sha256 of a file, `link:T` of
/// a symlink, `dir` of a directory. Links are never followed.
pub fn tree_digest(root: &Path) -> std::io::Result<BTreeMap<String, String>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) -> std::io::Result<()> {
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let path = entry.path();
            let rel = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .to_string_lossy()
                .into_owned();
            let kind = entry.file_type()?;
            if kind.is_symlink() {
                let target = fs::read_link(&path)?;
                out.insert(rel, format!("link:{}", target.display()));
            } else if kind.is_dir() {
                out.insert(rel, "dir".to_string());
                walk(root, &path, out)?;
            } else if kind.is_file() {
                let sha = crate::archive::sha256_file(&path)
                    .map_err(|e| std::io::Error::other(format!("{}: {e}", path.display())))?;
                out.insert(rel, sha);
            } else {
                out.insert(rel, "special".to_string());
            }
        }
        Ok(())
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out)?;
    Ok(out)
}

/// What changed between two digests of the same tree, in path order.
/// Directories only count when added or removed.
pub fn diff(
    before: &BTreeMap<String, String>,
    after: &BTreeMap<String, String>,
) -> Vec<FileChange> {
    let mut changes = Vec::new();
    for (path, old) in before {
        match after.get(path) {
            Some(new) if new == old => {}
            new => changes.push(FileChange {
                path: path.clone(),
                before: Some(old.clone()),
                after: new.cloned(),
            }),
        }
    }
    for (path, new) in after {
        if !before.contains_key(path) {
            changes.push(FileChange {
                path: path.clone(),
                before: None,
                after: Some(new.clone()),
            });
        }
    }
    changes.sort_by(|a, b| a.path.cmp(&b.path));
    changes
}

/// Run `command` with `sh -c` in `cwd`, `input` on its stdin, its output
/// copied to our stderr (prefixed) and kept in part; killed with its
/// process group after `timeout`.
pub fn run(command: &str, cwd: &Path, input: &[u8], timeout: Duration) -> anyhow::Result<PreBuild> {
    let started = Instant::now();
    let mut child = Command::new("/bin/sh")
        .arg("-c")
        .arg(command)
        .current_dir(cwd)
        .env("SDIST_BOX_STAGE", "pre-build")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| anyhow::anyhow!("cannot start the pre-build hook `{command}`: {e}"))?;
    let pgid = child.id() as i32;

    let mut stdin = child.stdin.take().expect("piped");
    let input = input.to_vec();
    // A hook that does not read its input must not block us: write from a
    // thread, and ignore a closed pipe.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let tail = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
    let readers: Vec<_> = [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .flatten()
    .map(|mut pipe| {
        let tail = tail.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let chunk = &buf[..n];
                for line in String::from_utf8_lossy(chunk).lines() {
                    if !line.trim().is_empty() {
                        eprintln!("pre-build: {}", crate::text::one_line(line, 400));
                    }
                }
                let mut t = tail.lock().unwrap_or_else(|p| p.into_inner());
                t.extend_from_slice(chunk);
                if t.len() > 2 * OUTPUT_TAIL {
                    let cut = t.len() - OUTPUT_TAIL;
                    t.drain(..cut);
                }
            }
        })
    })
    .collect();

    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if started.elapsed() >= timeout {
            timed_out = true;
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pgid),
                nix::sys::signal::Signal::SIGKILL,
            );
            break child.wait()?;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    // The group may live on (a daemonised child holding the pipes): end it
    // so the readers finish.
    let _ = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(pgid),
        nix::sys::signal::Signal::SIGKILL,
    );
    let _ = writer.join();
    for r in readers {
        let _ = r.join();
    }
    let tail = tail.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let start = tail.len().saturating_sub(OUTPUT_TAIL);
    let output_tail =
        String::from_utf8_lossy(&crate::text::escape_bytes(&tail[start..])).into_owned();
    let ok = status.success() && !timed_out;
    Ok(PreBuild {
        command: command.to_string(),
        verdict: if ok {
            Verdict::Allowed
        } else {
            Verdict::Vetoed
        },
        exit_code: status.code(),
        signal: status.signal(),
        timed_out,
        duration_ms: started.elapsed().as_secs_f64() * 1e3,
        output_tail,
        modified: false,
        changes: Vec::new(),
    })
}

impl PreBuild {
    /// Why the build was refused, for the report's outcome.
    pub fn veto_reason(&self) -> String {
        let how = if self.timed_out {
            "did not finish in time and was killed".to_string()
        } else if let Some(code) = self.exit_code {
            format!("exited with code {code}")
        } else {
            format!("was killed by signal {}", self.signal.unwrap_or(0))
        };
        let said = self
            .output_tail
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .map(|l| format!(": {}", crate::text::one_line(l.trim(), 300)))
            .unwrap_or_default();
        format!(
            "refused by the pre-build hook `{}`, which {how}{said}",
            crate::text::one_line(&self.command, 200)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_and_diff_see_added_removed_changed_and_links() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir(root.join("pkg")).unwrap();
        fs::write(root.join("pkg/a.py"), "a = 1\n").unwrap();
        fs::write(root.join("gone.txt"), "x").unwrap();
        std::os::unix::fs::symlink("pkg/a.py", root.join("link")).unwrap();
        let before = tree_digest(root).unwrap();
        fs::write(root.join("pkg/a.py"), "a = 2\n").unwrap();
        fs::remove_file(root.join("gone.txt")).unwrap();
        fs::write(root.join("pkg/new.py"), "").unwrap();
        let after = tree_digest(root).unwrap();
        let changes = diff(&before, &after);
        let paths: Vec<&str> = changes.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(paths, ["gone.txt", "pkg/a.py", "pkg/new.py"]);
        assert!(changes[0].after.is_none());
        assert!(changes[2].before.is_none());
        assert_ne!(changes[1].before, changes[1].after);
        assert_eq!(before["link"], "link:pkg/a.py");
        assert!(diff(&after, &after).is_empty());
    }

    #[test]
    fn hook_gets_stdin_and_cwd_and_can_veto() {
        let dir = tempfile::tempdir().unwrap();
        let r = run(
            "read line; test \"$line\" = hello && pwd > seen && exit 7",
            dir.path(),
            b"hello\n",
            Duration::from_secs(20),
        )
        .unwrap();
        assert_eq!(r.exit_code, Some(7));
        assert_eq!(r.verdict, Verdict::Vetoed);
        let seen = fs::read_to_string(dir.path().join("seen")).unwrap();
        assert_eq!(
            Path::new(seen.trim()).canonicalize().unwrap(),
            dir.path().canonicalize().unwrap()
        );
        assert!(r.veto_reason().contains("exited with code 7"));
    }

    #[test]
    fn hanging_hook_is_killed_with_its_children() {
        let dir = tempfile::tempdir().unwrap();
        let t = Instant::now();
        let r = run(
            "sleep 30 & echo waiting; wait",
            dir.path(),
            b"{}",
            Duration::from_millis(300),
        )
        .unwrap();
        assert!(r.timed_out);
        assert_eq!(r.verdict, Verdict::Vetoed);
        assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
        assert!(r.output_tail.contains("waiting"));
        assert!(r.veto_reason().contains("did not finish in time"));
    }
}
