//! The crash harness (issue 20): a pair's writer and reader on a numbered stream, one side killed
//! with SIGKILL at a chosen point or at a random moment, fresh processes to finish the stream, and
//! the promise checked on what the readers printed: never twice, never out of order, never half a
//! line, never a wait without end, and a message lost only where a killed reader had taken it.
//! Then `reader --clean` must leave nothing.
//!
//! The points: on entry to a system call (strace's `-e inject=CALL:signal=KILL:when=N`), and just
//! after a call that `--trace` shows returns (the trace layer's hook, `IPC_NOTES_KILL_AFTER`, see
//! common/README.md). A run's streams are generations: each writer sends `<i> w<g>.<PAD>` for its
//! own generation g, and a writer starts only once the one before it has ended, so the messages
//! of all generations have one order. The last generation (the tail) sends more than any reader
//! asks for and is stopped at the end: readers end by `--count`, never by a timeout.
//!
//! What a killed writer had not sent cannot be told from what it had sent and nobody received, so
//! a killed (or failed) writer's messages count from its first to the last one printed.

mod runs;
mod session;
mod table;
mod verdict;

pub use runs::{Outcome, crash_points, crash_run, kill_points, plain_run, random_kills};
pub use session::{GenLog, ReaderLog, Session};
pub use table::{Tally, table};
pub use verdict::{Verdict, judge, judge_with_details};

use std::collections::HashSet;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::mechanisms::Mechanism;

/// The pairs whose objects outlive a process, so that a crash can leave something behind.
pub const PAIRS: [Mechanism; 6] = [
    Mechanism::File,
    Mechanism::Fifo,
    Mechanism::SysvQueue,
    Mechanism::PosixQueue,
    Mechanism::SysvShm,
    Mechanism::PosixShm,
];

/// The pair's short name in the tables.
pub fn pair_name(m: Mechanism) -> &'static str {
    match m {
        Mechanism::File => "file",
        Mechanism::Fifo => "fifo",
        Mechanism::SysvQueue => "sysv-mq",
        Mechanism::PosixQueue => "posix-mq",
        Mechanism::SysvShm => "sysv-shm",
        Mechanism::PosixShm => "posix-shm",
        Mechanism::Pipe => "pipe",
        Mechanism::Signal => "signal",
    }
}

/// How long a run may show no sign of life (no line printed, no process ended) before it counts
/// as hung. A healthy run shows one every few milliseconds.
pub const HANG: Duration = Duration::from_secs(3);

/// The body after `<i> w<g>.`: long enough that a half-copied message cannot pass for a whole one.
const PAD: &str = "abcdefghijklmnopqrstuvwxyz0123456789";

/// How a process is started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Wrap {
    Plain,
    /// With `--trace`.
    Trace,
    /// Under strace, every system call of its main thread written to the file.
    StraceAll(PathBuf),
    /// Under strace, killed on entry to the nth call of the system call.
    Entry {
        syscall: String,
        n: u64,
    },
    /// Killed by the trace layer's hook just after the nth return of the call.
    After {
        call: String,
        n: u64,
    },
}

impl Wrap {
    fn apply(&self, cmd: Command) -> Command {
        match self {
            Wrap::Plain => cmd,
            Wrap::Trace => {
                let mut c = cmd;
                c.arg("--trace");
                c
            }
            Wrap::After { call, n } => {
                let mut c = cmd;
                c.env(common::trace::KILL_AFTER_VAR, format!("{call}:{n}"));
                c
            }
            Wrap::StraceAll(out) => strace(&cmd, &[OsString::from("-o"), out.into()]),
            Wrap::Entry { syscall, n } => strace(
                &cmd,
                &[
                    "-o".into(),
                    "/dev/null".into(),
                    "-e".into(),
                    format!("trace={syscall}").into(),
                    "-e".into(),
                    format!("inject={syscall}:signal=KILL:when={n}").into(),
                ],
            ),
        }
    }

    /// The point, as a table note says it.
    pub fn describe(&self) -> String {
        match self {
            Wrap::Entry { syscall, n } => format!("on entry to {syscall} #{n}"),
            Wrap::After { call, n } => format!("just after {call} #{n} returned"),
            Wrap::Plain | Wrap::Trace | Wrap::StraceAll(_) => "not killed".into(),
        }
    }

    /// How to run it by hand.
    pub fn repro(&self) -> String {
        match self {
            Wrap::Entry { syscall, n } => {
                format!("strace -qq -o /dev/null -e inject={syscall}:signal=KILL:when={n} --")
            }
            Wrap::After { call, n } => format!("{}={call}:{n}", common::trace::KILL_AFTER_VAR),
            Wrap::Plain | Wrap::Trace | Wrap::StraceAll(_) => String::new(),
        }
    }
}

/// `cmd` under strace (main thread only, no `-f`: the calls that matter are the main thread's).
fn strace(cmd: &Command, opts: &[OsString]) -> Command {
    let mut c = Command::new("strace");
    c.arg("-qq").args(opts).arg("--").arg(cmd.get_program()).args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    c
}

/// Whether strace is installed and may trace here (ptrace allowed).
pub fn strace_found() -> bool {
    static FOUND: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *FOUND.get_or_init(|| {
        Command::new("strace")
            .args(["-qq", "-o", "/dev/null", "true"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// The side of the pair that is killed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Reader,
    Writer,
}

impl Side {
    pub fn name(self) -> &'static str {
        match self {
            Side::Reader => "reader",
            Side::Writer => "writer",
        }
    }
}

/// xorshift64*: a seeded generator for the random kills (no dependency for a few numbers).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..=max`.
    pub fn upto(&mut self, max: u64) -> u64 {
        self.next_u64() % (max + 1)
    }
}

/// The seed of this test process's random kills: `CRASH_SEED` if set, else the clock's.
pub fn seed() -> u64 {
    static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *SEED.get_or_init(|| {
        std::env::var("CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
            let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            t.as_nanos() as u64 ^ u64::from(std::process::id())
        })
    })
}

/// glibc's temporary semaphore files in /dev/shm (`sem.XXXXXX`, before `link` names them).
pub fn sem_temps() -> HashSet<String> {
    std::fs::read_dir("/dev/shm")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| n.len() == 10 && n.starts_with("sem.") && !n[4..].contains('-'))
                .collect()
        })
        .unwrap_or_default()
}

/// Runs that watch /dev/shm for glibc's temporary files take turns: they cannot tell each
/// other's apart.
static POSIX_SHM_RUNS: Mutex<()> = Mutex::new(());

fn posix_shm_turn(m: Mechanism) -> Option<MutexGuard<'static, ()>> {
    (m == Mechanism::PosixShm).then(|| POSIX_SHM_RUNS.lock().unwrap_or_else(PoisonError::into_inner))
}

/// `<i> w<g>.<PAD>` as (g, i), if g is one of the run's generations.
fn parse(line: &[u8], gens: usize) -> Option<(usize, u64)> {
    let s = std::str::from_utf8(line).ok()?;
    let (i, rest) = s.split_once(' ')?;
    let (g, pad) = rest.strip_prefix('w')?.split_once('.')?;
    let (i, g) = (i.parse::<u64>().ok()?, g.parse::<usize>().ok()?);
    (pad == PAD && g < gens && i.to_string().len() == s.find(' ')?).then_some((g, i))
}
