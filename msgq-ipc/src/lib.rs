//! Message queues (note section 3, claims M1-M6): the kernel keeps whole messages, each with a
//! type, until a process takes them; unlike a pipe, message boundaries are kept, and one queue
//! can carry both directions by type (M6). A queue outlives its processes until removed.
//!
//! System V queues are the note's (msgget/msgsnd/msgrcv); `--posix` runs the same exchange over
//! a POSIX queue (mq_open), which has priorities instead of types.

mod mq_sys;
mod mqueue;
pub mod serve;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use common::sysv::{self, MsgBuf};
use common::{Error, Key, PeerState, Program, Ready, Result, Seen};
use nix::errno::Errno;
use nix::mqueue::MqdT;

pub use mqueue::{POSIX_MAX_MSGS, POSIX_MSG_SIZE, PosixQueue, posix_queue_name};

/// msgget with flags 0 finds another user's queue; msgsnd/msgrcv then check its mode.
const NOT_YOURS: &str =
    "the queue belongs to another user and its mode does not let you use it (see: ipcs -q); pick another --key";

/// The pair's sending binary, for the library's own lines about a send (a queue removed under it).
pub(crate) const WRITER: Program = Program { package: env!("CARGO_PKG_NAME"), bin: "writer" };

/// The writer's message when none is given.
pub const DEFAULT_MESSAGE: &str = "Hello Message Queue";

/// Which kind of queue a binary uses: the note's System V one, or a POSIX one (`--posix`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    SysV,
    Posix,
}

impl Flavor {
    /// From a binary's `--posix` flag.
    pub fn posix_if(posix: bool) -> Flavor {
        if posix { Flavor::Posix } else { Flavor::SysV }
    }

    /// The most bytes one message holds (its text and NUL), and the limit's name for messages.
    pub fn msg_size(self) -> (usize, &'static str) {
        match self {
            Flavor::SysV => (msgmax(), "kernel.msgmax"),
            Flavor::Posix => (POSIX_MSG_SIZE, "fs.mqueue.msgsize_max"),
        }
    }

    /// The longest text one message carries: the crate sends the text and a NUL, as the C does.
    pub fn max_text(self) -> usize {
        self.msg_size().0 - 1
    }
}

/// What a send does when the queue is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WhenFull {
    /// Fail with EAGAIN (IPC_NOWAIT, the note's way).
    Fail,
    /// Block until there is room (`writer --wait`).
    Wait,
}

impl WhenFull {
    /// From a `--wait` flag.
    pub fn wait_if(wait: bool) -> WhenFull {
        if wait { WhenFull::Wait } else { WhenFull::Fail }
    }
}

/// Whether a `get_or_create` made the queue or found it: what a process made, it removes when
/// stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    Made,
    Found,
}

impl Origin {
    fn made_if(created: bool) -> Origin {
        if created { Origin::Made } else { Origin::Found }
    }
}

/// For `common::cli::parse_adjusted`: the binaries' help texts that tell the contract (the POSIX
/// queue's name, the request type) take it from the library.
pub fn contract_help(cmd: clap::Command) -> clap::Command {
    use common::cli::with_help;
    let base = serve::PID_LIMIT;
    let posix = format!("Use a POSIX message queue (mq_open, {}) instead of System V", posix_queue_name("<key>"));
    let serve = format!(
        "Answer requests of `writer --request` until stopped (with --count: that many): type <pid> in (1 to {base}, the lowest first), type <pid>+{base} back"
    );
    let request = format!(
        "Send each MESSAGE as a request to a `reader --serve` and print its reply (two-way traffic over one queue: the request goes with this process's PID as its type, the reply comes back with type PID+{base})"
    );
    with_help(with_help(with_help(cmd, "posix", posix), "serve", serve), "request", request)
}

/// Refuses, before any system call (so that a bad message creates nothing), a message that one
/// message of `flavor` cannot hold with its NUL, and with `prefix` bytes before it (the "re: " of
/// a request's reply).
pub fn check_fits<T: AsRef<[u8]>>(flavor: Flavor, prefix: usize, texts: &[T]) -> Result<()> {
    let (limit, limit_name) = flavor.msg_size();
    match texts.iter().map(|t| t.as_ref()).find(|t| prefix + t.len() + 1 > limit) {
        Some(big) => Err(Error::Usage(format!(
            "a message of {} bytes plus {}its NUL is more than one message may hold ({limit} bytes, {limit_name})",
            big.len(),
            if prefix > 0 { format!("the reply's \"re: \" ({prefix} bytes) and ") } else { String::new() },
        ))),
        None => Ok(()),
    }
}

