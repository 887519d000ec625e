//! The runs: a crash point, the kill points of a pair, random kills.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::session::Session;
use super::table::Tally;
use super::verdict::{Verdict, judge_with_details};
use super::{Rng, Side, Wrap, posix_shm_turn, sem_temps, strace_found};
use crate::mechanisms::{Mechanism, Place};

/// The outcome of one run.
pub struct Outcome {
    pub victims: u64,
    pub kills: u64,
    pub verdict: Verdict,
    pub hung: bool,
    pub left: Vec<String>,
    pub notes: Vec<String>,
    pub outputs: String,
}

impl Outcome {
    pub fn broken(&self) -> bool {
        self.verdict.bad() || self.hung || !self.left.is_empty()
    }

    pub fn tally(&self, t: &mut Tally, what: impl FnOnce() -> String) {
        t.runs += self.victims;
        t.kills += self.kills;
        t.add(self.verdict);
        t.hung += u64::from(self.hung);
        t.left += self.left.len() as u64;
        if self.broken() {
            let v = self.verdict;
            let mut s = format!(
                "{}: lost {}+{} dup {} reorder {} corrupt {}{}",
                what(),
                v.lost_killed_reader,
                v.lost_otherwise,
                v.duplicated,
                v.reordered,
                v.corrupt,
                if self.hung { " HUNG" } else { "" }
            );
            if !self.left.is_empty() {
                s.push_str(&format!(" left {:?}", self.left));
            }
            s.push_str(&format!("; printed {}", self.outputs));
            for n in &self.notes {
                s.push_str(&format!("; {n}"));
            }
            let kind = [
                v.lost_otherwise > 0,
                v.duplicated > 0,
                v.reordered > 0,
                v.corrupt > 0,
                self.hung,
                !self.left.is_empty(),
            ]
            .iter()
            .enumerate()
            .fold(0u8, |k, (i, &on)| k | (u8::from(on) << i));
            t.note(kind, s);
        }
    }
}

/// Ends a run: stops what runs, `reader --clean`, and judges.
fn conclude(mut s: Session<'_>, victims: u64, kills: u64, before: &HashSet<String>) -> Outcome {
    s.finish();
    let left = s.clean(before);
    let (verdict, faults) = judge_with_details(&s.readers, &s.gens);
    let mut notes = faults;
    notes.append(&mut s.notes);
    if verdict.bad() || s.hung || !left.is_empty() {
        notes.push(format!("ends: {}", s.ends()));
    }
    // A long stream's output is too long for a note; its faults say where.
    let mut outputs = s.outputs();
    if outputs.len() > 300 {
        outputs =
            format!("{} lines by {} readers", s.readers.iter().map(|r| r.lines.len()).sum::<usize>(), s.readers.len());
    }
    Outcome { victims, kills, verdict, hung: s.hung, left, notes, outputs }
}

/// Readers until one has printed a line of the tail generation `tail` (started once writer
/// `last` has ended), each taking what may still wait of generation `g0` (all of it that was not
/// printed) and one line of the tail. `current` is a reader already running, if any.
fn drain(s: &mut Session<'_>, g0: usize, last: usize, mut current: Option<usize>) {
    let mut tail: Option<usize> = None;
    let mut rounds = 0;
    while !s.hung {
        if tail.is_none() && s.ended(last) {
            // No reader asks for more than what was not printed of g0, and one more.
            s.tail(s.gens[g0].sent_asked + 2);
            tail = Some(s.gens.len() - 1);
        }
        match current {
            Some(r) if s.ended(r) => {
                if tail.is_some_and(|t| s.printed_of(t) > 0) {
                    return;
                }
                current = None;
            }
            Some(_) => {
                if !s.step() {
                    s.hung = true;
                }
            }
            None => {
                rounds += 1;
                if rounds > 4 {
                    // The stream never reached its end: as good as a reader that waits forever.
                    s.notes.push("4 readers in a row ended without the next writer's message".into());
                    s.hung = true;
                    return;
                }
                let unprinted = s.gens[g0].sent_asked.saturating_sub(s.printed_of(g0));
                current = Some(s.reader(unprinted + 1, &Wrap::Plain));
            }
        }
    }
}

