//! Named pipes (FIFOs): a path in the file system that unrelated processes open, one to write and
//! one to read (P1, M5). Data never touches the disk: the kernel keeps a pipe buffer, and that
//! buffer lives only while some process holds the FIFO open. Hence the rules here:
//!
//! - Who uses the FIFO is known to the kernel, not guessed: every reader and writer holds an OFD
//!   lock on one byte of it (its PID), readers a read lock, writers a write lock. A process that
//!   leaves drops its byte and then asks for the whole range: only the last one out gets it, and
//!   only it removes the FIFO (a newcomer blocked on its byte meanwhile finds st_nlink 0).
//! - One reader at a time (flock LOCK_EX on its end): two readers reading at once would split lines.
//! - A reader takes from the pipe only the line it prints (tee peeks at it first), so what it
//!   leaves is still in the pipe for the next reader; a writer reports success only once the
//!   pipe is drained, and keeps its end open (which keeps the data) while no reader is there.
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

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use common::posix::{LockKind, LockWait, Span, ofd_lock};
use common::stop::{OnStop, on_stop};
use common::trace::Try;
use common::{Error, Result, SysResult};
use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl, open};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use nix::sys::stat::{FileStat, Mode, SFlag, fstat, lstat};
use nix::unistd::geteuid;

use crate::sys::{self, Fd};

pub fn default_path() -> Result<PathBuf> {
    common::paths::default_path("pipe-ipc.fifo")
}

/// The longest a waiting process goes without looking whether its FIFO was removed.
const TICK: Duration = Duration::from_millis(250);

/// Writes up to this size are atomic in a pipe (POSIX PIPE_BUF, 4096 on Linux).
const PIPE_BUF: usize = libc::PIPE_BUF;

