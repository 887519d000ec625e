//! A closed terminal (issue 11): when the master side of a terminal closes, the kernel sends SIGHUP
//! to the process that holds it as its controlling terminal. A reader waiting in one removes what it
//! made and ends with 129, even though its stderr now fails with EIO.

use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::sync::mpsc::channel;
use std::time::Instant;

use nix::fcntl::{FcntlArg, FdFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::pty::openpty;
use tests::running::TIMEOUT;
use tests::{EVERY, Mechanism, Place};

/// Runs `cmd` as the session leader of a new pseudo-terminal (stdin, stdout and stderr all on it),
/// waits for `ready` on the screen, closes the terminal and returns how the process ended.
fn close_terminal_around(mut cmd: Command, ready: &str) -> std::process::ExitStatus {
    let pty = openpty(None, None).expect("openpty");
    // openpty's descriptors are inherited: a master kept open in the child would keep the terminal.
    for fd in [&pty.master, &pty.slave] {
        fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).expect("FD_CLOEXEC");
    }
    let slave = |p: &OwnedFd| Stdio::from(p.try_clone().expect("dup"));
    cmd.stdin(slave(&pty.slave)).stdout(slave(&pty.slave)).stderr(slave(&pty.slave));
    // SAFETY: setsid and ioctl are async-signal-safe; the closure allocates nothing.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("spawn");
    drop(pty.slave);
    let mut master = std::fs::File::from(pty.master);
    let mut screen = Vec::new();
    let deadline = Instant::now() + TIMEOUT;
    // The whole ready line: closing in the middle of it would test a half-written diagnostic.
    let shown = |s: &[u8]| String::from_utf8_lossy(s).split_once(ready).is_some_and(|(_, rest)| rest.contains('\n'));
    while !shown(&screen) {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "no {ready:?} on the terminal within {TIMEOUT:?}: {:?}",
            String::from_utf8_lossy(&screen)
        );
        let mut fds = [PollFd::new(master.as_fd(), PollFlags::POLLIN)];
        let ms = PollTimeout::try_from(left.as_millis().min(1000) as i32).expect("timeout");
        if poll(&mut fds, ms).expect("poll") > 0 {
            let mut buf = [0u8; 512];
            let n = master.read(&mut buf).expect("read the terminal");
            screen.extend_from_slice(&buf[..n]);
        }
    }
    drop(master); // the window closes
    let (tx, rx) = channel();
    let pid = child.id();
    std::thread::spawn(move || tx.send(child.wait()));
    match rx.recv_timeout(TIMEOUT) {
        Ok(status) => status.expect("wait"),
        Err(_) => {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL);
            panic!("pid {pid} still runs {TIMEOUT:?} after its terminal closed")
        }
    }
}

#[test]
fn closing_the_terminal_of_every_waiting_reader_leaves_nothing() {
    for m in EVERY {
        let place = Place::new(m);
        let ready = match m {
            Mechanism::File
            | Mechanism::Fifo
            | Mechanism::SysvQueue
            | Mechanism::PosixQueue
            | Mechanism::SysvShm
            | Mechanism::PosixShm => "reader: waiting",
            Mechanism::Signal => "waiting for SIGINT",
            // Its stdin is the terminal itself: it prints no waiting line, and the terminal closing
            // is its end of input. The FIFO reader covers a reader waiting on a pipe.
            Mechanism::Pipe => continue,
        };
        let status = close_terminal_around(place.reader(), ready);
        match m {
            // The file reader ends with 129 as its own exit status or by SIGHUP itself.
            Mechanism::File => assert!(
                status.code() == Some(129) || status.signal() == Some(libc::SIGHUP),
                "{m:?} reader ended with {status:?}"
            ),
            _ => assert_eq!(status.signal(), Some(libc::SIGHUP), "{m:?} reader ended with {status:?}"),
        }
        place.assert_clean();
    }
}
