//! The benchmark runs in the suite (`--quick`), and its JSON is checked for shape and sanity.
//! No test asserts a speed: numbers vary by machine. The bench can neither hang nor lie: killing
//! or stopping either of a row's processes ends it cleanly, and broken transports are caught.
//! Which row each test runs is in [`ROWS`], which must name every row of the bench's table.

use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::Command;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use bench::mechs::{ALL, posix_names, row_key, scratch_path};
use common::{Key, sysv};
use serde_json::Value;
use tests::{Running, bin, cmd};

/// What the tests below check of a row of the bench's table.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Check {
    /// The quick run reports it, in the table, the JSON and the chart.
    Reported,
    /// Killing its child mid-row ends the bench with one line naming the row.
    ChildKilled,
    /// Killing the parent mid-row ends the child, which removes the objects.
    ParentKilled,
    /// This stop signal to the parent mid-row ends both processes with 128+n.
    Stopped(Signal),
    /// Ctrl-C at a terminal (SIGINT to the process group) ends both with 130.
    Interrupted,
    /// SIGTERM to the child alone stops the whole bench with 143.
    ChildStopped,
    /// A receiving end that cuts, repeats or swaps messages is caught and named.
    Broken,
    /// A lost message ends the row instead of hanging it.
    Lost,
    /// `--runs 3` reports the median run's p50.
    Runs,
}

use Check::*;

/// Every row of the bench's table and what this file checks of it. Every row is reported by the
/// quick run and has its child killed mid-row; the other checks each take a few rows of different
/// kinds. A row added to the table must be added here (`every_row_of_the_bench_has_its_tests`
/// fails, naming it, until it is).
const ROWS: &[(&str, &[Check])] = &[
    ("file", &[Reported, ChildKilled]),
    ("pipe", &[Reported, ChildKilled, Stopped(Signal::SIGINT), Broken]),
    ("fifo", &[Reported, ChildKilled]),
    ("unix-socket", &[Reported, ChildKilled, Runs]),
    ("sysv-mq", &[Reported, ChildKilled, ParentKilled, Lost]),
    ("posix-mq", &[Reported, ChildKilled, Stopped(Signal::SIGQUIT)]),
    ("sysv-shm-sem", &[Reported, ChildKilled, Stopped(Signal::SIGHUP)]),
    ("sysv-shm-spin", &[Reported, ChildKilled, ParentKilled, Stopped(Signal::SIGTERM)]),
    ("sysv-shm-inplace", &[Reported, ChildKilled, Interrupted, Broken]),
    ("posix-shm-futex", &[Reported, ChildKilled, ParentKilled, ChildStopped]),
    ("signal", &[Reported, ChildKilled]),
];

/// The rows that get `check`; at least one, so that emptying a check from ROWS fails.
fn rows_with(check: Check) -> Vec<&'static str> {
    let ids: Vec<&str> = ROWS.iter().filter(|(_, checks)| checks.contains(&check)).map(|(id, _)| *id).collect();
    assert!(!ids.is_empty(), "no row of ROWS gets {check:?}");
    ids
}

#[test]
fn every_row_of_the_bench_has_its_tests() {
    for m in ALL {
        let checks = ROWS.iter().find(|(id, _)| *id == m.id).map(|(_, checks)| *checks);
        let checks = checks
            .unwrap_or_else(|| panic!("the bench's row {} has no tests: add it to ROWS in tests/tests/bench.rs", m.id));
        for every in [Reported, ChildKilled] {
            assert!(checks.contains(&every), "{}: every row gets {every:?}", m.id);
        }
    }
    for (id, _) in ROWS {
        assert!(ALL.iter().any(|m| m.id == *id), "ROWS has {id}, which is not a row of the bench");
    }
}

#[test]
fn list_prints_each_row_and_what_it_is() {
    let width = ALL.iter().map(|m| m.id.len()).max().unwrap_or(0);
    let want: String = ALL.iter().map(|m| format!("{:width$}  {}\n", m.id, m.about)).collect();
    cmd("bench", "bench").arg("--list").assert().success().stdout(want).stderr("");
    cmd("bench", "bench").args(["--list", "--quick"]).assert().code(2);
}

#[test]
fn the_bench_readme_names_every_row() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root");
    let readme = std::fs::read_to_string(root.join("bench/README.md")).expect("bench/README.md");
    for m in ALL {
        assert!(readme.contains(&format!("`{}`", m.id)), "bench/README.md does not name the row `{}`", m.id);
    }
}

