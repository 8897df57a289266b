//! Which findings fail a finished report (`--fail-on`, a profile's
//! `fail-on`).

use clap::ValueEnum;

use crate::policy::Profile;

/// Which findings make `build` exit with code 1 (when the wheel was built).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    /// A blocked operation or an evasion (the default).
    Blocked,
    /// What `blocked` fails on, and wheel findings to review before
    /// installing: a .pth file, prebuilt native code, a command shadowing a
    /// common one, files outside the project, a RECORD that does not match,
    /// a build that is not reproducible (with --check-reproducible).
    /// Alias: `wheel`.
    #[value(alias = "wheel")]
    Review,
    /// Only an evasion of the audit hook.
    Evasion,
    /// Any finding, allowed ones included.
    Any,
    /// Never: exit 0 whenever the wheel was built.
    Never,
}

impl FailOn {
    /// `--fail-on` when given, else the profile's `fail-on`, else `blocked`.
    pub fn effective(cli: Option<FailOn>, profile: &Profile) -> FailOn {
        use crate::policy::profile::FailOnPolicy;
        cli.unwrap_or(match profile.fail_on {
            Some(FailOnPolicy::Blocked) | None => FailOn::Blocked,
            Some(FailOnPolicy::Evasion) => FailOn::Evasion,
            Some(FailOnPolicy::Any) => FailOn::Any,
            Some(FailOnPolicy::Never) => FailOn::Never,
        })
    }

    pub fn matches(self, findings: &[crate::events::findings::Finding]) -> bool {
        use crate::events::findings::Severity;
        findings.iter().any(|f| match self {
            FailOn::Blocked => matches!(f.severity, Severity::Blocked | Severity::Evasion),
            FailOn::Review => matches!(
                f.severity,
                Severity::Blocked | Severity::Evasion | Severity::Review
            ),
            FailOn::Evasion => f.severity == Severity::Evasion,
            FailOn::Any => true,
            FailOn::Never => false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fail_on_comes_from_the_command_line_then_the_profile() {
        let observe = Profile::load("observe").unwrap();
        let default = Profile::load("default").unwrap();
        assert_eq!(FailOn::effective(None, &observe), FailOn::Never);
        assert_eq!(FailOn::effective(None, &default), FailOn::Blocked);
        assert_eq!(
            FailOn::effective(Some(FailOn::Evasion), &observe),
            FailOn::Evasion
        );
    }
}
