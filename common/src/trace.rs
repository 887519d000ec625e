//! `--trace`: each IPC call a program makes, printed on stderr as it returns, in strace's syntax,
//! so a reader can set a pair's calls beside the note's C without digging through strace's
//! output. The wrappers that make the calls print them; with tracing off a call costs one relaxed
//! load and a branch (the bench's rows do not move).
//!
//! A line is `[<bin> <pid>] <call>(<args>) = <result>`, padded like strace's (the result at column
//! 40 of the call). Library calls that are not system calls (sem_open, sem_wait, shm_open) end in
//! `/* library call */`, and what the kernel sees of them is left to strace.
//!
//! With `--trace-time` too, each line starts with the CLOCK_MONOTONIC time of the call (seconds,
//! to the microsecond: strace's `-ttt`, on the clock both sides of a pair share, so `sort -n` merges
//! their lines), and a call that can wait ends in how long it took, as strace's `-T` shows it:
//! `<0.000123>`. The wrappers of such calls say so with [`begin`] just before the call; it reads
//! the clock only when `--trace-time` is on.
//!
//! The same place serves a test hook: with `IPC_NOTES_KILL_AFTER=CALL:N` in its environment a
//! program kills itself with SIGKILL just after the Nth return of CALL that `--trace` would show
//! (strace can kill a program on entry to a call, not just after one returns). The crash tests
//! (tests/tests/crash.rs) use it; see common/README.md.

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use nix::errno::Errno;

/// What a traced call does besides its work: [`PRINT`] its line, [`KILL`] count it for the hook,
/// [`COUNT`] add one to [`CALLS`]. One load of this is all a call costs when none is on.
static MODE: AtomicU8 = AtomicU8::new(0);
const PRINT: u8 = 1;
const KILL: u8 = 2;
const COUNT: u8 = 4;
/// `--trace-time` (with [`PRINT`]); a bit of its own so the other bits keep their meaning.
const TIME: u8 = 8;
/// Traced calls made since [`count_calls`] (the bench's calls per message).
static CALLS: AtomicU64 = AtomicU64::new(0);
static WHO: OnceLock<&'static str> = OnceLock::new();

/// The environment variable of the test hook: `CALL:N`, e.g. `msgrcv:2`.
pub const KILL_AFTER_VAR: &str = "IPC_NOTES_KILL_AFTER";
static KILL_AFTER: OnceLock<(String, u64)> = OnceLock::new();
static KILL_SEEN: AtomicU64 = AtomicU64::new(0);

/// Turns tracing on for this process (and the children it forks), its lines prefixed with `bin`.
pub fn start(bin: &'static str) {
    let _ = WHO.set(bin);
    MODE.fetch_or(PRINT, Ordering::Relaxed);
}

/// `--trace-time`: each line [`start`] prints begins with its time, and a call after [`begin`]
/// ends in how long it took.
pub fn start_time() {
    MODE.fetch_or(TIME, Ordering::Relaxed);
}

thread_local! {
    /// When the call about to be traced on this thread began (CLOCK_MONOTONIC, ns), or 0: set by
    /// [`begin`], taken by the line that follows.
    static BEGAN: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Called just before a call that can wait (msgrcv, semop, a blocking read...): with
/// `--trace-time`, its line then shows when it began and how long it took. Otherwise one relaxed
/// load and a branch.
#[inline]
pub fn begin() {
    if MODE.load(Ordering::Relaxed) & TIME != 0 {
        BEGAN.with(|b| b.set(monotonic_ns()));
    }
}

fn monotonic_ns() -> u64 {
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: t is a valid timespec for clock_gettime to fill; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) };
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// Arms the test hook if [`KILL_AFTER_VAR`] is set (read once, at start): SIGKILL just after the
/// Nth return of that call. A value that is not `CALL:N` (N from 1) is said on stderr and ignored.
pub fn arm_kill_hook() {
    let Some(value) = std::env::var_os(KILL_AFTER_VAR) else { return };
    let value = value.to_string_lossy();
    let parsed = value.rsplit_once(':').and_then(|(call, n)| Some((call, n.parse::<u64>().ok()?)));
    match parsed {
        Some((call, n)) if n > 0 && !call.is_empty() => {
            if KILL_AFTER.set((call.to_string(), n)).is_ok() {
                MODE.fetch_or(KILL, Ordering::Relaxed);
            }
        }
        _ => eprintln!("{KILL_AFTER_VAR}={value} ignored: the test hook takes CALL:N, e.g. msgrcv:2"),
    }
}

