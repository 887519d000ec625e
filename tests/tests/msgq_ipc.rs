//! msgq-ipc end to end (claims M1-M6): real SysV and POSIX queues under keys of the tests' own.

use std::process::Command;

use common::sysv;
use msgq_ipc::msgmax;
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

/// The C program `name` (msg_send, msg_recv), its buffer as large as the crate's messages.
fn c_msg(name: &str) -> std::path::PathBuf {
    c_program(name, &[("MSGMAX", msgmax())])
}

#[test]
fn a_c_sender_and_our_reader_and_our_writer_and_a_c_receiver() {
    let k = TestKey::new();
    let status = Command::new(c_msg("msg_send")).args([&k.arg(), "from C"]).status().unwrap();
    assert!(status.success());
    run(&mut reader(&k)).success().stdout("from C\n");

    run(writer(&k).arg("from Rust")).success();
    let out = Command::new(c_msg("msg_recv")).arg(k.arg()).output().unwrap();
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

// ---- the end of a run (issue 11): the last one out removes, nothing unread is lost, nobody waits on an orphan

/// Both variants' extra arguments: System V, then POSIX.
const VARIANTS: [&[&str]; 2] = [&[], &["--posix"]];

/// `cmd` with `args`, started with its umask set to `mask` (as `sh -c 'umask 077; exec ...'`).
fn with_umask(mut cmd: Command, mask: u32) -> Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: umask is async-signal-safe, as pre_exec requires.
    unsafe {
        cmd.pre_exec(move || {
            libc::umask(mask);
            Ok(())
        });
    }
    cmd
}

/// The stderr lines other than the ready line.
fn complaints(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| !l.contains(": waiting ")).collect()
}

#[test]
fn a_count_1_reader_leaves_the_rest_for_a_second_reader() {
    for variant in VARIANTS {
        let k = TestKey::new();
        let mut first = Running::spawn(reader(&k).args(variant));
        first.wait_for_stderr("reader: waiting");
        let w = writer(&k).args(variant).args(["one", "two", "three"]).output().unwrap();
        assert!(w.status.success(), "{variant:?}: {w:?}");
        let first = first.finish();
        assert!(first.status.success(), "{variant:?}: {first:?}");
        assert_eq!(first.stdout_str(), "one\n", "{variant:?}");
        // Either the reader found two and three and left the queue, or it removed the empty queue
        // before they came and the writer sent them to a new one: one line either way (two if
        // both moved a POSIX message out of the unlinked queue at once), and the writer's line on
        // what it leaves in the queue (issue 23.3).
        let w_err = String::from_utf8_lossy(&w.stderr);
        let said: Vec<&str> = complaints(&first.stderr).into_iter().chain(complaints(&w_err)).collect();
        let leaves =
            |l: &&str| l.starts_with("writer: ") && l.contains(" wait in ") && l.contains("until a reader takes");
        assert!(said.iter().filter(|l| leaves(l)).count() <= 1, "{variant:?}: {said:?}");
        let others: Vec<&&str> = said.iter().filter(|l| !leaves(l)).collect();
        assert!((1..=2).contains(&others.len()), "{variant:?}: {said:?}");
        assert!(others.iter().all(|l| l.contains("in place") || l.contains("removed by another process")), "{said:?}");
        run(reader(&k).args(variant).args(["--count", "2"])).success().stdout("two\nthree\n");
        k.assert_clean();
    }
}

