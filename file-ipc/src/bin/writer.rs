//! Sends each message as one file at the agreed path (note section 1).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use common::cli::{ModeArgs, SendArgs};
use common::{PeerState, Seen};
use file_ipc::{DEFAULT_MESSAGE, Writer, default_path};

const ME: common::Program = common::program!();

/// File IPC writer: each message becomes one whole file at PATH (written beside it, then renamed
/// onto it); waits while an unread message is still there, so nothing is overwritten.
#[derive(Parser)]
#[command(name = common::command_name!(), bin_name = env!("CARGO_BIN_NAME"), version, after_help = common::cli::EXIT_STATUSES)]
struct Cli {
    /// Where the message file goes [default: $XDG_RUNTIME_DIR/file-ipc.msg, else a 0700 directory of yours under the temp dir]
    #[arg(long, value_name = "PATH")]
    path: Option<PathBuf>,
    #[command(flatten)]
    mode: ModeArgs,
    #[command(flatten)]
    send: SendArgs,
    #[command(flatten)]
    trace: common::cli::TraceArgs,
}

fn main() -> ExitCode {
    let cli: Cli = common::cli::parse_adjusted(|c| common::cli::default_message(c, DEFAULT_MESSAGE));
    cli.trace.start(ME.bin);
    common::error::main(ME.bin, || {
        common::stop::install()?;
        let path = cli.path.clone().map_or_else(default_path, Ok)?;
        let mut writer = Writer::new(&path, cli.mode.mode)?;
        // The message in place is the one it waits to see taken; a file does not tell who reads.
        let mut ready = ME
            .waiting(format!("for {} to be read", path.display()))
            .peer_args(common::paths::peer_args("--path", cli.path.as_deref()))
            .looking(|| Seen { holds: Some("the last message waits there".into()), peer: PeerState::Unknown });
        for msg in cli.send.each(DEFAULT_MESSAGE) {
            writer.send(&msg, &mut || ready.show())?;
        }
        // A file does not tell whether a reader is about to take it: "if none runs".
        let place = format!("at {}", path.display());
        let args = common::paths::peer_args("--path", cli.path.as_deref());
        if let Some(line) = ME.left_waiting(writer.last_waits().into(), &place, &args, "", None) {
            common::diag!("{line}");
        }
        Ok(())
    })
}
