//! The signal calls' arguments as strace 6.1 prints them, for `--trace`: signal names
//! (`SIGUSR1`, `SIGRT_3`), signal sets (`[INT TERM]`, `~[KILL STOP]`), siginfo and sigaction
//! structures. Only formatted when tracing is on.

use common::trace;

use crate::sys::Caught;

/// The kernel's first real-time signal (glibc's SIGRTMIN is 34: it keeps 32 and 33). strace names
/// the real-time signals from the kernel's count, so glibc's SIGRTMIN+1 (35) is `SIGRT_3`.
const KERNEL_RTMIN: i32 = 32;

/// The kernel's signal set: 64 bits (the `8` that ends rt_sigaction and friends).
pub const KERNEL_NSIG: i32 = 64;

/// `SIGUSR1`, `SIGRT_3`, or the number for anything else.
pub fn signame(sig: i32) -> String {
    match nix::sys::signal::Signal::try_from(sig) {
        Ok(s) => s.as_str().into(),
        Err(_) if (KERNEL_RTMIN..=KERNEL_NSIG).contains(&sig) => format!("SIGRT_{}", sig - KERNEL_RTMIN),
        Err(_) => sig.to_string(),
    }
}

/// A set as strace prints it: the names without SIG in signal order, `[INT TERM]`; when two thirds
/// or more of the 64 are in it, the ones that are not, after a `~` (`~[KILL STOP]`).
pub fn sigset(set: &libc::sigset_t) -> String {
    // SAFETY: sigismember only reads the initialised set.
    let member = |s: i32| unsafe { libc::sigismember(set, s) } == 1;
    let count = (1..=KERNEL_NSIG).filter(|&s| member(s)).count() as i32;
    let inverted = count >= KERNEL_NSIG * 2 / 3;
    let names: Vec<String> = (1..=KERNEL_NSIG)
        .filter(|&s| member(s) != inverted)
        .map(|s| signame(s).trim_start_matches("SIG").to_string())
        .collect();
    format!("{}[{}]", if inverted { "~" } else { "" }, names.join(" "))
}

/// A signal-returning call's result: `10 (SIGUSR1)`.
pub fn signal_result(sig: &i32) -> String {
    format!("{sig} ({})", signame(*sig))
}

fn si_code(code: i32) -> String {
    match code {
        libc::SI_USER => "SI_USER".into(),
        libc::SI_QUEUE => "SI_QUEUE".into(),
        libc::SI_TKILL => "SI_TKILL".into(),
        libc::SI_MESGQ => "SI_MESGQ".into(),
        libc::SI_TIMER => "SI_TIMER".into(),
        libc::SI_ASYNCIO => "SI_ASYNCIO".into(),
        libc::SI_SIGIO => "SI_SIGIO".into(),
        libc::SI_KERNEL => "SI_KERNEL".into(),
        c => c.to_string(),
    }
}

/// `{si_signo=SIGUSR1, si_code=SI_QUEUE, si_pid=123, si_uid=1000, si_int=5, si_ptr=0x5}`: the
/// sender's PID and user for a signal a process sent (si_code <= 0), and the value if it was queued
/// and is not 0.
pub fn siginfo(c: &Caught) -> String {
    let mut s = format!("{{si_signo={}, si_code={}", signame(c.signo), si_code(c.code));
    if c.from_process() {
        s += &format!(", si_pid={}, si_uid={}", c.pid, c.uid);
        // strace leaves the value out when it is 0 (NULL), even for a queued signal.
        if c.code != libc::SI_USER && c.code != libc::SI_TKILL && c.word != 0 {
            s += &format!(", si_int={}, si_ptr={}", c.value, trace::ptr(c.word as *const u8));
        }
    }
    s + "}"
}

/// What sa_handler holds: `SIG_DFL`, `SIG_IGN` or the handler's address.
pub fn handler(h: libc::sighandler_t) -> String {
    match h {
        libc::SIG_DFL => "SIG_DFL".into(),
        libc::SIG_IGN => "SIG_IGN".into(),
        p => trace::ptr(p as *const u8),
    }
}

