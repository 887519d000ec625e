//! The note's signal claims, in its order, one forked child each (G3-G11). A child ends with _exit or dies by
//! its signal; the parent reads how it ended from waitpid, which is how a shell knows too.

use std::time::Instant;

use common::out::say;
use common::process::{fork_child, wait_printing_child};
use common::{Error, Result, SysResult};
use nix::sys::signal::Signal;
use nix::sys::wait::{WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::catch::{install_recorder, recorded};
use crate::names::{Sig, kill_l};
use crate::sys::{self, Handling};

/// How a child ended, in words, and whether it is what the step expects.
fn ended(status: WaitStatus, expect: &WaitStatus) -> Result<()> {
    let text = match status {
        WaitStatus::Exited(_, code) => format!("exited with status {code}"),
        WaitStatus::Signaled(_, sig, _) => {
            format!("was killed by {} (the default action; a shell shows status {})", sig.as_str(), 128 + sig as i32)
        }
        other => format!("{other:?}"),
    };
    say(&format!("  -> the child {text}"));
    let same = match (status, expect) {
        (WaitStatus::Exited(_, a), WaitStatus::Exited(_, b)) => a == *b,
        (WaitStatus::Signaled(_, a, _), WaitStatus::Signaled(_, b, _)) => a == *b,
        _ => false,
    };
    if same { Ok(()) } else { Err(Error::Failed(format!("expected {expect:?}, got {status:?}"))) }
}

fn exits(code: i32) -> WaitStatus {
    WaitStatus::Exited(Pid::from_raw(0), code)
}

fn killed(sig: Signal) -> WaitStatus {
    WaitStatus::Signaled(Pid::from_raw(0), sig, false)
}

/// A claim's heading: its id and what the note says, then what the step does to show it.
fn claim(id: &str, note: &str, doing: &str) {
    say(&format!("\n{id} the note: {note}\n  {doing}"));
}

/// Runs one step: a heading, a child, and how the child must end.
fn step(heading: (&str, &str, &str), body: impl FnOnce() -> i32, expect: WaitStatus) -> Result<()> {
    claim(heading.0, heading.1, heading.2);
    let child = fork_child(body)?;
    ended(wait_printing_child(child, None)?, &expect)
}

/// Every signal claim of the note, in the note's order: G3, G4 (its four outcomes), G5-G11.
pub fn run() -> Result<()> {
    if common::trace::on() {
        sys::learn_restorer(); // once, here, rather than in every child
    }
    step(
        (
            "G3",
            "a process registers a handler for a signal, which then runs when the signal arrives",
            "G4.3 handled: sigaction(SIGINT, handler), then raise(SIGINT)",
        ),
        || {
            let _ = install_recorder(libc::SIGINT);
            let _ = sys::raise(libc::SIGINT);
            say(&format!(
                "  child: the handler ran and recorded signal {}; the child goes on (the handler only records:\n         printf and exit are not async-signal-safe, so printing happens here, outside it)",
                recorded()
            ));
            if recorded() == libc::SIGINT { 0 } else { 1 }
        },
        exits(0),
    )?;
    step(
        ("G4.1", "a signal can be ignored", "ignored: SIG_IGN, then raise(SIGUSR1)"),
        || {
            let _ = ignore(libc::SIGUSR1);
            let _ = sys::raise(libc::SIGUSR1);
            say("  child: raised SIGUSR1 while it is ignored: nothing happened, it goes on");
            0
        },
        exits(0),
    )?;
    step(
        (
            "G4.2",
            "a blocked signal is delivered once it is unblocked",
            "blocked: sigprocmask(SIG_BLOCK), raise, then unblock",
        ),
        || {
            let _ = install_recorder(libc::SIGUSR1);
            let Ok(usr1) = sys::sigset(&[libc::SIGUSR1]) else { return 1 };
            let _ = sys::block(&usr1);
            let _ = sys::raise(libc::SIGUSR1);
            let pending = sys::is_pending(libc::SIGUSR1).unwrap_or(false);
            say(&format!("  child: while blocked: pending = {pending}, handler ran = {}", recorded() != 0));
            let _ = sys::unblock(&usr1); // delivered now, before this call returns
            say(&format!("  child: after unblocking: handler ran = {}", recorded() != 0));
            if pending && recorded() == libc::SIGUSR1 { 0 } else { 1 }
        },
        exits(0),
    )?;
    step(
        (
            "G4.4",
            "with no handler registered, the kernel's default action runs",
            "default action: no handler, raise(SIGTERM)",
        ),
        || sys::raise(libc::SIGTERM).map_or(1, |_| 0),
        killed(Signal::SIGTERM),
    )?;
    claim(
        "G5",
        "signals are defined by the OS, usually 64; `kill -l` lists them",
        "the signals, as `kill -l` lists them: standard 1-31, real-time SIGRTMIN-SIGRTMAX (32 and 33 are glibc's own)",
    );
    say(kill_l().trim_end());
    queue_versus_merge()?;
    step(
        (
            "G6",
            "SIGKILL kills a process whatever happens; a signal the superuser uses",
            "SIGKILL and SIGSTOP cannot be caught or ignored (any process allowed to signal the target may send them)",
        ),
        || {
            let caught = install_recorder(libc::SIGKILL);
            let ignored = ignore(libc::SIGSTOP);
            say(&format!("  child: sigaction(SIGKILL, handler): {}", describe(caught.map(drop))));
            say(&format!("  child: sigaction(SIGSTOP, SIG_IGN): {}", describe(ignored.map(drop))));
            let _ = sys::raise(libc::SIGKILL);
            0
        },
        killed(Signal::SIGKILL),
    )?;
    let start = Instant::now();
    step(
        (
            "G7",
            "\"SIGALRAM\" raises an alarm",
            "SIGALRM (the note's \"SIGALRAM\" is a misspelling) from alarm(1), default action",
        ),
        || {
            nix::unistd::alarm::set(1);
            nix::unistd::pause();
            1
        },
        killed(Signal::SIGALRM),
    )?;
    say(&format!("  -> after {:.1} s", start.elapsed().as_secs_f64()));
    stop_and_continue()?;
    step(
        (
            "G10",
            "SIGSEGV tells that a process touched memory that is not its own",
            "SIGSEGV: an invalid memory access (here a read of a kernel address, S4: user code cannot touch the kernel's half)",
        ),
        || {
            no_core_dump();
            let kernel_half = 0xffff_8000_0000_0000usize as *const u8;
            // SAFETY: it is not safe, on purpose: the read faults and the kernel kills the child
            // with SIGSEGV before the value could be used.
            let byte = unsafe { std::ptr::read_volatile(kernel_half) };
            say(&format!("  child: read {byte}: the kernel half was readable?!"));
            1
        },
        killed(Signal::SIGSEGV),
    )?;
    step(
        (
            "G11",
            "SIGUSR1 and SIGUSR2 have no defined default action",
            "SIGUSR1 has no defined meaning, but a default action: terminate",
        ),
        || sys::raise(libc::SIGUSR1).map_or(1, |_| 0),
        killed(Signal::SIGUSR1),
    )?;
    Ok(())
}

/// sigaction(sig, SIG_IGN), as the note's signal(sig, SIG_IGN) asks.
fn ignore(sig: i32) -> nix::Result<libc::sigaction> {
    sys::sigaction(sig, Handling::Ignore, &sys::sigset(&[])?, 0)
}

fn describe(r: nix::Result<()>) -> String {
    match r {
        Ok(()) => "accepted?!".into(),
        Err(e) => format!("fails with {e:?} ({})", e.desc()),
    }
}

fn no_core_dump() {
    let _ = nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_CORE, 0, 0);
}

