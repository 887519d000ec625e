//! One row of the benchmark: a mechanism, a placement and a message size, measured between a
//! parent and a forked child. Latency: ping-pong round trips, each timed; throughput: one-way
//! streaming for a fixed time. Every message is checked by its receiver.

use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::process::fork_child;
use common::stop::on_stop;
use common::{Error, Result, SysResult};
use nix::sched::{CpuSet, sched_getaffinity, sched_setaffinity};
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::WaitStatus;
use nix::unistd::{Pid, getpid, pipe};

use crate::broken::{self, Breakage};
use crate::buf::PageBuf;
use crate::mechs::{Ends, Link, Mechanism, Setup, Side};
use crate::msg::{Expect, STOP_BIT, Stamp};
use crate::stats::Stats;
use crate::watch::{Watchdog, guard_child};

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
    /// The child says on stderr when it is in the middle of a row (for the tests that kill it).
    pub announce: bool,
    /// The child's receiving end spoils a message (tests: the check must catch it).
    pub breakage: Option<Breakage>,
}

pub struct Row {
    pub mechanism: &'static str,
    pub shm: bool,
    pub placement: Placement,
    pub size: usize,
    pub rtt: Stats,
    pub msgs_per_s: f64,
    pub mb_per_s: f64,
    /// One-way messages the row moved (both directions, all phases), for counting system calls
    /// per message.
    pub messages: u64,
    /// The p50 of each run of the row (`--runs`); `rtt` is the median run's.
    pub p50s: Vec<u64>,
    /// Limits measured just before the row (shared-memory rows on two CPUs; medians over runs).
    pub near: Option<Near>,
    /// System calls per message in the round trips, on the side that sends it and on the side
    /// that receives it (both directions averaged), as the traced wrappers count them.
    pub calls: Calls,
}

/// System calls one message costs (see [`Row::calls`]).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Calls {
    pub send: f64,
    pub recv: f64,
}

/// Traced calls made while sending and while receiving, by one process over the measured round
/// trips.
#[derive(Clone, Copy, Debug, Default)]
struct Tally {
    send: u64,
    recv: u64,
}

/// The limits next to one run of a shared-memory row on two CPUs: on a virtual machine they move
/// within seconds (as the host moves the vCPUs), so a ratio is only fair against its neighbours.
#[derive(Clone, Copy, Debug)]
pub struct Near {
    /// p50 of a cache-line round trip, ns.
    pub cacheline: Option<u64>,
    /// The bare transfer at the row's size, MB/s (from 4 KiB on).
    pub transfer: Option<f64>,
}

