//! A stop never loses or half-prints a message (issue 20, point 3; common::gate): a reader stopped
//! while its stdout is blocked prints the message in hand whole once stdout takes it, whatever
//! the wait; a second stop signal meanwhile gives that message up at once and names it; `--keep`
//! readers are guarded the same way and leave their objects in place.
//!
//! Each reader's stdout is a pipe that the test reads only when it chooses: the reader blocks in
//! write() once the pipe is full (seen in /proc/PID/wchan), and is stopped there.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread::JoinHandle;
use std::time::Instant;

use common::sysv;
use nix::fcntl::OFlag;
use nix::sys::signal::Signal;
use tests::running::TIMEOUT;
use tests::{Finished, Running, TestKey, bin, entries, keyed, run};

/// What a stop says when it waits for the message in hand (common::gate).
const WAITS: &str = "is written whole: stdout does not take it yet; stop again to give it up";

/// A pipe for a reader's stdout, read only when the test chooses: its read end, and the write end
/// for the child. Close-on-exec, so no other child of the test process holds the write end and the
/// drain sees its end of file. `full`: filled up front with one line of filler, so the reader's
/// first print blocks.
fn unread_pipe(full: bool) -> (File, Stdio) {
    let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).expect("pipe2");
    let mut w = File::from(w);
    if full {
        // SAFETY: F_GETPIPE_SZ takes no argument and only returns the pipe's capacity.
        let size = unsafe { libc::fcntl(w.as_raw_fd(), libc::F_GETPIPE_SZ) };
        assert!(size > 0, "F_GETPIPE_SZ");
        let mut filler = vec![b'#'; size as usize - 1];
        filler.push(b'\n');
        w.write_all(&filler).expect("fill the pipe"); // exactly its capacity: does not block
    }
    (File::from(r), Stdio::from(w))
}

/// Waits until the main thread of `r` is blocked writing to a full pipe (its stdout).
fn blocked_on_stdout(r: &Running) {
    let wchan = format!("/proc/{}/wchan", r.pid);
    let deadline = Instant::now() + TIMEOUT;
    loop {
        // "pipe_write", "anon_pipe_write" since Linux 6.16.
        let now = std::fs::read_to_string(&wchan).unwrap_or_default();
        if now.ends_with("pipe_write") {
            return;
        }
        assert!(Instant::now() < deadline, "pid {} never blocked on its stdout (wchan {now:?})", r.pid);
        std::thread::yield_now();
    }
}

/// Reads the pipe to its end (the reader's exit) in a thread of its own.
fn drain(mut from: File) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut got = Vec::new();
        from.read_to_end(&mut got).expect("read the reader's stdout");
        got
    })
}

/// Stops `r` while it is blocked on its stdout with `sig`, waits for the stop to say that it waits
/// for the message in hand (None if it ended instead: the old behaviour), then drains the pipe.
fn stop_while_blocked(mut r: Running, out: File, sig: Signal) -> (Option<String>, Finished, Vec<u8>) {
    blocked_on_stdout(&r);
    r.signal(sig);
    let said = r.wait_for_stderr_or_end(WAITS);
    let printed = drain(out);
    let done = r.finish();
    (said, done, printed.join().expect("drain"))
}

/// The lines of `printed`, failing if the last one is cut short (no newline) and skipping the
/// filler line of a pipe filled up front.
fn whole_lines(printed: &[u8]) -> Vec<&[u8]> {
    let body = printed
        .strip_prefix(&b"#"[..])
        .map_or(printed, |_| &printed[printed.iter().position(|&b| b == b'\n').expect("filler line") + 1..]);
    if body.is_empty() {
        return Vec::new();
    }
    let (last, lines) = body.split_last().expect("not empty");
    assert_eq!(*last, b'\n', "a line was half-printed: {} bytes after the last newline", {
        body.len() - body.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1)
    });
    lines.split(|&b| b == b'\n').collect()
}

fn msgq(k: &TestKey, bin: &str) -> Command {
    keyed("msgq-ipc", bin, k)
}

