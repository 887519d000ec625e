//! `--vs-c`: each blocking row side by side with a plain C ping-pong of the same system calls
//! (`bench/c/*.c`, compiled here with the system's `cc`), run interleaved on the same CPUs in the
//! same session, rounds alternating which goes first; medians of the rounds' p50s, and the
//! calls per message each side counts where it makes them (ours: the traced wrappers; C: a
//! counter around each call).

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Error, Result, SysResult};

use crate::mechs::{self, Mechanism, SIGNAL_SIZE};
use crate::run::{self, Calls, Config, Placement};
use crate::stats::fmt_ns;

/// The blocking rows and their C programs (`bench/c/NAME.c`).
pub const PROGRAMS: &[(&str, &str)] = &[
    ("pipe", "pipe"),
    ("fifo", "fifo"),
    ("unix-socket", "unix_socket"),
    ("sysv-mq", "sysv_mq"),
    ("posix-mq", "posix_mq"),
    ("sysv-shm-sem", "sysv_shm_sem"),
    ("signal", "signal"),
    ("posix-shm-futex", "posix_shm_futex"),
    ("file", "file"),
];

/// Where the C sources are: beside the bench's own sources.
fn sources() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("c")
}

/// One row of the comparison, over the rounds.
pub struct Pair {
    pub mechanism: &'static str,
    pub placement: Placement,
    pub size: usize,
    pub ours: Vec<u64>,
    pub c: Vec<u64>,
    pub ours_calls: Calls,
    pub c_calls: Calls,
}

