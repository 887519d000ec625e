//! The table of mechanisms for the tests that must hold for every one of them
//! (tests/tests/every_mechanism.rs). Those tests loop over [`EVERY`] and `match` on [`Mechanism`]
//! with no wildcard arm, so a mechanism added here does not compile until each of them either
//! covers it or says in a comment why it does not apply.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::running::{Finished, Running};
use crate::{TestKey, bin};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mechanism {
    /// file-ipc: one message file at a path.
    File,
    /// pipe-ipc without --fifo: `writer | reader`.
    Pipe,
    /// pipe-ipc --fifo: a named pipe at a path.
    Fifo,
    /// msgq-ipc: a System V message queue under a key.
    SysvQueue,
    /// msgq-ipc --posix: a POSIX message queue named after a key.
    PosixQueue,
    /// shm-ipc: a System V segment and semaphore set under a key.
    SysvShm,
    /// shm-ipc --posix: POSIX shared memory named after a key.
    PosixShm,
    /// signal-ipc: a signal from the writer to the reader's PID (no bytes, no object).
    Signal,
}

/// Every mechanism of the workspace.
pub const EVERY: [Mechanism; 8] = [
    Mechanism::File,
    Mechanism::Pipe,
    Mechanism::Fifo,
    Mechanism::SysvQueue,
    Mechanism::PosixQueue,
    Mechanism::SysvShm,
    Mechanism::PosixShm,
    Mechanism::Signal,
];

impl Mechanism {
    pub fn package(self) -> &'static str {
        match self {
            Mechanism::File => "file-ipc",
            Mechanism::Pipe | Mechanism::Fifo => "pipe-ipc",
            Mechanism::SysvQueue | Mechanism::PosixQueue => "msgq-ipc",
            Mechanism::SysvShm | Mechanism::PosixShm => "shm-ipc",
            Mechanism::Signal => "signal-ipc",
        }
    }

    /// What its writer sends when given no message (the note's); none for signals.
    pub fn default_message(self) -> &'static str {
        match self {
            Mechanism::File => file_ipc::DEFAULT_MESSAGE,
            Mechanism::Pipe | Mechanism::Fifo => pipe_ipc::DEFAULT_MESSAGE,
            Mechanism::SysvQueue | Mechanism::PosixQueue => msgq_ipc::DEFAULT_MESSAGE,
            Mechanism::SysvShm | Mechanism::PosixShm => shm_ipc::DEFAULT_MESSAGE,
            Mechanism::Signal => "",
        }
    }

    /// The flag that picks this variant of its package, if any.
    pub fn variant(self) -> Option<&'static str> {
        match self {
            Mechanism::Fifo => Some("--fifo"),
            Mechanism::PosixQueue | Mechanism::PosixShm => Some("--posix"),
            _ => None,
        }
    }
}

/// Where one mechanism's run in one test meets: a unique key (checked for leftovers when dropped)
/// and a fresh directory for the message file or FIFO.
pub struct Place {
    pub mechanism: Mechanism,
    pub key: TestKey,
    pub dir: tempfile::TempDir,
}

impl Place {
    pub fn new(mechanism: Mechanism) -> Place {
        Place { mechanism, key: TestKey::new(), dir: tempfile::tempdir().expect("tempdir") }
    }

    /// The message file or FIFO (for File and Fifo).
    pub fn path(&self) -> PathBuf {
        self.dir.path().join("msg")
    }

    /// The arguments that point a writer or reader at this place: `--path P`, `--fifo --path=P`,
    /// `--key K [--posix]`; none for the pipe (stdin/stdout) and signals (the writer takes the
    /// reader's PID, which the test adds).
    pub fn args(&self) -> Vec<OsString> {
        let mut a: Vec<OsString> = Vec::new();
        match self.mechanism {
            Mechanism::File => {
                a.push("--path".into());
                a.push(self.path().into());
            }
            Mechanism::Fifo => {
                a.push("--fifo".into());
                let mut p = OsString::from("--path=");
                p.push(self.path());
                a.push(p);
            }
            Mechanism::SysvQueue | Mechanism::PosixQueue | Mechanism::SysvShm | Mechanism::PosixShm => {
                a.push("--key".into());
                a.push(self.key.arg().into());
                a.extend(self.mechanism.variant().map(OsString::from));
            }
            Mechanism::Pipe | Mechanism::Signal => {}
        }
        a
    }

    /// The mechanism's binary `name` pointed at this place.
    pub fn command(&self, name: &str) -> Command {
        let mut c = Command::new(bin(self.mechanism.package(), name));
        c.args(self.args());
        c
    }

    pub fn writer(&self) -> Command {
        self.command("writer")
    }

    pub fn reader(&self) -> Command {
        self.command("reader")
    }

    /// Starts a reader with `reader_args`, then a writer with `writer_args` (`writer | reader`
    /// for the pipe), and waits for both to end: (writer, reader). Not for signals.
    pub fn exchange<W, R>(&self, writer_args: W, reader_args: R) -> (Finished, Finished)
    where
        W: IntoIterator,
        W::Item: AsRef<std::ffi::OsStr>,
        R: IntoIterator,
        R::Item: AsRef<std::ffi::OsStr>,
    {
        assert_ne!(self.mechanism, Mechanism::Signal, "signals carry no bytes to exchange");
        if self.mechanism == Mechanism::Pipe {
            // Close-on-exec: a child another test starts meanwhile must not hold the write end open.
            let (rd, wr) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).expect("pipe2");
            let r = Running::spawn(self.reader().args(reader_args).stdin(Stdio::from(rd)));
            let w = Running::spawn_with_stdout(self.writer().args(writer_args), Stdio::from(wr));
            return (w.finish(), r.finish());
        }
        let r = Running::spawn(self.reader().args(reader_args));
        let w = Running::spawn(self.writer().args(writer_args)).finish();
        (w, r.finish())
    }

    /// Fails now if anything is left under the key or in the directory.
    pub fn assert_clean(&self) {
        self.key.assert_clean();
        let left = crate::entries(self.dir.path());
        assert!(left.is_empty(), "{:?} left behind in its directory: {left:?}", self.mechanism);
    }
}
