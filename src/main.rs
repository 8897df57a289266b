//! The `sdist-box` command: a thin layer over the library.

use std::process::ExitCode;

fn main() -> ExitCode {
    // The sandbox re-executes this binary as its pid 1; that path never
    // returns and never parses our command line.
    sdist_box::maybe_run_sandbox_init();
    sdist_box::cli::main()
}
