//! signal-ipc end to end (claims G1-G11): real signals between real processes.

use std::os::unix::process::CommandExt;
use std::process::Command;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use predicates::prelude::*;
use tests::{Running, bin, cmd};

fn reader() -> Command {
    Command::new(bin("signal-ipc", "reader"))
}

/// Starts the reader and waits for its ready line; returns it and its PID as printed.
fn ready_reader(args: &[&str]) -> (Running, String) {
    let mut r = Running::spawn(reader().args(args));
    let line = r.wait_for_stderr("reader: pid");
    let pid = r.pid.to_string();
    assert!(line.starts_with(&format!("reader: pid {pid}, ")), "{line}");
    (r, pid)
}

#[test]
fn the_writer_sends_sigint_as_the_ready_line_says() {
    let (r, pid) = ready_reader(&[]);
    let line =
        format!("reader: pid {pid}, waiting for SIGINT (send it with: cargo run -p signal-ipc --bin writer -- {pid})");
    cmd("signal-ipc", "writer").arg(&pid).assert().success().stdout("").stderr("");
    let done = r.finish();
    assert!(done.status.success(), "{done:?}");
    assert_eq!(done.stdout_str(), "Catch SIGINT!\n");
    assert!(done.stderr.contains(&line), "{}", done.stderr);
}

#[test]
fn ctrl_c_is_sigint_to_the_foreground_process_group() {
    // A process group of its own: the test runner's group is never signalled.
    let mut r = Running::spawn(reader().process_group(0));
    r.wait_for_stderr("waiting for SIGINT");
    killpg(Pid::from_raw(r.pid.as_raw()), Signal::SIGINT).unwrap();
    let done = r.finish();
    assert!(done.status.success());
    assert_eq!(done.stdout_str(), "Catch SIGINT!\n");
}

#[test]
fn ignore_survives_sigint_and_stops_on_sigterm() {
    let (r, pid) = ready_reader(&["--ignore"]);
    cmd("signal-ipc", "writer").arg(&pid).assert().success(); // SIGINT: discarded
    cmd("signal-ipc", "writer").args([&pid, "--signal", "TERM"]).assert().success();
    let done = r.finish();
    assert!(done.status.success(), "SIGINT must not have killed it: {done:?}");
    assert!(
        predicate::str::is_match(r"^Caught SIGTERM from pid \d+: exiting\n$").unwrap().eval(&done.stdout_str()),
        "{}",
        done.stdout_str()
    );
}

#[test]
fn queued_value_and_sender_pid_arrive() {
    let (r, pid) = ready_reader(&["--signal", "usr1"]);
    cmd("signal-ipc", "writer").args([&pid, "--signal", "SIGUSR1", "--value", "-7"]).assert().success();
    let out = r.finish().stdout_str();
    assert!(predicate::str::is_match(r"^Catch SIGUSR1 from pid \d+ value -7\n$").unwrap().eval(&out), "{out}");
}

#[test]
fn ten_thousand_realtime_values_arrive_all_in_order() {
    let (r, pid) = ready_reader(&["--signal", "RTMIN+1", "--count", "10000"]);
    cmd("signal-ipc", "writer")
        .args([&pid, "--signal", "rtmin+1", "--value", "0", "--count", "10000"])
        .assert()
        .success();
    let done = r.finish();
    assert!(done.status.success());
    let values: Vec<i32> = done
        .stdout_str()
        .lines()
        .map(|l| l.rsplit_once(" value ").expect("a value").1.parse().expect("a number"))
        .collect();
    assert_eq!(values, (0..10_000).collect::<Vec<_>>());
    assert!(done.stdout_str().starts_with("Catch SIGRTMIN+1 from pid "));
}

#[test]
fn sigtstp_can_be_waited_for_and_says_who_sent_it() {
    let (r, pid) = ready_reader(&["--signal", "TSTP"]);
    cmd("signal-ipc", "writer").args([&pid, "--signal", "20"]).assert().success();
    let out = r.finish().stdout_str();
    assert!(out.starts_with("Catch SIGTSTP from pid "), "{out}");
}

#[test]
fn kill_and_stop_cannot_be_waited_for() {
    for name in ["KILL", "SIGSTOP"] {
        cmd("signal-ipc", "reader")
            .args(["--signal", name])
            .assert()
            .code(2)
            .stderr(predicate::str::contains("cannot be caught, blocked or ignored"));
    }
}

