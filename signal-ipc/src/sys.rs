//! Thin safe wrappers for what nix does not wrap: real-time signal numbers, sigqueue and the
//! siginfo of sigwaitinfo/sigtimedwait (sender PID, si_code, the queued value).

use common::trace;
use nix::errno::Errno;

use crate::show;

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

/// `set` without `sig`.
pub fn without(set: &libc::sigset_t, sig: i32) -> nix::Result<libc::sigset_t> {
    let mut out = *set;
    // SAFETY: out is an initialised set; sigdelset only checks the number.
    Errno::result(unsafe { libc::sigdelset(&mut out, sig) })?;
    Ok(out)
}

/// How a signal is to be handled: sigaction's sa_handler.
#[derive(Debug, Clone, Copy)]
pub enum Handling {
    Default,
    Ignore,
    /// Runs in signal context: it must be async-signal-safe (record, do not print or allocate).
    Handler(extern "C" fn(libc::c_int)),
}

impl Handling {
    fn raw(self) -> libc::sighandler_t {
        match self {
            Handling::Default => libc::SIG_DFL,
            Handling::Ignore => libc::SIG_IGN,
            Handling::Handler(f) => f as libc::sighandler_t,
        }
    }
}

/// sigaction(2): `sig` handled as `how`, with `mask` blocked while a handler runs and `flags`
/// (SA_RESTART, ...); returns the action it replaces. An explicit sigaction rather than signal():
/// glibc's signal() adds SA_RESTART and the signal itself to the mask behind the caller's back.
pub fn sigaction(sig: i32, how: Handling, mask: &libc::sigset_t, flags: libc::c_int) -> nix::Result<libc::sigaction> {
    // SAFETY: sigaction is plain data; zeroed is a valid start (no handler, empty flags).
    let mut act: libc::sigaction = unsafe { std::mem::zeroed() };
    act.sa_sigaction = how.raw();
    act.sa_mask = *mask;
    act.sa_flags = flags;
    // SAFETY: as above; the kernel fills it.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: act and old are valid; a Handler is async-signal-safe by Handling's contract.
    let r = Errno::result(unsafe { libc::sigaction(sig, &act, &mut old) }).map(drop);
    trace::call(&r, |r| {
        let sent = as_the_kernel_got_it(sig, &act, r.value().is_some());
        // On failure the old action is not filled in: strace shows the address of glibc's own
        // buffer for it (the kernel's layout differs from the C one), the trace this one's.
        let old = if r.value().is_some() { show::sigaction(&old) } else { trace::ptr(&old) };
        (format!("rt_sigaction({}, {}, {old}, 8)", show::signame(sig), show::sigaction(&sent)), r.zero())
    });
    r.map(|()| old)
}

/// `act` as glibc passed it on to the kernel: on x86-64 it adds SA_RESTORER and its own return
/// trampoline, which no API names. See [`learn_restorer`].
fn as_the_kernel_got_it(sig: i32, act: &libc::sigaction, installed: bool) -> libc::sigaction {
    let mut sent = *act;
    if let Some((flag, restorer)) = restorer(installed.then_some(sig)) {
        sent.sa_flags |= flag;
        sent.sa_restorer = restorer;
    }
    sent
}

type Restorer = (libc::c_int, Option<extern "C" fn()>);

static RESTORER: std::sync::OnceLock<Restorer> = std::sync::OnceLock::new();

/// For `--trace` only: learns glibc's SA_RESTORER and trampoline, the same for every sigaction
/// of the process, by reading back an action glibc installed (a sigaction with no new action:
/// strace shows it, the trace does not). Done once; a process that forks calls it first, so its
/// children know it too.
pub fn learn_restorer() {
    let _ = restorer(None);
}

/// Read back from `installed` (the action just set), or else from SIGSEGV's, which Rust's
/// runtime installs through glibc at start (its stack-overflow report).
fn restorer(installed: Option<i32>) -> Option<Restorer> {
    if let Some(known) = RESTORER.get() {
        return Some(*known);
    }
    // SAFETY: sigaction is plain data; zeroed is a valid start.
    let mut now: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: a null new action only reads the current one into `now`.
    let read = unsafe { libc::sigaction(installed.unwrap_or(libc::SIGSEGV), std::ptr::null(), &mut now) } == 0;
    let found = (read && now.sa_flags & show::SA_RESTORER != 0).then_some((show::SA_RESTORER, now.sa_restorer))?;
    Some(*RESTORER.get_or_init(|| found))
}

/// Blocks `set` in this thread (and in threads it starts later); returns the mask before.
pub fn block(set: &libc::sigset_t) -> nix::Result<libc::sigset_t> {
    sigprocmask(libc::SIG_BLOCK, Some(set))
}

/// Unblocks `set`: a pending signal of it is delivered before this returns.
pub fn unblock(set: &libc::sigset_t) -> nix::Result<libc::sigset_t> {
    sigprocmask(libc::SIG_UNBLOCK, Some(set))
}

/// This thread's mask of blocked signals.
pub fn blocked() -> nix::Result<libc::sigset_t> {
    sigprocmask(libc::SIG_BLOCK, None)
}