/// One crash-point run: a reader of `n` and a writer of `n` numbered messages, `side` started
/// with `wrap` (a kill point), then fresh readers and a fresh writer finish the stream.
pub fn crash_run(place: &Place, n: u64, side: Side, wrap: &Wrap) -> Outcome {
    let _turn = posix_shm_turn(place.mechanism);
    let before = if place.mechanism == Mechanism::PosixShm { sem_temps() } else { HashSet::new() };
    let mut s = Session::new(place);
    let (wr, ww) = match side {
        Side::Reader => (wrap.clone(), Wrap::Plain),
        Side::Writer => (Wrap::Plain, wrap.clone()),
    };
    let a = s.reader(n, &wr);
    let w0 = s.writer(n, &ww);
    s.gens[0].must_deliver = side == Side::Reader;
    let victim = if side == Side::Reader { a } else { w0 };
    s.until_ended(victim);
    let kills = u64::from(s.killed(victim));
    let current = (!s.ended(a)).then_some(a);
    drain(&mut s, 0, w0, current);
    conclude(s, 1, kills, &before)
}

/// A run without kills, with each side wrapped as given (to list the calls a run makes).
pub fn plain_run(place: &Place, n: u64, reader: &Wrap, writer: &Wrap) -> (String, String, Outcome) {
    let _turn = posix_shm_turn(place.mechanism);
    let before = if place.mechanism == Mechanism::PosixShm { sem_temps() } else { HashSet::new() };
    let mut s = Session::new(place);
    let a = s.reader(n, reader);
    let w0 = s.writer(n, writer);
    s.until_ended(w0);
    s.until_ended(a);
    let (re, we) = (s.stderr_of(a).to_string(), s.stderr_of(w0).to_string());
    if !s.status(a).is_some_and(|st| st.success()) || !s.status(w0).is_some_and(|st| st.success()) {
        s.notes.push(format!("a run without kills failed: reader {re:?} writer {we:?}"));
    }
    let out = conclude(s, 0, 0, &before);
    (re, we, out)
}

/// The kill points of one side: for each call, its first, middle and last occurrence.
fn occurrences(names: &[String]) -> Vec<(String, u64)> {
    let mut count: Vec<(String, u64)> = Vec::new();
    for n in names {
        match count.iter_mut().find(|(c, _)| c == n) {
            Some((_, k)) => *k += 1,
            None => count.push((n.clone(), 1)),
        }
    }
    let mut points = Vec::new();
    for (name, k) in count {
        let mut picks = vec![1, k.div_ceil(2), k];
        picks.dedup();
        points.extend(picks.into_iter().map(|i| (name.clone(), i)));
    }
    points
}

/// System calls not worth a kill on entry: the runtime's own (signals, thread start, memory) and
/// the exit. Every other call of the main thread after the runtime's start is a kill point.
const NOT_A_POINT: &[&str] = &[
    "rt_sigaction",
    "rt_sigprocmask",
    "sigaltstack",
    "mprotect",
    "madvise",
    "brk",
    "getrandom",
    "gettid",
    "getpid",
    "sched_getaffinity",
    "prlimit64",
    "rseq",
    "set_robust_list",
    "set_tid_address",
    "clone",
    "clone3",
    "sched_yield",
    "exit_group",
    "exit",
];

