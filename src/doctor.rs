//! `sdist-box doctor`: what this host can enforce, layer by layer, and what
//! to do where it can't.
//!
//! The verdict comes from a real probe: a trivial command is run in the full
//! sandbox and the layers init reports as enforced are shown. Host facts
//! (sysctls, Landlock ABI, container hints) explain the gaps.

use std::fs;

use clap::Args;

use crate::cli::exit;
use crate::policy::{self, BuildPaths, HostLayout, Profile};
use crate::sandbox::{self, LayerState, RunOptions, SandboxError};
use crate::text;

#[derive(Debug, Clone, Args)]
pub struct DoctorArgs {
    /// Check against this profile's required layers.
    #[arg(long, default_value = "default")]
    pub profile: String,
}

fn read_trim(path: &str) -> Option<String> {
    fs::read_to_string(path).ok().map(|s| s.trim().to_string())
}

fn in_container() -> Option<&'static str> {
    if std::path::Path::new("/.dockerenv").exists() {
        return Some("docker");
    }
    if std::path::Path::new("/run/.containerenv").exists() {
        return Some("podman");
    }
    let cg = fs::read_to_string("/proc/1/cgroup").unwrap_or_default();
    if cg.contains("kubepods") {
        return Some("kubernetes");
    }
    None
}

/// The host facts, as lines of text.
pub fn host_facts() -> Vec<String> {
    let mut facts = Vec::new();
    let uname = nix::sys::utsname::uname().ok();
    if let Some(u) = &uname {
        facts.push(format!("kernel {}", u.release().to_string_lossy()));
    }
    let euid = nix::unistd::geteuid();
    facts.push(if euid.is_root() {
        format!(
            "running as root: the sandbox maps to unprivileged host uid {}",
            policy::ROOT_MAPS_TO
        )
    } else {
        format!("running as uid {euid}: the sandbox runs as this uid on the host")
    });
    match read_trim("/proc/sys/user/max_user_namespaces") {
        Some(v) if v == "0" => facts.push(
            "user.max_user_namespaces = 0: user namespaces are disabled (fix: sysctl -w user.max_user_namespaces=15000)".into(),
        ),
        Some(v) => facts.push(format!("user.max_user_namespaces = {v}")),
        None => {}
    }
    if let Some(v) = read_trim("/proc/sys/kernel/unprivileged_userns_clone")
        && v == "0"
    {
        facts.push("kernel.unprivileged_userns_clone = 0: only root may create user namespaces (fix: sysctl -w kernel.unprivileged_userns_clone=1)".into());
    }
    if let Some(v) = read_trim("/proc/sys/kernel/apparmor_restrict_unprivileged_userns")
        && v == "1"
    {
        facts.push("AppArmor restricts unprivileged user namespaces (Ubuntu 23.10+); fix: an AppArmor profile for sdist-box granting `userns,`, or sysctl -w kernel.apparmor_restrict_unprivileged_userns=0".into());
    }
    match sandbox::sys::landlock_abi() {
        Ok(abi) => facts.push(format!(
            "landlock ABI {abi}{}",
            if abi < 4 {
                " (TCP rules need ABI 4, Linux 6.7)"
            } else if abi < 6 {
                " (signal/abstract-socket scoping needs ABI 6, Linux 6.12)"
            } else {
                ""
            }
        )),
        Err(e) if e == libc::EOPNOTSUPP => facts.push(
            "landlock is built in but disabled: add `landlock` to the kernel's `lsm=` boot parameter".into(),
        ),
        Err(_) => facts.push("this kernel has no landlock (Linux 5.13+ with CONFIG_SECURITY_LANDLOCK)".into()),
    }
    match read_trim("/proc/sys/kernel/seccomp/actions_avail") {
        Some(a) => facts.push(format!("seccomp actions: {a}")),
        None => facts.push(
            "seccomp: no /proc/sys/kernel/seccomp (kernel without CONFIG_SECCOMP_FILTER?)".into(),
        ),
    }
    if let Some(kind) = in_container() {
        facts.push(format!(
            "inside a {kind} container: user namespaces usually need `--security-opt seccomp=unconfined` (or a seccomp profile allowing clone/unshare with CLONE_NEWUSER) and `--security-opt apparmor=unconfined`, and mounting the sandbox's own /proc needs `--security-opt systempaths=unconfined` (the runtime's masked /proc paths forbid it); see docs/container.md"
        ));
    }
    facts
}

