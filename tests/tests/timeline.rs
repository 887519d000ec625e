//! `timeline` (issue 24): each README's chart, from a fresh run, has the committed chart's calls
//! and hand-overs (docs/timeline/NAME.txt, regenerated with `cargo run -p timeline -- NAME --svg
//! docs/timeline/NAME.svg > docs/timeline/NAME.txt`). Times, waits, PIDs and keys differ from run
//! to run and are left out; so are the timed-out tries of a wait loop (EAGAIN, ETIMEDOUT), whose
//! number depends on how soon the other side came. Each side's calls up to its last hand-over must
//! be the same in order; what comes after (who of the two is last out and removes) may fall to
//! either side, so both sides' calls after that are compared as one set, a look that found the
//! object already gone counted as the same look.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use tests::bin;

/// A chart read back: each side's calls up to its last hand-over, the rest, and the hand-overs.
#[derive(Debug, PartialEq)]
struct Shape {
    writer: Vec<String>,
    reader: Vec<String>,
    after: BTreeSet<String>,
    arrows: Vec<String>,
}

/// Columns of the text chart (timeline/src/chart.rs): the writer's labels end at 30, the
/// lifelines are at 31 and 46, the reader's labels start at 48.
fn shape(chart: &str) -> Shape {
    let mut sides: [Vec<(String, bool)>; 2] = [Vec::new(), Vec::new()];
    let mut arrows = Vec::new();
    for line in chart.lines() {
        let c: Vec<char> = line.chars().collect();
        let at = |i: usize| c.get(i).copied().unwrap_or(' ');
        let lifeline = |ch: char| "│┃┴├┤".contains(ch);
        if !lifeline(at(31)) && !lifeline(at(46)) && !c.contains(&'▶') {
            continue; // the title, the heads, what the reader printed
        }
        let text = |r: std::ops::Range<usize>| c[r.start.min(c.len())..r.end.min(c.len())].iter().collect::<String>();
        if c.contains(&'▶') || c.contains(&'◀') {
            let mid: String = text(32..46).chars().filter(|ch| ch.is_alphanumeric() || *ch == ' ').collect();
            arrows.push(mid.trim().to_string());
        }
        // A side's row of a hand-over: it gives (`├` / `┤` on its lifeline) or takes (the head).
        let handed = [at(31) == '├' || at(32) == '◀', at(46) == '┤' || at(45) == '▶'];
        for (side, label) in [(0, text(0..30)), (1, text(48..c.len()))] {
            let arrow = handed[side];
            let label = untimed(label.trim());
            if !label.is_empty() {
                sides[side].push((label, arrow));
            }
        }
    }
    let mut after = BTreeSet::new();
    let [writer, reader] = sides.map(|calls| {
        let last = calls.iter().rposition(|(_, a)| *a).map_or(0, |p| p + 1);
        // A look at the object after the hand-overs finds it or finds it gone (EINVAL, EIDRM,
        // ENOENT), as the other side's removal came before or after: the same call either way.
        after.extend(calls[last..].iter().filter(|(l, _)| !retry(l)).map(|(l, _)| gone_or_not(l)));
        let mut kept: Vec<String> = calls[..last].iter().map(|(l, _)| l.clone()).filter(|l| !retry(l)).collect();
        kept.dedup();
        kept
    });
    Shape { writer, reader, after, arrows }
}

/// `msgctl STAT → EINVAL` as `msgctl STAT`: whether the object was still there is timing.
fn gone_or_not(label: &str) -> String {
    for gone in [" → EINVAL", " → EIDRM", " → ENOENT"] {
        if let Some(call) = label.strip_suffix(gone) {
            return call.to_string();
        }
    }
    label.to_string()
}

/// A timed-out try of a wait loop.
fn retry(label: &str) -> bool {
    label.ends_with("→ EAGAIN") || label.ends_with("→ ETIMEDOUT")
}

