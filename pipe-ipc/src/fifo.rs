//! Named pipes (FIFOs): a path in the file system that unrelated processes open, one to write and
//! one to read (P1, M5). Data never touches the disk: the kernel keeps a pipe buffer, and that
//! buffer lives only while some process holds the FIFO open. Hence the rules here:
//!
//! - Who uses the FIFO is known to the kernel, not guessed: every reader and writer holds an OFD
//!   lock on one byte of it (its PID), readers a read lock, writers a write lock. A process that
//!   leaves drops its byte and then asks for the whole range: only the last one out gets it, and
//!   only it removes the FIFO (a newcomer blocked on its byte meanwhile finds st_nlink 0).
//! - One reader at a time (flock LOCK_EX on its end): two readers reading at once would split lines.
//! - A reader takes a line only once it is whole in the pipe (it looks with tee first), takes
//!   exactly that line, and prints it after: killed in between, it loses that one line; it never
//!   prints a line that stays in the pipe for the next reader. A line that does not fit the pipe
//!   makes the reader grow the pipe (F_SETPIPE_SZ, up to pipe-max-size) rather than take part of
//!   it; our writer refuses longer lines ([`max_line`]).
//! - A writer reports success only once the pipe is drained, and keeps its end open (which keeps
//!   the data) while no reader is there.
//! - A stop guard is registered before anything is made: a stop while the FIFO is being made or
//!   joined waits for that, then leaves by the last-one-out rule.
//! - Waits are timed (at most 250 ms), so a waiting process sees within a second that the FIFO
//!   was removed (st_nlink 0 on its own descriptor) and says so instead of waiting forever.
//! - Only a FIFO of ours is used: checked with fstat on an O_PATH descriptor (opening it moves no
//!   peer and cannot block), then again on the end we opened.

/// One line on stderr, never a panic: a stop may run when stderr is a closed pipe, and a panic
/// in the stop thread would keep the process from dying.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

mod read;
mod write;

pub use read::Reader;
pub use write::Writer;

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use common::{Error, Result, SysResult};
use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl, open};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use nix::sys::stat::{FileStat, Mode, SFlag, fstat, lstat, stat};
use nix::unistd::geteuid;

use crate::sys::{self, Fd};

pub fn default_path() -> Result<PathBuf> {
    common::paths::default_path("pipe-ipc.fifo")
}

/// The longest a waiting process goes without looking whether its FIFO was removed.
const TICK: Duration = Duration::from_millis(250);

/// Writes up to this size are atomic in a pipe (POSIX PIPE_BUF, 4096 on Linux).
const PIPE_BUF: usize = libc::PIPE_BUF;

/// A pipe's unit of room: it holds a whole number of pages, and a page that a reader has begun
/// takes no more bytes.
const PAGE: usize = 4096;

/// The largest pipe an unprivileged process may ask for (/proc/sys/fs/pipe-max-size, 1 MiB by
/// default): how far a reader grows the FIFO's pipe to hold a long line whole.
pub fn pipe_max() -> usize {
    static MAX: OnceLock<usize> = OnceLock::new();
    *MAX.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/fs/pipe-max-size")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(1 << 20)
    })
}

/// The longest message (without its newline) the writer sends: its line must fit a pipe grown to
/// [`pipe_max`], whose first page may already hold the end of the line before (one page) and
/// whose last page is the one the line's tail was merged into (another).
pub fn max_line() -> usize {
    pipe_max() - 2 * PAGE - 1
}

/// Makes the FIFO unless it exists (whichever side starts first makes it), with exactly `mode`
/// (0600 unless the user widens it). A path that exists but is not a FIFO of ours is refused.
pub fn make(path: &Path, mode: u32) -> Result<()> {
    Anchor::make(path, mode).map(drop)
}

/// Which end of a FIFO a process opens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    Read,
    Write,
}

/// Opens one end, blocking until the other end is opened too (the bench's FIFOs: its own
/// directory, its own two processes).
pub fn open_end(path: &Path, end: End) -> Result<File> {
    let dir = match end {
        End::Write => OFlag::O_WRONLY,
        End::Read => OFlag::O_RDONLY,
    };
    loop {
        match open(path, dir | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC, Mode::empty()) {
            Err(Errno::EINTR) => continue,
            other => return Ok(File::from(other.sys("open", path.display())?)),
        }
    }
}

/// `reader --fifo --clean`: removes a FIFO left by a process killed with SIGKILL.
pub fn clean(path: &Path) -> Result<String> {
    match lstat(path) {
        Err(Errno::ENOENT) => Ok(format!("no FIFO at {}: nothing to remove", path.display())),
        Err(e) => Err(Error::sys("lstat", path.display(), e)),
        Ok(st) => {
            check_ours(&st, path)?;
            sys::unlink(path).sys("unlink", path.display())?;
            Ok(format!("removed FIFO {}", path.display()))
        }
    }
}