fn median(v: &[u64]) -> u64 {
    let mut v = v.to_vec();
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

impl Pair {
    pub fn ratio(&self) -> f64 {
        median(&self.ours) as f64 / median(&self.c).max(1) as f64
    }
}

/// Compiles the C program of each row in `ids` into `out`; returns the programs by row id.
fn compile(ids: &[&'static str], out: &Path) -> Result<Vec<(&'static str, PathBuf)>> {
    let src = sources();
    let mut built = Vec::new();
    for &(id, name) in PROGRAMS.iter().filter(|(id, _)| ids.contains(id)) {
        let file = src.join(format!("{name}.c"));
        let exe = out.join(name);
        let status = Command::new("cc")
            .args(["-std=c11", "-D_GNU_SOURCE", "-O2", "-Wall", "-Wextra", "-Werror", "-o"])
            .arg(&exe)
            .arg(&file)
            .arg("-lrt")
            .status()
            .sys("exec", "cc")
            .map_err(|e| e.hint("--vs-c needs a C compiler (cc) and the bench's sources (bench/c)"))?;
        if !status.success() {
            return Err(Error::Failed(format!("cc {} failed ({status})", file.display())));
        }
        built.push((id, exe));
    }
    Ok(built)
}

/// Runs the C program once: its p50 and calls per message.
fn run_c(exe: &Path, size: usize, cfg: &Config, cpus: (i64, i64), key: u32) -> Result<(u64, Calls)> {
    let dir = mechs::scratch_path(key)?;
    std::fs::create_dir(&dir).sys("mkdir", dir.display())?;
    let out = Command::new(exe)
        .args([size.to_string(), cfg.rtts.to_string(), cfg.warmup.to_string(), cpus.0.to_string(), cpus.1.to_string()])
        .arg(&dir)
        .output()
        .sys("exec", exe.display());
    let _ = std::fs::remove_dir_all(&dir);
    let out = out?;
    let text = String::from_utf8_lossy(&out.stdout);
    let words: Vec<&str> = text.split_whitespace().collect();
    match (out.status.success(), &words[..]) {
        (true, &[p50, send, recv]) => {
            let p50 = p50.parse().map_err(|_| Error::Failed(format!("{}: said {text}", exe.display())))?;
            Ok((p50, Calls { send: send.parse().unwrap_or(0.0), recv: recv.parse().unwrap_or(0.0) }))
        }
        _ => Err(Error::Failed(format!(
            "{} failed ({}): {}",
            exe.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))),
    }
}

/// The comparison: `rounds` rounds, each running every (row, placement) ours and C, one after
/// the other (C first in odd rounds).
pub fn compare(
    mechs: &[&'static Mechanism],
    placements: &[Placement],
    cfg: &Config,
    rounds: u32,
    allowed: &[usize],
) -> Result<Vec<Pair>> {
    let ids: Vec<&'static str> =
        mechs.iter().map(|m| m.id).filter(|id| PROGRAMS.iter().any(|(p, _)| p == id)).collect();
    if ids.is_empty() {
        return Err(Error::Usage(format!(
            "--vs-c compares the blocking rows: {}",
            PROGRAMS.iter().map(|p| p.0).collect::<Vec<_>>().join(", ")
        )));
    }
    let out = std::env::temp_dir().join(format!("bench-c-{}", std::process::id()));
    std::fs::create_dir_all(&out).sys("mkdir", out.display())?;
    let result = compile(&ids, &out).and_then(|built| rounds_of(&built, mechs, placements, cfg, rounds, allowed));
    let _ = std::fs::remove_dir_all(&out);
    result
}

fn rounds_of(
    built: &[(&'static str, PathBuf)],
    mechs: &[&'static Mechanism],
    placements: &[Placement],
    cfg: &Config,
    rounds: u32,
    allowed: &[usize],
) -> Result<Vec<Pair>> {
    let mut pairs = Vec::new();
    for (id, exe) in built {
        let Some(m) = mechs.iter().find(|m| m.id == *id) else { continue };
        for &p in placements {
            let size = if *id == "signal" { SIGNAL_SIZE } else { 64 };
            pairs.push((
                *m,
                exe.clone(),
                p,
                Pair {
                    mechanism: m.id,
                    placement: p,
                    size,
                    ours: Vec::new(),
                    c: Vec::new(),
                    ours_calls: Calls::default(),
                    c_calls: Calls::default(),
                },
            ));
        }
    }
    let total = rounds as usize * pairs.len();
    for round in 0..rounds {
        for (i, (m, exe, p, pair)) in pairs.iter_mut().enumerate() {
            common::diag!(
                "bench: vs C, round {}/{rounds} [{}/{}] {} {}",
                round + 1,
                round as usize * total / rounds as usize + i + 1,
                total,
                m.id,
                p.name()
            );
            let (parent, child) = run::cpus_for(*p, allowed)
                .ok_or_else(|| Error::Usage("--pin cross needs two CPUs; this process may use one".into()))?;
            let cpus = match p {
                Placement::None => (-1, -1),
                _ => (parent[0] as i64, child[0] as i64),
            };
            let key = mechs::row_key(std::process::id(), i);
            let ours = || run::measure(m, pair.size, *p, cfg, key);
            let c = || run_c(exe, pair.size, cfg, cpus, key);
            let (row, (c_p50, c_calls)) = if round % 2 == 0 {
                let row = ours()?;
                (row, c()?)
            } else {
                let c = c()?;
                (ours()?, c)
            };
            pair.ours.push(row.rtt.p50);
            pair.c.push(c_p50);
            (pair.ours_calls, pair.c_calls) = (row.calls, c_calls);
        }
    }
    Ok(pairs.into_iter().map(|(_, _, _, pair)| pair).collect())
}

/// The side-by-side table.
pub fn table(pairs: &[Pair], rounds: u32) -> String {
    let mut out = format!(
        "ours against a plain C ping-pong of the same calls (bench/c), interleaved: p50 round trip, median of {rounds} rounds\n"
    );
    out += &format!(
        "{:<16} {:<5} {:>6} {:>10} {:>10} {:>6} {:>10} {:>10}\n",
        "mechanism", "cpus", "size", "ours", "C", "ratio", "calls ours", "calls C"
    );
    for p in pairs {
        out += &format!(
            "{:<16} {:<5} {:>6} {:>10} {:>10} {:>5.2}x {:>10} {:>10}\n",
            p.mechanism,
            p.placement.name(),
            format!("{} B", p.size),
            fmt_ns(median(&p.ours) as f64),
            fmt_ns(median(&p.c) as f64),
            p.ratio(),
            crate::report::calls(&p.ours_calls),
            crate::report::calls(&p.c_calls),
        );
    }
    out
}