/// None of the SysV or POSIX objects or scratch directories of the first 64 rows of the bench
/// whose PID is `pid` may be left.
fn assert_nothing_left(pid: u32) {
    let mut left = Vec::new();
    for k in row_key(pid, 0)..row_key(pid, 64) {
        let key = Key::new(k);
        if sysv::msgget(key, 0).is_ok() || sysv::shmget(key, 0, 0).is_ok() || sysv::semget(key, 0, 0).is_ok() {
            left.push(format!("SysV object {key}"));
        }
        let (down, up) = posix_names(k);
        for name in [down, up] {
            if std::path::Path::new(&format!("/dev/shm{name}")).exists() {
                left.push(format!("POSIX shared memory {name}"));
            }
            if nix::mqueue::mq_unlink(name.as_str()).is_ok() {
                left.push(format!("POSIX queue {name}"));
            }
        }
        if let Ok(dir) = scratch_path(k)
            && dir.exists()
        {
            left.push(format!("scratch directory {}", dir.display()));
        }
    }
    assert!(left.is_empty(), "the bench left {left:?}");
}

#[test]
fn quick_run_reports_every_mechanism_with_sane_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let (json, svg) = (dir.path().join("bench.json"), dir.path().join("bench.svg"));
    let run = Running::spawn(
        // 300 round trips a row, not 1000: a loaded machine stretches spinning rows many times.
        Command::new(bin("bench", "bench"))
            .args(["--quick", "--rtts", "300", "--json"])
            .arg(&json)
            .arg("--svg")
            .arg(&svg),
    );
    let pid = run.pid.as_raw() as u32;
    let done = run.finish();
    assert!(done.status.success(), "{}", done.stderr);
    assert_nothing_left(pid);
    let table = done.stdout_str();
    let v: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();

    assert!(v["machine"]["cpus"].as_u64().unwrap() >= 1);
    assert!(v["machine"]["kernel"].as_str().is_some_and(|k| !k.is_empty()));
    let results = v["results"].as_array().unwrap();
    let chart = std::fs::read_to_string(&svg).unwrap();
    assert!(chart.starts_with("<svg"), "an SVG chart");
    for id in rows_with(Reported) {
        assert!(results.iter().any(|r| r["mechanism"] == id), "no result for {id}");
        assert!(table.contains(id), "{id} missing from the table");
        assert!(chart.contains(id), "{id} missing from the chart");
    }
    for r in results {
        let rtt = &r["rtt_ns"];
        let (min, p50, p99, p999) = (
            rtt["min"].as_u64().unwrap(),
            rtt["p50"].as_u64().unwrap(),
            rtt["p99"].as_u64().unwrap(),
            rtt["p999"].as_u64().unwrap(),
        );
        assert!(min > 0 && min <= p50 && p50 <= p99 && p99 <= p999, "{r}");
        assert!(r["throughput"]["msgs_per_s"].as_f64().unwrap() > 0.0, "{r}");
        assert!(r["throughput"]["mb_per_s"].as_f64().unwrap() > 0.0, "{r}");
        assert!(["same", "cross", "none"].contains(&r["placement"].as_str().unwrap()), "{r}");
        assert!(r["size"].as_u64().unwrap() >= 8, "{r}");
    }
    assert!(v["limits"]["memcpy_mb_per_s"]["4096"].as_f64().unwrap() > 0.0);
}

