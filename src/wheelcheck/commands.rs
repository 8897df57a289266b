//! Commands a wheel installs: its entry points, and those that shadow common tools.

use super::model::{EntryPoint, module_name};

/// Commands a wheel's scripts would shadow on PATH: a package installing
/// `pip` or `sudo` takes over whatever a user types next.
pub(super) const COMMON_COMMANDS: &[&str] = &[
    "pip",
    "python",
    "pipx",
    "uv",
    "poetry",
    "twine",
    "virtualenv",
    "conda",
    "pytest",
    "tox",
    "ls",
    "cp",
    "mv",
    "rm",
    "cat",
    "cd",
    "echo",
    "env",
    "find",
    "grep",
    "sed",
    "awk",
    "which",
    "ps",
    "id",
    "kill",
    "chmod",
    "chown",
    "mount",
    "tar",
    "sudo",
    "su",
    "login",
    "passwd",
    "sh",
    "bash",
    "zsh",
    "ssh",
    "ssh-add",
    "ssh-agent",
    "ssh-keygen",
    "scp",
    "rsync",
    "git",
    "gh",
    "curl",
    "wget",
    "gpg",
    "openssl",
    "make",
    "cc",
    "gcc",
    "ld",
    "docker",
    "kubectl",
    "aws",
    "gcloud",
    "az",
    "npm",
    "node",
    "apt",
    "apt-get",
    "yum",
    "dnf",
    "systemctl",
    "crontab",
    "vi",
    "vim",
    "nano",
    "less",
    "man",
];

/// `entry_points.txt`: INI sections of `name = object.ref [extras]`.
pub fn parse_entry_points(text: &[u8]) -> Vec<EntryPoint> {
    let text = String::from_utf8_lossy(text);
    let mut group = String::new();
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(g) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            group = g.trim().to_string();
            continue;
        }
        if let Some((name, value)) = line.split_once('=') {
            out.push(EntryPoint {
                group: group.clone(),
                name: name.trim().to_string(),
                value: value.trim().to_string(),
                shadows: None,
            });
        }
        if out.len() >= 10_000 {
            break;
        }
    }
    out
}

/// The common command `command` would shadow, unless the project is that
/// command's own (pip installs `pip3.12`; that is pip's to install).
pub fn shadowed_command(command: &str, project: &str) -> Option<String> {
    let lower = command.to_ascii_lowercase();
    let base = lower.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    let base = if base.is_empty() {
        lower.as_str()
    } else {
        base
    };
    let own = |c: &str| module_name(project) == module_name(c);
    if (COMMON_COMMANDS.contains(&lower.as_str()) || COMMON_COMMANDS.contains(&base))
        && !own(base)
        && !own(&lower)
    {
        Some(base.to_string())
    } else {
        None
    }
}

/// A command name an installer can safely use as a file name in `bin/`.
pub(super) fn plain_command_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '+'))
}

/// The commands a wheel installs: its `entry_points.txt` and the scripts
/// of its `.data` directory, each console, GUI or data script with the
/// common command it shadows, if any.
pub(super) fn commands(
    entry_points_txt: Option<&Vec<u8>>,
    scripts: Vec<String>,
    project: &str,
) -> Vec<EntryPoint> {
    let mut entry_points = entry_points_txt
        .map(|t| parse_entry_points(t))
        .unwrap_or_default();
    for s in scripts {
        entry_points.push(EntryPoint {
            group: "data-scripts".into(),
            name: s,
            value: String::new(),
            shadows: None,
        });
    }
    for ep in &mut entry_points {
        if matches!(
            ep.group.as_str(),
            "console_scripts" | "gui_scripts" | "data-scripts"
        ) {
            ep.shadows = shadowed_command(&ep.name, project);
        }
    }
    entry_points
}
