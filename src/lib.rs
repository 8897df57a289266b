//! sdist-box: build wheels from untrusted Python source distributions inside
//! a kernel sandbox, and say what the package tried.
//!
//! The pipeline, one module per stage: [`archive`] (verify and safely
//! extract), [`project`] (static metadata; [`names`] says what a valid
//! name, version and file name is), [`buildenv`] (trusted build
//! requirements, wheels only), [`policy`] (profile → sandbox plan, pure),
//! [`sandbox`] (namespaces, mounts, Landlock, seccomp, rlimits), [`pipeline`]
//! (one build end to end; [`outputs`] places the wheel where no other
//! input's is) and [`report`]; [`batch`] runs many builds and
//! [`index`] publishes their wheels as a simple index; [`fetch`] turns a lock
//! file into verified sdists (not yet used by `build-all`, see docs/fetch.md).
//! Only `sandbox::sys` may use `unsafe`.
//!
//! Other programs build through [`Build`] (see [`api`]): one builder, one
//! call, one typed [`BuildReport`].
#![deny(unsafe_code)]

pub use api::{Build, Error};
pub use pipeline::Streams;
pub use report::{BuildReport, Status};

pub mod api;
pub mod archive;
pub mod batch;
pub mod batch_memory;
pub mod beneath;
pub mod buildenv;
pub mod cli;
pub mod command;
pub mod doctor;
pub mod events;
pub mod fetch;
pub mod index;
pub mod names;
pub mod outputs;
pub mod pipeline;
pub mod policy;
pub mod prebuild;
pub mod project;
pub mod report;
pub mod reproducible;
pub mod sandbox;
pub mod shim;
pub mod stages;
pub mod text;
pub mod wheelcheck;

/// If this process was started as the sandbox's init, run it (never
/// returns). Call first thing in `main` of any program that uses
/// [`sandbox::run`] with its own executable as init.
pub fn maybe_run_sandbox_init() {
    // `args_os`: the arguments of an ordinary run are paths, which need not
    // be UTF-8 (`std::env::args` would panic on them).
    let is_init = std::env::args_os()
        .next()
        .is_some_and(|a| a == sandbox::init::INIT_ARGV0);
    if is_init {
        let args: Vec<String> = std::env::args_os()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        sandbox::init::main(&args)
    }
}
