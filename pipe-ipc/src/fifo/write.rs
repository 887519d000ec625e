//! The FIFO's writer: writes whole lines and reports success only once a reader has taken every
//! byte it wrote (the data would die with its end otherwise).

use std::io::Write;
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use common::posix::{LockKind, LockWait, Span, ofd_lock};
use common::stop::{OnStop, on_stop};
use common::trace::Try;
use common::{Error, Result, SysResult};
use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::PollFlags;

use super::{Anchor, PIPE_BUF, Ticker, lock_poisoned, my_byte, others_use, poll_now, unread};
use crate::sys::{self, Fd};

/// What the main thread and its stop share. Locked by the main thread while it makes the FIFO
/// (a stop meanwhile waits, then leaves what was made), and briefly around each write; never
/// during a write, which may block for as long as the reader does not read.
#[derive(Default)]
struct Member {
    anchor: Option<Arc<Anchor>>,
    /// Our write end, once a reader was there to open it.
    end: Option<Arc<Fd>>,
    /// The write in progress, if any.
    writing: Option<Batch>,
    /// Left already (the end of the run, or a stop): nothing more to do.
    left: bool,
}

/// One write(): its first message's number (from 1) and how many messages and bytes it carries.
#[derive(Clone, Copy)]
struct Batch {
    first: usize,
    count: usize,
    bytes: usize,
}

/// A FIFO writer that reports success only once every byte it wrote was read.
pub struct Writer {
    member: Arc<Mutex<Member>>,
    anchor: Arc<Anchor>,
    /// The same descriptor as the member's, used without taking its mutex.
    end: Arc<Fd>,
    ticker: Ticker,
    /// Sizes of the lines written, newest last: how many messages the unread bytes are.
    sizes: Vec<usize>,
    /// Lines not yet written, and their sizes.
    batch: Vec<u8>,
    batch_sizes: Vec<usize>,
    _stop: OnStop,
}

fn member(m: &Mutex<Member>) -> MutexGuard<'_, Member> {
    lock_poisoned(m)
}

impl Writer {
    /// Makes the FIFO if missing, checks it and waits for a reader (calling `on_wait` once). The
    /// stop guard comes first: a stop meanwhile leaves what was made.
    pub fn open(path: &Path, mode: u32, on_wait: &mut dyn FnMut()) -> Result<Writer> {
        let shared: Arc<Mutex<Member>> = Arc::default();
        let stop = {
            let shared = shared.clone();
            on_stop(move || {
                if let Some(line) = leave(&shared, Leaving::Stopped) {
                    say!("writer: {line}");
                }
            })
        };
        let anchor = {
            // A stop that got here first keeps this lock: the main thread then makes nothing.
            let mut m = member(&shared);
            let anchor = Arc::new(Anchor::make(path, mode)?);
            m.anchor = Some(anchor.clone());
            anchor
        };
        let (end, ticker) = match join(&shared, &anchor, on_wait) {
            Ok(joined) => joined,
            Err(e) => {
                // Whatever was made or joined is left by the usual rule (a FIFO removed meanwhile is
                // not touched).
                leave(&shared, Leaving::Finished);
                return Err(e);
            }
        };
        Ok(Writer {
            member: shared,
            anchor,
            end,
            ticker,
            sizes: Vec::new(),
            batch: Vec::new(),
            batch_sizes: Vec::new(),
            _stop: stop,
        })
    }

    /// Queues one message and its newline. Lines go out in write()s of whole lines of at most
    /// PIPE_BUF bytes, each atomic: lines of two writers never interleave, and a reader sees
    /// what one write() brought whole. A longer line goes alone in one write().
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
        if batch.is_empty() {
            return Ok(());
        }
        let now = Batch { first: self.sizes.len() + 1, count: self.batch_sizes.len(), bytes: batch.len() };
        member(&self.member).writing = Some(now);
        let mut rest = &batch[..];
        let mut said = false;
        while !rest.is_empty() {
            match (&*self.end).write(rest) {
                Ok(n) => rest = &rest[n..],
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.raw_os_error() == Some(libc::EPIPE) => {
                    // Part of a long line may be in the pipe already: it counts as waiting.
                    let partly = (rest.len() < batch.len()).then_some(rest.len());
                    self.wait_for_reader(&mut said, false, partly)?;
                }
                Err(e) => return Err(Error::io("write", self.anchor.path.display(), e)),
            }
        }
        member(&self.member).writing = None;
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
                self.wait_for_reader(&mut said, true, None)?;
            } else {
                self.ticker.wait();
            }
        }
        if let Some(line) = leave(&self.member, Leaving::Finished) {
            say!("writer: {line}");
        }
        Ok(())
    }

    /// How many of our messages the `n` unread bytes are. `partly`: the bytes of the batch being
    /// written that are still to write, when some of it is written.
    fn pending(&self, n: usize, partly: Option<usize>) -> usize {
        match partly {
            Some(to_write) => pending(self.sizes.iter().chain(&self.batch_sizes), n + to_write),
            None => pending(self.sizes.iter(), n),
        }
    }

    /// No reader: the unread bytes wait in the pipe (this end keeps them) until the next reader
    /// comes, unless the FIFO was removed, when nobody can come and they are reported lost. With
    /// `until_drained` (the end of a run) it also returns once nothing is unread: a reader that
    /// came, took the rest and left between two looks needs no successor.
    fn wait_for_reader(&self, said: &mut bool, until_drained: bool, partly: Option<usize>) -> Result<()> {
        let path = self.anchor.path.display();
        while poll_now(self.end.as_fd()).contains(PollFlags::POLLERR) {
            let n = unread(self.end.as_fd());
            if until_drained && n == 0 {
                return Ok(());
            }
            if self.anchor.removed() {
                return Err(Error::Failed(format!(
                    "the reader left and FIFO {path} was removed: {} were not delivered",
                    if n == 0 {
                        "the remaining messages".to_string()
                    } else {
                        format!("{} message(s) ({n} bytes)", self.pending(n, partly))
                    }
                )));
            }
            if !*said {
                say!(
                    "writer: the reader left FIFO {path} with {} unread in it; waiting for the next reader (and for the rest)",
                    if n == 0 { "nothing".to_string() } else { format!("{} message(s)", self.pending(n, partly)) }
                );
                *said = true;
            }
            self.ticker.wait();
        }
        Ok(())
    }
}

