//! One build, end to end: verify → extract → metadata → build env →
//! `get_requires_for_build_wheel` in the sandbox → second-round build env →
//! `build_wheel` in the sandbox → copy the wheel out (to a part file) →
//! the report written beside it → the wheel placed (`publish`).
//!
//! Invariants: nothing from the sdist runs outside the sandbox; the
//! project's name and version are valid and agree across the file name,
//! `PKG-INFO` and `pyproject.toml` before they are used; the sandbox
//! never writes the output directory (the wheel is copied out by us, after
//! every process of the sandbox has ended, as one regular file whose name
//! and metadata are this sdist's project and version, never in place of
//! another input's wheel); every file we read back from the sandbox's directories is
//! opened without following links and with a size bound; outputs are written
//! atomically.

mod copy_out;
mod failure;
mod hook_call;
mod publish;
mod request;
mod steps;
pub(crate) mod streams;
mod twice;
mod wheel_check;

pub use copy_out::valid_wheel_name;
pub(crate) use hook_call::warn_degraded;
pub use publish::sweep_parts;
pub use request::{BuildRequest, Streams, not_utf8};
pub use steps::{build, sdist_stem};
pub(crate) use streams::{add_python_stream, explain_run};
pub use twice::build_twice;
