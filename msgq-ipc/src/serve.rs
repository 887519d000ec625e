//! Two-way traffic over one queue (M6): requests go in with type 1 and the text `<pid> <message>`;
//! the server replies with type `<pid>`, so each client takes only its own reply.
//! [`server`] is `reader --serve`, [`client`] is `writer --request`.

use std::sync::{Arc, Mutex, PoisonError};

use common::cli::KeyArgs;
use common::out::Out;
use common::stop::on_stop;
use common::sysv::{self, MsgBuf};
use common::{Error, Program, Result};
use nix::errno::Errno;
use nix::sys::signal::kill;
use nix::unistd::Pid;

use crate::{Handle, Origin, Queue, WhenFull, c_text, finish, msgmax, waiting_for_room};

/// `reader --serve`: answers requests on `queue` until stopped, or `count` of them. Each request is
/// printed as `request from pid <pid>: <message>`, and answered with `re: <message>` unless the
/// reply cannot go (said on stderr): no client can stop or block the server. `key` is for the
/// waiting line's hint; `me` is the reader that serves.
pub fn server(me: Program, queue: &mut Queue, key: &KeyArgs, count: Option<u64>, out: &mut Out) -> Result<()> {
    let name = queue.handle().name();
    let key = key.peer_args(None);
    let args = if key.is_empty() { "--request hello".to_string() } else { format!("{key} --request hello") };
    let mut ready = me.waiting(format!("for requests (type {REQUEST_TYPE}) on {name}")).peer_args(args);
    let mut served = 0;
    while count.is_none_or(|c| served < c) {
        let (_, text) = queue.recv(REQUEST_TYPE, &mut || ready.show())?;
        match parse_request(c_text(&text)) {
            Ok((pid, msg)) => {
                out.raw(format!("request from pid {pid}: ").as_bytes())?;
                out.line(msg)?;
                // IPC_NOWAIT, and checked first: no client can stop or block the server.
                let reply = reply(msg);
                let dropped = match undeliverable(pid, &reply, queue.max_text()) {
                    Some(why) => Some(why),
                    None => match queue.send(pid, &reply, WhenFull::Fail, &mut || {}) {
                        Ok(()) => None,
                        Err(e) if e.errno() == Some(Errno::EIDRM) => return Err(e),
                        Err(e) => Some(e.to_string()),
                    },
                };
                if let Some(why) = dropped {
                    common::diag!("{me}: dropped the reply to pid {pid}: {why}");
                }
            }
            Err(Error::Failed(why)) => common::diag!("{me}: skipped {why}"),
            Err(e) => return Err(e),
        }
        served += 1;
    }
    if let Handle::SysV { id, .. } = queue.handle() {
        wait_for_replies_taken(id, std::time::Duration::from_secs(1));
    }
    Ok(())
}

/// `writer --request`: sends one request (type 1, `<pid> <message>`) and prints the reply sent
/// back with type <pid>. Stopped before the reply: the request is taken back (no server answers a
/// dead pid), and a queue this process made (`origin`) goes too if no server took the request and
/// nothing else is in it. `peer` is what a server needs to meet us (`KeyArgs::peer_args`); `me`
/// is the writer that asks.
pub fn client(me: Program, queue: &mut Queue, origin: Origin, msg: &[u8], peer: &str) -> Result<()> {
    let pid = std::process::id();
    let name = queue.handle().name();
    let text = request(pid, msg);
    let mut room = waiting_for_room(me, queue, peer);
    // One stop action, registered before the send (which may wait for room and be stopped there),
    // acting on the queue the request is in: the send may move it to a new queue of the key.
    // (Two actions, one per queue, deadlocked: the first keeps stop_with's lock to the end.)
    let current = Arc::new(Mutex::new(queue.handle()));
    let guard = {
        let (current, text) = (Arc::clone(&current), text.clone());
        on_stop(move || {
            let h = current.lock().unwrap_or_else(PoisonError::into_inner).clone();
            crate::stop_with(|finish| {
                let Handle::SysV { id, .. } = h else { return };
                let nobody_took_it = withdraw(id, pid, &text);
                if origin == Origin::Made
                    && nobody_took_it
                    && let Err(e) = finish(&h, me.bin)
                {
                    common::diag!("{me}: {e}");
                }
            })
        })
    };
    queue.send(REQUEST_TYPE, &text, WhenFull::Wait, &mut || room.show())?;
    *current.lock().unwrap_or_else(PoisonError::into_inner) = queue.handle();
    let args = if peer.is_empty() { "--serve".to_string() } else { format!("{peer} --serve") };
    let mut reply = me.waiting(format!("for a reply (type {pid}) on {name}")).peer_args(args);
    let (_, reply) = queue.recv(i64::from(pid), &mut || reply.show()).inspect_err(|_| crate::settle())?;
    drop(guard);
    common::out::stdout().line(c_text(&reply))?;
    // A `reader --serve --count N` that ended before we took its reply left the queue for us.
    match queue.handle() {
        h @ Handle::SysV { id, .. } if server_gone(id) => finish(&h, me.bin),
        _ => Ok(()),
    }
}

