//! A single-producer single-consumer ring of message slots in shared memory, for the rows that
//! show what shared memory costs without a kernel in the loop: `sysv-shm-spin` waits by spinning
//! (then yielding, so a peer on the same CPU can run), `posix-shm-futex` spins briefly and then
//! sleeps in futex(2).
//!
//! A slot is published by its first 8 bytes, the message's head word (see msg.rs), stored last:
//! the consumer waits until the head differs from the one it took from that slot a lap ago, so a
//! 64-byte message is one cache line, number and payload together, and crosses between CPUs once.
//! The consumer hands slots back through one counter, which the producer reads only when the
//! ring looks full. Slots start on a page and 4 KiB ones are whole pages, so a copy between a
//! slot and a page-aligned buffer never hits the 4 KiB aliasing penalty (README).
//!
//! The peer is another process, so slots are never Rust slices: bytes go in and out by the
//! volatile copies of `common::Memory`, control and head words are atomics.
//!
//! Contract: no two messages of a direction have the same head, and none is all zero in its first
//! 8 bytes (msg.rs guarantees both: the head carries the message's unique number).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Instant;

use common::{Memory, MemoryMut, Words};

use crate::buf::PAGE;
use crate::msg::WORD;

/// Slots in the ring: enough to stream without waiting on every message.
pub const SLOTS: usize = 8;
/// How long a waiter spins before it gives up its CPU (sched_yield) or sleeps (futex): long
/// enough for a peer on another CPU to answer, short enough not to burn a shared CPU's time slice.
pub const SPIN_NS: f64 = 2000.0;
/// Spin-and-yield rounds (~2 µs each) before a futex waiter sleeps: a peer on another CPU that is
/// busy copying a big message answers within them, without a wake-up through the scheduler.
const YIELDS_BEFORE_SLEEP: u32 = 25;
/// At most this many pause instructions per spin, whatever the calibration says.
const SPIN_MAX: u32 = 4000;

/// Pause instructions in [`SPIN_NS`]: a pause takes from ~10 to ~150 cycles depending on the CPU,
/// so the count is measured once, before any fork (the children inherit it).
static SPINS: AtomicU32 = AtomicU32::new(1000);

/// Pause instructions in ~2 µs (as calibrated).
pub fn spins() -> u32 {
    SPINS.load(Ordering::Relaxed)
}

pub fn calibrate_spin() -> u32 {
    let n = 100_000u32;
    let t0 = Instant::now();
    for _ in 0..n {
        std::hint::spin_loop();
    }
    let per_pause = t0.elapsed().as_nanos().max(1) as f64 / f64::from(n);
    let spins = ((SPIN_NS / per_pause) as u32).clamp(16, SPIN_MAX);
    SPINS.store(spins, Ordering::Relaxed);
    spins
}

/// Control words, each on a 128-byte line of its own (two lines: the adjacent-line prefetcher)
/// in the first page: the consumer's count, and "a waiter may sleep" flags for each side.
const LINE: usize = 128;
const TAIL: usize = 0;
const CONSUMER_SLEEPS: usize = 1;
const PRODUCER_SLEEPS: usize = 2;
/// The CPU each end last ran on (+1; 0: not known yet), stored only when it changes, so these
/// lines stay shared and cost nothing per message: a waiter whose peer last ran on its own CPU
/// does not spin (the peer cannot run meanwhile) but gives the CPU up at once.
const PRODUCER_CPU: usize = 3;
const CONSUMER_CPU: usize = 4;

/// Bytes between slots: whole cache lines, whole pages from 4 KiB on.
pub fn stride(size: usize) -> usize {
    if size >= PAGE { size.next_multiple_of(PAGE) } else { size.next_multiple_of(64) }
}

