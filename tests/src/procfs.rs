//! What /proc says about a process, and bounded waits for it: for programs that print no ready
//! line (the note's examples), the tests wait on the kernel's view instead, e.g. until a signal's
//! bit is set in SigCgt or SigIgn, or the process sleeps in the system call it waits in.

use std::os::fd::{AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use crate::running::TIMEOUT;

/// Polls `ready` (every millisecond) until it holds, failing the test after [`TIMEOUT`]: a wait on
/// an event the kernel shows, not a sleep standing in for one.
pub fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    while !ready() {
        assert!(Instant::now() < deadline, "not within {TIMEOUT:?}: {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The one-letter state of `pid` (`S` sleeping, `R` running, `T`/`t` stopped, `Z` zombie), None
/// once it is gone.
pub fn state(pid: Pid) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The name in parentheses may hold spaces and parentheses: the state follows the last ')'.
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// The parent of `pid`, None once it is gone.
pub fn ppid(pid: Pid) -> Option<Pid> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok().map(Pid::from_raw)
}

/// The program `pid` runs (None for a zombie or a process gone).
pub fn exe(pid: Pid) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/exe")).ok()
}

/// The system call `pid` is blocked in (`/proc/PID/syscall`), None while it runs or once it is gone.
pub fn syscall(pid: Pid) -> Option<libc::c_long> {
    std::fs::read_to_string(format!("/proc/{pid}/syscall")).ok()?.split_whitespace().next()?.parse().ok()
}

/// Whether `sig` is set in the mask `field` (`SigCgt`: caught, `SigIgn`: ignored, `SigBlk`) of
/// /proc/PID/status.
pub fn has_signal(pid: Pid, field: &str, sig: Signal) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else { return false };
    let mask = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .unwrap_or(0);
    mask & (1 << (sig as u32 - 1)) != 0
}

/// Whether `pid` runs `program` (its exec is done) and sleeps in a system call: where a program
/// without a ready line waits (pause, msgrcv); until then it runs, since nothing before it blocks.
pub fn asleep_in(pid: Pid, program: &Path) -> bool {
    exe(pid).as_deref() == Some(program) && state(pid) == Some('S')
}

/// Every process whose parent is `parent`.
pub fn children(parent: Pid) -> Vec<Pid> {
    pids().into_iter().filter(|&p| ppid(p) == Some(parent)).collect()
}

/// The other processes that hold the pipe (or file) that `fd` of this process refers to.
pub fn holders(fd: BorrowedFd<'_>) -> Vec<Pid> {
    let me = Pid::this();
    let target = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).expect("readlink own fd");
    pids()
        .into_iter()
        .filter(|&p| p != me)
        .filter(|p| {
            std::fs::read_dir(format!("/proc/{p}/fd"))
                .map(|fds| fds.flatten().any(|e| std::fs::read_link(e.path()).ok().as_ref() == Some(&target)))
                .unwrap_or(false)
        })
        .collect()
}

/// How many descriptors of `pid` refer to `what` (a `/proc/PID/fd` link text such as `pipe:[123]`).
pub fn fds_on(pid: Pid, what: &Path) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|fds| fds.flatten().filter(|e| std::fs::read_link(e.path()).ok().as_deref() == Some(what)).count())
        .unwrap_or(0)
}

fn pids() -> Vec<Pid> {
    std::fs::read_dir("/proc")
        .expect("read /proc")
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok().map(Pid::from_raw))
        .collect()
}

/// Makes this process the reaper of orphans among its descendants (`PR_SET_CHILD_SUBREAPER`): a
/// child of the note's fork program, whose parent does not wait, comes back to the test to be
/// reaped, instead of to a PID 1 that may never reap it (as in some containers).
pub fn adopt_orphans() {
    // SAFETY: prctl with integer arguments only.
    let r = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    assert_eq!(r, 0, "prctl(PR_SET_CHILD_SUBREAPER): {}", std::io::Error::last_os_error());
}

/// Waits (bounded) for the end of `pid`, a child of this process or an orphan it adopted.
pub fn reap(pid: Pid) -> WaitStatus {
    let mut status = None;
    wait_until(&format!("the end of pid {pid}"), || match waitpid(pid, Some(WaitPidFlag::WNOHANG)).expect("waitpid") {
        WaitStatus::StillAlive => false,
        s => {
            status = Some(s);
            true
        }
    });
    status.expect("a status")
}
