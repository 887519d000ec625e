//! Writes a message into the shared segment, the note's shmget + shmat + strcpy.

use std::process::ExitCode;

use clap::Parser;
use common::cleanup::{AtEnd, Cleanup};
use common::cli::{KeyArgs, ModeArgs, SendArgs, TraceArgs};
use common::{Error, Result, Seen};
use shm_ipc::{
    Channel, Create, DEFAULT_MESSAGE, End, Ender, Objects, Outcome, PosixChannel, SIZE, Side, SysvChannel, check_fits,
    opened, posix_help, report_end, stop_guard,
};

// The help is formatted at run time from the pair's contract (SIZE), so it follows a change of it.
const ME: common::Program = common::program!();

#[derive(Parser)]
#[command(name = common::command_name!(), bin_name = env!("CARGO_BIN_NAME"), version, about = about(), after_help = common::cli::EXIT_STATUSES)]
struct Cli {
    #[command(flatten)]
    key: KeyArgs,
    #[command(flatten)]
    mode: ModeArgs,
    #[arg(long, help = posix_help())]
    posix: bool,
    #[command(flatten)]
    trace: TraceArgs,
    #[command(flatten)]
    send: SendArgs,
}

/// What `--help` says of the writer.
fn about() -> String {
    format!(
        "Shared memory writer: shmget(key, {SIZE}, IPC_CREAT|0600), shmat, copy the text and its NUL, and post a semaphore that tells the reader it is ready (--posix: one object, shm_open, and a state word in it instead of the semaphores). With several messages (or --repeat), each waits until the reader has taken the last one"
    )
}

fn main() -> ExitCode {
    let cli: Cli = common::cli::parse_adjusted(|c| common::cli::default_message(c, DEFAULT_MESSAGE));
    cli.trace.start(ME.bin);
    common::error::main(ME.bin, || {
        cli.send.each(DEFAULT_MESSAGE).try_for_each(|t| check_fits(&t))?; // before any system call
        common::stop::install()?;
        // Registered first: a stop while opening ends what the open made too. Stopped, the writer
        // removes the objects if nothing of its waits in them and nobody else uses them.
        let cleanup = stop_guard(ME.bin, Side::Writer, AtEnd::Remove);
        let (key, mode) = (cli.key.key, cli.mode.mode);
        if cli.posix {
            send_all(&cli, &cleanup, opened(PosixChannel::open(key, mode, Create::IfMissing))?)
        } else {
            // The note's shmget and shmat.
            send_all(&cli, &cleanup, opened(SysvChannel::open(key, mode, Side::Writer, Create::IfMissing))?)
        }
    })
}

/// Sends every message (the note's strcpy, in `chan.send`), then ends the run.
fn send_all(cli: &Cli, cleanup: &Cleanup<(Objects, Ender)>, mut chan: impl Channel) -> Result<()> {
    cleanup.made((chan.objects(), chan.ender()));
    let objects = chan.objects();
    let what = format!("for the reader to take the last message from {}", objects.name());
    let o = objects.clone();
    let mut ready = ME
        .waiting(what)
        .peer_args(cli.key.peer_args(cli.posix.then_some("--posix")))
        .looking(move || Seen { holds: None, peer: o.peer_state(ME.counterpart()) });
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
    // A message left with nobody else attached waits for a reader that may never come: one line
    // says where, and how to read or remove it.
    let peer = cli.key.peer_args(cli.posix.then_some("--posix"));
    let ended = cleanup.finish(|(o, ender)| {
        let ended = ender.finish();
        if let Ok(Outcome::Left { pending, others }) = ended
            && let Some(line) = ME.left_waiting(pending, &format!("in {}", o.name()), &peer, "", Some(others > 0))
        {
            common::diag!("{line}");
        }
        report_end(ME.bin, o, Side::Writer, End::Finished, ended)
    });
    drop(chan); // shmdt, or munmap
    sending.and(ended)
}
