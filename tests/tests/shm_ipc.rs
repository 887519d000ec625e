//! shm-ipc end to end (claims S1-S7, N1): real segments and semaphores under keys of the tests' own.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use common::sysv;
use nix::sys::signal::Signal;
use predicates::prelude::*;
use tests::{Running, TestKey, c_program, cmd, keyed, run};

fn writer(k: &TestKey) -> Command {
    keyed("shm-ipc", "writer", k)
}

fn reader(k: &TestKey) -> Command {
    keyed("shm-ipc", "reader", k)
}

#[test]
fn reader_first_waits_in_semop_then_prints() {
    let k = TestKey::new();
    let mut r = Running::spawn(&mut reader(&k));
    let ready = r.wait_for_stderr("reader: waiting on segment");
    assert!(ready.contains(&format!("--bin writer -- --key {}", k.arg())), "{ready}");
    run(&mut writer(&k)).success().stdout("").stderr("");
    let done = r.finish();
    assert!(done.status.success(), "{done:?}");
    assert_eq!(done.stdout_str(), "Linux Programming\n");
    k.assert_clean();
}

#[test]
fn writer_first_makes_a_0600_segment_of_size_4096() {
    let k = TestKey::new();
    run(writer(&k).arg("written first")).success();
    let ds = sysv::shm_stat(sysv::shmget(k.key, 0, 0).unwrap()).unwrap();
    assert_eq!(ds.shm_perm.mode & 0o777, 0o600, "not the note's 0666");
    assert_eq!(ds.shm_segsz, 4096);
    assert_eq!(ds.shm_nattch, 0, "the writer detached");
    run(&mut reader(&k)).success().stdout("written first\n");
    k.assert_clean(); // shmdt + IPC_RMID: `ipcs -m` is clean afterwards
}

#[test]
fn the_notes_c_writer_then_our_reader_and_our_writer_then_a_c_reader() {
    let k = TestKey::new();
    let status = Command::new(c_program("shm_write")).args([&k.arg(), "strcpy from C"]).status().unwrap();
    assert!(status.success());
    run(&mut reader(&k)).success().stdout("strcpy from C\n"); // at once: no semaphore to wait on
    k.assert_clean();

    run(writer(&k).arg("from Rust")).success();
    let out = Command::new(c_program("shm_read")).arg(k.arg()).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "from Rust\n", "{out:?}");
    run(reader(&k).arg("--clean")).success().stderr(predicate::str::contains("removed segment and semaphores"));
    k.assert_clean();
}

#[test]
fn a_message_too_long_is_refused_before_any_call() {
    let k = TestKey::new();
    run(writer(&k).arg("z".repeat(4096))).code(2).stderr(predicate::str::contains("at most 4095 bytes"));
    k.assert_clean();
}

#[test]
fn a_segment_of_another_size_under_the_key_is_a_clear_error() {
    let k = TestKey::new();
    let id = sysv::shmget(k.key, 100, libc::IPC_CREAT | 0o600).unwrap();
    run(&mut writer(&k))
        .code(1)
        .stderr(predicate::str::contains("has 100 bytes, not 4096").and(predicate::str::contains("ipcrm -M")));
    sysv::shm_remove(id).unwrap();
    let _ = k.take_leftovers(); // the writer's semaphores, made before it saw the size
}

#[test]
fn stopped_reader_removes_segment_and_semaphores() {
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
    r.signal(Signal::SIGCONT); // semop now fails with EINTR even with no handler installed
    run(writer(&k).arg("after fg")).success();
    let done = r.finish();
    assert!(done.status.success(), "{done:?}");
    assert_eq!(done.stdout_str(), "after fg\n");
}

#[test]
fn posix_shared_memory_either_order() {
    let k = TestKey::new();
    let mut r = Running::spawn(reader(&k).arg("--posix"));
    r.wait_for_stderr("reader: waiting on POSIX shared memory");
    for name in [format!("shm-ipc-{}", k.arg()), format!("sem.shm-ipc-{}-full", k.arg())] {
        let mode = std::fs::metadata(format!("/dev/shm/{name}")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "/dev/shm/{name}");
    }
    run(writer(&k).args(["--posix", "over shm_open"])).success();
    assert_eq!(r.finish().stdout_str(), "over shm_open\n");
    run(writer(&k).args(["--posix", "writer first"])).success();
    run(reader(&k).arg("--posix")).success().stdout("writer first\n");
    k.assert_clean();
}

#[test]
fn layout_shows_private_variables_and_a_shared_segment() {
    cmd("shm-ipc", "layout")
        .assert()
        .success()
        .stdout(predicate::str::contains("reads 42 from the plain variable"))
        .stdout(predicate::str::contains("reads \"hello from the child, pid"))
        .stdout(predicate::str::contains("32-bit x86 only"))
        .stdout(predicate::str::is_match(r"segment +0x[0-9a-f]+ +in .*SYSV").unwrap());
}
