//! Prints each line read from stdin or from a FIFO (note section 2).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use common::cli::{ModeArgs, ReceiveArgs};
use common::{PeerState, Result, Seen};
use pipe_ipc::{copy_lines, fifo};

const ME: common::Program = common::program!();

/// Pipe reader: prints each line of stdin until end of file (`writer | reader`), or with --fifo
/// of a named pipe, which it makes if missing. With --count it stops early; lines the writer sends
/// beyond that wait in the FIFO for the next reader, and the last one out removes it. A line is
/// printed only whole: bytes left without a newline at end of file (a writer that died in the
/// middle of a line) are dropped, said on stderr, and the reader exits 1.
#[derive(Parser)]
#[command(name = common::command_name!(), bin_name = env!("CARGO_BIN_NAME"), version, after_help = common::cli::EXIT_STATUSES)]
struct Cli {
    /// Read a named pipe (FIFO) instead of stdin
    #[arg(long)]
    fifo: bool,
    /// With --fifo: where the FIFO is [default: $XDG_RUNTIME_DIR/pipe-ipc.fifo, else a 0700 directory of yours under the temp dir]
    #[arg(long, value_name = "PATH", requires = "fifo")]
    path: Option<PathBuf>,
    #[command(flatten)]
    mode: ModeArgs,
    #[command(flatten)]
    recv: ReceiveArgs,
    /// With --fifo: remove a FIFO left by a killed process, and exit
    #[arg(long, requires = "fifo", conflicts_with = "count")]
    clean: bool,
    /// Taken only to say where a path goes (`--fifo /tmp/x` instead of `--fifo --path /tmp/x`)
    #[arg(hide = true)]
    stray: Option<PathBuf>,
    #[command(flatten)]
    trace: common::cli::TraceArgs,
}

fn main() -> ExitCode {
    let cli: Cli = common::cli::parse_adjusted(|c| {
        c.mut_arg("mode", |a| a.requires("fifo")).mut_arg("count", |a| {
            // A pipe has an end (every writer closed), so a pipe reader reads to it by default.
            a.help("Stop after N lines; with --fifo, what the writer sends beyond them waits for the next reader [default: all, to end of file]")
        })
    });
    cli.trace.start(ME.bin);
    common::error::main(ME.bin, || {
        if let Some(p) = &cli.stray {
            return Err(common::Error::Usage(format!(
                "unexpected argument '{}': a FIFO's path goes with --path, e.g. reader --fifo --path {}",
                p.display(),
                p.display()
            )));
        }
        let mut out = common::out::stdout();
        if !cli.fifo {
            let stdin = std::io::stdin();
            if stdin.is_terminal() {
                common::diag!(
                    "{ME}: reading stdin until end of file (pipe the writer in: \
                     cargo run -q -p pipe-ipc --bin writer | cargo run -q -p pipe-ipc --bin reader)"
                );
            }
            // Nothing to remove, but a stop must not cut a line being printed: it waits for it
            // (common::gate), and a second stop gives it up.
            common::stop::install()?;
            let _whole = common::stop::on_stop(common::gate::wait_while_held);
            // Read as std's stdin would (8 KiB at a time), through a traced read.
            let mut stdin = std::io::BufReader::with_capacity(8192, pipe_ipc::sys::Stdin);
            return copy_lines(&mut stdin, &mut out, cli.recv.count, "stdin").map(drop);
        }
        let path = cli.path.clone().map_or_else(fifo::default_path, Ok)?;
        if cli.clean {
            common::diag!("{ME}: {}", fifo::clean(&path)?);
            return Ok(());
        }
        from_fifo(&path, cli.path.as_deref(), cli.mode.mode, &cli.recv, &mut out)
    })
}

fn from_fifo(
    path: &Path,
    given: Option<&Path>,
    mode: u32,
    recv: &ReceiveArgs,
    out: &mut common::out::Out,
) -> Result<()> {
    common::stop::install()?;
    let mut ready = ME.waiting(format!("for a line on FIFO {}", path.display())).peer_args(pipe_ipc::peer_args(given));
    let mut reader = fifo::Reader::open(path, mode)?;
    let mut printed = 0;
    let result = loop {
        if recv.count.is_some_and(|c| printed >= c) {
            break Ok(());
        }
        // The ready line is for a reader with nothing yet, not for a pause between lines.
        let mut on_wait = |others: &dyn Fn() -> bool| {
            if printed == 0 && !ready.shown() {
                let peer = if others() {
                    PeerState::Present("another process holds the FIFO: a writer, or a reader before this one".into())
                } else {
                    PeerState::Absent
                };
                ready.show_seen(Seen { holds: None, peer })
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
        common::diag!("{ME}: {line}");
    }
    result
}
