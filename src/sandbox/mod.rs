//! The kernel sandbox: namespaces, a private mount view, an unprivileged
//! uid, no capabilities, Landlock, rlimits and a seccomp deny filter.
//!
//! `plan` says what the sandbox looks like (pure data); `run` starts one
//! command in it from the parent; `init` is the in-sandbox pid 1 that builds
//! the layers in order; `sys` is the only place with `unsafe` code;
//! `supervise` is the seam the parent hands the seccomp listener through.
//!
//! Layering: `cli` → library (`pipeline`, `command`, …) → `events` and
//! `policy` → `sandbox` → `sys`. The sandbox names no module above it
//! (only `text`, to escape what it echoes): `policy` builds its plans,
//! `events` supervises its runs through [`Supervise`]; both depend on it,
//! neither on the other, and never the reverse. `scripts/modgraph` checks
//! it.

pub mod cgroup;
pub mod init;
pub mod landlock;
pub mod plan;
pub mod resources;
pub mod run;
pub mod seccomp;
pub mod status;
pub mod supervise;
pub(crate) mod sys;
pub mod tree;

pub use plan::{
    Access, LandlockPlan, Layer, Limits, Mode, MountEntry, NetworkMode, ROOT_MAPS_TO, SandboxPlan,
};
pub use run::{RunExit, RunOptions, RunOutcome, SandboxError, choose_mode, run, user_namespaces};
pub use status::{Enforcement, LayerState, LayerStatus};
pub use supervise::{Serving, Supervise, SupervisorHandle, SupervisorLog};
