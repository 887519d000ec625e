//! The writer: each message is written to a private temp file and renamed onto the agreed path,
//! so a reader sees no file or the whole message, and an unread one is never overwritten.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use common::stop::{OnStop, on_stop};
use common::{Error, Result, SysResult};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::inotify::AddWatchFlags;
use nix::sys::stat::{Mode, fstat, lstat};

use crate::sys;
use crate::{Spot, Watch, lock, open_message};

pub struct Writer {
    spot: Spot,
    tmp: PathBuf,
    gone: Watch,
    mode: u32,
    /// (dev, ino) of our last delivered message, for the line of a stopped writer.
    last: Arc<Mutex<Option<(u64, u64)>>>,
    /// Held while the temp file is written and while it is renamed, and for good by a stop: none
    /// is made or renamed after the stop removed it. Never held while blocked (in flock on the
    /// directory, or waiting for the path to be free): the stop would wait as long.
    creating: Arc<Mutex<()>>,
    _stop: OnStop,
}

impl Writer {
    /// A writer of message files with permissions `mode` (0600 unless the user widens it).
    pub fn new(path: &Path, mode: u32) -> Result<Self> {
        let spot = Spot::new(path)?;
        let gone = spot.watch(AddWatchFlags::IN_DELETE | AddWatchFlags::IN_MOVED_FROM)?;
        // Refused before anything is written: only a message file of ours may sit at the path.
        open_message(&spot.path)?;
        let tmp = spot.private("tmp");
        let last = Arc::new(Mutex::new(None));
        let creating = Arc::new(Mutex::new(()));
        let stop = {
            let (tmp, path, last, creating) = (tmp.clone(), spot.path.clone(), last.clone(), creating.clone());
            on_stop(move || {
                // Never leave a half-written message behind, nor let one be renamed after this.
                std::mem::forget(lock(&creating));
                let _ = sys::unlink(&tmp);
                let ours = *lock(&last);
                if ours.is_some() && lstat(&path).ok().map(|st| (st.st_dev, st.st_ino)) == ours {
                    say!("writer: our last message still waits at {} for a reader; left in place", path.display());
                }
            })
        };
        let writer = Writer { tmp, spot, gone, mode, last, creating, _stop: stop };
        writer.spot.lock()?.remove_dead(crate::Private::Tmp);
        Ok(writer)
    }

    /// Delivers one message as one file. If an unread message is still there, calls `on_wait`
    /// and waits until it is gone: nothing is ever overwritten.
    pub fn send(&mut self, msg: &[u8], on_wait: &mut dyn FnMut()) -> Result<()> {
        let id = {
            let _creating = lock(&self.creating);
            self.write_tmp(msg).inspect_err(|_| {
                let _ = sys::unlink(&self.tmp);
            })?
        };
        loop {
            // Under the directory lock: a reader that claimed the message before has printed it
            // (or put it back) before the next one can take its place.
            let locked = self.spot.lock()?;
            // Taken only now that the flock is ours: a stop does not wait for a reader that keeps
            // the directory locked. A stop that came meanwhile removed the temp file and keeps
            // this lock: we wait here until the process dies, and never rename.
            let creating = lock(&self.creating);
            // RENAME_NOREPLACE: checking "is it there?" then renaming would let two writers both
            // see it free and the second would overwrite the first's message.
            match sys::rename_noreplace(&self.tmp, &self.spot.path) {
                Ok(()) => {
                    *lock(&self.last) = Some(id);
                    return Ok(());
                }
                Err(Errno::EEXIST) => {
                    drop(creating);
                    drop(locked);
                    if let Err(e) = open_message(&self.spot.path) {
                        let _ = sys::unlink(&self.tmp);
                        return Err(e);
                    }
                    on_wait();
                    self.gone.wait()?;
                }
                Err(e) => {
                    let _ = sys::unlink(&self.tmp);
                    return Err(Error::sys("renameat2", self.spot.path.display(), e));
                }
            }
        }
    }

    /// Our last message is still at the path, unread (by the time of the look).
    pub fn last_waits(&self) -> bool {
        let ours = *lock(&self.last);
        ours.is_some() && lstat(&self.spot.path).ok().map(|st| (st.st_dev, st.st_ino)) == ours
    }

    fn write_tmp(&self, msg: &[u8]) -> Result<(u64, u64)> {
        // O_EXCL never follows a symlink planted at the name; 0600: only we may read it.
        let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_CLOEXEC;
        let fd = sys::open(&self.tmp, flags, Mode::S_IRUSR | Mode::S_IWUSR).sys("open", self.tmp.display())?;
        // Exactly the mode asked for, whatever the umask (open's mode is cut by it).
        sys::fchmod(&fd, Mode::from_bits_truncate(self.mode)).sys("fchmod", self.tmp.display())?;
        let st = fstat(&fd).sys("fstat", self.tmp.display())?;
        common::trace::count_one(); // untraced, counted

        let mut rest = msg;
        while !rest.is_empty() {
            match sys::write(&fd, rest) {
                Ok(n) => rest = &rest[n..],
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(Error::sys("write", self.tmp.display(), e)),
            }
        }
        Ok((st.st_dev, st.st_ino))
    }
}
