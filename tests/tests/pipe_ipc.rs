//! pipe-ipc end to end (claims P1-P2, M5-M6): shell pipes, FIFOs, the note's fork program.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
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
        let fifo = format!("--path={}", dir.path().join("f").display());
        let (mut r, mut w) = (reader(), writer());
        r.args(["--fifo", &fifo]);
        w.args(["--fifo", &fifo, "a", "b"]);
        let (first, second) = if reader_first { (&mut r, &mut w) } else { (&mut w, &mut r) };
        let mut first = Running::spawn(first);
        let ready = first.wait_for_stderr("waiting for a");
        assert!(ready.contains(&format!("-- --fifo {})", fifo.replace("--path=", "--path "))), "{ready}");
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

/// Every stop signal, with the status a shell shows for it.
const STOPS: [(Signal, i32); 4] =
    [(Signal::SIGINT, 130), (Signal::SIGTERM, 143), (Signal::SIGHUP, 129), (Signal::SIGQUIT, 131)];

#[test]
fn either_side_stopped_while_waiting_removes_the_fifo() {
    for bin in ["reader", "writer"] {
        for (sig, status) in STOPS {
            let dir = tempfile::tempdir().unwrap();
            let mut p =
                Running::spawn(Command::new(tests::bin("pipe-ipc", bin)).args(["--fifo".to_string(), fifo_arg(&dir)]));
            p.wait_for_stderr("waiting for a");
            p.signal(sig);
            let done = p.finish();
            assert_eq!(done.shell_status(), status, "{bin} {sig}: {done:?}");
            assert!(entries(dir.path()).is_empty(), "{bin} {sig} left {:?}", entries(dir.path()));
        }
    }
}

fn fifo_arg(dir: &tempfile::TempDir) -> String {
    format!("--path={}", dir.path().join("f").display())
}

fn run_ok(c: &mut Command) {
    let done = Running::spawn(c).finish();
    assert!(done.status.success(), "{done:?}");
}

#[test]
fn a_count_one_reader_leaves_the_rest_to_the_next_reader() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = fifo_arg(&dir);
    let mut first = Running::spawn(reader().args(["--fifo", &fifo, "--count", "1"]));
    first.wait_for_stderr("reader: waiting");
    let mut w = Running::spawn(writer().args(["--fifo", &fifo, "one", "two", "three"]));
    let first = first.finish();
    assert!(first.status.success(), "{first:?}");
    assert_eq!(first.stdout_str(), "one\n");
    let said: Vec<&str> = first.stderr.lines().filter(|l| !l.contains("reader: waiting")).collect();
    let path = dir.path().join("f");
    assert_eq!(
        said,
        [format!("reader: 2 more messages wait in FIFO {}; left in place for the next reader", path.display())]
    );
    // The writer keeps its end open, so the unread lines stay in the pipe; it has not succeeded yet.
    w.wait_for_stderr("waiting for the next reader");
    assert_eq!(entries(dir.path()), ["f"]);
    let second = Running::spawn(reader().args(["--fifo", &fifo])).finish();
    assert!(second.status.success(), "{second:?}");
    assert_eq!(second.stdout_str(), "two\nthree\n");
    let w = w.finish();
    assert!(w.status.success(), "{w:?}");
    assert!(entries(dir.path()).is_empty(), "left {:?}", entries(dir.path()));
}

#[test]
fn two_readers_at_once_share_the_lines_and_neither_fails() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = fifo_arg(&dir);
    let mut a = Running::spawn(reader().args(["--fifo", &fifo, "--count", "1"]));
    a.wait_for_stderr("reader: waiting");
    let mut b = Running::spawn(reader().args(["--fifo", &fifo, "--count", "1"]));
    b.wait_for_stderr("another reader is reading FIFO");
    run_ok(writer().args(["--fifo", &fifo, "one", "two"]));
    let (a, b) = (a.finish(), b.finish());
    assert!(a.status.success() && b.status.success(), "{a:?} {b:?}");
    assert_eq!((a.stdout_str(), b.stdout_str()), ("one\n".into(), "two\n".into()));
    assert!(entries(dir.path()).is_empty(), "left {:?}", entries(dir.path()));

    // One message for two readers: the other keeps waiting for a writer, and leaves nothing when
    // its terminal goes (SIGHUP).
    let mut a = Running::spawn(reader().args(["--fifo", &fifo]));
    a.wait_for_stderr("reader: waiting");
    let mut b = Running::spawn(reader().args(["--fifo", &fifo]));
    b.wait_for_stderr("another reader is reading FIFO");
    run_ok(writer().args(["--fifo", &fifo, "only"]));
    let a = a.finish();
    assert!(a.status.success(), "{a:?}");
    assert_eq!(a.stdout_str(), "only\n");
    b.wait_for_stderr("reader: waiting for a line");
    assert_eq!(entries(dir.path()), ["f"], "the waiting reader still uses it");
    b.signal(Signal::SIGHUP);
    let b = b.finish();
    assert_eq!(b.shell_status(), 129, "{b:?}");
    assert_eq!(b.stdout_str(), "");
    assert!(entries(dir.path()).is_empty(), "left {:?}", entries(dir.path()));
}

