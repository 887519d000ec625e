//! Sends messages to a message queue, the note's process A (msgget + msgsnd with IPC_NOWAIT).

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::process::ExitCode;

use clap::Parser;
use common::cli::{KeyArgs, ModeArgs, SendArgs};
use common::{Error, Result};
use msgq_ipc::{DEFAULT_MESSAGE, PosixQueue, Queue, c_text, msgmax, serve};

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
    /// Send one request to a `reader --serve` and print its reply (two-way traffic over one queue)
    #[arg(long, value_name = "MESSAGE", conflicts_with_all = ["messages", "repeat", "mtype"])]
    request: Option<OsString>,
    /// Use a POSIX message queue (mq_open, /msgq-ipc-<key>) instead of System V
    #[arg(long, conflicts_with_all = ["request", "mtype"])]
    posix: bool,
    #[command(flatten)]
    send: SendArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    common::error::main("writer", || {
        // Refused before any system call, so a bad message creates nothing.
        let limit = if cli.posix { 8192 } else { msgmax() };
        let texts: Vec<std::borrow::Cow<[u8]>> = match &cli.request {
            Some(m) => vec![m.as_bytes().into()],
            None => cli.send.each(DEFAULT_MESSAGE).collect(),
        };
        if let Some(big) = texts.iter().find(|t| t.len() + 1 > limit) {
            return Err(Error::Usage(format!(
                "a message of {} bytes plus its NUL is more than one message may hold ({limit} bytes, {})",
                big.len(),
                if cli.posix { "fs.mqueue.msgsize_max" } else { "kernel.msgmax" }
            )));
        }
        common::stop::install()?;
        let key = cli.key.key;
        let (queue, _created) = if cli.posix {
            PosixQueue::open(key, cli.mode.mode, true).map(|(q, c)| (Queue::Posix(q), c))?
        } else {
            Queue::get_or_create(key, cli.mode.mode)?
        };
        let peer = cli.key.peer_args(cli.posix);
        let mut room = common::Ready::new(
            "writer",
            &format!("for room in {}", queue.handle().name()),
            "msgq-ipc",
            "reader",
            &peer,
        );
        match &cli.request {
            Some(msg) => request(queue, msg.as_bytes(), &peer),
            None => texts.iter().try_for_each(|t| queue.send(cli.mtype, t, cli.wait, &mut || room.show())),
        }
    })
}

/// Sends one request (type 1, `<pid> <message>`) and prints the reply sent back with type <pid>.
fn request(mut queue: Queue, msg: &[u8], peer: &str) -> Result<()> {
    let pid = std::process::id();
    let name = queue.handle().name();
    let mut room = common::Ready::new("writer", &format!("for room in {name}"), "msgq-ipc", "reader", peer);
    queue.send(serve::REQUEST_TYPE, &serve::request(pid, msg), true, &mut || room.show())?;
    let server_args = format!("--serve{}", if peer.is_empty() { String::new() } else { format!(" {peer}") });
    let mut reply = common::Ready::new("writer", &format!("for a reply on {name}"), "msgq-ipc", "reader", &server_args);
    let (_, reply) = queue.recv(i64::from(pid), &mut || reply.show())?;
    common::out::stdout().line(c_text(&reply))
}
