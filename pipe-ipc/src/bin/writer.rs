//! Writes messages, one per line, to stdout or to a FIFO (note section 2).

use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use common::cli::{ModeArgs, SendArgs};
use common::{Error, PeerState, Result, Seen};
use pipe_ipc::{DEFAULT_MESSAGE, fifo, write_lines};

const ME: common::Program = common::program!();

/// Pipe writer: writes each message on its own line to stdout, for `writer | reader`, or with
/// --fifo to a named pipe that a reader in another terminal opens. With --fifo it ends once a
/// reader has taken every line; lines a reader leaves (--count) wait for the next one.
#[derive(Parser)]
#[command(name = common::command_name!(), bin_name = env!("CARGO_BIN_NAME"), version, after_help = common::cli::EXIT_STATUSES)]
struct Cli {
    /// Write to a named pipe (FIFO) instead of stdout, made 0600 if missing
    #[arg(long)]
    fifo: bool,
    /// With --fifo: where the FIFO is [default: $XDG_RUNTIME_DIR/pipe-ipc.fifo, else a 0700 directory of yours under the temp dir]
    #[arg(long, value_name = "PATH", requires = "fifo")]
    path: Option<PathBuf>,
    #[command(flatten)]
    mode: ModeArgs,
    #[command(flatten)]
    send: SendArgs,
    #[command(flatten)]
    trace: common::cli::TraceArgs,
}

fn main() -> ExitCode {
    let cli: Cli = common::cli::parse_adjusted(|c| {
        common::cli::default_message(c.mut_arg("mode", |a| a.requires("fifo")), DEFAULT_MESSAGE)
    });
    cli.trace.start(ME.bin);
    common::error::main(ME.bin, || {
        if !cli.fifo {
            let closed = |e: std::io::Error| match e.kind() {
                std::io::ErrorKind::BrokenPipe => Error::StdoutClosed,
                _ => Error::io("write", "stdout", e),
            };
            // Lines go out as std's stdout would send them (one write each), through a traced write.
            let mut stdout = std::io::LineWriter::new(pipe_ipc::sys::Stdout);
            return write_lines(&mut stdout, cli.send.each(DEFAULT_MESSAGE), closed);
        }
        if cli.path.is_none()
            && let Some(first) = cli.send.messages.first()
            && std::fs::metadata(first).is_ok_and(|m| m.file_type().is_fifo())
        {
            // `--fifo /tmp/x hello`: the path would be sent as a message to the default FIFO.
            let p = Path::new(first).display();
            return Err(Error::Usage(format!(
                "'{p}' is a FIFO, not a message: a FIFO's path goes with --path, e.g. writer --fifo --path {p} ..."
            )));
        }
        let path = cli.path.clone().map_or_else(fifo::default_path, Ok)?;
        to_fifo(&path, cli.path.as_deref(), cli.mode.mode, &cli.send)
    })
}

fn to_fifo(path: &Path, given: Option<&Path>, mode: u32, send: &SendArgs) -> Result<()> {
    if let Some((i, len)) = too_long(send) {
        return Err(Error::Usage(format!(
            "message {i} is {len} bytes long{}: a FIFO line may be at most {} bytes (the largest pipe, \
             /proc/sys/fs/pipe-max-size, less two pages), so that a reader takes each line whole",
            if send.numbered { " with its number" } else { "" },
            fifo::max_line()
        )));
    }
    common::stop::install()?;
    // Shown on ENXIO: a non-blocking open for writing fails so exactly when no reader has it open.
    let mut ready = ME
        .waiting(format!("for a reader on FIFO {}", path.display()))
        .peer_args(pipe_ipc::peer_args(given))
        .looking(|| Seen { holds: None, peer: PeerState::Absent });
    let mut writer = fifo::Writer::open(path, mode, &mut || ready.show())?;
    for msg in send.each(DEFAULT_MESSAGE) {
        writer.send(&msg)?;
    }
    // Success only once the reader has taken every byte: unread data dies with the last holder.
    writer.finish()
}

/// The first message (counted from 1 in the list given) whose line would not fit a FIFO's pipe
/// whole, and its length with its number (`--numbered`, at most as long as the last one's).
fn too_long(send: &SendArgs) -> Option<(usize, usize)> {
    let lens: Vec<usize> = if send.messages.is_empty() {
        vec![DEFAULT_MESSAGE.len()]
    } else {
        send.messages.iter().map(|m| m.len()).collect()
    };
    let number = if send.numbered {
        let last = send.repeat.saturating_mul(lens.len() as u64).saturating_sub(1);
        last.to_string().len() + 1
    } else {
        0
    };
    lens.iter().enumerate().map(|(i, len)| (i + 1, len + number)).find(|&(_, len)| len > fifo::max_line())
}
