//! The same exchange over a POSIX message queue (beyond the note): a name instead of a key,
//! priorities instead of types, and a file under /dev/mqueue that `ls` shows.
//!
//! A process that waits on a POSIX queue keeps it alive after mq_unlink: the kernel frees it only
//! when the last descriptor closes, and a writer that opens the name again gets a new, different
//! queue. So every wait here is a poll of at most [`TICK`], between which the descriptor's link
//! count is checked (0 once the name was unlinked), and messages found in an unlinked queue are
//! moved to the queue that now has the name instead of dying with the last descriptor.

use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Error, Key, Result};
use nix::errno::Errno;
use nix::mqueue::{MQ_OFlag, MqAttr, MqdT};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::stat::{Mode, fstat};

use crate::mq_sys;
use crate::{Origin, WhenFull};
use common::trace::Try;

/// The size of one message of the POSIX queue (mq_msgsize), its text and NUL: Linux's default
/// limit for an unprivileged queue, fs.mqueue.msgsize_max. Asking for more fails with EINVAL.
pub const POSIX_MSG_SIZE: usize = 8192;

/// How many messages the POSIX queue holds (mq_maxmsg): Linux's default fs.mqueue.msg_max.
pub const POSIX_MAX_MSGS: usize = 10;

/// How long one wait lasts before the link count is checked again: an unlink is noticed within it.
const TICK: u16 = 200;

/// How long moving messages to a new queue may wait for room in it (the stop thread runs this).
const RESCUE_PATIENCE: Duration = Duration::from_secs(1);

/// The POSIX queue's name for `key`, e.g. `/msgq-ipc-0x4d2` (a file under /dev/mqueue). Any
/// `Display` goes, so that help texts can show the pattern: `posix_queue_name("<key>")`.
pub fn posix_queue_name(key: impl std::fmt::Display) -> String {
    format!("/msgq-ipc-{key}")
}

/// The command that removes the POSIX queue of `key` by hand (there is no ipcrm for it).
pub(crate) fn clean_command(key: Key) -> String {
    format!("cargo run -p msgq-ipc --bin reader -- --key {key} --posix --clean")
}

/// Whether [`PosixQueue::open`] may make the queue.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Create {
    IfMissing,
    Never,
}

pub struct PosixQueue {
    /// Non-blocking (O_NONBLOCK): waits are polls, so an unlink can be noticed. Shared with the
    /// [`Handle`](crate::Handle), so the stop thread looks at this very queue, not at the name.
    pub(crate) mqd: Arc<MqdT>,
    pub(crate) name: String,
    pub(crate) key: Key,
    pub(crate) mode: u32,
    pub(crate) msgsize: usize,
    waited: bool,
    /// Writers: when the queue is unlinked under us, carry on with a new queue of the same name.
    pub(crate) recreate: bool,
}

impl PosixQueue {
    /// mq_open(O_CREAT): the queue named after `key`, made if missing with exactly `mode`,
    /// whatever the umask. Returns it and whether this call made it.
    pub fn get_or_create(key: Key, mode: u32) -> Result<(PosixQueue, Origin)> {
        let (q, created) = Self::open(key, mode, Create::IfMissing)?;
        Ok((q, Origin::made_if(created)))
    }

    /// mq_open without O_CREAT: the existing queue named after `key`. `mode` is for the new queue
    /// of the name that a writer remakes if this one is removed (see [`crate::Queue::recreate_if_removed`]).
    pub fn existing(key: Key, mode: u32) -> Result<PosixQueue> {
        Ok(Self::open(key, mode, Create::Never)?.0)
    }

    fn open(key: Key, mode: u32, create: Create) -> Result<(PosixQueue, bool)> {
        let name = posix_queue_name(key);
        let attr = MqAttr::new(0, POSIX_MAX_MSGS as i64, POSIX_MSG_SIZE as i64, 0);
        let perm = Mode::from_bits_truncate(mode);
        let rw = MQ_OFlag::O_RDWR | MQ_OFlag::O_CLOEXEC | MQ_OFlag::O_NONBLOCK;
        let (mqd, created) = if create == Create::IfMissing {
            match mq_sys::open(&name, rw | MQ_OFlag::O_CREAT | MQ_OFlag::O_EXCL, perm, Some(&attr)) {
                Ok(q) => (q, true),
                Err(Errno::EEXIST) => (mq_sys::open(&name, rw, perm, None).map_err(|e| open_err(&name, e))?, false),
                Err(e) => return Err(open_err(&name, e)),
            }
        } else {
            (mq_sys::open(&name, rw, perm, None).map_err(|e| open_err(&name, e))?, false)
        };
        if created {
            // mq_open applies the umask (022 turns 666 into 644, 077 turns 640 into 600); mqd_t is
            // a descriptor on Linux, so set the mode asked for on it.
            common::fd::fchmod(&mqd, perm).map_err(|e| Error::sys("fchmod", &name, e))?;
        }
        let msgsize = mq_sys::getattr(&mqd).map_err(|e| Error::sys("mq_getattr", &name, e))?.msgsize() as usize;
        let q = PosixQueue { mqd: Arc::new(mqd), name, key, mode, msgsize, waited: false, recreate: false };
        Ok((q, created))
    }

