//! `build` and `run` on SIGINT and SIGTERM: the sandboxes end, their work
//! directories are removed, and the process exits with 128 + the signal's
//! number (`build-all` has its own, graceful handling in `batch`).

use nix::sys::signal::{SigSet, Signal};

/// Call first, before any thread exists: the signals are blocked in every
/// thread and taken by one waiter (children start with an empty mask:
/// std's `Command` resets it, and so does the sandbox's clone child).
pub fn clean_up_on_signals() -> anyhow::Result<()> {
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    set.thread_block()
        .map_err(|e| anyhow::anyhow!("cannot block SIGINT and SIGTERM: {e}"))?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let Ok(signal) = set.wait() else {
                return;
            };
            eprintln!("\nsdist-box: {signal} received: stopping, and removing the work directory");
            crate::workdir::abandon_all();
            std::process::exit(128 + signal as i32);
        })?;
    Ok(())
}
