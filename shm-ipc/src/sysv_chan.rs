//! The note's System V segment, with a SysV semaphore set under the same key (TLPI's way).
//!
//! Two semaphores, both 0 in a new set (Linux zeroes them, so there is no window in which a
//! peer could see an uninitialised set, the classic SysV start-up race):
//! - FULL: 1 while an unread message is in the segment. The writer's post has no SEM_UNDO: the
//!   kernel would undo it when the writer exits and the reader would wait forever.
//! - BUSY: 1 while one side copies or decides the end of a run; taken with SEM_UNDO, so a side
//!   that dies holding it frees it.
//!
//! The writer waits for FULL == 0 and BUSY == 0 and takes BUSY in one atomic semop; the reader
//! takes FULL and BUSY in one semop. A zero state means "empty and free", which is exactly what a
//! new set is.
//!
//! The end of a run ("the last one out removes"): holding BUSY, a process removes the set and the
//! segment only if FULL is 0 and nobody else is attached (shm_nattch) or waits (GETNCNT/GETZCNT).
//! Otherwise it detaches before it lets BUSY go, so that of two processes ending together the
//! second one sees the first gone and removes. Every process attaches before its first semop,
//! and checks BUSY once after attaching (see `open`), so a newcomer is either seen attached or
//! sees the objects removed and starts over.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use common::sysv::{self, Attached, get_or_create, sembuf};
use common::{Error, Key, Memory, MemoryMut, ReadOnly, ReadWrite, Result};
use nix::errno::Errno;

use common::gate;
use common::trace::Try;

use crate::{Channel, Create, Ender, Objects, Outcome, SIZE, Side, WAIT_SLICE};

const FULL: u16 = 0;
const BUSY: u16 = 1;
const NSEMS: i32 = 2;
const UNDO: i16 = libc::SEM_UNDO as i16;
/// shm_perm.mode bit of a segment marked for removal (linux/shm.h; the libc crate lacks it).
const SHM_DEST: u16 = 0o1000;

/// The attachment, shared with the stop thread, which detaches it at the end of a run.
type Shared = Arc<Mutex<Option<Segment>>>;

fn lock(mem: &Shared) -> MutexGuard<'_, Option<Segment>> {
    mem.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A writer attaches read-write, a reader read-only: a reader has nothing to write with.
enum Segment {
    Writer(Attached<ReadWrite>),
    Reader(Attached<ReadOnly>),
}

impl Segment {
    fn len(&self) -> usize {
        match self {
            Segment::Writer(m) => m.len(),
            Segment::Reader(m) => m.len(),
        }
    }

    fn read_c_string(&self) -> Vec<u8> {
        match self {
            Segment::Writer(m) => m.read_c_string(),
            Segment::Reader(m) => m.read_c_string(),
        }
    }
}

pub struct SysvChannel {
    key: Key,
    shm_id: i32,
    sem_id: i32,
    mem: Shared,
    /// Set after the first wait: from then on, waits block at once.
    waited: bool,
}

