//! Landlock: file-system, TCP and scope rules for the build.
//!
//! Applied by the sandbox's init after the mount view is in place, so the
//! rules name paths inside the sandbox. Landlock is additive on top of the
//! mount view: a path that is visible but not listed here is still denied.
//! What the kernel actually enforced is returned as data; the caller decides
//! whether that is enough (the profile's required layers).

use std::path::Path;

use landlock::{
    ABI, Access, AccessFs, AccessNet, CompatLevel, Compatible, LandlockStatus, NetPort,
    PathBeneath, PathFd, RestrictionStatus, Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetError,
    RulesetStatus, Scope,
};

use super::plan::LandlockPlan;
use super::plan::Layer;
use super::status::{LayerState, LayerStatus};

/// The newest ABI this code asks for; older kernels get what they support.
const WANTED_ABI: ABI = ABI::V6;

#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum LandlockError {
    #[error("failed to build the landlock ruleset: {0}")]
    Ruleset(#[from] RulesetError),
    #[error("failed to open `{path}` for a landlock rule: {source}")]
    Path {
        path: String,
        source: landlock::PathFdError,
    },
}

/// The outcome of [`apply`], one entry per Landlock layer.
#[derive(Debug, Clone)]
pub struct LandlockOutcome {
    pub abi: Option<i32>,
    pub layers: Vec<LayerStatus>,
}

fn rules_for<'a>(
    paths: &'a [std::path::PathBuf],
    access: landlock::BitFlags<AccessFs>,
) -> impl Iterator<Item = Result<PathBeneath<PathFd>, LandlockError>> + 'a {
    paths.iter().filter(|p| p.exists()).map(move |p| {
        let fd = PathFd::new(p).map_err(|source| LandlockError::Path {
            path: p.display().to_string(),
            source,
        })?;
        // Files may carry only file rights; directories all of them.
        let access = if p.is_dir() {
            access
        } else {
            access & AccessFs::from_file(WANTED_ABI)
        };
        Ok(PathBeneath::new(fd, access))
    })
}

/// Restrict this process (and every process it starts) with `plan`, and
/// say what the kernel enforced of it.
pub fn apply(plan: &LandlockPlan) -> Result<LandlockOutcome, LandlockError> {
    let status = restrict_self(plan)?;
    Ok(outcome_of(plan, status))
}

/// The ruleset for `plan`, applied to this process.
fn restrict_self(plan: &LandlockPlan) -> Result<RestrictionStatus, LandlockError> {
    let abi = WANTED_ABI;
    let all = AccessFs::from_all(abi);
    let read_only = AccessFs::ReadFile | AccessFs::ReadDir;
    // With `restrict_exec`, the execute right exists only beneath
    // `plan.exec`: not in the system dirs, not in the writable tree.
    let (read_exec, writable) = if plan.restrict_exec {
        (read_only, all & !AccessFs::Execute)
    } else {
        (AccessFs::from_read(abi), all)
    };
    let execute = AccessFs::ReadFile | AccessFs::ReadDir | AccessFs::Execute;
    let device = AccessFs::ReadFile | AccessFs::WriteFile | AccessFs::IoctlDev | AccessFs::Truncate;
    // Loopback mode or --ask: TCP connect is left to the supervisor
    // (Landlock names ports, and loopback means every port; a person may
    // allow any); bind stays handled.
    let net = if plan.tcp_connect_by_supervisor {
        AccessNet::BindTcp.into()
    } else {
        AccessNet::from_all(abi)
    };

    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(all)?
        .handle_access(net)?
        .scope(Scope::from_all(abi))?
        .create()?;
    let exec: &[std::path::PathBuf] = if plan.restrict_exec { &plan.exec } else { &[] };
    for rule in rules_for(&plan.read_exec, read_exec)
        .chain(rules_for(&plan.read_only, read_only))
        .chain(rules_for(&plan.read_write, writable))
        .chain(rules_for(&plan.devices_rw, device))
        .chain(rules_for(exec, execute))
    {
        ruleset = ruleset.add_rule(rule?)?;
    }
    // Connect left to the supervisor: not handled, so no rule may name it
    // (an allowlist under --ask: a person may allow what the list does not).
    let connect_ports: &[u16] = if plan.tcp_connect_by_supervisor {
        &[]
    } else {
        &plan.tcp_connect
    };
    for &port in connect_ports {
        ruleset = ruleset.add_rule(NetPort::new(port, AccessNet::ConnectTcp))?;
    }
    for &port in &plan.tcp_bind {
        ruleset = ruleset.add_rule(NetPort::new(port, AccessNet::BindTcp))?;
    }
    Ok(ruleset.restrict_self()?)
}

