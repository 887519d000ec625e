//! The same exchange over a POSIX message queue (beyond the note): a name instead of a key,
//! priorities instead of types, and a file under /dev/mqueue that `ls` shows.

use common::{Error, Key, Result};
use nix::errno::Errno;
use nix::mqueue::{MQ_OFlag, MqAttr, MqdT, mq_getattr, mq_open, mq_receive, mq_send, mq_unlink};
use nix::sys::stat::Mode;

/// Linux's default limits for an unprivileged queue: fs.mqueue.msg_max = 10 messages of
/// fs.mqueue.msgsize_max = 8192 bytes. Asking for more fails with EINVAL.
const MAX_MSGS: i64 = 10;
const MSG_SIZE: i64 = 8192;

pub fn name(key: Key) -> String {
    format!("/msgq-ipc-{key}")
}

pub struct PosixQueue {
    pub(crate) mqd: MqdT,
    pub(crate) name: String,
    pub(crate) msgsize: usize,
    waited: bool,
}

impl PosixQueue {
    /// Opens (creating if missing, with `mode`) the queue named after `key`.
    pub fn open(key: Key, mode: u32, create: bool) -> Result<(PosixQueue, bool)> {
        let name = name(key);
        let attr = MqAttr::new(0, MAX_MSGS, MSG_SIZE, 0);
        let mode = Mode::from_bits_truncate(mode);
        let rw = MQ_OFlag::O_RDWR | MQ_OFlag::O_CLOEXEC;
        let (mqd, created) = if create {
            match mq_open(name.as_str(), rw | MQ_OFlag::O_CREAT | MQ_OFlag::O_EXCL, mode, Some(&attr)) {
                Ok(q) => (q, true),
                Err(Errno::EEXIST) => (mq_open(name.as_str(), rw, mode, None).map_err(|e| open_err(&name, e))?, false),
                Err(e) => return Err(open_err(&name, e)),
            }
        } else {
            (mq_open(name.as_str(), rw, mode, None).map_err(|e| open_err(&name, e))?, false)
        };
        let msgsize = mq_getattr(&mqd).map_err(|e| Error::sys("mq_getattr", &name, e))?.msgsize() as usize;
        Ok((PosixQueue { mqd, name, msgsize, waited: false }, created))
    }

    pub(crate) fn send(&self, msg: &[u8], wait: bool, on_wait: &mut dyn FnMut()) -> Result<()> {
        if msg.len() > self.msgsize {
            return Err(Error::Usage(format!(
                "a message of {} bytes is more than {} holds ({} bytes)",
                msg.len(),
                self.name,
                self.msgsize
            )));
        }
        // The descriptor is blocking; a full queue is checked first so that without --wait we
        // fail as IPC_NOWAIT does.
        let attr = mq_getattr(&self.mqd).map_err(|e| Error::sys("mq_getattr", &self.name, e))?;
        if attr.curmsgs() >= attr.maxmsg() {
            if !wait {
                return Err(Error::sys("mq_send", &self.name, Errno::EAGAIN).hint(format!(
                    "the queue is full ({} messages); start the reader, or pass --wait",
                    attr.maxmsg()
                )));
            }
            on_wait();
        }
        loop {
            match mq_send(&self.mqd, msg, 0) {
                Err(Errno::EINTR) => continue,
                other => return other.map_err(|e| Error::sys("mq_send", &self.name, e)),
            }
        }
    }

    pub(crate) fn recv(&mut self, on_wait: &mut dyn FnMut()) -> Result<Vec<u8>> {
        // Looked at only until the first wait (for the ready line); then straight to mq_receive.
        if !self.waited && self.curmsgs()? == 0 {
            on_wait();
            self.waited = true;
        }
        let mut buf = vec![0u8; self.msgsize];
        let mut prio = 0;
        loop {
            match mq_receive(&self.mqd, &mut buf, &mut prio) {
                Ok(n) => {
                    buf.truncate(n);
                    return Ok(buf);
                }
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(Error::sys("mq_receive", &self.name, e)),
            }
        }
    }

    fn curmsgs(&self) -> Result<u64> {
        Ok(mq_getattr(&self.mqd).map_err(|e| Error::sys("mq_getattr", &self.name, e))?.curmsgs() as u64)
    }
}

/// Messages held by the queue `name`, through a descriptor of its own (the stop thread has none).
pub(crate) fn remaining(name: &str) -> Result<u64> {
    let mqd =
        mq_open(name, MQ_OFlag::O_RDONLY | MQ_OFlag::O_CLOEXEC, Mode::empty(), None).map_err(|e| open_err(name, e))?;
    let n = mq_getattr(&mqd).map_err(|e| Error::sys("mq_getattr", name, e))?.curmsgs();
    Ok(n as u64)
}

pub(crate) fn unlink(name: &str) -> Result<()> {
    match mq_unlink(name) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(Error::sys("mq_unlink", name, e)),
    }
}

fn open_err(name: &str, e: Errno) -> Error {
    let err = Error::sys("mq_open", name, e);
    match e {
        Errno::ENOENT => err.hint("no such queue; start the writer first"),
        Errno::EINVAL => err.hint("the queue limits are above fs.mqueue.msg_max / msgsize_max"),
        _ => err,
    }
}