fn kind(st: &FileStat) -> &'static str {
    match SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT {
        SFlag::S_IFIFO => "a FIFO",
        SFlag::S_IFREG => "a regular file",
        SFlag::S_IFDIR => "a directory",
        SFlag::S_IFLNK => "a symlink",
        SFlag::S_IFSOCK => "a socket",
        _ => "a device",
    }
}

/// A FIFO owned by the effective user, or a clear refusal (exit 1) that leaves it as it was.
fn check_ours(st: &FileStat, path: &Path) -> Result<()> {
    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFIFO {
        return Err(Error::Failed(format!(
            "{} is {}, not a FIFO: refused and left as it was; remove it or choose another with --path PATH",
            path.display(),
            kind(st)
        )));
    }
    let me = geteuid().as_raw();
    if st.st_uid != me {
        return Err(Error::Failed(format!(
            "FIFO {} belongs to uid {}, not to you (uid {me}): refused and left as it was, since its owner could read \
             or feed what goes through it; choose another with --path PATH",
            path.display(),
            st.st_uid
        )));
    }
    Ok(())
}

/// The FIFO as this process found it, by an O_PATH descriptor: it opens neither end (no peer is
/// released by it), fstat checks it, and its st_nlink drops to 0 when the name is removed.
struct Anchor {
    path: PathBuf,
    fd: Fd,
    dev: u64,
    ino: u64,
}

impl Anchor {
    fn make(path: &Path, mode: u32) -> Result<Anchor> {
        let created = match sys::mkfifo(path, Mode::S_IRUSR | Mode::S_IWUSR) {
            Ok(()) => true,
            Err(Errno::EEXIST) => false,
            Err(e) => {
                return Err(Error::sys("mkfifo", path.display(), e).hint("the directory must exist and be writable"));
            }
        };
        let fd = sys::open(path, OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC).sys("open", path.display())?;
        let st = fstat(&fd).sys("fstat", path.display())?;
        check_ours(&st, path)?;
        let anchor = Anchor { path: path.to_path_buf(), fd, dev: st.st_dev, ino: st.st_ino };
        if created {
            // Exactly the mode asked for, whatever the umask (mkfifo's mode is cut by it). An O_PATH
            // descriptor cannot be fchmod()ed, so chmod goes through its /proc link: the same inode.
            if let Err(e) = sys::chmod(&anchor.proc_path(), Mode::from_bits_truncate(mode)) {
                anchor.unlink(); // ours a moment ago, joined by nobody that could use it yet
                return Err(Error::sys("chmod", path.display(), e));
            }
        }
        Ok(anchor)
    }

    fn proc_path(&self) -> String {
        format!("/proc/self/fd/{}", self.fd.as_raw_fd())
    }

    /// Another process holds the FIFO in any way, end or no end: a writer waiting for a reader
    /// holds only its O_PATH descriptor (it cannot open its end before a reader is there, nor lock
    /// anything), so it is found through /proc/PID/fd, whose links stat() follows to the inode.
    /// Processes of other users are not readable there, and their FIFO is not ours anyway.
    fn held_elsewhere(&self) -> bool {
        let me = std::process::id().to_string();
        let Ok(procs) = std::fs::read_dir("/proc") else { return false };
        procs.flatten().any(|p| {
            let name = p.file_name();
            let pid = name.to_string_lossy();
            if pid == me || !pid.bytes().all(|b| b.is_ascii_digit()) {
                return false;
            }
            let Ok(fds) = std::fs::read_dir(p.path().join("fd")) else { return false };
            fds.flatten().any(|fd| stat(&fd.path()).is_ok_and(|st| (st.st_dev, st.st_ino) == (self.dev, self.ino)))
        })
    }

    /// The FIFO's name was removed (or replaced): nobody new can open what we hold.
    fn removed(&self) -> bool {
        fstat(&self.fd).map_or(true, |st| st.st_nlink == 0)
    }

    /// `fd` is the FIFO we checked (nobody swapped the name between the check and the open).
    fn same(&self, fd: BorrowedFd) -> Result<()> {
        let st = fstat(fd).sys("fstat", self.path.display())?;
        check_ours(&st, &self.path)?;
        if (st.st_dev, st.st_ino) != (self.dev, self.ino) {
            return Err(Error::Failed(format!("{} was replaced while it was opened: refused", self.path.display())));
        }
        Ok(())
    }

    /// The FIFO we hold, opened again with `flags`, through our O_PATH descriptor's /proc link:
    /// the same inode, whatever the name points to now.
    fn reopen(&self, flags: OFlag) -> nix::Result<Fd> {
        sys::open(Path::new(&self.proc_path()), flags | OFlag::O_CLOEXEC)
    }

