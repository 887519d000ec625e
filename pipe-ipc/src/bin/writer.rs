//! Writes messages, one per line, to stdout or to a FIFO (note section 2).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use common::cli::{ModeArgs, SendArgs};
use common::{Error, Result};
use pipe_ipc::{DEFAULT_MESSAGE, fifo, write_lines};

/// Pipe writer: writes each message on its own line to stdout, for `writer | reader`, or with
/// --fifo to a named pipe that a reader in another terminal opens.
#[derive(Parser)]
#[command(name = common::command_name!("writer"), bin_name = "writer", version)]
struct Cli {
    /// Write to a named pipe instead of stdout, made 0600 if missing [default PATH: $XDG_RUNTIME_DIR/pipe-ipc.fifo, else a 0700 directory of yours under the temp dir]
    #[arg(long, value_name = "PATH", num_args = 0..=1, require_equals = true)]
    fifo: Option<Option<PathBuf>>,
    #[command(flatten)]
    mode: ModeArgs,
    #[command(flatten)]
    send: SendArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    common::error::main("writer", || match &cli.fifo {
        None => {
            let closed = |e: std::io::Error| match e.kind() {
                std::io::ErrorKind::BrokenPipe => Error::StdoutClosed,
                _ => Error::io("write", "stdout", e),
            };
            write_lines(&mut std::io::stdout().lock(), cli.send.each(DEFAULT_MESSAGE), closed)
        }
        Some(path) => to_fifo(path.as_deref(), cli.mode.mode, &cli.send),
    })
}

fn to_fifo(given: Option<&Path>, mode: u32, send: &SendArgs) -> Result<()> {
    common::stop::install()?;
    let path = given.map_or_else(fifo::default_path, |p| Ok(p.to_path_buf()))?;
    let peer = format!("--fifo{}", given.map(|p| format!("={}", p.display())).unwrap_or_default());
    let mut ready =
        common::Ready::new("writer", &format!("for a reader on FIFO {}", path.display()), "pipe-ipc", "reader", &peer);
    let mut writer = fifo::Writer::open(&path, mode, &mut || ready.show())?;
    for msg in send.each(DEFAULT_MESSAGE) {
        writer.send(&msg)?;
    }
    // Success only once the reader has taken every byte: unread data dies with the last holder.
    writer.finish()
}
