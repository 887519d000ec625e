//! The note's pipe program done right (P2): pipe(), fork(), the parent writes, the child reads and
//! prints `20 Hello Child Process`.
//!
//! Where the note's code is wrong: MSGSIZE is never defined (20: the text and its NUL); the
//! unused ends stay open, so a reader would never see end-of-file; the parent does not wait, so
//! the child may print after the shell prompt is back.

use std::os::fd::AsFd;

use common::process::{fork_child, wait_printing_child};
use common::{Result, SysResult};
use nix::fcntl::OFlag;
use nix::sys::wait::WaitStatus;

use crate::sys::{Fd, pipe2, read, write};

/// Runs the exchange and returns the exit status for the parent (the child's).
pub fn run() -> Result<u8> {
    // O_CLOEXEC: nothing is exec'd here, but no descriptor of ours should outlive an exec.
    let (rd, wr) = pipe2(OFlag::O_CLOEXEC).sys("pipe2", "fd[2]")?;
    let mut wr = Some(wr);
    // The caller runs this before creating any thread (so the child may print its --trace lines).
    let child = fork_child(|| {
        drop(wr.take()); // the child only reads; with a write end open it would never see EOF
        match child(&rd) {
            Ok(()) => 0,
            Err(e) => {
                common::diag!("fork: child: {e}");
                1
            }
        }
    })?;
    drop(rd); // the parent only writes
    let wr = wr.take().ok_or_else(|| common::Error::Failed("the write end of the pipe is gone".into()))?;
    let mut msg = crate::DEFAULT_MESSAGE.as_bytes().to_vec();
    msg.push(0); // the C writes MSGSIZE bytes: the text and its NUL
    write_all(&wr, &msg)?;
    drop(wr); // end-of-file for the child once the message is read
    match wait_printing_child(child, None)? {
        WaitStatus::Exited(_, code) => Ok(code as u8),
        WaitStatus::Signaled(_, sig, _) => Ok(128 + sig as u8),
        other => Err(common::Error::Failed(format!("the child ended with {other:?}"))),
    }
}

fn write_all(fd: &Fd, mut buf: &[u8]) -> Result<()> {
    while !buf.is_empty() {
        match write(fd.as_fd(), buf) {
            Ok(n) => buf = &buf[n..],
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(common::Error::sys("write", "pipe", e)),
        }
    }
    Ok(())
}

fn child(rd: &Fd) -> Result<()> {
    // One read() may return less than asked: read until MSGSIZE bytes or end-of-file.
    let mut buf = [0u8; crate::MSGSIZE];
    let mut nbytes = 0;
    while nbytes < buf.len() {
        match read(rd.as_fd(), &mut buf[nbytes..]) {
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
