//! The FIFO's reader: takes a line only once it is whole in the pipe, then prints it, one reader
//! at a time, and leaves by the last-one-out rule.
//!
//! At most once, in order: a line is taken (read from the FIFO) before it is printed, so a reader
//! killed in between loses that line and no other, and never prints a line that the next reader
//! prints again. A line that does not fit the pipe is not taken in parts: the pipe is grown to
//! hold it. Only a line longer than the largest pipe (which our writer never sends) is taken in
//! parts, and a reader killed in the middle of one loses its head while its tail reaches the next
//! reader as a line of its own (a FIFO marks no boundaries): the README says so.

use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use common::posix::{LockKind, LockWait, Span, ofd_lock};
use common::stop::{OnStop, on_stop};
use common::{Error, Result, SysResult};
use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::PollFlags;

use super::{
    Anchor, Ticker, flock, lock_poisoned, messages, my_byte, others_use, park_for_good, pipe_max, poll_now, unread,
};
use crate::sys::{self, Fd};

/// A new pipe's room on Linux.
const PIPE_DEFAULT: usize = 65536;

/// What the main thread and its stop share.
#[derive(Default)]
struct Shared {
    /// A stop has begun: the main thread takes no line any more.
    stopping: AtomicBool,
    /// The turn to take and print: held by the main thread from taking a line (or the first part
    /// of one) until it is printed whole, so a stop waits for that. True once the run has left the
    /// FIFO by itself, when a stop finds nothing more to do.
    turn: Mutex<bool>,
    /// The FIFO once joined. Locked by the main thread while it makes and joins it, so a stop that
    /// comes meanwhile waits and then leaves what was made.
    side: Mutex<Option<Arc<ReadSide>>>,
}

impl Shared {
    /// The main thread's turn; parks for good if a stop has begun (the stop ends the process).
    fn take_turn(&self) -> MutexGuard<'_, bool> {
        if self.stopping.load(Ordering::SeqCst) {
            park_for_good();
        }
        lock_poisoned(&self.turn)
    }

    /// The stop: once the main thread has printed the line in hand (whole, however long stdout
    /// takes it) and has made and joined the FIFO if it was doing so, leaves the FIFO.
    fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        // Says so if stdout keeps the line in hand waiting; a second stop gives it up.
        common::gate::wait_while_held();
        let turn = lock_poisoned(&self.turn);
        let side = lock_poisoned(&self.side);
        if !*turn
            && let Some(side) = side.as_ref()
            && let Some(line) = side.leave()
        {
            say!("reader: {line}");
        }
        // Both kept until the process dies: the main thread takes no line and joins nothing more.
        std::mem::forget((turn, side));
    }
}

struct ReadSide {
    anchor: Anchor,
    end: Fd,
    /// tee()'s target, to look at a line before taking it from the FIFO.
    peek: (Fd, Fd),
    ticker: Ticker,
    /// How much the peek pipe holds (64 KiB until grown).
    peek_room: AtomicUsize,
    /// Said once: the pipe could not grow, so a line that does not fit is taken in parts.
    said_parts: AtomicBool,
}

/// A FIFO reader that takes only whole lines, each right before it prints it, and leaves by the
/// last-one-out rule.
pub struct Reader {
    shared: Arc<Shared>,
    side: Arc<ReadSide>,
    /// Something was read: from then on, no writer left means end of file. Before, a reader
    /// waits for a writer, whatever writers came and went (they may have served another reader).
    got_any: bool,
    _stop: OnStop,
}

impl Reader {
    /// Makes the FIFO if missing, checks it, joins as a member and waits until no other reader
    /// reads it (saying so once). The stop guard comes first: a stop meanwhile leaves what was made.
    pub fn open(path: &std::path::Path, mode: u32) -> Result<Reader> {
        let shared = Arc::new(Shared::default());
        let stop = {
            let shared = shared.clone();
            on_stop(move || shared.stop())
        };
        let side = {
            // A stop that got here first keeps this lock: the main thread then makes nothing.
            let mut joined = lock_poisoned(&shared.side);
            let side = Arc::new(ReadSide::open(path, mode)?);
            *joined = Some(side.clone());
            side
        };
        let reader = Reader { shared, side, got_any: false, _stop: stop };
        if let Err(e) = reader.wait_for_other_readers() {
            if let Some(line) = reader.leave() {
                say!("reader: {line}");
            }
            return Err(e);
        }
        Ok(reader)
    }

