//! The command line: which pair, and how to run it.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// Runs a writer/reader pair with --trace --trace-time on both sides and draws one chart of the
/// exchange: the writer's calls on the left, the reader's on the right, the object's state in the
/// middle, each wait as a bar and an arrow from the call that hands a message over to the call
/// that takes it. The pair runs on a key (or in a directory) of its own, removed at the end.
#[derive(Parser, Debug)]
#[command(name = "timeline", version, after_help = common::cli::EXIT_STATUSES)]
pub struct Cli {
    #[command(subcommand)]
    pub pair: Pair,
}

#[derive(Subcommand, Debug)]
pub enum Pair {
    /// msgq-ipc: a System V message queue (--posix: a POSIX one)
    Msgq {
        /// A POSIX message queue (mq_open) instead of System V
        #[arg(long)]
        posix: bool,
        #[command(flatten)]
        run: RunArgs,
    },
    /// msgq-ipc's request and reply over one queue (reader --serve, writer --request)
    Request {
        #[command(flatten)]
        run: RunArgs,
    },
    /// shm-ipc: System V shared memory and semaphores (--posix: POSIX shared memory and a futex)
    Shm {
        /// POSIX shared memory (shm_open, a futex word) instead of System V
        #[arg(long)]
        posix: bool,
        #[command(flatten)]
        run: RunArgs,
    },
    /// pipe-ipc: a named pipe (FIFO)
    Fifo {
        #[command(flatten)]
        run: RunArgs,
    },
    /// pipe-ipc: an anonymous pipe, `writer | reader`
    Pipe {
        #[command(flatten)]
        run: RunArgs,
    },
    /// file-ipc: a message file renamed into place
    File {
        #[command(flatten)]
        run: RunArgs,
    },
    /// signal-ipc: the writer sends SIGINT (with --count N: N of SIGRTMIN+1) to the reader
    Signal {
        #[command(flatten)]
        run: RunArgs,
    },
}

#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// Start the writer first (by default the reader starts first and waits)
    #[arg(long)]
    pub writer_first: bool,

    /// How many messages the reader takes [default: as many as are sent]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=50))]
    pub count: Option<u64>,

    /// Also write the chart as an SVG sequence diagram to PATH
    #[arg(long, value_name = "PATH")]
    pub svg: Option<PathBuf>,

    /// Start only the reader, and once it waits, stop it with SIGINT after DURATION (e.g. 200ms,
    /// 1s): its clean-up, and the object gone
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, conflicts_with = "writer_first")]
    pub stop_reader_after: Option<Duration>,

    /// Messages for the writer to send [default: the pair's own]
    #[arg(value_name = "MESSAGE")]
    pub messages: Vec<String>,
}

/// `200ms`, `1s`, `1.5s`, up to a minute.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("'{s}' is not a duration: give e.g. 200ms or 1.5s (at most 60s)");
    let (number, unit) = match s.strip_suffix("ms") {
        Some(n) => (n, 0.001),
        None => (s.strip_suffix('s').ok_or_else(bad)?, 1.0),
    };
    let secs = number.parse::<f64>().map_err(|_| bad())? * unit;
    if !(0.0..=60.0).contains(&secs) {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(secs))
}

impl Pair {
    pub fn run_args(&self) -> &RunArgs {
        match self {
            Pair::Msgq { run, .. } | Pair::Shm { run, .. } => run,
            Pair::Request { run } | Pair::Fifo { run } | Pair::Pipe { run } | Pair::File { run } => run,
            Pair::Signal { run } => run,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_durations() {
        assert_eq!(parse_duration("200ms"), Ok(Duration::from_millis(200)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("200").is_err());
        assert!(parse_duration("2m").is_err());
        assert!(parse_duration("61s").is_err());
    }
}
