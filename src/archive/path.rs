//! Entry names and link targets: parsing, checking and lexical resolution.
//!
//! Pure functions on strings; nothing here touches the file system. A name
//! that passes [`parse_name`] is relative, has no `..`, no NUL and is UTF-8;
//! its components are what the extractor joins under the destination.

use std::collections::VecDeque;

use super::EntryProblem;

/// Longest entry name shown in a message; the rest is elided (names are
/// attacker text and end up on terminals and in reports).
const MAX_DISPLAY_CHARS: usize = 256;

/// How many links one resolution may pass through (Linux's own limit).
const MAX_LINK_HOPS: usize = 40;

/// A checked entry name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Name {
    /// The name as in the archive, escaped for display.
    pub display: String,
    /// Normalized: components joined by `/`, no `.`, no empty components.
    pub path: String,
    pub components: Vec<String>,
    /// The name ended in `/` (a directory by old tar and zip convention).
    pub trailing_slash: bool,
}

/// Escape control characters and bound the length of attacker-supplied
/// text before it goes into an error message.
pub(crate) fn display_bytes(raw: &[u8]) -> String {
    display_str(&String::from_utf8_lossy(raw))
}

pub(crate) fn display_str(s: &str) -> String {
    crate::text::one_line(s, MAX_DISPLAY_CHARS + 1)
}

/// Check an entry name. `zip_rules` adds the checks for names written on
/// Windows (backslashes, drive letters), which zip extractors there honour.
/// A name made only of `.` and `/` components yields an empty `components`
/// (the archive's root); the caller decides whether that is acceptable.
pub(crate) fn parse_name(raw: &[u8], zip_rules: bool) -> Result<Name, (String, EntryProblem)> {
    let display = display_bytes(raw);
    let fail = |p| Err((display.clone(), p));
    if raw.is_empty() {
        return fail(EntryProblem::EmptyName);
    }
    if raw.contains(&0) {
        return fail(EntryProblem::NulByte);
    }
    let Ok(s) = std::str::from_utf8(raw) else {
        return fail(EntryProblem::NotUtf8);
    };
    if zip_rules {
        if s.contains('\\') {
            return fail(EntryProblem::WindowsPath {
                what: "a backslash",
            });
        }
        if has_drive_prefix(s) {
            return fail(EntryProblem::WindowsPath {
                what: "a drive letter",
            });
        }
    }
    if s.starts_with('/') {
        return fail(EntryProblem::Absolute);
    }
    let mut components = Vec::new();
    for c in s.split('/') {
        match c {
            "" | "." => {}
            ".." => return fail(EntryProblem::ParentDir),
            c => components.push(c.to_owned()),
        }
    }
    Ok(Name {
        path: components.join("/"),
        components,
        trailing_slash: s.ends_with('/'),
        display,
    })
}

fn has_drive_prefix(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':'
}

/// Why a symlink target was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Escape {
    Absolute,
    Empty,
    LeavesTree,
    TooManyHops,
}

/// Resolve a symlink target lexically, starting in the link's directory
/// (`link_parent`: components from the top-level directory down), passing
/// through other links that `link_target` knows of. Fails if resolution
/// would ever step above the top-level directory (the first component).
///
/// Passing through the other links matters: `a/up -> ..` and
/// `a/esc -> up/../..` each look harmless alone, yet together `a/esc`
/// points above the tree.
pub(crate) fn resolve_link<'t>(
    link_parent: &[String],
    target: &str,
    link_target: impl Fn(&str) -> Option<&'t str>,
) -> Result<(), Escape> {
    if target.is_empty() {
        return Err(Escape::Empty);
    }
    if target.starts_with('/') {
        return Err(Escape::Absolute);
    }
    let mut stack: Vec<String> = link_parent.to_vec();
    let mut queue: VecDeque<String> = split_target(target);
    let mut hops = 0;
    while let Some(c) = queue.pop_front() {
        if c == ".." {
            // Popping the top-level directory itself leaves the tree.
            if stack.len() <= 1 {
                return Err(Escape::LeavesTree);
            }
            stack.pop();
            continue;
        }
        stack.push(c);
        if let Some(next) = link_target(&stack.join("/")) {
            hops += 1;
            if hops > MAX_LINK_HOPS {
                return Err(Escape::TooManyHops);
            }
            if next.starts_with('/') {
                return Err(Escape::Absolute);
            }
            stack.pop();
            for c in split_target(next).into_iter().rev() {
                queue.push_front(c);
            }
        }
    }
    if stack.is_empty() {
        return Err(Escape::LeavesTree);
    }
    Ok(())
}

