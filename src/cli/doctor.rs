//! `sdist-box doctor`: what this host can enforce, layer by layer.

use clap::Args;

use super::exit;
use crate::doctor::{explain_missing_namespaces, host_facts, probe_degraded};
use crate::policy::{self, BuildPaths, HostLayout, Profile};
use crate::sandbox::{self, LayerState, LayerStatus, RunOutcome, SandboxError};
use crate::text;

#[derive(Debug, Clone, Args)]
pub struct DoctorArgs {
    /// Check against this profile's required layers.
    #[arg(long, default_value = "default")]
    pub profile: String,
}

pub fn doctor_command(args: &DoctorArgs) -> anyhow::Result<u8> {
    let profile = Profile::load(&args.profile)?;
    // The profile may be named by a file's path; details quote host paths.
    let profile_name = text::shown(&args.profile);
    println!("sdist-box doctor — what this host can enforce\n");
    for fact in host_facts() {
        println!("  · {}", text::shown(&fact));
    }
    // resources: where the sandboxes' cgroups come from (or the fix).
    for fact in sandbox::cgroup::doctor_lines() {
        println!("  · {}", text::shown(&fact));
    }
    println!();
    let compiled = policy::compile(
        &profile,
        &HostLayout::detect(),
        &BuildPaths::default(),
        vec!["/bin/true".into()],
        &[],
    );
    let mut plan = compiled.plan;
    // Probe everything; judge against the profile below.
    plan.required.clear();
    match sandbox::run(&plan, &crate::events::kernel::run_options()) {
        Ok(outcome) => Ok(show_layers(&outcome, &profile, &profile_name)),
        Err(e) => Ok(show_failure(&e, &profile, &profile_name)),
    }
}

fn mark(l: &LayerStatus) -> &'static str {
    match l.state {
        LayerState::Enforced => "ok  ",
        LayerState::Partial => "part",
        LayerState::NotEnforced => "NO  ",
    }
}

/// The sandbox started: each layer as enforced, and the verdict against
/// the profile's required layers.
fn show_layers(
    outcome: &RunOutcome,
    profile: &Profile,
    profile_name: &impl std::fmt::Display,
) -> u8 {
    let mut missing = 0;
    for l in &outcome.enforcement.layers {
        let required = profile.require.contains(&l.layer);
        if required && l.state != LayerState::Enforced {
            missing += 1;
        }
        println!(
            "  [{}] {:<15} {}{}",
            mark(l),
            l.layer.name(),
            text::shown(&l.detail),
            if required {
                ""
            } else {
                "  (not required by this profile)"
            }
        );
    }
    println!(
        "\n  sandbox set-up took {:.1} ms",
        outcome.setup.as_secs_f64() * 1e3
    );
    if missing == 0 {
        println!(
            "\nverdict: every layer the `{}` profile requires is enforced here.",
            profile_name
        );
        exit::OK
    } else {
        println!(
            "\nverdict: {missing} layer(s) the `{}` profile requires cannot be enforced here; builds will be refused.",
            profile_name
        );
        exit::SANDBOX_UNAVAILABLE
    }
}

/// The sandbox did not start: why, how to fix it, and whether the
/// degraded mode can stand in.
fn show_failure(e: &SandboxError, profile: &Profile, profile_name: &impl std::fmt::Display) -> u8 {
    println!(
        "  [NO  ] the sandbox could not be started: {}",
        text::shown(&e.to_string())
    );
    if let SandboxError::Setup { step, .. } = e
        && step.contains("/proc")
    {
        println!("\n  The sandbox mounts a /proc of its own pid namespace. The kernel allows that");
        println!("  only where /proc is visible in full: a container runtime's masked /proc paths");
        println!("  forbid it. Fix: `--security-opt systempaths=unconfined` (docker/podman), or");
        println!("  `securityContext.procMount: Unmasked` (Kubernetes); see docs/container.md.");
    }
    if let SandboxError::Namespaces { .. } = e
        && let Some(code) = show_degraded(profile, profile_name)
    {
        return code;
    }
    println!("\nverdict: builds will be refused on this host.");
    exit::SANDBOX_UNAVAILABLE
}

/// No namespaces here: the degraded mode, probed for real; the verdict
/// when the probe ran (`None`: it could not, either).
fn show_degraded(profile: &Profile, profile_name: &impl std::fmt::Display) -> Option<u8> {
    print!("{}", explain_missing_namespaces());
    let probe = probe_degraded(profile);
    match &probe {
        Ok(layers) => {
            println!("\n  The degraded mode, probed for real here:");
            for l in layers {
                println!(
                    "  [{}] {:<15} {}",
                    mark(l),
                    l.layer.name(),
                    text::shown(&l.detail)
                );
            }
        }
        Err(why) => println!(
            "\n  The degraded mode cannot run here either: {}",
            text::shown(why)
        ),
    }
    probe.as_ref().ok()?;
    if profile.allow_degraded {
        println!(
            "\nverdict: the `{}` profile allows the degraded mode: builds run as probed above, and their reports say what was not enforced.",
            profile_name
        );
        return Some(exit::OK);
    }
    println!(
        "\nverdict: the `{}` profile requires namespaces, so builds will be refused here. Fix the cause above, or use a profile with `allow-degraded = true` to build as probed above.",
        profile_name
    );
    Some(exit::SANDBOX_UNAVAILABLE)
}