impl SysvChannel {
    /// The note's `shmget` and `shmat`, with the semaphore set beside them: finds (or, with
    /// [`Create::IfMissing`], makes with `mode`) the objects of `key` and attaches the segment, a
    /// writer read-write and a reader read-only.
    pub fn open(key: Key, mode: u32, side: Side, create: Create) -> Result<Self> {
        let size = SIZE;
        let err = |call: &'static str, e: Errno| open_error(key, size, call, e);
        // A few rounds: each lost race means another process has just removed the objects.
        for _ in 0..10 {
            // The semaphores first: a segment without them means a semaphore-less (C) writer.
            let (sem_id, sem_made) = match create {
                Create::IfMissing => get_or_create(mode as i32, |f| sysv::semget(key, NSEMS, f)),
                Create::Never => sysv::semget(key, NSEMS, 0).map(|id| (id, false)),
            }
            .map_err(|e| err("semget", e))?;
            // What this round made is removed again if it fails: nothing half-made is left.
            let mut made = Made { sem: sem_made.then_some(sem_id), shm: None };
            // The note's shmget(key, SIZE, IPC_CREAT|0666), with `mode` (0600) and IPC_EXCL first,
            // so that this process knows whether it made the segment. Size 0 finds an existing one
            // of any size; its real size is checked below.
            let excl = libc::IPC_CREAT | libc::IPC_EXCL | mode as i32;
            let shm_id = match create {
                Create::IfMissing => match sysv::shmget(key, size, excl) {
                    Ok(id) => Ok(*made.shm.insert(id)),
                    Err(Errno::EEXIST) => sysv::shmget(key, 0, 0),
                    Err(e) => Err(e),
                },
                Create::Never => sysv::shmget(key, 0, 0),
            };
            let shm_id = match shm_id {
                Ok(id) => id,
                Err(Errno::ENOENT) if create == Create::IfMissing => continue, // removed in between
                Err(e) => return Err(err("shmget", e)),
            };
            // Checked before attaching too, so that another program's segment gets this error
            // rather than shmat's.
            match sysv::shm_stat(shm_id) {
                Ok(ds) if ds.shm_segsz == size => {}
                Ok(ds) => return Err(wrong_size(key, size, ds.shm_segsz)),
                Err(Errno::EINVAL | Errno::EIDRM) => continue,
                Err(e) => return Err(err("shmctl(IPC_STAT)", e)),
            }
            // The note's shmat(shmid, NULL, 0); a reader's with SHM_RDONLY: it has nothing to write.
            let mem = match side {
                Side::Writer => Attached::read_write(shm_id).map(Segment::Writer),
                Side::Reader => Attached::read_only(shm_id).map(Segment::Reader),
            };
            let mem = match mem {
                Ok(m) if m.len() == size => m,
                Ok(m) => return Err(wrong_size(key, size, m.len())),
                Err(Errno::EINVAL | Errno::EIDRM) => continue,
                Err(e) => return Err(err("shmat", e)),
            };
            if !wait_while_deciding(key, sem_id)? {
                continue;
            }
            made.sem = None;
            made.shm = None;
            return Ok(SysvChannel { key, shm_id, sem_id, mem: Arc::new(Mutex::new(Some(mem))), waited: false });
        }
        Err(Error::sys("semop", format!("semaphores {key}"), Errno::EIDRM)
            .hint("the objects of this key were removed again and again while opening; try again"))
    }
}

impl Channel for SysvChannel {
    /// Waits for FULL 0 and BUSY 0 and takes BUSY, copies the text in (the note's `strcpy`),
    /// then gives BUSY back and posts FULL, in one semop.
    fn send(&mut self, text: &[u8], on_wait: &mut dyn FnMut()) -> Result<()> {
        self.take([sembuf(FULL, 0, 0), sembuf(BUSY, 0, 0), sembuf(BUSY, 1, UNDO)], on_wait)?;
        let written = self.with_mem(|m| match m {
            Segment::Writer(m) => {
                m.write_c_string(text);
                Ok(())
            }
            Segment::Reader(_) => Err(Error::Failed(format!("segment {}: attached read-only, by a reader", self.key))),
        });
        match written.and_then(|r| r) {
            Ok(()) => self.give(&mut [sembuf(BUSY, -1, UNDO), sembuf(FULL, 1, 0)]),
            Err(e) => {
                self.give(&mut [sembuf(BUSY, -1, UNDO)])?; // no text in: FULL stays 0
                Err(e)
            }
        }
    }

    /// Takes FULL and BUSY in one semop, copies the text out, gives BUSY back.
    fn recv(&mut self, on_wait: &mut dyn FnMut()) -> Result<Vec<u8>> {
        self.take([sembuf(FULL, -1, 0), sembuf(BUSY, 0, 0), sembuf(BUSY, 1, UNDO)], on_wait)?;
        let text = self.with_mem(|m| m.read_c_string());
        self.give(&mut [sembuf(BUSY, -1, UNDO)])?;
        text
    }

    fn objects(&self) -> Objects {
        Objects::SysV { key: self.key, shm_id: self.shm_id, sem_id: self.sem_id }
    }

    fn ender(&self) -> Ender {
        Ender::from(SysvEnd { key: self.key, shm_id: self.shm_id, sem_id: self.sem_id, mem: self.mem.clone() })
    }
}