/// The entry kill points of a strace file: (syscall, absolute occurrence) of each system call
/// made after the Rust runtime's start (its SIGBUS handler), first, middle and last.
fn entry_points(strace_out: &Path) -> Vec<(String, u64)> {
    let text = std::fs::read_to_string(strace_out).unwrap_or_default();
    let calls: Vec<crate::strace::Call> = text.lines().filter_map(crate::strace::parse).collect();
    let start = calls
        .iter()
        .position(|c| c.name == "rt_sigaction" && c.arg(0) == "SIGBUS" && c.arg(1).starts_with('{'))
        .map_or(0, |p| p + 1);
    let mut seen: HashMap<&str, u64> = HashMap::new();
    let mut after: Vec<(String, u64)> = Vec::new();
    for (i, c) in calls.iter().enumerate() {
        let k = seen.entry(c.name.as_str()).or_insert(0);
        *k += 1;
        if i >= start && !NOT_A_POINT.contains(&c.name.as_str()) {
            after.push((c.name.clone(), *k));
        }
    }
    // First, middle and last of each, by absolute occurrence.
    let mut by_name: Vec<(String, Vec<u64>)> = Vec::new();
    for (n, k) in after {
        match by_name.iter_mut().find(|(c, _)| *c == n) {
            Some((_, ks)) => ks.push(k),
            None => by_name.push((n, vec![k])),
        }
    }
    let mut points = Vec::new();
    for (name, ks) in by_name {
        let mut picks = vec![ks[0], ks[(ks.len() - 1) / 2], ks[ks.len() - 1]];
        picks.dedup();
        points.extend(picks.into_iter().map(|k| (name.clone(), k)));
    }
    points
}

/// Every kill point of a pair on a stream of `n`: after each traced call returns (the hook), and
/// on entry to each system call (strace, if found), for both sides.
pub fn kill_points(place: &Place, n: u64) -> (Vec<(Side, Wrap)>, Vec<String>) {
    let mut notes = Vec::new();
    let (re, we, out) = plain_run(place, n, &Wrap::Trace, &Wrap::Trace);
    notes.extend(out.notes.iter().cloned());
    if out.broken() {
        notes.push(format!(
            "the --trace run without kills broke the promise: {} left {:?} {:?}",
            out.outputs, out.left, out.notes
        ));
    }
    let traced =
        |stderr: &str| -> Vec<String> { crate::strace::ours(stderr.as_bytes()).into_iter().map(|c| c.name).collect() };
    let mut points = Vec::new();
    for (side, stderr) in [(Side::Reader, &re), (Side::Writer, &we)] {
        for (call, k) in occurrences(&traced(stderr)) {
            points.push((side, Wrap::After { call, n: k }));
        }
    }
    if strace_found() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (rf, wf) = (dir.path().join("reader"), dir.path().join("writer"));
        let (_, _, out) = plain_run(place, n, &Wrap::StraceAll(rf.clone()), &Wrap::StraceAll(wf.clone()));
        if out.broken() {
            notes.push(format!(
                "the strace run without kills broke the promise: {} left {:?} {:?}",
                out.outputs, out.left, out.notes
            ));
        }
        for (side, f) in [(Side::Reader, &rf), (Side::Writer, &wf)] {
            for (syscall, k) in entry_points(f) {
                points.push((side, Wrap::Entry { syscall, n: k }));
            }
        }
    }
    (points, notes)
}

/// The crash-point test of one pair: every kill point, on a stream of `n`.
pub fn crash_points(m: Mechanism, n: u64) -> Tally {
    let started = Instant::now();
    let place = Place::new(m);
    let mut t = Tally::default();
    let (points, notes) = kill_points(&place, n);
    for n in notes {
        t.note(u8::MAX, n);
    }
    for (side, wrap) in &points {
        let out = crash_run(&place, n, *side, wrap);
        out.tally(&mut t, || {
            format!("{} killed {} (repro: {})", side.name(), wrap.describe(), repro(&place, n, *side, wrap))
        });
    }
    t.secs = started.elapsed().as_secs_f64();
    t
}