/// Counts every traced call from now on (each try of a wait loop too), printing nothing: the
/// bench's system calls per message. Formats no line, so a forked child may keep it.
pub fn count_calls() {
    MODE.fetch_or(COUNT, Ordering::Relaxed);
}

/// The traced calls made by this process since [`count_calls`].
#[inline]
pub fn calls() -> u64 {
    CALLS.load(Ordering::Relaxed)
}

/// Counts a call made without a traced wrapper (a hot path that formats nothing, e.g. the
/// bench's spin-then-yield), if counting is on.
#[inline]
pub fn count_one() {
    if MODE.load(Ordering::Relaxed) & COUNT != 0 {
        CALLS.fetch_add(1, Ordering::Relaxed);
    }
}

/// Whether `--trace` is on.
#[inline]
pub fn on() -> bool {
    MODE.load(Ordering::Relaxed) & PRINT != 0
}

/// Prints `call` and its result, if tracing is on; `call` is formatted only then (or when the
/// test hook is armed).
#[inline]
pub fn call<T>(result: &nix::Result<T>, show: impl FnOnce(Ret<'_, T>) -> (String, String)) {
    let mode = MODE.load(Ordering::Relaxed);
    if mode != 0 && counted(mode) {
        let (call, ret) = show(Ret(result));
        emit(mode, &call, &ret);
    }
}

/// Prints a library call (not a system call) and its result, if tracing is on.
#[inline]
pub fn library_call<T>(result: &nix::Result<T>, show: impl FnOnce(Ret<'_, T>) -> (String, String)) {
    let mode = MODE.load(Ordering::Relaxed);
    if mode != 0 && counted(mode) {
        let (call, ret) = show(Ret(result));
        emit(mode, &call, &format!("{ret}{LIBRARY}"));
    }
}

/// Counts the call if [`COUNT`] is on; whether a line must be made (printed or hooked).
#[inline]
fn counted(mode: u8) -> bool {
    if mode & COUNT != 0 {
        CALLS.fetch_add(1, Ordering::Relaxed);
    }
    mode & (PRINT | KILL) != 0
}

/// The line of a call that `--trace` shows: printed if tracing is on, then counted by the test
/// hook, which may end the process here.
fn emit(mode: u8, call: &str, ret: &str) {
    if mode & PRINT != 0 {
        line(call, ret);
    }
    if mode & KILL != 0
        && let Some((name, n)) = KILL_AFTER.get()
        && call.split('(').next() == Some(name.as_str())
        && KILL_SEEN.fetch_add(1, Ordering::Relaxed) + 1 == *n
    {
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
    }
}

/// Which try of a call that a wait loop repeats until its peer comes: the first is traced, and a
/// repeat that comes out as before is not, so one line says the program waits where strace shows
/// one per tick.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Try {
    First,
    /// A repeat expected to fail with this errno (EAGAIN, ENXIO): traced only if it does not.
    Again(Errno),
    /// A look between waits (IPC_STAT, fstat): traced when its line differs from the previous
    /// look's on this thread, so the first one and the one that finds a change show.
    Looked,
}

thread_local! {
    static LAST_LOOK: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// [`call`] for a try of a wait loop: printed unless `t` says it repeats what was shown.
#[inline]
pub fn call_try<T>(t: Try, result: &nix::Result<T>, show: impl FnOnce(Ret<'_, T>) -> (String, String)) {
    let mode = MODE.load(Ordering::Relaxed);
    if mode != 0 && counted(mode) {
        try_line(mode, t, result, show, "");
    }
}

/// [`library_call`] for a try of a wait loop (see [`call_try`]).
#[inline]
pub fn library_call_try<T>(t: Try, result: &nix::Result<T>, show: impl FnOnce(Ret<'_, T>) -> (String, String)) {
    let mode = MODE.load(Ordering::Relaxed);
    if mode != 0 && counted(mode) {
        try_line(mode, t, result, show, LIBRARY);
    }
}

const LIBRARY: &str = " /* library call */";

fn try_line<T>(
    mode: u8,
    t: Try,
    result: &nix::Result<T>,
    show: impl FnOnce(Ret<'_, T>) -> (String, String),
    tail: &str,
) {
    if let Try::Again(waiting) = t
        && matches!(result, Err(e) if *e == waiting)
    {
        BEGAN.with(|b| b.set(0)); // not shown: its start must not go to another call's line
        return;
    }
    let (call, ret) = show(Ret(result));
    let ret = format!("{ret}{tail}");
    if t == Try::Looked && !look_changed(format!("{call} = {ret}")) {
        BEGAN.with(|b| b.set(0));
        return;
    }
    emit(mode, &call, &ret);
}

/// Whether this look's line differs from the previous look's on this thread (and remembers it).
fn look_changed(text: String) -> bool {
    LAST_LOOK.with(|last| {
        let mut last = last.borrow_mut();
        let changed = *last != text;
        *last = text;
        changed
    })
}

/// The result of a call, to format: success as the caller says, failure as strace does.
pub struct Ret<'a, T>(&'a nix::Result<T>);

impl<T> Ret<'_, T> {
    /// `ok(v)` on success, `-1 EEXIST (File exists)` on failure.
    pub fn or_errno(&self, ok: impl FnOnce(&T) -> String) -> String {
        match self.0 {
            Ok(v) => ok(v),
            Err(e) => errno(*e),
        }
    }

    pub fn value(&self) -> Option<&T> {
        self.0.as_ref().ok()
    }
}

/// What the kernel returns from a blocking call that a signal cut short. The program sees
/// `-1 EINTR` (a handler ran, so there is no restart); strace shows the kernel's own value, and so
/// does the trace. A call the kernel restarts by itself (no handler ran) never returns to the
/// program: strace shows it twice, the trace once.
#[derive(Clone, Copy, Debug)]
pub enum Interrupted {
    /// msgrcv, msgsnd, sigsuspend: `? ERESTARTNOHAND (To be restarted if no handler)`.
    NoHandler,
    /// A wait with a timeout (futex): `? ERESTART_RESTARTBLOCK (Interrupted by signal)`.
    RestartBlock,
}

impl<T> Ret<'_, T> {
    /// The kernel's value as strace shows it when the call failed with EINTR; None otherwise.
    pub fn interrupted(&self, how: Interrupted) -> Option<String> {
        match (self.0, how) {
            (Err(Errno::EINTR), Interrupted::NoHandler) => {
                Some("? ERESTARTNOHAND (To be restarted if no handler)".into())
            }
            (Err(Errno::EINTR), Interrupted::RestartBlock) => {
                Some("? ERESTART_RESTARTBLOCK (Interrupted by signal)".into())
            }
            _ => None,
        }
    }
}

impl<T: std::fmt::Display> Ret<'_, T> {
    /// The value in decimal, or the errno.
    pub fn decimal(&self) -> String {
        self.or_errno(|v| v.to_string())
    }
}

impl Ret<'_, ()> {
    /// `0`, or the errno.
    pub fn zero(&self) -> String {
        self.or_errno(|()| "0".into())
    }
}

