//! Conventions every binary keeps: --version names the package, --help, exit 2 on bad usage.

use predicates::prelude::*;
use tests::cmd;

/// Every (package, binary) of the workspace.
const BINARIES: &[(&str, &str)] = &[
    ("file-ipc", "writer"),
    ("file-ipc", "reader"),
    ("pipe-ipc", "writer"),
    ("pipe-ipc", "reader"),
    ("pipe-ipc", "fork"),
    ("msgq-ipc", "writer"),
    ("msgq-ipc", "reader"),
    ("shm-ipc", "writer"),
    ("shm-ipc", "reader"),
    ("shm-ipc", "layout"),
    ("signal-ipc", "writer"),
    ("signal-ipc", "reader"),
    ("signal-ipc", "demo"),
    ("bench", "bench"),
];

#[test]
fn version_names_package_and_binary() {
    for (package, name) in BINARIES {
        let want = tests::bins::version_line(package, name);
        cmd(package, name).arg("--version").assert().success().stdout(want).stderr("");
    }
}

#[test]
fn help_is_on_stdout() {
    for (package, name) in BINARIES {
        for flag in ["--help", "-h"] {
            cmd(package, name)
                .arg(flag)
                .assert()
                .success()
                .stdout(predicate::str::contains(format!("Usage: {name}")))
                // A help made at run time (common::cli::with_help) replaces its placeholder, which
                // says where it is made: one left means the argument's id no longer matches.
                .stdout(predicate::str::contains("(help:").not());
        }
    }
}

/// Issue 15: every program of a pair (and `fork`, `layout`, `demo`) can show its calls.
#[test]
fn every_ipc_binary_takes_trace() {
    for (package, name) in BINARIES.iter().filter(|(p, _)| *p != "bench") {
        cmd(package, name).arg("--help").assert().success().stdout(predicate::str::contains("--trace"));
    }
}

#[test]
fn bad_usage_exits_2_with_a_message_on_stderr() {
    for (package, name) in BINARIES {
        cmd(package, name)
            .arg("--no-such-flag")
            .assert()
            .code(2)
            .stdout("")
            .stderr(predicate::str::contains("--no-such-flag"));
    }
    cmd("file-ipc", "writer").args(["--repeat", "0"]).assert().code(2);
    cmd("file-ipc", "reader").args(["--count", "x"]).assert().code(2);
    for key in ["0", "0x100000000", "twelve", "-5"] {
        cmd("msgq-ipc", "reader")
            .arg(format!("--key={key}"))
            .assert()
            .code(2)
            .stderr(predicate::str::contains("--key"));
    }
    // `--key -1` (with a space) is a refused key, not a flag: no tip to write `-- -1`, which
    // would make it a message.
    for (package, name) in
        [("msgq-ipc", "reader"), ("msgq-ipc", "writer"), ("shm-ipc", "reader"), ("shm-ipc", "writer")]
    {
        cmd(package, name)
            .args(["--key", "-1"])
            .assert()
            .code(2)
            .stderr(predicate::str::contains("-1 is not a key").and(predicate::str::contains("-- -1").not()));
    }
}

/// `demo | head -1` and `layout | head -1`: the walk-throughs end quietly when their reader has
/// gone, children included (no panic, nothing on stderr, death by SIGPIPE as a filter's). The
/// reader is gone before the first write (a pipe whose read end is closed), so that no output
/// can slip into the pipe's buffer first.
#[test]
fn walk_throughs_end_quietly_when_the_reader_goes() {
    use std::os::unix::process::ExitStatusExt;
    for (package, name) in [("signal-ipc", "demo"), ("shm-ipc", "layout"), ("bench", "bench")] {
        let (read_end, write_end) = nix::unistd::pipe().expect("pipe");
        drop(read_end);
        let mut c = std::process::Command::new(tests::bin(package, name));
        if name == "bench" {
            c.arg("--list");
        }
        let out = c.stdout(std::process::Stdio::from(write_end)).output().expect("spawn");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.is_empty(), "{package} {name} into a closed pipe printed on stderr: {stderr}");
        assert_eq!(out.status.signal(), Some(libc::SIGPIPE), "{package} {name}: {:?}", out.status);
    }
}

/// Issue 23.7: every binary's help ends with what its exit statuses mean, and every writer's shows
/// its default message in full.
#[test]
fn help_ends_with_exit_statuses_and_shows_the_default_message() {
    for (package, name) in BINARIES {
        let out = cmd(package, name).arg("--help").assert().success().get_output().stdout.clone();
        let help = String::from_utf8_lossy(&out);
        let (_, statuses) = help
            .rsplit_once("\nExit status:\n")
            .unwrap_or_else(|| panic!("{package} {name} --help has no 'Exit status:' block at its end:\n{help}"));
        let first: Vec<&str> = statuses.lines().filter_map(|l| l.split_whitespace().next()).collect();
        assert_eq!(first, ["0", "1", "2", "128+n"], "{package} {name}: the exit statuses, in order:\n{statuses}");
    }
    let defaults = [
        ("file-ipc", file_ipc::DEFAULT_MESSAGE),
        ("pipe-ipc", pipe_ipc::DEFAULT_MESSAGE),
        ("msgq-ipc", msgq_ipc::DEFAULT_MESSAGE),
        ("shm-ipc", shm_ipc::DEFAULT_MESSAGE),
    ];
    for (package, message) in defaults {
        cmd(package, "writer")
            .arg("--help")
            .assert()
            .success()
            .stdout(predicate::str::contains(format!("[default: the note's \"{message}\"]")));
    }
}
