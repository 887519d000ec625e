//! The processes of one run: spawned directly (no cargo), their stdout lines and their ends fed
//! to one channel, so that a run waits for whatever comes next with one bounded wait.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::{HANG, PAD, Wrap, parse, sem_temps};
use crate::mechanisms::{Mechanism, Place};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Reader(usize),
    Writer(usize),
    Clean,
}

enum Ev {
    Line(Vec<u8>),
    /// Stdout closed and the process was reaped; `partial` is what followed the last newline.
    End {
        partial: Vec<u8>,
        status: ExitStatus,
    },
}

struct Proc {
    pid: Pid,
    role: Role,
    status: Option<ExitStatus>,
    stderr: Option<JoinHandle<String>>,
    stderr_text: String,
    /// Lines printed so far (readers).
    lines: usize,
    /// Killed by [`Session::finish`], not as a victim: no reader that a crash killed.
    put_down: bool,
}

/// What one reader printed, in order.
#[derive(Default, Debug, Clone)]
pub struct ReaderLog {
    pub lines: Vec<Vec<u8>>,
    /// Bytes after the last newline: half a line.
    pub partial: Vec<u8>,
    pub killed: bool,
}

/// One writer generation.
#[derive(Debug, Clone)]
pub struct GenLog {
    pub sent_asked: u64,
    /// It exited 0: every message it was asked to send was handed over.
    pub complete: bool,
    pub killed: bool,
    /// The tail: it sends more than the readers take, and what they leave is no loss.
    pub tail: bool,
    /// Nothing killed it, so all it was asked to send must arrive, even if it failed.
    pub must_deliver: bool,
}

/// The processes of one run, their output and their ends, fed by one channel.
pub struct Session<'a> {
    pub place: &'a Place,
    tx: Sender<(usize, Ev)>,
    rx: Receiver<(usize, Ev)>,
    procs: Vec<Proc>,
    pub readers: Vec<ReaderLog>,
    pub gens: Vec<GenLog>,
    pub hung: bool,
    pub notes: Vec<String>,
}