#[test]
fn of_two_readers_at_once_one_gets_the_message_and_the_other_says_the_queue_went() {
    for variant in VARIANTS {
        let k = TestKey::new();
        let mut a = Running::spawn(reader(&k).args(variant));
        let mut b = Running::spawn(reader(&k).args(variant));
        a.wait_for_stderr("reader: waiting");
        b.wait_for_stderr("reader: waiting");
        run(writer(&k).args(variant).arg("only one")).success();
        let sent = std::time::Instant::now();
        let (a, b) = (a.finish(), b.finish());
        // POSIX: the loser notices the unlink at its next 200 ms check.
        assert!(sent.elapsed() < std::time::Duration::from_secs(3), "{variant:?}: {:?}", sent.elapsed());
        let (won, lost) = if a.status.success() { (a, b) } else { (b, a) };
        assert_eq!(won.stdout_str(), "only one\n", "{variant:?}: {won:?}");
        assert!(complaints(&won.stderr).is_empty(), "{variant:?}: {won:?}");
        assert_eq!(lost.shell_status(), 1, "{variant:?}: {lost:?}");
        assert_eq!(lost.stdout_str(), "");
        let said = complaints(&lost.stderr);
        assert_eq!(said.len(), 1, "{variant:?}: one line: {said:?}");
        assert!(said[0].contains("the queue was removed by another process"), "{variant:?}: {said:?}");
        k.assert_clean();
        // The next writer's message is not sent into an orphan: a new reader gets it.
        run(writer(&k).args(variant).arg("next")).success();
        run(reader(&k).args(variant)).success().stdout("next\n");
        k.assert_clean();
    }
}

#[test]
fn a_peer_killed_while_it_waits_loses_nothing() {
    for variant in VARIANTS {
        // A reader killed while it waits leaves its (empty) queue; the next pair uses it and removes it.
        let k = TestKey::new();
        let mut r = Running::spawn(reader(&k).args(variant));
        r.wait_for_stderr("reader: waiting");
        r.signal(Signal::SIGKILL);
        assert_eq!(r.finish().shell_status(), 137);
        run(writer(&k).args(variant).args(["one", "two"])).success();
        run(reader(&k).args(variant).args(["--count", "2"])).success().stdout("one\ntwo\n");
        k.assert_clean();

        // A writer killed while it waits for room: what it sent stays for the reader.
        let full = if variant.is_empty() { 4 } else { 10 }; // 4 of 4000 bytes, or fs.mqueue.msg_max
        let text = "z".repeat(4000);
        let mut w = Running::spawn(writer(&k).args(variant).arg("--wait").args(vec![text.as_str(); full + 1]));
        w.wait_for_stderr("writer: waiting for room");
        w.signal(Signal::SIGKILL);
        assert_eq!(w.finish().shell_status(), 137);
        let out = reader(&k).args(variant).args(["--count", &full.to_string()]).output().unwrap();
        assert!(out.status.success(), "{variant:?}: {out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{text}\n").repeat(full));
        k.assert_clean();
    }
}

#[test]
fn every_waiting_process_stops_cleanly_on_sighup_and_sigquit() {
    for variant in VARIANTS {
        for (sig, status) in [(Signal::SIGHUP, 129), (Signal::SIGQUIT, 131)] {
            let k = TestKey::new();
            let mut r = Running::spawn(reader(&k).args(variant));
            r.wait_for_stderr("reader: waiting");
            r.signal(sig);
            let done = r.finish();
            assert_eq!(done.shell_status(), status, "{variant:?} {sig}: {done:?}");
            assert!(complaints(&done.stderr).is_empty(), "{done:?}");
            k.assert_clean();
        }
    }
    // The server and a client with no server: each removes the queue it waited on, the client its
    // request first (else the next server would answer a dead pid).
    let k = TestKey::new();
    let mut server = Running::spawn(reader(&k).arg("--serve"));
    server.wait_for_stderr("reader: waiting for requests");
    server.signal(Signal::SIGHUP);
    assert_eq!(server.finish().shell_status(), 129);
    k.assert_clean();
    let mut client = Running::spawn(writer(&k).args(["--request", "anyone?"]));
    client.wait_for_stderr("writer: waiting for a reply");
    client.signal(Signal::SIGHUP);
    let done = client.finish();
    assert_eq!(done.shell_status(), 129, "{done:?}");
    assert!(complaints(&done.stderr).is_empty(), "{done:?}");
    k.assert_clean();
}

