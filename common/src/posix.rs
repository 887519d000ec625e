//! Thin safe wrappers for POSIX shared memory (shm_open + mmap) and named semaphores
//! (sem_open, which nix does not wrap): the `--posix` variant of the shared-memory pair.

use std::ffi::CString;
use std::num::NonZeroUsize;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::ptr::NonNull;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sys::mman::{MapFlags, ProtFlags, mmap, munmap, shm_open};
use nix::sys::stat::{Mode, fchmod, fstat, umask};
use nix::unistd::ftruncate;

use crate::{Memory, MemoryMut};

/// How long an opener waits for the creator of a new object to give it its size (the creator
/// does it right after shm_open, so this only covers a creator that is descheduled in between).
const SIZE_WAIT: Duration = Duration::from_secs(2);

/// A POSIX shared-memory object mapped MAP_SHARED, unmapped on drop. Its descriptor stays open:
/// it carries the users' record locks and tells, by its link count, whether the name was unlinked.
pub struct Mapped {
    addr: NonNull<u8>,
    len: usize,
    fd: OwnedFd,
}

// SAFETY: the handle owns its mapping, which is process-wide: any thread may use or unmap it.
// It is not Sync: writes take &mut self.
unsafe impl Send for Mapped {}

impl Mapped {
    /// shm_open(name) of an existing object of `len` bytes, then mmap. An object of another size
    /// is EINVAL.
    pub fn existing(name: &str, len: usize) -> nix::Result<Mapped> {
        Self::existing_with(name, len, &mut || {})
    }

    /// [`Mapped::existing`]; an object found with size 0 was just made by another process that
    /// has not yet called ftruncate: `on_size_wait` is called once and the size is awaited, bounded.
    pub fn existing_with(name: &str, len: usize, on_size_wait: &mut dyn FnMut()) -> nix::Result<Mapped> {
        Self::open(name, len, None, on_size_wait).map(|(m, _)| m)
    }

    /// shm_open(name), created if missing, sized to `len` and given exactly `mode` (whatever the
    /// umask) if this call created it, then mmap. Returns the mapping and whether it was created.
    /// An existing object of another size is EINVAL.
    pub fn get_or_create(name: &str, len: usize, mode: u32) -> nix::Result<(Mapped, bool)> {
        Self::get_or_create_with(name, len, mode, &mut || {})
    }

    /// [`Mapped::get_or_create`], awaiting the size of an object found as [`Mapped::existing_with`].
    pub fn get_or_create_with(
        name: &str,
        len: usize,
        mode: u32,
        on_size_wait: &mut dyn FnMut(),
    ) -> nix::Result<(Mapped, bool)> {
        Self::open(name, len, Some(mode), on_size_wait)
    }

    /// `create`: the mode to make a missing object with; None to fail (ENOENT) instead.
    fn open(
        name: &str,
        len: usize,
        create: Option<u32>,
        on_size_wait: &mut dyn FnMut(),
    ) -> nix::Result<(Mapped, bool)> {
        // Without O_CREAT shm_open ignores the mode.
        let m = Mode::from_bits_truncate(create.unwrap_or(0));
        let (fd, created) = if create.is_some() {
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
            fchmod(&fd, m)?; // shm_open applied the umask
        } else {
            let deadline = Instant::now() + SIZE_WAIT;
            let mut waited = false;
            loop {
                let st = fstat(&fd)?;
                match st.st_size as usize {
                    n if n == len => break,
                    0 if st.st_nlink > 0 && Instant::now() < deadline => {
                        if !waited {
                            on_size_wait();
                            waited = true;
                        }
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    _ => return Err(Errno::EINVAL),
                }
            }
        }
        let mem = Self::map(&fd, len)?;
        Ok((Mapped { addr: mem, len, fd }, created))
    }

    fn map(fd: &OwnedFd, len: usize) -> nix::Result<NonNull<u8>> {
        let n = NonZeroUsize::new(len).ok_or(Errno::EINVAL)?;
        // SAFETY: no address given, so the kernel picks a free range and replaces no existing mapping.
        let p = unsafe { mmap(None, n, ProtFlags::PROT_READ | ProtFlags::PROT_WRITE, MapFlags::MAP_SHARED, fd, 0)? };
        Ok(p.cast())
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The link count of the object: 0 once its name was unlinked (the mapping lives on).
    #[allow(clippy::unnecessary_cast)] // nlink_t is 32 bits on some targets
    pub fn links(&self) -> nix::Result<u64> {
        fstat(&self.fd).map(|st| st.st_nlink as u64)
    }
}

/// The bytes of a file a record lock covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub start: i64,
    /// 0: to the end of the file, however long it grows.
    pub len: i64,
}

impl Span {
    /// The whole file.
    pub const ALL: Span = Span { start: 0, len: 0 };