/// The type every request is sent with.
pub const REQUEST_TYPE: i64 = 1;

/// The text of a request from process `pid`.
pub fn request(pid: u32, message: &[u8]) -> Vec<u8> {
    let mut text = format!("{pid} ").into_bytes();
    text.extend_from_slice(message);
    text
}

/// Splits a request into the client's PID (its reply type) and its message.
pub fn parse_request(text: &[u8]) -> Result<(i64, &[u8])> {
    let bad = || Error::Failed(format!("not a request (want '<pid> <message>'): {:?}", String::from_utf8_lossy(text)));
    let space = text.iter().position(|&b| b == b' ').ok_or_else(bad)?;
    let pid: i64 = std::str::from_utf8(&text[..space]).ok().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
    if pid <= REQUEST_TYPE {
        return Err(bad()); // a reply type must differ from the request type
    }
    Ok((pid, &text[space + 1..]))
}

/// The reply text to `message`.
pub fn reply(message: &[u8]) -> Vec<u8> {
    let mut text = b"re: ".to_vec();
    text.extend_from_slice(message);
    text
}

/// Why a reply to `pid` cannot go, checked before sending: the server never blocks on a client.
pub fn undeliverable(pid: i64, reply: &[u8], max_text: usize) -> Option<String> {
    if reply.len() > max_text {
        return Some(format!(
            "it is {} bytes plus its NUL, more than one message may hold ({} bytes, kernel.msgmax)",
            reply.len(),
            max_text + 1
        ));
    }
    // Signal 0 checks that the process exists; EPERM: it does, as another user's.
    match i32::try_from(pid).map(|p| kill(Pid::from_raw(p), None)) {
        Ok(Ok(()) | Err(Errno::EPERM)) => None,
        _ => Some(format!("no process has pid {pid}: the client is gone")),
    }
}

/// After a client took its reply: whether the server that sent it has ended (`--count`), so that
/// the client is the last one out. msg_lspid is the server unless another client has sent a
/// request since, which then still waits: the queue is not ours to remove.
pub fn server_gone(id: i32) -> bool {
    sysv::msg_stat(id).is_ok_and(|ds| ds.msg_qnum == 0 && kill(Pid::from_raw(ds.msg_lspid), None) == Err(Errno::ESRCH))
}

/// A server that ends (`--count`) with its last replies still in the queue waits, a bounded time,
/// for their clients to take them, so that it can be the last one out and remove the queue. Without
/// this the client, waking on its reply while the server is still ending, could not tell that the
/// server will not serve again, and nobody would remove the queue. There is no event to wait on
/// (SysV tells nobody that a message was taken), so IPC_STAT is polled every few milliseconds.
pub fn wait_for_replies_taken(id: i32, limit: std::time::Duration) {
    let deadline = std::time::Instant::now() + limit;
    while sysv::msg_stat(id).is_ok_and(|ds| ds.msg_qnum > 0) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// A stopped client (`writer --request`) takes back its request, so that no server answers a dead
/// pid, and any reply already sent to it. Requests of other clients taken on the way are put back
/// (behind newer ones: SysV can remove only the first message of a type). Returns whether our
/// request was still waiting, i.e. no server has taken it.
pub fn withdraw(id: i32, pid: u32, request: &[u8]) -> bool {
    let mut buf = MsgBuf::new(msgmax());
    let mut others = Vec::new();
    let mut found = false;
    let pending = sysv::msg_stat(id).map_or(0, |ds| ds.msg_qnum);
    for _ in 0..pending {
        match sysv::msgrcv(id, &mut buf, REQUEST_TYPE, libc::IPC_NOWAIT) {
            Ok((_, text)) if text.strip_suffix(&[0]) == Some(request) => {
                found = true;
                break;
            }
            Ok((_, text)) => others.push(text.to_vec()),
            Err(_) => break,
        }
    }
    for text in others {
        if let Err(e) = sysv::msgsnd(id, REQUEST_TYPE, &text, libc::IPC_NOWAIT) {
            common::diag!(
                "{}: could not put back another client's request {:?}: msgsnd: {}",
                crate::WRITER,
                String::from_utf8_lossy(crate::c_text(&text)),
                e.desc()
            );
        }
    }
    while sysv::msgrcv(id, &mut buf, i64::from(pid), libc::IPC_NOWAIT).is_ok() {}
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_round_trips() {
        let req = request(4242, b"hi there");
        let (pid, msg) = parse_request(&req).unwrap();
        assert_eq!((pid, msg), (4242, &b"hi there"[..]));
        assert!(parse_request(b"nopid").is_err());
        assert!(parse_request(b"1 pid one would be a request").is_err());
        assert_eq!(reply(b"x"), b"re: x");
    }
}