#[test]
fn a_stopped_writer_leaves_what_it_sent_for_the_reader_and_says_so() {
    for variant in VARIANTS {
        let k = TestKey::new();
        let full = if variant.is_empty() { 4 } else { 10 };
        let text = "w".repeat(4000);
        let mut w = Running::spawn(writer(&k).args(variant).arg("--wait").args(vec![text.as_str(); full + 1]));
        w.wait_for_stderr("writer: waiting for room");
        w.signal(Signal::SIGHUP);
        let done = w.finish();
        assert_eq!(done.shell_status(), 129, "{variant:?}: {done:?}");
        let said = complaints(&done.stderr);
        assert_eq!(said.len(), 1, "{variant:?}: {said:?}");
        assert!(said[0].contains(&format!("in place: it still holds {full} message(s)")), "{said:?}");
        let out = reader(&k).args(variant).args(["--count", &full.to_string()]).output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{text}\n").repeat(full), "{variant:?}");
        k.assert_clean();
    }
}

#[test]
fn nohup_keeps_a_reader_waiting_through_sighup() {
    for variant in VARIANTS {
        let k = TestKey::new();
        let mut r = Running::spawn(tests::ignoring(reader(&k).args(variant), Signal::SIGHUP));
        r.wait_for_stderr("reader: waiting");
        r.signal(Signal::SIGHUP);
        run(writer(&k).args(variant).arg("still here")).success();
        let done = r.finish();
        assert!(done.status.success(), "{variant:?}: SIGHUP must have been ignored: {done:?}");
        assert_eq!(done.stdout_str(), "still here\n");
        k.assert_clean();
    }
}

/// A type above every request's (a PID) and every reply's (PID + 2^22).
const NOT_SERVED: &str = "9999999";

#[test]
fn a_stopped_client_takes_its_request_back_from_a_queue_it_did_not_make() {
    let k = TestKey::new();
    run(writer(&k).args(["--type", NOT_SERVED, "someone else's"])).success();
    let mut client = Running::spawn(writer(&k).args(["--request", "anyone?"]));
    client.wait_for_stderr("writer: waiting for a reply");
    client.signal(Signal::SIGTERM);
    assert_eq!(client.finish().shell_status(), 143);
    let ds = sysv::msg_stat(sysv::msgget(k.key, 0).expect("not the client's queue: it stays")).unwrap();
    assert_eq!(ds.msg_qnum, 1, "the request is gone, the other message is not");
    // A server started now has nobody to answer: it waits instead of replying to a dead pid.
    let mut server = Running::spawn(reader(&k).args(["--serve", "--count", "1"]));
    server.wait_for_stderr("reader: waiting for requests");
    server.signal(Signal::SIGINT);
    let done = server.finish();
    assert_eq!(done.stdout_str(), "", "{done:?}");
    assert!(done.stderr.contains("still holds 1 message(s)"), "{done:?}");
    run(reader(&k).args(["--type", NOT_SERVED])).success().stdout("someone else's\n");
    k.assert_clean();
}

#[test]
fn no_request_stops_or_blocks_the_server() {
    let k = TestKey::new();
    let send_c = |text: &str| {
        let out = Command::new(c_msg("msg_send")).args([&k.arg(), text]).output().unwrap();
        assert!(out.status.success(), "{out:?}");
    };
    send_c("nopid"); // the note's C sends type 1: no client has PID 1
    let id = sysv::msgget(k.key, 0).unwrap();
    // A reply 4 bytes longer than the request ("re: "), which filled a message; sent under our own
    // PID, a live process that is no client.
    let me = i64::from(std::process::id());
    sysv::msgsnd(id, me, format!("{}\0", "x".repeat(msgmax() - 1)).as_bytes(), 0).unwrap();
    let mut gone = Command::new("true").spawn().unwrap();
    let dead = gone.id();
    gone.wait().unwrap();
    sysv::msgsnd(id, i64::from(dead), b"are you there?\0", 0).unwrap();
    let server = Running::spawn(reader(&k).arg("--serve"));
    let client = writer(&k).args(["--request", "hello"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&client.stdout), "re: hello\n", "{client:?}");
    server.signal(Signal::SIGINT);
    let done = server.finish();
    assert_eq!(done.shell_status(), 130, "{}", done.stderr);
    // Printed: the three requests with a pid; the server kept serving after each bad one.
    assert_eq!(done.stdout_str().lines().count(), 3, "{}", done.stderr);
    // Taken lowest type first, so in the order of the PIDs: each complaint is looked for.
    let said = complaints(&done.stderr);
    assert_eq!(said.len(), 3, "{said:?}");
    let one = |what: &dyn Fn(&str) -> bool| assert_eq!(said.iter().filter(|l| what(l)).count(), 1, "{said:?}");
    one(&|l| l.contains("skipped a message of type 1 (\"nopid\")"));
    one(&|l| l.contains(&format!("dropped the reply to pid {me}: it is")) && l.contains("kernel.msgmax"));
    one(&|l| l.contains(&format!("dropped the reply to pid {dead}: no process has pid {dead}")));
    k.assert_clean();
}