impl SysvChannel {
    fn with_mem<T>(&self, f: impl FnOnce(&mut Segment) -> T) -> Result<T> {
        match lock(&self.mem).as_mut() {
            Some(m) => Ok(f(m)),
            None => Err(Error::Failed(format!("segment {}: already detached at the end of the run", self.key))),
        }
    }

    /// A semop that may wait: first without blocking, so `on_wait` (the ready line) is called
    /// only when it really has to wait; then in slices, parking at a stop between them. EINTR
    /// (Ctrl-Z then fg) is retried: nothing was applied.
    fn take<const N: usize>(&mut self, mut ops: [libc::sembuf; N], on_wait: &mut dyn FnMut()) -> Result<()> {
        let nowait = libc::IPC_NOWAIT as i16;
        // --trace shows the first slice of a wait and its look at the segment, not every one.
        let mut tried = Try::First;
        loop {
            gate::safe_point();
            let r = if self.waited {
                sysv::semop_timed(self.sem_id, &mut ops, WAIT_SLICE, tried)
            } else {
                ops.iter_mut().for_each(|op| op.sem_flg |= nowait);
                let r = sysv::semop(self.sem_id, &mut ops);
                ops.iter_mut().for_each(|op| op.sem_flg &= !nowait);
                r
            };
            match r {
                Ok(()) => return Ok(()),
                Err(Errno::EAGAIN) => {
                    if !self.waited {
                        on_wait();
                        self.waited = true;
                    } else {
                        self.check_segment()?;
                        tried = Try::Again(Errno::EAGAIN);
                    }
                }
                Err(Errno::EINTR) => {}
                Err(e) => return Err(sem_error(self.key, self.sem_id, e)),
            }
        }
    }

    /// Between waits: `ipcrm -m` alone marks the segment for removal but leaves the semaphores, so
    /// a writer would make a new segment under the key while this process still sees the old one.
    fn check_segment(&self) -> Result<()> {
        let removed = match sysv::shm_stat_try(self.shm_id, Try::Looked) {
            Ok(ds) => ds.shm_perm.mode & SHM_DEST != 0,
            Err(Errno::EINVAL | Errno::EIDRM) => true,
            Err(e) => return Err(Error::sys("shmctl(IPC_STAT)", format!("segment {}", self.key), e)),
        };
        if removed {
            return Err(Error::Failed(format!(
                "segment {} was removed (ipcrm -m?) while this process waited on its semaphores: a message can no longer reach it",
                self.key
            )));
        }
        Ok(())
    }

    /// A semop that never waits (it gives back BUSY, posts FULL).
    fn give(&self, ops: &mut [libc::sembuf]) -> Result<()> {
        loop {
            match sysv::semop(self.sem_id, ops) {
                Err(Errno::EINTR) => continue,
                other => return other.map_err(|e| sem_error(self.key, self.sem_id, e)),
            }
        }
    }
}

/// An open's error, with a hint for the usual causes.
fn open_error(key: Key, size: usize, call: &'static str, e: Errno) -> Error {
    let err = Error::sys(call, format!("key {key}"), e);
    match e {
        Errno::ENOENT => err.hint("nothing has that key yet; start the writer first"),
        Errno::EINVAL => err.hint(format!(
            "another program uses this key with other sizes than {size} bytes; pick another --key, or remove it: ipcrm -M {key} -S {key}"
        )),
        Errno::EACCES => err.hint("it belongs to another user and is not shared with you"),
        _ => err,
    }
}

fn wrong_size(key: Key, size: usize, has: usize) -> Error {
    Error::sys("shmget", format!("key {key}"), Errno::EINVAL).hint(format!(
        "the segment of this key has {has} bytes, not {size}: another program uses it; pick another --key, or remove it: ipcrm -M {key}"
    ))
}

/// Once attached, a process that ends from here on sees this one. One that is deciding its end
/// right now holds BUSY: waits for it; false if it removed everything (the open starts over).
fn wait_while_deciding(key: Key, sem_id: i32) -> Result<bool> {
    loop {
        match sysv::semop(sem_id, &mut [sembuf(BUSY, 0, 0)]) {
            Ok(()) => return Ok(true),
            Err(Errno::EINTR) => continue,
            Err(Errno::EIDRM) => return Ok(false),
            Err(Errno::EINVAL) if sem_gone(sem_id) => return Ok(false),
            Err(e) => return Err(sem_error(key, sem_id, e)),
        }
    }
}

