//! The chart as text, 80 columns: the writer's calls right-aligned against its lifeline, the
//! reader's left-aligned after its own, the object's state between them. A lifeline is `┃` while
//! its side waits; a hand-over leaves the giver's lifeline, runs down a channel of its own and
//! enters the taker's lifeline with the message on it. ANSI colours only on a terminal.

use crate::model::{Arrow, Chart};
use crate::run::Side;

pub const WIDTH: usize = 80;
/// Columns: the writer's labels 0..30, its lifeline 31, the middle 32..46, the reader's
/// lifeline 46, its labels 48..80.
const W_LABEL: usize = 30;
const W_LINE: usize = 31;
const MID: std::ops::Range<usize> = 32..46;
const R_LINE: usize = 46;
const R_LABEL: usize = 48;

const UP: u8 = 1;
const DOWN: u8 = 2;
const LEFT: u8 = 4;
const RIGHT: u8 = 8;

#[derive(Clone, Copy, PartialEq)]
enum Paint {
    Plain,
    Wait,
    Arrow,
    Dim,
}

#[derive(Clone, Copy)]
struct Cell {
    ch: char,
    bits: u8,
    paint: Paint,
}

impl Cell {
    const EMPTY: Cell = Cell { ch: ' ', bits: 0, paint: Paint::Plain };

    fn shown(self) -> char {
        if self.bits == 0 {
            return self.ch;
        }
        match self.bits {
            b if b == LEFT | RIGHT || b == LEFT || b == RIGHT => '─',
            b if b == UP | DOWN || b == UP || b == DOWN => '│',
            b if b == DOWN | LEFT => '╮',
            b if b == DOWN | RIGHT => '╭',
            b if b == UP | LEFT => '╯',
            b if b == UP | RIGHT => '╰',
            b if b == UP | DOWN | LEFT => '┤',
            b if b == UP | DOWN | RIGHT => '├',
            b if b == LEFT | RIGHT | DOWN => '┬',
            b if b == LEFT | RIGHT | UP => '┴',
            _ => '┼',
        }
    }
}

struct Grid {
    rows: Vec<Vec<Cell>>,
}

impl Grid {
    fn new(n: usize) -> Grid {
        Grid { rows: vec![vec![Cell::EMPTY; WIDTH]; n] }
    }

    fn bits(&mut self, r: usize, c: usize, b: u8) {
        let cell = &mut self.rows[r][c];
        cell.bits |= b;
        cell.paint = Paint::Arrow;
    }

    fn put(&mut self, r: usize, c: usize, ch: char, paint: Paint) {
        if c < WIDTH {
            self.rows[r][c] = Cell { ch, bits: 0, paint };
        }
    }

    fn text(&mut self, r: usize, c: usize, s: &str, paint: Paint) {
        for (i, ch) in s.chars().enumerate() {
            self.put(r, c + i, ch, paint);
        }
    }

    fn free(&self, r: usize, c: usize) -> bool {
        let cell = self.rows[r][c];
        cell.bits == 0 && cell.ch == ' '
    }
}

