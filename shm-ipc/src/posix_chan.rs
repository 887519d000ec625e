//! The same exchange over POSIX shared memory (shm_open + mmap) and two named semaphores (beyond
//! the note). sem_open creates a semaphore with its value in one step, so "free" starts at 1 and
//! "full" at 0 with no start-up race.
//!
//! Named semaphores have no waiter counts and no SEM_UNDO, so who uses the objects is told by
//! open-file-description record locks on the shared memory's descriptor, which the kernel drops
//! when a process dies, even by SIGKILL:
//! - byte 0, shared: held by every process that has the objects open (taken right after
//!   shm_open, before the semaphores are opened);
//! - byte 1, exclusive: held while a process decides the end of its run, so two ending together
//!   decide one after the other.
//!
//! The end of a run ("the last one out removes"): holding byte 1, a process that can also lock
//! byte 0 exclusively is the only user; it unlinks the semaphores, then the shared memory, if no
//! message waits in "full", and checks "full" again afterwards. Otherwise it drops its byte-0 lock
//! before byte 1, so the next one to decide sees it gone. A process that waits checks between
//! timed waits whether the shared memory was unlinked (link count 0), and stops with one line.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use common::posix::{LockKind, LockWait, Mapped, NamedSem, Span, fstat, ofd_lock, sem_unlink, shm_unlink};
use common::{Error, Key, Memory, MemoryMut, Result};
use nix::errno::Errno;

use common::gate;
use common::trace::Try;

use crate::{Create, Objects, Outcome, SIZE, WAIT_SLICE, sem_names, shm_name};

const USERS: i64 = 0;
const DECIDING: i64 = 1;

/// Which of the two semaphores a wait takes.
#[derive(Clone, Copy)]
enum Sem {
    /// Posted when a message is ready: a reader takes it.
    Full,
    /// Posted when the memory is free: a writer takes it.
    Free,
}

pub struct PosixChannel {
    key: Key,
    mem: Mapped,
    full: Arc<NamedSem>,
    free: Arc<NamedSem>,
    /// The same open file as `mem`'s descriptor (so the same locks), for the stop thread.
    file: Arc<OwnedFd>,
}

impl PosixChannel {
    pub fn open(key: Key, mode: u32, create: Create, on_size_wait: &mut dyn FnMut()) -> Result<Self> {
        let name = shm_name(key);
        loop {
            let opened = match create {
                Create::IfMissing => Mapped::get_or_create_with(&name, SIZE, mode, on_size_wait),
                Create::Never => Mapped::existing_with(&name, SIZE, on_size_wait).map(|m| (m, false)),
            };
            let (mem, shm_made) = opened.map_err(|e| {
                let err = Error::sys("shm_open", &name, e);
                match e {
                    Errno::ENOENT => err.hint("start the writer first"),
                    Errno::EINVAL => {
                        err.hint(format!("it exists with a size other than {SIZE} bytes; remove it: rm /dev/shm{name}"))
                    }
                    Errno::EACCES => err.hint("it belongs to another user and is not shared with you"),
                    _ => err,
                }
            })?;
            let unmake = |made: bool| {
                if made {
                    let _ = shm_unlink(&name);
                }
            };
            // Waits while another process decides its end of run.
            if let Err(e) = ofd_lock(mem.fd(), Span::byte(USERS), LockKind::Shared, LockWait::Block) {
                unmake(shm_made);
                return Err(Error::sys("fcntl(F_OFD_SETLKW)", &name, e));
            }
            if mem.links(Try::First).map_err(|e| Error::sys("fstat", &name, e))? == 0 {
                continue; // unlinked by the last one out just now: start over with a new one
            }
            let [full_name, free_name] = sem_names(key);
            let (full, full_made) = NamedSem::get_or_create(&full_name, mode, 0).map_err(|e| {
                unmake(shm_made);
                Error::sys("sem_open", &full_name, e)
            })?;
            let (free, _) = NamedSem::get_or_create(&free_name, mode, 1).map_err(|e| {
                unmake(shm_made);
                if full_made {
                    let _ = sem_unlink(&full_name);
                }
                Error::sys("sem_open", &free_name, e)
            })?;
            let file = mem.fd().try_clone_to_owned().map_err(|e| Error::io("dup", &name, e))?;
            return Ok(PosixChannel { key, mem, full: Arc::new(full), free: Arc::new(free), file: Arc::new(file) });
        }
    }

    pub fn send(&mut self, text: &[u8], on_wait: &mut dyn FnMut()) -> Result<()> {
        self.take(Sem::Free, on_wait)?;
        self.mem.write_c_string(text);
        self.full.post().map_err(|e| Error::sys("sem_post", &sem_names(self.key)[0], e))
    }

    pub fn recv(&mut self, on_wait: &mut dyn FnMut()) -> Result<Vec<u8>> {
        self.take(Sem::Full, on_wait)?;
        let text = self.mem.read_c_string();
        self.free.post().map_err(|e| Error::sys("sem_post", &sem_names(self.key)[1], e))?;
        Ok(text)
    }

