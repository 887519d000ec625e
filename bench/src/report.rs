//! The results: a table on stdout, and on request JSON and an SVG chart.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::limits::Copy;
use crate::run::{Calls, Row};
use crate::stats::{Stats, fmt_ns};

pub struct Limits {
    pub cacheline: Option<Stats>,
    /// memcpy by size.
    pub memcpy: BTreeMap<usize, Copy>,
    /// The bare cross-CPU transfer by size, MB/s.
    pub transfer: BTreeMap<usize, f64>,
}

pub struct Machine {
    pub cpu: String,
    pub cpus: usize,
    pub kernel: String,
}

impl Machine {
    pub fn read() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| {
                l.strip_prefix("model name").and_then(|r| r.split_once(':')).map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_else(|| "unknown".into());
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let kernel = nix::sys::utsname::uname()
            .map(|u| u.release().to_string_lossy().into_owned())
            .unwrap_or_else(|_| "unknown".into());
        Machine { cpu, cpus, kernel }
    }
}

/// The size group a row is shown in: the signal row (8 bytes) sits with the small messages.
fn group(size: usize) -> usize {
    size.max(64)
}

fn size_name(size: usize) -> String {
    match size {
        s if s >= 1024 && s.is_multiple_of(1024) => format!("{} KiB", s / 1024),
        s => format!("{s} B"),
    }
}

/// Ratios of a shared-memory row to the hardware's limits: RTT over the cache-line round trip,
/// throughput as a share of the bare transfer (two CPUs) and of memcpy in cache. A floor is
/// never beaten nor a ceiling passed by definition: where a row still does (the limit was
/// measured in a slower moment than the row), it says so instead of printing a ratio that
/// contradicts the definition.
pub fn vs_limits(row: &Row, limits: &Limits) -> String {
    if !row.shm {
        return String::new();
    }
    let cross = row.placement.name() == "cross";
    let mut parts = Vec::new();
    // The limits measured next to the row if there are any, else the run's.
    let line = row.near.and_then(|n| n.cacheline).or(limits.cacheline.map(|c| c.p50)).filter(|_| cross);
    if let Some(c) = line {
        let x = row.rtt.p50 as f64 / c.max(1) as f64;
        parts.push(if x >= 1.0 {
            format!("{x:.1}x cacheline")
        } else {
            format!("at the cacheline floor (limit re-measured: {} beside it)", fmt_ns(c as f64))
        });
    }
    let transfer = row.near.and_then(|n| n.transfer).or(limits.transfer.get(&row.size).copied()).filter(|_| cross);
    let mut share = |name: &str, ceiling: f64| {
        let pct = 100.0 * row.mb_per_s / ceiling;
        parts.push(if pct <= 100.0 {
            format!("{pct:.0}% {name}")
        } else {
            format!("at the {name} ceiling (limit re-measured: {ceiling:.0} MB/s)")
        });
    };
    if let Some(t) = transfer {
        share("transfer", t);
    }
    if let Some(m) = limits.memcpy.get(&row.size) {
        share("memcpy", m.in_cache);
    }
    parts.join(", ")
}

/// The spread of the runs' p50s around the median: `±4%` (half of max - min), `-` for one run.
fn spread(row: &Row) -> String {
    match (row.p50s.iter().min(), row.p50s.iter().max()) {
        (Some(lo), Some(hi)) if row.p50s.len() > 1 => {
            format!("±{:.0}%", 50.0 * (hi - lo) as f64 / row.rtt.p50.max(1) as f64)
        }
        _ => "-".into(),
    }
}