/// The waiting line of a writer that finds the queue full; `peer` is what a reader needs to meet
/// it (see `common::cli::KeyArgs::peer_args`); `me` is the writer.
pub fn waiting_for_room(me: Program, queue: &Queue, peer: &str) -> Ready {
    let h = queue.handle();
    me.waiting(format!("for room in {}", h.name())).peer_args(peer).looking(move || Seen {
        holds: h.remaining().ok().map(|n| format!("it holds {n} message(s), as much as it takes")),
        peer: PeerState::Unknown,
    })
}

/// The largest message text (kernel.msgmax, 8192 by default); a queue holds kernel.msgmnb bytes.
pub fn msgmax() -> usize {
    read_sysctl("/proc/sys/kernel/msgmax").unwrap_or(8192)
}

pub fn msgmnb() -> usize {
    read_sysctl("/proc/sys/kernel/msgmnb").unwrap_or(16384)
}

fn read_sysctl(path: &str) -> Option<usize> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The text a C program would print with `%s`: up to the first NUL (the note sends strlen+1).
pub fn c_text(bytes: &[u8]) -> &[u8] {
    bytes.split(|&b| b == 0).next().unwrap_or_default()
}

/// `text` and its NUL, as the C sends it.
fn with_nul(text: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(text.len() + 1);
    v.extend_from_slice(text);
    v.push(0);
    v
}

/// Either kind of queue, opened for sending and receiving.
pub enum Queue {
    /// `waited`: set after the first wait; see [`Queue::recv`]. `mode` and `recreate`: see
    /// [`Queue::recreate_if_removed`].
    SysV {
        id: i32,
        key: Key,
        buf: MsgBuf,
        waited: bool,
        mode: u32,
        recreate: bool,
    },
    Posix(PosixQueue),
}

/// How long a sender waits for a reader that closed the queue (msg_qbytes 0, see [`finish`]) to
/// remove or reopen it: microseconds normally, so this long means the reader died in between.
const CLOSED_PATIENCE: Duration = Duration::from_secs(1);

/// A queue closed for longer than [`CLOSED_PATIENCE`]: its closer was killed between closing it
/// and removing it, and nobody else would ever open it again. The sender that finds it reopens it
/// to the default size (whatever waits in it, and what it sends, go to the next reader), so a
/// reader killed there wedges nothing. EPERM: another user's queue, which only its owner reopens.
fn reopen_stale(id: i32, key: Key, bin: impl std::fmt::Display) -> Result<()> {
    let mut ds = match sysv::msg_stat(id) {
        Ok(ds) if ds.msg_qbytes == 0 => ds,
        _ => return Ok(()), // reopened or removed meanwhile: the caller looks again
    };
    ds.msg_qbytes = msgmnb() as _;
    match sysv::msg_set(id, &ds) {
        Ok(()) => {
            common::diag!(
                "{bin}: queue {key} stayed closed (msg_qbytes 0): the reader that was removing it was killed; reopened it"
            );
            Ok(())
        }
        Err(Errno::EINVAL | Errno::EIDRM) => Ok(()),
        Err(e) => Err(Error::sys("msgctl(IPC_SET)", format!("queue {key}"), e).hint(format!(
            "the queue's msg_qbytes is 0: a reader was killed while removing it; remove it (ipcrm -Q {key}) and send again"
        ))),
    }
}

impl Queue {
    /// msgget(key, IPC_CREAT | mode): the queue of `key`, made if missing. Returns whether this
    /// call made it.
    pub fn get_or_create(key: Key, mode: u32) -> Result<(Queue, Origin)> {
        // The note's msgget(key, IPC_CREAT|0666), with `mode` (0600) and IPC_EXCL first, so that
        // this process knows whether it made the queue (a stop then removes it).
        let (id, created) = loop {
            match sysv::msgget(key, libc::IPC_CREAT | libc::IPC_EXCL | mode as i32) {
                Ok(id) => break (id, true),
                Err(Errno::EEXIST) => match sysv::msgget(key, 0) {
                    Ok(id) => break (id, false),
                    Err(Errno::ENOENT) => continue, // removed in between: make it again
                    Err(e) => return Err(Error::sys("msgget", format!("key {key}"), e)),
                },
                Err(e) => return Err(Error::sys("msgget", format!("key {key}"), e)),
            }
        };
        let queue = Queue::SysV { id, key, buf: MsgBuf::new(msgmax()), waited: false, mode, recreate: false };
        Ok((queue, Origin::made_if(created)))
    }