    /// sem_trywait, then (after `on_wait`) timed waits; between them, a stop parks here and an
    /// unlinked shared memory ends the wait: nobody could ever post again.
    fn take(&self, which: Sem, on_wait: &mut dyn FnMut()) -> Result<()> {
        let [full_name, free_name] = sem_names(self.key);
        let (sem, name) = match which {
            Sem::Full => (&self.full, &full_name),
            Sem::Free => (&self.free, &free_name),
        };
        gate::safe_point();
        if sem.try_wait().map_err(|e| Error::sys("sem_trywait", name, e))? {
            return Ok(());
        }
        on_wait();
        // --trace shows the first slice of the wait, not each one, and a look when it changes.
        let mut wait = Try::First;
        loop {
            gate::safe_point();
            if sem.timed_wait(WAIT_SLICE, wait).map_err(|e| Error::sys("sem_timedwait", name, e))? {
                return Ok(());
            }
            let shm = shm_name(self.key);
            wait = Try::Again(Errno::ETIMEDOUT);
            if self.mem.links(Try::Looked).map_err(|e| Error::sys("fstat", &shm, e))? == 0 {
                return Err(Error::Failed(format!(
                    "POSIX shared memory {shm} was unlinked (reader --clean --posix, or rm) while this process waited on {name}: nobody can post it any more"
                )));
            }
        }
    }

    pub fn objects(&self) -> Objects {
        Objects::Posix { key: self.key }
    }

    pub fn ender(&self) -> PosixEnd {
        PosixEnd { key: self.key, file: self.file.clone(), full: self.full.clone(), free: self.free.clone() }
    }
}

/// The end of a run of one process, shareable with the stop thread.
#[derive(Clone)]
pub struct PosixEnd {
    key: Key,
    file: Arc<OwnedFd>,
    full: Arc<NamedSem>,
    #[allow(dead_code)] // kept open so that its name is not reused under us
    free: Arc<NamedSem>,
}

impl PosixEnd {
    pub fn finish(&self) -> Result<Outcome> {
        let name = shm_name(self.key);
        let fd = self.file.as_fd();
        let lock = |at, kind, wait| {
            ofd_lock(fd, Span::byte(at), kind, wait).map_err(|e| Error::sys("fcntl(F_OFD_SETLK)", &name, e))
        };
        if fstat(fd).map_err(|e| Error::sys("fstat", &name, e))?.st_nlink == 0 {
            return Ok(Outcome::Gone);
        }
        lock(DECIDING, LockKind::Exclusive, LockWait::Block)?;
        let result = self.decide(&lock);
        lock(DECIDING, LockKind::Unlock, LockWait::Try)?;
        result
    }

    fn decide(&self, lock: &dyn Fn(i64, LockKind, LockWait) -> Result<bool>) -> Result<Outcome> {
        let full_name = &sem_names(self.key)[0];
        let pending = || -> Result<u64> {
            Ok(self.full.value().map_err(|e| Error::sys("sem_getvalue", full_name, e))?.max(0) as u64)
        };
        let alone = lock(USERS, LockKind::Exclusive, LockWait::Try)?;
        let waiting = pending()?;
        if !alone || waiting > 0 {
            lock(USERS, LockKind::Unlock, LockWait::Try)?; // before DECIDING is let go: see the module doc
            return Ok(Outcome::Left { pending: waiting, others: u64::from(!alone) });
        }
        // Nobody else has the objects open, so nobody is mid-copy or waits. The semaphores first:
        // a newcomer locks byte 0 before it opens them, so it finds the shared memory unlinked
        // and starts over with new objects.
        for n in sem_names(self.key) {
            match sem_unlink(&n) {
                Ok(()) | Err(Errno::ENOENT) => {}
                Err(Errno::EACCES | Errno::EPERM) => {
                    // Another user's, in sticky /dev/shm (shared with --mode): leave it to its owner.
                    lock(USERS, LockKind::Unlock, LockWait::Try)?;
                    let owner = fstat(self.file.as_fd()).map_or(0, |st| st.st_uid);
                    return Ok(Outcome::NotOurs { owner });
                }
                Err(e) => return Err(Error::sys("sem_unlink", n, e)),
            }
        }
        let shm = shm_name(self.key);
        match shm_unlink(&shm) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(e) => return Err(Error::sys("shm_unlink", shm, e)),
        }
        // Openers that wait for byte 0 now find the name unlinked and start over.
        lock(USERS, LockKind::Unlock, LockWait::Try)?;
        match pending()? {
            0 => Ok(Outcome::Removed),
            n => Err(Error::Failed(format!(
                "{n} message(s) arrived in {shm} while it was being removed; they are lost (a program that does not lock it, or a bug)"
            ))),
        }
    }
}

/// Unlinks the shared memory and both semaphores; returns how many existed.
fn unlink_all(key: Key) -> Result<usize> {
    let mut removed = 0;
    let name = shm_name(key);
    match shm_unlink(&name) {
        Ok(()) => removed += 1,
        Err(Errno::ENOENT) => {}
        Err(e) => return Err(Error::sys("shm_unlink", name, e)),
    }
    for name in sem_names(key) {
        match sem_unlink(&name) {
            Ok(()) => removed += 1,
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(Error::sys("sem_unlink", name, e)),
        }
    }
    Ok(removed)
}

pub fn clean(key: Key) -> Result<String> {
    Ok(match unlink_all(key)? {
        0 => format!("nothing named {} exists", shm_name(key)),
        n => format!("removed {n} POSIX object(s) of {}", shm_name(key)),
    })
}