/// Waits for a reader (calling `on_wait` once) and joins the FIFO: the write end, checked, and a
/// write lock on our byte; the end is the member's from then on.
fn join(shared: &Mutex<Member>, anchor: &Anchor, on_wait: &mut dyn FnMut()) -> Result<(Arc<Fd>, Ticker)> {
    let path = &anchor.path;
    let ticker = anchor.ticker()?;
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
                if anchor.removed() {
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
    anchor.same(end.as_fd())?;
    ofd_lock(end.as_fd(), Span::byte(my_byte()), LockKind::Exclusive, LockWait::Block)
        .sys("fcntl(F_OFD_SETLKW)", path.display())?;
    // Blocking writes from here: a full pipe waits for the reader, a gone reader is EPIPE.
    fcntl(end.as_fd(), FcntlArg::F_SETFL(OFlag::empty())).sys("fcntl(F_SETFL)", path.display())?;
    let removed = anchor.removed();
    let end = Arc::new(end);
    member(shared).end = Some(end.clone());
    if removed {
        // Joined a FIFO whose last member was just leaving: it is gone, nothing was written.
        return Err(Error::Failed(format!(
            "FIFO {} was removed by its last reader as we opened it: nothing was written; start again",
            path.display()
        )));
    }
    Ok((end, ticker))
}

/// How many messages of `sizes` (newest last) the last `n` bytes written are.
fn pending<'a>(sizes: impl DoubleEndedIterator<Item = &'a usize>, n: usize) -> usize {
    let mut sum = 0;
    sizes
        .rev()
        .take_while(|&&s| {
            let more = sum < n;
            sum += s;
            more
        })
        .count()
}

/// Why a writer leaves the FIFO: at the end of its messages, or stopped by a signal.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Leaving {
    Finished,
    Stopped,
}

/// Leaves the FIFO, once; removes it if this is the last member and nothing of ours waits in it.
/// Stopped, the member stays locked until the process dies: the main thread writes nothing more.
fn leave(shared: &Mutex<Member>, why: Leaving) -> Option<String> {
    let mut m = member(shared);
    if m.left {
        return None;
    }
    m.left = true;
    let line = leave_member(&m, why);
    if why == Leaving::Stopped {
        std::mem::forget(m);
    }
    line
}

fn leave_member(m: &Member, why: Leaving) -> Option<String> {
    let anchor = m.anchor.as_ref()?; // nothing made or found yet
    let Some(end) = m.end.as_ref() else {
        // Never connected: nothing of ours is in it, but another writer may be waiting with
        // lines in it.
        anchor.leave_unjoined();
        return None;
    };
    let path = anchor.path.display();
    let fd = end.as_fd();
    let n = unread(fd);
    let reader_there = !poll_now(fd).contains(PollFlags::POLLERR);
    let _ = ofd_lock(fd, Span::byte(my_byte()), LockKind::Unlock, LockWait::Try);
    // A write of more than PIPE_BUF bytes is one long line, and may be cut where the pipe was full.
    let cut = match m.writing {
        Some(b) if why == Leaving::Stopped && b.count == 1 && b.bytes > PIPE_BUF => format!(
            "; stopped while writing message {} ({} bytes with its newline): what of it is in the FIFO ends without \
             a newline, and the reader drops it as a line cut short",
            b.first, b.bytes
        ),
        _ => String::new(),
    };
    if why == Leaving::Stopped && n > 0 {
        if reader_there {
            return Some(format!("{n} bytes we wrote still wait in FIFO {path} for its reader; left in place{cut}"));
        }
        if others_use(fd) {
            // Another writer holds the FIFO open, which keeps the pipe and its bytes.
            return Some(format!(
                "{n} bytes we wrote still wait in FIFO {path} for the next reader; left in place{cut}"
            ));
        }
    }
    let lost = (why == Leaving::Stopped && n > 0).then(|| {
        format!(
            "{n} bytes we wrote were never read: nobody else has FIFO {path} open, and a FIFO keeps data only while \
             someone holds it open, so they go with this writer{cut}"
        )
    });
    if ofd_lock(fd, Span::ALL, LockKind::Exclusive, LockWait::Try) == Ok(true) {
        anchor.unlink();
    }
    lost
}

#[cfg(test)]
mod tests {
    use super::pending;

    #[test]
    fn pending_counts_the_newest_messages_that_unread_bytes_cover() {
        let sizes = [4, 4, 10];
        assert_eq!(pending(sizes.iter(), 0), 0);
        assert_eq!(pending(sizes.iter(), 3), 1, "part of the last message");
        assert_eq!(pending(sizes.iter(), 10), 1);
        assert_eq!(pending(sizes.iter(), 11), 2);
        assert_eq!(pending(sizes.iter(), 18), 3);
    }
}