    /// [`Queue::get_or_create`] of either flavor.
    pub fn get_or_create_of(flavor: Flavor, key: Key, mode: u32) -> Result<(Queue, Origin)> {
        match flavor {
            Flavor::SysV => Queue::get_or_create(key, mode),
            Flavor::Posix => PosixQueue::get_or_create(key, mode).map(|(q, o)| (Queue::Posix(q), o)),
        }
    }

    /// [`Queue::existing`] of either flavor; `mode`: see [`PosixQueue::existing`].
    pub fn existing_of(flavor: Flavor, key: Key, mode: u32) -> Result<Queue> {
        match flavor {
            Flavor::SysV => Queue::existing(key),
            Flavor::Posix => PosixQueue::existing(key, mode).map(Queue::Posix),
        }
    }

    /// msgget(key, 0): the existing queue of `key`.
    pub fn existing(key: Key) -> Result<Queue> {
        let id = sysv::msgget(key, 0).map_err(|e| {
            Error::sys("msgget", format!("key {key}"), e).hint(match e {
                Errno::ENOENT => "no queue has that key; start the writer first",
                _ => "the queue belongs to someone else",
            })
        })?;
        Ok(Queue::SysV { id, key, buf: MsgBuf::new(msgmax()), waited: false, mode: 0o600, recreate: false })
    }

    /// For writers: if the queue is removed by another process (a reader that found it empty),
    /// send the rest to a new queue under the same key or name instead of failing: a SysV reader
    /// never removes a queue holding a message, and messages found in an unlinked POSIX queue are
    /// moved to the new one.
    pub fn recreate_if_removed(&mut self) {
        match self {
            Queue::SysV { recreate, .. } => *recreate = true,
            Queue::Posix(q) => q.recreate = true,
        }
    }

    /// A copyable handle for naming, counting and removing the queue (also from the stop thread).
    pub fn handle(&self) -> Handle {
        match self {
            Queue::SysV { id, key, .. } => Handle::SysV { id: *id, key: *key },
            Queue::Posix(q) => Handle::Posix { mqd: q.mqd.clone(), name: q.name.clone(), key: q.key, mode: q.mode },
        }
    }

    /// The largest text (without its NUL) one message can carry.
    pub fn max_text(&self) -> usize {
        match self {
            Queue::SysV { .. } => Flavor::SysV.max_text(),
            Queue::Posix(q) => q.msgsize - 1,
        }
    }

    /// Sends `text` and a NUL with type `mtype` (a POSIX queue has no types: it ignores it).
    /// [`WhenFull::Fail`]: a full queue is an error (IPC_NOWAIT, as in the note); [`WhenFull::Wait`]:
    /// the call blocks until there is room, after calling `on_wait` once.
    pub fn send(&mut self, mtype: i64, text: &[u8], full: WhenFull, on_wait: &mut dyn FnMut()) -> Result<()> {
        let msg = with_nul(text);
        let wait = full == WhenFull::Wait;
        match self {
            Queue::SysV { id, key, mode, recreate, .. } => {
                send_sysv(id, *key, *mode, *recreate, mtype, &msg, wait, on_wait)
            }
            Queue::Posix(q) => q.send(&msg, full, on_wait),
        }
    }

    /// Receives one message of type `mtype` (see [`sysv::msgrcv`]; POSIX: the oldest of the highest
    /// priority) and returns its type and raw bytes. Calls `on_wait` before it first blocks (a
    /// non-blocking try tells); after that first wait, calls block at once: one system call per
    /// message, as in C.
    pub fn recv(&mut self, mtype: i64, on_wait: &mut dyn FnMut()) -> Result<(i64, Vec<u8>)> {
        match self {
            Queue::SysV { id, key, buf, waited, .. } => {
                let mut flags = if *waited { 0 } else { libc::IPC_NOWAIT };
                loop {
                    // A stop parks here, never with a message taken: the stop thread wakes a
                    // blocked msgrcv with SIGURG (EINTR below), see common::gate.
                    common::gate::safe_point();
                    match sysv::msgrcv(*id, buf, mtype, flags) {
                        Ok((t, text)) => return Ok((t, text.to_vec())),
                        Err(Errno::ENOMSG) if flags != 0 => {
                            on_wait();
                            *waited = true;
                            flags = 0;
                        }
                        // SIGSTOP/SIGCONT (Ctrl-Z, fg) interrupts msgrcv even with no handler,
                        // and so does the stop thread's SIGURG: back to the safe point.
                        Err(Errno::EINTR) => {}
                        Err(e) => {
                            let err = Error::sys("msgrcv", format!("queue {key}"), e);
                            return Err(match e {
                                _ if is_removed(*id, e) => err.hint(REMOVED),
                                Errno::EACCES => err.hint(NOT_YOURS),
                                _ => err,
                            });
                        }
                    }
                }
            }
            Queue::Posix(q) => q.recv(on_wait).map(|m| (0, m)),
        }
    }
}