#[test]
fn bad_pids_and_names_are_refused_before_any_call() {
    for (pid, why) in
        [("0", "whole process group"), ("-1", "every process"), ("-42", "process group 42"), ("x", "not a PID")]
    {
        cmd("signal-ipc", "writer").arg(pid).assert().code(2).stderr(predicate::str::contains(why));
    }
    // PID 1 too (issue 23): one line says why and names the option that sends anyway.
    let refused = cmd("signal-ipc", "writer").arg("1").assert().code(2).get_output().stderr.clone();
    let refused = String::from_utf8_lossy(&refused);
    assert_eq!(
        refused.lines().next(),
        Some(
            "error: invalid value '1' for '<PID>': PID 1 is init (in a container often your shell or application, which \
         SIGINT ends); pass --allow-init if you mean it"
        ),
        "{refused}"
    );
    cmd("signal-ipc", "writer")
        .args(["1", "--signal", "SIGALRAM"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("unknown signal 'SIGALRAM'").and(predicate::str::contains("ALRM")));
}

/// `--allow-init` sends to PID 1: checked in a PID namespace of its own, where the writer is PID 1
/// itself (init ignores a signal it has no handler for), so no real init is touched.
#[test]
fn allow_init_sends_to_pid_1() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root for a PID namespace (unshare --pid)");
        return;
    }
    let out = Command::new("unshare")
        .args(["--pid", "--fork", "--kill-child"])
        .arg(bin("signal-ipc", "writer"))
        .args(["--allow-init", "1", "--trace"])
        .output()
        .expect("run unshare");
    let err = String::from_utf8_lossy(&out.stderr);
    if err.contains("unshare failed") {
        eprintln!("skipped: no PID namespace here: {err}");
        return;
    }
    assert!(out.status.success(), "{out:?}");
    assert!(err.contains("kill(1, SIGINT)") && err.trim_end().ends_with("= 0"), "{err}");
}

#[test]
fn a_dead_pid_is_no_such_process() {
    let mut child = Command::new(bin("signal-ipc", "writer")).arg("--version").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap(); // reaped: the PID names no process now
    cmd("signal-ipc", "writer")
        .arg(pid.to_string())
        .assert()
        .code(1)
        .stderr(predicate::str::starts_with(format!("writer: kill(pid {pid}): No such process")));
}

#[test]
fn another_users_process_is_eperm_explained() {
    let Some((_dir, mut writer)) = tests::as_nobody("signal-ipc", "writer") else { return };
    let (r, pid) = ready_reader(&[]);
    let out = writer.arg(&pid).output().expect("setpriv");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with(&format!("writer: kill(pid {pid}): Operation not permitted; you may signal only")),
        "{err}"
    );
    cmd("signal-ipc", "writer").arg(&pid).assert().success();
    assert_eq!(r.finish().stdout_str(), "Catch SIGINT!\n");
}