/// The three layers Landlock gives (file system, TCP, scopes), each
/// enforced, partial or not, by what the kernel's ABI had.
fn outcome_of(plan: &LandlockPlan, status: RestrictionStatus) -> LandlockOutcome {
    let abi_num = match status.landlock {
        LandlockStatus::Available {
            effective_abi,
            kernel_abi,
        } => Some(kernel_abi.unwrap_or(effective_abi as i32)),
        _ => None,
    };
    let have = abi_num.unwrap_or(0);
    let fs_state = match status.ruleset {
        RulesetStatus::FullyEnforced => LayerState::Enforced,
        RulesetStatus::PartiallyEnforced if have >= 1 => LayerState::Partial,
        _ => LayerState::NotEnforced,
    };
    let why_missing = match status.landlock {
        LandlockStatus::NotEnabled => "landlock is built into the kernel but not enabled (add `landlock` to the `lsm=` boot parameter)".to_string(),
        LandlockStatus::NotImplemented => "this kernel has no landlock (needs Linux 5.13 or newer with CONFIG_SECURITY_LANDLOCK)".to_string(),
        LandlockStatus::Available { .. } => String::new(),
    };
    let layer = |layer: Layer, min_abi: i32, what: &str| -> LayerStatus {
        if have >= min_abi && fs_state != LayerState::NotEnforced {
            LayerStatus {
                layer,
                state: LayerState::Enforced,
                detail: format!("{what} (landlock ABI {have})"),
            }
        } else {
            LayerStatus {
                layer,
                state: LayerState::NotEnforced,
                detail: if why_missing.is_empty() {
                    format!("needs landlock ABI {min_abi}, this kernel has ABI {have}")
                } else {
                    why_missing.clone()
                },
            }
        }
    };
    let mut fs = layer(
        Layer::LandlockFs,
        1,
        &format!(
            "read/exec {} paths, read-only {}, read-write {}{}",
            plan.read_exec.len(),
            plan.read_only.len(),
            plan.read_write.len(),
            if plan.restrict_exec {
                format!("; execute only beneath {} paths", plan.exec.len())
            } else {
                String::new()
            }
        ),
    );
    if fs.state == LayerState::Enforced && fs_state == LayerState::Partial {
        fs.state = LayerState::Partial;
        fs.detail = format!(
            "{}; some access rights are unknown to ABI {have}",
            fs.detail
        );
    }
    let connect = if plan.tcp_connect_by_supervisor {
        "tcp connect decided by the supervisor (loopback mode, or --ask)".to_string()
    } else {
        format!("tcp connect allowed to ports {:?}", plan.tcp_connect)
    };
    let net = layer(
        Layer::LandlockNet,
        4,
        &format!("{connect}, bind to {:?}", plan.tcp_bind),
    );
    let scope = layer(
        Layer::LandlockScope,
        6,
        "signals and abstract unix sockets scoped to the sandbox",
    );
    LandlockOutcome {
        abi: abi_num,
        layers: vec![fs, net, scope],
    }
}

/// True when `path` lies beneath one of `roots` (lexically).
pub fn is_beneath(path: &Path, roots: &[std::path::PathBuf]) -> bool {
    roots.iter().any(|r| path.starts_with(r))
}