const REMOVED: &str = "the queue was removed by another process; start the writer and a new reader";

/// Whether `e` from a call on queue `id` means the queue is gone: EIDRM (removed while we waited)
/// or EINVAL for an id that IPC_STAT no longer knows. EINVAL also means a message too large for
/// the queue, which IPC_STAT tells apart: the queue is still there.
fn is_removed(id: i32, e: Errno) -> bool {
    match e {
        Errno::EIDRM => true,
        Errno::EINVAL => matches!(sysv::msg_stat(id), Err(Errno::EINVAL | Errno::EIDRM)),
        _ => false,
    }
}

#[allow(clippy::too_many_arguments)]
fn send_sysv(
    id: &mut i32,
    key: Key,
    mode: u32,
    recreate: bool,
    mtype: i64,
    msg: &[u8],
    wait: bool,
    on_wait: &mut dyn FnMut(),
) -> Result<()> {
    let err = |e| Error::sys("msgsnd", format!("queue {key}"), e);
    let mut flags = libc::IPC_NOWAIT;
    let mut closed_since: Option<Instant> = None;
    let mut recreated = 0;
    loop {
        // A stop parks here, before a send, never in the middle of one: the stop thread wakes a
        // msgsnd blocked for room with SIGURG (EINTR below), see common::gate.
        common::gate::safe_point();
        let e = match sysv::msgsnd(*id, mtype, msg, flags) {
            Ok(()) => return Ok(()),
            Err(Errno::EINTR) => continue,
            Err(e) => e,
        };
        let gone = is_removed(*id, e);
        if e == Errno::EAGAIN {
            // Full, or closed by a reader about to remove it (msg_qbytes 0, see `finish`).
            match sysv::msg_stat(*id) {
                Ok(ds) if ds.msg_qbytes == 0 => {
                    let since = *closed_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > CLOSED_PATIENCE {
                        reopen_stale(*id, key, WRITER)?;
                        closed_since = None;
                        continue;
                    }
                    std::thread::sleep(Duration::from_millis(1));
                    continue;
                }
                Ok(_) if wait => {
                    on_wait();
                    flags = 0;
                    continue;
                }
                Ok(_) => {
                    return Err(err(e).hint(format!(
                        "the queue is full: it holds at most kernel.msgmnb = {} bytes; start the reader, or pass --wait to block until there is room",
                        msgmnb()
                    )));
                }
                Err(Errno::EINVAL | Errno::EIDRM) => {} // removed: below
                Err(s) => return Err(Error::sys("msgctl(IPC_STAT)", format!("queue {key}"), s)),
            }
        } else if !gone {
            return Err(match e {
                Errno::EACCES => err(e).hint(NOT_YOURS),
                Errno::EINVAL => err(e).hint(format!(
                    "a message of {} bytes is more than the queue takes (kernel.msgmax = {}, or a smaller msg_qbytes)",
                    msg.len(),
                    msgmax()
                )),
                _ => err(e),
            });
        }
        // The queue was removed: nothing of ours can have been in it unless a `--clean` or an
        // `ipcrm` removed it on purpose, since a reader removes only an empty queue.
        if !recreate || recreated == 3 {
            return Err(err(Errno::EIDRM).hint(REMOVED));
        }
        recreated += 1;
        let (new, _) = sysv::get_or_create(mode as i32, |flags| sysv::msgget(key, flags))
            .map_err(|e| Error::sys("msgget", format!("key {key}"), e))?;
        common::diag!(
            "{WRITER}: queue {key} was removed by another process; sending the rest to a new queue with that key"
        );
        *id = new;
        flags = libc::IPC_NOWAIT;
        closed_since = None;
    }
}