#[test]
fn a_peer_killed_with_sigkill_leaves_nobody_waiting_for_ever() {
    // A reader killed while it waits: the FIFO stays; the next pair uses it and removes it.
    let dir = tempfile::tempdir().unwrap();
    let fifo = fifo_arg(&dir);
    let mut r = Running::spawn(reader().args(["--fifo", &fifo]));
    r.wait_for_stderr("reader: waiting");
    r.signal(Signal::SIGKILL);
    r.finish();
    let mut w = Running::spawn(writer().args(["--fifo", &fifo, "after the kill"]));
    w.wait_for_stderr("writer: waiting for a reader");
    let r = Running::spawn(reader().args(["--fifo", &fifo])).finish();
    assert_eq!(r.stdout_str(), "after the kill\n");
    assert!(w.finish().status.success());
    assert!(entries(dir.path()).is_empty(), "left {:?}", entries(dir.path()));

    // A writer killed while its lines wait for the next reader: it never reported success, and
    // the next reader is not stuck: it waits for a writer like any reader, then gets its lines.
    let mut first = Running::spawn(reader().args(["--fifo", &fifo, "--count", "1"]));
    first.wait_for_stderr("reader: waiting");
    let mut w = Running::spawn(writer().args(["--fifo", &fifo, "one", "two"]));
    assert_eq!(first.finish().stdout_str(), "one\n");
    w.wait_for_stderr("waiting for the next reader");
    w.signal(Signal::SIGKILL);
    assert_eq!(w.finish().shell_status(), 137);
    let mut r = Running::spawn(reader().args(["--fifo", &fifo]));
    r.wait_for_stderr("reader: waiting for a line");
    run_ok(writer().args(["--fifo", &fifo, "fresh"]));
    assert_eq!(r.finish().stdout_str(), "fresh\n");
    assert!(entries(dir.path()).is_empty(), "left {:?}", entries(dir.path()));

    // A reader killed in the middle of a stream: the writer waits for the next reader, which gets
    // the rest in order, to the end.
    let mut w = Running::spawn(writer().args(["--fifo", &fifo, "--numbered", "--repeat", "20000", "m"]));
    w.wait_for_stderr("writer: waiting for a reader");
    let mut r = reader().args(["--fifo", &fifo]).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let mut out = BufReader::new(r.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, "0 m\n");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(r.id() as i32), Signal::SIGKILL).unwrap();
    r.wait().unwrap();
    w.wait_for_stderr("waiting for the next reader");
    let rest = Running::spawn(reader().args(["--fifo", &fifo])).finish();
    let got: Vec<u64> = rest.stdout_str().lines().map(|l| l.strip_suffix(" m").unwrap().parse().unwrap()).collect();
    assert_eq!(got.last(), Some(&19999), "the rest arrives to the end");
    assert!(got.windows(2).all(|p| p[1] == p[0] + 1), "in order, none lost on the way");
    assert!(w.finish().status.success());
    assert!(entries(dir.path()).is_empty(), "left {:?}", entries(dir.path()));
}

#[test]
fn a_removed_fifo_is_noticed_within_a_second() {
    for bin in ["reader", "writer"] {
        let dir = tempfile::tempdir().unwrap();
        let mut p =
            Running::spawn(Command::new(tests::bin("pipe-ipc", bin)).args(["--fifo".to_string(), fifo_arg(&dir)]));
        p.wait_for_stderr("waiting for a");
        let removed = std::time::Instant::now();
        std::fs::remove_file(dir.path().join("f")).unwrap();
        let done = p.finish();
        assert!(removed.elapsed() < std::time::Duration::from_secs(2), "{bin} took {:?}", removed.elapsed());
        assert_eq!(done.shell_status(), 1, "{bin}: {done:?}");
        assert!(done.stderr.contains("was removed"), "{bin}: {done:?}");
        assert!(entries(dir.path()).is_empty());
    }
}

#[test]
fn mode_is_exact_whatever_the_umask() {
    use std::os::unix::process::CommandExt;
    for bin in ["reader", "writer"] {
        for (umask, mode) in [(0o077, 0o640), (0o022, 0o666), (0o022, 0o600)] {
            let dir = tempfile::tempdir().unwrap();
            let mut c = Command::new(tests::bin("pipe-ipc", bin));
            c.args(["--fifo", &fifo_arg(&dir), "--mode", &format!("{mode:o}")]);
            // SAFETY: umask() is async-signal-safe, as pre_exec requires.
            unsafe {
                c.pre_exec(move || {
                    libc::umask(umask);
                    Ok(())
                });
            }
            let mut p = Running::spawn(&mut c);
            p.wait_for_stderr("waiting for a");
            let got = std::fs::metadata(dir.path().join("f")).unwrap().permissions().mode() & 0o777;
            assert_eq!(got, mode, "{bin} --mode {mode:o} under umask {umask:03o}");
            drop(p); // SIGTERM: removes its FIFO
        }
    }
}

