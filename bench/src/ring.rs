//! A single-producer single-consumer ring of message slots in shared memory, for the two rows that
//! show what shared memory costs without a kernel in the loop: `sysv-shm-spin` waits by spinning
//! (then yielding, so a peer on the same CPU can run), `posix-shm-futex` spins briefly and then
//! sleeps in futex(2) on the counter word itself. The counters are 32-bit because a futex word is.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

use common::Memory;

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
const LINE: usize = 128; // counters on lines of their own (two, for the adjacent-line prefetcher)

/// Bytes of shared memory a ring of `size`-byte messages needs.
pub fn bytes(size: usize) -> usize {
    4 * LINE + SLOTS * size
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Wait {
    Spin,
    Futex,
}

/// One end of a ring laid over `mem` (the same bytes in both processes).
pub struct Ring<M: Memory> {
    mem: M,
    size: usize,
    wait: Wait,
    /// The peer's counter as last read: the producer reloads `tail` only when the ring looks
    /// full, the consumer `head` only when it looks empty, so the peer's cache line crosses
    /// between CPUs only when it must.
    seen: u32,
}

impl<M: Memory> Ring<M> {
    pub fn new(mem: M, size: usize, wait: Wait) -> Self {
        assert!(mem.len() >= bytes(size));
        Ring { mem, size, wait, seen: 0 }
    }

    fn word(&self, line: usize) -> &AtomicU32 {
        // SAFETY: the mapping lives as long as self, is page-aligned (so each line start is
        // aligned for u32) and these words are only ever accessed atomically, by both processes.
        unsafe { &*(self.mem.base().as_ptr().add(line * LINE) as *const AtomicU32) }
    }

    fn head(&self) -> &AtomicU32 {
        self.word(0) // messages published by the producer
    }

    fn tail(&self) -> &AtomicU32 {
        self.word(1) // messages taken by the consumer
    }

    fn sleeping(&self, which: usize) -> &AtomicU32 {
        self.word(2 + which) // 1 while a waiter may sleep on head (0) or tail (1)
    }

    /// Producer: copies `msg` into the next slot once there is room, then publishes it.
    pub fn send(&mut self, msg: &[u8]) {
        let head = self.head().load(Ordering::Relaxed);
        if head.wrapping_sub(self.seen) >= SLOTS as u32 {
            self.seen = self.wait_until(1, |tail| head.wrapping_sub(tail) < SLOTS as u32);
        }
        let at = 4 * LINE + (head as usize % SLOTS) * self.size;
        self.mem.write(at, &msg[..self.size]);
        self.publish(0, head.wrapping_add(1));
    }

    /// Consumer: waits for the next message, copies it into `out`, then frees its slot.
    pub fn recv(&mut self, out: &mut [u8]) {
        let tail = self.tail().load(Ordering::Relaxed);
        if self.seen == tail {
            self.seen = self.wait_until(0, |head| head != tail);
        }
        let at = 4 * LINE + (tail as usize % SLOTS) * self.size;
        self.mem.read(at, &mut out[..self.size]);
        self.publish(1, tail.wrapping_add(1));
    }

    /// Stores a counter (Release: the slot's bytes are visible before it) and wakes a sleeper.
    fn publish(&self, which: usize, value: u32) {
        let word = self.word(which);
        word.store(value, Ordering::SeqCst);
        if self.wait == Wait::Futex && self.sleeping(which).load(Ordering::SeqCst) != 0 {
            futex_wake(word);
        }
    }

    /// Waits until `ready(counter)` for counter `which` (Acquire: the slot's bytes are visible).
    /// Both kinds spin for ~2 µs, then yield the CPU (so a peer on the same CPU runs at once) and
    /// spin again; the futex kind, after [`YIELDS_BEFORE_SLEEP`] rounds, sleeps in the kernel.
    /// Returns the counter's value that made it ready.
    fn wait_until(&self, which: usize, ready: impl Fn(u32) -> bool) -> u32 {
        let word = self.word(which);
        let spins = SPINS.load(Ordering::Relaxed);
        let mut rounds = 0;
        loop {
            for _ in 0..spins {
                let now = word.load(Ordering::Acquire);
                if ready(now) {
                    return now;
                }
                std::hint::spin_loop();
            }
            rounds += 1;
            if self.wait == Wait::Spin || rounds < YIELDS_BEFORE_SLEEP {
                std::thread::yield_now();
                continue;
            }
            // Announce the sleep, look again, then sleep only if the word is unchanged (futex
            // checks that atomically). With SeqCst on both sides, a publisher either sees the
            // flag and wakes us, or we see its new value.
            let seen = word.load(Ordering::SeqCst);
            self.sleeping(which).store(1, Ordering::SeqCst);
            if !ready(word.load(Ordering::SeqCst)) {
                futex_wait(word, seen);
            }
            self.sleeping(which).store(0, Ordering::SeqCst);
        }
    }
}

/// FUTEX_WAIT without FUTEX_PRIVATE_FLAG: the private flag keys the wait by address in one
/// process's memory and would never see a wake from the other process.
fn futex_wait(word: &AtomicU32, expected: u32) {
    // SAFETY: word points into a live shared mapping; a null timeout waits without a limit.
    unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAIT, expected, std::ptr::null::<libc::timespec>());
    }
}

fn futex_wake(word: &AtomicU32) {
    // SAFETY: word points into a live shared mapping.
    unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, 1);
    }
}