/// The label without the wait's length (`msgrcv → "one" 302ms`).
fn untimed(label: &str) -> String {
    match label.rsplit_once(' ') {
        Some((rest, last)) if last.ends_with('s') && last.trim_end_matches(['m', 'µ', 's']).parse::<f64>().is_ok() => {
            rest.to_string()
        }
        _ => label.to_string(),
    }
}

fn timeline(args: &[&str]) -> String {
    let out = assert_cmd::Command::new(bin("timeline", "timeline"))
        .args(args)
        .timeout(Duration::from_secs(120))
        .output()
        .expect("run timeline");
    assert!(out.status.success(), "timeline {args:?}: {out:?}");
    String::from_utf8(out.stdout).expect("UTF-8 chart")
}

fn committed(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/timeline").join(format!("{name}.txt"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The key of a SysV chart's title (`timeline msgq: queue 0x71..., reader first`): nothing of it
/// may be left.
fn key_in(chart: &str) -> Option<i32> {
    let hex = chart.lines().next()?.split(" 0x").nth(1)?;
    let hex: String = hex.chars().take_while(char::is_ascii_hexdigit).collect();
    u32::from_str_radix(&hex, 16).ok().map(|k| k as i32)
}

fn same_as_committed(name: &str) {
    let fresh = timeline(&[name]);
    let want = shape(&committed(name));
    assert!(!want.arrows.is_empty(), "docs/timeline/{name}.txt shows no hand-over");
    assert_eq!(shape(&fresh), want, "a fresh `timeline {name}` differs from docs/timeline/{name}.txt:\n{fresh}");
    if let Some(key) = key_in(&fresh) {
        // SAFETY: msgget, shmget and semget take plain integers; flag 0 only looks.
        let left = unsafe { [libc::msgget(key, 0), libc::shmget(key, 0, 0), libc::semget(key, 0, 0)] };
        assert_eq!(left, [-1, -1, -1], "timeline {name} left an object of key {key:#x}");
    }
}

#[test]
fn msgq_chart_matches_the_committed_one() {
    same_as_committed("msgq");
}

#[test]
fn shm_chart_matches_the_committed_one() {
    same_as_committed("shm");
}

#[test]
fn fifo_chart_matches_the_committed_one() {
    same_as_committed("fifo");
}

#[test]
fn file_chart_matches_the_committed_one() {
    same_as_committed("file");
}

#[test]
fn signal_chart_matches_the_committed_one() {
    same_as_committed("signal");
}

/// The comparison can fail: a chart with its hand-over taken out is not the committed one.
#[test]
fn a_chart_without_its_arrow_differs() {
    let chart = committed("msgq");
    let cut: String = chart.lines().filter(|l| !l.contains('▶')).map(|l| format!("{l}\n")).collect();
    assert_ne!(shape(&cut), shape(&chart));
}

#[test]
fn a_stopped_reader_cleans_up_and_the_svg_is_a_diagram() {
    let dir = tempfile::tempdir().expect("tempdir");
    let svg = dir.path().join("stop.svg");
    let chart = timeline(&["msgq", "--stop-reader-after", "50ms", "--svg", svg.to_str().expect("UTF-8 path")]);
    for want in ["SIGINT", "msgctl RMID", "removed", "killed by SIGINT"] {
        assert!(chart.contains(want), "no {want:?} in:\n{chart}");
    }
    let key = key_in(&chart).expect("a key in the title");
    // SAFETY: msgget takes plain integers; flag 0 only looks.
    assert_eq!(unsafe { libc::msgget(key, 0) }, -1, "the stopped reader left its queue");
    let svg = std::fs::read_to_string(&svg).expect("the SVG");
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    assert!(svg.contains("marker-end=\"url(#head)\"") && svg.contains("&quot;SIGINT&quot;"), "{svg}");
    assert!(!svg.contains("<script") && !svg.contains("href=\"http"), "{svg}");
}

#[test]
fn bad_usage_exits_2() {
    let out = std::process::Command::new(bin("timeline", "timeline"))
        .args(["signal", "--writer-first"])
        .output()
        .expect("run timeline");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("PID"), "{out:?}");
}
