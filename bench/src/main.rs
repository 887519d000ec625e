//! `cargo run --release -p bench`: every mechanism side by side, against the hardware's limits.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use bench::broken::Breakage;
use bench::mechs::{self, ALL, SIGNAL_SIZE};
use bench::report::{self, Limits, Machine};
use bench::run::{self, Config, Placement};
use clap::{Parser, ValueEnum};
use common::{Error, Result, SysResult};

/// Measures every IPC mechanism of the note between two processes: round-trip latency
/// (ping-pong, min/p50/p99/p99.9) and one-way throughput, next to the hardware's limits (a
/// cache line bouncing between two CPUs, memcpy bandwidth). Every message is checked.
#[derive(Parser)]
#[command(name = "bench", version, after_help = common::cli::EXIT_STATUSES)]
struct Cli {
    /// A short run (fewer round trips, sizes 64 B and 4 KiB, one placement): under 15 s
    #[arg(long)]
    quick: bool,
    /// Only these mechanisms (the list is the bench's table, filled in at start)
    #[arg(long, value_name = "ID,...", value_delimiter = ',')]
    only: Vec<String>,
    /// Print the mechanisms, one per line with what each is, and exit
    #[arg(long, exclusive = true)]
    list: bool,
    /// Where the two processes run: both on one CPU, on two CPUs, or unpinned [default: same,cross]
    #[arg(long, value_name = "WHERE", value_delimiter = ',')]
    pin: Vec<Pin>,
    /// Also write the results as JSON
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
    /// Also write a bar chart as SVG
    #[arg(long, value_name = "PATH")]
    svg: Option<PathBuf>,
    /// Measure each row K times; report the median run's p50 and the spread of the K p50s
    /// (with --vs-c: K rounds, 5 unless given)
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u32).range(1..=99))]
    runs: Option<u32>,
    /// Each blocking row against a plain C ping-pong of the same calls (bench/c, compiled with
    /// cc), interleaved, 64 B round trips: ours, C, the ratio and the calls per message of each
    #[arg(long)]
    vs_c: bool,
    /// Round trips per row (tests: a row that lasts until it is killed)
    #[arg(long, hide = true)]
    rtts: Option<usize>,
    /// Skip the limits (tests that only need the rows)
    #[arg(long, hide = true)]
    no_limits: bool,
    /// The child says when it is in the middle of a row (tests that kill it)
    #[arg(long, hide = true)]
    announce: bool,
    /// The limits measured beside the rows scaled as by a noisy moment: the cache line times F,
    /// the transfer and memcpy over F (tests: a row that beats a limit says so)
    #[arg(long, hide = true, value_name = "F", default_value_t = 1.0)]
    limits_skew: f64,
    /// The child's receiving end spoils a message (tests: the check catches it)
    #[arg(long = "break", hide = true, value_name = "HOW")]
    breakage: Option<Breakage>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Pin {
    Same,
    Cross,
    None,
}

fn main() -> ExitCode {
    // The help lists the rows of the table itself, so a new row cannot be missing from it.
    let ids: Vec<&str> = ALL.iter().map(|m| m.id).collect();
    let cli: Cli = common::cli::parse_adjusted(|c| {
        c.mut_arg("only", |a| a.help(format!("Only these mechanisms: {} (--list says what each is)", ids.join(", "))))
    });
    common::error::main("bench", || {
        if cli.list {
            return list();
        }
        // The signal row's signal is blocked in every thread (so set before the stop thread
        // starts), else the kernel could deliver it to a thread that does not wait for it.
        let set = signal_ipc::sys::sigset(&[mechs::bench_signal()]).sys("sigaddset", "SIGRTMIN")?;
        signal_ipc::sys::block(&set).sys("sigprocmask", "SIGRTMIN")?;
        common::stop::install()?;
        // Every traced call counted (one atomic add each): the calls/msg column.
        common::trace::count_calls();
        bench(&cli)
    })
}

/// `--list`: the rows of the table, one per line: the id, then what it is.
fn list() -> Result<()> {
    let width = ALL.iter().map(|m| m.id.len()).max().unwrap_or(0);
    let mut out = common::out::stdout();
    for m in ALL {
        out.raw(format!("{:width$}  {}\n", m.id, m.about).as_bytes())?;
    }
    out.flush()
}