/// Removes what a failed open attempt made.
struct Made {
    sem: Option<i32>,
    shm: Option<i32>,
}

impl Drop for Made {
    fn drop(&mut self) {
        if let Some(id) = self.shm {
            let _ = sysv::shm_remove(id);
        }
        if let Some(id) = self.sem {
            let _ = sysv::sem_remove(id);
        }
    }
}

/// Whether set `id` is gone: semop's EINVAL means removed or a bad argument, IPC_STAT tells.
fn sem_gone(id: i32) -> bool {
    matches!(sysv::sem_value(id, 0), Err(Errno::EINVAL | Errno::EIDRM))
}

fn sem_error(key: Key, id: i32, e: Errno) -> Error {
    let err = Error::sys("semop", format!("semaphores {key}"), e);
    match e {
        Errno::EIDRM => err.hint(REMOVED),
        Errno::EINVAL if sem_gone(id) => err.hint(REMOVED),
        Errno::EACCES => err.hint(
            "they belong to another user and their mode does not let you use them (see: ipcs -s); pick another --key",
        ),
        _ => err,
    }
}

const REMOVED: &str =
    "the segment and its semaphores were removed while this process used them (reader --clean or ipcrm)";

/// The end of a run of one process, shareable with the stop thread.
#[derive(Clone)]
pub struct SysvEnd {
    key: Key,
    shm_id: i32,
    sem_id: i32,
    mem: Shared,
}

impl SysvEnd {
    pub fn finish(&self) -> Result<Outcome> {
        let (key, sem_id) = (self.key, self.sem_id);
        let sems = || format!("semaphores {key}");
        // BUSY first: nobody is then mid-copy, and no other process is deciding.
        let mut ops = [sembuf(BUSY, 0, 0), sembuf(BUSY, 1, UNDO)];
        loop {
            match sysv::semop_timed(sem_id, &mut ops, Duration::from_secs(5), Try::First) {
                Ok(()) => break,
                Err(Errno::EINTR) => continue,
                Err(Errno::EIDRM | Errno::EINVAL) if sem_gone(sem_id) => {
                    lock(&self.mem).take();
                    return Ok(Outcome::Gone);
                }
                Err(e) => return Err(sem_error(key, sem_id, e)),
            }
        }
        let held = self.decide();
        let mut attached = lock(&self.mem);
        match held {
            Ok(Some(left)) => {
                attached.take(); // shmdt while holding BUSY: the next one to decide sees us gone
                let mut release = [sembuf(BUSY, -1, UNDO)];
                loop {
                    match sysv::semop(sem_id, &mut release) {
                        Err(Errno::EINTR) => continue,
                        other => break other.map_err(|e| sem_error(key, sem_id, e))?,
                    }
                }
                Ok(left)
            }
            Ok(None) => {
                attached.take();
                // The segment first, while BUSY is held. Its key is free at once, so a newcomer
                // from here on makes a new segment, attaches it and waits for BUSY on the old set,
                // whose removal sends it back to start over (EIDRM). The other order left a
                // moment with a segment and no set: a newcomer then made a new set beside the
                // doomed segment and wrote into it (lost, with exit 0), or a reader took the old
                // message again as a semaphore-less writer's.
                match sysv::shm_remove(self.shm_id) {
                    Ok(()) | Err(Errno::EINVAL | Errno::EIDRM) => {}
                    Err(Errno::EPERM) => {
                        // Another user's (shared with --mode): leave it to its owner.
                        let owner = sysv::shm_stat(self.shm_id).map_or(0, |ds| ds.shm_perm.uid);
                        let _ = sysv::semop(sem_id, &mut [sembuf(BUSY, -1, UNDO)]);
                        return Ok(Outcome::NotOurs { owner });
                    }
                    Err(e) => return Err(Error::sys("shmctl(IPC_RMID)", format!("segment {key}"), e)),
                }
                match sysv::sem_remove(sem_id) {
                    Ok(()) | Err(Errno::EINVAL | Errno::EIDRM) => Ok(Outcome::Removed),
                    Err(e) => Err(Error::sys("semctl(IPC_RMID)", sems(), e)),
                }
            }
            Err(e) => {
                attached.take();
                let _ = sysv::semop(sem_id, &mut [sembuf(BUSY, -1, UNDO)]);
                Err(e)
            }
        }
    }