/// pthread_sigmask(3) (rt_sigprocmask(2) for this thread): changes the mask with `set` as `how`
/// says (None: only reads it); returns the mask before.
pub fn sigprocmask(how: libc::c_int, set: Option<&libc::sigset_t>) -> nix::Result<libc::sigset_t> {
    // SAFETY: the kernel fills it.
    let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
    let new = set.map_or(std::ptr::null(), |s| s as *const libc::sigset_t);
    // SAFETY: new is null or an initialised set; old is valid for writing. pthread_sigmask
    // returns the error number instead of setting errno.
    let r = match unsafe { libc::pthread_sigmask(how, new, &mut old) } {
        0 => Ok(()),
        e => Err(Errno::from_raw(e)),
    };
    trace::call(&r, |r| {
        let new = set.map_or_else(|| "NULL".into(), show::sigset);
        let old = if r.value().is_some() { show::sigset(&old) } else { trace::ptr(&old) };
        (format!("rt_sigprocmask({}, {new}, {old}, 8)", show::how(how)), r.zero())
    });
    r.map(|()| old)
}

/// sigsuspend(2): sets the mask to `mask` and sleeps until a handler has run, in one step, so a
/// signal unblocked by it cannot slip in before the sleep. Returns only after a handler (EINTR).
pub fn sigsuspend(mask: &libc::sigset_t) -> Errno {
    trace::begin();
    // SAFETY: mask is initialised.
    let r = Errno::result(unsafe { libc::sigsuspend(mask) }).map(drop);
    // The kernel returns ERESTARTNOHAND, which becomes the program's -1 EINTR because a handler
    // ran; strace shows the kernel's value, and so does the trace.
    trace::call(&r, |ret| {
        let ret = ret.interrupted(trace::Interrupted::NoHandler).unwrap_or_else(|| ret.zero());
        (format!("rt_sigsuspend({}, 8)", show::sigset(mask)), ret)
    });
    r.err().unwrap_or(Errno::UnknownErrno)
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
    let r = Errno::result(unsafe { libc::sigqueue(pid, sig, val) }).map(drop);
    trace::call(&r, |r| {
        // glibc's sigqueue fills the siginfo it passes with this process's PID and real user.
        let info = Caught {
            signo: sig,
            code: libc::SI_QUEUE,
            pid: std::process::id() as i32,
            uid: nix::unistd::getuid().as_raw(),
            value: word as i32,
            word,
        };
        (format!("rt_sigqueueinfo({pid}, {}, {})", show::signame(sig), show::siginfo(&info)), r.zero())
    });
    r
}

/// kill(2) with any signal number (nix's kill takes only the standard ones).
pub fn kill(pid: i32, sig: i32) -> nix::Result<()> {
    // SAFETY: plain values.
    let r = Errno::result(unsafe { libc::kill(pid, sig) }).map(drop);
    trace::call(&r, |r| (format!("kill({pid}, {})", show::signame(sig)), r.zero()));
    r
}

/// raise(3), a library call: glibc sends with tgkill(2) to this thread. With a handler installed and the
/// signal unblocked, the handler has run when it returns; its line is printed afterwards, here,
/// never from the handler.
pub fn raise(sig: i32) -> nix::Result<()> {
    // SAFETY: plain value.
    let r = Errno::result(unsafe { libc::raise(sig) }).map(drop);
    trace::library_call(&r, |r| (format!("raise({})", show::signame(sig)), r.zero()));
    r
}

/// What arrived: the signal and who sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caught {
    pub signo: i32,
    pub code: i32,
    pub pid: i32,
    /// The sender's real user ID.
    pub uid: u32,
    /// The sigqueue value as an int (only meaningful when `code == SI_QUEUE`).
    pub value: i32,
    /// The whole `union sigval` word.
    pub word: usize,
}

impl Caught {
    fn from(info: &libc::siginfo_t) -> Caught {
        // SAFETY: for signals sent by a process (SI_USER, SI_QUEUE, SI_TKILL) the kernel fills
        // si_pid and si_value; for others we do not print them.
        let (pid, uid, word) = unsafe { (info.si_pid(), info.si_uid(), info.si_value().sival_ptr as usize) };
        Caught { signo: info.si_signo, code: info.si_code, pid, uid, value: word as i32, word }
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
        match sigtimedwait(set, None) {
            Err(Errno::EINTR) => continue,
            other => return other,
        }
    }
}

/// Takes one pending signal of `set` if there is one, without waiting.
pub fn take_pending(set: &libc::sigset_t) -> nix::Result<Option<Caught>> {
    match sigtimedwait(set, Some(&libc::timespec { tv_sec: 0, tv_nsec: 0 })) {
        Ok(c) => Ok(Some(c)),
        Err(Errno::EAGAIN) => Ok(None),
        Err(e) => Err(e),
    }
}

/// sigtimedwait(2) (sigwaitinfo(2) when `timeout` is None, which glibc makes the same call).
fn sigtimedwait(set: &libc::sigset_t, timeout: Option<&libc::timespec>) -> nix::Result<Caught> {
    // SAFETY: info is written by the kernel before it is read.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let t = timeout.map_or(std::ptr::null(), |t| t as *const libc::timespec);
    trace::begin();
    // SAFETY: set is initialised, info is valid for writing, t is null or a valid timespec.
    let r = Errno::result(unsafe { libc::sigtimedwait(set, &mut info, t) }).map(|_| Caught::from(&info));
    trace::call(&r, |ret| {
        let shown = r.as_ref().map_or_else(|_| trace::ptr(&info), show::siginfo);
        let t = timeout.map_or_else(|| "NULL".into(), trace::timespec);
        let result = ret.or_errno(|c| show::signal_result(&c.signo));
        (format!("rt_sigtimedwait({}, {shown}, {t}, 8)", show::sigset(set)), result)
    });
    r
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
