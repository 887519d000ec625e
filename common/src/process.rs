//! fork and wait as the demos and the bench use them: the child runs a closure and ends with
//! `_exit`, so it never returns into the parent's code, runs no atexit handler twice and prints
//! no buffered output of the parent's.

use std::io::Write;

use nix::errno::Errno;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork};

use crate::{Result, SysResult};

/// Forks; the child runs `child` and `_exit`s with what it returns; the parent gets the child's
/// PID. Call it while no other thread holds a lock: before any thread exists (the demos), or
/// with only the stop thread, parked in sigwait (the bench). glibc's fork resets malloc's locks
/// in the child.
pub fn fork_child(child: impl FnOnce() -> i32) -> Result<Pid> {
    // Buffered output would be copied into the child and printed twice.
    std::io::stdout().flush().sys("fflush", "stdout")?;
    // SAFETY: see above for threads; the child never returns from this function.
    match unsafe { fork() }.sys("fork", "child")? {
        ForkResult::Parent { child } => Ok(child),
        ForkResult::Child => {
            let code = child();
            let _ = std::io::stdout().flush();
            // SAFETY: _exit ends the child at once, without the parent's atexit handlers.
            unsafe { libc::_exit(code) }
        }
    }
}

/// waitpid, retrying EINTR.
pub fn wait_child(pid: Pid, flags: Option<WaitPidFlag>) -> Result<WaitStatus> {
    loop {
        match waitpid(pid, flags) {
            Err(Errno::EINTR) => continue,
            other => return other.sys("waitpid", format!("pid {pid}")),
        }
    }
}

/// [`wait_child`] for a child that prints to the same stdout: if it was killed by SIGPIPE, the
/// reader of that stdout has gone (`demo | head -1`), so this process ends the same way, quietly.
pub fn wait_printing_child(pid: Pid, flags: Option<WaitPidFlag>) -> Result<WaitStatus> {
    match wait_child(pid, flags)? {
        WaitStatus::Signaled(_, nix::sys::signal::Signal::SIGPIPE, _) => {
            crate::stop::die_by(nix::sys::signal::Signal::SIGPIPE)
        }
        other => Ok(other),
    }
}