#[test]
fn demo_shows_every_claim() {
    let out = cmd("signal-ipc", "demo").assert().success().get_output().stdout.clone();
    let out = String::from_utf8(out).unwrap();
    for want in [
        "raised SIGUSR1 while it is ignored",
        "while blocked: pending = true, handler ran = false",
        "after unblocking: handler ran = true",
        "was killed by SIGTERM",
        "sigaction(SIGKILL, handler): fails with EINVAL",
        "sigaction(SIGSTOP, SIG_IGN): fails with EINVAL",
        "the child did not stop",
        "stopped by SIGSTOP; sending SIGCONT",
        "resumed by SIGCONT",
        "was killed by SIGSEGV",
        "was killed by SIGUSR1",
        "\"SIGALRAM\" is a misspelling",
        "was killed by SIGALRM",
        "\"SIGSTP\" is a misspelling",
        "34) SIGRTMIN",
        "64) SIGRTMAX",
        "SIGRTMIN arrived 3 times, in order [1, 2, 3]; SIGUSR1 arrived 1 time(s)",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
}

#[test]
fn several_standard_signals_get_a_warning_real_time_ones_do_not() {
    let (r, pid) = ready_reader(&["--signal", "RTMIN+1", "--count", "2"]);
    cmd("signal-ipc", "writer").args([&pid, "--signal", "RTMIN+1", "--count", "2"]).assert().success().stderr("");
    assert!(r.finish().status.success());
    let (r, pid) = ready_reader(&["--signal", "USR1"]);
    cmd("signal-ipc", "writer")
        .args([&pid, "--signal", "USR1", "--value", "1", "--count", "1"])
        .assert()
        .success()
        .stderr("");
    assert!(r.finish().status.success());
    // To a child that ignores SIGUSR2 for the purpose: the warning is what counts.
    let mut target = Command::new("bash")
        .args(["-c", "trap '' USR2; echo ready; read; exit 0"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("bash");
    let mut ready = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(target.stdout.take().expect("stdout")), &mut ready)
        .expect("read");
    assert_eq!(ready, "ready\n");
    cmd("signal-ipc", "writer")
        .args([&target.id().to_string(), "--signal", "USR2", "--count", "3"])
        .assert()
        .success()
        .stderr(predicate::str::contains("SIGUSR2 is a standard signal").and(predicate::str::contains("RTMIN+1")));
    drop(target.stdin.take()); // read sees end of file
    assert!(target.wait().expect("wait").success());
}

#[test]
fn count_without_signal_is_bad_usage() {
    cmd("signal-ipc", "reader").args(["--count", "3"]).assert().code(2).stderr(predicate::str::contains("--signal"));
}

#[test]
fn standard_signals_merge_while_realtime_ones_queue() {
    // 10,000 queued values in order are ten_thousand_realtime_values_arrive_all_in_order; here,
    // that SIGUSR1 merges: the demo's child blocks it, receives three and takes it once.
    cmd("signal-ipc", "demo").assert().success().stdout(predicate::str::contains("SIGUSR1 arrived 1 time(s)"));
}

/// The calls the pair's `--trace` shows, as strace's `-e trace=` names them.
const SIGNAL_CALLS: [&str; 6] =
    ["rt_sigaction", "rt_sigprocmask", "rt_sigsuspend", "rt_sigtimedwait", "kill", "rt_sigqueueinfo"];

/// What must agree between a traced call and strace's: everything but addresses that only glibc
/// knows or that differ by design (a handler's address is kept as "handler"; glibc's SA_RESTORER
/// and trampoline are left out; a struct not filled in, on failure, is a pointer either way).
fn signal_call_key(c: &tests::strace::Call) -> Option<String> {
    let action = |a: &str| -> String {
        if !a.starts_with('{') {
            return if a == "NULL" { a.into() } else { "pointer".into() };
        }
        tests::strace::split_args(&a[1..a.len() - 1])
            .into_iter()
            .filter(|f| !f.starts_with("sa_restorer="))
            .map(|f| match f.strip_prefix("sa_handler=") {
                Some(h) if h.starts_with("0x") => "sa_handler=handler".into(),
                _ => f.replace("SA_RESTORER|", "").replace("sa_flags=SA_RESTORER", "sa_flags=0"),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let key = match c.name.as_str() {
        // strace also shows the runtime's own (SIGSEGV, SIGBUS, SIGPIPE) and the read-back of
        // glibc's restorer (a NULL new action), which the trace does not print.
        "rt_sigaction" if c.arg(1) == "NULL" => return None,
        "rt_sigaction" => format!("{} {} {} {}", c.arg(0), action(c.arg(1)), action(c.arg(2)), c.arg(3)),
        "rt_sigtimedwait" => format!("{} {} {} {}", c.arg(0), action(c.arg(1)), c.arg(2), c.arg(3)),
        _ => c.args.join(", "),
    };
    Some(format!("{}({key}) = {}", c.name, c.result))
}

/// Issue 15: reader and writer with --trace, each under strace; their signal calls (signal,
/// handler kind, masks, target, siginfo, result) are the ones strace saw, in the same order.
#[test]
fn trace_shows_the_signal_calls_as_strace_does() {
    if !tests::strace::available() {
        return;
    }
    // The reader's arguments, the writer's, and the calls each must show.
    type Case<'a> = (&'a [&'a str], &'a [&'a str], &'a [&'a str], &'a [&'a str]);
    let cases: [Case; 3] = [
        (&[], &[], &["rt_sigprocmask", "rt_sigaction", "rt_sigsuspend"], &["kill"]),
        (
            &["--signal", "USR1"],
            &["--signal", "USR1", "--value", "5"],
            &["rt_sigprocmask", "rt_sigtimedwait"],
            &["rt_sigqueueinfo"],
        ),
        (&["--ignore"], &["--signal", "TERM"], &["rt_sigaction", "rt_sigprocmask", "rt_sigtimedwait"], &["kill"]),
    ];
    for (reader_args, writer_args, reader_calls, writer_calls) in cases {
        let mut straced_reader =
            tests::strace::Straced::new(reader().arg("--trace").args(reader_args), &SIGNAL_CALLS, false);
        let mut r = Running::spawn(&mut straced_reader.command);
        let line = r.wait_for_stderr("reader: pid");
        let pid = line["reader: pid ".len()..].split(',').next().expect("the reader's pid").to_string();
        let mut w = Command::new(bin("signal-ipc", "writer"));
        w.arg("--trace").arg(&pid).args(writer_args);
        let mut straced_writer = tests::strace::Straced::new(&w, &SIGNAL_CALLS, false);
        let wrote = Running::spawn(&mut straced_writer.command).finish();
        assert!(wrote.status.success(), "{wrote:?}");
        let read = r.finish();
        assert!(read.status.success(), "{read:?}");
        for (done, straced, calls) in [(&read, &straced_reader, reader_calls), (&wrote, &straced_writer, writer_calls)]
        {
            let ours = tests::strace::ours(done.stderr.as_bytes());
            // Shown only if an assertion below fails (the harness keeps a passing test's output).
            eprintln!("{}", tests::strace::side_by_side(&ours, &straced.path()));
            for name in calls {
                tests::strace::assert_in_order(&ours, &straced.calls(), name, signal_call_key);
            }
            // Calls only the pair makes (the stop thread's masks and sigwait are not among them):
            // every one strace saw is traced, whole.
            let only_ours: Vec<&str> =
                calls.iter().copied().filter(|c| ["kill", "rt_sigqueueinfo", "rt_sigsuspend"].contains(c)).collect();
            if !only_ours.is_empty() {
                tests::strace::assert_exact(&ours, &straced.calls(), &only_ours);
            }
        }
    }
}
