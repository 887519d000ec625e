//! Thin safe wrappers for what nix does not wrap: real-time signal numbers, sigqueue and the
//! siginfo of sigwaitinfo/sigtimedwait (sender PID, si_code, the queued value).

use nix::errno::Errno;

/// SIGRTMIN as glibc reports it (34: glibc keeps 32 and 33 for its threads).
pub fn rtmin() -> i32 {
    libc::SIGRTMIN()
}

pub fn rtmax() -> i32 {
    libc::SIGRTMAX()
}

/// A raw signal set, since nix's `Signal` has no real-time signals.
pub fn sigset(signals: &[i32]) -> nix::Result<libc::sigset_t> {
    // SAFETY: sigemptyset initialises the set; sigaddset only reads the number.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for &s in signals {
            Errno::result(libc::sigaddset(&mut set, s))?;
        }
        Ok(set)
    }
}

/// Blocks `set` in this thread (and in threads it starts later).
pub fn block(set: &libc::sigset_t) -> nix::Result<()> {
    // SAFETY: set is initialised; a null old set is allowed.
    Errno::result(unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, set, std::ptr::null_mut()) }).map(drop)
}

/// sigqueue(3): sends `sig` with an integer value (nix has no sigqueue).
pub fn sigqueue(pid: i32, sig: i32, value: i32) -> nix::Result<()> {
    // A C receiver reads sival_int; on little-endian Linux it shares its low bytes with sival_ptr.
    sigqueue_word(pid, sig, value as isize as usize)
}

/// sigqueue with the whole pointer-sized `union sigval` (8 bytes here) as the payload.
pub fn sigqueue_word(pid: i32, sig: i32, word: usize) -> nix::Result<()> {
    let val = libc::sigval { sival_ptr: word as *mut libc::c_void };
    // SAFETY: plain values.
    Errno::result(unsafe { libc::sigqueue(pid, sig, val) }).map(drop)
}

/// kill(2) with any signal number (nix's kill takes only the standard ones).
pub fn kill(pid: i32, sig: i32) -> nix::Result<()> {
    // SAFETY: plain values.
    Errno::result(unsafe { libc::kill(pid, sig) }).map(drop)
}

/// What arrived: the signal and who sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caught {
    pub signo: i32,
    pub code: i32,
    pub pid: i32,
    /// The sigqueue value as an int (only meaningful when `code == SI_QUEUE`).
    pub value: i32,
    /// The whole `union sigval` word.
    pub word: usize,
}

impl Caught {
    fn from(info: &libc::siginfo_t) -> Caught {
        // SAFETY: for signals sent by a process (SI_USER, SI_QUEUE, SI_TKILL) the kernel fills
        // si_pid and si_value; for others we do not print them.
        let (pid, word) = unsafe { (info.si_pid(), info.si_value().sival_ptr as usize) };
        Caught { signo: info.si_signo, code: info.si_code, pid, value: word as i32, word }
    }

    /// Sent by a process with kill/sigqueue/tkill (si_code <= 0), not by the kernel.
    pub fn from_process(&self) -> bool {
        self.code <= 0
    }

    pub fn queued(&self) -> bool {
        self.code == libc::SI_QUEUE
    }
}

/// Takes one signal of the blocked `set` from the pending queue, waiting for it: no handler, and
/// no window in which a signal could be lost. EINTR (e.g. SIGSTOP then SIGCONT) is retried.
pub fn sigwaitinfo(set: &libc::sigset_t) -> nix::Result<Caught> {
    loop {
        // SAFETY: info is written by the kernel before it is read.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: set is initialised, info is valid for writing.
        match Errno::result(unsafe { libc::sigwaitinfo(set, &mut info) }) {
            Ok(_) => return Ok(Caught::from(&info)),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Takes one pending signal of `set` if there is one, without waiting.
pub fn take_pending(set: &libc::sigset_t) -> nix::Result<Option<Caught>> {
    let zero = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: info is written by the kernel before it is read.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: set and zero are initialised, info is valid for writing.
    match Errno::result(unsafe { libc::sigtimedwait(set, &mut info, &zero) }) {
        Ok(_) => Ok(Some(Caught::from(&info))),
        Err(Errno::EAGAIN) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether `sig` is pending (blocked and waiting) for this thread or process.
pub fn is_pending(sig: i32) -> nix::Result<bool> {
    // SAFETY: sigpending fills the zeroed set; sigismember only reads it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        Errno::result(libc::sigpending(&mut set))?;
        Ok(libc::sigismember(&set, sig) == 1)
    }
}