fn bench(cli: &Cli) -> Result<()> {
    if let Some(bad) = cli.only.iter().find(|id| !ALL.iter().any(|m| m.id == id.as_str())) {
        let ids: Vec<&str> = ALL.iter().map(|m| m.id).collect();
        return Err(Error::Usage(format!("unknown mechanism '{bad}'; valid: {}", ids.join(", "))));
    }
    let allowed = run::cpus()?;
    let placements: Vec<Placement> = if cli.pin.is_empty() {
        match (cli.quick, allowed.len() >= 2) {
            (true, true) => vec![Placement::Cross],
            (true, false) | (false, false) => vec![Placement::Same],
            (false, true) => vec![Placement::Same, Placement::Cross],
        }
    } else {
        cli.pin
            .iter()
            .map(|p| match p {
                Pin::Same => Placement::Same,
                Pin::Cross => Placement::Cross,
                Pin::None => Placement::None,
            })
            .collect()
    };
    let (sizes, mut cfg): (&[usize], Config) = if cli.quick {
        (
            &[64, 4096],
            Config {
                warmup: 100,
                rtts: 1000,
                stream: Duration::from_millis(50),
                announce: cli.announce,
                breakage: cli.breakage,
            },
        )
    } else {
        let cfg = Config {
            warmup: 1000,
            rtts: 10_000,
            stream: Duration::from_millis(150),
            announce: cli.announce,
            breakage: cli.breakage,
        };
        (&[64, 4096, 65536], cfg)
    };
    if let Some(n) = cli.rtts {
        cfg.rtts = n.max(1);
    }
    let mechs: Vec<_> = ALL.iter().filter(|m| cli.only.is_empty() || cli.only.iter().any(|o| o == m.id)).collect();
    // Before any row (the children inherit it), --vs-c too: else its rings would spin the
    // uncalibrated 1000 pauses per round, not ~2 µs as the C side (and every other run) does.
    let spins = bench::ring::calibrate_spin();
    if cli.vs_c {
        let rounds = cli.runs.unwrap_or(5);
        let cfg =
            Config { rtts: if cli.quick { 500 } else { 2000 }, warmup: 200, stream: Duration::from_millis(20), ..cfg };
        let pairs = bench::vs_c::compare(&mechs, &placements, &cfg, rounds, &allowed)?;
        common::out::say(bench::vs_c::table(&pairs, rounds).trim_end());
        return Ok(());
    }
    let k = cli.runs.unwrap_or(1);
    let mut plan = Vec::new();
    for m in &mechs {
        let its_sizes: Vec<usize> = if m.id == "signal" {
            vec![SIGNAL_SIZE]
        } else {
            sizes.iter().copied().filter(|&s| s <= (m.max_size)()).collect()
        };
        for &p in &placements {
            for &s in &its_sizes {
                plan.push((*m, p, s));
            }
        }
    }

    let limits = if cli.no_limits {
        Limits { cacheline: None, memcpy: Default::default(), transfer: Default::default() }
    } else {
        common::diag!(
            "bench: measuring the limits (cache line, memcpy, transfer); spinning waits last {spins} pauses (~2 µs)"
        );
        let runs: Vec<Limits> = (0..k).map(|_| limits(&allowed, sizes, &cfg)).collect();
        let mut l = median_limits(runs);
        for m in l.memcpy.values_mut() {
            m.in_cache /= cli.limits_skew;
        }
        l
    };
    let mut rows = Vec::new();
    for (i, (m, p, s)) in plan.iter().enumerate() {
        common::diag!("bench: [{}/{}] {} {} {} B", i + 1, plan.len(), m.id, p.name(), s);
        let mut runs = Vec::new();
        for _ in 0..k {
            // The limits just before and just after the run, on the same CPUs: the lower floor
            // and the higher ceiling of the two bound it.
            let beside = m.shm && *p == Placement::Cross && !cli.no_limits;
            let before = beside.then(|| near(&allowed, *s, &cfg, cli.limits_skew));
            // The file row's round trip is ~100 times the others': a fifth of the round trips
            // (2,000 by default, still enough for a p99.9) keeps it from taking most of the run.
            let rtts = if m.id == "file" && cli.rtts.is_none() { (cfg.rtts / 5).max(200) } else { cfg.rtts };
            let row_cfg = Config { rtts, ..cfg };
            let mut row = run::measure(m, *s, *p, &row_cfg, mechs::row_key(std::process::id(), i))?;
            let after = beside.then(|| near(&allowed, *s, &cfg, cli.limits_skew));
            row.near = before.zip(after).map(|(b, a)| b.widest(a));
            runs.push(row);
        }
        rows.extend(run::median(runs));
    }
    // The limits printed are the lowest floor and the highest ceilings measured in the run, so
    // that no row's own limits lie beyond them.
    let mut limits = limits;
    for near in rows.iter().filter_map(|r: &run::Row| r.near.map(|n| (r.size, n))) {
        let (size, n) = near;
        if let (Some(c), Some(line)) = (n.cacheline, limits.cacheline.as_mut()) {
            line.p50 = line.p50.min(c);
            line.min = line.min.min(c);
        }
        if let Some(t) = n.transfer {
            let e = limits.transfer.entry(size).or_insert(t);
            *e = e.max(t);
        }
    }
    let machine = Machine::read();
    // Like any filter, `bench | head` ends quietly (by SIGPIPE) instead of panicking.
    common::out::say(report::table(&rows, &limits, &machine).trim_end());
    if let Some(path) = &cli.json {
        let text = serde_json::to_string_pretty(&report::json(&rows, &limits, &machine))
            .map_err(|e| Error::Failed(format!("JSON: {e}")))?;
        std::fs::write(path, text + "\n").sys("write", path.display())?;
    }
    if let Some(path) = &cli.svg {
        std::fs::write(path, report::svg(&rows, &limits, &machine)).sys("write", path.display())?;
    }
    Ok(())
}

