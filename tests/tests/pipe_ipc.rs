//! pipe-ipc end to end (claims P1-P2, M5-M6): shell pipes, FIFOs, the note's fork program.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};

use nix::sys::signal::Signal;
use predicates::prelude::*;
use tests::{Running, bin, cmd, entries};

fn writer() -> Command {
    Command::new(bin("pipe-ipc", "writer"))
}

fn reader() -> Command {
    Command::new(bin("pipe-ipc", "reader"))
}

#[test]
fn fork_prints_what_the_note_meant() {
    cmd("pipe-ipc", "fork").assert().success().stdout("20 Hello Child Process\n").stderr("");
}

#[test]
fn writer_piped_into_reader_like_the_shell_does() {
    let mut w = writer().args(["one", "two"]).stdout(Stdio::piped()).spawn().unwrap();
    let from_writer = w.stdout.take().unwrap();
    let done = Running::spawn(reader().stdin(from_writer)).finish();
    assert!(w.wait().unwrap().success());
    assert!(done.status.success());
    assert_eq!(done.stdout_str(), "one\ntwo\n");
}

#[test]
fn default_message_is_the_notes() {
    cmd("pipe-ipc", "writer").assert().success().stdout("Hello Child Process\n");
}

#[test]
fn writer_into_a_closed_pipe_stops_quietly_like_a_filter() {
    let mut w = writer().args(["--repeat", "100000"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut first = String::new();
    BufReader::new(w.stdout.take().unwrap()).read_line(&mut first).unwrap(); // then dropped: `| head -1`
    let out = w.wait_with_output().unwrap();
    assert_eq!(first, "Hello Child Process\n");
    assert!(out.status.success() || out.status.signal() == Some(libc::SIGPIPE), "{:?}", out.status);
    assert_eq!(String::from_utf8_lossy(&out.stderr), "", "no message, no panic");
}

#[test]
fn reader_into_a_closed_pipe_stops_quietly_like_a_filter() {
    let mut r = reader().stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut stdin = r.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        for i in 0..100_000 {
            if writeln!(stdin, "line {i}").is_err() {
                break; // the reader died of SIGPIPE and closed its stdin
            }
        }
    });
    let mut first = String::new();
    BufReader::new(r.stdout.take().unwrap()).read_line(&mut first).unwrap();
    let out = r.wait_with_output().unwrap();
    feeder.join().unwrap();
    assert_eq!(first, "line 0\n");
    assert!(out.status.success() || out.status.signal() == Some(libc::SIGPIPE), "{:?}", out.status);
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}

#[test]
fn non_utf8_bytes_pass_through_a_pipe() {
    use std::os::unix::ffi::OsStrExt;
    let raw = std::ffi::OsStr::from_bytes(b"\xff\xfe raw");
    cmd("pipe-ipc", "writer").arg(raw).assert().success().stdout(&b"\xff\xfe raw\n"[..]);
}

#[test]
fn fifo_joins_two_unrelated_processes_in_either_order() {
    for reader_first in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let fifo = format!("--fifo={}", dir.path().join("f").display());
        let (mut r, mut w) = (reader(), writer());
        r.arg(&fifo);
        w.args([&fifo, "a", "b"]);
        let (first, second) = if reader_first { (&mut r, &mut w) } else { (&mut w, &mut r) };
        let mut first = Running::spawn(first);
        let ready = first.wait_for_stderr("waiting for a");
        assert!(ready.contains(&format!("-- {fifo})")), "{ready}");
        let st = std::fs::symlink_metadata(dir.path().join("f")).unwrap();
        assert!(st.file_type().is_fifo());
        assert_eq!(st.permissions().mode() & 0o777, 0o600);
        let second = Running::spawn(second).finish();
        let first = first.finish();
        let r = if reader_first { &first } else { &second };
        assert!(first.status.success() && second.status.success(), "{first:?} {second:?}");
        assert_eq!(r.stdout_str(), "a\nb\n");
        assert!(entries(dir.path()).is_empty(), "the reader removes the FIFO");
    }
}

#[test]
fn either_side_stopped_while_waiting_removes_the_fifo() {
    let cases = [
        ("reader", Signal::SIGINT, 130),
        ("reader", Signal::SIGTERM, 143),
        ("writer", Signal::SIGINT, 130),
        ("writer", Signal::SIGTERM, 143),
    ];
    for (bin, sig, status) in cases {
        let dir = tempfile::tempdir().unwrap();
        let mut p = Running::spawn(
            Command::new(tests::bin("pipe-ipc", bin)).arg(format!("--fifo={}", dir.path().join("f").display())),
        );
        p.wait_for_stderr("waiting for a");
        p.signal(sig);
        let done = p.finish();
        assert_eq!(done.shell_status(), status, "{bin}: {done:?}");
        assert!(entries(dir.path()).is_empty(), "{bin} left {:?}", entries(dir.path()));
    }
}

#[test]
fn a_fifo_in_a_missing_directory_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    cmd("pipe-ipc", "reader")
        .arg(format!("--fifo={}", dir.path().join("missing/f").display()))
        .assert()
        .code(1)
        .stderr(
            predicate::str::starts_with("reader: mkfifo(")
                .and(predicate::str::contains("No such file or directory; the directory must exist and be writable")),
        );
}

#[test]
fn a_fifo_path_that_is_a_regular_file_is_refused_and_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plain");
    std::fs::write(&path, "keep me").unwrap();
    cmd("pipe-ipc", "writer").arg(format!("--fifo={}", path.display())).assert().code(1).stderr(
        predicate::str::contains("mkfifo(").and(predicate::str::contains("File exists; that path is not a FIFO")),
    );
    assert_eq!(std::fs::read(&path).unwrap(), b"keep me");
}
