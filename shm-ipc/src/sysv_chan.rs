//! The note's System V segment, with a SysV semaphore set under the same key (TLPI's way).
//!
//! Two semaphores, both 0 in a new set (Linux zeroes them, so there is no window in which a
//! peer could see an uninitialised set, the classic SysV start-up race):
//! - FULL: 1 while an unread message is in the segment. The writer's post has no SEM_UNDO: the
//!   kernel would undo it when the writer exits and the reader would wait forever.
//! - BUSY: 1 while one side copies; taken with SEM_UNDO, so a side that dies holding it frees it.
//!
//! The writer waits for FULL == 0 and BUSY == 0 and takes BUSY in one atomic semop; the reader
//! takes FULL and BUSY in one semop. A zero state means "empty and free", which is exactly what a
//! new set is.

use common::sysv::{self, Attached, get_or_create, sembuf};
use common::{Error, Key, Memory, Result};
use nix::errno::Errno;

use crate::Objects;

const FULL: u16 = 0;
const BUSY: u16 = 1;
const NSEMS: i32 = 2;
const UNDO: i16 = libc::SEM_UNDO as i16;

pub struct SysvChannel {
    key: Key,
    shm_id: i32,
    sem_id: i32,
    mem: Attached,
    /// Set after the first wait: from then on, waits block at once (one semop, as in C).
    waited: bool,
}

impl SysvChannel {
    pub fn open(key: Key, mode: u32, writer: bool, create: bool, size: usize) -> Result<Self> {
        let obj = || format!("key {key}");
        let missing = |call: &'static str, e: Errno| {
            let err = Error::sys(call, obj(), e);
            match e {
                Errno::ENOENT => err.hint("nothing has that key yet; start the writer first"),
                Errno::EINVAL => err.hint(format!(
                    "another program uses this key with other sizes; pick another --key, or remove it: ipcrm -M {key} -S {key}"
                )),
                Errno::EACCES => err.hint("it belongs to another user and is not shared with you"),
                _ => err,
            }
        };
        // The semaphores first: a segment without them means a semaphore-less (C) writer.
        let sem_id = if create {
            get_or_create(mode as i32, |f| sysv::semget(key, NSEMS, f)).map(|(id, _)| id)
        } else {
            sysv::semget(key, NSEMS, 0)
        }
        .map_err(|e| missing("semget", e))?;
        // Size 0 to find an existing segment of any size; its real size is checked below.
        let shm_id = if create {
            get_or_create(mode as i32, |f| sysv::shmget(key, if f == 0 { 0 } else { size }, f)).map(|(id, _)| id)
        } else {
            sysv::shmget(key, 0, 0)
        }
        .map_err(|e| missing("shmget", e))?;
        let has = sysv::shm_stat(shm_id).map_err(|e| missing("shmctl(IPC_STAT)", e))?.shm_segsz;
        if has != size {
            return Err(Error::sys("shmget", obj(), Errno::EINVAL).hint(format!(
                "the segment of this key has {has} bytes, not {size}: another program uses it; pick another --key, or remove it: ipcrm -M {key}"
            )));
        }
        let mem = Attached::attach(shm_id, size, !writer).map_err(|e| missing("shmat", e))?;
        Ok(SysvChannel { key, shm_id, sem_id, mem, waited: false })
    }

    pub fn send(&mut self, text: &[u8], on_wait: &mut dyn FnMut()) -> Result<()> {
        self.semop([sembuf(FULL, 0, 0), sembuf(BUSY, 0, 0), sembuf(BUSY, 1, UNDO)], on_wait)?;
        self.mem.write_c_string(text);
        self.semop([sembuf(BUSY, -1, UNDO), sembuf(FULL, 1, 0)], &mut || {})
    }

    pub fn recv(&mut self, on_wait: &mut dyn FnMut()) -> Result<Vec<u8>> {
        self.semop([sembuf(FULL, -1, 0), sembuf(BUSY, 0, 0), sembuf(BUSY, 1, UNDO)], on_wait)?;
        let text = self.mem.read_c_string();
        self.semop([sembuf(BUSY, -1, UNDO)], &mut || {})?;
        Ok(text)
    }

    pub fn objects(&self) -> Objects {
        Objects::SysV { key: self.key, shm_id: self.shm_id, sem_id: self.sem_id }
    }

    /// semop that, until the first wait, tries without blocking first, so `on_wait` (the ready
    /// line) is called only when it really has to wait; EINTR (Ctrl-Z then fg) is retried:
    /// nothing was applied.
    fn semop<const N: usize>(&mut self, mut ops: [libc::sembuf; N], on_wait: &mut dyn FnMut()) -> Result<()> {
        let nowait = libc::IPC_NOWAIT as i16;
        let mut blocking = self.waited;
        if !blocking {
            ops.iter_mut().for_each(|op| op.sem_flg |= nowait);
        }
        loop {
            match sysv::semop(self.sem_id, &mut ops) {
                Ok(()) => return Ok(()),
                Err(Errno::EAGAIN) if !blocking => {
                    on_wait();
                    self.waited = true;
                    ops.iter_mut().for_each(|op| op.sem_flg &= !nowait);
                    blocking = true;
                }
                Err(Errno::EINTR) => {}
                Err(e) => {
                    let err = Error::sys("semop", format!("semaphores {}", self.key), e);
                    return Err(match e {
                        Errno::EIDRM | Errno::EINVAL => err.hint("they were removed: the peer has finished"),
                        Errno::EACCES => err.hint(
                            "they belong to another user and their mode does not let you use them (see: ipcs -s); pick another --key",
                        ),
                        _ => err,
                    });
                }
            }
        }
    }
}

pub fn remove(key: Key, shm_id: i32, sem_id: i32) -> Result<()> {
    let gone = |r: nix::Result<()>| match r {
        Err(Errno::EINVAL | Errno::EIDRM) => Ok(()), // removed already
        other => other,
    };
    gone(sysv::shm_remove(shm_id)).map_err(|e| Error::sys("shmctl(IPC_RMID)", format!("segment {key}"), e))?;
    gone(sysv::sem_remove(sem_id)).map_err(|e| Error::sys("semctl(IPC_RMID)", format!("semaphores {key}"), e))
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
    let mem =
        Attached::attach(shm_id, ds.shm_segsz, true).map_err(|e| Error::sys("shmat", format!("segment {key}"), e))?;
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
