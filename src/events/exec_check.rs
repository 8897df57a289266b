//! `--ask`'s check after an exec it allowed: the program that runs is the
//! one that was shown.
//!
//! The supervisor resolves an exec's path while the caller waits
//! ([`super::program`]), but the kernel resolves it again when the call
//! continues, and the package can change what the path names in between:
//! another thread rewriting the string in memory, a symlink swapped in the
//! build tree. Seccomp's user notification has no way to close that gap for
//! exec (the kernel documents `CONTINUE` as unfit for security decisions).
//! So every process `--ask` let exec is watched by the identity of its image
//! (`/proc/<pid>/exe`: device and inode): the image it ran before (the exec
//! failed, or has not happened yet) or the approved one is fine; anything
//! else ran instead of what the person allowed — an evasion. That process
//! is killed, through a pidfd opened while it still waited (no pid-reuse
//! race), and the report says what ran.
//!
//! Two looks: a watcher thread polls each watched process (every 50 µs for
//! its first 10 ms, then every 5 ms, for up to 5 s), and the supervisor
//! looks again, exactly, at that process's next notified call (exec,
//! connect, send: the caller is stopped then). Measured with a thread
//! flipping the path under an "always" (tests/ask_exec.rs, a loaded 2-core
//! host): a substitute that runs for seconds was caught every time; one
//! that ends within about a millisecond (`/usr/bin/true`) and makes no
//! notified call was caught 27 times in 33 — it can run unseen. So can a
//! file changed in place (same inode) after the question.
//!
//! Invariants: a watch is armed before its exec is answered; every watch
//! ends (approved image seen, process gone, evasion, or time limit); an
//! evasion is recorded once, whether or not the kill still found the
//! process.

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::program::{FileId, Program, running_image, running_image_shown};
use crate::sandbox::sys;

/// How long a watch lasts (an exec that has not happened by then failed).
const WATCH_FOR: Duration = Duration::from_secs(5);
/// Polled fast while young: an exec completes within milliseconds.
const FAST_FOR: Duration = Duration::from_millis(10);
const FAST_POLL: Duration = Duration::from_micros(50);
const SLOW_POLL: Duration = Duration::from_millis(5);

/// A program that ran instead of the one allowed.
#[derive(Debug, Clone)]
pub struct Substitution {
    /// The decision that allowed the exec.
    pub decision: u64,
    /// What ran (its path in the sandbox, escaped).
    pub ran: String,
    /// The process was still there to kill.
    pub killed: bool,
}

struct Watch {
    pidfd: OwnedFd,
    tgid: u32,
    before: FileId,
    approved: FileId,
    decision: u64,
    armed: Instant,
}

enum Look {
    /// Still the image from before the exec.
    Before,
    /// The approved image: done.
    Approved,
    /// The process ended.
    Gone,
    /// Something else runs.
    Other,
}

impl Watch {
    fn alive(&self) -> bool {
        // A pidfd turns readable when its process ends.
        !sys::poll_in(self.pidfd.as_fd(), Duration::ZERO)
    }

    fn look(&self) -> Look {
        if !self.alive() {
            return Look::Gone;
        }
        let image = running_image(self.tgid);
        // Alive after the look too, so the pid was not reused in between.
        if !self.alive() {
            return Look::Gone;
        }
        match image {
            None => Look::Gone,
            Some(id) if id == self.approved => Look::Approved,
            Some(id) if id == self.before => Look::Before,
            Some(_) => Look::Other,
        }
    }

    fn substituted(&self) -> Substitution {
        let ran = running_image_shown(self.tgid);
        let killed = sys::pidfd_send_signal(self.pidfd.as_fd(), libc::SIGKILL).is_ok();
        Substitution {
            decision: self.decision,
            ran,
            killed,
        }
    }
}

#[derive(Default)]
struct State {
    watches: HashMap<u32, Watch>,
    found: Vec<Substitution>,
    stop: bool,
}

impl State {
    /// Look at one watch; false when it is over.
    fn keep(&mut self, tgid: u32, now: Instant) -> bool {
        let Some(w) = self.watches.get(&tgid) else {
            return false;
        };
        let keep = match w.look() {
            Look::Before => now.duration_since(w.armed) < WATCH_FOR,
            Look::Approved | Look::Gone => false,
            Look::Other => {
                let s = w.substituted();
                self.found.push(s);
                false
            }
        };
        if !keep {
            self.watches.remove(&tgid);
        }
        keep
    }
}

