//! Waits for message files at the agreed path and prints each (note section 1).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use common::cli::ReceiveArgs;
use file_ipc::{IoTally, Reader, default_path, print_line};

const ME: common::Program = common::program!();

/// File IPC reader: waits (by inotify, not polling) for a message file at PATH, takes it (reads it
/// and removes it from PATH) and prints it on its own line, --count times; the writer's further
/// messages wait at PATH for the next reader (one line says so).
#[derive(Parser)]
#[command(name = common::command_name!(), bin_name = env!("CARGO_BIN_NAME"), version, after_help = common::cli::EXIT_STATUSES)]
struct Cli {
    /// Where the writer puts its message file [default: $XDG_RUNTIME_DIR/file-ipc.msg, else a 0700 directory of yours under the temp dir]
    #[arg(long, value_name = "PATH")]
    path: Option<PathBuf>,
    #[command(flatten)]
    recv: ReceiveArgs,
    /// At the end, print on stderr how many bytes reading the message files took and how many of
    /// them came from the storage device (/proc/self/io around each read), and the file system
    #[arg(long)]
    show_io: bool,
    /// Remove an unread message and files left by a killed writer or reader, and exit
    #[arg(long, conflicts_with = "count")]
    clean: bool,
    #[command(flatten)]
    trace: common::cli::TraceArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    cli.trace.start(ME.bin);
    common::error::main(ME.bin, || {
        let path = cli.path.clone().map_or_else(default_path, Ok)?;
        if cli.clean {
            common::diag!("{ME}: {}", file_ipc::clean(&path)?);
            return Ok(());
        }
        common::stop::install()?;
        let mut reader = Reader::new(&path)?;
        if cli.show_io {
            reader.io = Some(IoTally::default());
        }
        // A file does not tell whether a writer is about to write it: "if no writer runs".
        let mut ready = ME
            .waiting(format!("for a message file at {}", path.display()))
            .peer_args(common::paths::peer_args("--path", cli.path.as_deref()));
        for _ in 0..cli.recv.count.unwrap_or(1) {
            // Taken from the path, then printed; it goes back only if not a byte of it was printed.
            reader.recv_with(&mut || ready.show(), &mut print_line)?;
        }
        if let Some(line) = reader.pending() {
            common::diag!("{ME}: {line}");
        }
        if let Some(io) = &reader.io {
            common::diag!("{ME}: {}", io.report());
        }
        Ok(())
    })
}