/// The table: one section per message size, rows sorted by p50 round trip, with the ratio to the
/// fastest row of the section.
pub fn table(rows: &[Row], limits: &Limits, machine: &Machine) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "machine: {} ({} CPUs), Linux {}", machine.cpu, machine.cpus, machine.kernel);
    if rows.iter().any(|r| r.near.is_some()) {
        let _ = writeln!(
            out,
            "(shared-memory rows on two CPUs: \"vs limits\" against a cache line and a transfer measured just before and after each run of the row, the lower floor and the higher ceiling)"
        );
    }
    if let Some(c) = limits.cacheline {
        let _ = writeln!(
            out,
            "limit: cache-line round trip between two CPUs: p50 {}, min {}",
            fmt_ns(c.p50 as f64),
            fmt_ns(c.min as f64)
        );
    }
    for (s, m) in &limits.memcpy {
        let _ = writeln!(
            out,
            "limit: memcpy {}: {:.0} MB/s in cache, {:.0} MB/s out of cache ({:.0} MB/s if the destination is 16 B above the source modulo 4 KiB)",
            size_name(*s),
            m.in_cache,
            m.out_of_cache,
            m.aliased
        );
    }
    for (s, t) in &limits.transfer {
        let _ = writeln!(
            out,
            "limit: bare transfer between two CPUs (each cache line written once, read once) {}: {:.0} MB/s",
            size_name(*s),
            t
        );
    }
    let mut groups: BTreeMap<usize, Vec<&Row>> = BTreeMap::new();
    for r in rows {
        groups.entry(group(r.size)).or_default().push(r);
    }
    for (size, mut rs) in groups {
        rs.sort_by_key(|r| r.rtt.p50);
        let fastest = rs[0].rtt.p50.max(1) as f64;
        let _ =
            writeln!(out, "\n{} messages (round trip: min / p50 / p99 / p99.9; one-way streaming)", size_name(size));
        let _ = writeln!(
            out,
            "{:<16} {:<5} {:>6} {:>9} {:>9} {:>6} {:>9} {:>9} {:>11} {:>9} {:>8} {:>9}  vs limits",
            "mechanism", "cpus", "size", "min", "p50", "spread", "p99", "p99.9", "msgs/s", "MB/s", "x p50", "calls/msg"
        );
        for r in rs {
            let _ = writeln!(
                out,
                "{:<16} {:<5} {:>6} {:>9} {:>9} {:>6} {:>9} {:>9} {:>11.0} {:>9.1} {:>8.1} {:>9}  {}",
                r.mechanism,
                r.placement.name(),
                size_name(r.size),
                fmt_ns(r.rtt.min as f64),
                fmt_ns(r.rtt.p50 as f64),
                spread(r),
                fmt_ns(r.rtt.p99 as f64),
                fmt_ns(r.rtt.p999 as f64),
                r.msgs_per_s,
                r.mb_per_s,
                r.rtt.p50 as f64 / fastest,
                calls(&r.calls),
                vs_limits(r, limits)
            );
        }
    }
    out
}

/// System calls per message, sending side + receiving side: `1+1`, `0+0.3`.
pub fn calls(c: &Calls) -> String {
    let one = |x: f64| {
        if (x - x.round()).abs() < 0.05 { format!("{:.0}", x.round()) } else { format!("{x:.1}") }
    };
    format!("{}+{}", one(c.send), one(c.recv))
}

fn stats_json(s: &Stats) -> Value {
    json!({"min": s.min, "p50": s.p50, "p99": s.p99, "p999": s.p999})
}

