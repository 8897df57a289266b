//! Executables with no path: a memfd, an `O_TMPFILE` file, a file deleted
//! since it was opened — run by `execveat(fd, "", AT_EMPTY_PATH)` or
//! through `/proc/self/fd/N`.
//!
//! Landlock cannot refuse a memfd (it lives on an internal mount no rule
//! can name), and `vm.memfd_noexec` cannot be set from the sandbox's pid
//! namespace unless sdist-box runs as the host's real root (its
//! `/proc/sys` entry is writable by the global root uid only: measured on
//! Linux 6.18, an unprivileged owner of the pid namespace gets `EACCES`).
//! So under `restrict-exec` the supervisor refuses them while the caller
//! waits in its notification; elsewhere the exec goes on and is reported.
//!
//! What this cannot do: another thread of the caller may put a different
//! file on the descriptor between the check and the exec. Files in the
//! sandbox's tree (deleted or `O_TMPFILE` ones included) stay under
//! Landlock's execute rules in the kernel; only a memfd swapped in that
//! way escapes both.

use super::program::{Found, Program};
use super::verdicts::NetPolicy;

/// `Some(errno)` when `restrict-exec` is on and the program has no path.
pub fn verdict(policy: &NetPolicy, program: Option<&Program>) -> Option<i32> {
    policy.exec.as_ref()?;
    match program.map(|p| &p.found) {
        Some(Found::Anonymous(_)) => Some(libc::EACCES),
        _ => None,
    }
}

/// Is this program an executable with no path?
pub fn is_anonymous(program: Option<&Program>) -> bool {
    matches!(program.map(|p| &p.found), Some(Found::Anonymous(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn program(found: Found) -> Program {
        Program {
            found,
            file: None,
            image: None,
            interpreter: None,
        }
    }

    #[test]
    fn anonymous_programs_are_refused_only_under_restrict_exec() {
        let memfd = program(Found::Anonymous("memfd:x".into()));
        let file = program(Found::Path("/usr/bin/cc".into()));
        let strict = NetPolicy {
            exec: Some(vec!["/usr/bin".into()]),
            ..Default::default()
        };
        assert_eq!(verdict(&strict, Some(&memfd)), Some(libc::EACCES));
        assert_eq!(verdict(&strict, Some(&file)), None);
        assert_eq!(verdict(&NetPolicy::default(), Some(&memfd)), None);
        assert!(is_anonymous(Some(&memfd)) && !is_anonymous(Some(&file)));
    }
}
