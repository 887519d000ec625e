//! Two-way traffic over one queue (M6), where every process takes only what is addressed to it:
//! a client sends its request with its own PID as the type, and the server replies with type
//! PID + [`PID_LIMIT`]. The server takes requests with type -[`PID_LIMIT`] (the lowest type up to
//! it: every PID, no reply); a client takes its reply, or when stopped its own request back, by
//! its own types. [`server`] is `reader --serve`, [`client`] is `writer --request`.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use common::cli::KeyArgs;
use common::out::Out;
use common::sysv::{self, MsgBuf};
use common::{Error, Key, Program, Result};
use nix::errno::Errno;
use nix::sys::signal::kill;
use nix::unistd::Pid;

use crate::{Handle, Queue, c_text, msgmax, with_nul};

mod client;
pub use client::{client, server_gone};

/// Linux's ceiling for pid_max (PID_MAX_LIMIT, 2^22): every PID is below it, so types 1 to it are
/// requests, and a reply's type, PID + PID_LIMIT, is above every request's.
pub const PID_LIMIT: i64 = 1 << 22;

/// The type of the reply to the client with `pid`.
pub fn reply_type(pid: i64) -> i64 {
    PID_LIMIT + pid
}

/// The reply text to `message`.
pub fn reply(message: &[u8]) -> Vec<u8> {
    let mut text = b"re: ".to_vec();
    text.extend_from_slice(message);
    text
}

/// `reader --serve`: answers requests on `queue` until stopped, or `count` of them. Each request is
/// answered with `re: <message>` and printed as `request from pid <pid>: <message>`. No client can
/// stop or block the server: a reply goes with IPC_NOWAIT, and when the queue has no room for it,
/// an empty message of the reply's type (which always fits) tells the client instead. `key` is
/// for the waiting line's hint; `me` is the reader that serves.
pub fn server(me: Program, queue: &mut Queue, key: &KeyArgs, count: Option<u64>, out: &mut Out) -> Result<()> {
    let handle = queue.handle();
    let Handle::SysV { id, key: k } = handle else {
        return Err(Error::Usage("--serve works on a System V queue only".into()));
    };
    let name = handle.name();
    let peer = key.peer_args(None);
    let args = if peer.is_empty() { "--request hello".to_string() } else { format!("{peer} --request hello") };
    let mut ready = me.waiting(format!("for requests (types 1 to {PID_LIMIT}) on {name}")).peer_args(args);
    let max_text = queue.max_text();
    let mut served = 0;
    while count.is_none_or(|c| served < c) {
        let (pid, text) = queue.recv(-PID_LIMIT, &mut || ready.show())?;
        let msg = c_text(&text);
        // Taken: a stop now waits until the request is answered and printed whole (common::gate).
        let held = common::gate::hold(msg);
        if pid == 1 {
            // Type 1 is the note's usual type, but no client has PID 1 (init).
            common::diag!(
                "{me}: skipped a message of type 1 ({:?}): a request's type is its sender's PID",
                String::from_utf8_lossy(msg)
            );
        } else {
            // The reply first: a client waits for it, and our stdout may block.
            if let Some(why) = answer(id, k, pid, &reply(msg), max_text)? {
                common::diag!("{me}: dropped the reply to pid {pid}: {why}");
            }
            out.raw(format!("request from pid {pid}: ").as_bytes())?;
            out.line(msg)?;
        }
        drop(held);
        sweep(id);
        served += 1;
    }
    // Ending with --count: the last clients may not have taken their replies yet. Waiting (a
    // bounded time) until they have left lets the server be the last one out and remove the queue.
    await_clients(Duration::from_secs(1));
    Ok(())
}

/// What [`answer`] sent.
enum Sent {
    Reply,
    /// The empty message that tells the client its reply did not fit.
    Notice,
}

/// Sends `reply` to the client `pid` unless it is gone; None once something went, else why not.
/// A client that is gone after the send (stopped in between) will never take it: it is taken back
/// at once. A client that is still there is watched: if it goes without taking it, the next
/// [`sweep`] takes it back (the server sweeps after each request and at its end).
fn answer(id: i32, key: Key, pid: i64, reply: &[u8], max_text: usize) -> Result<Option<String>> {
    if reply.len() > max_text {
        return Ok(Some(format!(
            "it is {} bytes plus its NUL, more than one message may hold ({} bytes, kernel.msgmax)",
            reply.len(),
            max_text + 1
        )));
    }
    if !alive(pid) {
        return Ok(Some(format!("no process has pid {pid}: the client is gone")));
    }
    let sent = match send_reply(id, key, reply_type(pid), &with_nul(reply))? {
        Ok(sent) => sent,
        Err(why) => return Ok(Some(why)),
    };
    if alive(pid) {
        let mut w = watched();
        if !w.contains(&pid) {
            w.push(pid);
        }
    } else {
        take_back(id, pid);
    }
    Ok(match sent {
        Sent::Reply => None,
        Sent::Notice => Some(format!(
            "the queue is full (kernel.msgmnb = {} bytes): told the client with an empty message",
            crate::msgmnb()
        )),
    })
}