/// How long a stop waits for the main thread to let go of the FIFO when it is not printing a line.
const PRINT_GRACE: Duration = Duration::from_secs(2);

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
            "{} is {}, not a FIFO: refused and left as it was; remove it or choose another --fifo=PATH",
            path.display(),
            kind(st)
        )));
    }
    let me = geteuid().as_raw();
    if st.st_uid != me {
        return Err(Error::Failed(format!(
            "FIFO {} belongs to uid {}, not to you (uid {me}): refused and left as it was, since its owner could read \
             or feed what goes through it; choose another --fifo=PATH",
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
            sys::chmod(&anchor.proc_path(), Mode::from_bits_truncate(mode)).sys("chmod", path.display())?;
        }
        Ok(anchor)
    }

    fn proc_path(&self) -> String {
        format!("/proc/self/fd/{}", self.fd.as_raw_fd())
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
/// write end means no reader.
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

fn messages(n: usize) -> String {
    if n == 1 { "1 more message waits".into() } else { format!("{n} more messages wait") }
}

// ---- the reader ---------------------------------------------------------------------------------

struct ReadSide {
    anchor: Anchor,
    end: Fd,
    /// tee()'s target, to look at a line before taking it from the FIFO.
    peek: (Fd, Fd),
    ticker: Ticker,
}

/// A FIFO reader that takes only what it prints and leaves by the last-one-out rule.
pub struct Reader {
    side: Arc<ReadSide>,
    /// Held while a line is taken and printed: a stop waits for it, so the line is printed once.
    printing: Arc<Mutex<()>>,
    /// Something was read: from then on, no writer left means end of file. Before, a reader
    /// waits for a writer, whatever writers came and went (they may have served another reader).
    got_any: bool,
    _stop: OnStop,
}

impl Reader {
    /// Makes the FIFO if missing, checks it, joins as a member and waits until no other reader
    /// reads it (saying so once).
    pub fn open(path: &Path, mode: u32) -> Result<Reader> {
        let anchor = Anchor::make(path, mode)?;
        // O_NONBLOCK: the open cannot block, so the check on it comes before any wait.
        let flags = OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let end = sys::open(path, flags).sys("open", path.display())?;
        anchor.same(end.as_fd())?;
        ofd_lock(end.as_fd(), Span::byte(my_byte()), LockKind::Shared, LockWait::Block)
            .sys("fcntl(F_OFD_SETLKW)", path.display())?;
        let peek = sys::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK).sys("pipe2", "peek pipe")?;
        let ticker = anchor.ticker()?;
        let side = Arc::new(ReadSide { anchor, end, peek, ticker });
        let printing = Arc::new(Mutex::new(()));
        let stop = {
            let (side, printing) = (side.clone(), printing.clone());
            on_stop(move || {
                // Without limit while a line is being printed (common::gate): printed once, whole.
                let held = common::gate::lock_when_released(&printing, PRINT_GRACE);
                if let Some(line) = side.leave() {
                    say!("reader: {line}");
                }
                // Kept locked until the process dies: the main thread takes no line it cannot print.
                std::mem::forget(held);
            })
        };
        let reader = Reader { side, printing, got_any: false, _stop: stop };
        reader.side.removed_check()?;
        let mut said = false;
        loop {
            match flock(reader.side.end.as_fd(), libc::LOCK_EX | libc::LOCK_NB) {
                Ok(()) => break,
                Err(Errno::EWOULDBLOCK) => {
                    if !said {
                        say!("reader: another reader is reading FIFO {}; waiting for it to finish", path.display());
                        said = true;
                    }
                    reader.side.ticker.wait();
                    reader.side.removed_check()?;
                }
                Err(Errno::EINTR) => {}
                Err(e) => return Err(Error::sys("flock", path.display(), e)),
            }
        }
        reader.side.removed_check()?;
        Ok(reader)
    }

    /// Prints the next line on `out`; false at end of file (every writer gone, nothing left).
    /// `on_wait` is called when there is nothing to read yet, with whether another process (a
    /// writer, or a reader whose turn it is) has the FIFO open.
    pub fn print_next(&mut self, out: &mut common::out::Out, on_wait: &mut dyn FnMut(bool)) -> Result<bool> {
        let side = &self.side;
        let fd = side.end.as_fd();
        let mut line = Vec::new();
        let mut stalled_at = None;
        loop {
            // Held from taking bytes to printing them, released only to wait.
            common::gate::safe_point(); // a stop parks here, before the lock
            let held = lock_poisoned(&self.printing);
            let avail = unread(fd);
            if avail > 0 {
                let seen = side.peek_bytes(avail)?;
                if let Some(i) = seen.iter().position(|&b| b == b'\n') {
                    // Printed from the peeked copy first, taken from the FIFO after: a closed
                    // stdout (`| head -1`) takes nothing that the next reader could still get.
                    line.extend_from_slice(&seen[..i]);
                    let _whole = self.hold(&line, i + 1);
                    out.line(&line)?;
                    side.take_into(&mut Vec::new(), i + 1)?;
                    self.got_any = true;
                    return Ok(true);
                }
                // No newline, and no more bytes than a tick ago: the writer is blocked on a full
                // pipe (a line longer than what the pipe can hold, which is less than its size
                // once a partly read page pins it) or paused mid-line. Take what was seen; the
                // rest follows.
                if seen.len() >= 65536 || stalled_at == Some(avail) {
                    side.take_into(&mut line, seen.len())?;
                    self.got_any = true;
                    stalled_at = None;
                    continue;
                }
                stalled_at = Some(avail);
            }
            if (self.got_any || avail > 0) && poll_now(fd).contains(PollFlags::POLLHUP) {
                // No writer any more: what is left is final, a last line without its newline too.
                let rest = unread(fd);
                line.extend_from_slice(&side.peek_bytes(rest)?);
                if line.is_empty() {
                    return Ok(false);
                }
                let _whole = self.hold(&line, rest);
                out.line(&line)?;
                side.take_into(&mut Vec::new(), rest)?;
                self.got_any = true;
                return Ok(true);
            }
            if avail == 0 && line.is_empty() {
                on_wait(others_use(fd));
            }
            drop(held);
            side.ticker.wait();
            if unread(fd) == 0 && side.anchor.removed() && !others_use(fd) {
                return Err(Error::Failed(format!(
                    "FIFO {} was removed by another process and no writer holds it: nothing more can arrive",
                    side.anchor.path.display()
                )));
            }
        }
    }

    /// `line` is being printed, its last `unread` bytes still in the FIFO: a stop waits until it is
    /// printed whole; given up (a second stop), those bytes are taken, so no reader prints it again.
    fn hold(&self, line: &[u8], unread: usize) -> common::gate::Holding {
        let side = self.side.clone();
        common::gate::hold(line).if_lost(move || {
            let _ = side.take_into(&mut Vec::new(), unread);
        })
    }

    /// The end of a run: leaves by the last-one-out rule; the one line to show, if any.
    pub fn leave(self) -> Option<String> {
        let held = lock_poisoned(&self.printing);
        let line = self.side.leave();
        drop(held);
        line
    }
}

impl ReadSide {
    fn removed_check(&self) -> Result<()> {
        if self.anchor.removed() && !others_use(self.end.as_fd()) {
            return Err(Error::Failed(format!(
                "FIFO {} was removed by another process (the last one out) before anything was read",
                self.anchor.path.display()
            )));
        }
        Ok(())
    }

    /// Up to `max` bytes at the head of the pipe, without taking them.
    fn peek_bytes(&self, max: usize) -> Result<Vec<u8>> {
        let n = match sys::tee(self.end.as_fd(), self.peek.1.as_fd(), max) {
            Ok(n) => n,
            Err(Errno::EAGAIN) => 0,
            Err(e) => return Err(Error::sys("tee", self.anchor.path.display(), e)),
        };
        let mut buf = vec![0; n];
        (&self.peek.0).read_exact(&mut buf).sys("read", "peek pipe")?;
        Ok(buf)
    }

    /// Takes exactly `n` bytes, known to be in the pipe, onto the end of `line`.
    fn take_into(&self, line: &mut Vec<u8>, n: usize) -> Result<()> {
        let at = line.len();
        line.resize(at + n, 0);
        (&self.end).read_exact(&mut line[at..]).sys("read", self.anchor.path.display())
    }

    /// Leaves the FIFO: one line if messages wait (kept for the next reader while a writer holds
    /// them, lost with a writer that was killed); removed if this is the last member and nothing waits.
    fn leave(&self) -> Option<String> {
        let fd = self.end.as_fd();
        let path = self.anchor.path.display();
        let avail = unread(fd);
        let writer_there = !poll_now(fd).contains(PollFlags::POLLHUP);
        let reading = flock(fd, libc::LOCK_EX | libc::LOCK_NB).is_ok();
        let _ = ofd_lock(fd, Span::byte(my_byte()), LockKind::Unlock, LockWait::Try);
        let mut line = None;
        if avail > 0 && reading {
            let waiting = self.peek_bytes(avail).map_or(0, |b| {
                b.iter().filter(|&&c| c == b'\n').count() + usize::from(b.last().is_some_and(|&c| c != b'\n'))
            });
            if writer_there {
                return Some(format!("{} in FIFO {path}; left in place for the next reader", messages(waiting.max(1))));
            }
            // A writer that exits normally waits until the pipe is drained: this one was killed.
            line = Some(format!(
                "{} from a writer that was killed; a FIFO keeps data only while someone holds it open, so \
                 they go with this reader",
                messages(waiting.max(1))
            ));
        }
        if !others_use(fd) && ofd_lock(fd, Span::ALL, LockKind::Shared, LockWait::Try) == Ok(true) {
            self.anchor.unlink();
        }
        line
    }
}

// ---- the writer ---------------------------------------------------------------------------------

struct WriteSide {
    anchor: Anchor,
    end: Mutex<Option<Arc<Fd>>>,
}

/// A FIFO writer that reports success only once every byte it wrote was read.
pub struct Writer {
    side: Arc<WriteSide>,
    /// The same descriptor as `side.end`, used without taking its mutex; closed when both let go.
    end: Arc<Fd>,
    ticker: Ticker,
    /// Sizes of the lines written, newest last: how many messages the unread bytes are.
    sizes: Vec<usize>,
    /// Lines not yet written, and their sizes.
    batch: Vec<u8>,
    batch_sizes: Vec<usize>,
    _stop: OnStop,
}

impl Writer {
    /// Makes the FIFO if missing, checks it and waits for a reader (calling `on_wait` once).
    pub fn open(path: &Path, mode: u32, on_wait: &mut dyn FnMut()) -> Result<Writer> {
        let anchor = Anchor::make(path, mode)?;
        let ticker = anchor.ticker()?;
        let side = Arc::new(WriteSide { anchor, end: Mutex::new(None) });
        let stop = {
            let side = side.clone();
            on_stop(move || {
                if let Some(line) = side.leave(Leaving::Stopped) {
                    say!("writer: {line}");
                }
            })
        };
        let flags = OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let mut tried = Try::First;
        let end = loop {
            match sys::open_try(path, flags, tried) {
                Ok(fd) => break fd,
                // No reader yet: wait for one, and notice if the FIFO goes away meanwhile.
                Err(Errno::ENXIO) => {
                    tried = Try::Again(Errno::ENXIO);
                    on_wait();
                    ticker.wait();
                    if side.anchor.removed() {
                        return Err(Error::Failed(format!(
                            "FIFO {} was removed while waiting for a reader: nothing was written",
                            path.display()
                        )));
                    }
                }
                Err(Errno::EINTR) => {}
                Err(e) => return Err(Error::sys("open", path.display(), e)),
            }
        };
        side.anchor.same(end.as_fd())?;
        ofd_lock(end.as_fd(), Span::byte(my_byte()), LockKind::Exclusive, LockWait::Block)
            .sys("fcntl(F_OFD_SETLKW)", path.display())?;
        // Blocking writes from here: a full pipe waits for the reader, a gone reader is EPIPE.
        fcntl(end.as_fd(), FcntlArg::F_SETFL(OFlag::empty())).sys("fcntl(F_SETFL)", path.display())?;
        let removed = side.anchor.removed();
        let mine = Arc::new(end);
        *lock_poisoned(&side.end) = Some(mine.clone());
        if removed {
            // Joined a FIFO whose last member was just leaving: it is gone, nothing was written.
            return Err(Error::Failed(format!(
                "FIFO {} was removed by its last reader as we opened it: nothing was written; start again",
                path.display()
            )));
        }
        Ok(Writer {
            side,
            end: mine,
            ticker,
            sizes: Vec::new(),
            batch: Vec::new(),
            batch_sizes: Vec::new(),
            _stop: stop,
        })
    }

    /// Queues one message and its newline. Lines go out in write()s of whole lines of at most
    /// PIPE_BUF bytes, each atomic: lines of two writers never interleave, and a reader sees
    /// what one write() brought whole.
    pub fn send(&mut self, msg: &[u8]) -> Result<()> {
        if !self.batch.is_empty() && self.batch.len() + msg.len() + 1 > PIPE_BUF {
            self.flush()?;
        }
        self.batch.extend_from_slice(msg);
        self.batch.push(b'\n');
        self.batch_sizes.push(msg.len() + 1);
        if self.batch.len() >= PIPE_BUF {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes the queued lines. A reader that left meanwhile is waited for: the bytes already
    /// written stay in the pipe as long as this end is open.
    fn flush(&mut self) -> Result<()> {
        let batch = std::mem::take(&mut self.batch);
        let mut rest = &batch[..];
        let mut said = false;
        while !rest.is_empty() {
            match (&*self.end).write(rest) {
                Ok(n) => rest = &rest[n..],
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.raw_os_error() == Some(libc::EPIPE) => {
                    self.wait_for_reader(&mut said, false)?;
                }
                Err(e) => return Err(Error::io("write", self.side.anchor.path.display(), e)),
            }
        }
        self.sizes.append(&mut self.batch_sizes);
        Ok(())
    }

    /// The end of a run: waits until every byte written was read (the data would die with this
    /// end otherwise), then leaves by the last-one-out rule.
    pub fn finish(mut self) -> Result<()> {
        self.flush()?;
        let mut said = false;
        while unread(self.end.as_fd()) > 0 {
            if poll_now(self.end.as_fd()).contains(PollFlags::POLLERR) {
                self.wait_for_reader(&mut said, true)?;
            } else {
                self.ticker.wait();
            }
        }
        if let Some(line) = self.side.leave(Leaving::Finished) {
            say!("writer: {line}");
        }
        Ok(())
    }

    /// How many of our messages the `n` unread bytes are.
    fn pending(&self, n: usize) -> usize {
        let mut sum = 0;
        self.sizes
            .iter()
            .rev()
            .take_while(|&&s| {
                let more = sum < n;
                sum += s;
                more
            })
            .count()
    }

    /// No reader: the unread bytes wait in the pipe (this end keeps them) until the next reader
    /// comes, unless the FIFO was removed, when nobody can come and they are reported lost. With
    /// `until_drained` (the end of a run) it also returns once nothing is unread: a reader that
    /// came, took the rest and left between two looks needs no successor.
    fn wait_for_reader(&self, said: &mut bool, until_drained: bool) -> Result<()> {
        let path = self.side.anchor.path.display();
        while poll_now(self.end.as_fd()).contains(PollFlags::POLLERR) {
            let n = unread(self.end.as_fd());
            if until_drained && n == 0 {
                return Ok(());
            }
            if self.side.anchor.removed() {
                return Err(Error::Failed(format!(
                    "the reader left and FIFO {path} was removed: {} were not delivered",
                    if n == 0 {
                        "the remaining messages".to_string()
                    } else {
                        format!("{} message(s) ({n} bytes)", self.pending(n))
                    }
                )));
            }
            if !*said {
                say!(
                    "writer: the reader left FIFO {path} with {} unread; waiting for the next reader",
                    if n == 0 { "nothing".to_string() } else { format!("{} message(s)", self.pending(n)) }
                );
                *said = true;
            }
            self.ticker.wait();
        }
        Ok(())
    }
}

/// Why a writer leaves the FIFO: at the end of its messages, or stopped by a signal.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Leaving {
    Finished,
    Stopped,
}

impl WriteSide {
    /// Leaves the FIFO; removes it if this is the last member and nothing of ours waits in it.
    fn leave(&self, why: Leaving) -> Option<String> {
        let guard = lock_poisoned(&self.end);
        let Some(end) = guard.as_ref() else {
            // Never connected: nothing of ours is in it, but another writer may be waiting with
            // lines in it. Look at the locks through a short-lived read end (a FIFO opens for
            // reading at once with O_NONBLOCK; the other writer's end keeps its bytes meanwhile).
            let look = self.anchor.reopen(OFlag::O_RDONLY | OFlag::O_NONBLOCK);
            if look.as_ref().is_ok_and(|fd| !others_use_besides_me(fd.as_fd())) {
                self.anchor.unlink();
            }
            return None;
        };
        let fd = end.as_fd();
        let n = unread(fd);
        let reader_there = !poll_now(fd).contains(PollFlags::POLLERR);
        let _ = ofd_lock(fd, Span::byte(my_byte()), LockKind::Unlock, LockWait::Try);
        if why == Leaving::Stopped && n > 0 && reader_there {
            return Some(format!(
                "{n} bytes we wrote still wait in FIFO {} for its reader; left in place",
                self.anchor.path.display()
            ));
        }
        if ofd_lock(fd, Span::ALL, LockKind::Exclusive, LockWait::Try) == Ok(true) {
            self.anchor.unlink();
        }
        None
    }
}
