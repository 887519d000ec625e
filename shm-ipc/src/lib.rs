//! Shared memory (note section 4, claims S5-S7): one segment of SIZE bytes, found by its key,
//! mapped into each process's own address space and used like a variable. The note's segment
//! layout is kept (a NUL-terminated C string at offset 0); what the note leaves out is added:
//! a semaphore set under the same key tells the reader when the data is ready, the segment is
//! made 0600 instead of 0666, and it is detached, and removed by the last process that uses it.

pub mod layout;
mod posix_chan;
mod sysv_chan;

use std::fmt::Display;
use std::time::Duration;

use common::cleanup::{AtEnd, Cleanup};
use common::gate;

use common::{Error, Key, PeerState, Result};

pub use posix_chan::PosixChannel;
pub use sysv_chan::{SysvChannel, legacy_message, remove_segment};

/// The writer's message when none is given: the note's.
pub const DEFAULT_MESSAGE: &str = "Linux Programming";

/// How long one wait lasts before a waiter looks around (a stop to honour, an unlinked object).
const WAIT_SLICE: Duration = Duration::from_millis(200);

// The pair's contract, kept beside its writer and reader like TLPI's svshm_xfr.h: the segment's
// size and the POSIX objects' names. The bins' help and the tests (and, through -D, the tests' C
// programs) take them from here, so a change is made on one line.

/// The note's SIZE (left undefined there): the segment's size in bytes, its NUL included.
pub const SIZE: usize = 4096;

/// The POSIX shared memory of `key` (`--posix`), e.g. `/shm-ipc-0x4d2`; `shm_name("<key>")` is
/// the form the help shows.
pub fn shm_name(key: impl Display) -> String {
    format!("/shm-ipc-{key}")
}

/// The size of the POSIX shared memory: the message's SIZE bytes, then its state word (4 bytes,
/// 0 empty and 1 full, padded to 8).
pub const POSIX_SIZE: usize = SIZE + 8;

/// The named semaphores that versions before issue 20 kept beside [`shm_name`], `[full, free]`:
/// none is made any more, and `reader --posix --clean` still removes them.
pub fn sem_names(key: impl Display) -> [String; 2] {
    let shm = shm_name(key);
    [format!("{shm}-full"), format!("{shm}-free")]
}

/// The `--posix` flag's help, the same in the writer and the reader.
pub fn posix_help() -> String {
    format!(
        "Use POSIX shared memory (shm_open {}), with a futex word and record locks in it, instead of System V",
        shm_name("<key>")
    )
}

/// Refuses, before any system call, a text that does not fit with its NUL.
pub fn check_fits(text: &[u8]) -> Result<()> {
    if text.len() > SIZE - 1 {
        return Err(Error::Usage(format!(
            "a message of {} bytes does not fit the {SIZE}-byte segment with its NUL (at most {} bytes)",
            text.len(),
            SIZE - 1
        )));
    }
    Ok(())
}

/// Which objects a channel runs over: System V's (the note's) or POSIX's (`--posix`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    SysV,
    Posix,
}

impl Variant {
    /// The variant a `--posix` flag chooses.
    pub fn from_posix_flag(posix: bool) -> Variant {
        if posix { Variant::Posix } else { Variant::SysV }
    }
}

/// Which end of the exchange a process is: a writer attaches read-write, a reader read-only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Writer,
    Reader,
}

/// Whether an open makes the objects that do not exist yet (with the mode it is given).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Create {
    IfMissing,
    /// Fail if the segment (or shared memory) does not exist (`reader --no-create`).
    Never,
}

/// One side of the exchange: [`SysvChannel`] (the note's segment, with semaphores) or
/// [`PosixChannel`] (`--posix`). Each opens with its own `open`, where the note's calls are made.
pub trait Channel {
    /// Waits until the last message was taken (calling `on_wait` once if it must), then copies
    /// `text` and its NUL in (the note's `strcpy`) and tells the reader.
    fn send(&mut self, text: &[u8], on_wait: &mut dyn FnMut()) -> Result<()>;

    /// Waits until a message is ready (calling `on_wait` once if it must), copies it out and
    /// frees the segment for the next one.
    fn recv(&mut self, on_wait: &mut dyn FnMut()) -> Result<Vec<u8>>;

    /// What the channel is made of, for messages and the end of run.
    fn objects(&self) -> Objects;

    /// What ends this process's run, also from the stop thread (see [`Ender::finish`]).
    fn ender(&self) -> Ender;
}

/// An open's result, passed on; a failed open also tells the stop thread that there is nothing
/// to end, so a stop need not wait for this thread.
pub fn opened<C: Channel>(chan: Result<C>) -> Result<C> {
    chan.inspect_err(|_| gate::done())
}

/// The end of a run of one process ("the last one out removes"), shared with the stop thread.
#[derive(Clone)]
pub struct Ender(EndOf);

impl From<sysv_chan::SysvEnd> for Ender {
    fn from(e: sysv_chan::SysvEnd) -> Ender {
        Ender(EndOf::SysV(e))
    }
}

impl From<posix_chan::PosixEnd> for Ender {
    fn from(e: posix_chan::PosixEnd) -> Ender {
        Ender(EndOf::Posix(e))
    }
}

#[derive(Clone)]
enum EndOf {
    SysV(sysv_chan::SysvEnd),
    Posix(posix_chan::PosixEnd),
}

