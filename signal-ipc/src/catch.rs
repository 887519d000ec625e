//! Receiving signals without losing one. The note's program prints and exits inside its handler;
//! printf and exit are not async-signal-safe (the signal may land while the same process is inside
//! printf or malloc, holding their locks), so here the handler only records the signal and the
//! work happens outside it. Waiting is race-free: the signal is blocked first, then waited for with
//! sigsuspend or sigwaitinfo, which unblock and wait in one step. (A `while !flag { pause() }` loop
//! loses a signal that lands between the test and pause(), and then waits forever.)

use std::sync::atomic::{AtomicI32, Ordering};

use common::out::Out;
use common::{Error, Result, SysResult};
use nix::sys::signal::Signal;

use crate::Sig;
use crate::sys::{self, Caught, Handling};

/// The signal the handler saw; all that runs in signal context is this one atomic store.
static CAUGHT: AtomicI32 = AtomicI32::new(0);

extern "C" fn record(signo: libc::c_int) {
    CAUGHT.store(signo, Ordering::SeqCst);
}

/// Installs [`record`] as the handler of `sig` (no flags, nothing else blocked while it runs);
/// returns the action it replaced.
pub fn install_recorder(sig: i32) -> nix::Result<libc::sigaction> {
    // `record` is async-signal-safe, as Handling::Handler requires: it only stores to an atomic.
    sys::sigaction(sig, Handling::Handler(record), &sys::sigset(&[])?, 0)
}

/// What the handler recorded, 0 if nothing yet.
pub fn recorded() -> i32 {
    CAUGHT.load(Ordering::SeqCst)
}

fn ready(what: &str, writer_args: &str) {
    let pid = std::process::id();
    common::diag!(
        "reader: pid {pid}, {what} (send it with: cargo run -p signal-ipc --bin writer -- {pid}{writer_args})"
    );
}

/// The note's first program: a SIGINT handler, then wait; prints `Catch SIGINT!` and exits 0.
pub fn catch_sigint(out: &mut Out) -> Result<()> {
    let int = sys::sigset(&[libc::SIGINT]).sys("sigaddset", "SIGINT")?;
    let before = sys::block(&int).sys("sigprocmask", "SIG_BLOCK SIGINT")?;
    install_recorder(libc::SIGINT).sys("sigaction", "SIGINT")?;
    ready("waiting for SIGINT", "");
    // The mask it had, with SIGINT open even if it came blocked (from the parent, across exec).
    let during_wait = sys::without(&before, libc::SIGINT).sys("sigdelset", "SIGINT")?;
    while recorded() == 0 {
        // Unblocks SIGINT and sleeps in one step; returns (EINTR) once the handler has run.
        let _ = sys::sigsuspend(&during_wait);
    }
    out.line(b"Catch SIGINT!")
}

/// The note's second program: SIGINT ignored, so Ctrl-C does nothing; SIGTERM ends it (exit 0).
pub fn ignore_sigint(out: &mut Out) -> Result<()> {
    let none = sys::sigset(&[]).sys("sigemptyset", "")?;
    sys::sigaction(libc::SIGINT, Handling::Ignore, &none, 0).sys("sigaction", "SIGINT, SIG_IGN")?;
    let term = sys::sigset(&[libc::SIGTERM]).sys("sigaddset", "SIGTERM")?;
    sys::block(&term).sys("sigprocmask", "SIG_BLOCK SIGTERM")?;
    ready("waiting for SIGTERM, ignoring SIGINT (Ctrl-C does nothing)", " --signal TERM");
    let caught = sys::sigwaitinfo(&term).sys("sigwaitinfo", "SIGTERM")?;
    out.line(format!("Caught SIGTERM {}: exiting", sender(&caught)).as_bytes())
}

/// Waits for `count` of `sig`, taking each from the pending queue (so queued values are never
/// lost) and printing its sender and value.
pub fn wait_for(sig: Sig, count: u64, out: &mut Out) -> Result<()> {
    if matches!(sig.standard(), Some(Signal::SIGKILL | Signal::SIGSTOP)) {
        return Err(Error::Usage(format!(
            "{sig} cannot be caught, blocked or ignored, so nothing can wait for it: the kernel acts on it directly (G6)"
        )));
    }
    let set = sys::sigset(&[sig.0]).sys("sigaddset", sig)?;
    sys::block(&set).sys("sigprocmask", format!("SIG_BLOCK {sig}"))?;
    let short = sig.name().trim_start_matches("SIG").to_string();
    ready(&format!("waiting for {sig}"), &format!(" --signal {short}"));
    for _ in 0..count {
        let caught = sys::sigwaitinfo(&set).sys("sigwaitinfo", sig)?;
        out.line(format!("Catch {sig} {}", sender(&caught)).as_bytes())?;
    }
    Ok(())
}

/// `from pid 4242`, `from pid 4242 value 7`, or `from the kernel (si_code 128)`.
pub fn sender(c: &Caught) -> String {
    match (c.from_process(), c.queued()) {
        (true, true) => format!("from pid {} value {}", c.pid, c.value),
        (true, false) => format!("from pid {}", c.pid),
        (false, _) => format!("from the kernel, not a process (si_code {}: e.g. a terminal key or a fault)", c.code),
    }
}