/// `-1 EEXIST (File exists)`: strace's way with a failed call.
pub fn errno(e: Errno) -> String {
    // The C library's text (strerror), as strace prints it; nix's own table words a few apart.
    let text = std::io::Error::from_raw_os_error(e as i32).to_string();
    let text = text.split(" (os error").next().unwrap_or(&text).to_string();
    format!("-1 {e:?} ({text})")
}

fn line(call: &str, ret: &str) {
    let who = WHO.get().copied().unwrap_or("?");
    let mut text = String::new();
    let mut took = None;
    if MODE.load(Ordering::Relaxed) & TIME != 0 {
        let (now, began) = (monotonic_ns(), BEGAN.with(|b| b.replace(0)));
        // The line's time is the call's start when it was taken (strace's too), else its return.
        let at = if began == 0 { now } else { began };
        took = (began != 0).then(|| now.saturating_sub(began));
        let _ = write!(text, "{}.{:06} ", at / 1_000_000_000, at % 1_000_000_000 / 1000);
    }
    let _ = write!(text, "[{who} {}] {call}", std::process::id());
    // strace puts " = " at column 40 of the call when the call is shorter.
    let width = text.len() - call.len() + 39;
    while text.len() < width {
        text.push(' ');
    }
    let _ = write!(text, " = {ret}");
    if let Some(ns) = took {
        let _ = write!(text, " <{}.{:06}>", ns / 1_000_000_000, ns % 1_000_000_000 / 1000);
    }
    text.push('\n');
    let _ = std::io::stderr().write_all(text.as_bytes());
}