impl<'a> Session<'a> {
    pub fn new(place: &'a Place) -> Session<'a> {
        let (tx, rx) = channel();
        Session {
            place,
            tx,
            rx,
            procs: Vec::new(),
            readers: Vec::new(),
            gens: Vec::new(),
            hung: false,
            notes: Vec::new(),
        }
    }

    fn spawn(&mut self, mut cmd: Command, role: Role) -> usize {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
        let id = self.procs.len();
        let pid = Pid::from_raw(child.id() as i32);
        let out = child.stdout.take().expect("stdout");
        let mut err = child.stderr.take().expect("stderr");
        let tx = self.tx.clone();
        std::thread::spawn(move || {
            let mut out = BufReader::new(out);
            let mut partial = Vec::new();
            loop {
                let mut line = Vec::new();
                match out.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) if line.ends_with(b"\n") => {
                        line.pop();
                        let _ = tx.send((id, Ev::Line(line)));
                    }
                    Ok(_) => partial = line,
                }
            }
            let status = child.wait().expect("wait for a child");
            let _ = tx.send((id, Ev::End { partial, status }));
        });
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let mut bytes = Vec::new();
            let _ = err.read_to_end(&mut bytes);
            s.push_str(&String::from_utf8_lossy(&bytes));
            s
        });
        self.procs.push(Proc {
            pid,
            role,
            status: None,
            stderr: Some(stderr),
            stderr_text: String::new(),
            lines: 0,
            put_down: false,
        });
        id
    }

    /// Starts a reader that takes `count` messages.
    pub fn reader(&mut self, count: u64, wrap: &Wrap) -> usize {
        let mut cmd = self.place.reader();
        cmd.args(["--count", &count.max(1).to_string()]);
        let r = self.readers.len();
        self.readers.push(ReaderLog::default());
        self.spawn(wrap.apply(cmd), Role::Reader(r))
    }

    /// Starts the writer of a new generation of `n` messages.
    pub fn writer(&mut self, n: u64, wrap: &Wrap) -> usize {
        self.writer_of(n, wrap, false)
    }

    /// Starts the tail writer: `n`, more than the readers still to come will take, so that they
    /// end by `--count`; it is stopped at the end.
    pub fn tail(&mut self, n: u64) -> usize {
        self.writer_of(n, &Wrap::Plain, true)
    }

    fn writer_of(&mut self, n: u64, wrap: &Wrap, tail: bool) -> usize {
        let g = self.gens.len();
        self.gens.push(GenLog { sent_asked: n, complete: false, killed: false, tail, must_deliver: false });
        let mut cmd = self.place.writer();
        if matches!(self.place.mechanism, Mechanism::SysvQueue | Mechanism::PosixQueue) {
            cmd.arg("--wait"); // a full queue is a wait, not an error
        }
        cmd.args(["--numbered", "--repeat", &n.to_string(), &format!("w{g}.{PAD}")]);
        self.spawn(wrap.apply(cmd), Role::Writer(g))
    }

    pub fn ended(&self, id: usize) -> bool {
        self.procs[id].status.is_some()
    }

    /// Died of SIGKILL (strace passes on its tracee's death).
    pub fn killed(&self, id: usize) -> bool {
        self.procs[id].status.is_some_and(|s| s.signal() == Some(libc::SIGKILL))
    }

    pub fn lines_of(&self, id: usize) -> usize {
        self.procs[id].lines
    }

    pub fn status(&self, id: usize) -> Option<ExitStatus> {
        self.procs[id].status
    }

    /// One event, or false (and the run is hung) when none came within [`HANG`].
    pub fn step(&mut self) -> bool {
        self.step_within(HANG)
    }

    fn step_within(&mut self, wait: Duration) -> bool {
        match self.rx.recv_timeout(wait) {
            Ok((id, ev)) => {
                self.record(id, ev);
                true
            }
            Err(RecvTimeoutError::Timeout) => false,
            Err(RecvTimeoutError::Disconnected) => unreachable!("the session holds a sender"),
        }
    }

    fn record(&mut self, id: usize, ev: Ev) {
        let role = self.procs[id].role;
        match ev {
            Ev::Line(line) => {
                self.procs[id].lines += 1;
                if let Role::Reader(r) = role {
                    self.readers[r].lines.push(line);
                }
            }
            Ev::End { partial, status } => {
                self.procs[id].status = Some(status);
                if let Some(h) = self.procs[id].stderr.take() {
                    self.procs[id].stderr_text = h.join().unwrap_or_default();
                }
                let killed = status.signal() == Some(libc::SIGKILL) && !self.procs[id].put_down;
                match role {
                    Role::Reader(r) => {
                        self.readers[r].partial = partial;
                        self.readers[r].killed = killed;
                    }
                    Role::Writer(g) => {
                        self.gens[g].complete = status.success();
                        self.gens[g].killed = killed;
                    }
                    Role::Clean => {}
                }
            }
        }
    }

    /// Events until `id` has ended; false if the run hung first.
    pub fn until_ended(&mut self, id: usize) -> bool {
        while !self.ended(id) {
            if !self.step() {
                self.hung = true;
                return false;
            }
        }
        true
    }

    /// Sends `sig` to `id` if it has not ended.
    pub fn signal(&self, id: usize, sig: Signal) {
        if self.procs[id].status.is_none() {
            let _ = kill(self.procs[id].pid, sig);
        }
    }

    /// How many distinct valid messages of generation `g` were printed so far.
    pub fn printed_of(&self, g: usize) -> u64 {
        let mut seen = HashSet::new();
        for r in &self.readers {
            for l in &r.lines {
                if let Some((lg, i)) = parse(l, self.gens.len())
                    && lg == g
                {
                    seen.insert(i);
                }
            }
        }
        seen.len() as u64
    }

    /// Stops what still runs and waits for every end: SIGKILL for the tail writer (whose stop
    /// would wait for a safe point, up to a wait slice of its mechanism) and for everything in a
    /// hung run; SIGTERM, then SIGKILL after [`HANG`], for the rest.
    pub fn finish(&mut self) {
        let alive: Vec<usize> = (0..self.procs.len()).filter(|&i| !self.ended(i)).collect();
        for &i in &alive {
            let tail = matches!(self.procs[i].role, Role::Writer(g) if self.gens[g].tail);
            self.procs[i].put_down = true;
            self.signal(i, if self.hung || tail { Signal::SIGKILL } else { Signal::SIGTERM });
        }
        let deadline = Instant::now() + HANG;
        while self.procs.iter().any(|p| p.status.is_none()) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || !self.step_within(left) {
                break;
            }
        }
        let stuck: Vec<usize> = (0..self.procs.len()).filter(|&i| !self.ended(i)).collect();
        for &i in &stuck {
            self.notes.push(format!("{} did not end within {HANG:?} of SIGTERM", self.who(i)));
            self.signal(i, Signal::SIGKILL);
        }
        while self.procs.iter().any(|p| p.status.is_none()) {
            assert!(self.step_within(Duration::from_secs(20)), "a SIGKILLed process did not end");
        }
    }

    /// `reader --clean`, then what is left under the key, in the directory and (POSIX shared
    /// memory) as glibc's temporary semaphore files that were not there before (`before`): each
    /// removed and named.
    pub fn clean(&mut self, sem_temps_before: &HashSet<String>) -> Vec<String> {
        let mut cmd = self.place.reader();
        cmd.arg("--clean");
        let id = self.spawn(cmd, Role::Clean);
        let hung = self.hung;
        if !self.until_ended(id) {
            self.notes.push("reader --clean hung".into());
            self.signal(id, Signal::SIGKILL);
            self.until_ended(id);
        }
        self.hung = hung || self.hung;
        let mut left = self.place.key.take_leftovers();
        for name in crate::entries(self.place.dir.path()) {
            let _ = std::fs::remove_file(self.place.dir.path().join(&name));
            left.push(format!("{} in the directory", name));
        }
        if self.place.mechanism == Mechanism::PosixShm {
            for t in sem_temps().difference(sem_temps_before) {
                let _ = std::fs::remove_file(Path::new("/dev/shm").join(t));
                left.push(format!("/dev/shm/{t}"));
            }
        }
        left
    }

    /// The stderr of a process (once it ended).
    pub fn stderr_of(&self, id: usize) -> &str {
        &self.procs[id].stderr_text
    }

    fn who(&self, id: usize) -> String {
        match self.procs[id].role {
            Role::Reader(r) => format!("reader {r}"),
            Role::Writer(g) if self.gens[g].tail => format!("writer {g} (tail)"),
            Role::Writer(g) => format!("writer {g}"),
            Role::Clean => "reader --clean".into(),
        }
    }

    /// How each process ended and the last line of its stderr, for a note on a broken run; in a
    /// long run only those that failed or still ran.
    pub fn ends(&self) -> String {
        let long = self.procs.len() > 12;
        let each: Vec<String> = (0..self.procs.len())
            .filter(|&i| {
                let p = &self.procs[i];
                !long || p.put_down || p.status.is_none_or(|s| s.code().is_some_and(|c| c != 0))
            })
            .map(|i| {
                let (st, failed) = self.procs[i].status.map_or(("running".into(), false), |s| match s.signal() {
                    Some(sig) => (format!("signal {sig}"), false),
                    None => (format!("exit {}", s.code().unwrap_or(-1)), !s.success()),
                });
                // A failure's reason: its last diagnostic (trace lines start with '[').
                let last = self.procs[i].stderr_text.lines().rfind(|l| !l.starts_with('[')).filter(|_| failed);
                let down = if self.procs[i].put_down { " (stopped at the end)" } else { "" };
                format!("{} {st}{down}{}", self.who(i), last.map_or(String::new(), |l| format!(" {l:?}")))
            })
            .collect();
        let rest = if long {
            format!(" (of {} processes; the others exited 0 or were killed as planned)", self.procs.len())
        } else {
            String::new()
        };
        format!("{}{rest}", each.join("; "))
    }

    /// What each reader printed, compactly: `[0 1 | k:2 3]` (k: killed).
    pub fn outputs(&self) -> String {
        let each: Vec<String> = self
            .readers
            .iter()
            .map(|r| {
                let lines: Vec<String> = r
                    .lines
                    .iter()
                    .map(|l| match parse(l, self.gens.len()) {
                        Some((g, i)) => format!("{i}w{g}"),
                        None => format!("{:?}", String::from_utf8_lossy(l)),
                    })
                    .collect();
                let half = if r.partial.is_empty() { String::new() } else { " +half".into() };
                format!("{}{}{half}", if r.killed { "k:" } else { "" }, lines.join(" "))
            })
            .collect();
        format!("[{}]", each.join(" | "))
    }
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        for p in &self.procs {
            if p.status.is_none() {
                let _ = kill(p.pid, Signal::SIGKILL);
            }
        }
    }
}