    /// Holding BUSY: None if nothing waits in the objects and nobody else uses them, else what
    /// keeps them.
    fn decide(&self) -> Result<Option<Outcome>> {
        let (key, sem_id) = (self.key, self.sem_id);
        let sems = || format!("semaphores {key}");
        let pending = sysv::sem_value(sem_id, i32::from(FULL)).map_err(|e| Error::sys("semctl(GETVAL)", sems(), e))?;
        let mut waiting = 0;
        for num in [FULL, BUSY] {
            let (n, z) = sysv::sem_waiters(sem_id, i32::from(num))
                .map_err(|e| Error::sys("semctl(GETNCNT/GETZCNT)", sems(), e))?;
            waiting += n + z;
        }
        let attached = match sysv::shm_stat(self.shm_id) {
            Ok(ds) => ds.shm_nattch as i64,
            Err(Errno::EINVAL | Errno::EIDRM) => 0, // removed by hand: the set goes too
            Err(e) => return Err(Error::sys("shmctl(IPC_STAT)", format!("segment {key}"), e)),
        };
        let others = attached - i64::from(lock(&self.mem).is_some());
        // Our processes are attached while they wait, so `others` covers the waiters; the counts
        // catch a waiter that is not attached (another program on the set).
        let others = others.max(i64::from(waiting)) as u64;
        Ok((pending > 0 || others > 0).then_some(Outcome::Left { pending: pending.max(0) as u64, others }))
    }
}

/// A message left by a writer that uses no semaphore, like the note's C (shmget, shmat, strcpy).
///
/// The rule: with no semaphore set under the key, the segment holds a finished message if
/// IPC_STAT shows nobody attached (the writer has detached or exited), a last attach/detach by
/// another process (shm_lpid: somebody did write), and the string is not empty. Without the
/// semaphore there is no sound way to tell a writer that is still copying, so a C writer must
/// have finished before the reader starts; with our writer the semaphore says it.
pub fn legacy_message(key: Key) -> Result<Option<Vec<u8>>> {
    match sysv::semget(key, 0, 0) {
        Err(Errno::ENOENT) => {}
        _ => return Ok(None), // semaphores exist (or cannot be seen): use them
    }
    let shm_id = match sysv::shmget(key, 0, 0) {
        Ok(id) => id,
        Err(_) => return Ok(None),
    };
    let ds = sysv::shm_stat(shm_id).map_err(|e| Error::sys("shmctl(IPC_STAT)", format!("segment {key}"), e))?;
    let ours = nix::unistd::getpid().as_raw();
    if ds.shm_nattch != 0 || ds.shm_lpid == 0 || ds.shm_lpid == ours || ds.shm_segsz == 0 {
        return Ok(None);
    }
    let mem = Attached::read_only(shm_id).map_err(|e| Error::sys("shmat", format!("segment {key}"), e))?;
    let text = mem.read_c_string();
    Ok((!text.is_empty()).then_some(text))
}

/// Removes a segment left by a semaphore-less writer, once read.
pub fn remove_segment(key: Key) -> Result<()> {
    match sysv::shmget(key, 0, 0) {
        Ok(id) => sysv::shm_remove(id).map_err(|e| Error::sys("shmctl(IPC_RMID)", format!("segment {key}"), e)),
        Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(Error::sys("shmget", format!("key {key}"), e)),
    }
}

pub fn clean(key: Key) -> Result<String> {
    let mut removed = Vec::new();
    if let Ok(id) = sysv::shmget(key, 0, 0) {
        sysv::shm_remove(id).map_err(|e| Error::sys("shmctl(IPC_RMID)", format!("segment {key}"), e))?;
        removed.push("segment");
    }
    if let Ok(id) = sysv::semget(key, 0, 0) {
        sysv::sem_remove(id).map_err(|e| Error::sys("semctl(IPC_RMID)", format!("semaphores {key}"), e))?;
        removed.push("semaphores");
    }
    Ok(if removed.is_empty() {
        format!("nothing has key {key}")
    } else {
        format!("removed {} of key {key}", removed.join(" and "))
    })
}
