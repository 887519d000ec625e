//! What each pair's run is: which package, which arguments each side gets (as its README runs
//! it), where they meet (a key or a path of this run's own), and what to look for at the end.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::Key;

use crate::cli::{Pair, RunArgs};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Msgq,
    MsgqPosix,
    Request,
    Shm,
    ShmPosix,
    Fifo,
    Pipe,
    File,
    Signal,
}

impl Kind {
    pub fn package(self) -> &'static str {
        match self {
            Kind::Msgq | Kind::MsgqPosix | Kind::Request => "msgq-ipc",
            Kind::Shm | Kind::ShmPosix => "shm-ipc",
            Kind::Fifo | Kind::Pipe => "pipe-ipc",
            Kind::File => "file-ipc",
            Kind::Signal => "signal-ipc",
        }
    }

    /// As on the command line: `msgq --posix`.
    pub fn command(self) -> &'static str {
        match self {
            Kind::Msgq => "msgq",
            Kind::MsgqPosix => "msgq --posix",
            Kind::Request => "request",
            Kind::Shm => "shm",
            Kind::ShmPosix => "shm --posix",
            Kind::Fifo => "fifo",
            Kind::Pipe => "pipe",
            Kind::File => "file",
            Kind::Signal => "signal",
        }
    }

    /// Meets on a SysV key (POSIX names are made of it too), not on a path.
    fn keyed(self) -> bool {
        matches!(self, Kind::Msgq | Kind::MsgqPosix | Kind::Request | Kind::Shm | Kind::ShmPosix)
    }
}

/// Where this run's pair meets: a key nobody uses, or a path in a directory of this run's own.
#[derive(Clone, Debug)]
pub enum Place {
    Key(Key),
    Path(PathBuf),
    None,
}

pub struct Scenario {
    pub kind: Kind,
    pub run: RunArgs,
}

impl Scenario {
    pub fn new(pair: &Pair) -> Result<Scenario, String> {
        let kind = match pair {
            Pair::Msgq { posix: false, .. } => Kind::Msgq,
            Pair::Msgq { posix: true, .. } => Kind::MsgqPosix,
            Pair::Request { .. } => Kind::Request,
            Pair::Shm { posix: false, .. } => Kind::Shm,
            Pair::Shm { posix: true, .. } => Kind::ShmPosix,
            Pair::Fifo { .. } => Kind::Fifo,
            Pair::Pipe { .. } => Kind::Pipe,
            Pair::File { .. } => Kind::File,
            Pair::Signal { .. } => Kind::Signal,
        };
        let run = pair.run_args().clone();
        if kind == Kind::Signal && run.writer_first {
            return Err("signal: the writer needs the reader's PID, so the reader starts first".into());
        }
        if kind == Kind::Signal && !run.messages.is_empty() {
            return Err("signal: a signal carries no message; give --count N to send N signals".into());
        }
        if kind == Kind::Pipe && run.stop_reader_after.is_some() {
            return Err(
                "pipe: the reader of `writer | reader` makes nothing to clean up; stop a fifo reader instead".into()
            );
        }
        Ok(Scenario { kind, run })
    }

