//! Receives messages from a message queue, the note's process B (msgget + msgrcv).

use std::process::ExitCode;

use clap::Parser;
use common::cli::{KeyArgs, ModeArgs, ReceiveArgs};
use common::out::Out;
use common::stop::on_stop;
use common::{Error, Peer, PeerState, Ready, Result, Seen};
use msgq_ipc::{PosixQueue, Queue, c_text, finish, serve};

/// Message queue reader: msgget (creating the queue, 0600, if the writer has not yet), then msgrcv
/// of one message of type T per line printed, --count of them. At the end it removes the queue if
/// it is empty; messages beyond --count stay in it for the next reader (one line says so).
#[derive(Parser)]
#[command(name = common::command_name!("reader"), bin_name = "reader", version)]
struct Cli {
    #[command(flatten)]
    key: KeyArgs,
    #[command(flatten)]
    mode: ModeArgs,
    /// Message type to take: 0 the oldest, T > 0 the oldest of type T, T < 0 the lowest type <= |T|
    #[arg(long = "type", value_name = "T", default_value_t = 1, allow_negative_numbers = true)]
    mtype: i64,
    #[command(flatten)]
    recv: ReceiveArgs,
    /// Leave the queue in place at the end (by default it is removed once empty)
    #[arg(long)]
    keep: bool,
    /// Answer requests of `writer --request` until stopped (with --count: that many): type 1 in, type <pid> back
    #[arg(long, conflicts_with = "mtype")]
    serve: bool,
    /// After each message, print on stderr how many messages the queue held before and after (IPC_STAT)
    #[arg(long)]
    show_count: bool,
    /// Fail if the queue does not exist yet, instead of creating it
    #[arg(long)]
    no_create: bool,
    /// Remove the queue of the key (e.g. left by a process killed with SIGKILL) and exit
    #[arg(long, conflicts_with_all = ["mtype", "count", "keep", "serve", "no_create"])]
    clean: bool,
    /// Use a POSIX message queue (mq_open, /msgq-ipc-<key>) instead of System V
    #[arg(long, conflicts_with_all = ["serve", "mtype"])]
    posix: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    common::error::main("reader", || {
        let key = cli.key.key;
        if cli.clean {
            common::diag!("reader: {}", msgq_ipc::clean(key, cli.posix)?);
            return Ok(());
        }
        common::stop::install()?;
        common::gate::arm()?;
        let mut queue = match (cli.posix, cli.no_create) {
            (true, no_create) => Queue::Posix(PosixQueue::open(key, cli.mode.mode, !no_create)?.0),
            (false, true) => Queue::existing(key)?,
            (false, false) => Queue::get_or_create(key, cli.mode.mode)?.0,
        };
        let handle = queue.handle();
        // Stopped while waiting: the same clean-up as a normal end.
        let _cleanup = (!cli.keep).then(|| {
            let h = handle.clone();
            on_stop(move || {
                // The main thread may hold a message it has not printed yet: let it print it first.
                common::gate::stop_main(std::time::Duration::from_secs(2));
                msgq_ipc::stop_with(|finish| {
                    if let Err(e) = finish(&h, "reader") {
                        common::diag!("reader: {e}");
                    }
                })
            })
        });
        let mut out = common::out::stdout();
        let received = if cli.serve { serve(&cli, &mut queue, &mut out) } else { receive(&cli, &mut queue, &mut out) };
        common::gate::safe_point();
        let finished = if cli.keep { Ok(()) } else { finish(&handle, "reader") };
        common::gate::done();
        received.and(finished)
    })
}

fn receive(cli: &Cli, queue: &mut Queue, out: &mut Out) -> Result<()> {
    let handle = queue.handle();
    let name = handle.name();
    let wanted = if cli.posix { "a message".to_string() } else { msgq_ipc::type_range(cli.mtype) };
    let peer = Peer { package: "msgq-ipc", bin: "writer", args: cli.key.peer_args(cli.posix) };
    let h = handle.clone();
    let mut ready = Ready::waiting("reader", format!("on {name} for {wanted}"), peer)
        .looking(move || Seen { holds: msgq_ipc::held_by_others(&h), peer: PeerState::Unknown });
    for _ in 0..cli.recv.count.unwrap_or(1) {
        let before = if cli.show_count { handle.remaining()? } else { 0 };
        let (_, msg) = queue.recv(cli.mtype, &mut || ready.show())?;
        out.line(c_text(&msg))?;
        if cli.show_count {
            // M4: msgrcv takes the message off the queue (the note says it "pushes").
            common::diag!(
                "reader: msgrcv took one message: {name} held {before} before and {} after (IPC_STAT msg_qnum)",
                handle.remaining()?
            );
        }
    }
    Ok(())
}

fn serve(cli: &Cli, queue: &mut Queue, out: &mut Out) -> Result<()> {
    let name = queue.handle().name();
    let key = cli.key.peer_args(false);
    let args = if key.is_empty() { "--request hello".to_string() } else { format!("{key} --request hello") };
    let peer = Peer { package: "msgq-ipc", bin: "writer", args };
    let mut ready = Ready::waiting("reader", format!("for requests (type {}) on {name}", serve::REQUEST_TYPE), peer);
    let mut served = 0;
    while cli.recv.count.is_none_or(|c| served < c) {
        let (_, text) = queue.recv(serve::REQUEST_TYPE, &mut || ready.show())?;
        match serve::parse_request(c_text(&text)) {
            Ok((pid, msg)) => {
                out.raw(format!("request from pid {pid}: ").as_bytes())?;
                out.line(msg)?;
                // IPC_NOWAIT, and checked first: no client can stop or block the server.
                let reply = serve::reply(msg);
                let dropped = match serve::undeliverable(pid, &reply, queue.max_text()) {
                    Some(why) => Some(why),
                    None => match queue.send(pid, &reply, false, &mut || {}) {
                        Ok(()) => None,
                        Err(e) if e.errno() == Some(nix::errno::Errno::EIDRM) => return Err(e),
                        Err(e) => Some(e.to_string()),
                    },
                };
                if let Some(why) = dropped {
                    common::diag!("reader: dropped the reply to pid {pid}: {why}");
                }
            }
            Err(Error::Failed(why)) => common::diag!("reader: skipped {why}"),
            Err(e) => return Err(e),
        }
        served += 1;
    }
    if let msgq_ipc::Handle::SysV { id, .. } = queue.handle() {
        serve::wait_for_replies_taken(id, std::time::Duration::from_secs(1));
    }
    Ok(())
}
