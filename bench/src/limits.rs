//! The hardware's limits, measured in the same run: the floor of any shared-memory round trip (a
//! cache line bouncing between two CPUs), the ceiling of any row that copies (memcpy, placed so
//! that 4 KiB aliasing cannot slow it) and of shared-memory streaming between two CPUs (the bare
//! transfer of a slot's cache lines).

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nix::sched::{CpuSet, sched_setaffinity};
use nix::unistd::Pid;

use crate::buf::{PAGE, PageBuf};
use crate::stats::Stats;

/// One step of a spinning wait: a pause, and now and then (~every 2 µs, see ring.rs) the CPU
/// given up, so that a busy machine (another process on the same CPU) slows the limits down
/// instead of stalling them for whole time slices.
fn relax() {
    thread_local!(static SPUN: std::cell::Cell<u32> = const { std::cell::Cell::new(0) });
    SPUN.with(|n| {
        n.set(n.get() + 1);
        if n.get() >= crate::ring::spins() {
            n.set(0);
            std::thread::yield_now();
        }
    });
    std::hint::spin_loop();
}

/// Round trips of an atomic counter between two threads on two CPUs, each timed like a
/// mechanism's. None with fewer than two CPUs.
pub fn cacheline(cpus: &[usize], rtts: usize) -> Option<Stats> {
    if cpus.len() < 2 {
        return None;
    }
    let counter = AtomicU64::new(0);
    let pin = |cpu: usize| {
        let mut set = CpuSet::new();
        let _ = set.set(cpu);
        let _ = sched_setaffinity(Pid::from_raw(0), &set); // this thread only
    };
    let n = rtts as u64;
    std::thread::scope(|s| {
        s.spawn(|| {
            pin(cpus[1]);
            for i in 0..n {
                while counter.load(Ordering::Acquire) != 2 * i + 1 {
                    relax();
                }
                counter.store(2 * i + 2, Ordering::Release);
            }
        });
        let ns = s
            .spawn(|| {
                pin(cpus[0]);
                (0..n)
                    .map(|i| {
                        let t0 = Instant::now();
                        counter.store(2 * i + 1, Ordering::Release);
                        while counter.load(Ordering::Acquire) != 2 * i + 2 {
                            relax();
                        }
                        t0.elapsed().as_nanos() as u64
                    })
                    .collect::<Vec<_>>()
            })
            .join()
            .ok()?;
        Some(Stats::from(ns))
    })
}

/// The cache line's best of `trials` short measurements (the one with the lowest p50): a floor
/// that a moment of noise (the host busy on a vCPU) cannot lift above the rows it bounds.
pub fn cacheline_best(cpus: &[usize], rtts: usize, trials: usize) -> Option<Stats> {
    (0..trials).filter_map(|_| cacheline(cpus, rtts)).min_by_key(|s| s.p50)
}

/// memcpy at one size, in MB/s.
#[derive(Clone, Copy, Debug, Default)]
pub struct Copy {
    /// Best of a few placements that avoid 4 KiB aliasing, buffers in the cache: the ceiling of
    /// any row that copies.
    pub in_cache: f64,
    /// Copies that each start in memory no cache holds (a 128 MiB arena, walked through).
    pub out_of_cache: f64,
    /// The placement to avoid: the destination 16 bytes above the source modulo 4 KiB.
    pub aliased: f64,
}

/// Where the destination lies above the source, modulo 4096: the placements measured. glibc's
/// memcpy (rep movsb on this kind of CPU) slows down many times when the destination is a
/// little above the source modulo 4 KiB: its loads look as if they depended on its stores.
const GOOD: [usize; 3] = [0, 2048, PAGE - 64];
const ALIASED: usize = 16;

/// memcpy of `size` bytes: in cache (best placement), out of cache, and at the aliased placement.
pub fn memcpy(size: usize, time: Duration) -> Copy {
    let each = time / 4;
    let src_room = size.next_multiple_of(PAGE) + PAGE;
    let mut arena = PageBuf::new(2 * src_room + PAGE);
    arena.fill(0x5a);
    let mut at = |delta: usize| copy_rate(&mut arena, 0, src_room + delta, size, 1, each);
    let in_cache = GOOD.iter().map(|&d| at(d)).fold(0.0, f64::max);
    let aliased = at(ALIASED);
    let big = 64 << 20; // each half twice a 32 MiB L3
    let mut cold = PageBuf::new(2 * big);
    cold.fill(0x5a); // touch every page before timing
    let out_of_cache = copy_rate(&mut cold, 0, big, size, big / size.next_multiple_of(PAGE), each);
    Copy { in_cache, out_of_cache, aliased }
}