/// msgsnd with IPC_NOWAIT of the reply, or, when the queue is full, of an empty message (0 bytes
/// always fit: a queue counts bytes, and messages only up to msg_qbytes of them). A queue closed
/// for a moment by a process that ends on it (msg_qbytes 0, see [`crate::finish`]) is waited for.
fn send_reply(id: i32, key: Key, mtype: i64, reply: &[u8]) -> Result<std::result::Result<Sent, String>> {
    let removed = || Error::sys("msgsnd", format!("queue {key}"), Errno::EIDRM).hint(crate::REMOVED);
    let mut text = reply;
    let mut closed_since: Option<Instant> = None;
    loop {
        let e = match sysv::msgsnd(id, mtype, text, libc::IPC_NOWAIT) {
            Ok(()) => return Ok(Ok(if text.is_empty() { Sent::Notice } else { Sent::Reply })),
            Err(Errno::EINTR) => continue,
            Err(e) if crate::is_removed(id, e) => return Err(removed()),
            Err(Errno::EAGAIN) => Errno::EAGAIN,
            Err(e) => return Ok(Err(format!("msgsnd: {}", e.desc()))),
        };
        match sysv::msg_stat(id) {
            Ok(ds) if ds.msg_qbytes == 0 => {
                if closed_since.get_or_insert_with(Instant::now).elapsed() > crate::CLOSED_PATIENCE {
                    crate::reopen_stale(id, key, "reader")?;
                    closed_since = None;
                    continue;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            Ok(_) if !text.is_empty() => text = &[],
            Ok(ds) => return Ok(Err(format!("msgsnd: {}: the queue holds {} messages", e.desc(), ds.msg_qnum))),
            Err(Errno::EINVAL | Errno::EIDRM) => return Err(removed()),
            Err(s) => return Err(Error::sys("msgctl(IPC_STAT)", format!("queue {key}"), s)),
        }
    }
}

/// Whether process `pid` exists (signal 0; EPERM: it does, as another user's).
fn alive(pid: i64) -> bool {
    matches!(i32::try_from(pid).map(|p| kill(Pid::from_raw(p), None)), Ok(Ok(()) | Err(Errno::EPERM)))
}

/// The clients a reply was sent to that were there after the send: until they are gone, their
/// reply may still wait in the queue. Static, so that a stop's [`crate::finish`] sweeps it too.
static WATCHED: Mutex<Vec<i64>> = Mutex::new(Vec::new());

fn watched() -> MutexGuard<'static, Vec<i64>> {
    WATCHED.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Takes back what waits in queue `id` for a watched client that has gone since: nobody else
/// takes a reply's type. A no-op in any process but a server.
pub(crate) fn sweep(id: i32) {
    let mut w = watched();
    w.retain(|&pid| {
        if alive(pid) {
            return true;
        }
        take_back(id, pid);
        false
    });
}

/// Removes every message of the reply type of `pid` from queue `id` (IPC_NOWAIT).
fn take_back(id: i32, pid: i64) {
    let mut buf = MsgBuf::new(msgmax());
    while sysv::msgrcv(id, &mut buf, reply_type(pid), libc::IPC_NOWAIT).is_ok() {}
}

/// Waits, at most `limit`, until every watched client has gone (they leave once they took their
/// reply). No event tells a server that a client ended, so kill(pid, 0) is polled every few ms.
fn await_clients(limit: Duration) {
    let deadline = Instant::now() + limit;
    while watched().iter().any(|&pid| alive(pid)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_replies_have_types_apart() {
        // pid_max is at most 2^22: every PID is a request type, every reply type is above them.
        let max_pid = PID_LIMIT - 1;
        assert!(reply_type(2) > PID_LIMIT && reply_type(max_pid) < 2 * PID_LIMIT);
        assert_eq!(reply(b"x"), b"re: x");
    }
}
