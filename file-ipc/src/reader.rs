//! The reader: claims a message by renaming it to a private name, prints it and removes it, all
//! under the directory's flock, which a writer's rename also takes. So a claimed message that goes
//! back to the path goes back in its place: no newer one can be there, nor have been read.
//!
//! What may happen to a claimed message, and when:
//! - printed whole, then removed: delivered;
//! - put back, only if not a byte of it was printed and the flock is still ours: a stop that
//!   comes before its print starts, or a print that failed at its first byte;
//! - removed unprinted: part of it was printed when stdout failed, or its reader was killed
//!   (the next reader removes the dead reader's claimed file and says so). It is never put back
//!   once any of it may have been printed, so it is never printed twice nor behind a newer one.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use common::stop::{OnStop, on_stop};
use common::{Error, Result, SysResult};
use nix::errno::Errno;
use nix::sys::inotify::AddWatchFlags;
use nix::sys::stat::lstat;

use crate::print::Undelivered;
use crate::{IoTally, Private, Spot, Watch, check_message, lock, open_message, read_counted, sys};

/// What the stop thread must know of the message in the main thread's hand.
#[derive(Default)]
struct Hand {
    /// Set by a stop, before it looks at `printing`: the main thread claims nothing more, and a
    /// message it claimed and has not begun to print goes back.
    stopping: AtomicBool,
    /// Held by the main thread from its claim to the start of the print (a short read of a
    /// file), and true while it prints.
    printing: Mutex<bool>,
    /// Told when a print ends.
    printed: Condvar,
}

pub struct Reader {
    spot: Spot,
    claimed: PathBuf,
    arrived: Watch,
    hand: Arc<Hand>,
    /// Whether a message may wait that no look has found yet: at the start (one may have come
    /// before the watch), and after an event that names the path. Otherwise the next message's
    /// arrival is an event still to come (every arrival after the watch is one), so the reader
    /// waits for it before it looks: no look per message that finds nothing.
    fresh: bool,
    /// With `--show-io`: what reading the messages cost (see [`IoTally`]).
    pub io: Option<IoTally>,
    _stop: OnStop,
}

impl Reader {
    pub fn new(path: &Path) -> Result<Self> {
        let spot = Spot::new(path)?;
        // IN_MOVED_TO: our writer renames onto the path (that is no IN_CREATE). IN_CLOSE_WRITE: a
        // plain `echo hi > path` is complete once closed.
        let arrived = spot.watch(AddWatchFlags::IN_MOVED_TO | AddWatchFlags::IN_CLOSE_WRITE)?;
        let claimed = spot.private("claimed");
        let hand = Arc::new(Hand::default());
        let stop = {
            let hand = hand.clone();
            on_stop(move || {
                hand.stopping.store(true, Ordering::SeqCst);
                // However long stdout blocks: a message half printed must not go back, and one
                // cut short would be lost (the print is held in common::gate, which says so).
                common::gate::wait_while_held();
                let mut printing = lock(&hand.printing);
                while *printing {
                    printing = hand.printed.wait(printing).unwrap_or_else(PoisonError::into_inner);
                }
                // Kept locked until the process dies: the main thread claims nothing more.
                std::mem::forget(printing);
            })
        };
        let reader = Reader { claimed, spot, arrived, hand, fresh: true, io: None, _stop: stop };
        // Refused before anything is read: only a message file of ours may sit at the path.
        open_message(&reader.spot.path)?;
        reader.spot.lock()?.remove_dead(Private::Claimed);
        Ok(reader)
    }

    /// Waits for a message, claims it, reads and removes it: the bench's receive.
    pub fn recv(&mut self, on_wait: &mut dyn FnMut()) -> Result<Vec<u8>> {
        let mut got = Vec::new();
        self.recv_with(on_wait, &mut |m| {
            got = m.to_vec();
            Ok(())
        })?;
        Ok(got)
    }

