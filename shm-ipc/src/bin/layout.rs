//! Shows the note's address-space claims on a forked process pair (N1, S1-S7).

use std::process::ExitCode;

use clap::Parser;

const ME: common::Program = common::program!();

/// Forks; parent and child share a SysV segment but not a plain variable, then prints where the
/// segment, heap and stack sit in a 64-bit address space.
#[derive(Parser)]
#[command(name = common::command_name!(), bin_name = env!("CARGO_BIN_NAME"), version, after_help = common::cli::EXIT_STATUSES)]
struct Cli {
    #[command(flatten)]
    trace: common::cli::TraceArgs,
}

fn main() -> ExitCode {
    Cli::parse().trace.start(ME.bin);
    // No stop::install: it starts a thread, and fork() must happen while there is none.
    common::error::main_with_status(ME.bin, shm_ipc::layout::run)
}