/// Bytes of shared memory a ring of `size`-byte messages needs.
pub fn bytes(size: usize) -> usize {
    PAGE + SLOTS * stride(size)
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Wait {
    Spin,
    Futex,
}

/// One end of a ring laid over `mem` (the same bytes in both processes).
pub struct Ring<M: MemoryMut> {
    mem: M,
    size: usize,
    /// stride(size), computed once.
    stride: usize,
    wait: Wait,
    /// Messages this end has sent (producer) or taken (consumer).
    count: u32,
    /// Producer: the consumer's count as last read.
    seen: u32,
    /// Consumer: the head word taken from each slot a lap ago.
    last: [u64; SLOTS],
    /// The CPU this end last said it runs on (+1).
    cpu: u32,
}

impl<M: MemoryMut> Ring<M> {
    pub fn new(mem: M, size: usize, wait: Wait) -> Self {
        assert!(mem.len() >= bytes(size) && size >= WORD && size.is_multiple_of(WORD));
        Ring { mem, size, stride: stride(size), wait, count: 0, seen: 0, last: [0; SLOTS], cpu: 0 }
    }

    fn control(&self, which: usize) -> &AtomicU32 {
        self.mem.atomic_u32(which * LINE)
    }

    /// Says which CPU this end (`mine`: PRODUCER_CPU or CONSUMER_CPU) runs on, if that changed;
    /// returns it (+1).
    fn say_cpu(&mut self, mine: usize) -> u32 {
        let now = this_cpu();
        if now != self.cpu {
            self.cpu = now;
            self.control(mine).store(now, Ordering::Relaxed);
        }
        now
    }

    /// Whether spinning can help: the peer (`theirs`) last ran on another CPU than `mine`.
    fn peer_elsewhere(&self, mine: u32, theirs: usize) -> bool {
        let peer = self.control(theirs).load(Ordering::Relaxed);
        mine == 0 || peer == 0 || peer != mine
    }

    /// Where slot `n` starts in the mapping (bytes(size) covers the first page and SLOTS strides).
    fn slot(&self, n: u32) -> usize {
        PAGE + (n as usize % SLOTS) * self.stride
    }

    fn head_word(&self, n: u32) -> &AtomicU64 {
        self.mem.atomic_u64(self.slot(n))
    }

    /// Producer: copies `msg` into the next slot once there is room, then publishes it.
    pub fn send(&mut self, msg: &[u8]) {
        let first = u64::from_le_bytes(msg[..WORD].try_into().unwrap_or_default());
        self.send_in_place(first, |mut body| body.copy_from(&msg[WORD..]));
    }

    /// Producer, in place (a loan): `fill` writes the message's bytes after the head straight
    /// into the slot; then the head `first` publishes it.
    pub fn send_in_place(&mut self, first: u64, fill: impl FnOnce(BodyMut<'_, M>)) {
        let n = self.count;
        let cpu = self.say_cpu(PRODUCER_CPU);
        if n.wrapping_sub(self.seen) >= SLOTS as u32 {
            let spin = self.peer_elsewhere(cpu, CONSUMER_CPU);
            let tail = self.control(TAIL);
            self.seen = self.wait_until(
                || Some(tail.load(Ordering::Acquire)).filter(|&t| n.wrapping_sub(t) < SLOTS as u32),
                tail,
                PRODUCER_SLEEPS,
                spin,
            );
        }
        // The ring protocol lends this slot to the producer alone until it publishes the head.
        let at = self.slot(n) + WORD;
        fill(BodyMut { mem: &mut self.mem, at, len: self.size - WORD });
        let word = self.head_word(n);
        if self.wait == Wait::Futex {
            word.store(first, Ordering::SeqCst);
            if self.control(CONSUMER_SLEEPS).load(Ordering::SeqCst) != 0 {
                // SAFETY: the word lies in the ring's mapping, which self keeps mapped.
                unsafe { crate::sys::futex_wake(word.as_ptr().cast()) };
            }
        } else {
            word.store(first, Ordering::Release);
        }
        self.count = n.wrapping_add(1);
    }

    /// Consumer: waits for the next message, copies it into `out`, then frees its slot.
    pub fn recv(&mut self, out: &mut [u8]) {
        self.recv_in_place(|first, body| {
            out[..WORD].copy_from_slice(&first.to_le_bytes());
            body.copy_to(&mut out[WORD..]);
        })
    }

    /// Consumer, in place: waits for the next message and hands `look` its head word and the
    /// rest where they lie; the slot is freed when `look` returns.
    pub fn recv_in_place<T>(&mut self, look: impl FnOnce(u64, Body<'_, M>) -> T) -> T {
        let n = self.count;
        let cpu = self.say_cpu(CONSUMER_CPU);
        let spin = self.peer_elsewhere(cpu, PRODUCER_CPU);
        let last = self.last[n as usize % SLOTS];
        let word = self.head_word(n);
        let first =
            self.wait_until(|| Some(word.load(Ordering::Acquire)).filter(|&w| w != last), word, CONSUMER_SLEEPS, spin);
        // The consumer has the slot from seeing its new head until it hands it back below.
        let result = look(first, Body { mem: &self.mem, at: self.slot(n) + WORD, len: self.size - WORD });
        self.last[n as usize % SLOTS] = first;
        self.count = n.wrapping_add(1);
        let tail = self.control(TAIL);
        if self.wait == Wait::Futex {
            tail.store(self.count, Ordering::SeqCst);
            if self.control(PRODUCER_SLEEPS).load(Ordering::SeqCst) != 0 {
                // SAFETY: the word lies in the ring's mapping, which self keeps mapped.
                unsafe { crate::sys::futex_wake(tail.as_ptr()) };
            }
        } else {
            tail.store(self.count, Ordering::Release);
        }
        result
    }

    /// Waits until `ready()` gives a value. Both kinds spin for ~2 µs (unless `spin` is false:
    /// the peer is on this CPU and cannot answer while we spin), then yield the CPU (so a peer on
    /// the same CPU runs at once) and spin again; the futex kind, after [`YIELDS_BEFORE_SLEEP`]
    /// rounds, sleeps in the kernel on the low 32 bits of `word` (which differ between any two
    /// heads of a slot, and between two counts).
    fn wait_until<T, W: AsWord>(&self, ready: impl Fn() -> Option<T>, word: &W, flag: usize, spin: bool) -> T {
        let spins = if spin { SPINS.load(Ordering::Relaxed) } else { 1 };
        let mut rounds = 0;
        loop {
            for _ in 0..spins {
                if let Some(v) = ready() {
                    return v;
                }
                std::hint::spin_loop();
            }
            rounds += 1;
            if self.wait == Wait::Spin || rounds < YIELDS_BEFORE_SLEEP {
                crate::sys::sched_yield();
                continue;
            }
            // Announce the sleep, look again, then sleep only if the word is unchanged (futex
            // checks that atomically). With SeqCst on both sides, a publisher either sees the
            // flag and wakes us, or we see its new value.
            let seen = word.low32();
            self.control(flag).store(1, Ordering::SeqCst);
            if let Some(v) = ready() {
                self.control(flag).store(0, Ordering::SeqCst);
                return v;
            }
            // SAFETY: the word lies in the ring's mapping, which self keeps mapped.
            unsafe { crate::sys::futex_wait(word.ptr32(), seen) };
            self.control(flag).store(0, Ordering::SeqCst);
        }
    }
}

/// The bytes of a slot after its head word, lent to the producer until it publishes the slot.
pub struct BodyMut<'a, M> {
    mem: &'a mut M,
    at: usize,
    len: usize,
}

impl<M: MemoryMut> BodyMut<'_, M> {
    /// Copies in the message's bytes after the head (exactly the slot's).
    pub fn copy_from(&mut self, data: &[u8]) {
        assert_eq!(data.len(), self.len, "a message of the ring's size");
        self.mem.write(self.at, data);
    }

    /// Writes the body word by word where it lies (a loan: no copy).
    pub fn put_le_words(&mut self, words: impl IntoIterator<Item = u64>) {
        self.mem.put_le_words(self.at, self.len / WORD, words);
    }
}

/// The bytes of a slot after its head word, lent to the consumer until it hands the slot back.
pub struct Body<'a, M> {
    mem: &'a M,
    at: usize,
    len: usize,
}

