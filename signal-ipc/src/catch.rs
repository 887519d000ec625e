//! Receiving signals without losing one. The note's program prints and exits inside its handler;
//! printf and exit are not async-signal-safe (the signal may land while the same process is inside
//! printf or malloc, holding their locks), so here the handler only records the signal and the
//! work happens outside it. Waiting is race-free: the signal is blocked first, then waited for with
//! sigsuspend or sigwaitinfo, which unblock and wait in one step. (A `while !flag { pause() }` loop
//! loses a signal that lands between the test and pause(), and then waits forever.)

use std::sync::atomic::{AtomicI32, Ordering};

use common::out::Out;
use common::{Error, Result, SysResult};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction, signal};

use crate::Sig;
use crate::sys::{self, Caught};

/// The signal the handler saw; all that runs in signal context is this one atomic store.
static CAUGHT: AtomicI32 = AtomicI32::new(0);

extern "C" fn record(signo: libc::c_int) {
    CAUGHT.store(signo, Ordering::SeqCst);
}

/// Installs [`record`] as the handler of `sig`.
pub fn install_recorder(sig: Signal) -> nix::Result<SigAction> {
    let action = SigAction::new(SigHandler::Handler(record), SaFlags::empty(), SigSet::empty());
    // SAFETY: `record` is async-signal-safe: it only stores to an atomic.
    unsafe { sigaction(sig, &action) }
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
    let mut int = SigSet::empty();
    int.add(Signal::SIGINT);
    int.thread_block().sys("sigprocmask", "SIG_BLOCK SIGINT")?;
    install_recorder(Signal::SIGINT).sys("sigaction", "SIGINT")?;
    ready("waiting for SIGINT", "");
    let mut during_wait = SigSet::thread_get_mask().sys("sigprocmask", "current mask")?;
    during_wait.remove(Signal::SIGINT);
    while recorded() == 0 {
        // Unblocks SIGINT and sleeps in one step; returns (EINTR) once the handler has run.
        let _ = during_wait.suspend();
    }
    out.line(b"Catch SIGINT!")
}

/// The note's second program: SIGINT ignored, so Ctrl-C does nothing; SIGTERM ends it (exit 0).
pub fn ignore_sigint(out: &mut Out) -> Result<()> {
    // SAFETY: SIG_IGN runs no code.
    unsafe { signal(Signal::SIGINT, SigHandler::SigIgn) }.sys("signal", "SIGINT, SIG_IGN")?;
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
