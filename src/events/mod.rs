//! What the package tried: the kernel stream (seccomp notifications, every
//! process) and, later, the Python stream (audit hook) and their pairing.

pub mod anon_exec;
pub mod ask;
pub mod dns;
pub mod exec_check;
pub mod findings;
pub mod kernel;
pub mod program;
pub mod python;
pub mod sources;
pub mod verdicts;