    /// One reader at a time: waits for the flock of its end.
    fn wait_for_other_readers(&self) -> Result<()> {
        let side = &self.side;
        side.removed_check()?;
        let mut said = false;
        loop {
            match flock(side.end.as_fd(), libc::LOCK_EX | libc::LOCK_NB) {
                Ok(()) => break,
                Err(Errno::EWOULDBLOCK) => {
                    if !said {
                        say!(
                            "reader: another reader is reading FIFO {}; waiting for it to finish",
                            side.anchor.path.display()
                        );
                        said = true;
                    }
                    side.ticker.wait();
                    side.removed_check()?;
                }
                Err(Errno::EINTR) => {}
                Err(e) => return Err(Error::sys("flock", side.anchor.path.display(), e)),
            }
        }
        side.removed_check()
    }

    /// Prints the next line on `out`; false at end of file (every writer gone, nothing left).
    /// `on_wait` is called when there is nothing to read yet, with whether another process (a
    /// writer, a reader whose turn it is, or a writer still waiting for a reader) holds the FIFO,
    /// as a question asked only if wanted (it may look through /proc). Bytes that end without a newline
    /// when the last writer has gone are a line cut short: dropped, and an error.
    pub fn print_next(
        &mut self,
        out: &mut common::out::Out,
        on_wait: &mut dyn FnMut(&dyn Fn() -> bool),
    ) -> Result<bool> {
        let (shared, side) = (self.shared.clone(), self.side.clone());
        let fd = side.end.as_fd();
        // A line too long for the largest pipe, taken in parts: the turn is kept until it is whole.
        let mut part = Vec::new();
        let mut turn = Some(shared.take_turn());
        loop {
            let avail = unread(fd);
            let seen = if avail > 0 { side.peek_bytes(avail)? } else { Vec::new() };
            if let Some(i) = seen.iter().position(|&b| b == b'\n') {
                // Taken first, printed after: killed in between, this reader loses this line
                // (the one it had taken); the next reader never prints it a second time.
                side.take_into(&mut part, i + 1)?;
                part.pop();
                // A stop waits until it is printed whole; a second stop gives it up (common::gate).
                let held = common::gate::hold(&part);
                out.line(&part)?;
                drop(held);
                self.got_any = true;
                return Ok(true);
            }
            // No whole line. Whether a writer is still there, looked at before counting again:
            // once none is, what was counted is all there will be.
            let writer_gone = poll_now(fd).contains(PollFlags::POLLHUP);
            if unread(fd) != avail {
                continue; // more came meanwhile
            }
            // No room for the rest of the line: it is longer than the pipe. (Or the peek pipe
            // could not grow to show all that waits, which is as good as full.)
            if avail > 0 && (seen.len() < avail || (!writer_gone && side.full())) {
                if seen.len() == avail && side.grow() {
                    continue;
                }
                side.take_into(&mut part, seen.len())?;
                self.got_any = true;
                continue;
            }
            if (self.got_any || avail > 0 || !part.is_empty()) && writer_gone {
                // No writer any more: nothing can complete what is left, which has no newline.
                if part.is_empty() && avail == 0 {
                    return Ok(false);
                }
                // Taken, so that a writer coming later does not glue its first line to it.
                side.take_into(&mut part, avail)?;
                return Err(Error::Failed(format!(
                    "the writer of FIFO {} ended in the middle of a line: {} bytes with no newline after them were \
                     dropped, not printed as a line",
                    side.anchor.path.display(),
                    part.len()
                )));
            }
            if avail == 0 && part.is_empty() {
                on_wait(&|| others_use(fd) || side.anchor.held_elsewhere());
            }
            if part.is_empty() {
                turn = None; // nothing in hand: a stop may end the run during the wait
            }
            side.ticker.wait();
            if turn.is_none() {
                turn = Some(shared.take_turn());
            }
            if unread(fd) == 0 && side.anchor.removed() && !others_use(fd) {
                return Err(Error::Failed(format!(
                    "FIFO {} was removed by another process and no writer holds it: nothing more can arrive",
                    side.anchor.path.display()
                )));
            }
        }
    }

    /// The end of a run: leaves by the last-one-out rule; the one line to show, if any. A stop
    /// that has begun leaves instead (this parks).
    pub fn leave(self) -> Option<String> {
        let mut turn = self.shared.take_turn();
        *turn = true;
        self.side.leave()
    }
}