#[test]
fn an_unknown_mechanism_is_bad_usage() {
    cmd("bench", "bench")
        .args(["--only", "carrier-pigeon"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("unknown mechanism 'carrier-pigeon'"));
}

/// A bench that runs one row of `id` until it is stopped; returns it and its child's PID, once
/// the child is in the middle of the row.
fn endless_row(id: &str) -> (Running, Pid) {
    endless_row_with(id, &mut Command::new(bin("bench", "bench")))
}

fn endless_row_with(id: &str, cmd: &mut Command) -> (Running, Pid) {
    let mut run =
        Running::spawn(cmd.args(["--quick", "--no-limits", "--announce", "--rtts", "1000000000", "--only", id]));
    let line = run.wait_for_stderr("measuring");
    let pid = line.split_whitespace().nth(2).and_then(|p| p.parse().ok()).expect("the child's PID");
    (run, Pid::from_raw(pid))
}

/// Waits until `pid` (not a child of ours) has ended: pidfd_open, then poll, bounded. True if it
/// ended.
fn ended(pid: Pid) -> bool {
    // SAFETY: pidfd_open takes a PID and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) } as i32;
    if fd < 0 {
        return nix::errno::Errno::last() == nix::errno::Errno::ESRCH; // gone and reaped already
    }
    // SAFETY: fd is a fresh descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut p = libc::pollfd { fd: std::os::fd::AsRawFd::as_raw_fd(&fd), events: libc::POLLIN, revents: 0 };
    let ms = tests::running::TIMEOUT.as_millis() as i32;
    // SAFETY: p is one valid pollfd.
    unsafe { libc::poll(&mut p, 1, ms) == 1 }
}

#[test]
fn killing_the_child_of_any_row_ends_the_bench_with_one_line_and_nothing_left() {
    for id in rows_with(ChildKilled) {
        let (run, child) = endless_row(id);
        kill(child, Signal::SIGKILL).unwrap();
        ends_with_one_line(run, id, "killed by SIGKILL");
    }
}

#[test]
fn killing_the_parent_ends_the_child_which_removes_the_objects() {
    for id in rows_with(ParentKilled) {
        let (run, child) = endless_row(id);
        run.signal(Signal::SIGKILL);
        assert!(ended(child), "{id}: the child outlived its parent");
        let pid = run.pid.as_raw() as u32;
        let done = run.finish();
        assert_eq!(done.shell_status(), 137, "{id}");
        assert!(done.stderr.contains("the parent is gone"), "{id}: {}", done.stderr);
        assert_nothing_left(pid);
    }
}

#[test]
fn stop_signals_end_both_processes_with_128_plus_n_and_nothing_left() {
    let cases: Vec<(Signal, &str)> = ROWS
        .iter()
        .flat_map(|(id, checks)| {
            checks.iter().filter_map(move |c| if let Stopped(sig) = c { Some((*sig, *id)) } else { None })
        })
        .collect();
    assert!(!cases.is_empty(), "no row of ROWS gets a Stopped check");
    for (sig, id) in cases {
        let (run, child) = endless_row(id);
        run.signal(sig);
        assert!(ended(child), "{id}: the child outlived a {sig} to its parent");
        let pid = run.pid.as_raw() as u32;
        let done = run.finish();
        done.assert_no_panic();
        assert_eq!(done.shell_status(), 128 + sig as i32, "{id}, {sig}: {}", done.stderr);
        assert_nothing_left(pid);
    }
    // Ctrl-C at a terminal: the whole process group gets SIGINT.
    for id in rows_with(Interrupted) {
        let (run, child) = endless_row_with(id, Command::new(bin("bench", "bench")).process_group(0));
        nix::sys::signal::killpg(run.pid, Signal::SIGINT).unwrap();
        assert!(ended(child), "{id}: the child outlived a Ctrl-C");
        let pid = run.pid.as_raw() as u32;
        let done = run.finish();
        done.assert_no_panic();
        assert_eq!(done.shell_status(), 130, "{id}: {}", done.stderr);
        assert_nothing_left(pid);
    }
    // A stop signal to the child alone stops the whole bench the same way.
    for id in rows_with(ChildStopped) {
        let (run, child) = endless_row(id);
        kill(child, Signal::SIGTERM).unwrap();
        let pid = run.pid.as_raw() as u32;
        let done = run.finish();
        assert_eq!(done.shell_status(), 143, "{id}: {}", done.stderr);
        assert!(
            done.stderr.contains(&format!("{id} cross 64 B")) || done.stderr.contains(&format!("{id} same 64 B")),
            "{id}: {}",
            done.stderr
        );
        assert_nothing_left(pid);
    }
}

#[test]
fn broken_transports_are_caught_and_named() {
    for (how, says) in [
        ("drop-middle", "bytes 8..16 are not this message's"),
        ("repeat", "(lost, repeated or reordered)"),
        ("swap", "(lost, repeated or reordered)"),
    ] {
        for id in rows_with(Broken) {
            ends_with_one_line(broken(id, how), id, says);
        }
    }
}

#[test]
fn runs_report_the_median_p50_of_k_runs() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("bench.json");
    let run = Running::spawn(
        Command::new(bin("bench", "bench"))
            .args(["--quick", "--no-limits", "--only", &rows_with(Runs).join(","), "--runs", "3", "--json"])
            .arg(&json),
    );
    let done = run.finish();
    assert!(done.status.success(), "{}", done.stderr);
    assert!(done.stdout_str().contains("spread"), "{}", done.stdout_str());
    let v: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    for r in v["results"].as_array().unwrap() {
        let mut p50s: Vec<u64> = r["p50_ns_of_runs"].as_array().unwrap().iter().map(|p| p.as_u64().unwrap()).collect();
        assert_eq!(p50s.len(), 3, "{r}");
        p50s.sort_unstable();
        assert_eq!(r["rtt_ns"]["p50"].as_u64(), Some(p50s[1]), "the median run's p50: {r}");
    }
}

#[test]
fn a_lost_message_ends_the_row_instead_of_hanging_it() {
    for id in rows_with(Lost) {
        ends_with_one_line(broken(id, "lose"), id, "no message moved");
    }
}

/// A quick run of row `id` over a transport broken on purpose (`--break how`).
fn broken(id: &str, how: &str) -> Running {
    Running::spawn(Command::new(bin("bench", "bench")).args(["--quick", "--no-limits", "--only", id, "--break", how]))
}

