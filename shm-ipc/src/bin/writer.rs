//! Writes a message into the shared segment, the note's shmget + shmat + strcpy.

use std::process::ExitCode;

use clap::Parser;
use common::cli::{KeyArgs, ModeArgs, SendArgs};
use common::{Error, Peer, Ready, Seen};
use shm_ipc::{Channel, DEFAULT_MESSAGE, SIZE, StopEnd, Variant, check_fits, posix_help, report_end};

// The help is formatted at run time from the pair's contract (SIZE), so it follows a change of it.
#[derive(Parser)]
#[command(name = common::command_name!("writer"), bin_name = "writer", version, about = about())]
struct Cli {
    #[command(flatten)]
    key: KeyArgs,
    #[command(flatten)]
    mode: ModeArgs,
    #[arg(long, help = posix_help())]
    posix: bool,
    #[command(flatten)]
    send: SendArgs,
}

/// What `--help` says of the writer.
fn about() -> String {
    format!(
        "Shared memory writer: shmget(key, {SIZE}, IPC_CREAT|0600), shmat, copy the text and its NUL, and post a semaphore that tells the reader it is ready. With several messages (or --repeat), each waits until the reader has taken the last one"
    )
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    common::error::main("writer", || {
        cli.send.each(DEFAULT_MESSAGE).try_for_each(|t| check_fits(&t))?; // before any system call
        common::stop::install()?;
        // Registered first: a stop while opening ends what the open made too. Stopped, the writer
        // removes the objects if nothing of its waits in them and nobody else uses them.
        let stop_end = StopEnd::register("writer", true);
        let mut chan = Channel::writer(cli.key.key, cli.mode.mode, Variant::from_posix_flag(cli.posix), &mut || {
            common::diag!("writer: waiting for another writer to give the new shared memory its size")
        })?;
        stop_end.set(&chan);
        let objects = chan.objects();
        let peer = Peer { package: "shm-ipc", bin: "reader", args: cli.key.peer_args(cli.posix) };
        let what = format!("for the reader to take the last message from {}", objects.name());
        let o = objects.clone();
        let mut ready =
            Ready::waiting("writer", what, peer).looking(move || Seen { holds: None, peer: o.peer_state("reader") });
        let total = cli.send.each(DEFAULT_MESSAGE).count();
        let mut sent = 0;
        let sending = cli.send.each(DEFAULT_MESSAGE).try_for_each(|text| {
            chan.send(&text, &mut || ready.show())?;
            sent += 1;
            Ok(())
        });
        // A failed send names what was lost: the user must never believe it was delivered.
        let sending = sending.map_err(|e| match e {
            Error::Usage(_) | Error::StdoutClosed => e,
            e => Error::Failed(format!(
                "{e}; message {} of {total} was not delivered (the {sent} before it were written)",
                sent + 1
            )),
        });
        // What it wrote is the readers'; the last one out removes the objects.
        let ended = report_end("writer", &objects, true, false, chan.finish());
        sending.and(ended)
    })
}
