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
