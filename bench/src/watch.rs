//! Neither process of a row can be left waiting for the other. The parent's watchdog thread waits
//! for the child: if the child ends before the parent has finished the row (it failed a check,
//! was killed, or exited), the watchdog removes the row's objects, prints one line naming the row
//! and the cause, and ends the bench (exit 1; or by the same stop signal if one stopped the
//! child). It does the same if no message moves for [`STALL`] while both are alive (a lost
//! message leaves each side waiting for the other). The child's guard thread waits on a pipe that only the parent holds open, and on the
//! stop signals: if the parent goes (even by SIGKILL) or a stop signal comes, it removes the
//! row's objects and ends the child.

use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::process::wait_child;
use common::stop::{STOP_SIGNALS, die_by};
use common::{Error, Result, SysResult};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use crate::mechs::Setup;

/// How long a child that exited with 0 has to have been expected (the parent's last receive and
/// the child's exit race) before it counts as gone early.
const EXIT_GRACE: Duration = Duration::from_millis(300);
/// How long no message may move before the row counts as stuck (a lost message leaves both
/// sides waiting, each alive). The slowest row moves one every ~0.3 ms.
pub const STALL: Duration = Duration::from_secs(3);
/// How often the watchdog looks at the child and the progress.
const TICK: Duration = Duration::from_millis(20);

/// The parent's watchdog over one row's child.
pub struct Watchdog {
    /// Set once the parent no longer needs the child (finished, failed, or stopping).
    pub done: Arc<AtomicBool>,
    /// Bumped by the parent at every message it sends or receives.
    pub progress: Arc<AtomicU64>,
    thread: JoinHandle<Result<(WaitStatus, String)>>,
}

impl Watchdog {
    /// Starts watching `child`; `report` is the read end of the pipe the child writes its error
    /// to. `row` names the row in the one line printed.
    pub fn start(child: Pid, row: String, report: OwnedFd, setup: Arc<dyn Setup>) -> Result<Watchdog> {
        let done = Arc::new(AtomicBool::new(false));
        let progress = Arc::new(AtomicU64::new(0));
        let (flag, moved) = (done.clone(), progress.clone());
        let thread = std::thread::Builder::new()
            .name("watchdog".into())
            .spawn(move || {
                let (mut last, mut since) = (0, Instant::now());
                let status = loop {
                    match waitpid(child, Some(WaitPidFlag::WNOHANG)) {
                        Ok(WaitStatus::StillAlive) | Err(Errno::EINTR) => {}
                        other => break other.sys("waitpid", format!("pid {child}"))?,
                    }
                    let now = moved.load(Ordering::Relaxed);
                    if now != last || flag.load(Ordering::SeqCst) {
                        (last, since) = (now, Instant::now());
                    } else if since.elapsed() > STALL {
                        let _ = kill(child, Signal::SIGKILL);
                        let _ = wait_child(child, None);
                        setup.cleanup();
                        common::diag!(
                            "bench: {row}: no message moved for {} s (lost, or a side is stuck); removed the row's objects",
                            STALL.as_secs()
                        );
                        std::process::exit(1);
                    }
                    std::thread::sleep(TICK);
                };
                let mut said = String::new();
                let _ = std::fs::File::from(report).read_to_string(&mut said);
                let said = said.trim().to_string();
                if expected(&flag, &status) {
                    return Ok((status, said));
                }
                setup.cleanup();
                let cause = if said.is_empty() { describe(&status) } else { said };
                common::diag!("bench: {row}: {cause}; removed the row's objects");
                match status {
                    WaitStatus::Signaled(_, sig, _) if STOP_SIGNALS.contains(&sig) => die_by(sig),
                    _ => std::process::exit(1),
                }
            })
            .sys("pthread_create", "watchdog")?;
        Ok(Watchdog { done, progress, thread })
    }

