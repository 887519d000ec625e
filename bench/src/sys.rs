//! The bench's own IPC calls (the rings' futex and sched_yield, the POSIX queues of its row, the
//! signal row's rt_sigqueueinfo), one thin wrapper each, traced like every other crate's: under
//! `--trace` a line, and always counted for the `calls/msg` column (common::trace).

use common::trace;
use nix::errno::Errno;
use nix::mqueue::{MqdT, mq_receive, mq_send};

/// `sched_yield() = 0`: a spinning waiter gives its CPU to the peer.
pub fn sched_yield() {
    // SAFETY: no arguments; it cannot fail on Linux.
    let r = Errno::result(unsafe { libc::sched_yield() }).map(drop);
    trace::call(&r, |r| ("sched_yield()".into(), r.zero()));
}

/// futex(2) FUTEX_WAIT on a word of a shared mapping (not FUTEX_PRIVATE: the waker is another
/// process), at most 100 ms: a lost wake-up costs a pause, never a hang.
///
/// # Safety
/// `word` points to an aligned u32 of a mapping that stays mapped for the call.
pub unsafe fn futex_wait(word: *const u32, expected: u32) {
    let ts = libc::timespec { tv_sec: 0, tv_nsec: 100_000_000 };
    // SAFETY: word points into a live shared mapping; ts is a valid timespec.
    let r = Errno::result(unsafe { libc::syscall(libc::SYS_futex, word, libc::FUTEX_WAIT, expected, &ts) }).map(drop);
    trace::call(&r, |r| {
        (format!("futex({}, FUTEX_WAIT, {expected}, {})", trace::ptr(word), trace::timespec(&ts)), r.zero())
    });
}

/// futex(2) FUTEX_WAKE of one waiter.
///
/// # Safety
/// As [`futex_wait`].
pub unsafe fn futex_wake(word: *const u32) {
    // SAFETY: word points into a live shared mapping; FUTEX_WAKE only uses its address.
    let r = Errno::result(unsafe { libc::syscall(libc::SYS_futex, word, libc::FUTEX_WAKE, 1) });
    trace::call(&r, |r| (format!("futex({}, FUTEX_WAKE, 1)", trace::ptr(word)), r.decimal()));
}

/// `mq_timedsend(3, "...", 64, 0, NULL) = 0` (glibc's mq_send is that one system call).
pub fn mq_send_msg(mqd: &MqdT, msg: &[u8]) -> nix::Result<()> {
    let r = mq_send(mqd, msg, 0);
    trace::call(&r, |r| {
        (format!("mq_timedsend({}, {}, {}, 0, NULL)", fd(mqd), trace::quote(msg), msg.len()), r.zero())
    });
    r
}

/// `mq_timedreceive(3, "...", 64, [0], NULL) = 64`.
pub fn mq_receive_msg(mqd: &MqdT, buf: &mut [u8]) -> nix::Result<usize> {
    let mut prio = 0;
    let r = mq_receive(mqd, buf, &mut prio);
    trace::call(&r, |r| {
        let text = r.value().map_or_else(|| trace::ptr(buf.as_ptr()), |&n| trace::quote(&buf[..n]));
        (format!("mq_timedreceive({}, {text}, {}, [{prio}], NULL)", fd(mqd), buf.len()), r.decimal())
    });
    r
}

fn fd(mqd: &MqdT) -> i32 {
    use std::os::fd::AsRawFd;
    mqd.as_raw_fd()
}

/// rt_sigqueueinfo(2): sigqueue(3) without glibc's getpid and getuid on every call (two system
/// calls per message more); `me` is this process's PID, `word` the whole pointer-sized `union
/// sigval`.
pub fn sigqueue_word(pid: i32, sig: i32, word: usize, me: i32) -> nix::Result<()> {
    // The kernel's siginfo for SI_QUEUE: three ints, then the union (8-aligned: it holds
    // pointers) starting with si_pid, si_uid and the sigval.
    #[repr(C)]
    struct Queued {
        signo: i32,
        errno: i32,
        code: i32,
        _pad: i32,
        pid: i32,
        uid: u32,
        value: usize,
    }
    // SAFETY: siginfo_t is plain data; zeroed is the C `= {0}`.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let uid = uid();
    let q = Queued { signo: sig, errno: 0, code: libc::SI_QUEUE, _pad: 0, pid: me, uid, value: word };
    // SAFETY: Queued is a prefix of siginfo_t (128 bytes) with the kernel's layout for SI_QUEUE.
    unsafe { (&raw mut info).cast::<Queued>().write(q) };
    // SAFETY: info is a valid siginfo_t that the kernel copies.
    let r = Errno::result(unsafe { libc::syscall(libc::SYS_rt_sigqueueinfo, pid, sig, &info) }).map(drop);
    trace::call(&r, |r| {
        let info = format!(
            "{{si_signo={sig}, si_code=SI_QUEUE, si_pid={me}, si_uid={uid}, si_value={{int={}, ptr={word:#x}}}}}",
            word as i32
        );
        (format!("rt_sigqueueinfo({pid}, {sig}, {info})"), r.zero())
    });
    r
}

fn uid() -> u32 {
    static UID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *UID.get_or_init(|| nix::unistd::getuid().as_raw())
}
