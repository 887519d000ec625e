//! The note's pipe program done right (P2): pipe(), fork(), the parent writes, the child reads and
//! prints `20 Hello Child Process`.
//!
//! Where the note's code is wrong: MSGSIZE is never defined (20: the text and its NUL); the
//! unused ends stay open, so a reader would never see end-of-file; the parent does not wait, so
//! the child may print after the shell prompt is back.

use std::io::Write;
use std::os::fd::OwnedFd;

use common::{PIPE_MESSAGE, PIPE_MSGSIZE, Result, SysResult};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, fork, read, write};

/// Runs the exchange and returns the exit status for the parent (the child's).
pub fn run() -> Result<u8> {
    let (rd, wr) = nix::unistd::pipe().sys("pipe", "fd[2]")?;
    // Buffered output would be copied into the child and printed twice.
    std::io::stdout().flush().sys("fflush", "stdout")?;
    // SAFETY: the caller runs this before creating any thread, so the child is a copy of a
    // single-threaded process and may run ordinary code until it ends with _exit.
    match unsafe { fork() }.sys("fork", "child")? {
        ForkResult::Parent { child } => {
            drop(rd); // the parent only writes
            let mut msg = PIPE_MESSAGE.as_bytes().to_vec();
            msg.push(0); // the C writes MSGSIZE bytes: the text and its NUL
            write_all(&wr, &msg)?;
            drop(wr); // end-of-file for the child once the message is read
            loop {
                match waitpid(child, None) {
                    Ok(WaitStatus::Exited(_, code)) => return Ok(code as u8),
                    Ok(WaitStatus::Signaled(_, sig, _)) => return Ok(128 + sig as u8),
                    Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
                    Err(e) => return Err(common::Error::sys("waitpid", child, e)),
                }
            }
        }
        ForkResult::Child => {
            drop(wr); // the child only reads; with a write end open it would never see EOF
            let code = match child(&rd) {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("fork: child: {e}");
                    1
                }
            };
            // _exit: no atexit handlers or buffers inherited from the parent run twice.
            // SAFETY: _exit is async-signal-safe and ends the process at once.
            unsafe { nix::libc::_exit(code) }
        }
    }
}

fn write_all(fd: &OwnedFd, mut buf: &[u8]) -> Result<()> {
    while !buf.is_empty() {
        match write(fd, buf) {
            Ok(n) => buf = &buf[n..],
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(common::Error::sys("write", "pipe", e)),
        }
    }
    Ok(())
}

fn child(rd: &OwnedFd) -> Result<()> {
    // One read() may return less than asked: read until MSGSIZE bytes or end-of-file.
    let mut buf = [0u8; PIPE_MSGSIZE];
    let mut nbytes = 0;
    while nbytes < buf.len() {
        match read(rd, &mut buf[nbytes..]) {
            Ok(0) => break,
            Ok(n) => nbytes += n,
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(common::Error::sys("read", "pipe", e)),
        }
    }
    // printf("%s") stops at the NUL.
    let text = buf[..nbytes].split(|&b| b == 0).next().unwrap_or_default();
    let mut out = common::out::stdout();
    out.raw(format!("{nbytes} ").as_bytes())?;
    out.line(text)
}