impl<M: Memory> Body<'_, M> {
    /// Copies the bytes after the head out (exactly the slot's).
    pub fn copy_to(&self, out: &mut [u8]) {
        assert_eq!(out.len(), self.len, "a message of the ring's size");
        self.mem.read(self.at, out);
    }

    /// The body's words, read where they lie.
    pub fn le_words(&self) -> Words<'_> {
        self.mem.le_words(self.at, self.len / WORD)
    }
}

/// A word a futex can wait on: its low 32 bits (little-endian: its first 4 bytes).
trait AsWord {
    fn ptr32(&self) -> *const u32;
    fn low32(&self) -> u32;
}

impl AsWord for AtomicU32 {
    fn ptr32(&self) -> *const u32 {
        self.as_ptr()
    }
    fn low32(&self) -> u32 {
        self.load(Ordering::SeqCst)
    }
}

impl AsWord for AtomicU64 {
    fn ptr32(&self) -> *const u32 {
        self.as_ptr().cast()
    }
    fn low32(&self) -> u32 {
        self.load(Ordering::SeqCst) as u32
    }
}

/// The CPU this thread runs on, +1 (0 if unknown): sched_getcpu reads it from rseq or the vDSO,
/// no system call.
fn this_cpu() -> u32 {
    // SAFETY: no arguments.
    let c = unsafe { libc::sched_getcpu() };
    if c < 0 { 0 } else { c as u32 + 1 }
}
