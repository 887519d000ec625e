//! The same exchange over POSIX shared memory (beyond the note): one object, /shm-ipc-KEY, made
//! with shm_open. Its first SIZE bytes hold the message as the note lays it out (a C string at
//! offset 0); a state word follows, EMPTY (0) or FULL (1). A new object is all zeros, so it
//! starts empty, with no start-up race and nothing else to make.
//!
//! A process may be killed anywhere, so nothing of a hand-over is kept in a process:
//! - The store of the state word is the one commit. A writer copies the message in, then stores
//!   FULL; a reader copies it out, then stores EMPTY (and only then prints it). A process killed
//!   before its store leaves the slot as it found it: a torn copy under EMPTY is never read, a
//!   message under FULL goes to the next reader. One killed after the store has done its part.
//! - Who may copy is one exclusive open-file-description record lock (byte SLOT of the object's
//!   descriptor), held across the second look at the word, the copy and the store: two writers
//!   never copy at once, nor do two readers take one message. The kernel drops it when its
//!   holder dies, even by SIGKILL, so a half-done hand-over is found by the next process to lock,
//!   which sees the word as it was and does the hand-over itself.
//! - Waits sleep in futex(2) on the state word, in slices: a wake that a killed process never
//!   sent costs the waiter at most a slice. Between slices a waiter parks for a stop and checks
//!   whether the object was unlinked under it (link count 0): nobody could post any more.
//!
//! Who uses the object (for the end of a run) is told by two more OFD locks:
//! - byte USERS, shared: held by every process that has the object open, from open to its end;
//! - byte DECIDING, exclusive: held while a process decides the end of its run, so two ending
//!   together decide one after the other.
//!
//! The end of a run ("the last one out removes"): holding DECIDING, a process that can also lock
//! USERS exclusively is the only user; it unlinks the object if no message waits in it, and
//! looks at the word again afterwards. Otherwise it drops its USERS lock before DECIDING, so the
//! next one to decide sees it gone.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use common::posix::{
    LockKind, LockWait, Mapped, Span, fstat, futex_wait, futex_wake, ofd_lock_traced, sem_unlink, shm_unlink,
};
use common::{Error, Key, Memory, MemoryMut, Result};
use nix::errno::Errno;

use common::gate;
use common::trace::Try;

use crate::{Channel, Create, Ender, Objects, Outcome, POSIX_SIZE, SIZE, WAIT_SLICE, sem_names, shm_name};

/// The bytes of the object's descriptor that the record locks cover.
const USERS: i64 = 0;
const DECIDING: i64 = 1;
const SLOT: i64 = 2;

/// The state word's values: a new object is zeros, so EMPTY.
const EMPTY: u32 = 0;
const FULL: u32 = 1;
/// Where the state word lies: right after the message's SIZE bytes.
const STATE_AT: usize = SIZE;

/// The mapping, shared with the stop thread, which reads the state word at the end of a run.
type Shared = Arc<Mutex<Mapped>>;

fn lock(mem: &Shared) -> MutexGuard<'_, Mapped> {
    mem.lock().unwrap_or_else(PoisonError::into_inner)
}

fn state(mem: &Mapped) -> &AtomicU32 {
    mem.atomic_u32(STATE_AT)
}

pub struct PosixChannel {
    key: Key,
    mem: Shared,
    /// The same open file as the mapping's descriptor (so the same locks), usable without `mem`.
    file: Arc<OwnedFd>,
}

impl Channel for PosixChannel {
    fn send(&mut self, text: &[u8], on_wait: &mut dyn FnMut()) -> Result<()> {
        self.hand_over(EMPTY, FULL, on_wait, |m| m.write_c_string(text))
    }

    fn recv(&mut self, on_wait: &mut dyn FnMut()) -> Result<Vec<u8>> {
        self.hand_over(FULL, EMPTY, on_wait, |m| read_message(m))
    }

    fn objects(&self) -> Objects {
        Objects::Posix { key: self.key }
    }

    fn ender(&self) -> Ender {
        Ender::from(PosixEnd { key: self.key, file: self.file.clone(), mem: self.mem.clone() })
    }
}

impl PosixChannel {
    pub fn open(key: Key, mode: u32, create: Create) -> Result<Self> {
        let name = shm_name(key);
        loop {
            let opened = match create {
                Create::IfMissing => Mapped::get_or_create(&name, POSIX_SIZE, mode),
                Create::Never => Mapped::existing(&name, POSIX_SIZE).map(|m| (m, false)),
            };
            let (mem, made) = opened.map_err(|e| {
                let err = Error::sys("shm_open", &name, e);
                match e {
                    Errno::ENOENT => err.hint("start the writer first"),
                    Errno::EINVAL => err.hint(format!(
                        "it exists with a size other than {POSIX_SIZE} bytes; remove it: rm /dev/shm{name}"
                    )),
                    Errno::EACCES => err.hint("it belongs to another user and is not shared with you"),
                    _ => err,
                }
            })?;
            // Waits while another process decides its end of run.
            if let Err(e) = ofd_lock_traced(mem.fd(), Span::byte(USERS), LockKind::Shared, LockWait::Block) {
                if made {
                    let _ = shm_unlink(&name);
                }
                return Err(Error::sys("fcntl(F_OFD_SETLKW)", &name, e));
            }
            if mem.links(Try::First).map_err(|e| Error::sys("fstat", &name, e))? == 0 {
                continue; // unlinked by the last one out just now: start over with a new one
            }
            let file = mem.fd().try_clone_to_owned().map_err(|e| Error::io("dup", &name, e))?;
            return Ok(PosixChannel { key, mem: Arc::new(Mutex::new(mem)), file: Arc::new(file) });
        }
    }

