//! file-ipc end to end (claims F1-F2): whole messages through renamed files, inotify waits.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use nix::sys::signal::Signal;
use tests::{Running, bin, cmd, entries};

fn writer() -> Command {
    Command::new(bin("file-ipc", "writer"))
}

fn reader() -> Command {
    Command::new(bin("file-ipc", "reader"))
}

#[test]
fn reader_first_waits_then_prints_the_message() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("msg");
    let mut r = Running::spawn(reader().arg("--path").arg(&path));
    let ready = r.wait_for_stderr("reader: waiting");
    assert!(ready.contains("cargo run -p file-ipc --bin writer -- --path"), "{ready}");
    cmd("file-ipc", "writer").arg("--path").arg(&path).arg("hello there").assert().success();
    let done = r.finish();
    assert!(done.status.success(), "{done:?}");
    assert_eq!(done.stdout_str(), "hello there\n");
    assert_eq!(entries(dir.path()), Vec::<String>::new(), "message and private files removed");
}

#[test]
fn writer_first_then_reader_gets_the_default_message() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("msg");
    cmd("file-ipc", "writer").arg("--path").arg(&path).assert().success();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "message file is private");
    cmd("file-ipc", "reader").arg("--path").arg(&path).assert().success().stdout("Hello File IPC\n");
    assert!(entries(dir.path()).is_empty());
}

#[test]
fn a_thousand_messages_arrive_in_order_none_lost_or_doubled() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("msg");
    let msgs: Vec<String> = (1..=1000).map(|i| format!("message {i}")).collect();
    let r = Running::spawn(reader().arg("--path").arg(&path).args(["--count", "1000"]));
    let w = Running::spawn(writer().arg("--path").arg(&path).args(&msgs));
    assert!(w.finish().status.success());
    let done = r.finish();
    assert!(done.status.success(), "{done:?}");
    let got: Vec<&str> = std::str::from_utf8(&done.stdout).unwrap().lines().collect();
    assert_eq!(got, msgs);
    assert!(entries(dir.path()).is_empty());
}

#[test]
fn writer_waits_instead_of_overwriting_an_unread_message() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("msg");
    let mut w = Running::spawn(writer().arg("--path").arg(&path).args(["first", "second"]));
    let ready = w.wait_for_stderr("writer: waiting for");
    assert!(ready.contains("to be read") && ready.contains("--bin reader"), "{ready}");
    assert_eq!(std::fs::read(&path).unwrap(), b"first", "the unread message is intact");
    cmd("file-ipc", "reader")
        .arg("--path")
        .arg(&path)
        .args(["--count", "2"])
        .assert()
        .success()
        .stdout("first\nsecond\n");
    assert!(w.finish().status.success());
}

#[test]
fn two_readers_never_get_the_same_message() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("msg");
    let mut a = Running::spawn(reader().arg("--path").arg(&path));
    let mut b = Running::spawn(reader().arg("--path").arg(&path));
    a.wait_for_stderr("reader: waiting");
    b.wait_for_stderr("reader: waiting");
    cmd("file-ipc", "writer").arg("--path").arg(&path).args(["one", "two"]).assert().success();
    let mut got = vec![a.finish().stdout_str(), b.finish().stdout_str()];
    got.sort();
    assert_eq!(got, ["one\n", "two\n"]);
}

#[test]
fn non_utf8_bytes_pass_through_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("msg");
    let raw = OsStr::from_bytes(b"caf\xe9 \xff\xfe");
    cmd("file-ipc", "writer").arg("--path").arg(&path).arg(raw).assert().success();
    let out = cmd("file-ipc", "reader").arg("--path").arg(&path).output().unwrap();
    assert_eq!(out.stdout, b"caf\xe9 \xff\xfe\n");
}

#[test]
fn stopped_reader_exits_130_or_143_and_leaves_nothing() {
    for (sig, status) in [(Signal::SIGINT, 130), (Signal::SIGTERM, 143)] {
        let dir = tempfile::tempdir().unwrap();
        let mut r = Running::spawn(reader().arg("--path").arg(dir.path().join("msg")));
        r.wait_for_stderr("reader: waiting");
        r.signal(sig);
        let done = r.finish();
        assert_eq!(done.shell_status(), status, "{sig}: {done:?}");
        assert!(entries(dir.path()).is_empty());
    }
}

#[test]
fn stopped_writer_removes_its_temp_file_and_keeps_the_delivered_message() {
    for (sig, status) in [(Signal::SIGINT, 130), (Signal::SIGTERM, 143)] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("msg");
        let mut w = Running::spawn(writer().arg("--path").arg(&path).args(["kept", "never sent"]));
        w.wait_for_stderr("writer: waiting");
        w.signal(sig);
        assert_eq!(w.finish().shell_status(), status);
        assert_eq!(entries(dir.path()), ["msg"]);
        assert_eq!(std::fs::read(&path).unwrap(), b"kept");
    }
}

#[test]
fn a_missing_directory_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing/msg");
    for bin in ["writer", "reader"] {
        cmd("file-ipc", bin)
            .arg("--path")
            .arg(&path)
            .assert()
            .code(1)
            .stderr(predicates::str::starts_with(format!("{bin}: inotify_add_watch(")))
            .stderr(predicates::str::contains("No such file or directory; the directory must exist"));
    }
}
