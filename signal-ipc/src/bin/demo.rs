//! Walks through the note's signal claims, each on a forked child (G3-G11).

use std::process::ExitCode;

use clap::Parser;

/// Shows each signal claim of the note on a forked child: ignored, blocked, handled, default
/// action, SIGKILL/SIGSTOP, SIGTSTP, SIGCONT, SIGSEGV, SIGUSR1, SIGALRM, the list, and queueing.
#[derive(Parser)]
#[command(name = common::command_name!("demo"), bin_name = "demo", version)]
struct Cli {}

fn main() -> ExitCode {
    Cli::parse();
    // No threads may exist before fork(): nothing here starts one.
    common::error::main("demo", signal_ipc::demo::run)
}
