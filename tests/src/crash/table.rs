//! The table a test prints: one row per pair.

use super::verdict::Verdict;

/// One row of the table: a pair's runs in one test.
#[derive(Default, Debug, Clone)]
pub struct Tally {
    /// Processes of the killed side started (each one run that a kill may hit).
    pub runs: u64,
    pub kills: u64,
    pub verdict: Verdict,
    pub hung: u64,
    /// Objects, files and temporary semaphore files left after `reader --clean`.
    pub left: u64,
    /// The first runs that broke the promise, each with how to reproduce it.
    pub notes: Vec<String>,
    kinds: Vec<u8>,
    /// Seconds the pair's runs took (summed over tests when merged).
    pub secs: f64,
}

impl Tally {
    pub fn add(&mut self, v: Verdict) {
        let t = &mut self.verdict;
        t.delivered += v.delivered;
        t.lost_killed_reader += v.lost_killed_reader;
        t.lost_otherwise += v.lost_otherwise;
        t.duplicated += v.duplicated;
        t.reordered += v.reordered;
        t.corrupt += v.corrupt;
    }

    pub fn merge(&mut self, o: &Tally) {
        self.runs += o.runs;
        self.kills += o.kills;
        self.add(o.verdict);
        self.hung += o.hung;
        self.left += o.left;
        self.secs += o.secs;
    }

    /// Keeps a note on a broken run: two of each `kind` (which faults it shows), ten in all.
    pub fn note(&mut self, kind: u8, mut text: String) {
        const KEEP: usize = 10;
        const LONG: usize = 700;
        let same = self.kinds.iter().filter(|&&k| k == kind).count();
        if self.notes.len() < KEEP && same < 2 {
            self.kinds.push(kind);
            if text.len() > LONG {
                let cut = (0..=LONG).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
                text.truncate(cut);
                text.push_str("...");
            }
            self.notes.push(text);
        }
    }

    /// Everything the promise forbids.
    pub fn broken(&self) -> bool {
        self.verdict.bad() || self.hung > 0 || self.left > 0
    }
}

/// The table of `rows` under `title`, then the notes of the rows that broke the promise.
pub fn table(title: &str, rows: &[(&str, Tally)]) -> String {
    let head = [
        "pair",
        "runs",
        "kills",
        "delivered",
        "lost w/ killed reader",
        "lost otherwise",
        "duplicated",
        "reordered",
        "corrupt/half",
        "hung",
        "left after --clean",
        "secs",
    ];
    let mut lines = vec![head.iter().map(|h| h.to_string()).collect::<Vec<_>>()];
    let mut total = Tally::default();
    for (name, t) in rows {
        total.merge(t);
        lines.push(row(name, t));
    }
    // The pairs ran side by side: the longest is the time of them all.
    total.secs = rows.iter().map(|(_, t)| t.secs).fold(0.0, f64::max);
    lines.push(row("total", &total));
    let widths: Vec<usize> = (0..head.len()).map(|c| lines.iter().map(|l| l[c].len()).max().unwrap_or(0)).collect();
    let fmt = |l: &Vec<String>| {
        let cells: Vec<String> = l
            .iter()
            .enumerate()
            .map(|(c, s)| if c == 0 { format!("{s:<w$}", w = widths[c]) } else { format!("{s:>w$}", w = widths[c]) })
            .collect();
        format!("| {} |", cells.join(" | "))
    };
    let mut out = format!("\n=== {title}\n");
    for (i, l) in lines.iter().enumerate() {
        out.push_str(&fmt(l));
        out.push('\n');
        if i == 0 {
            let rule: Vec<String> = widths
                .iter()
                .enumerate()
                .map(|(c, w)| if c == 0 { "-".repeat(*w) } else { format!("{}:", "-".repeat(w - 1)) })
                .collect();
            out.push_str(&format!("| {} |\n", rule.join(" | ")));
        }
    }
    for (name, t) in rows {
        for n in &t.notes {
            out.push_str(&format!("  {name}: {n}\n"));
        }
    }
    out
}

fn row(name: &str, t: &Tally) -> Vec<String> {
    let v = t.verdict;
    [
        name.to_string(),
        t.runs.to_string(),
        t.kills.to_string(),
        v.delivered.to_string(),
        v.lost_killed_reader.to_string(),
        v.lost_otherwise.to_string(),
        v.duplicated.to_string(),
        v.reordered.to_string(),
        v.corrupt.to_string(),
        t.hung.to_string(),
        t.left.to_string(),
        format!("{:.1}", t.secs),
    ]
    .to_vec()
}
