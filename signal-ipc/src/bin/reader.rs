//! The note's two SIGINT programs, done right, and a reader for any other signal.

use std::process::ExitCode;

use clap::Parser;
use common::Result;
use signal_ipc::{Sig, catch, parse_signal};

const ME: common::Program = common::program!();

/// Signal reader: waits for SIGINT (Ctrl-C or the writer) and prints "Catch SIGINT!". With
/// --ignore, SIGINT is ignored and SIGTERM ends it; with --signal, waits for any other signal and
/// prints who sent it and the value it carries.
#[derive(Parser)]
#[command(name = common::command_name!(), bin_name = env!("CARGO_BIN_NAME"), version, after_help = signal_ipc::READER_EXIT_STATUSES)]
struct Cli {
    /// Ignore SIGINT, as the note's second program does: Ctrl-C does nothing; SIGTERM ends it
    #[arg(long, conflicts_with = "signal")]
    ignore: bool,
    /// Wait for this signal instead and print its sender and value: a name with or without SIG
    /// (USR1, sigtstp, RTMIN+1) or a number
    #[arg(long, value_name = "NAME|NUMBER", value_parser = parse_signal)]
    signal: Option<Sig>,
    /// With --signal: how many to wait for (standard signals of one kind merge while pending: use a
    /// real-time one, RTMIN+1, to count several)
    #[arg(long, value_name = "N", default_value_t = 1, requires = "signal", value_parser = clap::value_parser!(u64).range(1..))]
    count: u64,
    #[command(flatten)]
    trace: common::cli::TraceArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    cli.trace.start(ME.bin);
    common::error::main(ME.bin, || -> Result<()> {
        let mut out = common::out::stdout();
        match (cli.ignore, cli.signal) {
            (true, _) => catch::ignore_sigint(&mut out),
            (false, Some(sig)) => catch::wait_for(sig, cli.count, &mut out),
            (false, None) => catch::catch_sigint(&mut out),
        }
    })
}
