//! The note's pipe example, done right: the parent sends, the forked child prints (P2).

use std::process::ExitCode;

use clap::Parser;

const ME: common::Program = common::program!();

/// Runs the note's pipe program: pipe(), fork(), the parent writes "Hello Child Process" and its
/// NUL (20 bytes), the child prints `20 Hello Child Process`, and the parent waits for it.
#[derive(Parser)]
#[command(name = common::command_name!(), bin_name = env!("CARGO_BIN_NAME"), version, after_help = common::cli::EXIT_STATUSES)]
struct Cli {
    #[command(flatten)]
    trace: common::cli::TraceArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    cli.trace.start(ME.bin);
    // No stop::install here: it starts a thread, and fork() must happen while there is none.
    common::error::main_with_status(ME.bin, pipe_ipc::forked::run)
}
