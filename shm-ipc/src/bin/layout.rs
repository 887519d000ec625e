//! Shows the note's address-space claims on a forked process pair (N1, S1-S7).

use std::process::ExitCode;

use clap::Parser;

/// Forks; parent and child share a SysV segment but not a plain variable, then prints where the
/// segment, heap and stack sit in a 64-bit address space.
#[derive(Parser)]
#[command(name = common::command_name!("layout"), bin_name = "layout", version)]
struct Cli {}

fn main() -> ExitCode {
    Cli::parse();
    // No stop::install: it starts a thread, and fork() must happen while there is none.
    common::error::main_with_status("layout", shm_ipc::layout::run)
}