#[test]
fn only_a_fifo_of_ours_is_used_anything_else_is_refused_untouched() {
    use std::os::unix::fs::MetadataExt;
    let root = nix::unistd::geteuid().is_root();
    let cases: [(&str, MakeAt); 4] = [
        ("a regular file", |p| std::fs::write(p, "keep me").unwrap()),
        ("a directory", |p| std::fs::create_dir(p).unwrap()),
        ("a symlink", |p| std::os::unix::fs::symlink("target", p).unwrap()),
        ("another user's FIFO", |p| {
            nix::unistd::mkfifo(p, nix::sys::stat::Mode::from_bits_truncate(0o666)).unwrap();
            std::os::unix::fs::chown(p, Some(65534), Some(65534)).unwrap();
        }),
    ];
    for (what, make) in cases {
        if what == "another user's FIFO" && !root {
            eprintln!("skipped: needs root to chown a FIFO to nobody");
            continue;
        }
        for bin in ["reader", "writer"] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("f");
            make(&path);
            nix::unistd::mkfifo(&dir.path().join("target"), nix::sys::stat::Mode::S_IRWXU).unwrap();
            let meta = |p: &std::path::Path| {
                let m = std::fs::symlink_metadata(p).unwrap();
                (m.file_type(), m.uid(), m.mode(), m.ino())
            };
            let before = (meta(&path), entries(dir.path()));
            // A reader of our own on that FIFO: whatever a refused writer wrote would wait here.
            let spy = (what == "another user's FIFO")
                .then(|| std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(&path).unwrap());
            let mut c = Command::new(tests::bin("pipe-ipc", bin));
            c.args(["--fifo".to_string(), fifo_arg(&dir)]);
            if bin == "writer" {
                c.arg("data");
            }
            let out = c.output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{bin} on {what}: {out:?}");
            assert!(err.contains("refused and left as it was"), "{bin} on {what}: {err}");
            assert_eq!((meta(&path), entries(dir.path())), before, "{bin} changed {what}");
            if let Some(spy) = spy {
                let mut buf = [0u8; 16];
                let n = (&spy).read(&mut buf);
                assert!(matches!(n, Ok(0)) || n.is_err(), "{bin} wrote into {what}: {n:?}");
            }
        }
    }
}

#[test]
fn a_fifo_in_a_missing_directory_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    cmd("pipe-ipc", "reader")
        .arg("--fifo")
        .arg(format!("--path={}", dir.path().join("missing/f").display()))
        .assert()
        .code(1)
        .stderr(
            predicate::str::starts_with("reader: mkfifo(")
                .and(predicate::str::contains("No such file or directory; the directory must exist and be writable")),
        );
}

/// Puts something at a path, for the refusal tests.
type MakeAt = fn(&std::path::Path);

#[test]
fn a_fifo_reader_into_a_closed_stdout_leaves_the_rest_to_the_next_reader() {
    // `reader --fifo | head -1`: the reader dies of SIGPIPE; what it had not printed is not taken.
    let dir = tempfile::tempdir().unwrap();
    let fifo = fifo_arg(&dir);
    let mut w = Running::spawn(writer().args(["--fifo", &fifo, "--numbered", "--repeat", "50000", "m"]));
    w.wait_for_stderr("writer: waiting for a reader");
    let mut r = reader().args(["--fifo", &fifo]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut first = [0u8; 4];
    r.stdout.take().unwrap().read_exact(&mut first).unwrap(); // then closed
    let out = r.wait_with_output().unwrap();
    assert_eq!(&first, b"0 m\n");
    assert_eq!(out.status.signal(), Some(libc::SIGPIPE), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("left in place for the next reader"), "{out:?}");
    let rest = Running::spawn(reader().args(["--fifo", &fifo])).finish();
    let got: Vec<u64> = rest.stdout_str().lines().map(|l| l.strip_suffix(" m").unwrap().parse().unwrap()).collect();
    assert_eq!(got.last(), Some(&49999));
    assert!(got.windows(2).all(|p| p[1] == p[0] + 1), "in order, none lost on the way");
    assert!(w.finish().status.success());
    assert!(entries(dir.path()).is_empty(), "left {:?}", entries(dir.path()));
}

#[test]
fn a_stopped_writer_whose_lines_wait_for_a_reader_says_so_and_they_arrive() {
    use std::os::fd::AsRawFd;
    let dir = tempfile::tempdir().unwrap();
    let fifo = fifo_arg(&dir);
    let mut r = Running::spawn(reader().args(["--fifo", &fifo]));
    r.wait_for_stderr("reader: waiting");
    r.signal(Signal::SIGSTOP); // a reader that does not read for now
    let w = Running::spawn(writer().args(["--fifo", &fifo, "--numbered", "--repeat", "50000", "m"]));
    // Event: the pipe is full, so the writer is blocked in write(). Seen through an end of our own.
    let probe =
        std::fs::OpenOptions::new().write(true).custom_flags(libc::O_NONBLOCK).open(dir.path().join("f")).unwrap();
    let deadline = std::time::Instant::now() + tests::running::TIMEOUT;
    loop {
        let mut n: libc::c_int = 0;
        // SAFETY: FIONREAD writes one int through the pointer, which points at `n`.
        assert_eq!(unsafe { libc::ioctl(probe.as_raw_fd(), libc::FIONREAD, &mut n) }, 0);
        if n >= 65536 - 4096 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the pipe never filled");
        std::thread::yield_now();
    }
    drop(probe);
    w.signal(Signal::SIGTERM);
    let w = w.finish();
    assert_eq!(w.shell_status(), 143, "{w:?}");
    assert!(w.stderr.contains("we wrote still wait in FIFO") && w.stderr.contains("left in place"), "{w:?}");
    r.signal(Signal::SIGCONT);
    let r = r.finish();
    assert!(r.status.success(), "{r:?}");
    let got: Vec<u64> = r.stdout_str().lines().map(|l| l.strip_suffix(" m").unwrap().parse().unwrap()).collect();
    assert!(got.len() > 1000 && got.iter().enumerate().all(|(i, &n)| n == i as u64), "a whole prefix arrives");
    assert!(entries(dir.path()).is_empty(), "the reader, last out, removes it: {:?}", entries(dir.path()));
}

/// The FIFO's path is an option of its own: `--path P` and `--path=P` both work, a path typed after
/// `--fifo` is refused with the right form (never sent as a message), and `--mode` or `--path`
/// without `--fifo` is refused.
#[test]
fn the_fifo_path_is_its_own_option_in_both_forms() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("f");
    let mut r = Running::spawn(reader().args(["--fifo", "--path"]).arg(&f));
    r.wait_for_stderr("reader: waiting");
    run_ok(writer().arg("--fifo").arg(format!("--path={}", f.display())).arg("both forms"));
    assert_eq!(r.finish().stdout_str(), "both forms\n");
    assert!(entries(dir.path()).is_empty());

    nix::unistd::mkfifo(&f, nix::sys::stat::Mode::S_IRWXU).unwrap();
    tests::run(writer().arg("--fifo").arg(&f).arg("hello")).code(2).stderr(predicate::str::contains(format!(
        "a FIFO's path goes with --path, e.g. writer --fifo --path {}",
        f.display()
    )));
    tests::run(reader().arg("--fifo").arg(&f))
        .code(2)
        .stderr(predicate::str::contains(format!("reader --fifo --path {}", f.display())));
    for bin in ["reader", "writer"] {
        for args in [&["--mode", "640"][..], &["--path", "/x"][..]] {
            tests::run(Command::new(tests::bin("pipe-ipc", bin)).args(args))
                .code(2)
                .stderr(predicate::str::contains("--fifo"));
        }
    }
    assert_eq!(entries(dir.path()), ["f"], "the user's FIFO is left as it was");
}