    /// The one byte at `at` (a byte per member: its PID, say).
    pub fn byte(at: i64) -> Span {
        Span { start: at, len: 1 }
    }
}

/// An open-file-description record lock (F_OFD_SETLK) on `span` of `fd`: shared, exclusive, or
/// none (unlock). Such locks belong to the open file, not to a thread or a process's other
/// descriptors, and go away when the process dies, even by SIGKILL.
/// Returns false if `wait` is [`LockWait::Try`] and another open file holds a conflicting lock.
pub fn ofd_lock(fd: BorrowedFd<'_>, span: Span, kind: LockKind, wait: LockWait) -> nix::Result<bool> {
    let wait = wait == LockWait::Block;
    let l_type = match kind {
        LockKind::Shared => libc::F_RDLCK,
        LockKind::Exclusive => libc::F_WRLCK,
        LockKind::Unlock => libc::F_UNLCK,
    };
    // SAFETY: flock is plain data; zero is a valid start for every field.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = l_type as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = span.start as libc::off_t;
    fl.l_len = span.len as libc::off_t;
    loop {
        let arg = if wait { FcntlArg::F_OFD_SETLKW(&fl) } else { FcntlArg::F_OFD_SETLK(&fl) };
        match fcntl(fd, arg) {
            Ok(_) => return Ok(true),
            Err(Errno::EINTR) => continue,
            Err(Errno::EAGAIN | Errno::EACCES) if !wait => return Ok(false),
            Err(e) => return Err(e),
        }
    }
}

/// Whether [`ofd_lock`] waits for a conflicting lock to go (F_OFD_SETLKW) or returns false at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockWait {
    Block,
    Try,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockKind {
    Shared,
    Exclusive,
    Unlock,
}

// SAFETY: mmap mapped len bytes at the page-aligned addr, readable and writable, until drop
// unmaps them; addr and len never change.
unsafe impl Memory for Mapped {
    fn base(&self) -> NonNull<u8> {
        self.addr
    }

    fn len(&self) -> usize {
        self.len
    }
}

// SAFETY: as for Memory; mapped with PROT_WRITE.
unsafe impl MemoryMut for Mapped {}

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
    /// sem_open(name, O_CREAT, mode, value): opened, or created with its value in one step (glibc
    /// builds it in a temp file and links it into place), so no one sees it uninitialised. A
    /// semaphore it creates gets exactly `mode`, whatever the umask. Says whether it created it
    /// (O_EXCL first, so that is never a guess).
    pub fn get_or_create(name: &str, mode: u32, value: u32) -> nix::Result<(NamedSem, bool)> {
        let c = CString::new(name).map_err(|_| Errno::EINVAL)?;
        loop {
            // sem_open applies the umask and has no descriptor to fchmod: clear the umask around
            // the create. The umask is per process; no other thread of ours creates files.
            let old = umask(Mode::empty());
            // SAFETY: c is a valid C string; with O_CREAT sem_open reads the mode and value varargs.
            let p = unsafe { libc::sem_open(c.as_ptr(), libc::O_CREAT | libc::O_EXCL, mode as libc::c_uint, value) };
            let err = Errno::last();
            umask(old);
            if p != libc::SEM_FAILED {
                return NonNull::new(p).map(|p| (NamedSem(p), true)).ok_or(Errno::EINVAL);
            }
            if err != Errno::EEXIST {
                return Err(err);
            }
            // SAFETY: c is a valid C string; without O_CREAT sem_open takes no varargs.
            let p = unsafe { libc::sem_open(c.as_ptr(), 0) };
            if p != libc::SEM_FAILED {
                return NonNull::new(p).map(|p| (NamedSem(p), false)).ok_or(Errno::EINVAL);
            }
            match Errno::last() {
                Errno::ENOENT => continue, // unlinked in between: create it again
                e => return Err(e),
            }
        }
    }

    /// Waits at most `timeout` until the value is positive and decrements it: true if it did,
    /// false on timeout. EINTR (Ctrl-Z, fg) is retried.
    pub fn timed_wait(&self, timeout: Duration) -> nix::Result<bool> {
        // sem_timedwait takes an absolute CLOCK_REALTIME time.
        let at = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default() + timeout;
        let ts = libc::timespec { tv_sec: at.as_secs() as libc::time_t, tv_nsec: at.subsec_nanos() as libc::c_long };
        loop {
            // SAFETY: self.0 is an open semaphore; ts is a valid timespec.
            match Errno::result(unsafe { libc::sem_timedwait(self.0.as_ptr(), &ts) }) {
                Ok(_) => return Ok(true),
                Err(Errno::EINTR) => continue,
                Err(Errno::ETIMEDOUT) => return Ok(false),
                Err(e) => return Err(e),
            }
        }
    }

    /// The current value (sem_getvalue).
    pub fn value(&self) -> nix::Result<i32> {
        let mut v: libc::c_int = 0;
        // SAFETY: self.0 is an open semaphore; v is a valid int to write.
        Errno::result(unsafe { libc::sem_getvalue(self.0.as_ptr(), &mut v) })?;
        Ok(v)
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
