//! The chart as an SVG sequence diagram: the writer's and the reader's lifelines with the object's
//! between them, time going down (one row per call, the time since the first call on the left),
//! each wait a shaded bar on its lifeline, each hand-over an arrow labelled with its message.
//! Plain SVG: text elements (selectable), a generic monospace font, no script, nothing fetched;
//! each call's whole trace line is its tooltip.

use std::fmt::Write as _;

use crate::model::{Chart, duration};
use crate::run::Side;

const ROW: f64 = 22.0;
const TOP: f64 = 92.0;
const W_X: f64 = 400.0;
const O_X: f64 = 560.0;
const R_X: f64 = 720.0;
const WIDTH: f64 = 1000.0;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn x_of(side: Side) -> f64 {
    if side == Side::Writer { W_X } else { R_X }
}

pub fn svg(chart: &Chart) -> String {
    let ev = &chart.events;
    let y_row = |i: usize| TOP + ROW * (i as f64 + 1.0);
    // A time between rows: in proportion between the rows around it.
    let y_at = |t: u64| -> f64 {
        match ev.iter().position(|e| e.at >= t) {
            None => y_row(ev.len().saturating_sub(1)),
            Some(0) => y_row(0) - ROW / 2.0,
            Some(i) => {
                let (a, b) = (ev[i - 1].at, ev[i].at);
                let f = if b > a { (t - a) as f64 / (b - a) as f64 } else { 1.0 };
                y_row(i - 1) + ROW * f
            }
        }
    };
    let height = y_row(ev.len()) + 70.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="ui-monospace, 'DejaVu Sans Mono', monospace" font-size="12">"#
    );
    let _ = writeln!(s, "<title>{}</title>", esc(&chart.title));
    s.push_str(
        r##"<defs><marker id="head" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#1f6fb2"/></marker></defs>
<rect width="100%" height="100%" fill="#ffffff"/>
"##,
    );
    let _ = writeln!(s, r#"<text x="20" y="26" font-size="15" font-weight="bold">{}</text>"#, esc(&chart.title));
    // Heads and lifelines.
    for side in [Side::Writer, Side::Reader] {
        let x = x_of(side);
        let own: Vec<usize> = (0..ev.len()).filter(|&i| ev[i].side == side && !ev[i].outside).collect();
        let name = match chart.pids[side as usize] {
            Some(p) => format!("{} {p}", side.name()),
            None => side.name().to_string(),
        };
        let _ = writeln!(
            s,
            r##"<rect x="{}" y="44" width="120" height="26" rx="4" fill="#eef3f8" stroke="#445"/><text x="{x}" y="61" text-anchor="middle">{}</text>"##,
            x - 60.0,
            esc(&name)
        );
        if let (Some(&first), Some(&last)) = (own.first(), own.last()) {
            let _ = writeln!(
                s,
                r##"<line x1="{x}" y1="70" x2="{x}" y2="{}" stroke="#445" stroke-dasharray="{}"/>"##,
                y_row(last),
                if first > 0 { "2 3" } else { "none" }
            );
            let _ = writeln!(
                s,
                r##"<line x1="{x}" y1="{}" x2="{x}" y2="{}" stroke="#445"/>"##,
                y_row(first) - ROW / 2.0,
                y_row(last)
            );
        }
    }
    let _ = writeln!(
        s,
        r##"<rect x="{}" y="44" width="150" height="26" rx="4" fill="#f6f1e4" stroke="#765"/><text x="{O_X}" y="61" text-anchor="middle">{}</text>"##,
        O_X - 75.0,
        esc(&chart.column)
    );
    let _ = writeln!(
        s,
        r##"<line x1="{O_X}" y1="70" x2="{O_X}" y2="{}" stroke="#765" stroke-dasharray="4 4"/>"##,
        y_row(ev.len()) - ROW
    );
    // Waits: shaded bars on the lifelines.
    for &(side, a, b) in &chart.waits {
        let (y1, y2) = (y_at(a), y_at(b));
        if y2 - y1 < 2.0 {
            continue;
        }
        let _ = writeln!(
            s,
            r##"<rect x="{}" y="{y1:.1}" width="12" height="{:.1}" fill="#f2b64c" fill-opacity="0.55" stroke="#b07a12"><title>{} waits {}</title></rect>"##,
            x_of(side) - 6.0,
            y2 - y1,
            side.name(),
            duration(b - a)
        );
    }
    // Calls, times and states.
    for (i, e) in ev.iter().enumerate() {
        let y = y_row(i);
        let t = (e.at.saturating_sub(chart.t0)) as f64 / 1e6;
        let _ = writeln!(s, r##"<text x="20" y="{}" fill="#778">{t:8.3} ms</text>"##, y + 4.0);
        let (x, anchor) = if e.side == Side::Writer { (W_X - 12.0, "end") } else { (R_X + 12.0, "start") };
        let color = if e.end || e.outside { "#666" } else { "#111" };
        let _ = writeln!(
            s,
            r##"<text x="{x}" y="{}" text-anchor="{anchor}" fill="{color}"><title>{}</title>{}</text>"##,
            y + 4.0,
            esc(&e.full),
            esc(&e.label)
        );
        if let Some(state) = &e.state {
            let w = 8.0 + 7.2 * state.chars().count() as f64;
            let _ = writeln!(
                s,
                r##"<rect x="{:.1}" y="{}" width="{w:.1}" height="16" rx="3" fill="#fffaf0" stroke="#c9b78f"/><text x="{O_X}" y="{}" text-anchor="middle" fill="#654">{}</text>"##,
                O_X - w / 2.0,
                y - 8.0,
                y + 4.0,
                esc(state)
            );
        }
    }
    // Hand-overs.
    for a in &chart.arrows {
        let (from, to) = (&ev[a.from], &ev[a.to]);
        let (x1, x2) = if from.side == Side::Writer { (W_X + 6.0, R_X - 7.0) } else { (R_X - 6.0, W_X + 7.0) };
        let (y1, y2) = (y_row(a.from), y_row(a.to));
        let _ = writeln!(
            s,
            r##"<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="#1f6fb2" stroke-width="1.6" marker-end="url(#head)"/>"##
        );
        let text = format!("\"{}\"", crate::chart::fit(&a.text.replace('\n', "\\n"), 30));
        // At the giver's end, clear of the states in the middle.
        let (mx, my, anchor) = (x1 + (x2 - x1).signum() * 4.0, y1 - 6.0, if x2 > x1 { "start" } else { "end" });
        let _ = writeln!(
            s,
            r##"<text x="{mx}" y="{my}" text-anchor="{anchor}" fill="#1f6fb2" stroke="#fff" stroke-width="4" paint-order="stroke">{}</text>"##,
            esc(&text)
        );
        let _ = to;
    }
    let y = y_row(ev.len()) + 16.0;
    let _ = writeln!(
        s,
        r##"<rect x="20" y="{}" width="12" height="12" fill="#f2b64c" fill-opacity="0.55" stroke="#b07a12"/><text x="38" y="{}">waits in a call</text><line x1="170" y1="{}" x2="220" y2="{}" stroke="#1f6fb2" stroke-width="1.6" marker-end="url(#head)"/><text x="228" y="{}">hands a message over</text><text x="420" y="{}" fill="#654">middle: the object's state, where a call shows it</text>"##,
        y - 10.0,
        y,
        y - 4.0,
        y - 4.0,
        y,
        y
    );
    if let Some(legend) = &chart.legend {
        let _ = writeln!(s, r##"<text x="20" y="{}" fill="#654">{}</text>"##, y + 20.0, esc(legend));
    }
    s.push_str("</svg>\n");
    s
}
