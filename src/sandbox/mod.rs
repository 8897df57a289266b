//! The kernel sandbox: namespaces, a private mount view, an unprivileged
//! uid, no capabilities, Landlock, rlimits and a seccomp deny filter.
//!
//! `plan` says what the sandbox looks like (pure data); `run` starts one
//! command in it from the parent; `init` is the in-sandbox pid 1 that builds
//! the layers in order; `sys` is the only place with `unsafe` code.

pub mod cgroup;
pub mod init;
pub mod landlock;
pub mod plan;
pub mod resources;
pub mod run;
pub mod seccomp;
pub mod status;
pub(crate) mod sys;
pub mod tree;

pub use plan::{Access, LandlockPlan, Layer, Limits, Mode, MountEntry, SandboxPlan};
pub use run::{RunExit, RunOptions, RunOutcome, SandboxError, choose_mode, run, user_namespaces};
pub use status::{Enforcement, LayerState, LayerStatus};
