//! Writes a message into the shared segment, the note's shmget + shmat + strcpy.

use std::process::ExitCode;

use clap::Parser;
use common::cli::{KeyArgs, ModeArgs, SendArgs};
use shm_ipc::{Channel, DEFAULT_MESSAGE, check_fits};

/// Shared memory writer: shmget(key, 4096, IPC_CREAT|0600), shmat, copy the text and its NUL,
/// and post a semaphore that tells the reader it is ready. With several messages (or --repeat),
/// each waits until the reader has taken the last one.
#[derive(Parser)]
#[command(name = common::command_name!("writer"), bin_name = "writer", version)]
struct Cli {
    #[command(flatten)]
    key: KeyArgs,
    #[command(flatten)]
    mode: ModeArgs,
    /// Use POSIX shared memory (shm_open /shm-ipc-<key>) and named semaphores instead of System V
    #[arg(long)]
    posix: bool,
    #[command(flatten)]
    send: SendArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    common::error::main("writer", || {
        cli.send.each(DEFAULT_MESSAGE).try_for_each(|t| check_fits(&t))?; // before any system call
        common::stop::install()?;
        let mut chan = Channel::open(cli.key.key, cli.mode.mode, cli.posix, true, true)?;
        let (name, peer) = (chan.objects().name(), cli.key.peer_args(cli.posix));
        let mut ready = common::Ready::new(
            "writer",
            &format!("for the reader to take the last message from {name}"),
            "shm-ipc",
            "reader",
            &peer,
        );
        // The writer removes nothing: what it wrote is the reader's, and the reader removes it.
        cli.send.each(DEFAULT_MESSAGE).try_for_each(|text| chan.send(&text, &mut || ready.show()))
    })
}
