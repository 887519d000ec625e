//! The `sysv-shm-sem` row: a SysV segment of [`SLOTS`] slots and a SysV semaphore pair (free
//! slots, full slots), with one semop per message on each side, as few as a hand-off allows. The
//! sender's semop publishes the slot it wrote and takes the next free one in one atomic call; the
//! receiver's hands back the slot it read and takes the next full one. Neither can block the
//! other for good: with 3 or more slots, while each side holds one, a free or a full one is left.
//! (The note's protocol, shm_ipc, takes a lock around every copy: 4 semops per message.)

use common::sysv::{self, Attached, sembuf};
use common::{Error, Key, Memory, MemoryMut, ReadWrite, Result, SysResult};
use nix::errno::Errno;

use crate::ring::stride;

pub const SLOTS: usize = 4;
const FREE: u16 = 0;
const FULL: u16 = 1;

/// Bytes of the segment for `size`-byte messages (slots on pages from 4 KiB on, see ring.rs).
pub fn bytes(size: usize) -> usize {
    SLOTS * stride(size)
}

/// Makes the segment and the semaphores of `key` (FREE = SLOTS, FULL = 0); returns their ids.
/// On failure, removes what it made.
pub fn create(key: Key, size: usize) -> Result<(i32, i32)> {
    let flags = libc::IPC_CREAT | libc::IPC_EXCL | 0o600;
    let shm = sysv::shmget(key, bytes(size), flags).sys("shmget", format!("key {key}"))?;
    let sem = sysv::semget(key, 2, flags).sys("semget", format!("key {key}")).inspect_err(|_| {
        let _ = sysv::shm_remove(shm);
    })?;
    if let Err(e) = sysv::semop(sem, &mut [sembuf(FREE, SLOTS as i16, 0)]).sys("semop", format!("semaphores {key}")) {
        let _ = sysv::shm_remove(shm);
        let _ = sysv::sem_remove(sem);
        return Err(e);
    }
    Ok((shm, sem))
}

/// One end (sender or receiver) of a direction.
pub struct SemRing {
    mem: Attached<ReadWrite>,
    sem: i32,
    size: usize,
    count: usize,
    /// Whether this end holds a slot: the sender the next free one, the receiver the last read.
    holding: bool,
}

impl SemRing {
    pub fn open(shm: i32, sem: i32, size: usize) -> Result<SemRing> {
        let mem = Attached::read_write(shm).sys("shmat", format!("segment id {shm}"))?;
        if mem.len() < bytes(size) {
            return Err(Error::Failed(format!(
                "segment id {shm}: {} bytes, {SLOTS} slots need {}",
                mem.len(),
                bytes(size)
            )));
        }
        Ok(SemRing { mem, sem, size, count: 0, holding: false })
    }

    fn at(&self) -> usize {
        (self.count % SLOTS) * stride(self.size)
    }

    pub fn send(&mut self, msg: &[u8]) -> Result<()> {
        if !self.holding {
            self.semop(&mut [sembuf(FREE, -1, 0)])?;
            self.holding = true;
        }
        let at = self.at();
        self.mem.write(at, msg);
        self.count += 1;
        self.semop(&mut [sembuf(FULL, 1, 0), sembuf(FREE, -1, 0)])
    }

    pub fn recv(&mut self, out: &mut [u8]) -> Result<()> {
        if self.holding {
            self.semop(&mut [sembuf(FREE, 1, 0), sembuf(FULL, -1, 0)])?;
        } else {
            self.semop(&mut [sembuf(FULL, -1, 0)])?;
            self.holding = true;
        }
        self.mem.read(self.at(), out);
        self.count += 1;
        Ok(())
    }

    fn semop(&self, ops: &mut [libc::sembuf]) -> Result<()> {
        loop {
            match sysv::semop(self.sem, ops) {
                Err(Errno::EINTR) => continue, // SIGSTOP/SIGCONT; stop signals never reach here
                other => return other.sys("semop", format!("semaphore set id {}", self.sem)),
            }
        }
    }
}
