//! One guard for "remove what we made at the end unless --keep, also when stopped by a signal":
//! the normal end and a stop's end run the same removal, never under a main thread still using it.
//!
//! Register the guard before opening (a stop while opening then waits for the open and ends what
//! it made), hand it the objects with [`Cleanup::made`], and end the run with [`Cleanup::finish`].
//! A stop asks the main thread to park at its next [`gate::safe_point`] before it removes
//! anything: it waits for a message in hand ([`gate::hold`]) until it is printed whole, however
//! long that takes, and otherwise at most `patience`. With `--keep` ([`AtEnd::Keep`]) a stop
//! parks the main thread the same way, then leaves the objects in place.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::Result;
use crate::gate;
use crate::stop::{OnStop, on_stop};

/// What happens to the objects at the end of the run: a binary's `--keep` flag, named.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AtEnd {
    /// Remove them (the default; each pair's removal decides whether the peer still needs them).
    Remove,
    /// Leave them in place (`--keep`).
    Keep,
}

impl AtEnd {
    /// From a `--keep` flag.
    pub fn keep_if(keep: bool) -> AtEnd {
        if keep { AtEnd::Keep } else { AtEnd::Remove }
    }
}

/// The guard. `T` is what the removal needs (a handle, or names and ids), sent to the stop thread.
#[must_use = "the stop clean-up is cancelled when the guard is dropped"]
pub struct Cleanup<T> {
    at_end: AtEnd,
    made: Arc<Mutex<Option<T>>>,
    _on_stop: OnStop,
}

fn lock<T>(slot: &Mutex<Option<T>>) -> MutexGuard<'_, Option<T>> {
    slot.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<T: Send + 'static> Cleanup<T> {
    /// A stop from now on parks the main thread (see [`gate::stop_main`]: without limit while it
    /// holds a message, else at most `patience`, the longest an open may take) and then, unless
    /// `at_end` is [`AtEnd::Keep`], runs `when_stopped` on what [`Cleanup::made`] gave, if anything
    /// yet. The process then dies by its signal, so `when_stopped` reports its own errors.
    pub fn register(at_end: AtEnd, patience: Duration, when_stopped: impl FnOnce(T) + Send + 'static) -> Cleanup<T> {
        let made: Arc<Mutex<Option<T>>> = Arc::default();
        let guard = {
            let made = Arc::clone(&made);
            on_stop(move || {
                gate::stop_main(patience);
                let taken = lock(&made).take();
                if let (AtEnd::Remove, Some(what)) = (at_end, taken) {
                    when_stopped(what);
                }
            })
        };
        Cleanup { at_end, made, _on_stop: guard }
    }

    /// From now on a stop removes `what` (call it as soon as the open returns).
    pub fn made(&self, what: T) {
        *lock(&self.made) = Some(what);
    }

    /// The normal end of run: at a safe point (a stop in progress parks the main thread here and
    /// ends the run itself), runs `remove` on what was made, unless [`AtEnd::Keep`]; then tells
    /// the stop thread that the main thread touches nothing any more ([`gate::done`]). A stop that
    /// comes while `remove` runs waits for it (it holds the slot), then finds nothing left to end;
    /// `remove` cannot park at a safe point meanwhile ([`gate::ending`]), which would leave both
    /// threads waiting for each other.
    pub fn finish(&self, remove: impl FnOnce(&T) -> Result<()>) -> Result<()> {
        gate::safe_point();
        gate::ending();
        let mut slot = lock(&self.made);
        let removed = match (self.at_end, slot.take()) {
            (AtEnd::Remove, Some(what)) => remove(&what),
            _ => Ok(()),
        };
        drop(slot);
        gate::done();
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finish_removes_unless_kept() {
        for (at_end, runs) in [(AtEnd::Remove, true), (AtEnd::Keep, false)] {
            let c = Cleanup::register(at_end, Duration::ZERO, |_: u8| {});
            assert!(c.finish(|_| panic!("nothing made yet")).is_ok());
            c.made(7);
            let mut ran = false;
            c.finish(|&what| {
                ran = what == 7;
                Ok(())
            })
            .unwrap();
            assert_eq!(ran, runs, "{at_end:?}");
        }
    }
}