/// What `msgrcv` with `mtype` takes, in words: T > 0 one type, 0 any, T < 0 the lowest up to |T|.
pub fn type_range(mtype: i64) -> String {
    match mtype {
        0 => "a message of any type".into(),
        t if t > 0 => format!("a message of type {t}"),
        t => format!("a message of type 1 to {} (the lowest first)", t.unsigned_abs()),
    }
}

/// For a reader's waiting line: what the queue holds that its wait does not take (the messages of
/// other types: it waits only because none of its type is there).
pub fn held_by_others(queue: &Handle) -> Option<String> {
    match queue.remaining() {
        Ok(0) | Err(_) => None,
        Ok(1) => Some("it holds 1 message, of another type".into()),
        Ok(n) => Some(format!("it holds {n} messages, of other types")),
    }
}

#[derive(Clone, Debug)]
pub enum Handle {
    SysV {
        id: i32,
        key: Key,
    },
    /// The descriptor itself, not only the name: after an unlink the name may be another queue.
    Posix {
        mqd: Arc<MqdT>,
        name: String,
        key: Key,
        mode: u32,
    },
}

impl Handle {
    /// What error messages call it: `queue 0x4d2` or `POSIX queue /msgq-ipc-0x4d2`.
    pub fn name(&self) -> String {
        match self {
            Handle::SysV { key, .. } => format!("queue {key}"),
            Handle::Posix { name, .. } => format!("POSIX queue {name}"),
        }
    }

    pub fn key(&self) -> Key {
        match self {
            Handle::SysV { key, .. } | Handle::Posix { key, .. } => *key,
        }
    }

    /// How many messages the queue holds now (IPC_STAT msg_qnum, or mq_curmsgs).
    pub fn remaining(&self) -> Result<u64> {
        match self {
            Handle::SysV { id, key } => Ok(sysv::msg_stat(*id)
                .map_err(|e| Error::sys("msgctl(IPC_STAT)", format!("queue {key}"), e))?
                .msg_qnum as u64),
            Handle::Posix { mqd, name, .. } => mqueue::curmsgs(mqd, name),
        }
    }

    /// The shell command that removes it by hand.
    pub fn how_to_remove(&self) -> String {
        match self {
            Handle::SysV { key, .. } => format!("ipcrm -Q {key}"),
            Handle::Posix { key, .. } => mqueue::clean_command(*key),
        }
    }
}

/// The end of a run, the same for every process (the last one out removes): the queue is removed
/// only if no message is waiting in it; otherwise it stays for the next reader, said in one line.
/// Runs once per process: the stop thread may call it while the main thread is in it.
///
/// SysV has no "remove if empty", and a writer could send between the count and IPC_RMID. So the
/// queue is first closed to senders (IPC_SET msg_qbytes = 0: msgsnd then finds it full; a writer
/// waits for it to reopen or go), counted again, and then removed, or reopened if a message got in.
/// A POSIX queue is unlinked, then looked at again through our descriptor, and any message that got
/// in is moved to a new queue of the name.
pub fn finish(queue: &Handle, bin: &str) -> Result<()> {
    finish_once(&mut done(), queue, bin)
}

static DONE: Mutex<bool> = Mutex::new(false);

fn done() -> MutexGuard<'static, bool> {
    DONE.lock().unwrap_or_else(PoisonError::into_inner)
}

fn finish_once(done: &mut bool, queue: &Handle, bin: &str) -> Result<()> {
    if std::mem::replace(done, true) {
        return Ok(());
    }
    match queue {
        Handle::SysV { id, key } => finish_sysv(*id, *key, bin),
        Handle::Posix { mqd, name, key, mode } => mqueue::finish(mqd, name, *key, *mode, bin),
    }
}

/// For a stop action: runs `action` with a [`finish`] of its own and then keeps the lock of
/// [`finish`] until the process dies by its signal. Our own removal wakes the main thread (EIDRM);
/// it then blocks in [`finish`] or [`settle`] instead of reporting "removed by another process"
/// and exiting 1 before the signal ends the process.
pub fn stop_with(action: impl FnOnce(&mut dyn FnMut(&Handle, &str) -> Result<()>)) {
    let mut done = done();
    action(&mut |queue, bin| finish_once(&mut done, queue, bin));
    std::mem::forget(done);
}

/// Waits for a stop action in progress (see [`stop_with`]); returns at once otherwise.
pub fn settle() {
    drop(done());
}