/// Why user namespaces are missing, each possible cause with its fix, and
/// what the degraded mode would (and would not) give on this host.
pub fn explain_missing_namespaces() -> String {
    let mut out = String::from(
        "\n  Without user namespaces sdist-box cannot build its sandbox's namespaces,\n  private mounts or separate uid. The usual causes, and their fixes:\n",
    );
    let mut cause = |found: bool, what: &str, fix: &str| {
        out.push_str(&format!(
            "\n  {} {what}\n      fix: {fix}\n",
            if found { "→ (this host)" } else { "·" }
        ));
    };
    let max = read_trim("/proc/sys/user/max_user_namespaces");
    cause(
        max.as_deref() == Some("0"),
        "user.max_user_namespaces = 0 (user namespaces disabled by sysctl)",
        "sysctl -w user.max_user_namespaces=15000 (persist it in /etc/sysctl.d/99-userns.conf)",
    );
    let clone = read_trim("/proc/sys/kernel/unprivileged_userns_clone");
    cause(
        clone.as_deref() == Some("0"),
        "kernel.unprivileged_userns_clone = 0 (Debian/Ubuntu kernels: only root may create them)",
        "sysctl -w kernel.unprivileged_userns_clone=1",
    );
    let apparmor = read_trim("/proc/sys/kernel/apparmor_restrict_unprivileged_userns");
    cause(
        apparmor.as_deref() == Some("1"),
        "AppArmor restricts unprivileged user namespaces (Ubuntu 23.10 and 24.04)",
        "an AppArmor profile for sdist-box, in /etc/apparmor.d/sdist-box:\n          abi <abi/4.0>,\n          include <tunables/global>\n          profile sdist-box /usr/local/bin/sdist-box flags=(unconfined) {\n            userns,\n          }\n        then `apparmor_parser -r /etc/apparmor.d/sdist-box`; or, for the whole host,\n        sysctl -w kernel.apparmor_restrict_unprivileged_userns=0",
    );
    let container = in_container();
    let sysctls_fine = max.as_deref() != Some("0")
        && clone.as_deref() != Some("0")
        && apparmor.as_deref() != Some("1");
    cause(
        container.is_some() || sysctls_fine,
        "a container runtime's default seccomp profile refuses clone/unshare with CLONE_NEWUSER",
        "docker run --security-opt seccomp=unconfined --security-opt apparmor=unconfined …\n        (or a seccomp profile that allows clone, clone3 and unshare with CLONE_NEWUSER;\n        Kubernetes: securityContext.seccompProfile type Unconfined or Localhost); see docs/container.md",
    );
    out.push_str(
        "\n  The degraded mode (a profile with `allow-degraded = true`) runs without namespaces:\n",
    );
    let abi = sandbox::sys::landlock_abi().ok();
    let seccomp = fs::metadata("/proc/sys/kernel/seccomp/actions_avail").is_ok();
    let yes_no = |ok: bool| if ok { "possible" } else { "NOT possible" };
    out.push_str(&format!(
        "    landlock-fs   {} (landlock ABI {})\n    landlock-net  {} (TCP rules need ABI 4)\n    seccomp       {} (deny list, socket-family filter, supervisor)\n    rlimits, no_new_privs, scrubbed environment: possible\n    NOT enforced there: namespaces, the private read-only view (mounts), a separate uid,\n    the empty network namespace (sockets other than unix are refused instead),\n    killing every leftover process (done by process group, best effort)\n",
        yes_no(abi.is_some()),
        abi.map_or("none".to_string(), |a| a.to_string()),
        yes_no(abi.is_some_and(|a| a >= 4)),
        yes_no(seccomp),
    ));
    if abi.is_none() || !seccomp {
        out.push_str("    → without Landlock and seccomp the degraded mode is refused too.\n");
    }
    out
}