/// A writer whose last lines a second reader takes (and leaves) at once ends then: it does not
/// wait for a third reader it no longer needs. Repeated, to meet the reader that comes and goes
/// between two of the writer's looks.
#[test]
fn a_writer_ends_once_its_last_line_was_read_however_fast_the_reader_left() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = fifo_arg(&dir);
    for round in 0..15 {
        let w = Running::spawn(writer().args(["--fifo", &fifo, "x", "y"]));
        let first = Running::spawn(reader().args(["--fifo", &fifo, "--count", "1"])).finish();
        let second = Running::spawn(reader().args(["--fifo", &fifo, "--count", "1"])).finish();
        assert_eq!(first.stdout_str() + &second.stdout_str(), "x\ny\n", "round {round}");
        let w = w.finish();
        assert!(w.status.success(), "round {round}: {w:?}");
        assert!(entries(dir.path()).is_empty(), "round {round}");
    }
}

/// A line longer than the pipe can hold, after a short one: the reader takes it in parts as the
/// writer fills the pipe (a partly read page leaves less room than 64 KiB) instead of both
/// waiting for each other forever. The reader is stopped while the pipe fills, so that it meets a
/// full pipe (any program may write the FIFO: here the test does).
#[test]
fn a_line_longer_than_the_pipe_after_a_short_one_arrives_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    let mut r = Running::spawn(reader().arg("--fifo").arg("--path").arg(&path).args(["--count", "2"]));
    r.wait_for_stderr("reader: waiting");
    r.signal(Signal::SIGSTOP);
    let long = "x".repeat(100_000);
    let text = format!("a\n{long}\n");
    let mut fifo = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    let feeder = std::thread::spawn(move || fifo.write_all(text.as_bytes()).is_ok());
    r.signal(Signal::SIGCONT);
    let r = r.finish();
    assert!(feeder.join().unwrap(), "the writer's bytes were all taken");
    assert!(r.status.success(), "{r:?}");
    assert_eq!(r.stdout_str(), format!("a\n{long}\n"));
}

/// A second writer stopped while it waits for a reader leaves the FIFO to the first, whose lines
/// still wait in it: the last one out removes, and it is not the last one.
#[test]
fn a_waiting_writer_stopped_leaves_the_fifo_to_a_writer_still_in_it() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = fifo_arg(&dir);
    let mut first = Running::spawn(writer().args(["--fifo", &fifo, "m1", "m2", "m3"]));
    first.wait_for_stderr("writer: waiting");
    let one = Running::spawn(reader().args(["--fifo", &fifo, "--count", "1"])).finish();
    assert_eq!(one.stdout_str(), "m1\n");
    first.wait_for_stderr("waiting for the next reader");
    let mut second = Running::spawn(writer().args(["--fifo", &fifo, "other"]));
    second.wait_for_stderr("writer: waiting");
    second.signal(Signal::SIGINT);
    assert_eq!(second.finish().shell_status(), 130);
    assert_eq!(entries(dir.path()), ["f"], "the FIFO is still there for the first writer");
    let rest = Running::spawn(reader().args(["--fifo", &fifo])).finish();
    assert_eq!(rest.stdout_str(), "m2\nm3\n");
    assert!(first.finish().status.success());
    assert!(entries(dir.path()).is_empty());
}

