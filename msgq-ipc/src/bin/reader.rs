//! Receives messages from a message queue, the note's process B (msgget + msgrcv).

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use common::cleanup::{AtEnd, Cleanup};
use common::cli::{KeyArgs, ModeArgs, ReceiveArgs, TraceArgs};
use common::out::Out;
use common::{PeerState, Result, Seen};
use msgq_ipc::{Flavor, Handle, Queue, c_text, finish, serve};

const ME: common::Program = common::program!();

/// Message queue reader: msgget (creating the queue, 0600, if the writer has not yet), then msgrcv
/// of one message of type T per line printed, --count of them. At the end it removes the queue if
/// it is empty; messages beyond --count stay in it for the next reader (one line says so).
#[derive(Parser)]
#[command(name = common::command_name!(), bin_name = env!("CARGO_BIN_NAME"), version, after_help = common::cli::EXIT_STATUSES)]
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
    /// Answer requests of `writer --request` (help: msgq_ipc::contract_help)
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
    /// Use a POSIX message queue instead of System V (help: msgq_ipc::contract_help)
    #[arg(long, conflicts_with_all = ["serve", "mtype"])]
    posix: bool,
    #[command(flatten)]
    trace: TraceArgs,
}

fn main() -> ExitCode {
    // The help of --posix, --serve and --request tells the contract as the library has it.
    let cli: Cli = common::cli::parse_adjusted(msgq_ipc::contract_help);
    cli.trace.start(ME.bin);
    common::error::main(ME.bin, || {
        let key = cli.key.key;
        if cli.clean {
            common::diag!("{ME}: {}", msgq_ipc::clean(key, Flavor::posix_if(cli.posix))?);
            return Ok(());
        }
        common::stop::install()?;
        common::gate::arm()?;
        let flavor = Flavor::posix_if(cli.posix);
        // Stopped while waiting: the same clean-up as a normal end (with --keep, none). A message
        // the main thread holds is printed whole first; the 2 s are for the rest. Registered
        // before the queue is made: a stop in between would leave it.
        let cleanup = Cleanup::register(AtEnd::keep_if(cli.keep), Duration::from_secs(2), |h: Handle| {
            msgq_ipc::stop_with(|finish| {
                if let Err(e) = finish(&h, ME.bin) {
                    common::diag!("{ME}: {e}");
                }
            })
        });
        let mut queue = if cli.no_create {
            Queue::existing_of(flavor, key, cli.mode.mode)?
        } else {
            Queue::get_or_create_of(flavor, key, cli.mode.mode)?.0
        };
        cleanup.made(queue.handle());
        let mut out = common::out::stdout();
        let received = if cli.serve {
            serve::server(ME, &mut queue, &cli.key, cli.recv.count, &mut out)
        } else {
            receive(&cli, &mut queue, &mut out)
        };
        let finished = cleanup.finish(|h| finish(h, ME.bin));
        received.and(finished)
    })
}

fn receive(cli: &Cli, queue: &mut Queue, out: &mut Out) -> Result<()> {
    let handle = queue.handle();
    let name = handle.name();
    let wanted = if cli.posix { "a message".to_string() } else { msgq_ipc::type_range(cli.mtype) };
    let h = handle.clone();
    let mut ready = ME
        .waiting(format!("on {name} for {wanted}"))
        .peer_args(cli.key.peer_args(cli.posix.then_some("--posix")))
        .looking(move || Seen { holds: msgq_ipc::held_by_others(&h), peer: PeerState::Unknown });
    for _ in 0..cli.recv.count.unwrap_or(1) {
        let before = if cli.show_count { handle.remaining()? } else { 0 };
        let (_, msg) = queue.recv(cli.mtype, &mut || ready.show())?;
        // Taken: a stop now waits until it is printed whole (common::gate).
        let held = common::gate::hold(c_text(&msg));
        out.line(c_text(&msg))?;
        drop(held);
        if cli.show_count {
            // M4: msgrcv takes the message off the queue (the note says it "pushes").
            common::diag!(
                "{ME}: msgrcv took one message: {name} held {before} before and {} after (IPC_STAT msg_qnum)",
                handle.remaining()?
            );
        }
    }
    Ok(())
}