/// Why an allowed exec is not checked afterwards (said at the prompt).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unchecked {
    /// Neither ELF nor `#!`: what runs it (binfmt_misc) is not known.
    UnknownImage,
    /// The caller's process could not be examined (it ended, or /proc
    /// said nothing).
    NoProcess,
}

/// The watches of one sandbox run.
pub struct ExecChecks {
    state: Arc<(Mutex<State>, Condvar)>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Default for ExecChecks {
    fn default() -> Self {
        ExecChecks::start()
    }
}

impl ExecChecks {
    pub fn start() -> ExecChecks {
        let state: Arc<(Mutex<State>, Condvar)> = Arc::default();
        let s = state.clone();
        let thread = std::thread::Builder::new()
            .name("sdist-box-exec-check".into())
            .spawn(move || watch_loop(&s))
            .expect("spawn the exec-check thread");
        ExecChecks {
            state,
            thread: Mutex::new(Some(thread)),
        }
    }

    /// Before an allowed exec of `program` by thread `tid` is answered:
    /// watch its process. `decision` names the decision for the report.
    pub fn arm(&self, tid: u32, program: &Program, decision: u64) -> Result<(), Unchecked> {
        let approved = program.image.ok_or(Unchecked::UnknownImage)?;
        let tgid = thread_group(tid).ok_or(Unchecked::NoProcess)?;
        let pidfd = sys::pidfd_open(tgid as i32).map_err(|_| Unchecked::NoProcess)?;
        let before = running_image(tgid).ok_or(Unchecked::NoProcess)?;
        let watch = Watch {
            pidfd,
            tgid,
            before,
            approved,
            decision,
            armed: Instant::now(),
        };
        let (lock, wake) = &*self.state;
        let mut st = lock.lock().unwrap_or_else(|e| e.into_inner());
        // An earlier watch of this process: looked at now, while the
        // process is stopped in this call.
        st.keep(tgid, Instant::now());
        st.watches.insert(tgid, watch);
        wake.notify_one();
        Ok(())
    }

    /// At a notified call of thread `tid` (stopped in it): if its process
    /// runs something other than the program last allowed, kill it and
    /// say so (true).
    pub fn at_call(&self, tid: u32) -> bool {
        let Some(tgid) = thread_group(tid) else {
            return false;
        };
        let (lock, _) = &*self.state;
        let mut st = lock.lock().unwrap_or_else(|e| e.into_inner());
        if !st.watches.contains_key(&tgid) {
            return false;
        }
        let before = st.found.len();
        st.keep(tgid, Instant::now());
        st.found.len() > before
    }

    /// The sandbox has ended: stop watching, and return what was found.
    pub fn finish(&self) -> Vec<Substitution> {
        {
            let (lock, wake) = &*self.state;
            lock.lock().unwrap_or_else(|e| e.into_inner()).stop = true;
            wake.notify_one();
        }
        if let Some(t) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = t.join();
        }
        let (lock, _) = &*self.state;
        std::mem::take(&mut lock.lock().unwrap_or_else(|e| e.into_inner()).found)
    }
}

fn watch_loop(state: &(Mutex<State>, Condvar)) {
    let (lock, wake) = state;
    loop {
        let mut st = lock.lock().unwrap_or_else(|e| e.into_inner());
        while st.watches.is_empty() && !st.stop {
            st = wake.wait(st).unwrap_or_else(|e| e.into_inner());
        }
        let now = Instant::now();
        let tgids: Vec<u32> = st.watches.keys().copied().collect();
        for tgid in tgids {
            st.keep(tgid, now);
        }
        if st.stop {
            return;
        }
        let fast = st
            .watches
            .values()
            .any(|w| now.duration_since(w.armed) < FAST_FOR);
        drop(st);
        std::thread::sleep(if fast { FAST_POLL } else { SLOW_POLL });
    }
}

/// The thread group (process) of host thread `tid`.
fn thread_group(tid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{tid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Tgid:"))?
        .trim()
        .parse()
        .ok()
}