    pub fn package(&self) -> &'static str {
        self.kind.package()
    }

    /// How many messages the writer sends.
    pub fn sent(&self) -> u64 {
        if self.run.messages.is_empty() { self.run.count.unwrap_or(1) } else { self.run.messages.len() as u64 }
    }

    /// The messages as the writer sends them, for the arrows' labels: `default` is the pair's own.
    pub fn texts(&self) -> Vec<String> {
        if self.run.messages.is_empty() {
            let default = match self.kind {
                Kind::Msgq | Kind::MsgqPosix | Kind::Request => "Hello Message Queue",
                Kind::Shm | Kind::ShmPosix => "Linux Programming",
                Kind::Fifo | Kind::Pipe => "Hello Child Process",
                Kind::File => "Hello File IPC",
                Kind::Signal => {
                    if self.sent() > 1 {
                        "SIGRTMIN+1"
                    } else {
                        "SIGINT"
                    }
                }
            };
            vec![default.to_string(); self.sent() as usize]
        } else {
            self.run.messages.clone()
        }
    }

    /// A place for this run: a key (or path) that nothing else uses.
    pub fn place(&self, dir: &Path) -> Place {
        if self.kind.keyed() {
            Place::Key(crate::objects::free_key())
        } else if matches!(self.kind, Kind::Fifo | Kind::File) {
            Place::Path(dir.join(if self.kind == Kind::Fifo { "pair.fifo" } else { "pair.msg" }))
        } else {
            Place::None
        }
    }

    fn meet(&self, place: &Place) -> Vec<OsString> {
        let mut v: Vec<OsString> = Vec::new();
        match place {
            Place::Key(k) => v.extend(["--key".into(), k.to_string().into()]),
            Place::Path(p) => {
                if self.kind == Kind::Fifo {
                    v.push("--fifo".into());
                }
                v.extend(["--path".into(), p.clone().into_os_string()]);
            }
            Place::None => {}
        }
        if matches!(self.kind, Kind::MsgqPosix | Kind::ShmPosix) {
            v.push("--posix".into());
        }
        v
    }

    fn traced() -> [OsString; 2] {
        ["--trace".into(), "--trace-time".into()]
    }

    pub fn reader_args(&self, place: &Place) -> Vec<OsString> {
        let mut v = self.meet(place);
        let count = self.run.count.unwrap_or(self.sent());
        match self.kind {
            Kind::Request => v.extend(["--serve".into(), "--count".into(), count.to_string().into()]),
            Kind::Signal if self.sent() > 1 || count > 1 => {
                v.extend(["--signal".into(), "RTMIN+1".into(), "--count".into(), count.to_string().into()])
            }
            Kind::Signal => {}
            // `writer | reader` reads to the end of the pipe.
            Kind::Pipe if self.run.count.is_none() => {}
            _ => v.extend(["--count".into(), count.to_string().into()]),
        }
        v.extend(Self::traced());
        v
    }

    /// The writer's arguments; `reader_pid` for signal-ipc's writer.
    pub fn writer_args(&self, place: &Place, reader_pid: u32) -> Vec<OsString> {
        let mut v = self.meet(place);
        match self.kind {
            Kind::Request => v.push("--request".into()),
            Kind::Signal => {
                if self.sent() > 1 {
                    v.extend(["--signal".into(), "RTMIN+1".into(), "--count".into(), self.sent().to_string().into()]);
                }
                v.push(reader_pid.to_string().into());
            }
            _ => {}
        }
        if self.run.messages.is_empty() && self.sent() > 1 && self.kind != Kind::Signal {
            v.extend(["--repeat".into(), self.sent().to_string().into()]);
        }
        v.extend(Self::traced());
        if !self.run.messages.is_empty() {
            v.push("--".into());
            v.extend(self.run.messages.iter().map(OsString::from));
        }
        v
    }

    /// The middle column's head.
    pub fn column(&self) -> &'static str {
        match self.kind {
            Kind::Msgq | Kind::Request => "queue",
            Kind::MsgqPosix => "POSIX queue",
            Kind::Shm => "segment, sems",
            Kind::ShmPosix => "POSIX shm",
            Kind::Fifo => "FIFO",
            Kind::Pipe => "pipe",
            Kind::File => "message file",
            Kind::Signal => "signals",
        }
    }

    /// What the pair meets on, for the title: `queue 0x7a110042`.
    pub fn object(&self, place: &Place) -> String {
        let key = match place {
            Place::Key(k) => k.to_string(),
            _ => String::new(),
        };
        match self.kind {
            Kind::Msgq | Kind::Request => format!("queue {key}"),
            Kind::MsgqPosix => format!("POSIX queue /msgq-ipc-{key}"),
            Kind::Shm => format!("segment and semaphore set {key}"),
            Kind::ShmPosix => format!("POSIX shared memory /shm-ipc-{key}"),
            Kind::Fifo => "a FIFO in a directory of its own".into(),
            Kind::Pipe => "an anonymous pipe, writer | reader".into(),
            Kind::File => "a message file in a directory of its own".into(),
            Kind::Signal => "signals to the reader's PID".into(),
        }
    }

    /// How long the whole run may take before it is stopped as stuck.
    pub fn limit(&self) -> Duration {
        Duration::from_secs(20) + self.run.stop_reader_after.unwrap_or_default()
    }
}