#[test]
fn a_request_counts_its_replys_prefix_against_the_size_limit() {
    let k = TestKey::new();
    // Fits a plain message (with its NUL), not its reply, "re: " and it.
    let text = "r".repeat(msgmax() - 1);
    run(writer(&k).args(["--request", &text])).code(2).stderr(predicate::str::contains("\"re: \""));
    k.assert_clean();
}

#[test]
fn mode_is_exact_whatever_the_umask() {
    use nix::mqueue::{MQ_OFlag, mq_open};
    use nix::sys::stat::Mode;
    for (mask, mode) in [(0o077, 0o640), (0o022, 0o666)] {
        let k = TestKey::new();
        for variant in VARIANTS {
            let mut w = with_umask(writer(&k), mask);
            run(w.args(variant).args(["--mode", &format!("{mode:o}"), "x"])).success();
        }
        let ds = sysv::msg_stat(sysv::msgget(k.key, 0).unwrap()).unwrap();
        assert_eq!(u32::from(ds.msg_perm.mode & 0o777), mode, "SysV under umask {mask:03o}");
        let name = msgq_ipc::posix_queue_name(k.key);
        let mqd = mq_open(name.as_str(), MQ_OFlag::O_RDONLY, Mode::empty(), None).unwrap();
        let st = nix::sys::stat::fstat(std::os::fd::AsFd::as_fd(&mqd)).unwrap();
        assert_eq!(st.st_mode & 0o777, mode, "POSIX under umask {mask:03o}");
        nix::mqueue::mq_close(mqd).unwrap();
        for variant in VARIANTS {
            run(reader(&k).args(variant)).success().stdout("x\n");
        }
        k.assert_clean();
    }
}

#[test]
fn a_queue_left_closed_by_a_killed_reader_is_reopened_by_the_next_writer_and_loses_nothing() {
    // A reader closes an empty queue to senders (msg_qbytes 0) just before IPC_RMID; killed in
    // between, it leaves it closed. Done here by hand.
    let k = TestKey::new();
    run(writer(&k).arg("before")).success();
    let id = sysv::msgget(k.key, 0).unwrap();
    let mut ds = sysv::msg_stat(id).unwrap();
    ds.msg_qbytes = 0;
    sysv::msg_set(id, &ds).unwrap();
    // The writer waits a bounded time for the queue to reopen or go, then reopens it, saying so,
    // and sends: nobody else ever would, and the next pair must not be wedged.
    run(writer(&k).arg("after"))
        .success()
        .stderr(predicate::str::contains("stayed closed (msg_qbytes 0)").and(predicate::str::contains("reopened it")));
    assert!(sysv::msg_stat(id).unwrap().msg_qbytes > 0, "the queue was not reopened");
    // Both messages are intact and in order, and the last reader removes the queue.
    run(reader(&k).args(["--count", "2"])).success().stdout("before\nafter\n").stderr("");
    k.assert_clean();
}

