//! Pipes (note section 2, claims P1-P2, M5-M6): a one-way byte stream. An anonymous pipe joins
//! processes with a common ancestor (the shell's `writer | reader`, or the note's fork), a named
//! pipe (FIFO) joins unrelated ones, which the note says only message queues can do.

pub mod fifo;
pub mod forked;
pub mod sys;

use std::io::{BufRead, Write};

use common::Result;
use common::out::Out;

/// The note's pipe message, the writer's when none is given.
pub const DEFAULT_MESSAGE: &str = "Hello Child Process";

/// What the note's fork example writes and reads: the message and its NUL. `MSGSIZE` is undefined
/// in the note; 20 makes it print `20 Hello Child Process`.
pub const MSGSIZE: usize = DEFAULT_MESSAGE.len() + 1;

/// Writes each message and a newline. A pipe keeps no message boundaries (M6), so the newline is
/// what tells the reader where one ends. `closed` maps a write error (EPIPE above all).
pub fn write_lines(
    to: &mut impl Write,
    msgs: impl Iterator<Item = impl AsRef<[u8]>>,
    closed: impl Fn(std::io::Error) -> common::Error,
) -> Result<()> {
    for msg in msgs {
        to.write_all(msg.as_ref()).map_err(&closed)?;
        to.write_all(b"\n").map_err(&closed)?;
    }
    to.flush().map_err(&closed)
}

/// Prints each line of `from` (bytes as they are) until end of file, or `count` lines. Bytes that
/// end without a newline at end of file are a line cut short (its writer died in the middle of
/// it): they are not printed as a line, and that is an error that says how many they were.
pub fn copy_lines(from: &mut impl BufRead, out: &mut Out, count: Option<u64>, what: &str) -> Result<u64> {
    let mut line = Vec::new();
    let mut n = 0;
    while count.is_none_or(|c| n < c) {
        match from.read_until(b'\n', &mut line) {
            Ok(0) if line.is_empty() => break,
            Ok(0) => return Err(cut_short(what, line.len())),
            Ok(_) if line.last() != Some(&b'\n') => continue, // end of file next, or more after EINTR
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(common::Error::io("read", what, e)),
        }
        line.pop();
        let held = common::gate::hold(&line); // a stop waits until it is printed whole
        out.line(&line)?;
        drop(held);
        line.clear();
        n += 1;
    }
    Ok(n)
}

/// A line without its newline at end of file: dropped, said.
fn cut_short(what: &str, len: usize) -> common::Error {
    common::Error::Failed(format!(
        "{what} ended in the middle of a line: {len} bytes with no newline after them were dropped, not printed as a line"
    ))
}

/// What a peer needs to meet us on a FIFO, for a waiting line: `--fifo`, and `--path P` if the
/// user gave one.
pub fn peer_args(given: Option<&std::path::Path>) -> String {
    match given {
        Some(path) => format!("--fifo --path {}", path.display()),
        None => "--fifo".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use nix::unistd::{pipe, read, write};

    #[test]
    fn a_line_cut_short_at_end_of_file_is_not_printed() {
        let mut out = common::out::stdout();
        let e = super::copy_lines(&mut &b""[..], &mut out, None, "stdin").map_err(|e| e.to_string());
        assert_eq!(e, Ok(0));
        let e = super::copy_lines(&mut &b"abc"[..], &mut out, None, "stdin").map_err(|e| e.to_string());
        assert_eq!(
            e,
            Err("stdin ended in the middle of a line: 3 bytes with no newline after them were dropped, not printed as a \
                 line"
                .into())
        );
    }

    /// M6: a pipe is a byte stream. Two writes can come out of one read(), so a message needs a
    /// delimiter or a length; a message queue hands out exactly what each msgsnd put in.
    #[test]
    fn a_pipe_can_hand_two_writes_to_one_read() {
        let (r, w) = pipe().expect("pipe");
        assert_eq!(write(&w, b"first").expect("write"), 5);
        assert_eq!(write(&w, b"second").expect("write"), 6);
        let mut buf = [0u8; 64];
        let n = read(&r, &mut buf).expect("read");
        assert_eq!(&buf[..n], b"firstsecond", "one read() returned both writes");
    }
}
