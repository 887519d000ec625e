//! Thin safe wrappers for POSIX shared memory (shm_open + mmap) and named semaphores
//! (sem_open, which nix does not wrap): the `--posix` variant of the shared-memory pair.
//!
//! Each wrapper prints its call for `--trace`: the system calls (ftruncate, fchmod, mmap, munmap,
//! fstat as glibc makes it, umask) as strace shows them, and the C library's shm_* and sem_*
//! functions as library calls, with the arguments the program passed. What glibc turns them into
//! (shm_open: openat of /dev/shm/NAME with O_NOFOLLOW|O_CLOEXEC added; sem_open: a file
//! /dev/shm/sem.NAME mapped with mmap; sem_wait: a futex, or nothing) is strace's to show.
//! [`ofd_lock`] is not traced.

use std::ffi::CString;
use std::num::NonZeroUsize;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::ptr::NonNull;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sys::mman::{MapFlags, ProtFlags, mmap, munmap};
use nix::sys::stat::Mode;
use nix::unistd::ftruncate;

use crate::trace::{self, Try};
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
            let r = ftruncate(&fd, len as i64);
            trace::call(&r, |r| (format!("ftruncate({}, {len})", fd.as_raw_fd()), r.zero()));
            r?;
            crate::fd::fchmod(&fd, m)?; // shm_open applied the umask
        } else {
            let deadline = Instant::now() + SIZE_WAIT;
            let mut waited = false;
            loop {
                let st = fstat(fd.as_fd())?;
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
        let p = unsafe { mmap(None, n, ProtFlags::PROT_READ | ProtFlags::PROT_WRITE, MapFlags::MAP_SHARED, fd, 0) };
        trace::call(&p, |r| {
            let call = format!("mmap(NULL, {len}, PROT_READ|PROT_WRITE, MAP_SHARED, {}, 0)", fd.as_raw_fd());
            (call, r.or_errno(|p| trace::ptr(p.as_ptr())))
        });
        Ok(p?.cast())
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The link count of the object: 0 once its name was unlinked (the mapping lives on).
    #[allow(clippy::unnecessary_cast)] // nlink_t is 32 bits on some targets
    pub fn links(&self, t: Try) -> nix::Result<u64> {
        fstat_try(self.fd.as_fd(), t).map(|st| st.st_nlink as u64)
    }
}

/// The POSIX shared memory `name` (`/x`), opened as shm_open(3) does: openat of /dev/shm/x with
/// O_NOFOLLOW|O_CLOEXEC added.
fn shm_open(name: &str, flags: OFlag, mode: Mode) -> nix::Result<OwnedFd> {
    let r = nix::sys::mman::shm_open(name, flags, mode);
    trace::library_call(&r, |r| {
        let (f, m) = (trace::open_flags(flags.bits()), trace::mode(mode.bits()));
        (format!("shm_open({}, {f}, {m})", trace::path(Path::new(name))), r.or_errno(|fd| fd.as_raw_fd().to_string()))
    });
    r
}

/// fstat(2) of `fd`, which glibc makes (and strace shows) as newfstatat(fd, "", .., AT_EMPTY_PATH).
pub fn fstat(fd: BorrowedFd<'_>) -> nix::Result<libc::stat> {
    fstat_try(fd, Try::First)
}

/// [`fstat`] as a wait loop repeats it (see [`Try`]).
pub fn fstat_try(fd: BorrowedFd<'_>, t: Try) -> nix::Result<libc::stat> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: st is a stat buffer for fstat to fill; fd is an open descriptor.
    let r = Errno::result(unsafe { libc::fstat(fd.as_raw_fd(), st.as_mut_ptr()) }).map(|_| {
        // SAFETY: fstat succeeded, so it filled st.
        unsafe { st.assume_init() }
    });
    trace::call_try(t, &r, |r| {
        let shown = r.value().map_or_else(|| trace::ptr(st.as_ptr()), stat);
        (format!("newfstatat({}, \"\", {shown}, AT_EMPTY_PATH)", fd.as_raw_fd()), r.or_errno(|_| "0".into()))
    });
    r
}

/// A stat buffer as strace abbreviates it: `{st_mode=S_IFREG|0600, st_size=4096, ...}` (the
/// device number instead of the size for a device).
#[allow(clippy::unnecessary_cast)] // mode_t and dev_t differ in width between targets
fn stat(st: &libc::stat) -> String {
    let mode = st.st_mode as u32;
    let kind = match mode & libc::S_IFMT as u32 {
        t if t == libc::S_IFREG as u32 => "S_IFREG",
        t if t == libc::S_IFDIR as u32 => "S_IFDIR",
        t if t == libc::S_IFCHR as u32 => "S_IFCHR",
        t if t == libc::S_IFBLK as u32 => "S_IFBLK",
        t if t == libc::S_IFIFO as u32 => "S_IFIFO",
        t if t == libc::S_IFLNK as u32 => "S_IFLNK",
        _ => "S_IFSOCK",
    };
    let special = [(0o4000, "S_ISUID"), (0o2000, "S_ISGID"), (0o1000, "S_ISVTX")];
    let mut shown = kind.to_string();
    for (bit, name) in special {
        if mode & bit != 0 {
            shown = format!("{shown}|{name}");
        }
    }
    shown = format!("{shown}|{}", trace::mode(mode & 0o777));
    let size_or_dev = if kind == "S_IFCHR" || kind == "S_IFBLK" {
        let d = st.st_rdev as u64;
        format!("st_rdev=makedev({:#x}, {:#x})", libc::major(d), libc::minor(d))
    } else {
        format!("st_size={}", st.st_size)
    };
    format!("{{st_mode={shown}, {size_or_dev}, ...}}")
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
        let r = unsafe { munmap(self.addr.cast(), self.len) };
        trace::call(&r, |r| (format!("munmap({}, {})", trace::ptr(self.addr.as_ptr()), self.len), r.zero()));
    }
}