    /// Waits until the state word is `from`, then, holding the slot lock, looks again, runs `copy`
    /// and stores `to` (the commit), lets the lock go and wakes the waiters. Before the first wait
    /// `on_wait` is called; between waits a stop parks here, and an unlinked object ends the wait.
    fn hand_over<T>(
        &mut self,
        from: u32,
        to: u32,
        on_wait: &mut dyn FnMut(),
        copy: impl FnOnce(&mut Mapped) -> T,
    ) -> Result<T> {
        let name = shm_name(self.key);
        let slot = |kind| {
            let wait = if kind == LockKind::Unlock { LockWait::Try } else { LockWait::Block };
            ofd_lock_traced(self.file.as_fd(), Span::byte(SLOT), kind, wait)
                .map_err(|e| Error::sys("fcntl(F_OFD_SETLKW)", &name, e))
        };
        // A word that is neither (written by another program) counts as empty: a writer then
        // makes it whole again, where waiting for EMPTY would wait forever.
        let ready = |word: u32| if from == FULL { word == FULL } else { word != FULL };
        let mut waited = false;
        // --trace shows the first slice of a wait, not each one, and a look when it changes.
        let mut tried = Try::First;
        loop {
            gate::safe_point();
            let seen = state(&lock(&self.mem)).load(Ordering::Acquire);
            if ready(seen) {
                slot(LockKind::Exclusive)?;
                let mut mem = lock(&self.mem);
                // Another process of the same side may have taken this turn first.
                if ready(state(&mem).load(Ordering::Acquire)) {
                    let out = copy(&mut mem);
                    state(&mem).store(to, Ordering::Release);
                    // Committed: a failure from here on must not undo the hand-over. The kernel
                    // drops the lock at exit anyway, and a waiter not woken looks after a slice.
                    let _ = slot(LockKind::Unlock);
                    let _ = futex_wake(state(&mem));
                    return Ok(out);
                }
                drop(mem);
                slot(LockKind::Unlock)?;
                continue;
            }
            if !waited {
                on_wait();
                waited = true;
                continue;
            }
            futex_wait(state(&lock(&self.mem)), seen, WAIT_SLICE, tried)
                .map_err(|e| Error::sys("futex(FUTEX_WAIT)", &name, e))?;
            tried = Try::Again(Errno::ETIMEDOUT);
            let st =
                common::posix::fstat_try(self.file.as_fd(), Try::Looked).map_err(|e| Error::sys("fstat", &name, e))?;
            if st.st_nlink == 0 {
                let what = if from == FULL { "a message" } else { "the slot to be free" };
                return Err(Error::Failed(format!(
                    "POSIX shared memory {name} was unlinked (reader --clean --posix, or rm) while this process waited for {what} in it: nobody can hand one over any more"
                )));
            }
        }
    }
}

/// The message: the bytes before the first NUL of the SIZE bytes (all of them if there is none;
/// the state word after them is never read as text).
fn read_message(m: &Mapped) -> Vec<u8> {
    let mut text = Vec::new();
    let mut chunk = [0u8; 256];
    for at in (0..SIZE).step_by(chunk.len()) {
        let n = chunk.len().min(SIZE - at);
        m.read(at, &mut chunk[..n]);
        match chunk[..n].iter().position(|&b| b == 0) {
            Some(end) => {
                text.extend_from_slice(&chunk[..end]);
                break;
            }
            None => text.extend_from_slice(&chunk[..n]),
        }
    }
    text
}

/// The end of a run of one process, shareable with the stop thread.
#[derive(Clone)]
pub struct PosixEnd {
    key: Key,
    file: Arc<OwnedFd>,
    mem: Shared,
}

impl PosixEnd {
    pub fn finish(&self) -> Result<Outcome> {
        let name = shm_name(self.key);
        let fd = self.file.as_fd();
        let lock = |at, kind, wait| {
            ofd_lock_traced(fd, Span::byte(at), kind, wait).map_err(|e| Error::sys("fcntl(F_OFD_SETLK)", &name, e))
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
        // Our own main thread is parked or done: it holds no slot and copies nothing.
        let pending = || u64::from(state(&self::lock(&self.mem)).load(Ordering::Acquire) == FULL);
        let alone = lock(USERS, LockKind::Exclusive, LockWait::Try)?;
        let waiting = pending();
        if !alone || waiting > 0 {
            lock(USERS, LockKind::Unlock, LockWait::Try)?; // before DECIDING is let go: see the module doc
            return Ok(Outcome::Left { pending: waiting, others: u64::from(!alone) });
        }
        // Nobody else has the object open, so nobody is mid-copy or waits. A newcomer locks USERS
        // before it uses the object, so after the unlink it finds it unlinked and starts over.
        let shm = shm_name(self.key);
        match shm_unlink(&shm) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(Errno::EACCES | Errno::EPERM) => {
                // Another user's, in sticky /dev/shm (shared with --mode): leave it to its owner.
                lock(USERS, LockKind::Unlock, LockWait::Try)?;
                let owner = fstat(self.file.as_fd()).map_or(0, |st| st.st_uid);
                return Ok(Outcome::NotOurs { owner });
            }
            Err(e) => return Err(Error::sys("shm_unlink", shm, e)),
        }
        // Openers that wait for USERS now find the name unlinked and start over.
        lock(USERS, LockKind::Unlock, LockWait::Try)?;
        match pending() {
            0 => Ok(Outcome::Removed),
            n => Err(Error::Failed(format!(
                "{n} message(s) arrived in {shm} while it was being removed; they are lost (a program that does not lock it, or a bug)"
            ))),
        }
    }
}

/// Unlinks the shared memory, and the named semaphores that versions before issue 20 kept beside
/// it; returns how many existed.
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
