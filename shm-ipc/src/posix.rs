//! The same exchange over POSIX shared memory (shm_open + mmap) and two named semaphores (beyond
//! the note). sem_open creates a semaphore with its value in one step, so "free" starts at 1 and
//! "full" at 0 with no start-up race.

use common::posix::{Mapped, NamedSem, sem_unlink, shm_unlink};
use common::{Error, Key, Memory, Result};
use nix::errno::Errno;

use crate::{Objects, SIZE};

pub fn shm_name(key: Key) -> String {
    format!("/shm-ipc-{key}")
}

fn sem_names(key: Key) -> [String; 2] {
    [format!("/shm-ipc-{key}-full"), format!("/shm-ipc-{key}-free")]
}

pub struct PosixChannel {
    key: Key,
    mem: Mapped,
    full: NamedSem,
    free: NamedSem,
}

impl PosixChannel {
    pub fn open(key: Key, mode: u32, create: bool) -> Result<Self> {
        let name = shm_name(key);
        let (mem, _) = Mapped::open(&name, SIZE, mode, create).map_err(|e| {
            let err = Error::sys("shm_open", &name, e);
            match e {
                Errno::ENOENT => err.hint("start the writer first"),
                Errno::EINVAL => {
                    err.hint(format!("it exists with a size other than {SIZE} bytes; remove it: rm /dev/shm{name}"))
                }
                _ => err,
            }
        })?;
        let [full_name, free_name] = sem_names(key);
        let full = NamedSem::open(&full_name, mode, 0).map_err(|e| Error::sys("sem_open", &full_name, e))?;
        let free = NamedSem::open(&free_name, mode, 1).map_err(|e| Error::sys("sem_open", &free_name, e))?;
        Ok(PosixChannel { key, mem, full, free })
    }

    pub fn send(&mut self, text: &[u8], on_wait: &mut dyn FnMut()) -> Result<()> {
        take(&self.free, &sem_names(self.key)[1], on_wait)?;
        self.mem.write_c_string(text);
        self.full.post().map_err(|e| Error::sys("sem_post", &sem_names(self.key)[0], e))
    }

    pub fn recv(&mut self, on_wait: &mut dyn FnMut()) -> Result<Vec<u8>> {
        take(&self.full, &sem_names(self.key)[0], on_wait)?;
        let text = self.mem.read_c_string();
        self.free.post().map_err(|e| Error::sys("sem_post", &sem_names(self.key)[1], e))?;
        Ok(text)
    }

    pub fn objects(&self) -> Objects {
        Objects::Posix { key: self.key }
    }
}

/// sem_trywait, then (after `on_wait`) sem_wait.
fn take(sem: &NamedSem, name: &str, on_wait: &mut dyn FnMut()) -> Result<()> {
    if !sem.try_wait().map_err(|e| Error::sys("sem_trywait", name, e))? {
        on_wait();
        sem.wait().map_err(|e| Error::sys("sem_wait", name, e))?;
    }
    Ok(())
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

pub fn remove(key: Key) -> Result<()> {
    unlink_all(key).map(drop)
}

pub fn clean(key: Key) -> Result<String> {
    Ok(match unlink_all(key)? {
        0 => format!("nothing named {} exists", shm_name(key)),
        n => format!("removed {n} POSIX object(s) of {}", shm_name(key)),
    })
}
