//! Descriptors and the plain file calls on them (openat, read, write, close), each printing
//! itself under `--trace` as strace 6.1 shows it: the calls file-ipc and pipe-ipc share.

use std::io;
use std::mem::ManuallyDrop;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, IntoRawFd, OwnedFd, RawFd};
use std::path::Path;

use nix::fcntl::{AT_FDCWD, OFlag};
use nix::sys::stat::Mode;

use crate::trace::{self, Try};

/// A descriptor closed by a traced `close()` when dropped, so `--trace` shows every close.
#[derive(Debug)]
pub struct Fd(ManuallyDrop<OwnedFd>);

impl From<OwnedFd> for Fd {
    fn from(fd: OwnedFd) -> Fd {
        Fd(ManuallyDrop::new(fd))
    }
}

impl Drop for Fd {
    fn drop(&mut self) {
        // SAFETY: the descriptor is taken once, here, and self is never used again.
        let fd = unsafe { ManuallyDrop::take(&mut self.0) }.into_raw_fd();
        let r = nix::unistd::close(fd);
        trace::call(&r, |r| (format!("close({fd})"), r.zero()));
    }
}

impl AsFd for Fd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

impl AsRawFd for Fd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

impl io::Read for &Fd {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Ok(read(*self, buf)?)
    }
}

impl io::Write for &Fd {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(write(*self, buf)?)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// `openat(AT_FDCWD, "path", O_WRONLY|O_CREAT|O_EXCL|O_CLOEXEC, 0600) = 4`: glibc's open() is the
/// openat system call; the mode is shown (and used) only with O_CREAT.
pub fn open(path: &Path, flags: OFlag, mode: Mode) -> nix::Result<Fd> {
    open_try(path, flags, mode, Try::First)
}

/// [`open`] as a wait loop repeats it (see [`Try`]).
pub fn open_try(path: &Path, flags: OFlag, mode: Mode, t: Try) -> nix::Result<Fd> {
    trace::begin(); // a FIFO's open waits for its other end unless O_NONBLOCK
    let r = nix::fcntl::openat(AT_FDCWD, path, flags, mode);
    trace::call_try(t, &r, |r| {
        let m = if flags.contains(OFlag::O_CREAT) { format!(", {}", trace::mode(mode.bits())) } else { String::new() };
        let call = format!("openat(AT_FDCWD, {}, {}{m})", trace::path(path), trace::open_flags(flags.bits()));
        (call, r.or_errno(|fd| fd.as_raw_fd().to_string()))
    });
    r.map(Fd::from)
}

/// `fchmod(4, 0600) = 0`: the mode asked for, whatever the umask made of it at creation.
pub fn fchmod(fd: impl AsFd, mode: Mode) -> nix::Result<()> {
    let fd = fd.as_fd();
    let r = nix::sys::stat::fchmod(fd, mode);
    trace::call(&r, |r| (format!("fchmod({}, {})", fd.as_raw_fd(), trace::mode(mode.bits())), r.zero()));
    r
}

/// Whether the umask takes a bit of `mode` away at creation, so that a [`fchmod`] must put it
/// back: read once from /proc/self/status (Linux 4.7 and later); not known counts as yes.
pub fn umask_cuts(mode: u32) -> bool {
    static UMASK: std::sync::OnceLock<Option<u32>> = std::sync::OnceLock::new();
    let umask = UMASK.get_or_init(|| {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        status.lines().find_map(|l| u32::from_str_radix(l.strip_prefix("Umask:")?.trim(), 8).ok())
    });
    umask.is_none_or(|u| mode & u != 0)
}

/// `read(4, "Hello", 4096) = 5`: what was read, as strace shows it, or the buffer's address when
/// nothing was.
pub fn read(fd: impl AsFd, buf: &mut [u8]) -> nix::Result<usize> {
    let fd = fd.as_fd();
    trace::begin();
    let r = nix::unistd::read(fd, buf);
    trace::call(&r, |r| {
        let shown = match r.value() {
            Some(&n) => trace::quote(&buf[..n]),
            None => trace::ptr(buf.as_ptr()),
        };
        (format!("read({}, {shown}, {})", fd.as_raw_fd(), buf.len()), r.decimal())
    });
    r
}

/// `write(4, "Hello", 5) = 5`.
pub fn write(fd: impl AsFd, buf: &[u8]) -> nix::Result<usize> {
    let fd = fd.as_fd();
    trace::begin();
    let r = nix::unistd::write(fd, buf);
    trace::call(&r, |r| (format!("write({}, {}, {})", fd.as_raw_fd(), trace::quote(buf), buf.len()), r.decimal()));
    r
}