/// The waiting line says which types the reader waits for and what the queue already holds, and
/// does not claim that no writer runs (a queue cannot tell).
#[test]
fn the_waiting_line_names_the_types_and_what_the_queue_holds() {
    let k = TestKey::new();
    run(writer(&k).args(["--type", "3", "three"])).success();
    let mut r = Running::spawn(reader(&k).args(["--type", "-2"]));
    let line = r.wait_for_stderr("reader: waiting");
    assert!(
        line.contains("for a message of type 1 to 2 (the lowest first); it holds 1 message, of another type"),
        "{line}"
    );
    assert!(line.contains("if no writer runs, start one: cargo run -p msgq-ipc --bin writer"), "{line}");
    run(writer(&k).args(["--type", "2", "two"])).success();
    let done = r.finish();
    assert_eq!(done.stdout_str(), "two\n");
    assert!(done.stderr.contains("it still holds 1 message(s) for the next reader"), "{}", done.stderr);
    run(reader(&k).args(["--type", "0"])).success().stdout("three\n");
    k.assert_clean();
}

/// `writer --request a b` sends two requests and prints both replies; the server that ends with
/// --count waits for its last reply to be taken and removes the queue.
#[test]
fn every_message_of_a_request_is_one_request() {
    let k = TestKey::new();
    let mut server = Running::spawn(reader(&k).args(["--serve", "--count", "2"]));
    server.wait_for_stderr("reader: waiting for requests");
    run(writer(&k).args(["--request", "hi", "there"])).success().stdout("re: hi\nre: there\n");
    let done = server.finish();
    assert!(done.status.success(), "{done:?}");
    k.assert_clean();
}

/// A reader stopped at the instant a message arrives: the message is printed or stays in the queue
/// for the next reader, never lost while its writer exits 0 (the stop thread lets the main thread
/// print what it took first: common::gate). Many rounds, to meet the instant.
#[test]
fn a_reader_stopped_as_a_message_arrives_loses_nothing() {
    let k = TestKey::new();
    for round in 0..60 {
        let mut r = Running::spawn(&mut reader(&k));
        r.wait_for_stderr("reader: waiting");
        let mut w = writer(&k).arg(format!("m{round}")).spawn().unwrap();
        // It may have taken the message and ended already (ESRCH): that round is fine too.
        let _ = nix::sys::signal::kill(r.pid, Signal::SIGTERM);
        let done = r.finish();
        assert!(w.wait().unwrap().success());
        if done.stdout_str() != format!("m{round}\n") {
            assert_eq!(done.stdout_str(), "", "round {round}: {done:?}");
            let id = sysv::msgget(k.key, 0).unwrap_or_else(|e| panic!("round {round}: lost, no queue: {e}; {done:?}"));
            assert_eq!(sysv::msg_stat(id).unwrap().msg_qnum, 1, "round {round}: lost; {done:?}");
            run(&mut reader(&k)).success().stdout(format!("m{round}\n"));
        }
        k.assert_clean();
    }
}

// Moved from hardening.rs (issue 14).

#[test]
fn a_reader_whose_stdout_closes_stops_quietly() {
    use std::io::{BufRead, BufReader};
    use std::os::unix::process::ExitStatusExt;
    use std::process::Stdio;
    let k = tests::TestKey::new();
    tests::run(tests::keyed("msgq-ipc", "writer", &k).args(["a", "b", "c"])).success();
    let mut r = tests::keyed("msgq-ipc", "reader", &k)
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
    tests::run(tests::keyed("msgq-ipc", "reader", &k).arg("--clean")).success();
}