/// strace's `-s 32`: at most 32 bytes shown, then `...` after the quote.
pub const STRING_LIMIT: usize = 32;

/// `bytes` as strace quotes a buffer: printable ASCII as is, `\"`, `\\`, `\n` and friends, any
/// other byte in octal (three digits when an octal digit follows), cut at [`STRING_LIMIT`].
pub fn quote(bytes: &[u8]) -> String {
    quote_up_to(bytes, STRING_LIMIT)
}

fn quote_up_to(bytes: &[u8], limit: usize) -> String {
    let shown = &bytes[..bytes.len().min(limit)];
    let mut s = String::with_capacity(shown.len() + 8);
    s.push('"');
    for (i, &c) in shown.iter().enumerate() {
        match c {
            b'"' => s.push_str("\\\""),
            b'\\' => s.push_str("\\\\"),
            b'\x0c' => s.push_str("\\f"),
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            b'\t' => s.push_str("\\t"),
            b'\x0b' => s.push_str("\\v"),
            0x20..=0x7e => s.push(c as char),
            _ if shown.get(i + 1).is_some_and(|n| (b'0'..=b'7').contains(n)) => {
                let _ = write!(s, "\\{c:03o}");
            }
            _ => {
                let _ = write!(s, "\\{c:o}");
            }
        }
    }
    s.push('"');
    if bytes.len() > limit {
        s.push_str("...");
    }
    s
}

/// A path as strace prints it: quoted like [`quote`], but whole.
pub fn path(p: &std::path::Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    quote_whole(p.as_os_str().as_bytes())
}

/// A name as strace prints it (a path, a queue's name): quoted like [`quote`], but whole.
pub fn quote_whole(bytes: &[u8]) -> String {
    quote_up_to(bytes, usize::MAX)
}

/// open(2) flags as strace prints them: `O_WRONLY|O_CREAT|O_EXCL|O_CLOEXEC`.
pub fn open_flags(f: i32) -> String {
    let access = match f & libc::O_ACCMODE {
        libc::O_WRONLY => "O_WRONLY",
        libc::O_RDWR => "O_RDWR",
        _ => "O_RDONLY",
    };
    let named = [
        (libc::O_CREAT, "O_CREAT"),
        (libc::O_EXCL, "O_EXCL"),
        (libc::O_NOCTTY, "O_NOCTTY"),
        (libc::O_TRUNC, "O_TRUNC"),
        (libc::O_APPEND, "O_APPEND"),
        (libc::O_NONBLOCK, "O_NONBLOCK"),
        (libc::O_NOFOLLOW, "O_NOFOLLOW"),
        (libc::O_CLOEXEC, "O_CLOEXEC"),
        // After O_CLOEXEC, as strace 6.1 prints them (its table's order, not the bits' order).
        (libc::O_DIRECTORY, "O_DIRECTORY"),
        (libc::O_PATH, "O_PATH"),
    ]
    .map(|(bit, name)| (i64::from(bit), name));
    let rest = f & !libc::O_ACCMODE;
    if rest == 0 { access.into() } else { format!("{access}|{}", flags(rest.into(), &named)) }
}

