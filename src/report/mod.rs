//! The build report: one typed value, rendered as JSON (versioned, for
//! machines) and as a short summary for people.
//!
//! Everything in the report that came from the package (names, versions,
//! hook output, error messages) is attacker text: the text renderer escapes
//! it; the JSON renderer relies on JSON string escaping.

mod fail_on;
pub mod resources;
pub mod sarif;
pub mod text;

pub use fail_on::FailOn;

use std::path::PathBuf;

use serde::Serialize;

use crate::sandbox::{Enforcement, Layer};

/// Bumped on any incompatible change of the JSON form.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize)]
pub struct BuildReport {
    pub schema_version: u32,
    pub tool: Tool,
    pub input: Input,
    pub project: Option<crate::project::ProjectMeta>,
    pub profile: ProfileInfo,
    pub interpreter: Option<InterpreterInfo>,
    pub build_env: Option<BuildEnvInfo>,
    pub sandbox: Option<SandboxInfo>,
    pub hooks: Vec<HookRun>,
    pub outcome: Outcome,
    pub wheel: Option<WheelInfo>,
    /// What the wheel carries (absent when no wheel was built).
    pub wheel_check: Option<crate::wheelcheck::WheelCheck>,
    /// Present with `--check-reproducible`.
    pub reproducible: Option<crate::reproducible::Reproducibility>,
    pub log: Option<PathBuf>,
    pub timings: Timings,
    /// What the package tried, most serious first.
    pub findings: Vec<crate::events::findings::Finding>,
    /// How much each stream carried.
    pub streams: StreamStats,
    /// The kernel stream's events in detail (bounded), for reviewers.
    pub kernel_events: Vec<crate::events::kernel::KernelEvent>,
    /// `sdist-box run`: the command that ran (absent for a build).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// `--ask`: every question and how it was settled, in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub decisions: Vec<crate::events::ask::Decision>,
    /// What the `--pre-build` hook did (absent without one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pre_build: Option<crate::prebuild::PreBuild>,
}

/// Volume of the two event streams over the whole build.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StreamStats {
    pub kernel_notifications: u64,
    /// Kernel events answered but not kept in detail (flood guard).
    pub kernel_dropped: u64,
    pub audit_events: u64,
    pub audit_dropped: u64,
    /// Python processes that started with the audit hook.
    pub hooked_processes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Tool {
    pub name: &'static str,
    pub version: &'static str,
}

impl Default for Tool {
    fn default() -> Self {
        Tool {
            name: "sdist-box",
            version: env!("CARGO_PKG_VERSION"),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Input {
    pub path: PathBuf,
    pub filename: String,
    pub sha256: Option<String>,
    /// True when `--sha256` pinned it and the pin matched.
    pub sha256_pinned: bool,
    pub size_bytes: u64,
    pub archive: Option<crate::archive::Extracted>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProfileInfo {
    pub name: String,
    pub description: String,
    pub required_layers: Vec<Layer>,
    /// The network mode and, for an allowlist, what each entry resolved to
    /// (absent until a sandbox was planned).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkInfo>,
}

/// The network the build was given.
#[derive(Debug, Clone, Serialize)]
pub struct NetworkInfo {
    pub mode: crate::policy::NetworkMode,
    /// Allowlist entries as written, with the addresses sdist-box resolved
    /// them to (outside the sandbox) and lets `connect` reach.
    pub allow: Vec<AllowResolved>,
    pub bind_ports: Vec<u16>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AllowResolved {
    pub entry: String,
    pub addresses: Vec<std::net::SocketAddr>,
}

impl NetworkInfo {
    pub fn from_plan(plan: &crate::sandbox::plan::NetworkPlan) -> NetworkInfo {
        NetworkInfo {
            mode: plan.mode,
            allow: plan
                .resolved
                .iter()
                .map(|(entry, addresses)| AllowResolved {
                    entry: entry.clone(),
                    addresses: addresses.clone(),
                })
                .collect(),
            bind_ports: plan.bind_ports.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct InterpreterInfo {
    pub executable: PathBuf,
    pub version: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct BuildEnvInfo {
    /// The environment the wheel was built in.
    pub key: String,
    pub path: PathBuf,
    pub requirements: Vec<String>,
    pub reused: bool,
    /// Set when the cached environment was found damaged and made anew:
    /// what was wrong with it.
    pub repaired: Option<String>,
    /// What `get_requires_for_build_wheel` asked for at run time.
    pub dynamic_requirements: Vec<String>,
    /// `(name, version)` of every distribution installed in it.
    pub installed: Vec<(String, String)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SandboxInfo {
    pub enforcement: Enforcement,
    /// Names (never values) of host environment variables the build did not see.
    pub dropped_env: Vec<String>,
    pub limits: crate::sandbox::Limits,
}

/// One sandboxed run of the hook runner.
#[derive(Debug, Clone, Serialize)]
pub struct HookRun {
    pub phase: String,
    /// What the hook runner reported (null if it reported nothing).
    pub result: Option<serde_json::Value>,
    pub exit: crate::sandbox::RunExit,
    pub peak_processes: u64,
    pub max_rss_kib: u64,
    pub setup_ms: f64,
    pub total_ms: f64,
    /// The whole sandbox's cgroup: limits, peaks, limit events (absent
    /// without one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<crate::sandbox::cgroup::Usage>,
    /// How full the sandbox's sized file systems ended.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filesystems: Vec<crate::sandbox::resources::FsUse>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// The wheel was built.
    Built,
    /// `sdist-box run`: the command ran and exited 0.
    Ran,
    /// The package's build failed; its output is in the log.
    BuildFailed,
    /// The input was refused before anything ran.
    Refused,
    /// The sandbox could not be set up as the profile requires.
    SandboxUnavailable,
    /// Anything else (I/O, build requirements).
    Error,
}

impl Status {
    /// The name used in the JSON report and the stage events.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Built => "built",
            Status::Ran => "ran",
            Status::BuildFailed => "build-failed",
            Status::Refused => "refused",
            Status::SandboxUnavailable => "sandbox-unavailable",
            Status::Error => "error",
        }
    }
}

/// A resource limit the build ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LimitHit {
    WallClock,
    Memory,
    Processes,
    FileSize,
    Cpu,
    /// A size-limited file system of the sandbox filled up.
    Disk,
}

#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub status: Status,
    /// One sentence for people; absent when built.
    pub reason: Option<String>,
    pub limit_hit: Option<LimitHit>,
}

#[derive(Debug, Clone, Serialize)]
pub struct WheelInfo {
    pub filename: String,
    pub path: PathBuf,
    pub sha256: String,
    pub size_bytes: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Timings {
    pub verify_ms: f64,
    pub extract_ms: f64,
    pub metadata_ms: f64,
    pub buildenv_ms: f64,
    pub requires_ms: f64,
    pub wheel_ms: f64,
    /// `prepare_metadata_for_build_wheel`, its own sandboxed run.
    pub prepare_metadata_ms: f64,
    /// The `--pre-build` hook, with hashing the tree before and after.
    pub pre_build_ms: f64,
    /// Reading the wheel and comparing it with the sdist as shipped.
    pub wheel_check_ms: f64,
    pub total_ms: f64,
}

impl BuildReport {
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("the report serializes")
    }
}
