//! Sends messages to a message queue, the note's process A (msgget + msgsnd with IPC_NOWAIT).

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use common::cleanup::{AtEnd, Cleanup};
use common::cli::{KeyArgs, ModeArgs, SendArgs, TraceArgs};
use msgq_ipc::{DEFAULT_MESSAGE, Flavor, Handle, Origin, Queue, WhenFull, check_fits, serve, waiting_for_room};

const ME: common::Program = common::program!();

/// Message queue writer: msgget(key, IPC_CREAT|0600), then msgsnd of each message (its text and a
/// NUL, as the C sends strlen+1) with IPC_NOWAIT.
#[derive(Parser)]
#[command(name = common::command_name!(), bin_name = env!("CARGO_BIN_NAME"), version, after_help = common::cli::EXIT_STATUSES)]
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
    /// Send each MESSAGE as a request to a `reader --serve` (help: msgq_ipc::contract_help)
    #[arg(long, conflicts_with_all = ["mtype", "wait"])]
    request: bool,
    /// Use a POSIX message queue instead of System V (help: msgq_ipc::contract_help)
    #[arg(long, conflicts_with_all = ["request", "mtype"])]
    posix: bool,
    #[command(flatten)]
    send: SendArgs,
    #[command(flatten)]
    trace: TraceArgs,
}

fn main() -> ExitCode {
    // The help of --posix, --serve and --request tells the contract as the library has it.
    let cli: Cli =
        common::cli::parse_adjusted(|c| common::cli::default_message(msgq_ipc::contract_help(c), DEFAULT_MESSAGE));
    cli.trace.start(ME.bin);
    common::error::main(ME.bin, || {
        let flavor = Flavor::posix_if(cli.posix);
        // Refused before any system call, so a bad message creates nothing. A request's reply
        // carries "re: " before the message.
        let prefix = if cli.request { serve::reply(b"").len() } else { 0 };
        let texts: Vec<std::borrow::Cow<[u8]>> = cli.send.each(DEFAULT_MESSAGE).collect();
        check_fits(flavor, prefix, &texts)?;
        common::stop::install()?;
        common::gate::arm()?;
        let peer = cli.key.peer_args(cli.posix.then_some("--posix"));
        if cli.request {
            return serve::client(ME, cli.key.key, cli.mode.mode, &texts, &peer);
        }
        // Registered before the queue is made (a stop in between would leave it): a stop parks the
        // main thread before its next send, then removes a queue it made unless messages wait in it.
        let cleanup = Cleanup::register(AtEnd::Remove, Duration::from_secs(2), |h: Handle| {
            msgq_ipc::stop_with(|finish| {
                if let Err(e) = finish(&h, ME.bin) {
                    common::diag!("{ME}: {e}");
                }
            })
        });
        let (mut queue, origin) = Queue::get_or_create_of(flavor, cli.key.key, cli.mode.mode)?;
        if origin == Origin::Made {
            cleanup.made(queue.handle());
        }
        queue.recreate_if_removed();
        let mut room = waiting_for_room(ME, &queue, &peer);
        texts.iter().try_for_each(|t| queue.send(cli.mtype, t, WhenFull::wait_if(cli.wait), &mut || room.show()))?;
        // The queue is the reader's now: nothing to remove at a normal end. A queue does not tell
        // whether a reader is about to take what it holds: "if none runs".
        let handle = queue.handle();
        let held = handle.remaining().unwrap_or(0);
        // The queue may hold other types too (another writer's): a SysV reader takes them all,
        // oldest first, with --type 0.
        let any_type = !cli.posix && (cli.mtype != 1 || held > 1);
        let read_args = if any_type { "--type 0" } else { "" };
        if let Some(line) = ME.left_waiting(held, &format!("in {}", handle.name()), &peer, read_args, None) {
            common::diag!("{line}");
        }
        cleanup.finish(|_| Ok(()))
    })
}