    /// Removes the name if it is still our FIFO; gone already is fine (nothing fails on ENOENT).
    fn unlink(&self) {
        if lstat(&self.path).is_ok_and(|st| (st.st_dev, st.st_ino) == (self.dev, self.ino)) {
            let _ = sys::unlink(&self.path);
        }
    }

    /// Leaves a FIFO that this process made or found but never joined as a member (no end, no
    /// byte of its own): removes it unless someone else uses it. The look goes through a
    /// short-lived read end (a FIFO opens for reading at once with O_NONBLOCK, and a writer's end
    /// keeps its bytes meanwhile).
    fn leave_unjoined(&self) {
        let look = self.reopen(OFlag::O_RDONLY | OFlag::O_NONBLOCK);
        if look.as_ref().is_ok_and(|fd| !others_use_besides_me(fd.as_fd())) {
            self.unlink();
        }
    }

    /// Wakes on any open, read, write, close or unlink of the FIFO, or after [`TICK`].
    fn ticker(&self) -> Result<Ticker> {
        let fd = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK).sys("inotify_init1", "IN_NONBLOCK")?;
        let mask = AddWatchFlags::IN_OPEN
            | AddWatchFlags::IN_ACCESS
            | AddWatchFlags::IN_MODIFY
            | AddWatchFlags::IN_CLOSE
            | AddWatchFlags::IN_ATTRIB;
        fd.add_watch(self.proc_path().as_str(), mask).sys("inotify_add_watch", self.path.display())?;
        Ok(Ticker(fd))
    }
}

struct Ticker(Inotify);

impl Ticker {
    fn wait(&self) {
        let mut fds = [PollFd::new(self.0.as_fd(), PollFlags::POLLIN)];
        let _ = poll(&mut fds, PollTimeout::from(TICK.as_millis() as u16));
        while self.0.read_events().is_ok_and(|e| !e.is_empty()) {}
    }
}

/// Bytes in the pipe, not yet read by anyone (FIONREAD works on either end).
fn unread(fd: BorrowedFd) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int through the pointer, which points at `n`.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::FIONREAD, &mut n) };
    if rc == 0 { n.max(0) as usize } else { 0 }
}

/// poll() flags of `fd` now: POLLHUP on a read end means no writer (after one came), POLLERR on a
/// write end means no reader, POLLOUT on a write end means the pipe has room for a write.
fn poll_now(fd: BorrowedFd) -> PollFlags {
    let mut fds = [PollFd::new(fd, PollFlags::POLLIN | PollFlags::POLLOUT)];
    match poll(&mut fds, PollTimeout::ZERO) {
        Ok(_) => fds[0].revents().unwrap_or(PollFlags::empty()),
        Err(_) => PollFlags::empty(),
    }
}

/// flock() on a descriptor we keep: nix's `Flock` takes ownership of it and its plain `flock` is
/// deprecated, so this is the thin libc wrapper.
fn flock(fd: BorrowedFd, op: libc::c_int) -> nix::Result<()> {
    // SAFETY: flock takes a descriptor that `fd` keeps open and an integer operation.
    Errno::result(unsafe { libc::flock(fd.as_raw_fd(), op) }).map(drop)
}

/// Some other process holds a lock on the FIFO: it is a member (reader or writer).
fn others_use(fd: BorrowedFd) -> bool {
    locked(fd, 0, 0)
}

/// [`others_use`] through a descriptor other than our member's, so outside our own byte: this
/// process's other thread may be taking it at this moment (an OFD lock does not say whose it is).
fn others_use_besides_me(fd: BorrowedFd) -> bool {
    locked(fd, 0, my_byte()) || locked(fd, my_byte() + 1, 0)
}

/// Whether a write lock on `len` bytes from `start` (0: to the end) would conflict with a lock
/// held through another open file description.
fn locked(fd: BorrowedFd, start: i64, len: i64) -> bool {
    let mut fl = libc::flock {
        l_type: libc::F_WRLCK as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: start,
        l_len: len,
        l_pid: 0,
    };
    fcntl(fd, FcntlArg::F_OFD_GETLK(&mut fl)).is_ok_and(|_| fl.l_type != libc::F_UNLCK as libc::c_short)
}

fn my_byte() -> i64 {
    i64::from(std::process::id())
}

fn lock_poisoned<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Where the main thread goes once a stop has begun and it must not touch the FIFO any more: the
/// stop thread ends the process.
fn park_for_good() -> ! {
    loop {
        std::thread::park();
    }
}

fn messages(n: usize) -> String {
    if n == 1 { "1 more message waits".into() } else { format!("{n} more messages wait") }
}