    pub(crate) fn send(&mut self, msg: &[u8], full: WhenFull, on_wait: &mut dyn FnMut()) -> Result<()> {
        let wait = full == WhenFull::Wait;
        if msg.len() > self.msgsize {
            return Err(Error::Usage(format!(
                "a message of {} bytes is more than {} holds ({} bytes)",
                msg.len(),
                self.name,
                self.msgsize
            )));
        }
        // Unlinked since our last send (a reader found it empty): the next reader will open the
        // name, so send there.
        if self.recreate && unlinked(&self.mqd, &self.name)? {
            self.move_to_new_queue()?;
        }
        let mut tried = Try::First;
        loop {
            common::gate::safe_point(); // a stop parks here, before a send (see crate::send_sysv)
            match mq_sys::send(&self.mqd, msg, 0, tried) {
                Ok(()) => {
                    // Unlinked just before our send: move what is in it (ours) to a queue of the
                    // name, or it dies with the last descriptor. Empty: a reader took it.
                    if self.recreate && unlinked(&self.mqd, &self.name)? && curmsgs(&self.mqd, &self.name)? > 0 {
                        self.move_to_new_queue()?;
                    }
                    return Ok(());
                }
                Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) if wait => {
                    tried = Try::Again(Errno::EAGAIN);
                    on_wait();
                    if !wait_for(&self.mqd, PollFlags::POLLOUT, &self.name)? && unlinked(&self.mqd, &self.name)? {
                        if !self.recreate {
                            return Err(removed(&self.name));
                        }
                        self.move_to_new_queue()?;
                    }
                }
                Err(Errno::EAGAIN) => {
                    return Err(Error::sys("mq_send", &self.name, Errno::EAGAIN).hint(format!(
                        "the queue is full ({POSIX_MAX_MSGS} messages); start the reader, or pass --wait"
                    )));
                }
                Err(e) => return Err(Error::sys("mq_send", &self.name, e)),
            }
        }
    }

    /// Takes the oldest message of the highest priority, waiting for one if needed; fails within
    /// a [`TICK`] once the queue was unlinked by another process.
    pub(crate) fn recv(&mut self, on_wait: &mut dyn FnMut()) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; self.msgsize];
        let mut prio = 0;
        let mut tried = Try::First;
        loop {
            common::gate::safe_point(); // a stop parks here, never with a message taken
            match mq_sys::receive(&self.mqd, &mut buf, &mut prio, tried) {
                Ok(n) => {
                    buf.truncate(n);
                    return Ok(buf);
                }
                Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) => {
                    tried = Try::Again(Errno::EAGAIN);
                    if !self.waited {
                        on_wait();
                        self.waited = true;
                    }
                    if !wait_for(&self.mqd, PollFlags::POLLIN, &self.name)? && unlinked(&self.mqd, &self.name)? {
                        return Err(removed(&self.name));
                    }
                }
                Err(e) => return Err(Error::sys("mq_receive", &self.name, e)),
            }
        }
    }

    /// Our queue was unlinked: continue with the queue that has the name now (made if missing)
    /// and move the messages still in ours there.
    fn move_to_new_queue(&mut self) -> Result<()> {
        let moved = rescue(&self.mqd, self.key, self.mode)?;
        common::diag!(
            "{}: {} was removed by another process; {}sending the rest to a new queue of that name",
            crate::WRITER,
            self.name,
            if moved.1 > 0 { format!("moved {} message(s) still in it and ", moved.1) } else { String::new() }
        );
        *self = PosixQueue { recreate: self.recreate, ..moved.0 };
        Ok(())
    }
}

/// Waits up to one [`TICK`] for `events`; false on timeout.
fn wait_for(mqd: &MqdT, events: PollFlags, name: &str) -> Result<bool> {
    let mut fds = [PollFd::new(mqd.as_fd(), events)];
    match poll(&mut fds, PollTimeout::from(TICK)) {
        Ok(n) => Ok(n > 0),
        Err(Errno::EINTR) => Ok(true),
        Err(e) => Err(Error::sys("poll", name, e)),
    }
}