/// `--trace` (issue 15): each side's lines are exactly the calls strace sees, System V and POSIX
/// (a wait loop's repeated EAGAIN shows once).
#[test]
fn trace_prints_the_calls_strace_sees() {
    use tests::strace::{self, Straced};
    if !strace::available() {
        return;
    }
    const SYSV: &[&str] = &["msgget", "msgsnd", "msgrcv", "msgctl"];
    const POSIX: &[&str] = &["mq_open", "fchmod", "mq_getsetattr", "mq_timedsend", "mq_timedreceive", "mq_unlink"];
    for (flags, calls) in [(&["--trace"][..], SYSV), (&["--trace", "--posix"][..], POSIX)] {
        let k = TestKey::new();
        let mut r_traced = Straced::new(reader(&k).args(flags), calls, false);
        let mut r = Running::spawn(&mut r_traced.command);
        r.wait_for_stderr("reader: waiting");
        let mut w_traced = Straced::new(writer(&k).args(flags), calls, false);
        let w = w_traced.command.output().expect("run the writer under strace");
        assert!(w.status.success(), "{w:?}");
        let done = r.finish();
        assert_eq!(done.stdout_str(), "Hello Message Queue\n");
        let sides = [
            ("writer", strace::ours(&w.stderr), w_traced.calls()),
            ("reader", strace::ours(done.stderr.as_bytes()), r_traced.calls()),
        ];
        for (side, ours, theirs) in sides {
            assert!(!ours.is_empty(), "{side} traced nothing: {flags:?}");
            strace::assert_exact(&ours, &theirs, calls);
        }
        k.assert_clean();
    }
}

/// Issue 23.6: a msgrcv that a signal cuts short shows as strace shows it, `= ? ERESTARTNOHAND (To
/// be restarted if no handler)`, and then the call made again. Ctrl-Z and `fg` (SIGSTOP, SIGCONT)
/// interrupt the blocking msgrcv and the kernel restarts it (strace shows the interrupted call, the
/// program never sees it); then a stop (SIGINT) wakes it through the stop's SIGURG handler, and
/// the trace shows that interrupted msgrcv, then the stop's clean-up.
#[test]
fn trace_shows_a_msgrcv_cut_short_by_a_stop_as_strace_does() {
    use tests::strace::{self, Straced};
    if !strace::available() {
        return;
    }
    const SYSV: &[&str] = &["msgget", "msgsnd", "msgrcv", "msgctl"];
    let k = TestKey::new();
    let mut r_cmd = reader(&k);
    r_cmd.arg("--trace");
    let mut r_traced = Straced::new(&r_cmd, SYSV, true); // -f: the stop thread cleans up
    let mut r = Running::spawn(&mut r_traced.command);
    r.wait_for_stderr("reader: waiting");
    let pid = tracee(r.pid, r_cmd.get_program());
    let msgrcv = libc::SYS_msgrcv;
    tests::procfs::wait_until("the reader blocked in msgrcv", || tests::procfs::syscall(pid) == Some(msgrcv));
    nix::sys::signal::kill(pid, Signal::SIGSTOP).expect("SIGSTOP");
    tests::procfs::wait_until("the reader stopped", || matches!(tests::procfs::state(pid), Some('T' | 't')));
    nix::sys::signal::kill(pid, Signal::SIGCONT).expect("SIGCONT");
    tests::procfs::wait_until("the reader back in msgrcv", || {
        tests::procfs::state(pid) == Some('S') && tests::procfs::syscall(pid) == Some(msgrcv)
    });
    nix::sys::signal::kill(pid, Signal::SIGINT).expect("SIGINT");
    let done = r.finish();
    assert_eq!(done.shell_status(), 130, "{done:?}");
    let ours = strace::ours(done.stderr.as_bytes());
    let cut = "? ERESTARTNOHAND (To be restarted if no handler)";
    assert!(
        ours.iter().any(|c| c.name == "msgrcv" && c.result == cut),
        "no msgrcv = {cut} in --trace:\n{}",
        done.stderr
    );
    assert!(!done.stderr.contains("EINTR"), "{}", done.stderr);
    strace::assert_exact(&ours, &r_traced.calls(), SYSV);
    k.assert_clean();
}

// ---- crash-safe delivery (issue 20): no stop drops another's request, leaves a reply nobody takes,
// or leaves what it made