    /// Waits for a message (calling `on_wait` once if there is none yet), claims it by renaming it
    /// to a private name, so two readers never both get it, hands it to `deliver` and removes it
    /// once delivered. If the process is stopped before `deliver` starts, or `deliver` fails
    /// before any of it went out, the message goes back to the path for the next reader; if part
    /// of it went out, it is removed (see the module's text).
    pub fn recv_with(
        &mut self,
        on_wait: &mut dyn FnMut(),
        deliver: &mut dyn FnMut(&[u8]) -> std::result::Result<(), Undelivered>,
    ) -> Result<()> {
        let mut waited = false;
        loop {
            if !self.fresh {
                if !waited {
                    on_wait();
                    waited = true;
                }
                self.arrived.wait()?;
            }
            // Whatever this look finds, what comes after it comes with an event.
            self.fresh = false;
            let locked = self.spot.lock()?;
            let Some((file, st)) = open_message(&self.spot.path)? else {
                // The watch was made before the first look: an arrival since is not missed.
                continue;
            };
            let mut printing = lock(&self.hand.printing);
            if self.stopping() {
                drop(printing);
                park();
            }
            match sys::rename(&self.spot.path, &self.claimed) {
                Ok(()) => {}
                Err(Errno::ENOENT) => continue, // a foreign reader took it
                Err(e) => return Err(Error::sys("rename", self.spot.path.display(), e)),
            }
            // The name was ours when opened; it must still be the same file now.
            common::trace::count_one(); // the lstat below: untraced, counted
            if lstat(&self.claimed).map(|c| (c.st_dev, c.st_ino)) != Ok((st.st_dev, st.st_ino)) {
                put_back(&self.claimed, &self.spot.path);
                return Err(Error::Failed(format!(
                    "{} was replaced while it was claimed: refused",
                    self.spot.path.display()
                )));
            }
            let mut msg = Vec::new();
            if let Err(e) = read_counted(&file, &mut msg, self.io.as_mut(), &self.spot.path) {
                put_back(&self.claimed, &self.spot.path);
                return Err(e);
            }
            // A stop came while we claimed: not a byte printed and the flock still ours, so the
            // message goes back in its place.
            if self.stopping() {
                put_back(&self.claimed, &self.spot.path);
                drop(printing);
                park();
            }
            *printing = true;
            drop(printing);
            // A second stop signal gives up a print that stdout blocks (common::gate): the message
            // is then lost, so its claimed file goes, never to be printed again.
            let claimed = self.claimed.clone();
            let held = common::gate::hold(&msg).if_lost(move || {
                let _ = sys::unlink(&claimed);
            });
            let delivered = deliver(&msg);
            drop(held);
            let done = match delivered {
                // Gone already (someone removed it by hand) is no failure after success.
                Ok(()) => match sys::unlink(&self.claimed) {
                    Err(Errno::ENOENT) => Ok(()),
                    other => other.sys("unlink", self.claimed.display()),
                },
                Err(Undelivered { error, partly: false }) => {
                    put_back(&self.claimed, &self.spot.path);
                    Err(error)
                }
                Err(Undelivered { error, partly: true }) => {
                    let _ = sys::unlink(&self.claimed);
                    say!(
                        "reader: the message was printed in part when stdout failed; it is removed, not put back (the next reader would print that part again)"
                    );
                    Err(error)
                }
            };
            let mut printing = lock(&self.hand.printing);
            *printing = false;
            // Only a stop waits on it, and a stop sets `stopping` before it looks: no futex call
            // per message.
            if self.stopping() {
                self.hand.printed.notify_all();
            }
            drop(printing);
            drop(locked);
            return done;
        }
    }

    fn stopping(&self) -> bool {
        self.hand.stopping.load(Ordering::SeqCst)
    }

    /// The end of a run: one line if a message still waits at the path (it is left for the next
    /// reader), none otherwise.
    pub fn pending(&self) -> Option<String> {
        let _locked = self.spot.lock().ok();
        let st = lstat(&self.spot.path).ok()?;
        check_message(&st, &self.spot.path).ok()?;
        Some(format!("a message waits at {}; left in place for the next reader", self.spot.path.display()))
    }
}

/// The main thread once a stop has begun: the stop thread ends the process.
fn park() -> ! {
    loop {
        std::thread::park();
    }
}

/// Puts a claimed message back at the agreed path, never over another message.
fn put_back(claimed: &Path, path: &Path) {
    match sys::rename_noreplace(claimed, path) {
        Ok(()) | Err(Errno::ENOENT) => {}
        Err(e) => say!(
            "reader: could not put back the message claimed as {} ({}); `reader --clean` removes it",
            claimed.display(),
            e.desc()
        ),
    }
}
