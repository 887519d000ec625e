//! Users' mistakes and rough handling, across the mechanisms: bad input gets one clear line and the
//! right exit status, nothing is left behind, nothing is lost, objects are private by default.

use std::io::{BufRead, BufReader};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};

use common::sysv;
use nix::sys::signal::Signal;
use predicates::prelude::*;
use tests::{Running, TestKey, as_nobody, bin, cmd, entries, keyed, run};

#[test]
fn bad_keys_are_bad_usage_everywhere() {
    for (package, name) in
        [("msgq-ipc", "writer"), ("msgq-ipc", "reader"), ("shm-ipc", "writer"), ("shm-ipc", "reader")]
    {
        for key in ["0", "0x100000000", "4294967296", "twelve", "-5"] {
            cmd(package, name)
                .arg(format!("--key={key}"))
                .assert()
                .code(2)
                .stderr(predicate::str::contains("--key").and(predicate::str::contains("panicked").not()));
        }
    }
}

#[test]
fn a_missing_segment_with_no_create_names_call_key_and_hint() {
    let k = TestKey::new();
    run(keyed("shm-ipc", "reader", &k).arg("--no-create")).code(1).stderr(format!(
        "reader: semget(key {}): No such file or directory; nothing has that key yet; start the writer first\n",
        k.arg()
    ));
    k.assert_clean();
}

#[test]
fn another_users_queue_or_segment_is_eacces_explained() {
    // msgget/shmget with flags 0 succeed for another user's object; msgrcv or IPC_STAT refuse.
    for (package, refused) in [
        ("msgq-ipc", "reader: msgrcv(queue {key}): Permission denied; the queue belongs to another user"),
        ("shm-ipc", "reader: shmctl(IPC_STAT)(key {key}): Permission denied; it belongs to another user"),
    ] {
        let Some((_dir, mut nobody_reader)) = as_nobody(package, "reader") else { return };
        let k = TestKey::new();
        run(keyed(package, "writer", &k).arg("root's")).success();
        let out = nobody_reader.args(["--key", &k.arg()]).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.starts_with(&refused.replace("{key}", &k.arg())), "{package}: {err}");
        run(&mut keyed(package, "reader", &k)).success().stdout("root's\n"); // the message is intact
        k.assert_clean();
    }
}

/// Root shares its objects with --mode 666; user nobody reads the message, exits 0 and leaves the
/// objects to their owner with one line (it may use them, not remove them).
#[test]
fn another_users_shared_objects_are_read_and_left_to_their_owner() {
    for (package, posix) in [("msgq-ipc", false), ("msgq-ipc", true), ("shm-ipc", false), ("shm-ipc", true)] {
        let Some((_dir, mut nobody_reader)) = as_nobody(package, "reader") else { return };
        let k = TestKey::new();
        let mut w = keyed(package, "writer", &k);
        w.args(["--mode", "666", "shared"]);
        if posix {
            w.arg("--posix");
        }
        run(&mut w).success();
        nobody_reader.args(["--key", &k.arg()]);
        if posix {
            nobody_reader.arg("--posix");
        }
        let out = nobody_reader.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{package} (posix: {posix}): {out:?}");
        assert_eq!(out.stdout, b"shared\n", "{package} (posix: {posix})");
        assert!(
            err.contains("left") && err.contains("in place: it is uid 0's, and only its owner (or root) may remove it"),
            "{package} (posix: {posix}): {err}"
        );
        assert!(!k.take_leftovers().is_empty(), "{package} (posix: {posix}): the owner's objects were kept");
    }
}

#[test]
fn non_utf8_bytes_pass_through_queues_and_segments() {
    let raw = std::ffi::OsStr::from_bytes(b"\xff\xfe caf\xe9");
    for package in ["msgq-ipc", "shm-ipc"] {
        let k = TestKey::new();
        run(keyed(package, "writer", &k).arg(raw)).success();
        let out = keyed(package, "reader", &k).output().unwrap();
        assert_eq!(out.stdout, b"\xff\xfe caf\xe9\n", "{package}");
        k.assert_clean();
    }
}

