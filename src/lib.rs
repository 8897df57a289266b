//! sdist-box: build wheels from untrusted Python source distributions inside
//! a kernel sandbox, and say what the package tried.
//!
//! The pipeline is in the folder names. [`build`] builds one sdist as a
//! short sequence of named stages: verify and extract ([`archive`]) →
//! metadata ([`project`]; [`names`] says what a valid name, version and file
//! name is) → pre-build ([`prebuild`]) → buildenv ([`buildenv`]: trusted,
//! wheels only) → the PEP 517 hooks, each call one sandboxed run
//! (`build::hook_call`: [`policy`] compiles the profile into a plan,
//! [`sandbox`] enforces it, [`events`] pairs the two streams into findings)
//! → copy-out (`build::copy_out`, to a part file) → wheel-check
//! ([`wheelcheck`], one file per check; [`reproducible`]) → [`report`] →
//! publish (`build::publish`: the report beside the wheel first, then the
//! wheel under its name, where [`outputs`] says no other input's is). Beside it: [`stages`] (the stage
//! events), [`files`] (atomic writes, reading what a sandbox wrote),
//! [`batch`] (many builds; [`batch_memory`] fits `--jobs` to the host's
//! memory), [`index`] (their wheels as a simple index),
//! [`command`] (any command in the sandbox), [`doctor`] (what this host
//! enforces), [`fetch`] (a lock file into verified sdists) and
//! [`lock_input`] (a lock as `build-all`'s input: its entries fetched by the
//! batch's workers; see docs/fetch.md).
//!
//! Layering: [`cli`] (clap, one file per command, and the one place where
//! outcomes become exit codes) → the library ([`api`], [`batch`],
//! [`command`], [`build`] and the stages) → [`sandbox`] → `sandbox::sys`.
//! Nothing in the library imports [`cli`]: it returns typed outcomes
//! ([`Status`], [`report::FailOn`]) and thiserror errors. Only
//! `sandbox::sys` may use `unsafe`.
//!
//! Other programs build through [`Build`] (see [`api`]): one builder, one
//! call, one typed [`BuildReport`].
#![deny(unsafe_code)]

pub use api::{Build, Error};
pub use build::Streams;
pub use report::{BuildReport, Status};

pub mod api;
pub mod archive;
pub mod batch;
pub mod batch_memory;
pub mod beneath;
pub mod build;
pub mod buildenv;
pub mod cli;
pub mod command;
pub mod doctor;
pub mod events;
pub mod fetch;
pub mod files;
pub mod index;
pub mod lock_input;
pub mod names;
pub mod outputs;
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
pub mod workdir;

/// If this process was started as the sandbox's init, run it (never
/// returns). Call first thing in `main` of any program that uses
/// [`sandbox::run()`] with its own executable as init.
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
