//! Sends a signal to a process: kill(2), or sigqueue(3) with a value.

use std::process::ExitCode;

use clap::Parser;
use common::{Error, Result};
use nix::errno::Errno;
use signal_ipc::{Sig, parse_signal, sys};

const ME: common::Program = common::program!();

/// Signal writer: sends SIGINT (or --signal NAME) to PID with kill(2); with --value, sends it with
/// sigqueue(3) carrying that integer.
#[derive(Parser)]
#[command(name = common::command_name!(), bin_name = env!("CARGO_BIN_NAME"), version, after_help = common::cli::EXIT_STATUSES)]
struct Cli {
    /// The process to signal (the reader prints its PID)
    #[arg(value_name = "PID", allow_negative_numbers = true, value_parser = parse_pid)]
    pid: i32,
    /// The signal: a name with or without SIG (INT, sigusr1, RTMIN+2) or a number
    #[arg(long, value_name = "NAME|NUMBER", default_value = "INT", value_parser = parse_signal)]
    signal: Sig,
    /// Send with sigqueue carrying this integer (the reader prints it)
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    value: Option<i32>,
    /// Send N signals; queued ones carry --value, --value+1, ...
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    count: u64,
    /// Let PID be 1 (init, in a container often your shell or application), which is refused otherwise
    #[arg(long)]
    allow_init: bool,
    #[command(flatten)]
    trace: common::cli::TraceArgs,
}

fn parse_pid(s: &str) -> std::result::Result<i32, String> {
    match s.parse::<i64>() {
        Ok(p) if (1..=i64::from(i32::MAX)).contains(&p) => Ok(p as i32),
        Ok(0) => Err("PID 0 would signal your whole process group (kill(0, sig)); give one process's PID".into()),
        Ok(-1) => {
            Err("PID -1 would signal every process you may signal (kill(-1, sig)); give one process's PID".into())
        }
        Ok(p) if p < 0 => {
            Err(format!("PID {p} would signal process group {} (kill(-pgid, sig)); give one process's PID", -p))
        }
        _ => Err(format!("'{s}' is not a PID: give a number of 1 or more")),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.pid == 1 && !cli.allow_init {
        // Worded as clap words the other refused PIDs (0, negatives): one reason, exit 2, before
        // any call. Checked here, not in parse_pid, because --allow-init lifts it.
        eprintln!(
            "error: invalid value '1' for '<PID>': PID 1 is init (in a container often your shell or application, \
             which SIGINT ends); pass --allow-init if you mean it\n\nFor more information, try '--help'."
        );
        return ExitCode::from(2);
    }
    cli.trace.start(ME.bin);
    common::error::main(ME.bin, || -> Result<()> {
        if cli.count > 1 && cli.signal.standard().is_some() {
            common::diag!(
                "{ME}: {} is a standard signal: several of one kind merge while pending, so the reader may see \
                 fewer than {}; a real-time signal queues each one (e.g. --signal RTMIN+1)",
                cli.signal,
                cli.count
            );
        }
        for i in 0..cli.count {
            send(&cli, i)?;
        }
        Ok(())
    })
}

fn send(cli: &Cli, i: u64) -> Result<()> {
    let (call, result) = match cli.value {
        None => ("kill", sys::kill(cli.pid, cli.signal.0)),
        Some(v) => loop {
            match sys::sigqueue(cli.pid, cli.signal.0, v.wrapping_add(i as i32)) {
                // The receiver's queue of pending signals is full (RLIMIT_SIGPENDING): let it
                // drain, then try again; nothing is lost.
                Err(Errno::EAGAIN) => std::thread::yield_now(),
                other => break ("sigqueue", other),
            }
        },
    };
    result.map_err(|e| {
        let err = Error::sys(call, format!("pid {}", cli.pid), e);
        match e {
            Errno::ESRCH => err.hint("is it still running?"),
            Errno::EPERM => err.hint("you may signal only your own user's processes (root may signal any)"),
            _ => err,
        }
    })
}