    /// After the parent's side failed: the failure may follow from the child's end (an end of
    /// file once it died), so if the child has ended, the watchdog reports the child's cause (and
    /// ends the bench); if it lives on a moment later, it is killed (it may wait for a message
    /// that never comes) and the parent's own error stands.
    pub fn parent_failed(&self, child: Pid) {
        let until = Instant::now() + EXIT_GRACE;
        while !self.thread.is_finished() && (ended(child) || Instant::now() < until) {
            std::thread::sleep(Duration::from_millis(5));
        }
        self.done.store(true, Ordering::SeqCst);
        let _ = kill(child, Signal::SIGKILL);
    }

    /// Waits for the watchdog (so for the child's end) and returns how the child ended and what
    /// it said went wrong (empty if nothing).
    pub fn join(self) -> Result<(WaitStatus, String)> {
        self.done.store(true, Ordering::SeqCst);
        self.thread.join().unwrap_or_else(|_| Err(Error::Failed("the watchdog thread panicked".into())))
    }
}

/// Whether the parent expected the child to end: it said so, or says so soon after a clean exit.
fn expected(done: &AtomicBool, status: &WaitStatus) -> bool {
    if done.load(Ordering::SeqCst) {
        return true;
    }
    if !matches!(status, WaitStatus::Exited(_, 0)) {
        return false;
    }
    let until = Instant::now() + EXIT_GRACE;
    while Instant::now() < until {
        if done.load(Ordering::SeqCst) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5)); // the parent's last receive is under way
    }
    done.load(Ordering::SeqCst)
}

/// Whether `child` has ended (a zombie until the watchdog reaps it, or gone).
fn ended(child: Pid) -> bool {
    match std::fs::read_to_string(format!("/proc/{child}/stat")) {
        // pid (comm) state ...: the comm may hold spaces and parentheses, the state follows the last ')'.
        Ok(stat) => stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => true,
    }
}

fn describe(status: &WaitStatus) -> String {
    match status {
        WaitStatus::Exited(pid, code) => format!("the child (pid {pid}) exited with {code} before the row ended"),
        WaitStatus::Signaled(pid, sig, _) => format!("the child (pid {pid}) was killed by {sig}"),
        other => format!("the child ended: {other:?}"),
    }
}

/// In the child, right after the fork: starts the guard threads. `alive` is the read end of a
/// pipe whose write end only the parent holds (closed when the parent ends, however it ends).
/// Two threads, one waiting in poll on the pipe, one in sigwait for the stop signals: a signalfd
/// would do both in one poll, but every signal the child is sent (the signal row's, one per
/// message) wakes every poller of a signalfd, a context switch per message that C does not pay.
pub fn guard_child(alive: OwnedFd, row: String, setup: Arc<dyn Setup>) -> Result<()> {
    let mut set = SigSet::empty();
    for sig in STOP_SIGNALS {
        set.add(sig); // blocked in this thread already: inherited from the parent's main thread
    }
    let setup2 = setup.clone();
    std::thread::Builder::new()
        .name("guard".into())
        .spawn(move || {
            loop {
                let mut fds = [PollFd::new(alive.as_fd(), PollFlags::POLLIN)];
                if poll(&mut fds, PollTimeout::NONE).is_ok() && fds[0].any() == Some(true) {
                    break; // EOF: the parent is gone
                }
            }
            // Said before the objects go: the main thread fails on their removal and ends the
            // process, possibly before this thread runs again.
            common::diag!("bench: {row}: child: the parent is gone; removing the row's objects");
            setup2.cleanup();
            // SAFETY: _exit ends the child at once, as fork_child's children end.
            unsafe { libc::_exit(1) }
        })
        .sys("pthread_create", "guard")?;
    std::thread::Builder::new()
        .name("stop".into())
        .spawn(move || {
            let sig = loop {
                if let Ok(sig) = set.wait() {
                    break sig;
                }
            };
            setup.cleanup();
            die_by(sig)
        })
        .sys("pthread_create", "stop guard")?;
    Ok(())
}