/// Names the bits of `flags` found in `names`, strace style (`IPC_CREAT|IPC_EXCL`), then what is
/// left in hex; `0` if none.
pub fn flags(flags: i64, names: &[(i64, &str)]) -> String {
    let mut parts = Vec::new();
    let mut left = flags;
    for &(bit, name) in names {
        if bit != 0 && left & bit == bit {
            parts.push(name.to_string());
            left &= !bit;
        }
    }
    if flags == 0 {
        return "0".into();
    }
    if left != 0 {
        parts.push(format!("{left:#x}"));
    }
    parts.join("|")
}

/// The flags of msgget/shmget/semget: `IPC_CREAT|IPC_EXCL|0600`, and `000` for none, as strace
/// prints them.
pub fn ipc_get_flags(f: i32) -> String {
    let named = f & !0o777;
    let mode = mode((f & 0o777) as u32);
    if named == 0 {
        mode
    } else {
        format!(
            "{}|{mode}",
            flags(named.into(), &[(libc::IPC_CREAT.into(), "IPC_CREAT"), (libc::IPC_EXCL.into(), "IPC_EXCL")])
        )
    }
}

/// A SysV key as strace prints it: `0x4d2`, or `IPC_PRIVATE`.
pub fn key(k: libc::key_t) -> String {
    if k == libc::IPC_PRIVATE { "IPC_PRIVATE".into() } else { format!("{k:#x}") }
}

/// A mode as strace prints it: `0600`, `000`.
pub fn mode(m: u32) -> String {
    if m == 0 { "000".into() } else { format!("0{:o}", m) }
}

/// A pointer as strace prints it: `NULL` or `0x7f...`.
pub fn ptr<T>(p: *const T) -> String {
    if p.is_null() { "NULL".into() } else { format!("{p:p}") }
}

/// `{uid=0, gid=0, mode=0600, key=1234, cuid=0, cgid=0}`, or without the key and creator (what
/// IPC_SET writes).
fn perm(p: &libc::ipc_perm, full: bool) -> String {
    // All of the mode, as strace: SHM_DEST (01000) says a segment is marked for removal.
    let head = format!("uid={}, gid={}, mode={}", p.uid, p.gid, mode(u32::from(p.mode)));
    if full { format!("{{{head}, key={}, cuid={}, cgid={}}}", p.__key, p.cuid, p.cgid) } else { format!("{{{head}}}") }
}

/// A message queue's IPC_STAT buffer (`full`) or what IPC_SET takes from it.
pub fn msqid_ds(d: &libc::msqid_ds, full: bool) -> String {
    if !full {
        return format!("{{msg_perm={}, msg_qbytes={}}}", perm(&d.msg_perm, false), d.msg_qbytes);
    }
    format!(
        "{{msg_perm={}, msg_stime={}, msg_rtime={}, msg_ctime={}, msg_qnum={}, msg_qbytes={}, msg_lspid={}, msg_lrpid={}}}",
        perm(&d.msg_perm, true),
        d.msg_stime,
        d.msg_rtime,
        d.msg_ctime,
        d.msg_qnum,
        d.msg_qbytes,
        d.msg_lspid,
        d.msg_lrpid
    )
}

/// A segment's IPC_STAT buffer.
pub fn shmid_ds(d: &libc::shmid_ds) -> String {
    format!(
        "{{shm_perm={}, shm_segsz={}, shm_cpid={}, shm_lpid={}, shm_nattch={}, shm_atime={}, shm_dtime={}, shm_ctime={}}}",
        perm(&d.shm_perm, true),
        d.shm_segsz,
        d.shm_cpid,
        d.shm_lpid,
        d.shm_nattch,
        d.shm_atime,
        d.shm_dtime,
        d.shm_ctime
    )
}

