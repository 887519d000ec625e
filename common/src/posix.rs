//! Thin safe wrappers for POSIX shared memory (shm_open + mmap) and named semaphores
//! (sem_open, which nix does not wrap): the `--posix` variant of the shared-memory pair.

use std::ffi::CString;
use std::num::NonZeroUsize;
use std::os::fd::OwnedFd;
use std::ptr::NonNull;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::mman::{MapFlags, ProtFlags, mmap, munmap, shm_open};
use nix::sys::stat::{Mode, fstat};
use nix::unistd::ftruncate;

use crate::Memory;

/// A POSIX shared-memory object mapped MAP_SHARED, unmapped on drop.
pub struct Mapped {
    addr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is process-wide; callers serialise access with semaphores.
unsafe impl Send for Mapped {}

impl Mapped {
    /// shm_open(name), sized to `len` if this call created it, then mmap. Returns the mapping and
    /// whether it was created. An existing object of another size is EINVAL.
    pub fn open(name: &str, len: usize, mode: u32, create: bool) -> nix::Result<(Mapped, bool)> {
        let m = Mode::from_bits_truncate(mode);
        let (fd, created) = if create {
            match shm_open(name, OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_EXCL, m) {
                Ok(fd) => (fd, true),
                Err(Errno::EEXIST) => (shm_open(name, OFlag::O_RDWR, m)?, false),
                Err(e) => return Err(e),
            }
        } else {
            (shm_open(name, OFlag::O_RDWR, m)?, false)
        };
        if created {
            ftruncate(&fd, len as i64)?;
        } else if fstat(&fd)?.st_size as usize != len {
            return Err(Errno::EINVAL);
        }
        Ok((Self::map(&fd, len)?, created))
    }

    fn map(fd: &OwnedFd, len: usize) -> nix::Result<Mapped> {
        let n = NonZeroUsize::new(len).ok_or(Errno::EINVAL)?;
        // SAFETY: a fresh shared mapping of a file we opened; nothing else aliases it in Rust.
        let p = unsafe { mmap(None, n, ProtFlags::PROT_READ | ProtFlags::PROT_WRITE, MapFlags::MAP_SHARED, fd, 0)? };
        Ok(Mapped { addr: p.cast(), len })
    }
}

impl Memory for Mapped {
    fn base(&self) -> NonNull<u8> {
        self.addr
    }

    fn len(&self) -> usize {
        self.len
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        // SAFETY: addr/len came from mmap and are unmapped once.
        let _ = unsafe { munmap(self.addr.cast(), self.len) };
    }
}

pub fn shm_unlink(name: &str) -> nix::Result<()> {
    nix::sys::mman::shm_unlink(name)
}

/// A named POSIX semaphore (sem_open), closed on drop.
pub struct NamedSem(NonNull<libc::sem_t>);

// SAFETY: sem_t operations are thread-safe.
unsafe impl Send for NamedSem {}
unsafe impl Sync for NamedSem {}

impl NamedSem {
    /// sem_open(name, O_CREAT, mode, value): created with its value in one step (glibc builds it
    /// in a temp file and links it into place), so no one sees it uninitialised.
    pub fn open(name: &str, mode: u32, value: u32) -> nix::Result<NamedSem> {
        let c = CString::new(name).map_err(|_| Errno::EINVAL)?;
        // SAFETY: c is a valid C string; sem_open with O_CREAT reads mode and value varargs.
        let p = unsafe { libc::sem_open(c.as_ptr(), libc::O_CREAT, mode as libc::c_uint, value) };
        if p == libc::SEM_FAILED {
            return Err(Errno::last());
        }
        NonNull::new(p).map(NamedSem).ok_or(Errno::EINVAL)
    }

    /// Waits until the value is positive and decrements it; retries EINTR (Ctrl-Z, fg).
    pub fn wait(&self) -> nix::Result<()> {
        loop {
            // SAFETY: self.0 is an open semaphore.
            match Errno::result(unsafe { libc::sem_wait(self.0.as_ptr()) }) {
                Err(Errno::EINTR) => continue,
                other => return other.map(drop),
            }
        }
    }

    /// Decrements if positive; false (EAGAIN) otherwise.
    pub fn try_wait(&self) -> nix::Result<bool> {
        // SAFETY: self.0 is an open semaphore.
        match Errno::result(unsafe { libc::sem_trywait(self.0.as_ptr()) }) {
            Ok(_) => Ok(true),
            Err(Errno::EAGAIN) => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub fn post(&self) -> nix::Result<()> {
        // SAFETY: self.0 is an open semaphore.
        Errno::result(unsafe { libc::sem_post(self.0.as_ptr()) }).map(drop)
    }
}

impl Drop for NamedSem {
    fn drop(&mut self) {
        // SAFETY: opened by sem_open, closed once.
        unsafe { libc::sem_close(self.0.as_ptr()) };
    }
}

pub fn sem_unlink(name: &str) -> nix::Result<()> {
    let c = CString::new(name).map_err(|_| Errno::EINVAL)?;
    // SAFETY: c is a valid C string.
    Errno::result(unsafe { libc::sem_unlink(c.as_ptr()) }).map(drop)
}
