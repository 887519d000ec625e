//! `timeline msgq`: one chart of a pair's exchange (see the library).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = timeline::cli::Cli::parse();
    common::error::main("timeline", || timeline::timeline(cli))
}