/// Polls `probe` every millisecond until it gives something, failing after the harness's timeout:
/// for events that nothing announces (a queue made, a process started).
fn wait_until<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + tests::running::TIMEOUT;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(std::time::Instant::now() < deadline, "no {what} within {:?}", tests::running::TIMEOUT);
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// The process that strace (`strace_pid`) started as `program`, once it runs (strace forks
/// short-lived children of its own first, to probe ptrace).
fn tracee(strace_pid: nix::unistd::Pid, program: &std::ffi::OsStr) -> nix::unistd::Pid {
    let children = format!("/proc/{strace_pid}/task/{strace_pid}/children");
    let runs = |pid: &i32| {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        cmdline.split(|&b| b == 0).next() == Some(std::os::unix::ffi::OsStrExt::as_bytes(program))
    };
    let pid = wait_until("process under strace", || {
        std::fs::read_to_string(&children).ok()?.split_whitespace().filter_map(|p| p.parse().ok()).find(runs)
    });
    nix::unistd::Pid::from_raw(pid)
}

/// `cmd` run under strace with `options` (its output to stderr), e.g. `-e inject=...`.
fn under_strace(cmd: &Command, options: &[&str]) -> Command {
    let mut c = Command::new("strace");
    c.arg("-qq").args(options).arg("--").arg(cmd.get_program()).args(cmd.get_args());
    c
}

/// A stopped client takes back only its own request (its type is its PID), so clients waiting for
/// room that take the room it frees lose nothing: every other client is served, or told that the
/// server could not reply, and the server prints every other request once.
#[test]
fn a_stopped_client_never_drops_another_clients_request() {
    let k = TestKey::new();
    // Four requests of 4000 bytes fill the queue (kernel.msgmnb, 16384 bytes); two more clients
    // wait for room. The fourth is stopped: under strace, each of its msgsnd first waits 200 ms,
    // so a stop that took the others' requests out and put them back (as it once did) leaves the
    // waiting clients time to take the room.
    let text = |i: usize| format!("{i}{}", "q".repeat(3999));
    let traced = tests::strace::available();
    let mut clients = Vec::new();
    for i in 0..6 {
        let mut cmd = writer(&k);
        cmd.args(["--request", &text(i)]);
        let mut cmd = match i {
            3 if traced => under_strace(
                &cmd,
                &["-f", "-o", "/dev/null", "-e", "trace=msgsnd", "-e", "inject=msgsnd:delay_enter=200000"],
            ),
            _ => cmd,
        };
        let mut c = Running::spawn(&mut cmd);
        c.wait_for_stderr(if i < 4 { "writer: waiting for a reply" } else { "writer: waiting for room" });
        clients.push((i, c));
    }
    let (_, stopped) = clients.remove(3);
    let stopped_pid = if traced { tracee(stopped.pid, writer(&k).get_program()) } else { stopped.pid };
    nix::sys::signal::kill(stopped_pid, Signal::SIGTERM).unwrap();
    let done = stopped.finish();
    assert_eq!(done.shell_status(), 143, "{done:?}");
    assert!(complaints(&done.stderr).is_empty(), "{done:?}");
    let server = Running::spawn(reader(&k).args(["--serve", "--count", "5"]));
    for (i, c) in clients {
        let done = c.finish();
        if done.status.success() {
            assert_eq!(done.stdout_str(), format!("re: {}\n", text(i)), "client {i}");
        } else {
            assert_eq!(done.shell_status(), 1, "client {i}: {done:?}");
            assert!(done.stderr.contains("could not reply: the queue was full"), "client {i}: {done:?}");
        }
    }
    let done = server.finish();
    assert!(done.status.success(), "{done:?}");
    let mut printed: Vec<String> =
        done.stdout_str().lines().filter_map(|l| l.split_once(": ").map(|(_, m)| m.to_string())).collect();
    printed.sort();
    assert_eq!(printed, [0, 1, 2, 4, 5].map(text), "every request but the stopped client's, once");
    k.assert_clean();
}