/// The commands of a crash run, as one would type them.
fn repro(place: &Place, n: u64, side: Side, wrap: &Wrap) -> String {
    let at = match place.mechanism {
        Mechanism::File => "--path P".to_string(),
        Mechanism::Fifo => "--fifo --path P".into(),
        m => m.variant().map_or("--key K".into(), |v| format!("--key K {v}")),
    };
    let wait = if matches!(place.mechanism, Mechanism::SysvQueue | Mechanism::PosixQueue) { " --wait" } else { "" };
    let (mut r, mut w) = (format!("reader {at} --count {n}"), format!("writer {at}{wait} --numbered --repeat {n} m"));
    match side {
        Side::Reader => r = format!("{} {r}", wrap.repro()),
        Side::Writer => w = format!("{} {w}", wrap.repro()),
    }
    format!("`{r} & {w}`, then a fresh reader and writer")
}

/// When a random kill comes: a pause after the victim's start, or a number of lines printed
/// (by the victim, or for a writer by the readers since its start) and a pause.
#[derive(Clone, Copy, Debug)]
enum When {
    Never,
    Started(Duration),
    Lines(u64, Duration),
}

impl When {
    fn pick(rng: &mut Rng, max_lines: u64) -> When {
        if rng.upto(1) == 0 {
            When::Started(Duration::from_micros(rng.upto(3_000)))
        } else {
            When::Lines(rng.upto(max_lines), Duration::from_micros(rng.upto(400)))
        }
    }
}

/// Random kills of one side of a stream of `n` messages, at least `kills` of them (see
/// [`random_run`]). A run that hangs ends there (everything killed, `reader --clean`), and a new
/// one takes the rest of the stream and of the kills.
pub fn random_kills(m: Mechanism, side: Side, n: u64, kills: u64, seed: u64) -> Tally {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(120);
    let place = Place::new(m);
    let mut rng = Rng::new(seed);
    let mut t = Tally::default();
    let (mut stream, mut left) = (n, kills);
    while left > 0 || t.runs == 0 {
        let out = random_run(&place, side, stream, left, &mut rng, deadline);
        out.tally(&mut t, || format!("{} killed at random (seed {seed})", side.name()));
        if !out.hung || Instant::now() >= deadline {
            break;
        }
        left = left.saturating_sub(out.kills);
        stream = stream.saturating_sub(out.verdict.delivered).max(kills);
    }
    t.secs = started.elapsed().as_secs_f64();
    t
}