/// The cache line and the bare transfer, measured beside a run of a shared-memory row on two
/// CPUs: the best of three short trials each (1,000 round trips; a third of half the streaming
/// time). `skew` (tests only) makes them look as a noisy moment would.
fn near(allowed: &[usize], size: usize, cfg: &Config, skew: f64) -> run::Near {
    run::Near {
        cacheline: bench::limits::cacheline_best(allowed, 1000, 3).map(|c| (c.p50 as f64 * skew) as u64),
        transfer: (size >= 4096)
            .then(|| bench::limits::transfer_best(allowed, size, cfg.stream / 2))
            .flatten()
            .map(|t| t / skew),
    }
}

/// The limits, measured once (the cache line: the best of five trials).
fn limits(allowed: &[usize], sizes: &[usize], cfg: &Config) -> Limits {
    Limits {
        cacheline: run::cpus_for(Placement::Cross, allowed)
            .and_then(|_| bench::limits::cacheline_best(allowed, (cfg.rtts / 5).max(500), 5)),
        memcpy: sizes.iter().map(|&s| (s, bench::limits::memcpy(s, cfg.stream))).collect(),
        transfer: sizes
            .iter()
            .filter(|&&s| s >= 4096) // smaller slots measure the counters, not a transfer
            .filter_map(|&s| bench::limits::transfer_best(allowed, s, cfg.stream).map(|t| (s, t)))
            .collect(),
    }
}

/// Each limit's median over the runs (`--runs`): the machine moves them as it moves the rows.
fn median_limits(runs: Vec<Limits>) -> Limits {
    fn mid(mut v: Vec<f64>) -> f64 {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(0.0)
    }
    let mut cachelines: Vec<_> = runs.iter().filter_map(|l| l.cacheline).collect();
    cachelines.sort_by_key(|c| c.p50);
    let cacheline = cachelines.get(cachelines.len() / 2).copied();
    let Some(any) = runs.first() else {
        return Limits { cacheline, memcpy: Default::default(), transfer: Default::default() };
    };
    let memcpy = any
        .memcpy
        .keys()
        .map(|&s| {
            let field =
                |f: fn(&bench::limits::Copy) -> f64| mid(runs.iter().filter_map(|l| l.memcpy.get(&s)).map(f).collect());
            let copy = bench::limits::Copy {
                in_cache: field(|c| c.in_cache),
                out_of_cache: field(|c| c.out_of_cache),
                aliased: field(|c| c.aliased),
            };
            (s, copy)
        })
        .collect();
    let transfer = any
        .transfer
        .keys()
        .map(|&s| (s, mid(runs.iter().filter_map(|l| l.transfer.get(&s).copied()).collect())))
        .collect();
    Limits { cacheline, memcpy, transfer }
}