/// A client stopped after the server found it there and before the reply went: the server takes
/// the reply back once it finds the client gone, and leaves nothing in the queue. strace stops the
/// server (SIGSTOP) just after that first look (kill(pid, 0)) and the test stops the client then.
#[test]
fn a_client_stopped_while_the_server_replies_leaves_no_reply_behind() {
    if !tests::strace::available() {
        return;
    }
    let k = TestKey::new();
    let mut cmd = reader(&k);
    cmd.args(["--serve", "--count", "1"]);
    let mut server =
        Running::spawn(&mut under_strace(&cmd, &["-e", "trace=kill", "-e", "inject=kill:signal=STOP:when=1"]));
    server.wait_for_stderr("reader: waiting for requests");
    let server_pid = tracee(server.pid, cmd.get_program());
    let mut client = Running::spawn(writer(&k).args(["--request", "late"]));
    client.wait_for_stderr("writer: waiting for a reply");
    server.wait_for_stderr("--- stopped by SIGSTOP ---");
    client.signal(Signal::SIGTERM);
    let done = client.finish();
    assert_eq!(done.shell_status(), 143, "{done:?}");
    nix::sys::signal::kill(server_pid, Signal::SIGCONT).unwrap();
    let done = server.finish();
    assert!(done.status.success(), "{done:?}");
    assert_eq!(done.stdout_str(), format!("request from pid {}: late\n", client_pid(&done.stderr)), "{done:?}");
    assert!(!done.stderr.contains("still holds"), "{done:?}");
    k.assert_clean();
}

/// The client's PID, from the server's traced kill(pid, 0).
fn client_pid(stderr: &str) -> String {
    let line = stderr.lines().find(|l| l.starts_with("kill(")).expect("a traced kill");
    line["kill(".len()..].split(',').next().unwrap_or_default().to_string()
}

/// No queue is made outside the stop guard: a stop that lands just after the call that makes it
/// (strace holds the process 600 ms there) removes it. Each side, System V and POSIX.
#[test]
fn a_stop_right_after_the_queue_is_made_leaves_nothing() {
    if !tests::strace::available() {
        return;
    }
    let cases: [(&str, &[&str]); 5] = [
        ("reader", &[]),
        ("writer", &[]),
        ("writer", &["--request", "hi"]),
        ("reader", &["--posix"]),
        ("writer", &["--posix"]),
    ];
    for (bin, args) in cases {
        let k = TestKey::new();
        let posix = args.contains(&"--posix");
        let call = if posix { "mq_open" } else { "msgget" };
        let mut cmd = keyed("msgq-ipc", bin, &k);
        cmd.args(args);
        let (trace, inject) = (format!("trace={call}"), format!("inject={call}:delay_exit=600000:when=1"));
        let run = Running::spawn(&mut under_strace(&cmd, &["-o", "/dev/null", "-e", &trace, "-e", &inject]));
        let pid = tracee(run.pid, cmd.get_program());
        let name = msgq_ipc::posix_queue_name(k.key);
        wait_until("queue", || {
            let made = if posix {
                nix::mqueue::mq_open(
                    name.as_str(),
                    nix::mqueue::MQ_OFlag::O_RDONLY,
                    nix::sys::stat::Mode::empty(),
                    None,
                )
                .map(|q| {
                    let _ = nix::mqueue::mq_close(q);
                })
                .is_ok()
            } else {
                sysv::msgget(k.key, 0).is_ok()
            };
            made.then_some(())
        });
        let killed = nix::sys::signal::kill(pid, Signal::SIGTERM);
        let done = run.finish();
        assert!(killed.is_ok(), "{bin} {args:?}: {killed:?} {done:?}");
        assert_eq!(done.shell_status(), 143, "{bin} {args:?}: {done:?}");
        let said: Vec<&str> = complaints(&done.stderr).into_iter().filter(|l| !l.starts_with("strace: ")).collect();
        assert!(said.is_empty(), "{bin} {args:?}: {done:?}");
        k.assert_clean();
    }
}