// ---- --trace beside strace ----------------------------------------------------------------------

use tests::strace::{self, Call, Straced};

/// Each of our calls named in `names`, per process, is strace's line for that process, whole:
/// fds, buffers, flags, sizes and results (same run, so the same descriptors and pids). strace
/// may show more (the loader's and std's own reads, writes and closes, the child's stdout).
fn same_as_strace(ours: &[(u32, Call)], theirs: &[(u32, Call)], names: &[&str]) {
    let pids: std::collections::BTreeSet<u32> = ours.iter().map(|(p, _)| *p).collect();
    for pid in pids {
        let of = |calls: &[(u32, Call)], keep_pid: bool| -> Vec<Call> {
            calls.iter().filter(|(p, _)| !keep_pid || *p == pid).map(|(_, c)| c.clone()).collect()
        };
        // Without -f strace does not say the pid: all its lines are the one process's.
        let theirs_pid = of(theirs, theirs.iter().any(|(p, _)| *p != 0));
        let ours_pid = of(ours, true);
        for name in names {
            if ours_pid.iter().any(|c| &c.name == name) {
                strace::assert_in_order(&ours_pid, &theirs_pid, name, |c| Some(c.text()));
            }
        }
    }
}

fn names_of(calls: &[(u32, Call)], pid: u32) -> Vec<String> {
    calls.iter().filter(|(p, _)| *p == pid).map(|(_, c)| c.name.clone()).collect()
}

#[test]
fn fork_trace_is_what_strace_sees() {
    if !strace::available() {
        return;
    }
    let cmd = {
        let mut c = Command::new(bin("pipe-ipc", "fork"));
        c.arg("--trace");
        c
    };
    let mut s = Straced::new(&cmd, &["pipe2", "clone", "clone3", "read", "write", "close", "wait4"], true);
    let done = Running::spawn(&mut s.command).finish();
    assert!(done.status.success(), "{done:?}");
    assert_eq!(done.stdout_str(), "20 Hello Child Process\n");
    let ours = strace::ours_by_pid(done.stderr.as_bytes());
    let theirs = s.calls_by_pid();
    let why = strace::side_by_side(&ours.iter().map(|(_, c)| c.clone()).collect::<Vec<_>>(), &s.path());

    // The parent: the pipe, the fork, its half of the exchange, the wait; the child: its half.
    let parent = ours.first().expect("traced lines").0;
    let fork = ours.iter().find(|(_, c)| c.name == "fork").expect("fork traced");
    assert!(fork.1.library && fork.0 == parent, "{why}");
    let child: u32 = fork.1.result.parse().expect("fork's result is the child's pid");
    assert_eq!(names_of(&ours, parent), ["pipe2", "fork", "close", "write", "close", "wait4"], "{why}");
    assert_eq!(names_of(&ours, child), ["close", "read"], "{why}");

    // fork() is glibc's clone(): the same process, the same child.
    let clone = theirs.iter().find(|(p, c)| *p == parent && c.name.starts_with("clone"));
    let clone = clone.unwrap_or_else(|| panic!("strace saw no clone: {why}"));
    assert_eq!(clone.1.result, fork.1.result, "{why}");
    assert!(clone.1.text().contains("SIGCHLD"), "{why}");

    same_as_strace(&ours, &theirs, &["pipe2", "read", "write", "close", "wait4"]);
    let wait = ours.iter().find(|(_, c)| c.name == "wait4").expect("wait4 traced");
    assert_eq!(wait.1.text(), format!("wait4({child}, [{{WIFEXITED(s) && WEXITSTATUS(s) == 0}}], 0, NULL) = {child}"));
}

const FIFO_CALLS: [&str; 9] = ["mknodat", "openat", "fchmodat", "pipe2", "tee", "read", "write", "close", "unlink"];

#[test]
fn fifo_trace_is_what_strace_sees() {
    if !strace::available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let fifo = fifo_arg(&dir);
    let mut r = Straced::new(reader().args(["--trace", "--fifo", &fifo]), &FIFO_CALLS, false);
    let mut w = Straced::new(writer().args(["--trace", "--fifo", &fifo, "hello", "over a FIFO"]), &FIFO_CALLS, false);
    let mut reading = Running::spawn(&mut r.command);
    reading.wait_for_stderr("reader: waiting");
    let written = Running::spawn(&mut w.command).finish();
    let read = reading.finish();
    assert!(read.status.success() && written.status.success(), "{read:?} {written:?}");
    assert_eq!(read.stdout_str(), "hello\nover a FIFO\n");
    assert!(entries(dir.path()).is_empty(), "the FIFO is removed");
    let quoted = format!("\"{}\"", dir.path().join("f").display());
    // The reader came first and made the FIFO; the writer found it there.
    for (done, s, made) in [(&read, &r, "= 0"), (&written, &w, "= -1 EEXIST (File exists)")] {
        let ours = strace::ours_by_pid(done.stderr.as_bytes());
        same_as_strace(&ours, &s.calls_by_pid(), &FIFO_CALLS);
        let text: Vec<String> = ours.iter().map(|(_, c)| c.text()).collect();
        let mknod = format!("mknodat(AT_FDCWD, {quoted}, S_IFIFO|0600) {made}");
        assert!(text.contains(&mknod), "{mknod} not in {text:#?}");
    }
}

