//! Two-way traffic over one queue (M6): requests go in with type 1 and the text `<pid> <message>`;
//! the server replies with type `<pid>`, so each client takes only its own reply.

use common::sysv::{self, MsgBuf};
use common::{Error, Result};
use nix::errno::Errno;
use nix::sys::signal::kill;
use nix::unistd::Pid;

use crate::msgmax;

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
                "writer: could not put back another client's request {:?}: msgsnd: {}",
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
