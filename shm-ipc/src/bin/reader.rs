//! Prints the message in the shared segment once the writer says it is ready.

use std::process::ExitCode;

use clap::Parser;
use common::cli::{KeyArgs, ModeArgs, ReceiveArgs};
use common::{Peer, Ready, Seen};
use shm_ipc::{Channel, Create, StopEnd, Variant, clean, legacy_message, posix_help, remove_segment, report_end};

/// Shared memory reader: waits in semop until the writer has posted "ready" (no polling), attaches
/// the segment read-only, prints the string, --count times, and detaches. The last process out
/// removes the segment and semaphores; what the writer sends beyond --count waits in them for the
/// next reader (one line says so).
#[derive(Parser)]
#[command(name = common::command_name!("reader"), bin_name = "reader", version)]
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    common::error::main("reader", || {
        let key = cli.key.key;
        let variant = Variant::from_posix_flag(cli.posix);
        if cli.clean {
            common::diag!("reader: {}", clean(key, variant)?);
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
        let stop_end = (!cli.keep).then(|| StopEnd::register("reader", false));
        let create = if cli.no_create { Create::Never } else { Create::IfMissing };
        let mut chan = Channel::reader(key, cli.mode.mode, variant, create, &mut || {
            common::diag!("reader: waiting for the writer to give the new shared memory its size")
        })?;
        if let Some(s) = &stop_end {
            s.set(&chan);
        }
        let objects = chan.objects();
        let peer = Peer { package: "shm-ipc", bin: "writer", args: cli.key.peer_args(cli.posix) };
        let what = format!("on {} for the writer's {}", objects.name(), objects.ready_semaphore());
        let o = objects.clone();
        let mut ready =
            Ready::waiting("reader", what, peer).looking(move || Seen { holds: None, peer: o.peer_state("writer") });
        let received = (0..left).try_for_each(|_| out.line(&chan.recv(&mut || ready.show())?));
        // shmdt, and IPC_RMID if this is the last one out (also after a failure: nobody may be left).
        let ended = if cli.keep { Ok(()) } else { report_end("reader", &objects, false, false, chan.finish()) };
        received.and(ended)
    })
}
