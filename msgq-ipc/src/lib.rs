//! Message queues (note section 3, claims M1-M6): the kernel keeps whole messages, each with a
//! type, until a process takes them; unlike a pipe, message boundaries are kept, and one queue
//! can carry both directions by type (M6). A queue outlives its processes until removed.
//!
//! System V queues are the note's (msgget/msgsnd/msgrcv); `--posix` runs the same exchange over
//! a POSIX queue (mq_open), which has priorities instead of types.

mod posix;
pub mod serve;

use common::sysv::{self, MsgBuf};
use common::{Error, Key, Result};
use nix::errno::Errno;

pub use posix::PosixQueue;

/// msgget with flags 0 finds another user's queue; msgsnd/msgrcv then check its mode.
const NOT_YOURS: &str =
    "the queue belongs to another user and its mode does not let you use it (see: ipcs -q); pick another --key";

/// The writer's message when none is given.
pub const DEFAULT_MESSAGE: &str = "Hello Message Queue";

/// The largest message text (kernel.msgmax, 8192 by default); a queue holds kernel.msgmnb bytes.
pub fn msgmax() -> usize {
    read_sysctl("/proc/sys/kernel/msgmax").unwrap_or(8192)
}

pub fn msgmnb() -> usize {
    read_sysctl("/proc/sys/kernel/msgmnb").unwrap_or(16384)
}

fn read_sysctl(path: &str) -> Option<usize> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The text a C program would print with `%s`: up to the first NUL (the note sends strlen+1).
pub fn c_text(bytes: &[u8]) -> &[u8] {
    bytes.split(|&b| b == 0).next().unwrap_or_default()
}

/// `text` and its NUL, as the C sends it.
fn with_nul(text: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(text.len() + 1);
    v.extend_from_slice(text);
    v.push(0);
    v
}

/// Either kind of queue, opened for sending and receiving.
pub enum Queue {
    /// `waited`: set after the first wait; see [`Queue::recv`].
    SysV {
        id: i32,
        key: Key,
        buf: MsgBuf,
        waited: bool,
    },
    Posix(PosixQueue),
}

impl Queue {
    /// msgget(key, IPC_CREAT | mode): the queue of `key`, made if missing. Returns whether this
    /// call made it.
    pub fn get_or_create(key: Key, mode: u32) -> Result<(Queue, bool)> {
        let (id, created) = sysv::get_or_create(mode as i32, |flags| sysv::msgget(key, flags))
            .map_err(|e| Error::sys("msgget", format!("key {key}"), e))?;
        Ok((Queue::SysV { id, key, buf: MsgBuf::new(msgmax()), waited: false }, created))
    }

    /// msgget(key, 0): the existing queue of `key`.
    pub fn existing(key: Key) -> Result<Queue> {
        let id = sysv::msgget(key, 0).map_err(|e| {
            Error::sys("msgget", format!("key {key}"), e).hint(match e {
                Errno::ENOENT => "no queue has that key; start the writer first",
                _ => "the queue belongs to someone else",
            })
        })?;
        Ok(Queue::SysV { id, key, buf: MsgBuf::new(msgmax()), waited: false })
    }

    /// A copyable handle for naming, counting and removing the queue (also from the stop thread).
    pub fn handle(&self) -> Handle {
        match self {
            Queue::SysV { id, key, .. } => Handle::SysV { id: *id, key: *key },
            Queue::Posix(q) => Handle::Posix { name: q.name.clone() },
        }
    }

    /// The largest text (without its NUL) one message can carry.
    pub fn max_text(&self) -> usize {
        match self {
            Queue::SysV { .. } => msgmax() - 1,
            Queue::Posix(q) => q.msgsize - 1,
        }
    }

    /// Sends `text` and a NUL with type `mtype` (a POSIX queue has no types: it ignores it).
    /// Without `wait` a full queue is an error (IPC_NOWAIT, as in the note); with it, the call
    /// blocks until there is room, after calling `on_wait` once.
    pub fn send(&self, mtype: i64, text: &[u8], wait: bool, on_wait: &mut dyn FnMut()) -> Result<()> {
        let msg = with_nul(text);
        match self {
            Queue::SysV { id, key, .. } => {
                let full = |e| {
                    let err = Error::sys("msgsnd", format!("queue {key}"), e);
                    match e {
                        Errno::EAGAIN => err.hint(format!(
                            "the queue is full: it holds at most kernel.msgmnb = {} bytes; start the reader, or pass --wait to block until there is room",
                            msgmnb()
                        )),
                        Errno::EIDRM | Errno::EINVAL => err.hint("the queue was removed"),
                        Errno::EACCES => err.hint(NOT_YOURS),
                        _ => err,
                    }
                };
                match sysv::msgsnd(*id, mtype, &msg, libc::IPC_NOWAIT) {
                    Err(Errno::EAGAIN) if wait => on_wait(),
                    other => return other.map_err(full),
                }
                loop {
                    match sysv::msgsnd(*id, mtype, &msg, 0) {
                        Err(Errno::EINTR) => continue,
                        other => return other.map_err(full),
                    }
                }
            }
            Queue::Posix(q) => q.send(&msg, wait, on_wait),
        }
    }

