//! The seam between the sandbox and whoever supervises it.
//!
//! The sandbox takes the seccomp listener from its init (`pidfd_getfd`) and
//! collects the Python stream from its pipe; it hands both to the
//! [`Supervise`] it is given and never looks at what they carry. What a
//! notification means and what to answer is the supervisor's: the kernel
//! stream in `events::kernel` implements this trait, the sandbox does not
//! name it.
//!
//! Invariants: `python_stream` is called at most once per run, before the
//! command starts; `serve` at most once, after the init reported `Ready`
//! and before `go`, so no notification of the command can come before a
//! supervisor answers; the returned [`Serving`] is finished only after the
//! sandbox's init has exited, so every notification of the run went to it.
//!
//! There is no default supervisor here: the caller of `sandbox::run` names
//! one (`events::kernel::run_options()` is the kernel stream's), so this
//! module never depends on `events`, not even through an `impl`.

use std::any::Any;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex};

use super::plan::SandboxPlan;

/// The Python stream of a run as far as it has arrived (raw JSON lines).
pub type ReceivedStream = Arc<Mutex<Vec<u8>>>;

/// What a supervisor saw in one run, for its caller: the sandbox only
/// carries it (`events::kernel::log_of` reads the kernel stream's).
pub type SupervisorLog = Arc<dyn Any + Send + Sync>;

/// Supervises the runs it is given: answers their seccomp notifications.
pub trait Supervise: Send + Sync {
    /// The run's Python stream as it arrives, when the plan has one.
    fn python_stream(&self, _received: ReceivedStream) {}

    /// Start answering the notifications of `listener`, the seccomp
    /// listener of a sandbox built from `plan`.
    fn serve(&self, listener: OwnedFd, plan: &SandboxPlan) -> Box<dyn Serving>;
}

/// A supervisor answering one run's notifications.
pub trait Serving: Send {
    /// The sandbox has ended: stop, and give back what was seen.
    fn finish(self: Box<Self>) -> SupervisorLog;
}

/// A shareable supervisor, as [`super::RunOptions`] holds it.
#[derive(Clone)]
pub struct SupervisorHandle(pub Arc<dyn Supervise>);

impl std::fmt::Debug for SupervisorHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SupervisorHandle(..)")
    }
}
