//! fork and wait as the demos and the bench use them: the child runs a closure and ends with
//! `_exit`, so it never returns into the parent's code, runs no atexit handler twice and prints
//! no buffered output of the parent's. Both print themselves under `--trace`: `fork()` as the
//! library call it is (glibc makes it a `clone()`, whose child_tidptr is glibc's own business),
//! `wait4()` as strace shows the system call that waitpid() makes.

use std::io::Write;

use nix::errno::Errno;
use nix::sys::wait::{WaitPidFlag, WaitStatus};
use nix::unistd::{ForkResult, Pid, fork};

use crate::{Result, SysResult, trace};

/// Forks; the child runs `child` and `_exit`s with what it returns; the parent gets the child's
/// PID. Call it while no other thread holds a lock: before any thread exists (the demos), or
/// with only the stop thread, parked in sigwait (the bench). glibc's fork resets malloc's locks
/// in the child.
pub fn fork_child(child: impl FnOnce() -> i32) -> Result<Pid> {
    // Buffered output would be copied into the child and printed twice.
    std::io::stdout().flush().sys("fflush", "stdout")?;
    // A --trace line allocates and takes stderr's lock. With only this thread, nothing can hold
    // those at fork, so the child may trace; with others (the bench's stop thread) it must not.
    let child_may_trace = trace::on() && threads() == Some(1);
    // SAFETY: see above for threads; the child never returns from this function.
    let r = unsafe { fork() };
    if !matches!(r, Ok(ForkResult::Child)) {
        trace::library_call(&r, |r| {
            let ret = r.or_errno(|f| match f {
                ForkResult::Parent { child } => child.to_string(),
                ForkResult::Child => "0".into(),
            });
            ("fork()".into(), ret)
        });
    }
    match r.sys("fork", "child")? {
        ForkResult::Parent { child } => Ok(child),
        ForkResult::Child => {
            if !child_may_trace {
                trace::off();
            }
            let code = child();
            let _ = std::io::stdout().flush();
            // SAFETY: _exit ends the child at once, without the parent's atexit handlers.
            unsafe { libc::_exit(code) }
        }
    }
}

/// How many threads this process has (None if /proc cannot say). Read only under --trace.
fn threads() -> Option<usize> {
    Some(std::fs::read_dir("/proc/self/task").ok()?.count())
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

/// waitpid(2) as glibc makes it, `wait4(pid, &status, flags, NULL)`, printed as strace shows it.
fn waitpid(pid: Pid, flags: Option<WaitPidFlag>) -> nix::Result<WaitStatus> {
    let bits = flags.map_or(0, |f| f.bits());
    let mut status: libc::c_int = 0;
    // SAFETY: waitpid writes one int through the pointer, which points at `status`.
    let r = Errno::result(unsafe { libc::waitpid(pid.as_raw(), &mut status, bits) });
    trace::call(&r, |r| {
        let shown = match r.value() {
            Some(&p) if p > 0 => wait_status(status),
            _ => trace::ptr(&status),
        };
        (format!("wait4({pid}, {shown}, {}, NULL)", wait_flags(bits)), r.decimal())
    });
    let r = r?;
    if r == 0 { Ok(WaitStatus::StillAlive) } else { WaitStatus::from_raw(Pid::from_raw(r), status) }
}

/// wait4's flags as strace names them: WUNTRACED is the same bit as WSTOPPED, and strace says
/// WSTOPPED.
fn wait_flags(bits: libc::c_int) -> String {
    let names = [(libc::WNOHANG, "WNOHANG"), (libc::WSTOPPED, "WSTOPPED"), (libc::WCONTINUED, "WCONTINUED")]
        .map(|(bit, name)| (i64::from(bit), name));
    trace::flags(bits.into(), &names)
}

/// A wait status as strace decodes it: `[{WIFEXITED(s) && WEXITSTATUS(s) == 0}]`.
fn wait_status(s: libc::c_int) -> String {
    let sig = |n: libc::c_int| {
        nix::sys::signal::Signal::try_from(n).map_or_else(|_| n.to_string(), |s| s.as_str().to_string())
    };
    let inner = if libc::WIFEXITED(s) {
        format!("WIFEXITED(s) && WEXITSTATUS(s) == {}", libc::WEXITSTATUS(s))
    } else if libc::WIFSIGNALED(s) {
        let core = if libc::WCOREDUMP(s) { " && WCOREDUMP(s)" } else { "" };
        format!("WIFSIGNALED(s) && WTERMSIG(s) == {}{core}", sig(libc::WTERMSIG(s)))
    } else if libc::WIFSTOPPED(s) {
        format!("WIFSTOPPED(s) && WSTOPSIG(s) == {}", sig(libc::WSTOPSIG(s)))
    } else if libc::WIFCONTINUED(s) {
        "WIFCONTINUED(s)".into()
    } else {
        format!("{s:#x}")
    };
    format!("[{{{inner}}}]")
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

#[cfg(test)]
mod tests {
    use super::*;

    /// As strace 6.1 printed them for a C program's waitpid() (checked by hand).
    #[test]
    fn wait4_as_strace_prints_it() {
        assert_eq!(wait_status(0), "[{WIFEXITED(s) && WEXITSTATUS(s) == 0}]");
        assert_eq!(wait_status(3 << 8), "[{WIFEXITED(s) && WEXITSTATUS(s) == 3}]");
        assert_eq!(wait_status(libc::SIGKILL), "[{WIFSIGNALED(s) && WTERMSIG(s) == SIGKILL}]");
        assert_eq!(wait_status((libc::SIGSTOP << 8) | 0x7f), "[{WIFSTOPPED(s) && WSTOPSIG(s) == SIGSTOP}]");
        assert_eq!(wait_flags(libc::WUNTRACED), "WSTOPPED");
        assert_eq!(wait_flags(libc::WNOHANG), "WNOHANG");
        assert_eq!(wait_flags(0), "0");
    }
}
