//! The reader: takes a message by reading it and removing it from the path, then prints it, all
//! under the directory's flock, which a writer's rename also takes. So a message taken and not
//! printed goes back in its place: no newer one can be there, nor have been read.
//!
//! What may happen to a message once it is taken (removed from the path), and when:
//! - printed whole: delivered. A stop that comes once it is taken waits for the print;
//! - put back, as a new file at the path, only if not a byte of it was printed: a print that
//!   failed at its first byte (`reader | head -1` once `head` has gone);
//! - lost: part of it was printed when stdout failed (it is never put back, or that part would
//!   be printed twice), or its reader was killed with SIGKILL (the one loss the promise allows).
//!
//! A stop before the take leaves the message where it is. Nothing of a taken message is left on
//! disk, so a killed reader leaves nothing that could be printed twice or behind a newer one.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use common::stop::{OnStop, on_stop};
use common::{Error, Result, SysResult};
use nix::errno::Errno;
use nix::sys::inotify::AddWatchFlags;
use nix::sys::stat::{FileStat, lstat};

use crate::print::Undelivered;
use crate::private::{Private, remove_dead};
use crate::{IoTally, Spot, Watch, check_message, lock, open_message, read_counted, sys, write_file};

/// What the stop thread must know of the message in the main thread's hand.
#[derive(Default)]
struct Hand {
    /// Set by a stop, before it looks at `printing`: the main thread takes nothing more.
    stopping: AtomicBool,
    /// Held by the main thread from its look to the start of the print (a short read of a file),
    /// and true while it prints.
    printing: Mutex<bool>,
    /// Told when a print ends.
    printed: Condvar,
}

pub struct Reader {
    spot: Spot,
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
        let spot = Spot::new(path, false)?;
        // IN_MOVED_TO: our writer renames onto the path (that is no IN_CREATE). IN_CLOSE_WRITE: a
        // plain `echo hi > path` is complete once closed.
        let arrived = spot.watch(AddWatchFlags::IN_MOVED_TO | AddWatchFlags::IN_CLOSE_WRITE)?;
        let hand = Arc::new(Hand::default());
        let stop = {
            let hand = hand.clone();
            on_stop(move || {
                hand.stopping.store(true, Ordering::SeqCst);
                // However long stdout blocks: a message taken is printed whole, never cut short
                // nor lost (the print is held in common::gate, which says so).
                common::gate::wait_while_held();
                let mut printing = lock(&hand.printing);
                while *printing {
                    printing = hand.printed.wait(printing).unwrap_or_else(PoisonError::into_inner);
                }
                // Kept locked until the process dies: the main thread takes nothing more.
                std::mem::forget(printing);
            })
        };
        let reader = Reader { spot, arrived, hand, fresh: true, io: None, _stop: stop };
        // Refused before anything is read: only a message file of ours may sit at the path.
        open_message(&reader.spot.path)?;
        remove_dead(&reader.spot, &reader.spot.lock()?);
        Ok(reader)
    }

    /// Waits for a message, takes and returns it: the bench's receive.
    pub fn recv(&mut self, on_wait: &mut dyn FnMut()) -> Result<Vec<u8>> {
        let mut got = Vec::new();
        self.recv_with(on_wait, &mut |m| {
            got = m.to_vec();
            Ok(())
        })?;
        Ok(got)
    }

    /// Waits for a message (calling `on_wait` once if there is none yet), takes it (reads it and
    /// removes it from the path, so two readers never both get it) and hands it to `deliver`. If
    /// `deliver` fails before any of it went out, the message goes back to the path for the next
    /// reader; if part of it went out, it is lost (see the module's text).
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
            let mut msg = Vec::new();
            read_counted(&file, &mut msg, st.st_size, self.io.as_mut(), &self.spot.path)?;
            drop(file);
            // The take: from here the message is in this process alone. Under the flock no writer
            // of ours can have put another at the path since the open.
            match sys::unlink(&self.spot.path) {
                Ok(()) => {}
                Err(Errno::ENOENT) => continue, // a foreign process took it: not ours to print
                Err(e) => return Err(Error::sys("unlink", self.spot.path.display(), e)),
            }
            // Held before `printing` is let go: a stop from here on waits in common::gate, which
            // says why after a moment, and a second stop signal gives up a print that stdout
            // blocks (the message is then lost, and nothing of it is left to be printed again).
            let held = common::gate::hold(&msg);
            *printing = true;
            drop(printing);
            let delivered = deliver(&msg);
            drop(held);
            let done = match delivered {
                Ok(()) => Ok(()),
                Err(Undelivered { error, partly: false }) => {
                    self.put_back(&msg, &st);
                    Err(error)
                }
                Err(Undelivered { error, partly: true }) => {
                    say!(
                        "reader: the message was printed in part when stdout failed; it is not put back (the next reader would print that part again)"
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

    /// A message taken and not a byte of it printed goes back to the path, as the writer puts
    /// one there (a file in our private directory, renamed, never over another message), with
    /// the mode it had. The flock is still ours, so no writer of ours has put a newer one there.
    fn put_back(&self, msg: &[u8], st: &FileStat) {
        let private = Private::new(&self.spot);
        let back = private.make().and_then(|()| write_file(&private.tmp, msg, st.st_mode & 0o7777)).and_then(|_| {
            sys::rename_noreplace(&private.tmp, &self.spot.path).sys("renameat2", self.spot.path.display())
        });
        if back.is_ok() {
            private.remove_empty();
        } else {
            private.remove();
        }
        if let Err(e) = back {
            say!("reader: could not put the unprinted message back at {} ({e}): it is lost", self.spot.path.display());
        }
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
