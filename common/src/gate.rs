//! Stopping the main thread at a safe point before the stop thread ends the run, and never with
//! a message half printed.
//!
//! The stop thread decides whether the objects can be removed. While it does, the main thread
//! must not take a message (it would be gone from the object but never printed) nor sit in a
//! wait (a SysV wait counts as a user). So the stop thread asks, and the main thread parks at its
//! next safe point: before each wait, between its timed waits, after a wait that the stop thread
//! interrupted, or before its own end of run. A main thread blocked in a call that has no timeout
//! (msgrcv) is woken by SIGURG, whose handler does nothing: the call fails with EINTR and the
//! caller goes to its safe point.
//!
//! The promise about the message in hand: from the moment the main thread has taken a message
//! from its object until it is written whole to stdout, it holds a [`Holding`] ([`hold`]). A stop
//! that finds a message held waits for it without limit, however long stdout blocks (a reader
//! piped into a pager, a full pipe): the message is printed whole, then the main thread parks.
//! After a moment it says so on stderr, with the way out: a second stop signal gives the message
//! up at once (one stderr line names it as lost, and the process dies by that second signal, see
//! `stop.rs`). Where nothing is held (an open, a wait, the gap between taking a message and
//! holding it), the stop waits for the safe point at most a bounded `patience`, as before.

use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock, PoisonError};

use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
use std::time::{Duration, Instant};

static STOPPING: AtomicBool = AtomicBool::new(false);
static ENDING: AtomicBool = AtomicBool::new(false);
static STATE: Mutex<State> = Mutex::new(State { parked: false, held: None });
static CHANGED: Condvar = Condvar::new();
/// Set (for good) by the first wait on CHANGED for the message in hand, under the state lock and
/// before that wait: until then nobody waits, and [`hold`] and its drop make no futex call per
/// message.
static WATCHED: AtomicBool = AtomicBool::new(false);
/// How many messages this process has held: the number of the one in hand.
static TAKEN: AtomicU64 = AtomicU64::new(0);

/// How long a stop waits quietly for a message in hand before it says why it does not end.
const QUIET: Duration = Duration::from_millis(200);
/// How much of a held message its description shows.
const HEAD: usize = 24;

struct State {
    /// The main thread parked for good, or ended its run ([`done`]).
    parked: bool,
    /// The message in hand, if any.
    held: Option<Held>,
}

type Undo = Box<dyn FnOnce() + Send>;

struct Held {
    number: u64,
    len: usize,
    head: Vec<u8>,
    /// What makes a message given up really lost rather than delivered again (see [`Holding::if_lost`]).
    if_lost: Option<Undo>,
}

impl Held {
    /// E.g. `message 3 of this run (8002 bytes, "2 xxxxxxxxxxxxxxxxxxxxxx...")`.
    fn describe(&self) -> String {
        let more = if self.len > self.head.len() { "..." } else { "" };
        format!("message {} of this run ({} bytes, \"{}{more}\")", self.number, self.len, self.head.escape_ascii())
    }
}

fn state() -> MutexGuard<'static, State> {
    STATE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A message that the main thread took from its object and has not yet written whole to stdout.
/// Take it with [`hold`] right after the take, drop it once the print is flushed (and whatever
/// must follow before a stop may act is done). One at a time, by the main thread.
#[must_use = "the message counts as held only while the guard lives"]
pub struct Holding(PhantomData<*const ()>);

/// The main thread holds `msg` (just taken, about to be printed): a stop from now on waits until
/// the returned guard is dropped, without limit; a second stop signal gives the message up.
pub fn hold(msg: &[u8]) -> Holding {
    let number = TAKEN.fetch_add(1, Ordering::Relaxed) + 1;
    let head = msg[..msg.len().min(HEAD)].to_vec();
    state().held = Some(Held { number, len: msg.len(), head, if_lost: None });
    held_changed();
    Holding(PhantomData)
}

impl Holding {
    /// If the message is given up (a second stop signal while it is held), `undo` runs before the
    /// process dies, on the stop's thread: it removes what would deliver the message again to the
    /// next reader (bytes still in a FIFO), so that it is lost, never doubled.
    pub fn if_lost(self, undo: impl FnOnce() + Send + 'static) -> Holding {
        if let Some(held) = state().held.as_mut() {
            held.if_lost = Some(Box::new(undo));
        }
        self
    }
}

impl Drop for Holding {
    fn drop(&mut self) {
        state().held = None;
        held_changed();
    }
}

/// Tells a waiter that the message in hand changed, if there can be one: a waiter sets WATCHED
/// while it holds the state lock, before it waits (which lets go of the lock), and the change was
/// made under that lock, so a waiter that saw the old state is seen here.
fn held_changed() {
    if WATCHED.load(Ordering::SeqCst) {
        CHANGED.notify_all();
    }
}