fn split_target(target: &str) -> VecDeque<String> {
    target
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn comps(s: &str) -> Vec<String> {
        s.split('/').map(str::to_owned).collect()
    }

    #[test]
    fn names_are_normalized() {
        let n = parse_name(b"./pkg-1.0//src/./a.py", false).unwrap();
        assert_eq!(n.path, "pkg-1.0/src/a.py");
        assert_eq!(n.components, comps("pkg-1.0/src/a.py"));
        assert!(!n.trailing_slash);
        assert!(parse_name(b"pkg/", false).unwrap().trailing_slash);
        assert!(parse_name(b"./", false).unwrap().components.is_empty());
    }

    #[test]
    fn bad_names_are_refused() {
        let cases: [(&[u8], bool, EntryProblem); 8] = [
            (b"", false, EntryProblem::EmptyName),
            (b"/etc/passwd", false, EntryProblem::Absolute),
            (b"pkg/../../x", false, EntryProblem::ParentDir),
            (b"..", false, EntryProblem::ParentDir),
            (b"pkg/a\0b", false, EntryProblem::NulByte),
            (b"pkg/\xff", false, EntryProblem::NotUtf8),
            (
                b"pkg\\..\\x",
                true,
                EntryProblem::WindowsPath {
                    what: "a backslash",
                },
            ),
            (
                b"C:/Windows/x",
                true,
                EntryProblem::WindowsPath {
                    what: "a drive letter",
                },
            ),
        ];
        for (raw, zip, want) in cases {
            let (_, got) = parse_name(raw, zip).unwrap_err();
            assert_eq!(got, want, "{}", display_bytes(raw));
        }
        // Backslashes are ordinary characters in tar names on Linux.
        assert!(parse_name(b"pkg\\x", false).is_ok());
    }

    #[test]
    fn display_escapes_control_characters_and_bounds_length() {
        assert_eq!(display_bytes(b"a\x1b[31mb\n"), "a\\u{1b}[31mb\\n");
        let long = "x".repeat(1000);
        let shown = display_str(&long);
        assert_eq!(shown.chars().count(), MAX_DISPLAY_CHARS + 1);
        assert!(shown.ends_with('…'));
    }

    #[test]
    fn link_resolution_stays_inside_or_fails() {
        let none = |_: &str| None;
        let p = comps("pkg/sub");
        assert_eq!(resolve_link(&p, "../a", none), Ok(()));
        assert_eq!(resolve_link(&p, "..", none), Ok(()));
        assert_eq!(resolve_link(&p, "../..", none), Err(Escape::LeavesTree));
        assert_eq!(
            resolve_link(&p, "x/../../../y", none),
            Err(Escape::LeavesTree)
        );
        assert_eq!(resolve_link(&p, "/etc", none), Err(Escape::Absolute));
        assert_eq!(resolve_link(&p, "", none), Err(Escape::Empty));
        // A link directly under the top-level directory may not go up.
        assert_eq!(
            resolve_link(&comps("pkg"), "../pkg/x", none),
            Err(Escape::LeavesTree)
        );
    }

    #[test]
    fn link_resolution_follows_other_links() {
        let links: HashMap<&str, &str> = [("pkg/a/up", "..")].into();
        let lookup = |p: &str| links.get(p).copied();
        // Lexically `a/up/../..` is `pkg`; through the link it is above it.
        assert_eq!(
            resolve_link(&comps("pkg"), "a/up/../..", lookup),
            Err(Escape::LeavesTree)
        );
        assert_eq!(resolve_link(&comps("pkg"), "a/up/b", lookup), Ok(()));

        let looped: HashMap<&str, &str> = [("pkg/l1", "l2"), ("pkg/l2", "l1")].into();
        assert_eq!(
            resolve_link(&comps("pkg"), "l1", |p| looped.get(p).copied()),
            Err(Escape::TooManyHops)
        );
    }
}
