//! A child process whose stderr lines and exit are awaited with a timeout.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// How long any one awaited event may take before the test fails.
pub const TIMEOUT: Duration = Duration::from_secs(20);

pub struct Running {
    pub pid: Pid,
    /// The exit status, sent by the thread that waits for the child.
    exited: Receiver<std::io::Result<ExitStatus>>,
    done: bool,
    stderr_lines: Receiver<String>,
    stderr_seen: Vec<String>,
    stderr: Option<JoinHandle<()>>,
    stdout: Option<JoinHandle<Vec<u8>>>,
}

/// What a finished child printed and how it ended.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Finished {
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// The exit code, or 128+signal as a shell reports a death by signal.
    pub fn shell_status(&self) -> i32 {
        use std::os::unix::process::ExitStatusExt;
        self.status.code().unwrap_or_else(|| 128 + self.status.signal().unwrap_or(0))
    }

    /// No panic message on stderr: a user never sees a Rust backtrace.
    pub fn assert_no_panic(&self) -> &Self {
        assert!(!self.stderr.contains("panicked"), "panic on stderr: {}", self.stderr);
        self
    }
}

impl Running {
    /// Starts `cmd` with stdout and stderr captured (stdin is whatever `cmd` says, null if unset).
    pub fn spawn(cmd: &mut Command) -> Running {
        Self::spawn_with_stdout(cmd, Stdio::piped())
    }

    /// [`Self::spawn`] with stdout going to `stdout` (e.g. the write end of a pipe to a reader),
    /// which is then not captured.
    pub fn spawn_with_stdout(cmd: &mut Command, stdout: Stdio) -> Running {
        let mut child = cmd.stdout(stdout).stderr(Stdio::piped()).spawn().expect("spawn");
        let pid = Pid::from_raw(child.id() as i32);
        let out = child.stdout.take();
        let stdout = std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut out) = out {
                let _ = out.read_to_end(&mut buf);
            }
            buf
        });
        let err = child.stderr.take().expect("stderr");
        let (tx, stderr_lines) = channel();
        let stderr = std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let (tx, exited) = channel();
        std::thread::spawn(move || tx.send(child.wait()));
        Running {
            pid,
            exited,
            done: false,
            stderr_lines,
            stderr_seen: Vec::new(),
            stderr: Some(stderr),
            stdout: Some(stdout),
        }
    }

    /// Blocks until a stderr line contains `needle` (the ready line), failing after [`TIMEOUT`].
    pub fn wait_for_stderr(&mut self, needle: &str) -> String {
        self.wait_for_stderr_or_end(needle)
            .unwrap_or_else(|| panic!("stderr closed before a line with {needle:?}; saw {:?}", self.stderr_seen))
    }

    /// Like [`Self::wait_for_stderr`], but a child that closes stderr (it ended) first is no
    /// failure: `None`. For a command that either waits for its peer or does its job at once.
    pub fn wait_for_stderr_or_end(&mut self, needle: &str) -> Option<String> {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr_lines.recv_timeout(left) {
                Ok(line) => {
                    self.stderr_seen.push(line.clone());
                    if line.contains(needle) {
                        return Some(line);
                    }
                }
                Err(RecvTimeoutError::Disconnected) => return None,
                Err(RecvTimeoutError::Timeout) => {
                    panic!("no stderr line with {needle:?} and no end within {TIMEOUT:?}; saw {:?}", self.stderr_seen)
                }
            }
        }
    }

    pub fn signal(&self, sig: Signal) {
        kill(self.pid, sig).expect("kill");
    }

    /// Waits for the exit (failing after [`TIMEOUT`]) and collects what was printed.
    pub fn finish(mut self) -> Finished {
        let status = match self.exited.recv_timeout(TIMEOUT) {
            Ok(status) => status.expect("wait"),
            Err(_) => panic!("pid {} did not exit within {TIMEOUT:?}; stderr so far {:?}", self.pid, self.stderr_seen),
        };
        self.done = true;
        let stdout = self.stdout.take().expect("stdout").join().expect("stdout reader");
        self.stderr.take().expect("stderr").join().expect("stderr reader");
        let mut lines = std::mem::take(&mut self.stderr_seen);
        lines.extend(self.stderr_lines.try_iter());
        let stderr = lines.iter().map(|l| format!("{l}\n")).collect();
        Finished { status, stdout, stderr }
    }
}

impl Drop for Running {
    /// A failed test must not leave its child running: SIGTERM lets it clean up, SIGKILL if not.
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let _ = kill(self.pid, Signal::SIGTERM);
        if self.exited.recv_timeout(Duration::from_secs(2)).is_err() {
            let _ = kill(self.pid, Signal::SIGKILL);
            let _ = self.exited.recv_timeout(TIMEOUT);
        }
    }
}
