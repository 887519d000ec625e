//! Messages go to stdout as raw bytes (not necessarily UTF-8), one per line, flushed at once so a
//! peer in another terminal shows them as they arrive. A closed stdout is not a crash.

use std::io::{self, StdoutLock, Write};

use crate::{Error, Result};

pub struct Out(StdoutLock<'static>);

pub fn stdout() -> Out {
    Out(io::stdout().lock())
}

impl Out {
    /// Writes `bytes` and a newline.
    pub fn line(&mut self, bytes: &[u8]) -> Result<()> {
        self.raw(bytes)?;
        self.raw(b"\n")?;
        self.flush()
    }

    /// Writes `bytes` as they are, buffered until the next `flush` or `line`.
    pub fn raw(&mut self, bytes: &[u8]) -> Result<()> {
        self.0.write_all(bytes).map_err(closed_or_io)
    }

    pub fn flush(&mut self) -> Result<()> {
        self.0.flush().map_err(closed_or_io)
    }
}

fn closed_or_io(e: io::Error) -> Error {
    if e.kind() == io::ErrorKind::BrokenPipe { Error::StdoutClosed } else { Error::io("write", "stdout", e) }
}

/// `eprintln!` that cannot panic, and writes the line in one `write`: once a terminal is closed
/// (SIGHUP) its stderr fails with EIO, and a diagnostic must not turn a clean stop into a crash
/// (`eprintln!` panics on a failed write). One write also keeps the line whole next to a peer's.
#[macro_export]
macro_rules! diag {
    ($($arg:tt)*) => {
        $crate::out::diag_line(&format!($($arg)*))
    };
}

#[doc(hidden)]
pub fn diag_line(text: &str) {
    let mut line = String::with_capacity(text.len() + 1);
    line.push_str(text);
    line.push('\n');
    let _ = io::stderr().write_all(line.as_bytes());
}

/// Prints a line of a walk-through at once (forked children print too, and a line must not wait
/// in a buffer that fork copies); a reader that has gone (`demo | head`) ends the process
/// quietly, as a filter ends. Other write errors (a closed terminal) are not worth a crash.
pub fn say(line: &str) {
    let mut out = io::stdout().lock();
    if let Err(e) = writeln!(out, "{line}").and_then(|()| out.flush())
        && e.kind() == io::ErrorKind::BrokenPipe
    {
        crate::stop::die_by(nix::sys::signal::Signal::SIGPIPE)
    }
}