/// Run `/bin/true` in the degraded mode and return what it enforced.
fn probe_degraded(profile: &Profile) -> Result<Vec<sandbox::LayerStatus>, String> {
    if let Err(e) = sandbox::choose_mode(true, &profile.origin) {
        return Err(e.to_string());
    }
    let scratch = tempfile::Builder::new()
        .prefix("sdist-box-doctor-")
        .tempdir()
        .map_err(|e| e.to_string())?;
    let private = policy::PrivateDirs {
        home: scratch.path().join("home"),
        tmp: scratch.path().join("tmp"),
    };
    for dir in [&private.home, &private.tmp] {
        fs::create_dir(dir).map_err(|e| e.to_string())?;
        if nix::unistd::geteuid().is_root() {
            let id = Some(policy::ROOT_MAPS_TO);
            std::os::unix::fs::chown(dir, id, id).map_err(|e| e.to_string())?;
        }
    }
    let paths = BuildPaths {
        without_namespaces: Some(private),
        ..BuildPaths::default()
    };
    let mut plan = policy::compile(
        profile,
        &HostLayout::detect(),
        &paths,
        vec!["/bin/true".into()],
        &[],
    )
    .plan;
    plan.required.clear();
    sandbox::run(&plan, &RunOptions::default())
        .map(|o| o.enforcement.layers)
        .map_err(|e| e.to_string())
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
    match sandbox::run(&plan, &RunOptions::default()) {
        Ok(outcome) => {
            let mut missing = 0;
            for l in &outcome.enforcement.layers {
                let required = profile.require.contains(&l.layer);
                let mark = match l.state {
                    LayerState::Enforced => "ok  ",
                    LayerState::Partial => "part",
                    LayerState::NotEnforced => "NO  ",
                };
                if required && l.state != LayerState::Enforced {
                    missing += 1;
                }
                println!(
                    "  [{mark}] {:<15} {}{}",
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
                Ok(exit::OK)
            } else {
                println!(
                    "\nverdict: {missing} layer(s) the `{}` profile requires cannot be enforced here; builds will be refused.",
                    profile_name
                );
                Ok(exit::SANDBOX_UNAVAILABLE)
            }
        }
        Err(e) => {
            println!(
                "  [NO  ] the sandbox could not be started: {}",
                text::shown(&e.to_string())
            );
            if let SandboxError::Setup { step, .. } = &e
                && step.contains("/proc")
            {
                println!(
                    "\n  The sandbox mounts a /proc of its own pid namespace. The kernel allows that"
                );
                println!(
                    "  only where /proc is visible in full: a container runtime's masked /proc paths"
                );
                println!(
                    "  forbid it. Fix: `--security-opt systempaths=unconfined` (docker/podman), or"
                );
                println!(
                    "  `securityContext.procMount: Unmasked` (Kubernetes); see docs/container.md."
                );
            }
            if let SandboxError::Namespaces { .. } = e {
                print!("{}", explain_missing_namespaces());
                let probe = probe_degraded(&profile);
                match &probe {
                    Ok(layers) => {
                        println!("\n  The degraded mode, probed for real here:");
                        for l in layers {
                            let mark = match l.state {
                                LayerState::Enforced => "ok  ",
                                LayerState::Partial => "part",
                                LayerState::NotEnforced => "NO  ",
                            };
                            println!(
                                "  [{mark}] {:<15} {}",
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
                if profile.allow_degraded && probe.is_ok() {
                    println!(
                        "\nverdict: the `{}` profile allows the degraded mode: builds run as probed above, and their reports say what was not enforced.",
                        profile_name
                    );
                    return Ok(exit::OK);
                }
                if probe.is_ok() {
                    println!(
                        "\nverdict: the `{}` profile requires namespaces, so builds will be refused here. Fix the cause above, or use a profile with `allow-degraded = true` to build as probed above.",
                        profile_name
                    );
                    return Ok(exit::SANDBOX_UNAVAILABLE);
                }
            }
            println!("\nverdict: builds will be refused on this host.");
            Ok(exit::SANDBOX_UNAVAILABLE)
        }
    }
}