#[test]
fn shell_pipe_trace_is_what_strace_sees() {
    if !strace::available() {
        return;
    }
    let mut w = Straced::new(writer().args(["--trace", "one", "two"]), &["write"], false);
    let mut r = Straced::new(reader().arg("--trace"), &["read"], false);
    let mut wp = w.command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let from_writer = wp.stdout.take().unwrap();
    let read = Running::spawn(r.command.stdin(from_writer)).finish();
    let written = wp.wait_with_output().unwrap();
    assert!(written.status.success() && read.status.success(), "{read:?}");
    assert_eq!(read.stdout_str(), "one\ntwo\n");
    let ours_w = strace::ours(&written.stderr);
    let writes: Vec<String> = ours_w.iter().map(Call::text).collect();
    assert_eq!(writes, [r#"write(1, "one\n", 4) = 4"#, r#"write(1, "two\n", 4) = 4"#]);
    strace::assert_in_order(&ours_w, &w.calls(), "write", |c| Some(c.text()));
    let ours_r = strace::ours(read.stderr.as_bytes());
    assert_eq!(ours_r.last().map(Call::text).as_deref(), Some(r#"read(0, "", 8192) = 0"#), "end of file");
    strace::assert_in_order(&ours_r, &r.calls(), "read", |c| Some(c.text()));
}

// ---- at most once, whole lines, stops (issue 20) ------------------------------------------------

/// A read end of the test's own on a FIFO: FIONREAD through it says how many bytes wait in the
/// pipe, and while it is open the pipe keeps them, whoever else comes and goes.
struct Holder(std::fs::File);

impl Holder {
    fn open(path: &std::path::Path) -> Holder {
        Holder(std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path).unwrap())
    }

    fn unread(&self) -> usize {
        use std::os::fd::AsRawFd;
        let mut n: libc::c_int = 0;
        // SAFETY: FIONREAD writes one int through the pointer, which points at `n`.
        assert_eq!(unsafe { libc::ioctl(self.0.as_raw_fd(), libc::FIONREAD, &mut n) }, 0);
        n as usize
    }

    /// Waits (bounded) until at least `n` bytes wait in the pipe.
    fn wait_for(&self, n: usize, what: &str) {
        let deadline = std::time::Instant::now() + tests::running::TIMEOUT;
        while self.unread() < n {
            assert!(std::time::Instant::now() < deadline, "{what}: {} bytes in the pipe, never {n}", self.unread());
            std::thread::yield_now();
        }
    }
}

/// The lines of a numbered stream ("0 m", "1 m", ...) as their numbers.
fn numbers(out: &str) -> Vec<u64> {
    out.lines()
        .map(|l| l.strip_suffix(" m").unwrap_or_else(|| panic!("not a line of ours: {l:?}")).parse().unwrap())
        .collect()
}

/// A reader killed with SIGKILL on entry to the n-th call of `call`, for every n until it runs to
/// its end, while a writer's three lines wait in the FIFO (`write`: also just after each call of
/// its `--trace` returned, since each trace line is a write). In the old order (print from a
/// peeked copy, then read the line out of the FIFO) a kill between the two printed the line
/// twice. Now: no line twice, none out of order, and the only line missing, if any, is the one
/// right after the last the killed reader printed (it had taken it). The writer still succeeds
/// once a fresh reader took the rest, and nothing is left (after `reader --fifo --clean` when the
/// killed reader was the last one out).
fn sweep_reader_kills(call: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    let fifo = fifo_arg(&dir);
    for n in 1.. {
        let mut w = Running::spawn(writer().args(["--fifo", &fifo, "--numbered", "--repeat", "3", "m"]));
        w.wait_for_stderr("writer: waiting for a reader");
        let holder = Holder::open(&path); // the writer writes its three lines at once, and they stay
        holder.wait_for(12, "the writer's lines");
        let inject = format!("{call}:signal=KILL:when={n}");
        let killed = Running::spawn(&mut strace::injecting(reader().args(["--fifo", &fifo, "--trace"]), call, &inject));
        let killed = killed.finish();
        let was_killed = killed.shell_status() == 137;
        assert!(was_killed || killed.status.success(), "{inject}: {killed:?}");
        let after = format!("reader killed at {inject} (its last line: {:?})", killed.stderr.lines().last());
        eprintln!("{after}"); // shown if what follows hangs
        let mut got = numbers(&killed.stdout_str());
        let printed_by_killed = got.len();
        if holder.unread() > 0 {
            let rest = Running::spawn(reader().args(["--fifo", &fifo])).finish();
            assert!(rest.status.success(), "{after}: the next reader: {rest:?}");
            got.extend(numbers(&rest.stdout_str()));
        }
        let w = w.finish();
        assert!(w.status.success(), "{after}: the writer: {w:?}");
        drop(holder);
        if was_killed {
            // A killed reader may have been the last one out: `--clean` removes what it left.
            let clean = Running::spawn(reader().args(["--fifo", &fifo, "--clean"])).finish();
            assert!(clean.status.success(), "{after}: {clean:?}");
        }
        assert!(entries(dir.path()).is_empty(), "{after}: left {:?}", entries(dir.path()));
        let mut want: Vec<u64> = vec![0, 1, 2];
        if got != want {
            assert!(was_killed && printed_by_killed < 3, "{after}: printed {got:?}");
            want.remove(printed_by_killed); // the line the killed reader had taken
            assert_eq!(got, want, "{after}: a line twice, out of order, or one lost that it had not taken");
        }
        if !was_killed {
            assert!(n > 1, "{call}: the reader was never killed");
            return;
        }
    }
}

#[test]
fn a_fifo_reader_killed_at_any_call_prints_no_line_twice_and_loses_at_most_the_one_it_took() {
    if strace::found_or_skip() {
        for call in ["read", "tee", "write", "openat", "ioctl", "flock", "fcntl", "unlink", "close"] {
            sweep_reader_kills(call);
        }
    }
}

/// A writer stopped in the middle of a line longer than the pipe (blocked on the full pipe, its
/// reader not reading): the reader gets 65,536 bytes and then end of file. It must not print
/// them as a line: it says that the writer ended mid-line, how many bytes it dropped, and fails.
#[test]
fn a_writer_stopped_mid_line_leaves_no_fragment_printed_as_a_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    let fifo = fifo_arg(&dir);
    let mut r = Running::spawn(reader().args(["--fifo", &fifo]));
    r.wait_for_stderr("reader: waiting");
    r.signal(Signal::SIGSTOP); // a reader that does not read for now
    wait_until_stopped(r.pid);
    let long = "x".repeat(100_000);
    let w = Running::spawn(writer().args(["--fifo", &fifo, &long]));
    Holder::open(&path).wait_for(65536, "the writer filling the pipe"); // then it is blocked mid-line
    w.signal(Signal::SIGTERM);
    let w = w.finish();
    assert_eq!(w.shell_status(), 143, "{w:?}");
    r.signal(Signal::SIGCONT);
    let r = r.finish();
    assert_eq!(r.stdout_str().len(), 0, "a fragment was printed as a line");
    assert_eq!(r.status.code(), Some(1), "{r:?}");
    assert!(
        r.stderr.contains("ended in the middle of a line: 65536 bytes with no newline after them were dropped"),
        "{r:?}"
    );
    assert!(w.stderr.contains("stopped while writing message 1 (100001 bytes"), "{w:?}");
    assert!(entries(dir.path()).is_empty(), "left {:?}", entries(dir.path()));
}

/// A reader stopped while a line longer than the pipe is on its way (the writer frozen in the
/// middle of it, so the line cannot complete meanwhile). The old reader had taken the first
/// 65,536 bytes and dropped them when stopped; the next reader then printed the rest as a line
/// and the writer exited 0. Now the line is printed whole, once, by one of the two readers, or
/// else the writer does not claim success; no part of it is printed as a line.
#[test]
fn a_reader_stopped_mid_line_prints_it_whole_or_the_writer_does_not_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    let fifo = fifo_arg(&dir);
    let mut r = Running::spawn(reader().args(["--fifo", &fifo, "--trace"]));
    let opened = r.wait_for_stderr("O_RDONLY|O_NONBLOCK");
    let fd = opened.rsplit("= ").next().unwrap().trim().to_string();
    r.wait_for_stderr("reader: waiting");
    r.signal(Signal::SIGSTOP);
    wait_until_stopped(r.pid);
    let long = "y".repeat(120_000); // one argument holds at most 128 KiB
    let w = Running::spawn(writer().args(["--fifo", &fifo, &long]));
    Holder::open(&path).wait_for(65536, "the writer filling the pipe");
    w.signal(Signal::SIGSTOP); // frozen in the middle of the line...
    // ...once it is stopped: until then its write would go on into any room the reader makes.
    wait_until_stopped(w.pid);
    r.signal(Signal::SIGCONT);
    // The reader has met the full pipe: it grew it (now), or took the first part (before).
    let took = format!("read({fd}, \"yyyy");
    let mut seen = String::new();
    while !seen.contains("F_SETPIPE_SZ") && !seen.starts_with(&took) {
        seen = r.wait_for_stderr("");
        seen = seen.split("] ").nth(1).unwrap_or_default().to_string();
    }
    r.signal(Signal::SIGTERM);
    let stopped = r.finish();
    assert_eq!(stopped.shell_status(), 143, "{stopped:?}");
    w.signal(Signal::SIGCONT);
    let next = Running::spawn(reader().args(["--fifo", &fifo])).finish();
    let w = w.finish();
    let printed = stopped.stdout_str() + &next.stdout_str();
    let whole = format!("{long}\n");
    assert!(printed.is_empty() || printed == whole, "{} bytes printed, not the line", printed.len());
    assert!(printed == whole || !w.status.success(), "the line was not printed, yet the writer succeeded: {w:?}");
    assert!(entries(dir.path()).is_empty(), "left {:?}", entries(dir.path()));
}

/// Waits (bounded) until `pid` is in the stopped state (SIGSTOP taken, not just sent).
fn wait_until_stopped(pid: nix::unistd::Pid) {
    let deadline = std::time::Instant::now() + tests::running::TIMEOUT;
    loop {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        // `pid (comm) S ...`: the state follows the last ')'.
        if stat.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('T')) {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{pid} never stopped: {stat}");
        std::thread::yield_now();
    }
}

/// A stop just after mkfifo, before anything else: strace holds the process at the return of
/// mknodat (its stop thread runs on) while the stop signal comes. The stop guard is registered
/// before mkfifo, so the stop waits for the FIFO to be made and then removes it; before, it found
/// no guard and left the FIFO behind.
#[test]
fn a_stop_right_after_mkfifo_leaves_nothing() {
    if !strace::found_or_skip() {
        return;
    }
    for bin in ["reader", "writer"] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let mut c = Command::new(tests::bin("pipe-ipc", bin));
        c.args(["--fifo".to_string(), fifo_arg(&dir)]);
        let s = Running::spawn(&mut strace::injecting(&c, "mknodat", "mknodat:delay_exit=1000000"));
        let deadline = std::time::Instant::now() + tests::running::TIMEOUT;
        while std::fs::symlink_metadata(&path).is_err() {
            assert!(std::time::Instant::now() < deadline, "{bin}: no FIFO made");
            std::thread::yield_now();
        }
        // strace's child is the process, held at mknodat's return.
        let pid = s.pid.as_raw();
        let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap();
        let child: i32 = children.split_whitespace().next().expect("strace's child").parse().unwrap();
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child), Signal::SIGTERM).unwrap();
        let done = s.finish();
        assert_eq!(done.shell_status(), 143, "{bin}: {done:?}");
        assert!(entries(dir.path()).is_empty(), "{bin} left {:?}", entries(dir.path()));
    }
}

