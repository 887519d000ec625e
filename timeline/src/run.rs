//! Runs the pair: the first side until it waits (or ends), then the other, each traced with
//! `--trace --trace-time`; collects every stderr line with the time it came, and each side's end.
//! The children get process groups of their own, so a Ctrl-C reaches timeline only, which stops
//! them once (a second SIGINT would make a reader give up the message in hand) and cleans up.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read};
use std::os::fd::OwnedFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use common::{Error, Result, SysResult};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::scenario::{Kind, Place, Scenario};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Writer,
    Reader,
}

impl Side {
    pub fn name(self) -> &'static str {
        match self {
            Side::Writer => "writer",
            Side::Reader => "reader",
        }
    }
}

/// What came from the run, in the order it came.
#[derive(Debug)]
pub enum Seen {
    /// A line on a side's stderr, and when timeline read it (CLOCK_MONOTONIC, ns).
    Line(Side, u64, String),
    /// A side's stdout, whole.
    Out(Side, String),
    /// A side ended.
    End(Side, u64, ExitStatus),
    /// timeline sent SIGINT to a side (--stop-reader-after).
    Stopped(Side, u64),
}

/// The children alive now, for a stop of timeline to stop them too.
static ALIVE: Mutex<Vec<Pid>> = Mutex::new(Vec::new());

/// On a stop of timeline: SIGINT to each child, once, and up to 5 s for them to clean up and end
/// (then SIGKILL: the clean-up after them removes what they leave).
pub fn stop_children() {
    let pids: Vec<Pid> = ALIVE.lock().unwrap_or_else(PoisonError::into_inner).clone();
    for &pid in &pids {
        let _ = kill(pid, Signal::SIGINT);
    }
    let until = Instant::now() + Duration::from_secs(5);
    // The waiting threads reap them: a reaped child is gone for kill(pid, 0).
    while pids.iter().any(|&p| kill(p, None).is_ok()) {
        if Instant::now() > until {
            pids.iter().for_each(|&p| {
                let _ = kill(p, Signal::SIGKILL);
            });
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// CLOCK_MONOTONIC in ns: the clock of the pair's `--trace-time`.
pub fn now_ns() -> u64 {
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: t is a valid timespec for clock_gettime to fill; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) };
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

struct Started {
    pid: Pid,
}

fn start(
    side: Side,
    program: &Path,
    args: &[OsString],
    stdin: Option<OwnedFd>,
    stdout: Option<OwnedFd>,
    tx: &Sender<Seen>,
) -> Result<Started> {
    let mut cmd = Command::new(program);
    cmd.args(args).process_group(0).stderr(Stdio::piped());
    // The pair gets signals from timeline only (process groups of its own), which means them: a
    // SIGINT that timeline's shell ignores (a `&` job) must not leave it deaf to the stop.
    // SAFETY: between fork and exec the child calls only signal(2), which is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            libc::signal(libc::SIGQUIT, libc::SIG_DFL);
            Ok(())
        });
    }
    cmd.stdin(stdin.map_or_else(Stdio::null, Stdio::from));
    cmd.stdout(stdout.map_or_else(Stdio::piped, Stdio::from));
    let mut child: Child = cmd.spawn().sys("fork/exec", program.display())?;
    let pid = Pid::from_raw(child.id() as i32);
    ALIVE.lock().unwrap_or_else(PoisonError::into_inner).push(pid);
    if let Some(err) = child.stderr.take() {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).split(b'\n').map_while(std::io::Result::ok) {
                let text = String::from_utf8_lossy(&line).into_owned();
                if tx.send(Seen::Line(side, now_ns(), text)).is_err() {
                    break;
                }
            }
        });
    }
    let out = child.stdout.take();
    let tx = tx.clone();
    std::thread::spawn(move || {
        let mut text = Vec::new();
        if let Some(mut out) = out {
            let _ = out.read_to_end(&mut text);
        }
        let status = child.wait();
        let at = now_ns();
        ALIVE.lock().unwrap_or_else(PoisonError::into_inner).retain(|&p| p != pid);
        let _ = tx.send(Seen::Out(side, String::from_utf8_lossy(&text).into_owned()));
        if let Ok(status) = status {
            let _ = tx.send(Seen::End(side, at, status));
        }
    });
    Ok(Started { pid })
}

/// Whether `line` is `side`'s waiting line (`reader: waiting on queue ...`, `reader: pid 42,
/// waiting for SIGINT`).
pub fn is_waiting(side: Side, line: &str) -> bool {
    line.strip_prefix(side.name()).is_some_and(|l| l.starts_with(": ") && l.contains("waiting"))
}

