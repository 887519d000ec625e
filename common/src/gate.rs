//! Stopping the main thread at a safe point before the stop thread ends the run.
//!
//! The stop thread decides whether the objects can be removed. While it does, the main thread
//! must not take a message (it would be gone from the object but never printed) nor sit in a
//! wait (a SysV wait counts as a user). So the stop thread asks, and the main thread parks at its
//! next safe point: before each wait, between its timed waits, after a wait that the stop thread
//! interrupted, or before its own end of run. It never parks holding a message that it has not
//! printed. A main thread blocked in a call that has no timeout (msgrcv) is woken by SIGURG, whose
//! handler does nothing: the call fails with EINTR and the caller goes to its safe point. The stop
//! thread waits for all that a bounded time (the main thread may be stuck writing to a full
//! stdout, away from any object).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock, PoisonError};

use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
use std::time::{Duration, Instant};

static STOPPING: AtomicBool = AtomicBool::new(false);
static ENDING: AtomicBool = AtomicBool::new(false);
static PARKED: Mutex<bool> = Mutex::new(false);
static CHANGED: Condvar = Condvar::new();

fn parked() -> MutexGuard<'static, bool> {
    PARKED.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Called by the main thread where it holds nothing: parks for good if a stop was asked for.
/// Once the main thread has begun its own end of run ([`ending`]) there is no safe point left: it
/// may hold what the stop thread waits for, so it goes on to [`done`] instead.
pub fn safe_point() {
    if !STOPPING.load(Ordering::SeqCst) || ENDING.load(Ordering::SeqCst) {
        return;
    }
    let mut p = parked();
    *p = true;
    CHANGED.notify_all();
    loop {
        p = CHANGED.wait(p).unwrap_or_else(PoisonError::into_inner); // the stop thread ends the process
    }
}

/// Called by the main thread past its last safe point, as it begins its own end of run: a stop
/// from now on waits for [`done`].
pub fn ending() {
    ENDING.store(true, Ordering::SeqCst);
}

/// Called by the main thread once its own end of run is over: it will touch nothing any more.
pub fn done() {
    *parked() = true;
    CHANGED.notify_all();
}

/// Called by the stop thread: asks the main thread to park and waits until it has (or is done),
/// at most `limit`. Wakes it again every few milliseconds: a SIGURG that lands just before the
/// main thread enters its blocking call is lost on the handler, the next one is not.
pub fn stop_main(limit: Duration) {
    STOPPING.store(true, Ordering::SeqCst);
    let deadline = Instant::now() + limit;
    let mut p = parked();
    while !*p {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        wake_main();
        p = CHANGED.wait_timeout(p, left.min(Duration::from_millis(10))).unwrap_or_else(PoisonError::into_inner).0;
    }
}

/// Whether a stop has been asked for (a caller that got EINTR goes to its safe point then).
pub fn stopping() -> bool {
    STOPPING.load(Ordering::SeqCst)
}

static MAIN: OnceLock<libc::pthread_t> = OnceLock::new();

extern "C" fn woken(_: libc::c_int) {}

/// Called once by the main thread, before it first blocks in a call without a timeout: lets
/// [`stop_main`] interrupt that call with SIGURG (ignored by default, so a stray one does no harm;
/// no SA_RESTART, so the call returns EINTR).
pub fn arm() -> crate::Result<()> {
    use crate::SysResult;
    // SAFETY: pthread_self has no preconditions.
    let me = unsafe { libc::pthread_self() };
    let _ = MAIN.set(me);
    let action = SigAction::new(SigHandler::Handler(woken), SaFlags::empty(), SigSet::empty());
    // SAFETY: `woken` does nothing, so it is async-signal-safe.
    unsafe { sigaction(Signal::SIGURG, &action) }.sys("sigaction", "SIGURG").map(drop)
}

fn wake_main() {
    if let Some(&main) = MAIN.get() {
        // SAFETY: `main` is the main thread, which lives as long as the process.
        unsafe { libc::pthread_kill(main, libc::SIGURG) };
    }
}