/// A line longer than the largest pipe (from a program other than our writer, which cannot send
/// one) is taken in parts. A reader stopped holding the first part reads on to the end of the
/// line, prints it whole, and only then stops. The test's write end stays open, so the reader
/// stops on the signal, not at end of file.
#[test]
fn a_reader_stopped_holding_part_of_an_overlong_line_prints_it_whole_then_stops() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    let mut r = Running::spawn(reader().arg("--fifo").arg("--path").arg(&path).arg("--trace"));
    let opened = r.wait_for_stderr("O_RDONLY|O_NONBLOCK");
    let fd = opened.rsplit("= ").next().unwrap().trim().to_string();
    r.wait_for_stderr("reader: waiting");
    let mut fifo = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    let head = "z".repeat(pipe_ipc_max() + 100_000);
    let feeder = {
        let mut fifo = fifo.try_clone().unwrap();
        std::thread::spawn(move || fifo.write_all(head.as_bytes()).is_ok())
    };
    // The reader grew the pipe, found it full again with no newline, and took a part.
    let took = format!("read({fd}, \"zzzz");
    loop {
        let line = r.wait_for_stderr("");
        if line.split("] ").nth(1).is_some_and(|call| call.starts_with(&took)) {
            break;
        }
    }
    r.signal(Signal::SIGTERM);
    assert!(feeder.join().unwrap());
    fifo.write_all(b"zz\n").unwrap();
    let r = r.finish();
    drop(fifo);
    assert_eq!(r.shell_status(), 143, "{}", r.stderr);
    assert_eq!(r.stdout.len(), pipe_ipc_max() + 100_003, "the line, whole, and nothing else");
    assert!(r.stdout.iter().rev().skip(1).all(|&b| b == b'z'));
    assert!(entries(dir.path()).is_empty(), "left {:?}", entries(dir.path()));
}

