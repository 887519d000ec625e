//! The calls this crate makes on its pipes and FIFOs, each printed under `--trace` exactly as
//! strace 6.1 shows it: `pipe2`, `mknodat` (mkfifo), `openat`, `read`, `write`, `tee`,
//! `fcntl(F_SETPIPE_SZ)`, `fchmodat`, `unlink` and `close` (openat, read, write and close are
//! `common::fd`'s). Each wrapper makes the system call that strace shows (nix's `mknodat` and
//! `openat`, not `mkfifo` and `open`, which glibc turns into them), so what is printed is what was
//! passed. The OFD locks, flock, poll, FIONREAD and F_GETPIPE_SZ of `fifo`, the writer's F_SETFL,
//! and the inotify watch that wakes its waits (its own read and close), stay untraced: they are
//! how a wait ends and the last one out is found, not the note's calls.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::Path;

pub use common::fd::{Fd, read, write};
use common::trace::{self, Try};
use nix::fcntl::{AT_FDCWD, OFlag, SpliceFFlags};
use nix::sys::stat::{FchmodatFlags, Mode, SFlag};

/// Standard input read by traced `read(0, ...)` calls, for `writer | reader` (buffer it, as
/// std's stdin is).
pub struct Stdin;

impl std::io::Read for Stdin {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        Ok(read(std::io::stdin().as_fd(), buf)?)
    }
}

/// Standard output written by traced `write(1, ...)` calls, for `writer | reader` (wrap it in a
/// LineWriter, as std's stdout is, so each line goes out in one write).
pub struct Stdout;

impl std::io::Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        Ok(write(std::io::stdout().as_fd(), buf)?)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// pipe2's flags as strace names them (`O_NONBLOCK|O_CLOEXEC`, `0`).
fn pipe_flags(flags: OFlag) -> String {
    let names = [(libc::O_NONBLOCK, "O_NONBLOCK"), (libc::O_CLOEXEC, "O_CLOEXEC"), (libc::O_DIRECT, "O_DIRECT")]
        .map(|(bit, name)| (i64::from(bit), name));
    trace::flags(flags.bits().into(), &names)
}

pub fn pipe2(flags: OFlag) -> nix::Result<(Fd, Fd)> {
    let r = nix::unistd::pipe2(flags);
    trace::call(&r, |r| {
        let fds = match r.value() {
            Some((rd, wr)) => format!("[{}, {}]", rd.as_raw_fd(), wr.as_raw_fd()),
            None => "0x0".into(), // never shown in practice: pipe2 fails only on EMFILE and such
        };
        (format!("pipe2({fds}, {})", pipe_flags(flags)), r.or_errno(|_| "0".into()))
    });
    r.map(|(rd, wr)| (Fd::from(rd), Fd::from(wr)))
}

/// mkfifo(path, mode), made as the system call glibc turns it into. strace leaves out the device
/// number of a FIFO.
pub fn mkfifo(path: &Path, mode: Mode) -> nix::Result<()> {
    let r = nix::sys::stat::mknodat(AT_FDCWD, path, SFlag::S_IFIFO, mode, 0);
    trace::call(&r, |r| {
        (format!("mknodat(AT_FDCWD, {}, S_IFIFO|{})", trace::path(path), trace::mode(mode.bits())), r.zero())
    });
    r
}

/// openat(AT_FDCWD, path, flags), never with O_CREAT (the FIFO is made by [`mkfifo`]).
pub fn open(path: &Path, flags: OFlag) -> nix::Result<Fd> {
    common::fd::open(path, flags, Mode::empty())
}

/// [`open`] as a wait loop repeats it (see [`Try`]).
pub fn open_try(path: &Path, flags: OFlag, t: Try) -> nix::Result<Fd> {
    common::fd::open_try(path, flags, Mode::empty(), t)
}

/// tee(2) without blocking: copies up to `len` bytes at the head of `from` into `to`, leaving
/// them in `from`.
pub fn tee(from: BorrowedFd, to: BorrowedFd, len: usize) -> nix::Result<usize> {
    let r = nix::fcntl::tee(from, to, len, SpliceFFlags::SPLICE_F_NONBLOCK);
    trace::call(&r, |r| {
        (format!("tee({}, {}, {len}, SPLICE_F_NONBLOCK)", from.as_raw_fd(), to.as_raw_fd()), r.decimal())
    });
    r
}

/// fcntl(fd, F_SETPIPE_SZ, size): the pipe's room, in bytes (the kernel rounds it up to a power
/// of two pages and returns what it set).
pub fn set_pipe_size(fd: BorrowedFd, size: usize) -> nix::Result<usize> {
    let r = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETPIPE_SZ(size as libc::c_int)).map(|n| n as usize);
    trace::call(&r, |r| (format!("fcntl({}, F_SETPIPE_SZ, {size})", fd.as_raw_fd()), r.decimal()));
    r
}

/// chmod through a path (the FIFO's /proc/self/fd link), as glibc's fchmodat makes it.
pub fn chmod(path: &str, mode: Mode) -> nix::Result<()> {
    let r = nix::sys::stat::fchmodat(AT_FDCWD, path, mode, FchmodatFlags::FollowSymlink);
    trace::call(&r, |r| {
        (format!("fchmodat(AT_FDCWD, {}, {})", trace::path(Path::new(path)), trace::mode(mode.bits())), r.zero())
    });
    r
}

pub fn unlink(path: &Path) -> nix::Result<()> {
    let r = nix::unistd::unlink(path);
    trace::call(&r, |r| (format!("unlink({})", trace::path(path)), r.zero()));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_as_strace_prints_them() {
        assert_eq!(pipe_flags(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK), "O_NONBLOCK|O_CLOEXEC");
        assert_eq!(pipe_flags(OFlag::empty()), "0");
    }
}