/// G8, G9: SIGTSTP (Ctrl+Z; the note's "SIGSTP" is a misspelling) can be caught, SIGSTOP cannot;
/// SIGCONT resumes a stopped process.
fn stop_and_continue() -> Result<()> {
    claim(
        "G8, G9",
        "\"SIGSTP\" stops a process (Ctrl+Z); SIGCONT resumes a stopped one",
        "SIGTSTP (Ctrl+Z; the note's \"SIGSTP\" is a misspelling) can be caught; SIGSTOP cannot; SIGCONT resumes",
    );
    let child = fork_child(|| {
        let _ = install_recorder(libc::SIGTSTP);
        let _ = sys::raise(libc::SIGTSTP);
        say(&format!(
            "  child: raised SIGTSTP: the handler caught it (recorded {}), the child did not stop",
            recorded()
        ));
        say("  child: raising SIGSTOP");
        let _ = sys::raise(libc::SIGSTOP);
        say("  child: resumed by SIGCONT, going on");
        0
    })?;
    match wait_printing_child(child, Some(WaitPidFlag::WUNTRACED))? {
        WaitStatus::Stopped(_, sig) => {
            say(&format!("  parent: the child is stopped by {}; sending SIGCONT", sig.as_str()))
        }
        other => return Err(Error::Failed(format!("expected the child to stop, got {other:?}"))),
    }
    sys::kill(child.as_raw(), libc::SIGCONT).sys("kill", format!("pid {child}"))?;
    ended(wait_printing_child(child, None)?, &exits(0))
}

/// Real-time signals queue, each with its value; standard signals of one kind merge while pending.
fn queue_versus_merge() -> Result<()> {
    let rtmin = sys::rtmin();
    step(
        (
            "G5",
            "(not in the note) real-time signals queue, standard ones merge",
            "with both blocked, three SIGRTMIN (values 1, 2, 3) and three SIGUSR1 (values 1, 2, 3) are sent,\n  then everything pending is taken",
        ),
        || {
            let Ok(both) = sys::sigset(&[rtmin, libc::SIGUSR1]) else { return 1 };
            if sys::block(&both).is_err() {
                return 1;
            }
            let me = std::process::id() as i32;
            for v in 1..=3 {
                let _ = sys::sigqueue(me, rtmin, v);
                let _ = sys::sigqueue(me, libc::SIGUSR1, v);
            }
            let mut got = Vec::new();
            while let Ok(Some(c)) = sys::take_pending(&both) {
                say(&format!("  child: took {} value {}", Sig(c.signo), c.value));
                got.push((c.signo, c.value));
            }
            let rt: Vec<i32> = got.iter().filter(|g| g.0 == rtmin).map(|g| g.1).collect();
            let usr1 = got.iter().filter(|g| g.0 == libc::SIGUSR1).count();
            say(&format!(
                "  child: SIGRTMIN arrived {} times, in order {rt:?}; SIGUSR1 arrived {usr1} time(s)",
                rt.len()
            ));
            if rt == [1, 2, 3] && usr1 == 1 { 0 } else { 1 }
        },
        exits(0),
    )
}
