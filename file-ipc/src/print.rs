//! The reader's print of a message: one line on stdout, written with write(2) here so that a
//! failure tells whether any byte of it went out (std's buffered stdout cannot tell), which
//! decides whether the message may go back for the next reader. Not traced: stdout is no IPC.

use std::os::fd::AsFd;

use common::Error;
use nix::errno::Errno;

/// Why a message was not delivered, and whether part of it was (it must then never go back:
/// the next reader would print that part again).
#[derive(Debug)]
pub struct Undelivered {
    pub error: Error,
    pub partly: bool,
}

impl Undelivered {
    /// A failure before any of the message went out.
    pub fn before(error: Error) -> Self {
        Undelivered { error, partly: false }
    }
}

/// Writes `msg` and a newline to stdout, all of it, however many writes that takes.
pub fn print_line(msg: &[u8]) -> Result<(), Undelivered> {
    let mut line = Vec::with_capacity(msg.len() + 1);
    line.extend_from_slice(msg);
    line.push(b'\n');
    let out = std::io::stdout();
    let mut done = 0;
    while done < line.len() {
        match nix::unistd::write(out.as_fd(), &line[done..]) {
            Ok(n) => done += n,
            Err(Errno::EINTR) => continue,
            Err(e) => {
                // A closed pipe (`| head -1`) ends the reader quietly, as a filter ends.
                let error = if e == Errno::EPIPE { Error::StdoutClosed } else { Error::sys("write", "stdout", e) };
                return Err(Undelivered { error, partly: done > 0 });
            }
        }
    }
    Ok(())
}