pub fn json(rows: &[Row], limits: &Limits, machine: &Machine) -> Value {
    let results: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "mechanism": r.mechanism,
                "placement": r.placement.name(),
                "size": r.size,
                "rtt_ns": stats_json(&r.rtt),
                "p50_ns_of_runs": r.p50s,
                "limits_near": r.near.map(|n| json!({"cacheline_rtt_ns": n.cacheline, "transfer_mb_per_s": n.transfer})),
                "throughput": {"msgs_per_s": r.msgs_per_s, "mb_per_s": r.mb_per_s},
                "messages": r.messages,
                "calls_per_msg": {"send": r.calls.send, "recv": r.calls.recv},
                "vs_limits": vs_limits(r, limits),
            })
        })
        .collect();
    let memcpy: serde_json::Map<String, Value> =
        limits.memcpy.iter().map(|(s, m)| (s.to_string(), json!(m.in_cache))).collect();
    let copies: serde_json::Map<String, Value> = limits
        .memcpy
        .iter()
        .map(|(s, m)| {
            (s.to_string(), json!({"in_cache": m.in_cache, "out_of_cache": m.out_of_cache, "aliased": m.aliased}))
        })
        .collect();
    let transfer: serde_json::Map<String, Value> =
        limits.transfer.iter().map(|(s, t)| (s.to_string(), json!(t))).collect();
    json!({
        "machine": {"cpu": machine.cpu, "cpus": machine.cpus, "kernel": machine.kernel},
        "results": results,
        "limits": {
            "cacheline_rtt_ns": limits.cacheline.as_ref().map(stats_json),
            "memcpy_mb_per_s": memcpy,
            "memcpy_placements_mb_per_s": copies,
            "transfer_mb_per_s": transfer,
        },
    })
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// A bar chart per message size: p50 round trip on a log scale (shorter is faster), the
/// cache-line floor as a dashed line.
pub fn svg(rows: &[Row], limits: &Limits, machine: &Machine) -> String {
    let mut groups: BTreeMap<usize, Vec<&Row>> = BTreeMap::new();
    for r in rows {
        groups.entry(group(r.size)).or_default().push(r);
    }
    let (left, width, bar, gap) = (250.0, 560.0, 16.0, 4.0);
    let lo = rows.iter().map(|r| r.rtt.p50).chain(limits.cacheline.map(|c| c.p50)).min().unwrap_or(1).max(1) as f64;
    let hi = rows.iter().map(|r| r.rtt.p50).max().unwrap_or(10).max(10) as f64;
    let (l0, l1) = (lo.log10().floor(), hi.log10().ceil().max(lo.log10().floor() + 1.0));
    let x = |ns: f64| left + width * (ns.max(1.0).log10() - l0) / (l1 - l0);
    let mut body = String::new();
    let mut y = 50.0;
    for (size, mut rs) in groups {
        rs.sort_by_key(|r| r.rtt.p50);
        let _ = writeln!(
            body,
            r#"<text x="10" y="{y}" font-weight="bold">{} messages: p50 round trip</text>"#,
            size_name(size)
        );
        y += 10.0;
        let top = y;
        for r in &rs {
            let colour = match (r.shm, r.placement.name()) {
                (true, "cross") => "#1b7837",
                (true, _) => "#7fbf7b",
                (false, "cross") => "#2166ac",
                _ => "#92c5de",
            };
            let w = x(r.rtt.p50 as f64) - left;
            let label = escape(&format!("{} ({}, {})", r.mechanism, r.placement.name(), size_name(r.size)));
            let _ = writeln!(body, r#"<text x="{}" y="{}" text-anchor="end">{label}</text>"#, left - 6.0, y + 12.0);
            let _ = writeln!(body, r#"<rect x="{left}" y="{y}" width="{w:.1}" height="{bar}" fill="{colour}"/>"#);
            let _ = writeln!(
                body,
                r#"<text x="{:.1}" y="{}">{}</text>"#,
                left + w + 4.0,
                y + 12.0,
                fmt_ns(r.rtt.p50 as f64)
            );
            y += bar + gap;
        }
        if let Some(c) = limits.cacheline {
            let cx = x(c.p50 as f64);
            let _ = writeln!(
                body,
                r##"<line x1="{cx:.1}" y1="{top}" x2="{cx:.1}" y2="{y}" stroke="#d6604d" stroke-dasharray="4 3"/>"##
            );
            let _ = writeln!(body, r##"<text x="{cx:.1}" y="{}" fill="#d6604d">cache line</text>"##, y + 12.0);
        }
        y += 36.0;
    }
    let mut axis = String::new();
    for p in (l0 as i32)..=(l1 as i32) {
        let ax = x(10f64.powi(p));
        let _ = writeln!(axis, r##"<line x1="{ax:.1}" y1="40" x2="{ax:.1}" y2="{}" stroke="#ddd"/>"##, y - 30.0);
        let _ = writeln!(
            axis,
            r##"<text x="{ax:.1}" y="{}" text-anchor="middle" fill="#666">{}</text>"##,
            y - 14.0,
            fmt_ns(10f64.powi(p))
        );
    }
    let title = escape(&format!(
        "IPC round trips (log scale), {} ({} CPUs), Linux {}",
        machine.cpu, machine.cpus, machine.kernel
    ));
    let legend = "dark: two CPUs (cross), light: one CPU (same); green: shared memory, blue: through the kernel";
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="10" y="20" font-size="14" font-weight="bold">{title}</text>
<text x="10" y="36" fill="#444">{legend}</text>
{axis}{body}</svg>
"##,
        left + width + 90.0,
        y
    )
}