/// /proc/sys/fs/pipe-max-size: how large a reader grows a FIFO's pipe.
fn pipe_ipc_max() -> usize {
    std::fs::read_to_string("/proc/sys/fs/pipe-max-size").unwrap().trim().parse().unwrap()
}

/// A line longer than the pipe: the reader's look through a write end of its own and its
/// F_SETPIPE_SZ calls are strace's lines too, and it takes the line in one read.
#[test]
fn fifo_long_line_trace_is_what_strace_sees() {
    if !strace::available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let fifo = fifo_arg(&dir);
    let calls: Vec<&str> = FIFO_CALLS.iter().copied().chain(["fcntl"]).collect();
    let mut r = Straced::new(reader().args(["--trace", "--fifo", &fifo]), &calls, false);
    let mut reading = Running::spawn(&mut r.command);
    reading.wait_for_stderr("reader: waiting");
    let long = "x".repeat(100_000);
    run_ok(writer().args(["--fifo", &fifo, &long]));
    let read = reading.finish();
    assert!(read.status.success(), "{read:?}");
    assert_eq!(read.stdout.len(), 100_001);
    let ours = strace::ours_by_pid(read.stderr.as_bytes());
    same_as_strace(&ours, &r.calls_by_pid(), &calls);
    let text: Vec<String> = ours.iter().map(|(_, c)| c.text()).collect();
    let grown: Vec<&String> = text.iter().filter(|t| t.contains("F_SETPIPE_SZ")).collect();
    assert_eq!(grown.len(), 2, "the FIFO and the peek pipe grown once each: {text:#?}");
    assert!(text.iter().any(|t| t.starts_with("read(4, ") && t.ends_with(", 100001) = 100001")), "{text:#?}");
}
