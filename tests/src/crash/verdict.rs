//! The promise, measured on what the readers of a run printed.

use std::collections::{HashMap, HashSet};

use super::parse;
use super::session::{GenLog, ReaderLog};

/// What the readers of a run printed, measured against the promise.
#[derive(Default, Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// Distinct messages printed.
    pub delivered: u64,
    /// Missing where a killed reader had taken it (at most one per killed reader).
    pub lost_killed_reader: u64,
    pub lost_otherwise: u64,
    pub duplicated: u64,
    pub reordered: u64,
    /// Lines that are no message of the run, and half lines.
    pub corrupt: u64,
}

impl Verdict {
    pub fn bad(&self) -> bool {
        self.lost_otherwise + self.duplicated + self.reordered + self.corrupt > 0
    }
}

/// Judges what `readers` printed (in the order they ran) of the generations `gens`.
pub fn judge(readers: &[ReaderLog], gens: &[GenLog]) -> Verdict {
    judge_with_details(readers, gens).0
}

/// [`judge`], and the first few faults found, in words (`3w0` is message 3 of generation 0).
pub fn judge_with_details(readers: &[ReaderLog], gens: &[GenLog]) -> (Verdict, Vec<String>) {
    const SAY: usize = 4;
    let mut v = Verdict::default();
    let mut say: Vec<String> = Vec::new();
    let mut tell = |s: String| {
        if say.len() < SAY {
            say.push(s);
        }
    };
    let name = |(g, i): (usize, u64)| format!("{i}w{g}");
    let mut seen: HashSet<(usize, u64)> = HashSet::new();
    let mut max: Option<(usize, u64)> = None;
    let mut top: Vec<Option<u64>> = vec![None; gens.len()];
    // First printings, by reader.
    let mut firsts: Vec<Vec<(usize, u64)>> = vec![Vec::new(); readers.len()];
    for (r, log) in readers.iter().enumerate() {
        for line in &log.lines {
            let Some(k) = parse(line, gens.len()).filter(|&(g, i)| i < gens[g].sent_asked) else {
                v.corrupt += 1;
                tell(format!("reader {r} printed {:?}", String::from_utf8_lossy(line)));
                continue;
            };
            if !seen.insert(k) {
                v.duplicated += 1;
                tell(format!("reader {r} printed {} again", name(k)));
                continue;
            }
            match max {
                Some(m) if k < m => {
                    v.reordered += 1;
                    tell(format!("reader {r} printed {} after {}", name(k), name(m)));
                }
                _ => max = Some(k),
            }
            top[k.0] = top[k.0].max(Some(k.1));
            firsts[r].push(k);
        }
        if !log.partial.is_empty() {
            v.corrupt += 1;
            tell(format!("reader {r} printed half a line: {:?}", String::from_utf8_lossy(&log.partial)));
        }
    }
    v.delivered = seen.len() as u64;

    // What had to arrive: all of a complete writer's messages (or of one that nothing killed),
    // up to the last one printed of any other (and of the tail).
    let mut expected: Vec<(usize, u64)> = Vec::new();
    for (g, generation) in gens.iter().enumerate() {
        let upto =
            if generation.complete && !generation.tail { generation.sent_asked } else { top[g].map_or(0, |t| t + 1) };
        expected.extend((0..upto).map(|i| (g, i)));
    }
    let pos: HashMap<(usize, u64), i64> = expected.iter().enumerate().map(|(p, &k)| (k, p as i64)).collect();
    let at = |k: &(usize, u64)| pos.get(k).copied();
    // For each killed reader, the gap it leaves: after everything printed up to its death,
    // before anything printed after it.
    let mut gaps: Vec<(i64, i64)> = Vec::new();
    for (r, log) in readers.iter().enumerate() {
        if !log.killed {
            continue;
        }
        let before = firsts[..=r].iter().flatten().filter_map(at).max().unwrap_or(-1);
        let after = firsts[r + 1..].iter().flatten().filter_map(at).min().unwrap_or(i64::MAX);
        gaps.push((before, after));
    }
    let mut used = vec![false; gaps.len()];
    for (p, &k) in expected.iter().enumerate() {
        if seen.contains(&k) {
            continue;
        }
        let p = p as i64;
        match gaps.iter().enumerate().position(|(j, &(b, a))| !used[j] && b < p && p < a) {
            Some(j) => {
                used[j] = true;
                v.lost_killed_reader += 1;
            }
            None => {
                v.lost_otherwise += 1;
                tell(format!("{} never printed", name(k)));
            }
        }
    }
    (v, say)
}

#[cfg(test)]
mod unit {
    use super::*;
    use crate::crash::PAD;

    fn log(lines: &[&str], killed: bool) -> ReaderLog {
        ReaderLog {
            lines: lines.iter().map(|l| format!("{l}.{PAD}").into_bytes()).collect(),
            partial: Vec::new(),
            killed,
        }
    }

    fn generation(n: u64, complete: bool) -> GenLog {
        GenLog { sent_asked: n, complete, killed: !complete, tail: false, must_deliver: false }
    }

    #[test]
    fn judges_duplicates_reorders_and_losses() {
        let gens = [generation(4, true), generation(10, false)];
        let ok = judge(&[log(&["0 w0", "1 w0"], true), log(&["2 w0", "3 w0", "0 w1"], false)], &gens);
        assert_eq!(ok, Verdict { delivered: 5, ..Verdict::default() });
        let lost = judge(&[log(&["0 w0"], true), log(&["2 w0", "3 w0", "0 w1"], false)], &gens);
        assert_eq!((lost.lost_killed_reader, lost.lost_otherwise), (1, 0));
        let two = judge(&[log(&["0 w0"], true), log(&["3 w0", "0 w1"], false)], &gens);
        assert_eq!((two.lost_killed_reader, two.lost_otherwise), (1, 1));
        let dup = judge(&[log(&["0 w0", "1 w0"], true), log(&["1 w0", "2 w0", "3 w0", "0 w1"], false)], &gens);
        assert_eq!(dup.duplicated, 1);
        let re = judge(&[log(&["0 w0"], true), log(&["2 w0", "1 w0", "3 w0", "0 w1"], false)], &gens);
        assert_eq!((re.reordered, re.lost_otherwise, re.lost_killed_reader), (1, 0, 0));
        let unsent = judge(&[log(&["0 w0", "1 w0", "2 w0", "3 w0", "0 w1", "1 w1"], false)], &gens);
        assert!(!unsent.bad(), "a killed writer's unsent messages are no loss");
        let mut half = log(&["0 w0"], true);
        half.partial = b"1 w0.abc".to_vec();
        assert_eq!(judge(&[half, log(&["bogus"], false)], &gens).corrupt, 2);
    }
}
