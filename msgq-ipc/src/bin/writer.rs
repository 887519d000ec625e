//! Sends messages to a message queue, the note's process A (msgget + msgsnd with IPC_NOWAIT).

use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};

use clap::Parser;
use common::cli::{KeyArgs, ModeArgs, SendArgs};
use common::stop::on_stop;
use common::{Error, Peer, PeerState, Ready, Result, Seen};
use msgq_ipc::{DEFAULT_MESSAGE, Handle, PosixQueue, Queue, c_text, finish, msgmax, serve};

/// Message queue writer: msgget(key, IPC_CREAT|0600), then msgsnd of each message (its text and a
/// NUL, as the C sends strlen+1) with IPC_NOWAIT.
#[derive(Parser)]
#[command(name = common::command_name!("writer"), bin_name = "writer", version)]
struct Cli {
    #[command(flatten)]
    key: KeyArgs,
    #[command(flatten)]
    mode: ModeArgs,
    /// Message type (mtype), 1 or more; the reader picks messages by type
    #[arg(long = "type", value_name = "T", default_value_t = 1, value_parser = clap::value_parser!(i64).range(1..))]
    mtype: i64,
    /// Block while the queue is full instead of failing with EAGAIN
    #[arg(long)]
    wait: bool,
    /// Send each MESSAGE as a request to a `reader --serve` and print its reply (two-way traffic
    /// over one queue: requests go with type 1, the reply comes back with this process's PID)
    #[arg(long, conflicts_with_all = ["mtype", "wait"])]
    request: bool,
    /// Use a POSIX message queue (mq_open, /msgq-ipc-<key>) instead of System V
    #[arg(long, conflicts_with_all = ["request", "mtype"])]
    posix: bool,
    #[command(flatten)]
    send: SendArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    common::error::main("writer", || {
        // Refused before any system call, so a bad message creates nothing. A request carries
        // "<pid> " before the message.
        let limit = if cli.posix { 8192 } else { msgmax() };
        let prefix = if cli.request { serve::request(std::process::id(), b"").len() } else { 0 };
        let texts: Vec<std::borrow::Cow<[u8]>> = cli.send.each(DEFAULT_MESSAGE).collect();
        if let Some(big) = texts.iter().find(|t| prefix + t.len() + 1 > limit) {
            return Err(Error::Usage(format!(
                "a message of {} bytes plus {}its NUL is more than one message may hold ({limit} bytes, {})",
                big.len(),
                if prefix > 0 { format!("the request's \"<pid> \" ({prefix} bytes) and ") } else { String::new() },
                if cli.posix { "fs.mqueue.msgsize_max" } else { "kernel.msgmax" }
            )));
        }
        common::stop::install()?;
        let key = cli.key.key;
        let (mut queue, created) = if cli.posix {
            PosixQueue::open(key, cli.mode.mode, true).map(|(q, c)| (Queue::Posix(q), c))?
        } else {
            Queue::get_or_create(key, cli.mode.mode)?
        };
        queue.recreate_if_removed();
        let peer = cli.key.peer_args(cli.posix);
        if cli.request {
            return texts.iter().try_for_each(|t| request(&mut queue, created, t, &peer));
        }
        // Stopped while it waits for room: a queue it made goes unless messages wait in it.
        let _cleanup = created.then(|| {
            let h = queue.handle();
            on_stop(move || {
                msgq_ipc::stop_with(|finish| {
                    if let Err(e) = finish(&h, "writer") {
                        common::diag!("writer: {e}");
                    }
                })
            })
        });
        let mut room = waiting_for_room(&queue, &peer);
        texts.iter().try_for_each(|t| queue.send(cli.mtype, t, cli.wait, &mut || room.show()))
    })
}

/// Sends one request (type 1, `<pid> <message>`) and prints the reply sent back with type <pid>.
/// Stopped before the reply: the request is taken back (no server answers a dead pid), and a
/// queue this process made goes too if no server took the request and nothing else is in it.
/// The waiting line of a writer that finds the queue full.
fn waiting_for_room(queue: &Queue, peer: &str) -> Ready {
    let h = queue.handle();
    let peer = Peer { package: "msgq-ipc", bin: "reader", args: peer.to_string() };
    Ready::waiting("writer", format!("for room in {}", h.name()), peer).looking(move || Seen {
        holds: h.remaining().ok().map(|n| format!("it holds {n} message(s), as much as it takes")),
        peer: PeerState::Unknown,
    })
}

fn request(queue: &mut Queue, created: bool, msg: &[u8], peer: &str) -> Result<()> {
    let pid = std::process::id();
    let name = queue.handle().name();
    let text = serve::request(pid, msg);
    let mut room = waiting_for_room(queue, peer);
    // One stop action, registered before the send (which may wait for room and be stopped there),
    // acting on the queue the request is in: the send may move it to a new queue of the key.
    // (Two actions, one per queue, deadlocked: the first keeps stop_with's lock to the end.)
    let current = Arc::new(Mutex::new(queue.handle()));
    let guard = {
        let (current, text) = (Arc::clone(&current), text.clone());
        on_stop(move || {
            let h = current.lock().unwrap_or_else(PoisonError::into_inner).clone();
            msgq_ipc::stop_with(|finish| {
                let Handle::SysV { id, .. } = h else { return };
                let nobody_took_it = serve::withdraw(id, pid, &text);
                if created
                    && nobody_took_it
                    && let Err(e) = finish(&h, "writer")
                {
                    common::diag!("writer: {e}");
                }
            })
        })
    };
    queue.send(serve::REQUEST_TYPE, &text, true, &mut || room.show())?;
    *current.lock().unwrap_or_else(PoisonError::into_inner) = queue.handle();
    let args = if peer.is_empty() { "--serve".to_string() } else { format!("{peer} --serve") };
    let mut reply = Ready::waiting(
        "writer",
        format!("for a reply (type {pid}) on {name}"),
        Peer { package: "msgq-ipc", bin: "reader", args },
    );
    let (_, reply) = queue.recv(i64::from(pid), &mut || reply.show()).inspect_err(|_| msgq_ipc::settle())?;
    drop(guard);
    common::out::stdout().line(c_text(&reply))?;
    // A `reader --serve --count N` that ended before we took its reply left the queue for us.
    match queue.handle() {
        h @ Handle::SysV { id, .. } if serve::server_gone(id) => finish(&h, "writer"),
        _ => Ok(()),
    }
}