/// shm_unlink(3): glibc's unlink of /dev/shm/NAME.
pub fn shm_unlink(name: &str) -> nix::Result<()> {
    let r = nix::sys::mman::shm_unlink(name);
    trace::library_call(&r, |r| (format!("shm_unlink({})", trace::path(Path::new(name))), r.zero()));
    r
}

/// umask(2), which cannot fail; returns the old mask.
fn umask(mask: Mode) -> Mode {
    let old = nix::sys::stat::umask(mask);
    trace::call(&Ok(old), |_| (format!("umask({})", trace::mode(mask.bits())), trace::mode(old.bits())));
    old
}

/// The result of a sem_* call that returns 0 or -1 with errno.
fn sem_result(ret: libc::c_int) -> nix::Result<()> {
    Errno::result(ret).map(drop)
}

/// sem_open's flags: O_CREAT and O_EXCL are all it looks at.
fn sem_flags(f: libc::c_int) -> String {
    trace::flags(f.into(), &[(libc::O_CREAT.into(), "O_CREAT"), (libc::O_EXCL.into(), "O_EXCL")])
}

/// sem_open(3) as it was called (the mode and value only with O_CREAT): a pointer, or SEM_FAILED
/// and errno.
fn sem_open(name: &CString, flags: libc::c_int, create: Option<(u32, u32)>) -> nix::Result<NonNull<libc::sem_t>> {
    let p = match create {
        // SAFETY: name is a valid C string; with O_CREAT sem_open reads the mode and value varargs.
        Some((mode, value)) => unsafe { libc::sem_open(name.as_ptr(), flags, mode as libc::c_uint, value) },
        // SAFETY: name is a valid C string; without O_CREAT sem_open takes no varargs.
        None => unsafe { libc::sem_open(name.as_ptr(), flags) },
    };
    let r = if p == libc::SEM_FAILED { Err(Errno::last()) } else { NonNull::new(p).ok_or(Errno::EINVAL) };
    trace::library_call(&r, |r| {
        let n = trace::path(Path::new(&*name.to_string_lossy()));
        let call = match create {
            Some((mode, value)) => format!("sem_open({n}, {}, {}, {value})", sem_flags(flags), trace::mode(mode)),
            None => format!("sem_open({n}, {})", sem_flags(flags)),
        };
        (call, r.or_errno(|p| trace::ptr(p.as_ptr())))
    });
    r
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
            let made = sem_open(&c, libc::O_CREAT | libc::O_EXCL, Some((mode, value)));
            umask(old);
            match made {
                Ok(p) => return Ok((NamedSem(p), true)),
                Err(Errno::EEXIST) => {}
                Err(e) => return Err(e),
            }
            match sem_open(&c, 0, None) {
                Ok(p) => return Ok((NamedSem(p), false)),
                Err(Errno::ENOENT) => continue, // unlinked in between: create it again
                Err(e) => return Err(e),
            }
        }
    }

    /// Waits at most `timeout` until the value is positive and decrements it: true if it did,
    /// false on timeout. EINTR (Ctrl-Z, fg) is retried.
    /// Waits up to `timeout` for the semaphore; false if it did not come. `t`: which try of a
    /// wait loop this is (see [`Try`]).
    pub fn timed_wait(&self, timeout: Duration, t: Try) -> nix::Result<bool> {
        // sem_timedwait takes an absolute CLOCK_REALTIME time.
        let at = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default() + timeout;
        let ts = libc::timespec { tv_sec: at.as_secs() as libc::time_t, tv_nsec: at.subsec_nanos() as libc::c_long };
        loop {
            // SAFETY: self.0 is an open semaphore; ts is a valid timespec.
            let r = sem_result(unsafe { libc::sem_timedwait(self.0.as_ptr(), &ts) });
            trace::library_call_try(t, &r, |r| {
                (format!("sem_timedwait({}, {})", self.ptr(), trace::timespec(&ts)), r.zero())
            });
            match r {
                Ok(()) => return Ok(true),
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
        let r = sem_result(unsafe { libc::sem_getvalue(self.0.as_ptr(), &mut v) });
        trace::library_call(&r, |r| {
            let shown = if r.value().is_some() { format!("[{v}]") } else { trace::ptr(&v) };
            (format!("sem_getvalue({}, {shown})", self.ptr()), r.zero())
        });
        r?;
        Ok(v)
    }

    /// Waits until the value is positive and decrements it; retries EINTR (Ctrl-Z, fg).
    pub fn wait(&self) -> nix::Result<()> {
        loop {
            // SAFETY: self.0 is an open semaphore.
            let r = sem_result(unsafe { libc::sem_wait(self.0.as_ptr()) });
            trace::library_call(&r, |r| (format!("sem_wait({})", self.ptr()), r.zero()));
            match r {
                Err(Errno::EINTR) => continue,
                other => return other,
            }
        }
    }

    /// Decrements if positive; false (EAGAIN) otherwise.
    pub fn try_wait(&self) -> nix::Result<bool> {
        // SAFETY: self.0 is an open semaphore.
        let r = sem_result(unsafe { libc::sem_trywait(self.0.as_ptr()) });
        trace::library_call(&r, |r| (format!("sem_trywait({})", self.ptr()), r.zero()));
        match r {
            Ok(()) => Ok(true),
            Err(Errno::EAGAIN) => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub fn post(&self) -> nix::Result<()> {
        // SAFETY: self.0 is an open semaphore.
        let r = sem_result(unsafe { libc::sem_post(self.0.as_ptr()) });
        trace::library_call(&r, |r| (format!("sem_post({})", self.ptr()), r.zero()));
        r
    }

    /// The semaphore as a trace shows it: sem_open's pointer.
    fn ptr(&self) -> String {
        trace::ptr(self.0.as_ptr())
    }
}

impl Drop for NamedSem {
    fn drop(&mut self) {
        // SAFETY: opened by sem_open, closed once.
        let r = sem_result(unsafe { libc::sem_close(self.0.as_ptr()) });
        trace::library_call(&r, |r| (format!("sem_close({})", self.ptr()), r.zero()));
    }
}

/// sem_unlink(3): glibc's unlink of /dev/shm/sem.NAME.
pub fn sem_unlink(name: &str) -> nix::Result<()> {
    let c = CString::new(name).map_err(|_| Errno::EINVAL)?;
    // SAFETY: c is a valid C string.
    let r = sem_result(unsafe { libc::sem_unlink(c.as_ptr()) });
    trace::library_call(&r, |r| (format!("sem_unlink({})", trace::path(Path::new(name))), r.zero()));
    r
}