/// `s` cut to `n` characters (the last one `…` if cut).
pub fn fit(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// Which channel column each arrow runs down: rightward ones from the left of the middle,
/// leftward ones from its right; arrows into the same call share one.
fn channels(arrows: &[Arrow], side_of: impl Fn(usize) -> Side) -> Vec<usize> {
    let mut out: Vec<usize> = Vec::new();
    for (i, a) in arrows.iter().enumerate() {
        let right = side_of(a.from) == Side::Writer;
        let span = (a.from.min(a.to), a.from.max(a.to));
        let shared = (0..i).find(|&j| arrows[j].to == a.to && (side_of(arrows[j].from) == Side::Writer) == right);
        let ch = if let Some(j) = shared {
            out[j]
        } else {
            (0..6)
                .map(|k| if right { MID.start + 1 + k } else { MID.end - 2 - k })
                .find(|&col| {
                    (0..i).all(|j| {
                        let b = &arrows[j];
                        let other = (b.from.min(b.to), b.from.max(b.to));
                        out[j] != col || other.1 < span.0 || span.1 < other.0
                    })
                })
                .unwrap_or(if right { MID.start + 1 } else { MID.end - 2 })
        };
        out.push(ch);
    }
    out
}

/// The chart as lines of text; `color`: ANSI colours (for a terminal).
pub fn text(chart: &Chart, color: bool) -> String {
    let ev = &chart.events;
    let head = 2;
    let mut g = Grid::new(head + ev.len());
    // Header: who, and what is between them.
    let who = |side: Side| match chart.pids[side as usize] {
        Some(pid) => format!("{} {pid}", side.name()),
        None => side.name().to_string(),
    };
    let w = who(Side::Writer);
    g.text(0, W_LABEL.saturating_sub(w.chars().count()), &w, Paint::Plain);
    g.text(0, R_LABEL, &who(Side::Reader), Paint::Plain);
    let obj = fit(&chart.column, MID.len());
    g.text(0, MID.start + (MID.len() - obj.chars().count()) / 2, &obj, Paint::Plain);

    // Lifelines: from a side's first event to its end, heavy while it waits.
    for side in [Side::Writer, Side::Reader] {
        let col = if side == Side::Writer { W_LINE } else { R_LINE };
        let own: Vec<usize> = (0..ev.len()).filter(|&i| ev[i].side == side && !ev[i].outside).collect();
        let (Some(&first), Some(&last)) = (own.first(), own.last()) else { continue };
        g.put(head - 1, col, '┬', Paint::Plain);
        for (i, e) in ev.iter().enumerate().take(last + 1) {
            let t = e.at;
            let waits = chart.waits.iter().any(|&(s, a, b)| s == side && a < t && t <= b);
            let waits = waits || (e.side == side && e.waited.is_some());
            let ch = if e.end && e.side == side {
                '┴'
            } else if waits {
                '┃'
            } else {
                '│'
            };
            if i >= first {
                g.put(head + i, col, ch, if ch == '┃' { Paint::Wait } else { Paint::Plain });
            }
        }
    }

    // Arrows.
    let side_of = |i: usize| ev[i].side;
    let chans = channels(&chart.arrows, side_of);
    for (a, &ch) in chart.arrows.iter().zip(&chans) {
        let (gr, tr) = (head + a.from, head + a.to);
        let right = side_of(a.from) == Side::Writer;
        let label = a.text.replace('\n', "\\n");
        if right {
            if !ev[a.from].outside {
                g.put(gr, W_LINE, '├', Paint::Arrow);
            }
            if gr == tr {
                (MID.start..MID.end - 1).for_each(|c| g.bits(gr, c, LEFT | RIGHT));
            } else {
                (MID.start..ch).for_each(|c| g.bits(gr, c, LEFT | RIGHT));
                g.bits(gr, ch, LEFT | if tr > gr { DOWN } else { UP });
                for r in gr.min(tr) + 1..gr.max(tr) {
                    g.bits(r, ch, UP | DOWN);
                }
                g.bits(tr, ch, RIGHT | if tr > gr { UP } else { DOWN });
                (ch + 1..MID.end - 1).for_each(|c| g.bits(tr, c, LEFT | RIGHT));
            }
            g.put(tr, MID.end - 1, '▶', Paint::Arrow);
            // The message between a dash on each side: `╰─ "one" ─▶`.
            let from = if gr == tr { MID.start + 1 } else { ch + 2 };
            if MID.end > from + 4 {
                let l = fit(&label, MID.end - 4 - from);
                g.text(tr, from + (MID.end - 2 - from - l.chars().count() - 2) / 2, &format!(" {l} "), Paint::Arrow);
            }
        } else {
            g.put(gr, R_LINE, '┤', Paint::Arrow);
            if gr == tr {
                (MID.start + 1..MID.end).for_each(|c| g.bits(gr, c, LEFT | RIGHT));
            } else {
                (ch + 1..MID.end).for_each(|c| g.bits(gr, c, LEFT | RIGHT));
                g.bits(gr, ch, RIGHT | if tr > gr { DOWN } else { UP });
                for r in gr.min(tr) + 1..gr.max(tr) {
                    g.bits(r, ch, UP | DOWN);
                }
                g.bits(tr, ch, LEFT | if tr > gr { UP } else { DOWN });
                (MID.start + 1..ch).for_each(|c| g.bits(tr, c, LEFT | RIGHT));
            }
            g.put(tr, MID.start, '◀', Paint::Arrow);
            let to = if gr == tr { MID.end - 1 } else { ch - 1 };
            if to > MID.start + 4 {
                let l = fit(&label, to - MID.start - 4);
                g.text(
                    tr,
                    MID.start + 1 + (to - MID.start - 3 - l.chars().count()) / 2,
                    &format!(" {l} "),
                    Paint::Arrow,
                );
            }
        }
    }

    // Labels, and the state in the widest free run of the middle.
    for (i, e) in ev.iter().enumerate() {
        let r = head + i;
        if e.side == Side::Writer {
            let l = fit(&e.label, W_LABEL);
            g.text(r, W_LABEL - l.chars().count(), &l, if e.end { Paint::Dim } else { Paint::Plain });
        } else {
            g.text(r, R_LABEL, &fit(&e.label, WIDTH - R_LABEL), if e.end { Paint::Dim } else { Paint::Plain });
        }
        if let Some(state) = &e.state {
            let (mut best, mut run) = ((0, 0), None);
            for c in MID.start..=MID.end {
                let free = c < MID.end && g.free(r, c);
                match (free, run) {
                    (true, None) => run = Some(c),
                    (false, Some(s)) => {
                        if c - s > best.1 - best.0 {
                            best = (s, c);
                        }
                        run = None;
                    }
                    _ => {}
                }
            }
            let room = best.1 - best.0;
            let pad = usize::from(best.0 > MID.start) + usize::from(best.1 < MID.end);
            if room > pad + 2 {
                let s = fit(state, room - pad);
                let start = best.0 + usize::from(best.0 > MID.start);
                let start = start + (room - pad - s.chars().count()) / 2;
                g.text(r, start, &s, Paint::Dim);
            }
        }
    }

    let mut out = format!("{}\n\n", chart.title);
    for row in &g.rows {
        let mut line = String::new();
        let mut paint = Paint::Plain;
        for cell in row {
            if color && cell.paint != paint {
                line.push_str(match cell.paint {
                    Paint::Plain => "\x1b[0m",
                    Paint::Wait => "\x1b[0;33m",
                    Paint::Arrow => "\x1b[0;36m",
                    Paint::Dim => "\x1b[0;2m",
                });
                paint = cell.paint;
            }
            line.push(cell.shown());
        }
        if color && paint != Paint::Plain {
            line.push_str("\x1b[0m");
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    if let Some(legend) = &chart.legend {
        out.push_str(&format!("{legend}\n"));
    }
    out
}