/// Copies `size` bytes from `src` to `dst` in `buf`, the k-th copy shifted by k pages modulo
/// `spread` strides (1: always the same bytes), for `time`; MB/s.
fn copy_rate(buf: &mut [u8], src: usize, dst: usize, size: usize, spread: usize, time: Duration) -> f64 {
    let stride = size.next_multiple_of(PAGE);
    let start = Instant::now();
    let (mut copies, mut k) = (0u64, 0usize);
    while start.elapsed() < time {
        for _ in 0..16 {
            let shift = (k % spread) * stride;
            let (from, to) = buf.split_at_mut(dst + shift);
            to[..size].copy_from_slice(black_box(&from[src + shift..src + shift + size]));
            black_box(&mut to[..size]);
            k += 1;
        }
        copies += 16;
    }
    copies as f64 * size as f64 / start.elapsed().as_secs_f64() / 1e6
}

/// [`transfer`] as a ceiling: the best of three trials sharing `time`. One trial in which the
/// host preempted either thread reads far below what the two CPUs can do, and a row measured in a
/// quieter moment would then show more than 100% of its ceiling.
pub fn transfer_best(cpus: &[usize], size: usize, time: Duration) -> Option<f64> {
    (0..3).filter_map(|_| transfer(cpus, size, time / 3)).reduce(f64::max)
}

/// The bare cross-CPU transfer: one thread writes each cache line of a slot once (all of it, word
/// by word), the other, on another CPU, reads each line once (all of it); one counter per slot,
/// four slots, nothing else. MB/s; None with fewer than two CPUs. (Writing one word per line
/// would move lines faster than any message can: a full line keeps more stores waiting for
/// their line, so fewer lines are in flight.)
pub fn transfer(cpus: &[usize], size: usize, time: Duration) -> Option<f64> {
    const SLOTS: usize = 4;
    if cpus.len() < 2 {
        return None;
    }
    let words = size.div_ceil(8);
    let data: Vec<AtomicU64> = (0..SLOTS * words).map(|_| AtomicU64::new(0)).collect();
    let state: Vec<AtomicU64> = (0..SLOTS * 16).map(|_| AtomicU64::new(0)).collect(); // 128 B apart
    let stop = AtomicBool::new(false);
    let pin = |cpu: usize| {
        let mut set = CpuSet::new();
        let _ = set.set(cpu);
        let _ = sched_setaffinity(Pid::from_raw(0), &set); // this thread only
    };
    let wait = |word: &AtomicU64, want: u64| {
        while word.load(Ordering::Acquire) != want {
            if stop.load(Ordering::Relaxed) {
                return false;
            }
            relax();
        }
        true
    };
    std::thread::scope(|s| {
        s.spawn(|| {
            pin(cpus[1]);
            let mut sum = 0u64;
            for n in 0u64.. {
                let k = n as usize % SLOTS;
                if !wait(&state[16 * k], 2 * (n / SLOTS as u64) + 1) {
                    break;
                }
                for w in &data[k * words..(k + 1) * words] {
                    sum = sum.wrapping_add(w.load(Ordering::Relaxed));
                }
                state[16 * k].store(2 * (n / SLOTS as u64) + 2, Ordering::Release);
            }
            black_box(sum);
        });
        let moved = s
            .spawn(|| {
                pin(cpus[0]);
                let start = Instant::now();
                let mut n = 0u64;
                while start.elapsed() < time {
                    let k = n as usize % SLOTS;
                    if !wait(&state[16 * k], 2 * (n / SLOTS as u64)) {
                        break;
                    }
                    for w in &data[k * words..(k + 1) * words] {
                        w.store(n, Ordering::Relaxed);
                    }
                    state[16 * k].store(2 * (n / SLOTS as u64) + 1, Ordering::Release);
                    n += 1;
                }
                let secs = start.elapsed().as_secs_f64();
                stop.store(true, Ordering::Relaxed);
                n as f64 * size as f64 / secs / 1e6
            })
            .join()
            .ok();
        stop.store(true, Ordering::Relaxed);
        moved
    })
}
