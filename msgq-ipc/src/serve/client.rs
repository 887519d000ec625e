//! `writer --request`: one request at a time, each taken back by its own type if the client is
//! stopped before a server took it (see [`super`] for the types).

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use common::cleanup::{AtEnd, Cleanup};
use common::sysv::{self, MsgBuf};
use common::trace::Try;
use common::{Error, Key, Program, Result};
use nix::errno::Errno;
use nix::sys::signal::kill;
use nix::unistd::Pid;

use super::{reply, reply_type};
use crate::{Handle, Origin, Queue, WhenFull, c_text, finish, msgmax, waiting_for_room};

/// How long a stopped client waits for the reply to a request a server has already taken: a
/// server replies right after taking a request, so this long means it was stopped or killed.
const REPLY_PATIENCE: Duration = Duration::from_secs(1);

/// How long a stop waits for the main thread to park (see common::cleanup): a send or a wait.
const STOP_PATIENCE: Duration = Duration::from_secs(2);

/// What the stop thread needs to know of a client: the queue, whether this process made it, and
/// the message whose request is out (sent, its reply not yet taken).
struct Asking {
    handle: Handle,
    origin: Origin,
    out: Option<Vec<u8>>,
}

fn lock(a: &Mutex<Asking>) -> MutexGuard<'_, Asking> {
    a.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `writer --request`: opens (or makes, 0600 or `mode`) the queue of `key`, then for each message
/// sends a request (type: its PID; text: the message) and prints the reply (type: PID +
/// [`super::PID_LIMIT`]).
/// Stopped, it takes back its own request if no server has taken it, else waits a moment for the
/// reply and prints it; a queue it made goes too if no server took the request and nothing else
/// is in it. `peer` is what a server needs to meet us (`KeyArgs::peer_args`); `me` is the writer.
pub fn client<T: AsRef<[u8]>>(me: Program, key: Key, mode: u32, texts: &[T], peer: &str) -> Result<()> {
    let pid = std::process::id();
    // Registered before the queue is made: a stop from now on parks the main thread first (before
    // a send, or while it waits for a reply), and ends what it made.
    let cleanup = Cleanup::register(AtEnd::Remove, STOP_PATIENCE, move |asking: Arc<Mutex<Asking>>| {
        crate::stop_with(|finish| stopped(me, pid, &asking, finish))
    });
    let (mut queue, origin) = Queue::get_or_create(key, mode)?;
    queue.recreate_if_removed();
    let asking = Arc::new(Mutex::new(Asking { handle: queue.handle(), origin, out: None }));
    cleanup.made(Arc::clone(&asking));
    for text in texts {
        ask(me, &mut queue, &asking, text.as_ref(), peer)?;
    }
    // A `reader --serve --count N` that ended before we took its reply left the queue for us.
    cleanup.finish(|asking| match lock(asking).handle.clone() {
        h @ Handle::SysV { id, .. } if server_gone(id) => finish(&h, me.bin),
        _ => Ok(()),
    })
}

/// One request and its reply.
fn ask(me: Program, queue: &mut Queue, asking: &Mutex<Asking>, msg: &[u8], peer: &str) -> Result<()> {
    let pid = i64::from(std::process::id());
    let mut room = waiting_for_room(me, queue, peer);
    queue.send(pid, msg, WhenFull::Wait, &mut || room.show())?;
    {
        let mut a = lock(asking);
        a.handle = queue.handle(); // the send may have moved to a new queue of the key
        a.out = Some(msg.to_vec());
    }
    let name = queue.handle().name();
    let args = if peer.is_empty() { "--serve".to_string() } else { format!("{peer} --serve") };
    let mut waiting = me.waiting(format!("for a reply (type {}) on {name}", reply_type(pid))).peer_args(args);
    loop {
        let (_, got) = queue.recv(reply_type(pid), &mut || waiting.show()).inspect_err(|_| crate::settle())?;
        match read_reply(me, &got, msg) {
            Some(reply) => {
                lock(asking).out = None;
                return reply.and_then(|r| common::out::stdout().line(&r));
            }
            None => continue,
        }
    }
}

