//! `[environment] path` end to end, and the Rust profile's toolchain in the
//! sandbox.
//!
//! Each case runs the real binary's `run` subcommand (the sandbox is never
//! applied to this process). Tool directories are made under /var/tmp (the
//! sandbox has its own /tmp); nothing here needs the network.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `sdist-box run --fail-on never --profile PROFILE -- sh -c SCRIPT`, as
/// `user` (through a copy of the binary any user can execute) or as us.
fn run_in_sandbox(
    user: Option<(u32, u32)>,
    profile: &Path,
    script: &str,
    host_path: Option<&str>,
) -> Output {
    let mut cmd = common::sdist_box_as(user);
    cmd.args(["run", "--fail-on", "never", "--profile"])
        .arg(profile)
        .args(["--", "sh", "-c", script])
        .current_dir("/");
    if let Some(p) = host_path {
        cmd.env("PATH", p);
    }
    cmd.output().unwrap()
}

fn both(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn write_readable(path: &Path, text: &str, mode: u32) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Who runs: us, and the unprivileged test user when we are root and it
/// exists (the case that matters: the sandbox of a real user).
fn runners() -> Vec<Option<(u32, u32)>> {
    let mut who = vec![None];
    if common::is_root()
        && let Some(user) = common::test_user()
    {
        who.push(Some(user));
    }
    who
}

/// A tool directory shaped like a toolchain (`bin/` runs a file of
/// `lib/`): on PATH with the knob, found and run; without it, not found —
/// even when the caller's own PATH has it.
#[test]
fn path_entries_reach_the_builds_path_and_nothing_else_does() {
    require!(common::userns_available(), "user namespaces unavailable");
    let base = tempfile::Builder::new()
        .prefix("sdist-box-path-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let tools = base.path().join("tools");
    std::fs::create_dir_all(tools.join("bin")).unwrap();
    std::fs::create_dir_all(tools.join("lib")).unwrap();
    for d in [base.path(), &tools, &tools.join("bin"), &tools.join("lib")] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    write_readable(
        &tools.join("bin/hello-tool"),
        "#!/bin/sh\nexec cat \"$(dirname \"$0\")/../lib/message.txt\"\n",
        0o755,
    );
    write_readable(&tools.join("lib/message.txt"), "tool-message-7319\n", 0o644);
    let bin = tools.join("bin");
    let with_path = base.path().join("with-path.toml");
    write_readable(
        &with_path,
        &format!(
            "version = 1\ndescription = \"t\"\n[filesystem]\nexec = [\"{}\"]\n[environment]\npath = [\"{}\"]\n",
            tools.display(),
            bin.display()
        ),
        0o644,
    );
    let without = base.path().join("without.toml");
    write_readable(
        &without,
        &format!(
            "version = 1\ndescription = \"t\"\n[filesystem]\nexec = [\"{}\"]\n",
            tools.display()
        ),
        0o644,
    );
    let script = "echo \"PATH=$PATH\"; hello-tool";
    let host_path = format!("{}:/usr/bin:/bin", bin.display());
    for user in runners() {
        let out = run_in_sandbox(user, &with_path, script, None);
        let text = both(&out);
        assert!(out.status.success(), "{user:?}: {text}");
        assert!(text.contains("tool-message-7319"), "{user:?}: {text}");
        // After the build env (none for `run`), before the system's.
        assert!(
            text.contains(&format!(
                "PATH={}:/usr/local/bin:/usr/bin:/bin",
                bin.display()
            )),
            "{user:?}: {text}"
        );
        // Bound and executable, but not on PATH: not found, whatever the
        // caller's PATH says.
        let out = run_in_sandbox(user, &without, script, Some(&host_path));
        let text = both(&out);
        assert!(!out.status.success(), "{user:?}: {text}");
        assert!(text.contains("hello-tool: not found"), "{user:?}: {text}");
        assert!(!text.contains("tool-message-7319"), "{user:?}: {text}");
        assert!(
            text.contains("PATH=/usr/local/bin:/usr/bin:/bin"),
            "{user:?}: {text}"
        );
    }
    // On PATH but not executable: the profile is refused before anything
    // runs, naming the file, the line and the exec line that would do.
    let bad = base.path().join("bad.toml");
    write_readable(
        &bad,
        &format!(
            "version = 1\ndescription = \"t\"\n[filesystem]\nread = [\"{}\"]\n[environment]\npath = [\"{}\"]\n",
            tools.display(),
            bin.display()
        ),
        0o644,
    );
    let out = run_in_sandbox(None, &bad, "hello-tool", None);
    let text = both(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains(&bad.display().to_string()), "{text}");
    assert!(text.contains("line 6, field `path`"), "{text}");
    assert!(
        text.contains(&format!("exec = [\"{}\"]", tools.display())),
        "{text}"
    );
}

/// The host's Rust toolchain (`rustc --print sysroot`), if any.
fn rust_sysroot() -> Option<PathBuf> {
    let out = Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .ok()?;
    let p = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    (out.status.success() && p.join("bin/cargo").exists()).then_some(p)
}

/// profiles/rust-example.toml with this host's toolchain in place of the
/// example's.
fn rust_profile(dir: &Path, sysroot: &Path) -> PathBuf {
    let text = std::fs::read_to_string(common::repo().join("profiles/rust-example.toml")).unwrap();
    let example = "/root/.rustup/toolchains/1.95.0-x86_64-unknown-linux-gnu";
    assert!(text.contains(example));
    let p = dir.join("rust.toml");
    write_readable(
        &p,
        &text.replace(example, &sysroot.display().to_string()),
        0o644,
    );
    p
}

/// With the Rust profile, cargo and rustc run in the sandbox and compile
/// and link a crate (rustc's own lib/, the C linker), offline, with
/// cargo's home in the private HOME; without it, neither is found. A
/// toolchain the caller cannot read is refused by name, before anything
/// runs.
#[test]
fn rust_profile_compiles_a_crate_in_the_sandbox() {
    require!(common::userns_available(), "user namespaces unavailable");
    let Some(sysroot) = rust_sysroot() else {
        require!(
            false,
            "no Rust toolchain on this host (rustc --print sysroot)"
        );
        return;
    };
    let dir = tempfile::Builder::new()
        .prefix("sdist-box-rust-")
        .tempdir_in("/var/tmp")
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let profile = rust_profile(dir.path(), &sysroot);
    let script = "cargo --version && rustc --version \
        && echo \"HOME=$CARGO_HOME OFFLINE=$CARGO_NET_OFFLINE\" \
        && cd /tmp && cargo new --vcs none --quiet hello && cd hello \
        && cargo run --quiet --release";
    let readable_by_others = sysroot.ancestors().all(|d| {
        std::fs::metadata(d)
            .map(|m| m.permissions().mode() & 0o005 == 0o005)
            .unwrap_or(false)
    });
    for user in runners() {
        let out = run_in_sandbox(user, &profile, script, None);
        let text = both(&out);
        if user.is_some() && !readable_by_others {
            // Not the sandbox's refusal of a read: the caller's own.
            assert_eq!(out.status.code(), Some(4), "{text}");
            assert!(
                text.contains(&format!("failed to use `{}`", sysroot.display())),
                "{text}"
            );
            continue;
        }
        assert!(out.status.success(), "{user:?}: {text}");
        assert!(text.contains("Hello, world!"), "{user:?}: {text}");
        assert!(
            text.contains("HOME=/home/build/.cargo OFFLINE=true"),
            "{user:?}: {text}"
        );
    }
    // The same profile without the toolchain on PATH: no cargo, no rustc
    // (unless the system has its own, under /usr).
    if !Path::new("/usr/bin/cargo").exists() && !sysroot.starts_with("/usr") {
        let text = std::fs::read_to_string(&profile).unwrap();
        let stripped: String = text
            .lines()
            .filter(|l| !l.starts_with("path = "))
            .map(|l| format!("{l}\n"))
            .collect();
        let p = dir.path().join("no-path.toml");
        write_readable(&p, &stripped, 0o644);
        let out = run_in_sandbox(None, &p, "cargo --version", None);
        let text = both(&out);
        assert!(!out.status.success(), "{text}");
        assert!(text.contains("cargo: not found"), "{text}");
    }
}
