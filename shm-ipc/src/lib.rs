//! Shared memory (note section 4, claims S5-S7): one segment of SIZE bytes, found by its key,
//! mapped into each process's own address space and used like a variable. The note's segment
//! layout is kept (a NUL-terminated C string at offset 0); what the note leaves out is added:
//! a semaphore set under the same key tells the reader when the data is ready, the segment is
//! made 0600 instead of 0666, and it is detached and removed when done.

pub mod layout;
mod posix;
mod sysv_chan;

use common::{Error, Key, Result};

pub use sysv_chan::{legacy_message, remove_segment};

/// The writer's message when none is given: the note's.
pub const DEFAULT_MESSAGE: &str = "Linux Programming";

/// The note's SIZE.
pub const SIZE: usize = common::SHM_SIZE;

/// Refuses, before any system call, a text that does not fit with its NUL.
pub fn check_fits(text: &[u8]) -> Result<()> {
    if text.len() > SIZE - 1 {
        return Err(Error::Usage(format!(
            "a message of {} bytes does not fit the {SIZE}-byte segment with its NUL (at most {} bytes)",
            text.len(),
            SIZE - 1
        )));
    }
    Ok(())
}

/// One side of the exchange, over SysV (the note's) or POSIX shared memory.
pub enum Channel {
    SysV(sysv_chan::SysvChannel),
    Posix(posix::PosixChannel),
}

impl Channel {
    /// Opens the segment and its semaphores for `key`, making them (with `mode`) if `create`.
    /// A writer attaches read-write, a reader read-only.
    pub fn open(key: Key, mode: u32, posix: bool, writer: bool, create: bool) -> Result<Channel> {
        Ok(if posix {
            Channel::Posix(posix::PosixChannel::open(key, mode, create)?)
        } else {
            Channel::SysV(sysv_chan::SysvChannel::open(key, mode, writer, create, SIZE)?)
        })
    }

    /// A SysV channel with a segment of `size` bytes instead of the note's SIZE (the benchmark
    /// sends bigger messages); the same protocol otherwise.
    pub fn open_sysv_sized(key: Key, mode: u32, writer: bool, create: bool, size: usize) -> Result<Channel> {
        Ok(Channel::SysV(sysv_chan::SysvChannel::open(key, mode, writer, create, size)?))
    }

    /// Waits until the last message was taken (calling `on_wait` once if it must), then copies
    /// `text` and its NUL in and tells the reader.
    pub fn send(&mut self, text: &[u8], on_wait: &mut dyn FnMut()) -> Result<()> {
        match self {
            Channel::SysV(c) => c.send(text, on_wait),
            Channel::Posix(c) => c.send(text, on_wait),
        }
    }

    /// Waits until a message is ready (calling `on_wait` once if it must), copies it out and
    /// frees the segment for the next one.
    pub fn recv(&mut self, on_wait: &mut dyn FnMut()) -> Result<Vec<u8>> {
        match self {
            Channel::SysV(c) => c.recv(on_wait),
            Channel::Posix(c) => c.recv(on_wait),
        }
    }

    pub fn objects(&self) -> Objects {
        match self {
            Channel::SysV(c) => c.objects(),
            Channel::Posix(c) => c.objects(),
        }
    }
}

/// What a channel is made of, for error messages and removal (also from the stop thread).
#[derive(Clone, Debug)]
pub enum Objects {
    SysV { key: Key, shm_id: i32, sem_id: i32 },
    Posix { key: Key },
}

impl Objects {
    pub fn name(&self) -> String {
        match self {
            Objects::SysV { key, .. } => format!("segment {key}"),
            Objects::Posix { key } => format!("POSIX shared memory {}", posix::shm_name(*key)),
        }
    }

    /// Removes the segment and its semaphores (IPC_RMID / shm_unlink + sem_unlink). An attached
    /// SysV segment lives on until its last detach, so a peer still reading is not cut off.
    pub fn remove(&self) -> Result<()> {
        match self {
            Objects::SysV { key, shm_id, sem_id } => sysv_chan::remove(*key, *shm_id, *sem_id),
            Objects::Posix { key } => posix::remove(*key),
        }
    }
}

/// `reader --clean`: removes whatever of `key` exists (after a SIGKILL nothing else could).
pub fn clean(key: Key, posix: bool) -> Result<String> {
    if posix { posix::clean(key) } else { sysv_chan::clean(key) }
}