/// A semaphore set's IPC_STAT buffer.
pub fn semid_ds(d: &libc::semid_ds) -> String {
    format!(
        "{{sem_perm={}, sem_otime={}, sem_ctime={}, sem_nsems={}}}",
        perm(&d.sem_perm, true),
        d.sem_otime,
        d.sem_ctime,
        d.sem_nsems
    )
}

/// `[{sem_num=0, sem_op=-1, sem_flg=SEM_UNDO}]`.
pub fn sembufs(ops: &[libc::sembuf]) -> String {
    let names = [(i64::from(libc::SEM_UNDO), "SEM_UNDO"), (i64::from(libc::IPC_NOWAIT), "IPC_NOWAIT")];
    let each: Vec<String> = ops
        .iter()
        .map(|o| format!("{{sem_num={}, sem_op={}, sem_flg={}}}", o.sem_num, o.sem_op, flags(o.sem_flg.into(), &names)))
        .collect();
    format!("[{}]", each.join(", "))
}

/// `{tv_sec=1, tv_nsec=0}`.
pub fn timespec(t: &libc::timespec) -> String {
    format!("{{tv_sec={}, tv_nsec={}}}", t.tv_sec, t.tv_nsec)
}

/// Turns tracing off: for a child forked while other threads existed, where formatting a line
/// (malloc, stderr's lock) could wait for a lock that a thread of the parent held at the fork and
/// that nobody in the child will ever release. A store to an atomic is safe there. The test hook
/// is disarmed too: it formats the line it counts. Counting ([`count_calls`]) stays.
pub fn off() {
    MODE.fetch_and(COUNT, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_look_shows_when_it_finds_a_change() {
        assert!(look_changed("shmctl(1, IPC_STAT, {mode=0600}) = 0".into()));
        assert!(!look_changed("shmctl(1, IPC_STAT, {mode=0600}) = 0".into()));
        assert!(look_changed("shmctl(1, IPC_STAT, {mode=01600}) = 0".into()));
    }

    #[test]
    fn quotes_as_strace_does() {
        assert_eq!(quote(b"Hello Message Queue\0"), r#""Hello Message Queue\0""#);
        assert_eq!(quote(b"a\"b\\c\n\t\x01\x7f\xc3\xa9"), r#""a\"b\\c\n\t\1\177\303\251""#);
        assert_eq!(quote(b"\x001"), r#""\0001""#);
        assert_eq!(quote(&[b'x'; 33]), format!("\"{}\"...", "x".repeat(32)));
    }

    #[test]
    fn formats_flags_as_strace_does() {
        assert_eq!(ipc_get_flags(libc::IPC_CREAT | libc::IPC_EXCL | 0o600), "IPC_CREAT|IPC_EXCL|0600");
        assert_eq!(ipc_get_flags(0), "000");
        assert_eq!(ipc_get_flags(libc::IPC_CREAT | 0o666), "IPC_CREAT|0666");
        assert_eq!(key(0x4d2), "0x4d2");
        assert_eq!(errno(Errno::EEXIST), "-1 EEXIST (File exists)");
        let f = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC;
        assert_eq!(open_flags(f), "O_WRONLY|O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC");
        assert_eq!(open_flags(libc::O_RDONLY), "O_RDONLY");
        assert_eq!(
            open_flags(libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC),
            "O_RDONLY|O_NOFOLLOW|O_CLOEXEC|O_PATH"
        );
        let dir = libc::O_RDONLY | libc::O_NONBLOCK | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
        assert_eq!(open_flags(dir), "O_RDONLY|O_NONBLOCK|O_NOFOLLOW|O_CLOEXEC|O_DIRECTORY");
        let long = std::path::Path::new("/run/user/1000/file-ipc/a-rather-long-name.msg");
        assert_eq!(path(long), "\"/run/user/1000/file-ipc/a-rather-long-name.msg\"");
    }
}