impl Ender {
    /// Holding the lock that every process takes to decide its end (SysV: BUSY; POSIX: a record
    /// lock), removes the segment and semaphores if no message waits in them and no other process
    /// uses or waits on them; otherwise leaves them to the others and says why. A second call
    /// (the stop thread after the main thread) does nothing.
    pub fn finish(&self) -> Result<Outcome> {
        static ENDED: std::sync::Mutex<bool> = std::sync::Mutex::new(false);
        let mut ended = ENDED.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if *ended {
            return Ok(Outcome::Gone);
        }
        *ended = true;
        match &self.0 {
            EndOf::SysV(e) => e.finish(),
            EndOf::Posix(e) => e.finish(),
        }
    }
}

/// How a process comes to its end of run: the lines it prints differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// It did what it was asked.
    Finished,
    /// A signal stopped it (the stop thread ends the run).
    Stopped,
}

/// The shared end-of-run guard, holding what a stop must end: registered before the channel is
/// opened, so a stop that comes while it opens waits (bounded) until the open is done and the
/// main thread parks, and what the open made is never left behind.
pub fn stop_guard(bin: &'static str, side: Side, at_end: AtEnd) -> Cleanup<(Objects, Ender)> {
    // The longest an open or a message in hand may take, with a margin: opens and copies are short.
    Cleanup::register(at_end, Duration::from_secs(3), move |(objects, ender): (Objects, Ender)| {
        let _ = report_end(bin, &objects, side, End::Stopped, ender.finish());
    })
}

/// How a run ended for the objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// This process was the last one: the objects are gone.
    Removed,
    /// Already removed (by another process's end, `--clean` or by hand).
    Gone,
    /// Left in place: `pending` messages wait in them, `others` other processes use them.
    Left { pending: u64, others: u64 },
    /// Left in place because they are another user's: only their owner (or root) may remove them.
    NotOurs { owner: u32 },
}

impl Outcome {
    /// The one stderr line about objects left in place, if there is something to say: always
    /// when a message waits (the next reader gets it), and, for a reader or a stopped process,
    /// who keeps them (a writer with more to send, or another reader).
    /// A writer that ends normally says nothing: its last message waiting is the normal hand-over.
    pub fn line(&self, objects: &Objects, side: Side, end: End) -> Option<String> {
        let (writer, stopped) = (side == Side::Writer, end == End::Stopped);
        let name = objects.name();
        if let Outcome::NotOurs { owner } = *self {
            return Some(format!(
                "{name} left in place: it is uid {owner}'s, and only its owner (or root) may remove it"
            ));
        }
        let Outcome::Left { pending, others } = *self else { return None };
        if pending > 0 && (stopped || !writer) {
            let what =
                if pending == 1 { "1 more message waits".to_string() } else { format!("{pending} more messages wait") };
            return Some(format!("{what} in {name}; left in place for the next reader"));
        }
        if (stopped || !writer) && others > 0 {
            let who =
                if others == 1 { "another process uses".to_string() } else { format!("{others} other processes use") };
            return Some(format!("{name} left in place: {who} it; the last one out removes it"));
        }
        None
    }
}

/// What a channel is made of, for error messages and removal (also from the stop thread).
#[derive(Clone, Debug)]
pub enum Objects {
    SysV { key: Key, shm_id: i32, sem_id: i32 },
    Posix { key: Key },
}

impl Objects {
    pub fn name(&self) -> String {
        match self {
            Objects::SysV { key, .. } => format!("segment {key}"),
            Objects::Posix { key } => format!("POSIX shared memory {}", shm_name(*key)),
        }
    }

    /// What a reader waits on (set when a message is ready), in words.
    pub fn ready_semaphore(&self) -> String {
        match self {
            Objects::SysV { key, .. } => format!("semaphore FULL (0) of set {key}"),
            Objects::Posix { .. } => format!("state word FULL (1) at byte {SIZE}"),
        }
    }

    /// How many other processes have the segment attached, where the kernel tells (IPC_STAT's
    /// shm_nattch, less this process); None for POSIX shared memory, which keeps no such count.
    pub fn others_attached(&self) -> Option<u64> {
        match self {
            Objects::SysV { shm_id, .. } => {
                common::sysv::shm_stat(*shm_id).ok().map(|ds| ds.shm_nattch.saturating_sub(1))
            }
            Objects::Posix { .. } => None,
        }
    }

    /// For a waiting line: whether a peer is there, as far as the kernel tells.
    pub fn peer_state(&self, peer: &str) -> PeerState {
        match self.others_attached() {
            Some(0) => PeerState::Absent,
            Some(n) => PeerState::Present(format!("{n} other process(es) attached, not necessarily a {peer}")),
            None => PeerState::Unknown,
        }
    }
}

/// Prints `<bin>: <line>` for an end of run, or `<bin>: <error>` (the stop thread's way to report).
pub fn report_end(bin: &str, objects: &Objects, side: Side, end: End, ended: Result<Outcome>) -> Result<()> {
    match ended {
        Ok(outcome) => {
            if let Some(line) = outcome.line(objects, side, end) {
                common::diag!("{bin}: {line}");
            }
            Ok(())
        }
        Err(e) if end == End::Stopped => {
            common::diag!("{bin}: {e}");
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// `reader --clean`: removes whatever of `key` exists (after a SIGKILL nothing else could).
pub fn clean(key: Key, variant: Variant) -> Result<String> {
    match variant {
        Variant::Posix => posix_chan::clean(key),
        Variant::SysV => sysv_chan::clean(key),
    }
}
