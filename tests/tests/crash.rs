//! Crash-safe delivery (issue 20): each pair's writer or reader killed with SIGKILL at every IPC
//! call it makes (on entry, with strace; just after it returns, with the trace layer's hook) and
//! at random moments of 2,000-message streams; the next processes must deliver the rest at most
//! once and in order, never hang, lose at most what a killed reader had taken, and `reader
//! --clean` must leave nothing. Each test prints its table (`cargo test -p tests --test crash --
//! --nocapture`); the harness is tests/src/crash.rs. `CRASH_SEED=N` repeats a run's random kills,
//! `CRASH_PAIRS=file,fifo` runs only those pairs.

use std::sync::Mutex;

use tests::crash::{self, PAIRS, Side, Tally, pair_name};

/// A stream this long for the crash points: each call's first, middle and last occurrence differ.
const POINTS_STREAM: u64 = 4;
/// The random kills' stream, and the kills each side of each pair gets at least.
const RANDOM_STREAM: u64 = 2_000;
const RANDOM_KILLS: u64 = 50;

/// The tests of this file, for the table of all of them, printed by the last one to end.
const TESTS: usize = 3;
static ALL: Mutex<(usize, Vec<(&'static str, Tally)>)> = Mutex::new((0, Vec::new()));

/// Runs `each` for every pair at once (each on its own key and directory), prints the table and
/// adds it to the table of all tests.
fn every_pair(title: &str, each: impl Fn(usize, tests::Mechanism) -> Tally + Sync) -> Vec<(&'static str, Tally)> {
    // CRASH_PAIRS=file,fifo runs those pairs only (to reproduce one).
    let only = std::env::var("CRASH_PAIRS").ok();
    let wanted = |m: tests::Mechanism| only.as_deref().is_none_or(|o| o.split(',').any(|p| p == pair_name(m)));
    // Built first, so that the times are the runs' own.
    for m in PAIRS.into_iter().filter(|&m| wanted(m)) {
        tests::bin(m.package(), "reader");
        tests::bin(m.package(), "writer");
    }
    let rows: Vec<(&'static str, Tally)> = std::thread::scope(|scope| {
        let each = &each;
        let handles: Vec<_> = PAIRS
            .iter()
            .enumerate()
            .filter(|&(_, &m)| wanted(m))
            .map(|(i, &m)| (pair_name(m), scope.spawn(move || each(i, m))))
            .collect();
        handles.into_iter().map(|(name, h)| (name, h.join().expect("a pair's runs panicked"))).collect()
    });
    let secs = rows.iter().map(|(_, t)| t.secs).fold(0.0, f64::max);
    println!("{}", crash::table(&format!("{title} ({secs:.1} s)"), &rows));
    add_to_all(&rows);
    rows
}

/// Adds a test's rows to the table of all tests, and prints that table after the last test.
fn add_to_all(rows: &[(&'static str, Tally)]) {
    let mut all = ALL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    all.0 += 1;
    for (name, t) in rows {
        match all.1.iter_mut().find(|(n, _)| n == name) {
            Some((_, sum)) => sum.merge(t),
            None => {
                let mut sum = Tally::default();
                sum.merge(t);
                all.1.push((name, sum));
            }
        }
    }
    if all.0 == TESTS {
        let mut sums = all.1.clone();
        sums.sort_by_key(|(n, _)| PAIRS.iter().position(|&m| pair_name(m) == *n));
        println!(
            "{}",
            crash::table("all crash tests of this run (crash points + random reader and writer kills)", &sums)
        );
    }
}

fn assert_kept(rows: &[(&str, Tally)], min_kills: u64) {
    let broken: Vec<String> = rows
        .iter()
        .filter(|(_, t)| t.broken() || t.kills < min_kills)
        .map(|(n, t)| format!("{n} ({} kills)", t.kills))
        .collect();
    assert!(broken.is_empty(), "the promise does not hold for {broken:?}: see the table above");
}

#[test]
fn sigkill_at_every_call_of_either_side() {
    if !crash::strace_found() {
        println!("skipped: strace not found");
        add_to_all(&[]);
        return;
    }
    let rows = every_pair("crash points: SIGKILL on entry to and just after each IPC call", |_, m| {
        crash::crash_points(m, POINTS_STREAM)
    });
    assert_kept(&rows, 1);
}

#[test]
fn sigkill_of_readers_at_random_moments() {
    let seed = crash::seed();
    println!("random reader kills: seed {seed} (CRASH_SEED={seed} repeats them)");
    let rows = every_pair("random reader kills of 2,000-message streams", |i, m| {
        crash::random_kills(m, Side::Reader, RANDOM_STREAM, RANDOM_KILLS, seed ^ ((i as u64) << 8))
    });
    assert_kept(&rows, RANDOM_KILLS);
}

#[test]
fn sigkill_of_writers_at_random_moments() {
    let seed = crash::seed();
    println!("random writer kills: seed {seed} (CRASH_SEED={seed} repeats them)");
    let rows = every_pair("random writer kills of 2,000-message streams", |i, m| {
        crash::random_kills(m, Side::Writer, RANDOM_STREAM, RANDOM_KILLS, seed ^ ((i as u64) << 8) ^ 1)
    });
    assert_kept(&rows, RANDOM_KILLS);
}

/// The hook the crash points use: SIGKILL just after the Nth return of a call (here the second
/// msgsnd: two messages are in the queue, the third was never sent); a value it cannot read is
/// said on stderr and ignored.
#[test]
fn the_kill_hook_kills_just_after_the_nth_call() {
    use std::os::unix::process::ExitStatusExt;
    let place = tests::Place::new(tests::Mechanism::SysvQueue);
    let hooked = |value: &str| {
        let mut w = place.writer();
        w.env(common::trace::KILL_AFTER_VAR, value).args(["--numbered", "--repeat", "3", "m"]);
        w.output().expect("run the writer")
    };
    let out = hooked("msgsnd:2");
    assert_eq!(out.status.signal(), Some(libc::SIGKILL), "{out:?}");
    tests::run(place.reader().args(["--count", "2"])).success().stdout("0 m\n1 m\n");
    let out = hooked("msgsnd");
    assert!(out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("IPC_NOTES_KILL_AFTER=msgsnd ignored: the test hook takes CALL:N"), "{err}");
    tests::run(place.reader().args(["--count", "3"])).success().stdout("0 m\n1 m\n2 m\n");
    place.assert_clean();
}
