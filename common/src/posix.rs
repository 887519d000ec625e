//! Thin safe wrappers for POSIX shared memory (shm_open + mmap), the futex(2) calls and the
//! open-file-description record locks that the `--posix` shared-memory pair builds on, and
//! sem_unlink (named semaphores of older versions, for clean-up).
//!
//! Each wrapper prints its call for `--trace`: the system calls (ftruncate, fchmod, mmap, munmap,
//! fstat as glibc makes it, futex, fcntl) as strace shows them, and the C library's shm_* and
//! sem_unlink functions as library calls, with the arguments the program passed. What glibc turns
//! those into (shm_open: openat of /dev/shm/NAME with O_NOFOLLOW|O_CLOEXEC added; shm_unlink and
//! sem_unlink: unlink) is strace's to show. [`ofd_lock`] is not traced, [`ofd_lock_traced`] is.

use std::ffi::CString;
use std::num::NonZeroUsize;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::ptr::NonNull;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sys::mman::{MapFlags, ProtFlags, mmap, munmap};
use nix::sys::stat::Mode;
use nix::unistd::ftruncate;

use crate::trace::{self, Try};
use crate::{Memory, MemoryMut};

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
    /// is EINVAL; one of size 0 is sized (see [`Mapped::get_or_create`]).
    pub fn existing(name: &str, len: usize) -> nix::Result<Mapped> {
        Self::open(name, len, None).map(|(m, _)| m)
    }

    /// shm_open(name), created if missing, sized to `len` and given exactly `mode` (whatever the
    /// umask) if this call created it, then mmap. Returns the mapping and whether it was created.
    /// An existing object of another size is EINVAL.
    ///
    /// An existing object of size 0 is one whose creator has not called ftruncate yet, or never
    /// will (killed in between): it is sized here. Both ftruncate it to `len`, and the second
    /// call changes nothing, not even bytes written in between, so nobody waits on a creator
    /// that may be dead.
    pub fn get_or_create(name: &str, len: usize, mode: u32) -> nix::Result<(Mapped, bool)> {
        Self::open(name, len, Some(mode))
    }

    /// `create`: the mode to make a missing object with; None to fail (ENOENT) instead.
    fn open(name: &str, len: usize, create: Option<u32>) -> nix::Result<(Mapped, bool)> {
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
            truncate(&fd, len)?;
            crate::fd::fchmod(&fd, m)?; // shm_open applied the umask
        } else {
            match fstat(fd.as_fd())?.st_size as usize {
                n if n == len => {}
                0 => truncate(&fd, len)?,
                _ => return Err(Errno::EINVAL),
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

/// ftruncate(2) of a new object to its size.
fn truncate(fd: &OwnedFd, len: usize) -> nix::Result<()> {
    let r = ftruncate(fd, len as i64);
    trace::call(&r, |r| (format!("ftruncate({}, {len})", fd.as_raw_fd()), r.zero()));
    r
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
/// Not traced (see [`ofd_lock_traced`]).
pub fn ofd_lock(fd: BorrowedFd<'_>, span: Span, kind: LockKind, wait: LockWait) -> nix::Result<bool> {
    lock(fd, span, kind, wait, false)
}

/// [`ofd_lock`], each try printed under `--trace` as strace shows it:
/// `fcntl(3, F_OFD_SETLKW, {l_type=F_WRLCK, l_whence=SEEK_SET, l_start=2, l_len=1}) = 0`.
pub fn ofd_lock_traced(fd: BorrowedFd<'_>, span: Span, kind: LockKind, wait: LockWait) -> nix::Result<bool> {
    lock(fd, span, kind, wait, true)
}

fn lock(fd: BorrowedFd<'_>, span: Span, kind: LockKind, wait: LockWait, traced: bool) -> nix::Result<bool> {
    let wait = wait == LockWait::Block;
    let (l_type, type_name) = match kind {
        LockKind::Shared => (libc::F_RDLCK, "F_RDLCK"),
        LockKind::Exclusive => (libc::F_WRLCK, "F_WRLCK"),
        LockKind::Unlock => (libc::F_UNLCK, "F_UNLCK"),
    };
    // SAFETY: flock is plain data; zero is a valid start for every field.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = l_type as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = span.start as libc::off_t;
    fl.l_len = span.len as libc::off_t;
    loop {
        let arg = if wait { FcntlArg::F_OFD_SETLKW(&fl) } else { FcntlArg::F_OFD_SETLK(&fl) };
        if wait {
            trace::begin();
        }
        let r = fcntl(fd, arg);
        if traced {
            trace::call(&r, |r| {
                let cmd = if wait { "F_OFD_SETLKW" } else { "F_OFD_SETLK" };
                let what =
                    format!("{{l_type={type_name}, l_whence=SEEK_SET, l_start={}, l_len={}}}", span.start, span.len);
                (format!("fcntl({}, {cmd}, {what})", fd.as_raw_fd()), r.decimal())
            });
        }
        match r {
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
    // Inline: a ring reaches its control words through these on every message, from other crates.
    #[inline]
    fn base(&self) -> NonNull<u8> {
        self.addr
    }

    #[inline]
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

/// futex(2) FUTEX_WAIT on a word of a shared mapping (not FUTEX_PRIVATE: the waker is another
/// process): sleeps while `word` holds `expected`, at most `timeout`. Ok(true) when woken, and
/// Ok(false) when the word did not hold `expected` (EAGAIN), the time ran out (ETIMEDOUT) or a
/// signal came (EINTR): the caller looks at the word again either way. `t`: which try of a wait
/// loop this is (a timed-out repeat is not traced, see [`Try`]).
pub fn futex_wait(word: &AtomicU32, expected: u32, timeout: Duration, t: Try) -> nix::Result<bool> {
    let ts = libc::timespec { tv_sec: timeout.as_secs() as libc::time_t, tv_nsec: timeout.subsec_nanos().into() };
    trace::begin();
    // SAFETY: word is a valid, aligned u32 for the whole call (borrowed); ts is a valid timespec;
    // FUTEX_WAIT reads the word and the timeout only.
    let ret = unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAIT, expected, &ts) };
    let r = Errno::result(ret).map(drop);
    trace::call_try(t, &r, |r| {
        let call = format!("futex({}, FUTEX_WAIT, {expected}, {})", trace::ptr(word.as_ptr()), trace::timespec(&ts));
        (call, r.interrupted(trace::Interrupted::RestartBlock).unwrap_or_else(|| r.zero()))
    });
    match r {
        Ok(()) => Ok(true),
        Err(Errno::EAGAIN | Errno::ETIMEDOUT | Errno::EINTR) => Ok(false),
        Err(e) => Err(e),
    }
}

/// futex(2) FUTEX_WAKE of every process waiting on `word`; returns how many were woken.
pub fn futex_wake(word: &AtomicU32) -> nix::Result<i64> {
    let all = libc::c_int::MAX;
    // SAFETY: word is a valid, aligned u32 (borrowed); FUTEX_WAKE only uses its address.
    let ret = unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, all) };
    let r = Errno::result(ret);
    trace::call(&r, |r| (format!("futex({}, FUTEX_WAKE, {all})", trace::ptr(word.as_ptr())), r.decimal()));
    r
}

/// sem_unlink(3): glibc's unlink of /dev/shm/sem.NAME (the named semaphores that shm-ipc kept
/// beside its shared memory before issue 20; `--clean` still removes them).
pub fn sem_unlink(name: &str) -> nix::Result<()> {
    let c = CString::new(name).map_err(|_| Errno::EINVAL)?;
    // SAFETY: c is a valid C string.
    let r = Errno::result(unsafe { libc::sem_unlink(c.as_ptr()) }).map(drop);
    trace::library_call(&r, |r| (format!("sem_unlink({})", trace::path(Path::new(name))), r.zero()));
    r
}