/// The kernel's flag for "sa_restorer is set" (x86, arm, s390...), which glibc adds and does not
/// export: the libc crate does not name it either.
pub const SA_RESTORER: i32 = 0x0400_0000;

/// In strace's order.
const SA_FLAGS: [(i32, &str); 8] = [
    (SA_RESTORER, "SA_RESTORER"),
    (libc::SA_ONSTACK, "SA_ONSTACK"),
    (libc::SA_RESTART, "SA_RESTART"),
    (libc::SA_NODEFER, "SA_NODEFER"),
    (libc::SA_RESETHAND, "SA_RESETHAND"),
    (libc::SA_SIGINFO, "SA_SIGINFO"),
    (libc::SA_NOCLDSTOP, "SA_NOCLDSTOP"),
    (libc::SA_NOCLDWAIT, "SA_NOCLDWAIT"),
];

/// `{sa_handler=0x55.., sa_mask=[], sa_flags=SA_RESTORER, sa_restorer=0x7f..}`; the restorer is
/// shown when SA_RESTORER is set, as strace does.
pub fn sigaction(a: &libc::sigaction) -> String {
    let names = SA_FLAGS.map(|(bit, name)| (i64::from(bit), name));
    let mut s = format!(
        "{{sa_handler={}, sa_mask={}, sa_flags={}",
        handler(a.sa_sigaction),
        sigset(&a.sa_mask),
        trace::flags(i64::from(a.sa_flags), &names)
    );
    if a.sa_flags & SA_RESTORER != 0 {
        s += &format!(", sa_restorer={}", trace::ptr(a.sa_restorer.map_or(std::ptr::null(), |f| f as *const u8)));
    }
    s + "}"
}

/// `SIG_BLOCK`, `SIG_UNBLOCK`, `SIG_SETMASK`.
pub fn how(how: i32) -> String {
    match how {
        libc::SIG_BLOCK => "SIG_BLOCK".into(),
        libc::SIG_UNBLOCK => "SIG_UNBLOCK".into(),
        libc::SIG_SETMASK => "SIG_SETMASK".into(),
        h => h.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys;

    #[test]
    fn names_and_sets_as_strace_prints_them() {
        assert_eq!(signame(libc::SIGUSR1), "SIGUSR1");
        assert_eq!(signame(sys::rtmin() + 1), "SIGRT_3");
        let set = sys::sigset(&[libc::SIGTERM, libc::SIGINT, sys::rtmin()]).unwrap();
        assert_eq!(sigset(&set), "[INT TERM RT_2]");
        assert_eq!(sigset(&sys::sigset(&[]).unwrap()), "[]");
        let all: Vec<i32> = (1..=sys::rtmax()).filter(|s| ![libc::SIGKILL, 32, 33].contains(s)).collect();
        assert_eq!(sigset(&sys::sigset(&all).unwrap()), "~[KILL RT_0 RT_1]");
        assert_eq!(signal_result(&10), "10 (SIGUSR1)");
    }

    #[test]
    fn siginfo_as_strace_prints_it() {
        let c = Caught { signo: libc::SIGUSR1, code: libc::SI_QUEUE, pid: 12, uid: 1000, value: 5, word: 5 };
        assert_eq!(siginfo(&c), "{si_signo=SIGUSR1, si_code=SI_QUEUE, si_pid=12, si_uid=1000, si_int=5, si_ptr=0x5}");
        let c = Caught { code: libc::SI_QUEUE, value: 0, word: 0, ..c };
        assert_eq!(siginfo(&c), "{si_signo=SIGUSR1, si_code=SI_QUEUE, si_pid=12, si_uid=1000}");
        let c = Caught { code: libc::SI_USER, ..c };
        assert_eq!(siginfo(&c), "{si_signo=SIGUSR1, si_code=SI_USER, si_pid=12, si_uid=1000}");
        let c = Caught { signo: libc::SIGINT, code: libc::SI_KERNEL, ..c };
        assert_eq!(siginfo(&c), "{si_signo=SIGINT, si_code=SI_KERNEL}");
    }
}
