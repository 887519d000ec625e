//! Stop and clean up: on SIGINT (Ctrl-C), SIGTERM, SIGQUIT (Ctrl-\) or SIGHUP (its terminal was
//! closed) a process removes what it created and has not handed over, then dies by that same
//! signal, so the shell sees 130 / 143 / 131 / 129 and a shell loop stops too.
//!
//! Why a signal thread: the stop signals are blocked in every thread and one thread takes them
//! with sigwait(). It runs ordinary code (no async-signal-safety limits), tells SIGINT from SIGTERM
//! (ctrlc cannot, so it would lose the 130/143 difference) and does not depend on waking the main
//! thread: msgrcv and semop are never restarted, but FIFO open() and read() would be under
//! SA_RESTART, and a flag checked just before a blocking call can miss a signal that lands between
//! the check and the call. The main thread never sees EINTR from a stop, so it can retry EINTR
//! (SIGSTOP/SIGCONT interrupts semop even with no handler) unconditionally.
//!
//! A stop never half-prints: a message the main thread holds is printed whole first, however long
//! that takes, and a second stop signal meanwhile gives it up, naming it (see `gate.rs`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use nix::sys::resource::{Resource, setrlimit};
use nix::sys::signal::{SigHandler, SigSet, Signal, raise, signal};

use crate::{Result, SysResult, gate};

type Action = Box<dyn FnOnce() + Send>;

static ACTIONS: Mutex<Vec<(u64, Action)>> = Mutex::new(Vec::new());
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

fn actions() -> MutexGuard<'static, Vec<(u64, Action)>> {
    ACTIONS.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The signals that stop a process cleanly.
pub const STOP_SIGNALS: [Signal; 4] = [Signal::SIGINT, Signal::SIGTERM, Signal::SIGQUIT, Signal::SIGHUP];

/// [`STOP_SIGNALS`], less any that this process was started with ignored: a job that a
/// non-interactive shell starts with `&` ignores SIGINT and SIGQUIT and should stay deaf to them,
/// and `nohup` ignores SIGHUP so that the job outlives its terminal.
fn stop_signals() -> SigSet {
    let mut set = SigSet::empty();
    for sig in STOP_SIGNALS {
        if !ignored(sig) {
            set.add(sig);
        }
    }
    set
}

fn ignored(sig: Signal) -> bool {
    // SAFETY: sigaction with a null new action only reads the current one into `old`.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(sig as i32, std::ptr::null(), &mut old) == 0 && old.sa_sigaction == libc::SIG_IGN
    }
}

/// Blocks the stop signals and starts the thread that handles them. Call it first in `main`,
/// before any other thread exists, so that every thread inherits the blocked mask.
pub fn install() -> Result<()> {
    let set = stop_signals();
    set.thread_block().sys("pthread_sigmask", "SIGINT, SIGTERM, SIGQUIT, SIGHUP")?;
    std::thread::Builder::new()
        .name("stop".into())
        .spawn(move || {
            let sig = next_signal(&set);
            // The stop may wait for a message in hand for as long as stdout blocks: a second stop
            // signal is then the way out (if no thread can be made, the stop still ends as asked).
            let _ = std::thread::Builder::new().name("stop again".into()).spawn(move || again(&set));
            // Hold the lock to the end: nothing can be registered after the clean-up ran.
            let mut pending = actions();
            for (_, action) in pending.drain(..) {
                action();
            }
            die_by(sig)
        })
        .sys("pthread_create", "stop thread")?;
    Ok(())
}

fn next_signal(set: &SigSet) -> Signal {
    loop {
        if let Ok(sig) = set.wait() {
            return sig;
        }
    }
}

/// A second stop signal while the first waits for the message in hand ([`gate::hold`]): gives it
/// up, says which, and ends the process at once by that signal. At any other moment the first
/// stop ends by itself (its other waits are bounded) and the second adds nothing.
fn again(set: &SigSet) {
    loop {
        let sig = next_signal(set);
        if let Some(lost) = gate::give_up() {
            let line = format!("{}: stopped again ({sig}): {lost}", gate::program());
            // stderr may be blocked as stdout is (a terminal after Ctrl-S): the line gets a moment,
            // the end does not wait for it.
            let (said, told) = std::sync::mpsc::channel();
            let copy = line.clone();
            match std::thread::Builder::new().spawn(move || {
                crate::diag!("{copy}");
                let _ = said.send(());
            }) {
                Ok(_) => drop(told.recv_timeout(std::time::Duration::from_secs(1))),
                Err(_) => crate::diag!("{line}"),
            }
            die_by(sig)
        }
    }
}

/// While the returned guard lives, `action` runs if the process is stopped by a stop signal.
/// Drop the guard once the object is removed or handed over to the peer.
#[must_use = "the clean-up is cancelled when the guard is dropped"]
pub struct OnStop(u64);

pub fn on_stop(action: impl FnOnce() + Send + 'static) -> OnStop {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    actions().push((id, Box::new(action)));
    OnStop(id)
}

impl Drop for OnStop {
    fn drop(&mut self) {
        actions().retain(|(id, _)| *id != self.0);
    }
}

/// Ends the process by `sig` with its default action (the exit status a shell reports as 128+sig).
/// SIGQUIT's default action also dumps core: after a clean stop there is nothing to debug, so the
/// core size limit is set to 0 first.
pub fn die_by(sig: Signal) -> ! {
    if sig == Signal::SIGQUIT {
        let _ = setrlimit(Resource::RLIMIT_CORE, 0, 0);
    }
    // SAFETY: installing SIG_DFL involves no Rust handler and no shared state.
    let _ = unsafe { signal(sig, SigHandler::SigDfl) };
    let mut only = SigSet::empty();
    only.add(sig);
    let _ = only.thread_unblock();
    let _ = raise(sig);
    std::process::exit(128 + sig as i32)
}
