//! Prints the message in the shared segment once the writer says it is ready.

use std::process::ExitCode;

use clap::Parser;
use common::cleanup::{AtEnd, Cleanup};
use common::cli::{KeyArgs, ModeArgs, ReceiveArgs, TraceArgs};
use common::out::Out;
use common::{Result, Seen};
use shm_ipc::{
    Channel, Create, End, Ender, Objects, PosixChannel, Side, SysvChannel, Variant, clean, legacy_message, opened,
    posix_help, remove_segment, report_end, stop_guard,
};

const ME: common::Program = common::program!();

/// Shared memory reader: waits until the writer has posted "ready" (System V: in semop; --posix: in
/// futex on the object's state word; no polling), copies the string out, prints it, --count times.
/// The last process out removes the objects; what the writer sends beyond --count waits in them
/// for the next reader (one line says so).
#[derive(Parser)]
#[command(name = common::command_name!(), bin_name = env!("CARGO_BIN_NAME"), version, after_help = common::cli::EXIT_STATUSES)]
struct Cli {
    #[command(flatten)]
    key: KeyArgs,
    #[command(flatten)]
    mode: ModeArgs,
    #[command(flatten)]
    recv: ReceiveArgs,
    /// Leave the segment and semaphores in place at the end
    #[arg(long)]
    keep: bool,
    /// Fail if the segment does not exist yet, instead of creating it and waiting
    #[arg(long)]
    no_create: bool,
    /// Remove the segment and semaphores of the key (e.g. left after a SIGKILL) and exit
    #[arg(long, conflicts_with_all = ["count", "keep", "no_create"])]
    clean: bool,
    #[arg(long, help = posix_help())]
    posix: bool,
    #[command(flatten)]
    trace: TraceArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    cli.trace.start(ME.bin);
    common::error::main(ME.bin, || {
        let key = cli.key.key;
        let variant = Variant::from_posix_flag(cli.posix);
        if cli.clean {
            common::diag!("{ME}: {}", clean(key, variant)?);
            return Ok(());
        }
        common::stop::install()?;
        let mut out = common::out::stdout();
        let mut left = cli.recv.count.unwrap_or(1);
        // The note's C writer posts no semaphore: its finished message is read at once.
        if variant == Variant::SysV
            && let Some(text) = legacy_message(key)?
        {
            out.line(&text)?;
            if !cli.keep {
                remove_segment(key)?;
            }
            left -= 1;
            if left == 0 {
                return Ok(());
            }
        }
        // Registered first: a stop while opening ends what the open made too.
        let cleanup = stop_guard(ME.bin, Side::Reader, AtEnd::keep_if(cli.keep));
        let create = if cli.no_create { Create::Never } else { Create::IfMissing };
        let mode = cli.mode.mode;
        if cli.posix {
            print_all(&cli, &cleanup, out, left, opened(PosixChannel::open(key, mode, create))?)
        } else {
            // The note's shmget and shmat.
            print_all(&cli, &cleanup, out, left, opened(SysvChannel::open(key, mode, Side::Reader, create))?)
        }
    })
}

/// Takes and prints `left` messages (the note's printf, in `out.line`), then ends the run.
fn print_all(
    cli: &Cli,
    cleanup: &Cleanup<(Objects, Ender)>,
    mut out: Out,
    left: u64,
    mut chan: impl Channel,
) -> Result<()> {
    cleanup.made((chan.objects(), chan.ender()));
    let objects = chan.objects();
    let what = format!("on {} for the writer's {}", objects.name(), objects.ready_semaphore());
    let o = objects.clone();
    let mut ready = ME
        .waiting(what)
        .peer_args(cli.key.peer_args(cli.posix.then_some("--posix")))
        .looking(move || Seen { holds: None, peer: o.peer_state(ME.counterpart()) });
    let received = (0..left).try_for_each(|_| {
        let msg = chan.recv(&mut || ready.show())?;
        let _held = common::gate::hold(&msg); // a stop waits until it is printed whole
        out.line(&msg)
    });
    // shmdt, and IPC_RMID if this is the last one out (also after a failure: nobody may be left).
    let ended = cleanup.finish(|(o, ender)| report_end(ME.bin, o, Side::Reader, End::Finished, ender.finish()));
    drop(chan); // shmdt, or munmap
    received.and(ended)
}