impl ReadSide {
    /// Makes or finds the FIFO and joins it: its read end and a read lock on our byte. What it
    /// made is removed again if joining fails (unless another process uses it by then).
    fn open(path: &std::path::Path, mode: u32) -> Result<ReadSide> {
        let anchor = Anchor::make(path, mode)?;
        let joined = (|| {
            // O_NONBLOCK: the open cannot block, so the check on it comes before any wait.
            let flags = OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
            let end = sys::open(path, flags).sys("open", path.display())?;
            anchor.same(end.as_fd())?;
            let peek = sys::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK).sys("pipe2", "peek pipe")?;
            let ticker = anchor.ticker()?;
            // Joined last: until this lock, an end that is not a member's is left without a trace.
            ofd_lock(end.as_fd(), Span::byte(my_byte()), LockKind::Shared, LockWait::Block)
                .sys("fcntl(F_OFD_SETLKW)", path.display())?;
            Ok((end, peek, ticker))
        })();
        match joined {
            Ok((end, peek, ticker)) => Ok(ReadSide {
                anchor,
                end,
                peek,
                ticker,
                peek_room: AtomicUsize::new(PIPE_DEFAULT),
                said_parts: AtomicBool::new(false),
            }),
            Err(e) => {
                anchor.leave_unjoined();
                Err(e)
            }
        }
    }

    fn removed_check(&self) -> Result<()> {
        if self.anchor.removed() && !others_use(self.end.as_fd()) {
            return Err(Error::Failed(format!(
                "FIFO {} was removed by another process (the last one out) before anything was read",
                self.anchor.path.display()
            )));
        }
        Ok(())
    }

    /// Up to `max` bytes at the head of the pipe, without taking them: all of them unless the
    /// peek pipe, which holds the copy, cannot grow as large as the FIFO's pipe (a reader before
    /// this one may have grown that).
    fn peek_bytes(&self, max: usize) -> Result<Vec<u8>> {
        if max > self.peek_room.load(Ordering::Relaxed) {
            let fifo = fcntl(self.end.as_fd(), FcntlArg::F_GETPIPE_SZ).map_or(0, |n| n as usize);
            if let Ok(n) = sys::set_pipe_size(self.peek.1.as_fd(), fifo.max(max)) {
                self.peek_room.store(n, Ordering::Relaxed);
            }
        }
        let n = match sys::tee(self.end.as_fd(), self.peek.1.as_fd(), max) {
            Ok(n) => n,
            Err(Errno::EAGAIN) => 0,
            Err(e) => return Err(Error::sys("tee", self.anchor.path.display(), e)),
        };
        let mut buf = vec![0; n];
        std::io::Read::read_exact(&mut &self.peek.0, &mut buf).sys("read", "peek pipe")?;
        Ok(buf)
    }

    /// Takes exactly `n` bytes, known to be in the pipe, onto the end of `line`.
    fn take_into(&self, line: &mut Vec<u8>, n: usize) -> Result<()> {
        let at = line.len();
        line.resize(at + n, 0);
        std::io::Read::read_exact(&mut &self.end, &mut line[at..]).sys("read", self.anchor.path.display())
    }

    /// The pipe has no room for another write: poll() says so on a write end only (POLLOUT is
    /// "not full"), so it asks through a short-lived write end of its own. Called only while a
    /// writer has it open, so that end changes nothing about end of file.
    fn full(&self) -> bool {
        self.anchor
            .reopen(OFlag::O_WRONLY | OFlag::O_NONBLOCK)
            .is_ok_and(|probe| !poll_now(probe.as_fd()).contains(PollFlags::POLLOUT))
    }

    /// Grows the FIFO's pipe, and the peek pipe that must hold as much, to pipe-max-size, which
    /// wakes a writer blocked on the full pipe. False if it is that large already or the kernel
    /// refuses (a user whose pipes pass pipe-user-pages-soft): the line is then taken in parts,
    /// said once.
    fn grow(&self) -> bool {
        let max = pipe_max();
        let now = fcntl(self.end.as_fd(), FcntlArg::F_GETPIPE_SZ).map_or(0, |n| n as usize);
        if now >= max {
            return false;
        }
        let peek = sys::set_pipe_size(self.peek.1.as_fd(), max);
        if let Ok(n) = peek {
            self.peek_room.store(n, Ordering::Relaxed);
        }
        match peek.and_then(|_| sys::set_pipe_size(self.end.as_fd(), max)) {
            Ok(_) => true,
            Err(e) => {
                if !self.said_parts.swap(true, Ordering::Relaxed) {
                    say!(
                        "reader: cannot grow the pipe of FIFO {} to {max} bytes (fcntl F_SETPIPE_SZ: {}), so a line \
                         longer than {now} bytes is taken in parts",
                        self.anchor.path.display(),
                        e.desc()
                    );
                }
                false
            }
        }
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
            // A writer's end keeps them, and so does another reader's (one waiting for its turn).
            if writer_there || others_use(fd) {
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