/// What a message of our reply type says about our request `msg`: the reply to print, the
/// server's empty message (an error: it could not reply), or None for a reply that answers
/// another message (left for an earlier process that had our PID): dropped.
fn read_reply(me: Program, got: &[u8], msg: &[u8]) -> Option<Result<Vec<u8>>> {
    if got.is_empty() {
        return Some(Err(Error::Failed(format!(
            "the server took the request {:?} but could not reply: the queue was full (kernel.msgmnb = {} bytes); ask again",
            String::from_utf8_lossy(msg),
            crate::msgmnb()
        ))));
    }
    let text = c_text(got);
    if text != reply(msg) {
        common::diag!(
            "{me}: dropped a reply that answers another message ({:?}): it was left for an earlier process with this PID",
            String::from_utf8_lossy(text)
        );
        return None;
    }
    Some(Ok(text.to_vec()))
}

/// The stop of a client, with the main thread parked (it holds no reply it has not printed).
fn stopped(me: Program, pid: u32, asking: &Mutex<Asking>, finish: &mut dyn FnMut(&Handle, &str) -> Result<()>) {
    let a = lock(asking);
    let Handle::SysV { id, .. } = a.handle else { return };
    let mut server_took_it = false;
    if let Some(msg) = &a.out {
        // Our request has our type: taking it back touches no other client's.
        let mut buf = MsgBuf::new(msgmax());
        match sysv::msgrcv(id, &mut buf, i64::from(pid), libc::IPC_NOWAIT) {
            Ok(_) => {} // no server saw it: no reply will come
            Err(Errno::ENOMSG) => {
                server_took_it = true;
                take_late_reply(me, id, pid, msg);
            }
            Err(_) => {} // the queue is gone
        }
    }
    if a.origin == Origin::Made
        && !server_took_it
        && let Err(e) = finish(&a.handle, me.bin)
    {
        common::diag!("{me}: {e}");
    }
}

/// A server has taken our request `msg`: its reply comes at once unless the server was stopped
/// or killed. Waits [`REPLY_PATIENCE`] for it and prints it. Given up, the reply that comes later
/// is taken back by the server, which finds us gone (see [`answer`]).
fn take_late_reply(me: Program, id: i32, pid: u32, msg: &[u8]) {
    let mut buf = MsgBuf::new(msgmax());
    let deadline = Instant::now() + REPLY_PATIENCE;
    let mut tried = Try::First;
    loop {
        match sysv::msgrcv_try(id, &mut buf, reply_type(i64::from(pid)), libc::IPC_NOWAIT, tried) {
            Ok((_, got)) => match read_reply(me, got, msg) {
                Some(Ok(reply)) => {
                    let _ = common::out::stdout().line(&reply);
                    return;
                }
                Some(Err(e)) => {
                    common::diag!("{me}: {e}");
                    return;
                }
                None => tried = Try::First,
            },
            Err(Errno::ENOMSG) if Instant::now() < deadline => {
                tried = Try::Again(Errno::ENOMSG);
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(Errno::ENOMSG) => {
                common::diag!(
                    "{me}: stopped before the reply to {:?} came: the server that took the request will drop it",
                    String::from_utf8_lossy(msg)
                );
                return;
            }
            Err(_) => return, // the queue is gone
        }
    }
}

/// After a client took its reply: whether the server that sent it has ended (`--count`), so that
/// the client is the last one out. msg_lspid is the server unless another client has sent a
/// request since, which then still waits: the queue is not ours to remove.
pub fn server_gone(id: i32) -> bool {
    sysv::msg_stat(id).is_ok_and(|ds| ds.msg_qnum == 0 && kill(Pid::from_raw(ds.msg_lspid), None) == Err(Errno::ESRCH))
}