impl Near {
    /// The lower floor and the higher ceiling of two measurements.
    pub fn widest(self, other: Near) -> Near {
        let min = |a: Option<u64>, b: Option<u64>| a.into_iter().chain(b).min();
        let max = |a: Option<f64>, b: Option<f64>| a.into_iter().chain(b).reduce(f64::max);
        Near { cacheline: min(self.cacheline, other.cacheline), transfer: max(self.transfer, other.transfer) }
    }
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

/// The median of K runs of one row: the run with the median p50 (its other percentiles with it),
/// the median throughput, and every run's p50 for the spread.
pub fn median(mut runs: Vec<Row>) -> Option<Row> {
    let p50s: Vec<u64> = runs.iter().map(|r| r.rtt.p50).collect();
    let runs_near: Vec<Option<Near>> = runs.iter().map(|r| r.near).collect();
    let mid = runs.len() / 2;
    let mut rates: Vec<(f64, f64)> = runs.iter().map(|r| (r.msgs_per_s, r.mb_per_s)).collect();
    rates.sort_by(|a, b| a.0.total_cmp(&b.0));
    runs.sort_by_key(|r| r.rtt.p50);
    let (msgs_per_s, mb_per_s) = *rates.get(mid)?;
    let mut row = runs.into_iter().nth(mid)?;
    (row.msgs_per_s, row.mb_per_s, row.p50s) = (msgs_per_s, mb_per_s, p50s);
    let nears: Vec<Near> = runs_near.into_iter().flatten().collect();
    if !nears.is_empty() {
        let mut lines: Vec<u64> = nears.iter().filter_map(|n| n.cacheline).collect();
        let mut rates: Vec<f64> = nears.iter().filter_map(|n| n.transfer).collect();
        lines.sort_unstable();
        rates.sort_by(f64::total_cmp);
        row.near = Some(Near {
            cacheline: lines.get(lines.len() / 2).copied(),
            transfer: rates.get(rates.len() / 2).copied(),
        });
    }
    Some(row)
}

/// Names a row in messages: `sysv-mq cross 64 B`.
pub fn row_name(mech: &Mechanism, placement: Placement, size: usize) -> String {
    format!("{} {} {size} B", mech.id, placement.name())
}

/// Measures one row. `key` is the first of the two SysV keys / names the row may use.
pub fn measure(mech: &Mechanism, size: usize, placement: Placement, cfg: &Config, key: u32) -> Result<Row> {
    let allowed = cpus()?;
    let (parent_cpus, child_cpus) = cpus_for(placement, &allowed)
        .ok_or_else(|| Error::Usage("--pin cross needs two CPUs; this process may use one".into()))?;
    let row = row_name(mech, placement, size);
    let setup = (mech.setup)(size, key).map_err(|e| in_row(&row, e))?;
    let result = fork_and_measure(&row, &setup, size, cfg, &parent_cpus, &child_cpus);
    setup.cleanup();
    pin(&allowed)?;
    let (rtt, msgs_per_s, mb_per_s, messages, calls) = result.map_err(|e| in_row(&row, e))?;
    let p50s = vec![rtt.p50];
    Ok(Row {
        mechanism: mech.id,
        shm: mech.shm,
        placement,
        size,
        rtt,
        msgs_per_s,
        mb_per_s,
        messages,
        p50s,
        near: None,
        calls,
    })
}

fn in_row(row: &str, e: Error) -> Error {
    match e {
        Error::Failed(m) => Error::Failed(format!("{row}: {m}")),
        Error::Sys { call, object, errno, hint } => {
            Error::Sys { call, object: format!("{object}, row {row}"), errno, hint }
        }
        other => other,
    }
}

fn fork_and_measure(
    row: &str,
    shared: &Arc<dyn Setup>,
    size: usize,
    cfg: &Config,
    parent_cpus: &[usize],
    child_cpus: &[usize],
) -> Result<(Stats, f64, f64, u64, Calls)> {
    let setup = shared.as_ref();
    let parent = getpid();
    // The child's error goes up `report`; `alive` closes when the parent ends, however it ends.
    let (report_r, report_w) = pipe().sys("pipe", "report")?;
    // The child's count of its calls, written once at its end (a few bytes: the pipe holds them).
    let (counts_r, counts_w) = pipe().sys("pipe", "counts")?;
    let (alive_r, alive_w) = pipe().sys("pipe", "alive")?;
    // The stop thread exists here, parked in sigwait and holding no lock (see fork_child).
    let child = fork_child(|| {
        // The parent's ends: inherited, never used here (and alive's must close with the parent).
        let _ = nix::unistd::close(report_r.as_raw_fd());
        let _ = nix::unistd::close(alive_w.as_raw_fd());
        let _ = nix::unistd::close(counts_r.as_raw_fd());
        let report = |e: Error| {
            let _ = nix::unistd::write(&report_w, format!("child: {e}").as_bytes());
            1
        };
        let ready = alive_r.try_clone().sys("dup", "alive pipe").and_then(|alive| {
            guard_child(alive, row.to_string(), shared.clone())?;
            pin(child_cpus)?;
            setup.open(Side::Child, parent)
        });
        match ready {
            // Reported while the ends are still open: closing them first would make the parent
            // fail on an end of file, and stop the child, before it said why.
            Ok(mut ends) => child_side(&mut ends, size, cfg).map_or_else(report, |t| {
                let _ = nix::unistd::write(&counts_w, format!("{} {}", t.send, t.recv).as_bytes());
                0
            }),
            Err(e) => report(e),
        }
    })?;
    drop((report_w, alive_r, counts_w));
    let watchdog = Watchdog::start(child, row.to_string(), report_r, shared.clone())?;
    let stop = {
        let (setup, done) = (shared.clone(), watchdog.done.clone());
        on_stop(move || {
            done.store(true, Ordering::SeqCst);
            let _ = kill(child, Signal::SIGKILL);
            setup.cleanup();
        })
    };
    let result = pin(parent_cpus).and_then(|()| parent_side(setup, child, size, cfg, &watchdog.progress));
    if result.is_err() {
        watchdog.parent_failed(child);
    }
    let (status, child_said) = watchdog.join()?;
    drop((stop, alive_w));
    if !child_said.is_empty() {
        // The child's failure comes first: the parent's (an end of file, say) follows from it.
        return Err(Error::Failed(child_said));
    }
    let (rtt, rate, mb, messages, ours) = result?;
    let mut text = String::new();
    let _ = std::io::Read::read_to_string(&mut std::fs::File::from(counts_r), &mut text);
    let theirs: Vec<u64> = text.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    let n = 2.0 * cfg.rtts as f64; // messages in the measured round trips, both directions
    let calls = match theirs[..] {
        [send, recv] => Calls { send: (ours.send + send) as f64 / n, recv: (ours.recv + recv) as f64 / n },
        _ => Calls::default(),
    };
    match status {
        WaitStatus::Exited(_, 0) => Ok((rtt, rate, mb, messages, calls)),
        other => Err(Error::Failed(format!("the child failed ({other:?})"))),
    }
}

/// Round trips 0..warmup+rtts, then streaming numbers on from there, then the stop message; the
/// child's answer carries the number after the last it took. Numbers never repeat in a direction.
fn parent_side(
    setup: &dyn Setup,
    child: Pid,
    size: usize,
    cfg: &Config,
    progress: &AtomicU64,
) -> Result<(Stats, f64, f64, u64, Tally)> {
    let Ends { mut tx, mut rx } = setup.open(Side::Parent, child)?;
    let (mut out, mut buf) = (PageBuf::new(size), PageBuf::new(size));
    let mut samples = Vec::with_capacity(cfg.rtts);
    let mut tally = Tally::default();
    let pings = (cfg.warmup + cfg.rtts) as u64;
    for i in 0..pings {
        let (stamp, expect) = (Stamp::new(i), Expect::new(i, false));
        let c0 = common::trace::calls();
        let t0 = Instant::now();
        tx.send_seq(&stamp, &mut out)?;
        let c1 = common::trace::calls();
        rx.recv_seq(&mut buf, &expect)?;
        let ns = t0.elapsed().as_nanos() as u64;
        progress.store(i, Ordering::Relaxed);
        if i as usize >= cfg.warmup {
            samples.push(ns);
            tally.send += c1 - c0;
            tally.recv += common::trace::calls() - c1;
        }
    }
    let start = Instant::now();
    let mut seq = pings;
    while start.elapsed() < cfg.stream {
        for _ in 0..16 {
            tx.send_seq(&Stamp::new(seq), &mut out)?;
            seq += 1;
        }
        progress.store(seq, Ordering::Relaxed);
    }
    tx.send_seq(&Stamp::new(STOP_BIT | seq), &mut out)?;
    rx.recv_seq(&mut buf, &Expect::new(seq, false))?; // the child's answer, once it has checked every message
    let secs = start.elapsed().as_secs_f64();
    let sent = (seq - pings) as f64;
    let messages = 2 * pings + (seq - pings) + 2; // round trips, streamed ones, stop, answer
    Ok((Stats::from(samples), sent / secs, sent * size as f64 / secs / 1e6, messages, tally))
}

fn child_side(ends: &mut Ends, size: usize, cfg: &Config) -> Result<Tally> {
    let pings = (cfg.warmup + cfg.rtts) as u64;
    let Ends { tx, rx } = ends;
    if let Some(how) = cfg.breakage {
        // A loss in a round trip leaves both sides waiting (the watchdog's case); the others
        // strike while streaming, where messages are in flight.
        let at = if how == Breakage::Lose { broken::AT } else { pings + broken::AT };
        *rx = broken::wrap(std::mem::replace(rx, Box::new(Nothing)), how, at);
    }
    let mut buf = PageBuf::new(size);
    let mut tally = Tally::default();
    for i in 0..pings {
        let expect = Expect::new(i, false);
        let answer = expect.normal;
        let c0 = common::trace::calls();
        rx.recv_seq(&mut buf, &expect)?;
        let c1 = common::trace::calls();
        tx.echo(&answer, &mut buf)?;
        if i as usize >= cfg.warmup {
            tally.recv += c1 - c0;
            tally.send += common::trace::calls() - c1;
        }
        if i == 0 && cfg.announce {
            common::diag!("bench: child {} measuring", getpid());
        }
    }
    let mut seq = pings;
    while rx.recv_seq(&mut buf, &Expect::new(seq, true))? == seq {
        seq += 1;
    }
    tx.send_seq(&Stamp::new(seq), &mut buf)?;
    Ok(tally)
}

/// A link that carries nothing (a placeholder).
struct Nothing;

impl Link for Nothing {
    fn send(&mut self, _: &[u8]) -> Result<()> {
        Err(Error::Failed("no link".into()))
    }

    fn recv(&mut self, _: &mut [u8]) -> Result<()> {
        Err(Error::Failed("no link".into()))
    }
}
