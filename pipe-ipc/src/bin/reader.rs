//! Prints each line read from stdin or from a FIFO (note section 2).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use common::Result;
use common::cli::{ModeArgs, ReceiveArgs};
use pipe_ipc::{copy_lines, fifo};

/// Pipe reader: prints each line of stdin until end of file (`writer | reader`), or with --fifo
/// of a named pipe, which it makes if missing and removes when done.
#[derive(Parser)]
#[command(name = common::command_name!("reader"), bin_name = "reader", version)]
struct Cli {
    /// Read a named pipe instead of stdin [default PATH: $XDG_RUNTIME_DIR/pipe-ipc.fifo, else a 0700 directory of yours under the temp dir]
    #[arg(long, value_name = "PATH", num_args = 0..=1, require_equals = true)]
    fifo: Option<Option<PathBuf>>,
    #[command(flatten)]
    mode: ModeArgs,
    #[command(flatten)]
    recv: ReceiveArgs,
    /// With --fifo: remove a FIFO left by a killed process, and exit
    #[arg(long, requires = "fifo", conflicts_with = "count")]
    clean: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    common::error::main("reader", || {
        let mut out = common::out::stdout();
        match &cli.fifo {
            None => {
                let stdin = std::io::stdin();
                if stdin.is_terminal() {
                    eprintln!(
                        "reader: reading stdin until end of file (pipe the writer in: \
                         cargo run -q -p pipe-ipc --bin writer | cargo run -q -p pipe-ipc --bin reader)"
                    );
                }
                copy_lines(&mut stdin.lock(), &mut out, cli.recv.count, "stdin").map(drop)
            }
            Some(path) if cli.clean => {
                let path = path.clone().map_or_else(fifo::default_path, Ok)?;
                eprintln!("reader: {}", fifo::clean(&path)?);
                Ok(())
            }
            Some(path) => from_fifo(path.as_deref(), cli.mode.mode, &cli.recv, &mut out),
        }
    })
}

fn from_fifo(given: Option<&Path>, mode: u32, recv: &ReceiveArgs, out: &mut common::out::Out) -> Result<()> {
    common::stop::install()?;
    let path = given.map_or_else(fifo::default_path, |p| Ok(p.to_path_buf()))?;
    let peer = format!("--fifo{}", given.map(|p| format!("={}", p.display())).unwrap_or_default());
    let mut ready =
        common::Ready::new("reader", &format!("for a writer on FIFO {}", path.display()), "pipe-ipc", "writer", &peer);
    let mut reader = fifo::Reader::open(&path, mode)?;
    let mut printed = 0;
    let result = loop {
        if recv.count.is_some_and(|c| printed >= c) {
            break Ok(());
        }
        // The ready line is for a reader with nothing yet, not for a pause between lines.
        let mut on_wait = || {
            if printed == 0 {
                ready.show()
            }
        };
        match reader.print_next(out, &mut on_wait) {
            Ok(true) => printed += 1,
            Ok(false) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    // Leave by the last-one-out rule even after an error, so nothing is left behind needlessly.
    if let Some(line) = reader.leave() {
        eprintln!("reader: {line}");
    }
    result
}