/// msgq: twenty numbered 8000-byte messages into a stdout nobody reads: the pipe fills after eight
/// and the reader blocks printing one it took. SIGTERM then waits for that one to be printed whole
/// (the test drains only once the stop says it waits); the rest stay in the queue, in order, for
/// the next reader. It used to exit after 2 s with the message half-printed and the rest of it
/// lost.
#[test]
fn msgq_reader_stopped_with_stdout_blocked_prints_the_message_in_hand_whole() {
    let k = TestKey::new();
    let text = "x".repeat(8000);
    let line = |i: usize| format!("{i} {text}").into_bytes();
    // --wait: the queue holds two such messages; the writer sends the rest as they are taken.
    let w = Running::spawn(msgq(&k, "writer").args(["--wait", "--numbered", "--repeat", "20", &text]));
    let (out, stdout) = unread_pipe(false);
    let r = Running::spawn_with_stdout(msgq(&k, "reader").args(["--count", "20"]), stdout);
    let (said, done, printed) = stop_while_blocked(r, out, Signal::SIGTERM);
    let lines = whole_lines(&printed);
    assert!(lines.len() >= 8, "the pipe held {} lines", lines.len());
    for (i, got) in lines.iter().enumerate() {
        assert!(*got == line(i), "line {i} is not message {i}: {} bytes", got.len());
    }
    assert_eq!(done.shell_status(), 143, "{done:?}");
    assert!(said.is_some(), "the stop did not wait for the message in hand: {done:?}");
    assert!(done.stderr.contains("in place: it still holds"), "{}", done.stderr);

    let taken = lines.len();
    let rest = Running::spawn(msgq(&k, "reader").args(["--count", &(20 - taken).to_string()])).finish();
    assert!(rest.status.success(), "{rest:?}");
    let expected: Vec<Vec<u8>> = (taken..20).map(line).collect();
    let got: Vec<&[u8]> = whole_lines(&rest.stdout);
    assert!(got == expected.iter().map(Vec::as_slice).collect::<Vec<_>>(), "the next reader got another order");
    let w = w.finish();
    assert!(w.status.success(), "{w:?}");
    k.assert_clean();
}

fn file_reader() -> Command {
    Command::new(bin("file-ipc", "reader"))
}

/// file-ipc: a 100,001-byte message into a blocked stdout. SIGTERM waits until it is printed
/// whole, then the reader removes it: printed once, never put back to be printed again. It used to
/// put it back after 2 s with 65,536 bytes of it printed, and the next reader printed it all again.
#[test]
fn file_reader_stopped_with_stdout_blocked_prints_a_long_message_once_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("msg");
    let msg: String = (0..100_001).map(|i| char::from(b'0' + (i % 10) as u8)).collect();
    run(Command::new(bin("file-ipc", "writer")).arg("--path").arg(&path).arg(&msg)).success();
    let (out, stdout) = unread_pipe(false);
    let r = Running::spawn_with_stdout(file_reader().arg("--path").arg(&path), stdout);
    let (said, done, printed) = stop_while_blocked(r, out, Signal::SIGTERM);
    assert!(printed == format!("{msg}\n").as_bytes(), "printed {} bytes, not the message once", printed.len());
    assert_eq!(done.shell_status(), 143, "{done:?}");
    assert!(said.is_some(), "the stop did not wait for the message in hand: {done:?}");
    assert!(entries(dir.path()).is_empty(), "put back after it was printed: {:?}", entries(dir.path()));
}