#[test]
fn a_reader_whose_stdout_closes_stops_quietly() {
    let k = TestKey::new();
    run(keyed("msgq-ipc", "writer", &k).args(["a", "b", "c"])).success();
    let mut r = keyed("msgq-ipc", "reader", &k)
        .args(["--count", "3"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(r.stdout.take().unwrap()).read_line(&mut first).unwrap(); // then closed: `| head -1`
    let out = r.wait_with_output().unwrap();
    assert_eq!(first, "a\n");
    assert!(out.status.success() || out.status.signal() == Some(libc::SIGPIPE), "{:?}", out.status);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
    run(keyed("msgq-ipc", "reader", &k).arg("--clean")).success();
}

#[test]
fn clean_recovers_what_a_sigkill_left() {
    // file: a writer killed while it waits leaves its temp file beside the unread message.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("msg");
    let mut w = Running::spawn(Command::new(bin("file-ipc", "writer")).arg("--path").arg(&path).args(["one", "two"]));
    w.wait_for_stderr("writer: waiting");
    w.signal(Signal::SIGKILL);
    w.finish();
    assert_eq!(entries(dir.path()).len(), 2, "message and temp file");
    cmd("file-ipc", "reader")
        .arg("--path")
        .arg(&path)
        .arg("--clean")
        .assert()
        .success()
        .stderr(predicate::str::contains("removed"));
    assert!(entries(dir.path()).is_empty());

    // FIFO: a reader killed while it waits in open().
    let fifo = format!("--path={}", dir.path().join("f").display());
    let mut r = Running::spawn(Command::new(bin("pipe-ipc", "reader")).args(["--fifo", &fifo]));
    r.wait_for_stderr("reader: waiting");
    r.signal(Signal::SIGKILL);
    r.finish();
    assert_eq!(entries(dir.path()), ["f"]);
    cmd("pipe-ipc", "reader")
        .args(["--fifo", &fifo, "--clean"])
        .assert()
        .success()
        .stderr(predicate::str::contains("removed FIFO"));
    assert!(entries(dir.path()).is_empty());
}

/// `0 MSG`, `1 MSG`, ...: what a `--numbered --repeat N` writer sends.
fn numbered(n: usize, msg: &str) -> Vec<String> {
    (0..n).map(|i| format!("{i} {msg}")).collect()
}

fn assert_lines(stdout: &[u8], want: &[String]) {
    let got: Vec<&str> = std::str::from_utf8(stdout).unwrap().lines().collect();
    assert_eq!(got.len(), want.len(), "count");
    if let Some(i) = got.iter().zip(want).position(|(g, w)| g != w) {
        panic!("message {i}: got {:?}, want {:?} (lost, doubled or reordered)", got[i], want[i]);
    }
}

#[test]
fn a_hundred_thousand_through_a_pipe() {
    let mut w = Command::new(bin("pipe-ipc", "writer"))
        .args(["--numbered", "--repeat", "100000", "m"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let done = Running::spawn(Command::new(bin("pipe-ipc", "reader")).stdin(w.stdout.take().unwrap())).finish();
    assert!(w.wait().unwrap().success() && done.status.success());
    assert_lines(&done.stdout, &numbered(100_000, "m"));
}

#[test]
fn a_hundred_thousand_through_a_message_queue_and_shared_memory() {
    for (package, wait) in [("msgq-ipc", &["--wait"][..]), ("shm-ipc", &[][..])] {
        let k = TestKey::new();
        let r = Running::spawn(keyed(package, "reader", &k).args(["--count", "100000"]));
        let w = Running::spawn(keyed(package, "writer", &k).args(wait).args(["--numbered", "--repeat", "100000", "m"]));
        assert!(w.finish().status.success(), "{package}");
        let done = r.finish();
        assert!(done.status.success(), "{package}: {}", done.stderr);
        assert_lines(&done.stdout, &numbered(100_000, "m"));
        k.assert_clean();
    }
}

#[test]
fn ten_thousand_through_files() {
    // Each file message costs a create, a rename, an unlink and an inotify wake-up: 10,000 here.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("msg");
    let r = Running::spawn(Command::new(bin("file-ipc", "reader")).arg("--path").arg(&path).args(["--count", "10000"]));
    let w = Running::spawn(Command::new(bin("file-ipc", "writer")).arg("--path").arg(&path).args([
        "--numbered",
        "--repeat",
        "10000",
        "m",
    ]));
    assert!(w.finish().status.success());
    let done = r.finish();
    assert_lines(&done.stdout, &numbered(10_000, "m"));
    assert!(entries(dir.path()).is_empty());
}

#[test]
fn standard_signals_merge_while_realtime_ones_queue() {
    // 10,000 queued values in order are in signal_ipc.rs; here, that SIGUSR1 merges: the demo's
    // child blocks it, receives three and takes it once.
    cmd("signal-ipc", "demo").assert().success().stdout(predicate::str::contains("SIGUSR1 arrived 1 time(s)"));
}

#[test]
fn mode_widens_only_when_asked_for_every_mechanism() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("msg");
    cmd("file-ipc", "writer").arg("--path").arg(&path).args(["--mode", "640", "x"]).assert().success();
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o640);
    std::fs::remove_file(&path).unwrap();

    let fifo = dir.path().join("f");
    let mut w = Running::spawn(
        Command::new(bin("pipe-ipc", "writer"))
            .arg("--fifo")
            .arg(format!("--path={}", fifo.display()))
            .args(["--mode", "640"]),
    );
    w.wait_for_stderr("writer: waiting");
    assert_eq!(std::fs::metadata(&fifo).unwrap().permissions().mode() & 0o777, 0o640);
    drop(w); // SIGTERM: the waiting writer removes its FIFO

    let k = TestKey::new();
    run(keyed("shm-ipc", "writer", &k).args(["--mode", "640"])).success();
    let ds = sysv::shm_stat(sysv::shmget(k.key, 0, 0).unwrap()).unwrap();
    assert_eq!(ds.shm_perm.mode & 0o777, 0o640);
    run(&mut keyed("shm-ipc", "reader", &k)).success();
    k.assert_clean();
    cmd("msgq-ipc", "writer")
        .args(["--mode", "999"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("not a permission mode"));
}

#[test]
fn ctrl_z_and_fg_on_every_waiting_reader() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("msg");
    let fifo = format!("--path={}", dir.path().join("f").display());
    let cases: Vec<(Command, Command, &str)> = vec![
        (
            {
                let mut c = Command::new(bin("file-ipc", "reader"));
                c.arg("--path").arg(&path);
                c
            },
            {
                let mut c = Command::new(bin("file-ipc", "writer"));
                c.arg("--path").arg(&path).arg("after fg");
                c
            },
            "after fg\n",
        ),
        (
            {
                let mut c = Command::new(bin("pipe-ipc", "reader"));
                c.args(["--fifo", &fifo]);
                c
            },
            {
                let mut c = Command::new(bin("pipe-ipc", "writer"));
                c.args(["--fifo", &fifo, "after fg"]);
                c
            },
            "after fg\n",
        ),
    ];
    for (mut reader, mut writer, want) in cases {
        let mut r = Running::spawn(&mut reader);
        r.wait_for_stderr("reader: waiting");
        r.signal(Signal::SIGSTOP);
        r.signal(Signal::SIGCONT);
        run(&mut writer).success();
        assert_eq!(r.finish().stdout_str(), want);
    }
    assert!(entries(dir.path()).is_empty());
}

#[test]
fn a_reader_started_with_sigint_ignored_stays_deaf_to_it() {
    // As a non-interactive shell starts `reader &`: SIGINT ignored. Then only SIGTERM stops it.
    use std::os::unix::process::CommandExt;
    let k = TestKey::new();
    let mut reader = keyed("msgq-ipc", "reader", &k);
    // SAFETY: signal() is async-signal-safe, as pre_exec requires.
    unsafe {
        reader.pre_exec(|| {
            libc::signal(libc::SIGINT, libc::SIG_IGN);
            Ok(())
        });
    }
    let mut r = Running::spawn(&mut reader);
    r.wait_for_stderr("reader: waiting");
    r.signal(Signal::SIGINT);
    r.signal(Signal::SIGTERM);
    assert_eq!(r.finish().shell_status(), 143, "SIGINT must have been ignored");
    k.assert_clean();
}
