//! Walks through the note's signal claims, each on a forked child (G3-G11).

use std::process::ExitCode;

use clap::Parser;

const ME: common::Program = common::program!();

/// Shows each signal claim of the note on a forked child: ignored, blocked, handled, default
/// action, SIGKILL/SIGSTOP, SIGTSTP, SIGCONT, SIGSEGV, SIGUSR1, SIGALRM, the list, and queueing.
#[derive(Parser)]
#[command(name = common::command_name!(), bin_name = env!("CARGO_BIN_NAME"), version, after_help = common::cli::EXIT_STATUSES)]
struct Cli {
    #[command(flatten)]
    trace: common::cli::TraceArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    cli.trace.start(ME.bin);
    // No threads may exist before fork(): nothing here starts one.
    common::error::main(ME.bin, signal_ipc::demo::run)
}
