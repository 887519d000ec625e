//! msgq-ipc end to end (claims M1-M6): real SysV and POSIX queues under keys of the tests' own.

use std::process::Command;

use common::sysv;
use nix::sys::signal::Signal;
use predicates::prelude::*;
use tests::{Running, TestKey, c_program, keyed, run};

fn writer(k: &TestKey) -> Command {
    keyed("msgq-ipc", "writer", k)
}

fn reader(k: &TestKey) -> Command {
    keyed("msgq-ipc", "reader", k)
}

#[test]
fn reader_first_waits_then_prints_and_removes_the_queue() {
    let k = TestKey::new();
    let mut r = Running::spawn(&mut reader(&k));
    let ready = r.wait_for_stderr("reader: waiting on queue");
    assert!(ready.contains(&format!("cargo run -p msgq-ipc --bin writer -- --key {}", k.arg())), "{ready}");
    run(&mut writer(&k)).success().stdout("").stderr("");
    let done = r.finish();
    assert!(done.status.success(), "{done:?}");
    assert_eq!(done.stdout_str(), "Hello Message Queue\n");
    k.assert_clean();
}

#[test]
fn writer_first_makes_a_0600_queue_and_the_reader_takes_the_message() {
    let k = TestKey::new();
    run(writer(&k).arg("queued first")).success();
    let id = sysv::msgget(k.key, 0).expect("the writer made the queue");
    let ds = sysv::msg_stat(id).unwrap();
    assert_eq!(ds.msg_perm.mode & 0o777, 0o600, "not the note's 0666");
    assert_eq!(ds.msg_qnum, 1);
    assert_eq!(ds.__msg_cbytes, "queued first".len() as u64 + 1, "text plus NUL, as the C sends strlen+1");
    run(&mut reader(&k)).success().stdout("queued first\n");
    k.assert_clean();
}

#[test]
fn mode_widens_only_when_asked() {
    let k = TestKey::new();
    run(writer(&k).args(["--mode", "640", "x"])).success();
    let ds = sysv::msg_stat(sysv::msgget(k.key, 0).unwrap()).unwrap();
    assert_eq!(ds.msg_perm.mode & 0o777, 0o640);
    run(&mut reader(&k)).success();
}

#[test]
fn message_types_pick_which_message_comes_out() {
    let k = TestKey::new();
    let send_3_1_2 = || {
        for (t, text) in [("3", "three"), ("1", "one"), ("2", "two")] {
            run(writer(&k).args(["--type", t, text])).success();
        }
    };
    send_3_1_2();
    // M1: type 0 takes the oldest, so all three come out in send order.
    run(reader(&k).args(["--type", "0", "--count", "3"])).success().stdout("three\none\ntwo\n");
    send_3_1_2();
    run(reader(&k).args(["--type", "2", "--keep"])).success().stdout("two\n");
    // -2: the lowest type <= 2 first, whatever the order of sending.
    run(reader(&k).args(["--type", "-2", "--keep"])).success().stdout("one\n");
    run(reader(&k).args(["--type", "0"])).success().stdout("three\n");
    k.assert_clean();
}

#[test]
fn a_c_sender_and_our_reader_and_our_writer_and_a_c_receiver() {
    let k = TestKey::new();
    let status = Command::new(c_program("msg_send")).args([&k.arg(), "from C"]).status().unwrap();
    assert!(status.success());
    run(&mut reader(&k)).success().stdout("from C\n");

    run(writer(&k).arg("from Rust")).success();
    let out = Command::new(c_program("msg_recv")).arg(k.arg()).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "from Rust\n");
    k.assert_clean();
}

#[test]
fn a_full_queue_is_a_clear_error_and_wait_blocks_instead() {
    let k = TestKey::new();
    let big = "x".repeat(4000);
    // kernel.msgmnb (16384) bytes hold four such messages, not five.
    run(writer(&k).args([&big, &big, &big, &big, &big]))
        .code(1)
        .stderr(predicate::str::contains("msgsnd(queue").and(predicate::str::contains("kernel.msgmnb")));
    let mut w = Running::spawn(writer(&k).args(["--wait", &big]));
    w.wait_for_stderr("writer: waiting for room in queue");
    run(reader(&k).args(["--count", "5"])).success().stdout(format!("{big}\n").repeat(5));
    assert!(w.finish().status.success());
    k.assert_clean();
}