fn finish_sysv(id: i32, key: Key, bin: &str) -> Result<()> {
    let stat_err = |e| Error::sys("msgctl(IPC_STAT)", format!("queue {key}"), e);
    let left_in_place = |left| {
        common::diag!(
            "{bin}: left queue {key} in place: it still holds {left} message(s) for the next reader (remove it with: ipcrm -Q {key})"
        )
    };
    // A server first takes back its replies to clients that have gone: nobody would take them.
    serve::sweep(id);
    let mut ds = match sysv::msg_stat(id) {
        Ok(ds) => ds,
        Err(Errno::EINVAL | Errno::EIDRM) => return Ok(()), // already removed by another process
        Err(e) => return Err(stat_err(e)),
    };
    if ds.msg_qnum > 0 {
        left_in_place(ds.msg_qnum);
        return Ok(());
    }
    // 0 if another process is closing it too, or one that was closing it died: open it to the default then.
    let qbytes = if ds.msg_qbytes == 0 { msgmnb() as _ } else { ds.msg_qbytes };
    ds.msg_qbytes = 0;
    match sysv::msg_set(id, &ds) {
        Ok(()) => {}
        Err(Errno::EINVAL | Errno::EIDRM) => return Ok(()),
        Err(Errno::EPERM) => {
            // Another user's queue, shared with --mode: this reader may use it, not remove it.
            common::diag!(
                "{bin}: left queue {key} in place: it is uid {}'s, and only its owner (or root) may remove it",
                ds.msg_perm.uid
            );
            return Ok(());
        }
        Err(e) => return Err(Error::sys("msgctl(IPC_SET)", format!("queue {key}"), e).hint(NOT_YOURS)),
    }
    let mut ds = match sysv::msg_stat(id) {
        Ok(ds) => ds,
        Err(Errno::EINVAL | Errno::EIDRM) => return Ok(()),
        Err(e) => return Err(stat_err(e)),
    };
    if ds.msg_qnum > 0 {
        // A message got in before the close: reopen, and it stays for the next reader.
        ds.msg_qbytes = qbytes;
        sysv::msg_set(id, &ds).map_err(|e| Error::sys("msgctl(IPC_SET)", format!("queue {key}"), e))?;
        left_in_place(ds.msg_qnum);
        return Ok(());
    }
    match sysv::msg_remove(id) {
        Ok(()) | Err(Errno::EINVAL | Errno::EIDRM) => Ok(()),
        Err(e) => Err(Error::sys("msgctl(IPC_RMID)", format!("queue {key}"), e)),
    }
}

/// `reader --clean`: removes the queue of `key` (after a SIGKILL nothing else could).
pub fn clean(key: Key, flavor: Flavor) -> Result<String> {
    if flavor == Flavor::Posix {
        let name = posix_queue_name(key);
        return match mq_sys::unlink(&name) {
            Ok(()) => Ok(format!("removed POSIX queue {name}")),
            Err(Errno::ENOENT) => Ok(format!("no POSIX queue {name}: nothing to remove")),
            Err(e) => Err(Error::sys("mq_unlink", name, e)),
        };
    }
    match sysv::msgget(key, 0) {
        Ok(id) => {
            sysv::msg_remove(id).map_err(|e| Error::sys("msgctl(IPC_RMID)", format!("queue {key}"), e))?;
            Ok(format!("removed queue {key}"))
        }
        Err(Errno::ENOENT) => Ok(format!("no queue has key {key}: nothing to remove")),
        Err(e) => Err(Error::sys("msgget", format!("key {key}"), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn einval_means_removed_only_if_ipc_stat_agrees() {
        // A key of this process's own (0x4e in the top byte: not the tests crate's 0x40).
        let key = Key::new(0x4e00_0000 | (std::process::id() & 0xff_ffff));
        let (q, origin) = Queue::get_or_create(key, 0o600).unwrap();
        assert_eq!(origin, Origin::Made);
        let Handle::SysV { id, .. } = q.handle() else { unreachable!() };
        // msgsnd's EINVAL for a message over kernel.msgmax: the queue is still there.
        let (size, full) = (is_removed(id, Errno::EINVAL), is_removed(id, Errno::EAGAIN));
        sysv::msg_remove(id).unwrap(); // before any assert: nothing is left if one fails
        assert!(!size && !full);
        assert!(is_removed(id, Errno::EINVAL));
        assert!(is_removed(id, Errno::EIDRM));
    }
}
