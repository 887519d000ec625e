//! Latency percentiles from per-round-trip samples (CLOCK_MONOTONIC, via Instant).

#[derive(Clone, Copy, Debug, Default)]
pub struct Stats {
    pub min: u64,
    pub p50: u64,
    pub p99: u64,
    pub p999: u64,
}

impl Stats {
    /// From nanosecond samples (sorted here).
    pub fn from(mut ns: Vec<u64>) -> Stats {
        assert!(!ns.is_empty(), "no samples");
        ns.sort_unstable();
        let at = |q: f64| ns[((ns.len() as f64 * q) as usize).min(ns.len() - 1)];
        Stats { min: ns[0], p50: at(0.50), p99: at(0.99), p999: at(0.999) }
    }
}

/// `812 ns`, `12.3 µs`, `4.56 ms`.
pub fn fmt_ns(ns: f64) -> String {
    match ns {
        n if n < 1e3 => format!("{n:.0} ns"),
        n if n < 1e6 => format!("{:.1} µs", n / 1e3),
        n => format!("{:.2} ms", n / 1e6),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_ordered() {
        let s = Stats::from((1..=1000).rev().collect());
        assert_eq!((s.min, s.p50, s.p99, s.p999), (1, 501, 991, 1000));
        assert_eq!(fmt_ns(1500.0), "1.5 µs");
    }
}