/// Collects what comes until `done` says so, or fails after `limit`.
struct Collector {
    rx: Receiver<Seen>,
    seen: Vec<Seen>,
    deadline: Instant,
}

impl Collector {
    fn until(&mut self, what: &str, mut done: impl FnMut(&Seen) -> bool) -> Result<()> {
        loop {
            let left = self.deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(s) => {
                    let hit = done(&s);
                    self.seen.push(s);
                    if hit {
                        return Ok(());
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    return Err(Error::Failed(format!("the pair did not {what} in time; stopped it")));
                }
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
            }
        }
    }

    /// Until `side` waits, ends, or (`asleep`) sleeps in a call: a pipe's reader prints no
    /// waiting line.
    fn until_waiting(&mut self, side: Side, pid: Pid, asleep: bool) -> Result<()> {
        if asleep {
            let until = Instant::now() + Duration::from_secs(10);
            while !matches!(state(pid), Some('S') | Some('Z') | None) {
                if Instant::now() > until {
                    return Err(Error::Failed(format!("the {} did not block in time; stopped it", side.name())));
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            return Ok(());
        }
        let what = format!("start its {} (it should wait or end)", side.name());
        self.until(&what, |s| match s {
            Seen::Line(sd, _, l) => *sd == side && is_waiting(side, l),
            Seen::End(sd, ..) => *sd == side,
            _ => false,
        })
    }
}

/// A process's state letter in /proc (`S`: asleep in a call).
fn state(pid: Pid) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")?.1.chars().next()
}

/// Runs the scenario with `writer` and `reader` (the package's binaries) at `place`.
pub fn run(s: &Scenario, place: &Place, dir: &Path) -> Result<Vec<Seen>> {
    let reader = dir.join("reader");
    let writer = dir.join("writer");
    let (tx, rx) = channel();
    let mut c = Collector { rx, seen: Vec::new(), deadline: Instant::now() + s.limit() };
    let result = run_with(s, place, &reader, &writer, &tx, &mut c);
    drop(tx);
    if result.is_err() {
        stop_children();
    }
    // Every side's end and last lines (the threads end with the children).
    let _ = c.until("end", |_| false);
    result.map(|()| c.seen)
}

fn run_with(
    s: &Scenario,
    place: &Place,
    reader: &Path,
    writer: &Path,
    tx: &Sender<Seen>,
    c: &mut Collector,
) -> Result<()> {
    // `writer | reader`: the pipe is ours to make, each side gets its end.
    let (pipe_r, pipe_w) = if s.kind == Kind::Pipe {
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).sys("pipe2", "writer | reader")?;
        (Some(r), Some(w))
    } else {
        (None, None)
    };
    let pipe = s.kind == Kind::Pipe;
    let ends = |c: &Collector| c.seen.iter().filter(|x| matches!(x, Seen::End(..))).count();
    if s.run.writer_first {
        let w = start(Side::Writer, writer, &s.writer_args(place, 0), None, pipe_w, tx)?;
        c.until_waiting(Side::Writer, w.pid, false)?;
        start(Side::Reader, reader, &s.reader_args(place), pipe_r, None, tx)?;
    } else {
        let r = start(Side::Reader, reader, &s.reader_args(place), pipe_r, None, tx)?;
        c.until_waiting(Side::Reader, r.pid, pipe)?;
        if let Some(after) = s.run.stop_reader_after {
            drop(pipe_w);
            // A demo's pause, not a synchronisation: the reader already waits.
            std::thread::sleep(after);
            // Its time is taken before the kill: the reader's first line after it may come first.
            let at = now_ns();
            kill(r.pid, Signal::SIGINT).sys("kill", format!("reader {}", r.pid))?;
            c.seen.push(Seen::Stopped(Side::Reader, at));
            return c.until("end after SIGINT", |x| matches!(x, Seen::End(Side::Reader, ..)));
        }
        start(Side::Writer, writer, &s.writer_args(place, r.pid.as_raw() as u32), None, pipe_w, tx)?;
    }
    while ends(c) < 2 {
        c.until("end", |x| matches!(x, Seen::End(..)))?;
    }
    Ok(())
}

/// `exit 0`, `SIGINT`: how a side ended, as a shell would say.
pub fn ended(status: &ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit {code}"),
        (None, Some(sig)) => {
            Signal::try_from(sig).map_or_else(|_| format!("signal {sig}"), |s| format!("killed by {s}"))
        }
        _ => "ended".into(),
    }
}
