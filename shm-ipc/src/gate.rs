//! Stopping the main thread at a safe point before the stop thread ends the run.
//!
//! The stop thread decides whether the objects can be removed. While it does, the main thread
//! must not take a message (it would be gone from the segment but never printed) nor sit in a
//! wait (a SysV wait counts as a user). So the stop thread asks, and the main thread parks at its
//! next safe point: before each wait, between its timed waits, or before its own end of run. It
//! never parks holding BUSY or a message that it has not printed. The stop thread waits for that
//! a bounded time (the main thread may be stuck writing to a full stdout, away from any object).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

static STOPPING: AtomicBool = AtomicBool::new(false);
static PARKED: Mutex<bool> = Mutex::new(false);
static CHANGED: Condvar = Condvar::new();

fn parked() -> MutexGuard<'static, bool> {
    PARKED.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Called by the main thread where it holds nothing: parks for good if a stop was asked for.
pub fn safe_point() {
    if !STOPPING.load(Ordering::SeqCst) {
        return;
    }
    let mut p = parked();
    *p = true;
    CHANGED.notify_all();
    loop {
        p = CHANGED.wait(p).unwrap_or_else(PoisonError::into_inner); // the stop thread ends the process
    }
}

/// Called by the main thread once its own end of run is over: it will touch nothing any more.
pub fn done() {
    *parked() = true;
    CHANGED.notify_all();
}

/// Called by the stop thread: asks the main thread to park and waits until it has (or is done),
/// at most `limit`.
pub fn stop_main(limit: Duration) {
    STOPPING.store(true, Ordering::SeqCst);
    let deadline = Instant::now() + limit;
    let mut p = parked();
    while !*p {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        p = CHANGED.wait_timeout(p, left).unwrap_or_else(PoisonError::into_inner).0;
    }
}