/// The bench ended with status 1, its last stderr line names the row and `cause`, and nothing of
/// it is left.
fn ends_with_one_line(run: Running, id: &str, cause: &str) {
    let pid = run.pid.as_raw() as u32;
    let done = run.finish();
    done.assert_no_panic();
    assert_eq!(done.shell_status(), 1, "{id}: {}", done.stderr);
    let last = done.stderr.lines().last().unwrap_or_default().to_string();
    assert!(
        last.starts_with(&format!("bench: {id} ")) && last.contains(cause),
        "{id}: one line naming the row and the cause ({cause}): {}",
        done.stderr
    );
    assert_nothing_left(pid);
}

/// The ratios a row line of the table prints against its limits: (`1.4` of `1.4x cacheline`,
/// or `97` of `97% transfer`, with the limit's name).
fn printed_ratios(stdout: &str) -> Vec<(f64, String)> {
    let mut found = Vec::new();
    for line in stdout.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        for w in words.windows(2) {
            let limit = w[1].trim_end_matches(',');
            if let Some(x) = w[0].strip_suffix('x').filter(|_| limit == "cacheline") {
                found.push((x.parse().unwrap(), format!("{x}x cacheline: {line}")));
            }
            if let Some(p) = w[0].strip_suffix('%').filter(|_| limit == "transfer" || limit == "memcpy") {
                found.push((p.parse().unwrap(), format!("{p}% {limit}: {line}")));
            }
        }
    }
    found
}

/// No row prints a ratio below its floor (1.0x the cache line) or above its ceiling (100% of the
/// transfer or of memcpy): the limits are the best of short trials measured beside each run, and
/// a row that still beats one says so ("limit re-measured") instead. `--limits-skew` makes the
/// limits look as a noisy moment measured them, so the second case happens every time.
#[test]
fn no_row_contradicts_its_limits() {
    if bench::run::cpus().unwrap().len() < 2 {
        eprintln!("skipped: the limits between two CPUs need two");
        return;
    }
    for skew in ["1", "30"] {
        let run = Running::spawn(Command::new(bin("bench", "bench")).args([
            "--quick",
            "--only",
            "sysv-shm-spin,sysv-shm-inplace,posix-shm-futex",
            "--limits-skew",
            skew,
        ]));
        let done = run.finish();
        assert!(done.status.success(), "{}", done.stderr);
        let out = done.stdout_str();
        for (ratio, what) in printed_ratios(&out) {
            if what.split(':').next().is_some_and(|r| r.ends_with("cacheline")) {
                assert!(ratio >= 1.0, "below the floor: {what}");
            } else {
                assert!(ratio <= 100.0, "above the ceiling: {what}");
            }
        }
        if skew != "1" {
            assert!(out.contains("limit re-measured"), "a row that beats a limit says so:\n{out}");
        }
    }
}

/// The calls/msg column and the JSON's `calls_per_msg`: a pipe and a SysV queue make one call
/// to send a message and one to receive it, counted by the traced wrappers on each side.
#[test]
fn system_calls_per_message_are_counted_on_each_side() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("bench.json");
    let run = Running::spawn(
        Command::new(bin("bench", "bench"))
            .args(["--quick", "--no-limits", "--pin", "same", "--only", "pipe,sysv-mq", "--json"])
            .arg(&json),
    );
    let done = run.finish();
    assert!(done.status.success(), "{}", done.stderr);
    assert!(done.stdout_str().contains("calls/msg"), "{}", done.stdout_str());
    let v: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    for r in v["results"].as_array().unwrap() {
        let calls = &r["calls_per_msg"];
        // One each; a call the kernel cut short (EINTR under load) and made again counts too, so
        // a few in thousands may be more: within 1%, and never 2 calls a message.
        for side in ["send", "recv"] {
            let n = calls[side].as_f64().unwrap_or(0.0);
            assert!((1.0..1.01).contains(&n), "{side}: {n} calls a message, not 1: {r}");
        }
    }
}

/// `--vs-c` compiles the C ping-pong of a row, runs it beside ours and prints both, with the calls
/// each makes per message.
#[test]
fn vs_c_sets_a_row_beside_its_c_ping_pong() {
    let run = Running::spawn(
        Command::new(bin("bench", "bench"))
            .args(["--vs-c", "--quick", "--runs", "1", "--pin", "same", "--only", "pipe"]),
    );
    let done = run.finish();
    assert!(done.status.success(), "{}", done.stderr);
    let out = done.stdout_str();
    let row = out.lines().find(|l| l.starts_with("pipe ")).unwrap_or_else(|| panic!("no pipe row:\n{out}"));
    let words: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(words[words.len() - 2..], ["1+1", "1+1"], "{row}");
}
