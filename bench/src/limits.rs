//! The hardware's limits, measured in the same run: the floor of any shared-memory round trip (a
//! cache line bouncing between two CPUs) and the ceiling of shared-memory throughput (memcpy).

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nix::sched::{CpuSet, sched_setaffinity};
use nix::unistd::Pid;

use crate::stats::Stats;

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
                    std::hint::spin_loop();
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
                            std::hint::spin_loop();
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

/// memcpy bandwidth at `size` bytes per copy, in MB/s.
pub fn memcpy(size: usize, time: Duration) -> f64 {
    let src = vec![0x5au8; size];
    let mut dst = vec![0u8; size];
    let start = Instant::now();
    let mut copies = 0u64;
    while start.elapsed() < time {
        for _ in 0..64 {
            dst.copy_from_slice(black_box(&src));
            black_box(&mut dst);
        }
        copies += 64;
    }
    copies as f64 * size as f64 / start.elapsed().as_secs_f64() / 1e6
}