/// One run of random kills, until `kills` are done and the stream of `n` is through, or until it
/// hangs. Killed readers take a random count each, up to twice their share of the stream; killed
/// writers send what is left of it. The other side runs to its end: one writer of `n` for the
/// killed readers, readers of 50 each for the killed writers. Then a tail writer and a last
/// reader end the run.
fn random_run(place: &Place, side: Side, n: u64, kills: u64, rng: &mut Rng, deadline: Instant) -> Outcome {
    let m = place.mechanism;
    let _turn = posix_shm_turn(m);
    let before = if m == Mechanism::PosixShm { sem_temps() } else { HashSet::new() };
    let mut s = Session::new(place);
    let (mut victims, mut killed) = (0u64, 0u64);
    let share = (2 * n / kills.max(1)).max(2);
    // The last kill, for the note of a run that then hung.
    let mut last_kill = String::new();
    let mut kill_now = |s: &mut Session<'_>, id: usize, when: When| {
        let pause = match when {
            When::Lines(_, pause) => pause,
            When::Started(_) | When::Never => Duration::ZERO,
        };
        spin(pause);
        s.signal(id, Signal::SIGKILL);
        let printed: usize = s.readers.iter().map(|r| r.lines.len()).sum();
        last_kill = format!("a {} killed at {when:?}, {printed} lines into the run", side.name());
    };
    match side {
        Side::Reader => {
            let w0 = s.writer(n, &Wrap::Plain);
            s.gens[0].must_deliver = true;
            let mut tail: Option<usize> = None;
            // (reader, when to kill it, whether it is the last one)
            let mut current: Option<(usize, When, bool)> = None;
            let mut last_rounds = 0;
            while !s.hung && Instant::now() < deadline {
                if tail.is_none() && s.ended(w0) {
                    // Enough for every reader still to come, killed ones included.
                    s.tail(n + share * kills + 2);
                    tail = Some(s.gens.len() - 1);
                }
                match current {
                    None => {
                        let last = killed >= kills && s.ended(w0);
                        let (count, mut when) = if last {
                            last_rounds += 1;
                            (n.saturating_sub(s.printed_of(0)) + 1, When::Never)
                        } else {
                            let c = 1 + rng.upto(share);
                            (c, When::pick(rng, c - 1))
                        };
                        if last_rounds > 4 {
                            s.notes.push("4 last readers in a row ended without the tail's message".into());
                            s.hung = true;
                            break;
                        }
                        let id = s.reader(count, &Wrap::Plain);
                        victims += u64::from(!last);
                        if let When::Started(pause) = when {
                            std::thread::sleep(pause);
                            kill_now(&mut s, id, when);
                            when = When::Never;
                        }
                        current = Some((id, when, last));
                    }
                    Some((id, _, last)) if s.ended(id) => {
                        killed += u64::from(s.killed(id));
                        if last && tail.is_some_and(|t| s.printed_of(t) > 0) {
                            break;
                        }
                        current = None;
                    }
                    Some((id, when, last)) => {
                        if !s.step() {
                            s.hung = true;
                        } else if let When::Lines(k, _) = when
                            && s.lines_of(id) as u64 >= k
                        {
                            kill_now(&mut s, id, when);
                            current = Some((id, When::Never, last));
                        }
                    }
                }
            }
        }
        Side::Writer => {
            let batch = 50;
            let mut reader: Option<usize> = None;
            // (writer, when to kill it, lines printed at its start)
            let mut writer: Option<(usize, When, usize)> = None;
            let mut tail: Option<usize> = None;
            let printed = |s: &Session<'_>| s.readers.iter().map(|r| r.lines.len()).sum::<usize>();
            while !s.hung && Instant::now() < deadline {
                match writer {
                    None if killed >= kills && printed(&s) as u64 >= n => {
                        // No reader asks for more than a batch.
                        let id = s.tail(batch + 2);
                        tail = Some(s.gens.len() - 1);
                        writer = Some((id, When::Never, printed(&s)));
                    }
                    None => {
                        let left = n.saturating_sub(printed(&s) as u64).max(batch);
                        let id = s.writer(left, &Wrap::Plain);
                        victims += 1;
                        let mut when = When::pick(rng, 60);
                        if let When::Started(pause) = when {
                            std::thread::sleep(pause);
                            kill_now(&mut s, id, when);
                            when = When::Never;
                        }
                        writer = Some((id, when, printed(&s)));
                    }
                    Some((id, ..)) if s.ended(id) && tail.is_none() => {
                        killed += u64::from(s.killed(id));
                        writer = None;
                        continue;
                    }
                    Some(_) => {}
                }
                if reader.is_none_or(|r| s.ended(r)) {
                    if tail.is_some_and(|t| s.printed_of(t) > 0) {
                        break;
                    }
                    reader = Some(s.reader(batch, &Wrap::Plain));
                }
                if !s.step() {
                    s.hung = true;
                } else if let Some((id, when @ When::Lines(k, _), at)) = writer
                    && (printed(&s) - at) as u64 >= k
                {
                    kill_now(&mut s, id, when);
                    writer = Some((id, When::Never, at));
                }
            }
        }
    }
    if Instant::now() >= deadline {
        s.notes.push("stopped at the 120 s limit".into());
    }
    if s.hung {
        s.notes.push(format!("the last kill before the hang: {last_kill}"));
    }
    conclude(s, victims, killed, &before)
}

/// Waits `d` without giving up the CPU: a kill at a random point a few microseconds on.
fn spin(d: Duration) {
    let end = Instant::now() + d;
    while Instant::now() < end {
        std::hint::spin_loop();
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn picks_first_middle_and_last() {
        let names: Vec<String> = ["a", "b", "a", "a", "a"].iter().map(|s| s.to_string()).collect();
        assert_eq!(occurrences(&names), [("a".into(), 1), ("a".into(), 2), ("a".into(), 4), ("b".into(), 1)]);
    }
}
