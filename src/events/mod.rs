//! What the package tried: the kernel stream (seccomp notifications, every
//! process) and, later, the Python stream (audit hook) and their pairing.
//!
//! Layering: `events` depends on `sandbox` (it supervises runs through
//! `sandbox::Supervise`, reads their memory through `sandbox::sys`, and
//! decides by the plan's network mode), never the reverse, and not on
//! `policy` (only its tests compile profiles). Inside, the kernel
//! stream is a line: `kernel` (the supervisor loop) → `ask` (the decision
//! hook) → `verdicts` (the profile's answers) → `syscall` (what a notified
//! call is); `findings` pairs `kernel`'s log with `python`'s stream.

pub mod anon_exec;
pub mod ask;
pub mod dns;
pub mod exec_check;
pub mod findings;
pub mod kernel;
pub mod program;
pub mod python;
pub mod sources;
pub mod syscall;
pub mod verdicts;