    /// Receives one message of type `mtype` (see [`sysv::msgrcv`]; POSIX: the oldest of the highest
    /// priority) and returns its type and raw bytes. Calls `on_wait` before it first blocks (a
    /// non-blocking try tells); after that first wait, calls block at once: one system call per
    /// message, as in C.
    pub fn recv(&mut self, mtype: i64, on_wait: &mut dyn FnMut()) -> Result<(i64, Vec<u8>)> {
        match self {
            Queue::SysV { id, key, buf, waited } => {
                let mut flags = if *waited { 0 } else { libc::IPC_NOWAIT };
                loop {
                    match sysv::msgrcv(*id, buf, mtype, flags) {
                        Ok((t, text)) => return Ok((t, text.to_vec())),
                        Err(Errno::ENOMSG) if flags != 0 => {
                            on_wait();
                            *waited = true;
                            flags = 0;
                        }
                        // SIGSTOP/SIGCONT (Ctrl-Z, fg) interrupts msgrcv even with no handler.
                        Err(Errno::EINTR) => {}
                        Err(e) => {
                            let err = Error::sys("msgrcv", format!("queue {key}"), e);
                            return Err(match e {
                                Errno::EIDRM | Errno::EINVAL => err.hint("the queue was removed while we waited"),
                                Errno::EACCES => err.hint(NOT_YOURS),
                                _ => err,
                            });
                        }
                    }
                }
            }
            Queue::Posix(q) => q.recv(on_wait).map(|m| (0, m)),
        }
    }
}

#[derive(Clone, Debug)]
pub enum Handle {
    SysV { id: i32, key: Key },
    Posix { name: String },
}

impl Handle {
    /// What error messages call it: `queue 0x4d2` or `POSIX queue /msgq-ipc-0x4d2`.
    pub fn name(&self) -> String {
        match self {
            Handle::SysV { key, .. } => format!("queue {key}"),
            Handle::Posix { name } => format!("POSIX queue {name}"),
        }
    }

    /// How many messages the queue holds now (IPC_STAT msg_qnum, or mq_curmsgs).
    pub fn remaining(&self) -> Result<u64> {
        match self {
            Handle::SysV { id, key } => Ok(sysv::msg_stat(*id)
                .map_err(|e| Error::sys("msgctl(IPC_STAT)", format!("queue {key}"), e))?
                .msg_qnum as u64),
            Handle::Posix { name } => posix::remaining(name),
        }
    }

    pub fn remove(&self) -> Result<()> {
        match self {
            Handle::SysV { id, key } => {
                sysv::msg_remove(*id).map_err(|e| Error::sys("msgctl(IPC_RMID)", format!("queue {key}"), e))
            }
            Handle::Posix { name } => posix::unlink(name),
        }
    }

    /// The shell command that removes it by hand.
    pub fn how_to_remove(&self) -> String {
        match self {
            Handle::SysV { key, .. } => format!("ipcrm -Q {key}"),
            Handle::Posix { .. } => "cargo run -p msgq-ipc --bin reader -- --posix --clean".into(),
        }
    }
}

/// At the end of a reader (or when it is stopped): remove the queue unless it still holds
/// messages, which are somebody's data. There is a window between the count and the removal in
/// which a writer could add a message that the removal then destroys: SysV has no "remove if
/// empty", so this is the best a reader can do without a lock that every writer would have to take.
pub fn finish(queue: &Handle, bin: &str) -> Result<()> {
    let left = queue.remaining()?;
    if left > 0 {
        eprintln!(
            "{bin}: left {} in place: it still holds {left} message(s) (remove it with: {})",
            queue.name(),
            queue.how_to_remove()
        );
        return Ok(());
    }
    queue.remove()
}

/// `reader --clean`: removes the queue of `key` (after a SIGKILL nothing else could).
pub fn clean(key: Key, posix: bool) -> Result<String> {
    if posix {
        let name = posix::name(key);
        return match nix::mqueue::mq_unlink(name.as_str()) {
            Ok(()) => Ok(format!("removed POSIX queue {name}")),
            Err(Errno::ENOENT) => Ok(format!("no POSIX queue {name}: nothing to remove")),
            Err(e) => Err(Error::sys("mq_unlink", name, e)),
        };
    }
    match sysv::msgget(key, 0) {
        Ok(id) => {
            sysv::msg_remove(id).map_err(|e| Error::sys("msgctl(IPC_RMID)", format!("queue {key}"), e))?;
            Ok(format!("removed queue {key}"))
        }
        Err(Errno::ENOENT) => Ok(format!("no queue has key {key}: nothing to remove")),
        Err(e) => Err(Error::sys("msgget", format!("key {key}"), e)),
    }
}