#[test]
fn an_oversized_message_is_refused_before_any_call() {
    let k = TestKey::new();
    let huge = "y".repeat(9000);
    run(writer(&k).arg(&huge)).code(2).stderr(predicate::str::contains("kernel.msgmax"));
    k.assert_clean(); // no queue was made
}

#[test]
fn a_missing_queue_with_no_create_names_call_key_and_hint() {
    let k = TestKey::new();
    run(reader(&k).arg("--no-create")).code(1).stderr(format!(
        "reader: msgget(key {}): No such file or directory; no queue has that key; start the writer first\n",
        k.arg()
    ));
}

#[test]
fn the_reader_leaves_a_queue_that_still_holds_messages() {
    let k = TestKey::new();
    run(writer(&k).args(["a", "b", "c"])).success();
    run(&mut reader(&k)).success().stdout("a\n").stderr(predicate::str::contains("still holds 2 message(s)"));
    assert!(sysv::msgget(k.key, 0).is_ok(), "the queue with unread messages stays");
    run(reader(&k).args(["--count", "2"])).success().stdout("b\nc\n");
    k.assert_clean();
}

#[test]
fn stopped_reader_removes_its_queue_and_ends_130_or_143() {
    for (sig, status) in [(Signal::SIGINT, 130), (Signal::SIGTERM, 143)] {
        let k = TestKey::new();
        let mut r = Running::spawn(&mut reader(&k));
        r.wait_for_stderr("reader: waiting");
        r.signal(sig);
        assert_eq!(r.finish().shell_status(), status);
        k.assert_clean();
    }
}

#[test]
fn ctrl_z_and_fg_do_not_lose_the_wait() {
    let k = TestKey::new();
    let mut r = Running::spawn(&mut reader(&k));
    r.wait_for_stderr("reader: waiting");
    r.signal(Signal::SIGSTOP);
    r.signal(Signal::SIGCONT); // msgrcv now fails with EINTR: the reader must wait again
    run(writer(&k).arg("after fg")).success();
    let done = r.finish();
    assert!(done.status.success(), "{done:?}");
    assert_eq!(done.stdout_str(), "after fg\n");
}

#[test]
fn two_clients_of_one_server_each_get_their_own_reply() {
    let k = TestKey::new();
    let mut server = Running::spawn(reader(&k).arg("--serve"));
    server.wait_for_stderr("reader: waiting for requests");
    let a = Running::spawn(writer(&k).args(["--request", "from a"]));
    let b = Running::spawn(writer(&k).args(["--request", "from b"]));
    let (a, b) = (a.finish(), b.finish());
    assert_eq!(a.stdout_str(), "re: from a\n");
    assert_eq!(b.stdout_str(), "re: from b\n");
    server.signal(Signal::SIGINT);
    let done = server.finish();
    assert_eq!(done.shell_status(), 130);
    assert_eq!(done.stdout_str().lines().count(), 2, "{done:?}");
    k.assert_clean();
}

#[test]
fn posix_queue_either_order() {
    let k = TestKey::new();
    let mut r = Running::spawn(reader(&k).arg("--posix"));
    r.wait_for_stderr("reader: waiting on POSIX queue");
    run(writer(&k).args(["--posix", "over mq_open"])).success();
    assert_eq!(r.finish().stdout_str(), "over mq_open\n");
    run(writer(&k).args(["--posix", "writer first"])).success();
    run(reader(&k).arg("--posix")).success().stdout("writer first\n");
    k.assert_clean();
}

#[test]
fn clean_removes_a_queue_left_by_a_killed_reader() {
    let k = TestKey::new();
    let mut r = Running::spawn(&mut reader(&k));
    r.wait_for_stderr("reader: waiting");
    r.signal(Signal::SIGKILL); // nothing can clean up after SIGKILL
    assert_eq!(r.finish().shell_status(), 137);
    assert!(sysv::msgget(k.key, 0).is_ok());
    run(reader(&k).arg("--clean")).success().stderr(format!("reader: removed queue {}\n", k.arg()));
    k.assert_clean();
}