/// The second stop: a reader whose stop waits for a blocked stdout ends at once on a second stop
/// signal, with its status, and one line naming the message given up. That message is lost, not
/// delivered again: the next reader gets the ones after it (msgq), finds no file of it left at
/// the path (file-ipc), or no line left of it in the FIFO.
#[test]
fn a_second_stop_gives_up_the_message_in_hand_and_names_it() {
    // Stopped (SIGTERM) while blocked on stdout, then again (SIGINT): it ends at once naming the
    // message `first`, none of which was printed whole (the pipe is still full).
    let stop_twice = |mut r: Running, out, first: &str| {
        blocked_on_stdout(&r);
        r.signal(Signal::SIGTERM);
        r.wait_for_stderr(WAITS);
        r.signal(Signal::SIGINT);
        let done = r.finish();
        let printed = drain(out);
        let line = done.stderr.lines().find(|l| l.contains("stopped again (SIGINT)")).unwrap_or_else(|| {
            panic!("no line about the message given up: {done:?}");
        });
        assert!(line.contains("message 1 of this run") && line.contains(first) && line.contains("is lost"), "{line}");
        assert_eq!(done.stderr.matches("is lost").count(), 1, "{}", done.stderr);
        assert_eq!(done.shell_status(), 130, "{done:?}");
        assert!(whole_lines(&printed.join().unwrap()).is_empty(), "nothing of it was printed whole");
    };

    // msgq, SysV: message 0 given up, 1 and 2 for the next reader.
    let k = TestKey::new();
    let text = "y".repeat(8000);
    run(msgq(&k, "writer").args(["--numbered", "--repeat", "2", &text])).success();
    let (out, stdout) = unread_pipe(true);
    let r = Running::spawn_with_stdout(msgq(&k, "reader").args(["--count", "2"]), stdout);
    stop_twice(r, out, &format!("8002 bytes, \"0 {}...\"", &text[..22]));
    run(&mut msgq(&k, "reader")).success().stdout(format!("1 {text}\n"));
    k.assert_clean();

    // file-ipc: taken from the path before its print, nothing of it is left.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("msg");
    run(Command::new(bin("file-ipc", "writer")).arg("--path").arg(&path).arg("given up")).success();
    let (out, stdout) = unread_pipe(true);
    let r = Running::spawn_with_stdout(file_reader().arg("--path").arg(&path), stdout);
    stop_twice(r, out, "8 bytes, \"given up\")");
    assert!(entries(dir.path()).is_empty(), "left to be delivered again: {:?}", entries(dir.path()));

    // FIFO: the line printed from a peeked copy is taken from the FIFO, the next one stays.
    let fifo = dir.path().join("f");
    let pipe = |name| Command::new(bin("pipe-ipc", name));
    let (out, stdout) = unread_pipe(true);
    let mut r = Running::spawn_with_stdout(pipe("reader").arg("--fifo").arg("--path").arg(&fifo), stdout);
    r.wait_for_stderr("reader: waiting");
    let w = Running::spawn(pipe("writer").arg("--fifo").arg("--path").arg(&fifo).args(["first", "second"]));
    stop_twice(r, out, "5 bytes, \"first\")");
    let next = Running::spawn(pipe("reader").arg("--fifo").arg("--path").arg(&fifo)).finish();
    assert_eq!(next.stdout_str(), "second\n", "{next:?}");
    assert!(w.finish().status.success());
    assert!(entries(dir.path()).is_empty(), "{:?}", entries(dir.path()));
}

/// `reader --keep` stopped while it prints: the message is printed whole, then the objects stay;
/// stopped while it waits: it ends 130 and they stay. `--clean` removes them. It used to die at
/// once, without its stop guard, losing the message being printed.
#[test]
fn keep_readers_print_the_message_in_hand_whole_and_leave_their_objects() {
    let keep_stopped = |mut reader: Command, message: &str| {
        let (out, stdout) = unread_pipe(true);
        let r = Running::spawn_with_stdout(reader.arg("--keep"), stdout);
        drop(reader); // its copy of the pipe's write end
        let (said, done, printed) = stop_while_blocked(r, out, Signal::SIGTERM);
        assert!(whole_lines(&printed) == [message.as_bytes()], "not printed whole once: {done:?}");
        assert_eq!(done.shell_status(), 143, "{done:?}");
        assert!(said.is_some(), "the stop did not wait for the message in hand: {done:?}");
    };
    let keep_waiting = |reader: &mut Command| {
        let mut r = Running::spawn(reader.arg("--keep"));
        r.wait_for_stderr("reader: waiting");
        r.signal(Signal::SIGINT);
        let done = r.finish();
        assert_eq!(done.shell_status(), 130, "{done:?}");
    };
    let text = "z".repeat(4000);

    let k = TestKey::new();
    run(msgq(&k, "writer").arg(&text)).success();
    keep_stopped(msgq(&k, "reader"), &text);
    assert!(sysv::msgget(k.key, 0).is_ok(), "--keep: the queue stays");
    run(msgq(&k, "reader").arg("--clean")).success();
    k.assert_clean();
    keep_waiting(&mut msgq(&k, "reader"));
    assert!(sysv::msgget(k.key, 0).is_ok(), "--keep: the queue stays");
    run(msgq(&k, "reader").arg("--clean")).success();
    k.assert_clean();

    for posix in [false, true] {
        let k = TestKey::new();
        let shm = |bin: &str| {
            let mut c = keyed("shm-ipc", bin, &k);
            c.args(posix.then_some("--posix"));
            c
        };
        let left = || match posix {
            false => sysv::shmget(k.key, 0, 0).is_ok() && sysv::semget(k.key, 0, 0).is_ok(),
            true => Path::new("/dev/shm").join(shm_ipc::shm_name(k.key).trim_start_matches('/')).exists(),
        };
        run(shm("writer").arg(&text)).success();
        keep_stopped(shm("reader"), &text);
        assert!(left(), "--keep (posix {posix}): the objects stay");
        run(shm("reader").arg("--clean")).success();
        k.assert_clean();
        keep_waiting(&mut shm("reader"));
        assert!(left(), "--keep (posix {posix}): the objects stay");
        run(shm("reader").arg("--clean")).success();
        k.assert_clean();
    }
}