/// For the second stop signal: the line that names the message in hand, if any, after running
/// its [`Holding::if_lost`]. Then nothing moves any more (the state stays locked: the main thread
/// cannot let go of the message, nor the stop go on): the caller ends the process at once.
pub(crate) fn give_up() -> Option<String> {
    let mut s = state();
    let held = s.held.as_mut()?;
    let line = format!("{} is lost: stdout had not taken it whole (what it took of it is cut short)", held.describe());
    if let Some(undo) = held.if_lost.take() {
        undo();
    }
    std::mem::forget(s);
    Some(line)
}

/// Waits (the state lock held by `s`) until no message is held, saying on stderr why after a
/// quiet moment. Returns with the lock held again.
fn wait_released(s: MutexGuard<'static, State>) -> MutexGuard<'static, State> {
    WATCHED.store(true, Ordering::SeqCst);
    let (mut s, quiet) =
        CHANGED.wait_timeout_while(s, QUIET, |s| s.held.is_some()).unwrap_or_else(PoisonError::into_inner);
    if quiet.timed_out()
        && let Some(held) = &s.held
    {
        let line = format!(
            "{}: stopping once {} is written whole: stdout does not take it yet; stop again to give it up",
            program(),
            held.describe()
        );
        // Said without the lock: a blocked stderr must not keep the main thread from letting go.
        drop(s);
        crate::diag!("{line}");
        s = state();
    }
    CHANGED.wait_while(s, |s| s.held.is_some()).unwrap_or_else(PoisonError::into_inner)
}

/// This program's name as its diagnostics start (`reader`), from argv[0].
pub(crate) fn program() -> String {
    std::env::args_os()
        .next()
        .and_then(|a| std::path::Path::new(&a).file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "reader".into())
}

/// Called by the main thread where it holds nothing: parks for good if a stop was asked for.
/// Once the main thread has begun its own end of run ([`ending`]) there is no safe point left: it
/// may hold what the stop thread waits for, so it goes on to [`done`] instead. Nor is it a safe
/// point while a message is held ([`hold`]): parked, it would never print it.
pub fn safe_point() {
    if !STOPPING.load(Ordering::SeqCst) || ENDING.load(Ordering::SeqCst) {
        return;
    }
    let mut s = state();
    if s.held.is_some() {
        return;
    }
    s.parked = true;
    CHANGED.notify_all();
    loop {
        s = CHANGED.wait(s).unwrap_or_else(PoisonError::into_inner); // the stop thread ends the process
    }
}

/// Called by the main thread past its last safe point, as it begins its own end of run: a stop
/// from now on waits for [`done`].
pub fn ending() {
    ENDING.store(true, Ordering::SeqCst);
}

/// Called by the main thread once its own end of run is over: it will touch nothing any more.
pub fn done() {
    state().parked = true;
    CHANGED.notify_all();
}

/// Called by the stop thread: asks the main thread to park and waits until it has (or is done).
/// While the main thread holds a message, without limit (it is printed whole first); otherwise at
/// most `limit` (from the stop, or from the release of the message in hand). Wakes it again every
/// few milliseconds when it holds nothing: a SIGURG that lands just before the main thread enters
/// its blocking call is lost on the handler, the next one is not.
pub fn stop_main(limit: Duration) {
    STOPPING.store(true, Ordering::SeqCst);
    let mut deadline = Instant::now() + limit;
    let mut s = state();
    while !s.parked {
        if s.held.is_some() {
            s = wait_released(s);
            deadline = Instant::now() + limit; // then it goes on to its next safe point
            continue;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        wake_main();
        s = CHANGED.wait_timeout(s, left.min(Duration::from_millis(10))).unwrap_or_else(PoisonError::into_inner).0;
    }
}

/// Called by the stop thread of a reader that guards its hand-over itself (file-ipc): returns once
/// the main thread holds no message, however long its stdout blocks, saying so on stderr after a
/// quiet moment as [`stop_main`] does (a second stop signal gives the message up).
pub fn wait_while_held() {
    drop(wait_released(state()));
}

/// Whether a stop has been asked for (a caller that got EINTR goes to its safe point then).
pub fn stopping() -> bool {
    STOPPING.load(Ordering::SeqCst)
}

static MAIN: OnceLock<libc::pthread_t> = OnceLock::new();

extern "C" fn woken(_: libc::c_int) {}

/// Called once by the main thread, before it first blocks in a call without a timeout: lets
/// [`stop_main`] interrupt that call with SIGURG (ignored by default, so a stray one does no harm;
/// no SA_RESTART, so the call returns EINTR).
pub fn arm() -> crate::Result<()> {
    use crate::SysResult;
    // SAFETY: pthread_self has no preconditions.
    let me = unsafe { libc::pthread_self() };
    let _ = MAIN.set(me);
    let action = SigAction::new(SigHandler::Handler(woken), SaFlags::empty(), SigSet::empty());
    // SAFETY: `woken` does nothing, so it is async-signal-safe.
    unsafe { sigaction(Signal::SIGURG, &action) }.sys("sigaction", "SIGURG").map(drop)
}

fn wake_main() {
    if let Some(&main) = MAIN.get() {
        // SAFETY: `main` is the main thread, which lives as long as the process.
        unsafe { libc::pthread_kill(main, libc::SIGURG) };
    }
}