/// Whether the queue behind `mqd` lost its name (mq_unlink): its link count is then 0.
pub(crate) fn unlinked(mqd: &MqdT, name: &str) -> Result<bool> {
    Ok(fstat(mqd.as_fd()).map_err(|e| Error::sys("fstat", name, e))?.st_nlink == 0)
}

pub(crate) fn curmsgs(mqd: &MqdT, name: &str) -> Result<u64> {
    Ok(mq_sys::getattr(mqd).map_err(|e| Error::sys("mq_getattr", name, e))?.curmsgs() as u64)
}

fn removed(name: &str) -> Error {
    Error::Failed(format!(
        "{name}: the queue was removed by another process (mq_unlink; fstat shows 0 links); start the writer and a new reader"
    ))
}

/// Moves every message left in the unlinked queue `from` (each with its priority) to the queue
/// of the name, made if missing. Returns that queue and how many were moved.
pub(crate) fn rescue(from: &MqdT, key: Key, mode: u32) -> Result<(PosixQueue, usize)> {
    let (to, _) = PosixQueue::get_or_create(key, mode)?;
    let mut buf =
        vec![0u8; mq_sys::getattr(from).map_err(|e| Error::sys("mq_getattr", &to.name, e))?.msgsize() as usize];
    let mut moved = 0;
    loop {
        let mut prio = 0;
        let n = match mq_sys::receive(from, &mut buf, &mut prio, Try::First) {
            Ok(n) => n,
            Err(Errno::EAGAIN) => return Ok((to, moved)),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(Error::sys("mq_receive", format!("{} (unlinked)", to.name), e)),
        };
        let deadline = Instant::now() + RESCUE_PATIENCE;
        let mut tried = Try::First;
        loop {
            match mq_sys::send(&to.mqd, &buf[..n], prio, tried) {
                Ok(()) => break,
                Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) if Instant::now() < deadline => {
                    tried = Try::Again(Errno::EAGAIN);
                    wait_for(&to.mqd, PollFlags::POLLOUT, &to.name)?;
                }
                Err(e) => {
                    // Put it back where it was rather than lose it; it stays reachable through
                    // our descriptor only, which is all that can still be done.
                    let _ = mq_sys::send(from, &buf[..n], prio, Try::First);
                    return Err(Error::sys("mq_send", &to.name, e)
                        .hint("could not move a message out of the removed queue; it is lost when this process ends"));
                }
            }
        }
        moved += 1;
    }
}

/// Removes the queue if it is empty, else leaves it and says so (see [`crate::finish`]).
pub(crate) fn finish(mqd: &MqdT, name: &str, key: Key, mode: u32, bin: &str) -> Result<()> {
    if !unlinked(mqd, name)? {
        let left = curmsgs(mqd, name)?;
        if left > 0 {
            common::diag!(
                "{bin}: left POSIX queue {name} in place: it still holds {left} message(s) for the next reader (remove it with: {})",
                clean_command(key)
            );
            return Ok(());
        }
        match mq_sys::unlink(name) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(Errno::EACCES | Errno::EPERM) => {
                // Another user's queue, shared with --mode: this reader may use it, not remove it.
                let owner = nix::sys::stat::fstat(mqd.as_fd()).map_or(0, |st| st.st_uid);
                common::diag!(
                    "{bin}: left POSIX queue {name} in place: it is uid {owner}'s, and only its owner (or root) may remove it"
                );
                return Ok(());
            }
            Err(e) => return Err(Error::sys("mq_unlink", name, e)),
        }
    }
    // A writer that opened the queue before the unlink may have sent since the count: its message
    // would die with the last descriptor. Look again and move any to a new queue of the name.
    if curmsgs(mqd, name)? > 0 {
        let (_, moved) = rescue(mqd, key, mode)?;
        common::diag!(
            "{bin}: {moved} message(s) arrived while {name} was being removed: moved to a new queue of that name for the next reader"
        );
    }
    Ok(())
}

fn open_err(name: &str, e: Errno) -> Error {
    let err = Error::sys("mq_open", name, e);
    match e {
        Errno::ENOENT => err.hint("no such queue; start the writer first"),
        Errno::EACCES => err.hint("the queue belongs to another user and its mode does not let you use it"),
        Errno::EINVAL => err.hint("the queue limits are above fs.mqueue.msg_max / msgsize_max"),
        _ => err,
    }
}
