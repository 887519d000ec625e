//! One row of the benchmark: a mechanism, a placement and a message size, measured between a
//! parent and a forked child. Latency: ping-pong round trips, each timed; throughput: one-way
//! streaming for a fixed time. Every message is checked by its receiver.

use std::time::{Duration, Instant};

use common::process::{fork_child, wait_child};
use common::stop::on_stop;
use common::{Error, Result, SysResult};
use nix::sched::{CpuSet, sched_getaffinity, sched_setaffinity};
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::WaitStatus;
use nix::unistd::{Pid, getpid};

use crate::mechs::{Ends, Mechanism, Setup, Side};
use crate::msg::{Message, STOP, check, seq_of};
use crate::stats::Stats;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// Both processes on one CPU: every hand-over is a context switch.
    Same,
    /// On two different CPUs: hand-overs cross the cache hierarchy (and wake a sleeping CPU).
    Cross,
    /// Wherever the scheduler puts them.
    None,
}

impl Placement {
    pub fn name(self) -> &'static str {
        match self {
            Placement::Same => "same",
            Placement::Cross => "cross",
            Placement::None => "none",
        }
    }
}

pub struct Config {
    pub warmup: usize,
    pub rtts: usize,
    pub stream: Duration,
}

pub struct Row {
    pub mechanism: &'static str,
    pub shm: bool,
    pub placement: Placement,
    pub size: usize,
    pub rtt: Stats,
    pub msgs_per_s: f64,
    pub mb_per_s: f64,
}

/// The CPUs this process may run on.
pub fn cpus() -> Result<Vec<usize>> {
    let set = sched_getaffinity(Pid::from_raw(0)).sys("sched_getaffinity", "self")?;
    Ok((0..CpuSet::count()).filter(|&c| set.is_set(c).unwrap_or(false)).collect())
}

fn pin(cpus: &[usize]) -> Result<()> {
    let mut set = CpuSet::new();
    for &c in cpus {
        set.set(c).sys("CPU_SET", c)?;
    }
    sched_setaffinity(Pid::from_raw(0), &set).sys("sched_setaffinity", format!("CPUs {cpus:?}"))
}

/// The parent's and the child's CPUs for `placement` (all allowed ones for `None`).
pub fn cpus_for(placement: Placement, allowed: &[usize]) -> Option<(Vec<usize>, Vec<usize>)> {
    match placement {
        Placement::Same => Some((vec![allowed[0]], vec![allowed[0]])),
        Placement::Cross if allowed.len() >= 2 => Some((vec![allowed[0]], vec![allowed[1]])),
        Placement::Cross => None,
        Placement::None => Some((allowed.to_vec(), allowed.to_vec())),
    }
}

/// Measures one row. `key` is the first of the two SysV keys / names the row may use.
pub fn measure(mech: &Mechanism, size: usize, placement: Placement, cfg: &Config, key: u32) -> Result<Row> {
    let allowed = cpus()?;
    let (parent_cpus, child_cpus) = cpus_for(placement, &allowed)
        .ok_or_else(|| Error::Usage("--pin cross needs two CPUs; this process may use one".into()))?;
    let setup = (mech.setup)(size, key)?;
    let result = fork_and_measure(mech, &setup, size, cfg, &parent_cpus, &child_cpus);
    setup.cleanup();
    pin(&allowed)?;
    let (rtt, msgs_per_s, mb_per_s) = result?;
    Ok(Row { mechanism: mech.id, shm: mech.shm, placement, size, rtt, msgs_per_s, mb_per_s })
}

fn fork_and_measure(
    mech: &Mechanism,
    shared: &std::sync::Arc<dyn Setup>,
    size: usize,
    cfg: &Config,
    parent_cpus: &[usize],
    child_cpus: &[usize],
) -> Result<(Stats, f64, f64)> {
    let setup = shared.as_ref();
    let parent = getpid();
    // The stop thread exists here, parked in sigwait and holding no lock (see fork_child).
    let child = fork_child(|| {
        // If the parent dies (even by SIGKILL), so does a child that may be spinning.
        let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
        match pin(child_cpus).and_then(|()| child_side(setup, parent, size, cfg)) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("bench: {}: child: {e}", mech.id);
                1
            }
        }
    })?;
    let stop = {
        let setup = shared.clone();
        on_stop(move || {
            let _ = kill(child, Signal::SIGKILL);
            setup.cleanup();
        })
    };
    let result = pin(parent_cpus).and_then(|()| parent_side(setup, child, size, cfg));
    if result.is_err() {
        let _ = kill(child, Signal::SIGKILL); // it may wait for a message that never comes
    }
    let status = wait_child(child, None)?;
    drop(stop);
    let measured = result?;
    match status {
        WaitStatus::Exited(_, 0) => Ok(measured),
        other => Err(Error::Failed(format!("{}: the child failed ({other:?})", mech.id))),
    }
}

fn parent_side(setup: &dyn Setup, child: Pid, size: usize, cfg: &Config) -> Result<(Stats, f64, f64)> {
    let Ends { mut tx, mut rx } = setup.open(Side::Parent, child)?;
    let mut msg = Message::new(size);
    let mut buf = vec![0u8; size];
    let mut samples = Vec::with_capacity(cfg.rtts);
    for i in 0..(cfg.warmup + cfg.rtts) as u64 {
        let m = msg.stamp(i);
        let t0 = Instant::now();
        tx.send(m)?;
        rx.recv(&mut buf)?;
        let ns = t0.elapsed().as_nanos() as u64;
        check(&buf, size, i)?;
        if i as usize >= cfg.warmup {
            samples.push(ns);
        }
    }
    let start = Instant::now();
    let mut sent = 0u64;
    while start.elapsed() < cfg.stream {
        for _ in 0..16 {
            tx.send(msg.stamp(sent))?;
            sent += 1;
        }
    }
    tx.send(msg.stamp(STOP))?;
    rx.recv(&mut buf)?; // the child's count, once it has checked every message
    let secs = start.elapsed().as_secs_f64();
    check(&buf, size, sent)?;
    Ok((Stats::from(samples), sent as f64 / secs, (sent as f64 * size as f64) / secs / 1e6))
}

fn child_side(setup: &dyn Setup, parent: Pid, size: usize, cfg: &Config) -> Result<()> {
    let Ends { mut tx, mut rx } = setup.open(Side::Child, parent)?;
    let mut buf = vec![0u8; size];
    for i in 0..(cfg.warmup + cfg.rtts) as u64 {
        rx.recv(&mut buf)?;
        check(&buf, size, i)?;
        tx.send(&buf)?;
    }
    let mut n = 0u64;
    loop {
        rx.recv(&mut buf)?;
        if seq_of(&buf) == Some(STOP) {
            check(&buf, size, STOP)?;
            break;
        }
        check(&buf, size, n)?;
        n += 1;
    }
    tx.send(Message::new(size).stamp(n))
}
