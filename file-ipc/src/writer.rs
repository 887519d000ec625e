//! The writer: each message is written to a temp file in its private directory and renamed onto
//! the agreed path, so a reader sees no file or the whole message, and an unread one is never
//! overwritten.

use std::path::Path;
use std::sync::{Arc, Mutex};

use common::stop::{OnStop, on_stop};
use common::{Error, Result};
use nix::errno::Errno;
use nix::sys::inotify::AddWatchFlags;

use crate::private::{Private, remove_dead};
use crate::sys;
use crate::{Spot, Watch, lock, open_message, waits_at, write_file};

pub struct Writer {
    spot: Spot,
    private: Private,
    gone: Watch,
    mode: u32,
    /// The bytes of our last delivered message, for the line of a stopped writer: a message with
    /// them at the path is ours still waiting (a reader's put-back makes it a new file).
    last: Arc<Mutex<Option<Vec<u8>>>>,
    /// Held while the temp file is written and while it is renamed, and for good by a stop: none
    /// is made or renamed after the stop removed it. Never held while blocked (in flock on the
    /// directory, or waiting for the path to be free): the stop would wait as long.
    creating: Arc<Mutex<()>>,
    _stop: OnStop,
}

impl Writer {
    /// A writer of message files with permissions `mode` (0600 unless the user widens it).
    pub fn new(path: &Path, mode: u32) -> Result<Self> {
        let spot = Spot::new(path, true)?;
        let gone = spot.watch(AddWatchFlags::IN_DELETE | AddWatchFlags::IN_MOVED_FROM)?;
        // Refused before anything is written: only a message file of ours may sit at the path.
        open_message(&spot.path)?;
        remove_dead(&spot, &spot.lock()?);
        let private = Private::new(&spot);
        let last = Arc::new(Mutex::new(None));
        let creating = Arc::new(Mutex::new(()));
        let stop = {
            let (mine, path, last, creating) = (private.clone(), spot.path.clone(), last.clone(), creating.clone());
            on_stop(move || {
                // Never leave a half-written message behind, nor let one be renamed after this.
                std::mem::forget(lock(&creating));
                mine.remove();
                if lock(&last).as_deref().is_some_and(|m| waits_at(&path, m)) {
                    say!("writer: our last message still waits at {} for a reader; left in place", path.display());
                }
            })
        };
        // Made under `creating`, as the messages in it are: a stop removes it or finds none.
        {
            let _creating = lock(&creating);
            private.make()?;
        }
        Ok(Writer { private, spot, gone, mode, last, creating, _stop: stop })
    }

    /// Delivers one message as one file. If an unread message is still there, calls `on_wait`
    /// and waits until it is gone: nothing is ever overwritten. A message not delivered leaves no
    /// temp file, whatever failed.
    pub fn send(&mut self, msg: &[u8], on_wait: &mut dyn FnMut()) -> Result<()> {
        {
            let _creating = lock(&self.creating);
            write_file(&self.private.tmp, msg, self.mode).inspect_err(|_| {
                let _ = sys::unlink(&self.private.tmp);
            })?;
        }
        self.publish(msg, on_wait).inspect_err(|_| {
            let _ = sys::unlink(&self.private.tmp);
        })
    }

    /// Renames the temp file holding `msg` onto the path once it is free.
    fn publish(&mut self, msg: &[u8], on_wait: &mut dyn FnMut()) -> Result<()> {
        loop {
            // Under the directory lock: a reader that took the message before has printed it
            // (or put it back) before the next one can take its place.
            let locked = self.spot.lock()?;
            // Taken only now that the flock is ours: a stop does not wait for a reader that keeps
            // the directory locked. A stop that came meanwhile removed the temp file and keeps
            // this lock: we wait here until the process dies, and never rename.
            let creating = lock(&self.creating);
            // RENAME_NOREPLACE: checking "is it there?" then renaming would let two writers both
            // see it free and the second would overwrite the first's message.
            match sys::rename_noreplace(&self.private.tmp, &self.spot.path) {
                Ok(()) => {
                    // Kept to know it again at the end (a buffer reused, no allocation per message).
                    let mut last = lock(&self.last);
                    let kept = last.get_or_insert_with(Vec::new);
                    kept.clear();
                    kept.extend_from_slice(msg);
                    return Ok(());
                }
                Err(Errno::EEXIST) => {
                    drop(creating);
                    drop(locked);
                    open_message(&self.spot.path)?;
                    on_wait();
                    self.spot.close_spare();
                    self.gone.wait()?;
                }
                Err(e) => {
                    let what = format!("{} to {}", self.private.tmp.display(), self.spot.path.display());
                    return Err(Error::sys("renameat2", what, e));
                }
            }
        }
    }

    /// Our last message is still at the path, unread (by the time of the look).
    pub fn last_waits(&self) -> bool {
        lock(&self.last).as_deref().is_some_and(|m| waits_at(&self.spot.path, m))
    }
}

impl Drop for Writer {
    /// The end of a run: the private directory goes (empty: every message was renamed away, or
    /// removed where its send failed).
    fn drop(&mut self) {
        self.private.remove_empty();
    }
}
