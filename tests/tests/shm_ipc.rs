//! shm-ipc end to end (claims S1-S7, N1): real segments and semaphores under keys of the tests' own.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use common::sysv;
use nix::sys::signal::Signal;
use predicates::prelude::*;
use shm_ipc::SIZE;
use tests::strace::{self, Call, Straced};
use tests::{Running, TestKey, as_nobody, c_program, cmd, keyed, run};

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
fn writer_first_makes_a_0600_segment_of_the_pairs_size() {
    let k = TestKey::new();
    run(writer(&k).arg("written first")).success();
    let ds = sysv::shm_stat(sysv::shmget(k.key, 0, 0).unwrap()).unwrap();
    assert_eq!(ds.shm_perm.mode & 0o777, 0o600, "not the note's 0666");
    assert_eq!(ds.shm_segsz, SIZE);
    assert_eq!(ds.shm_nattch, 0, "the writer detached");
    run(&mut reader(&k)).success().stdout("written first\n");
    k.assert_clean(); // shmdt + IPC_RMID: `ipcs -m` is clean afterwards
}

#[test]
fn the_notes_c_writer_then_our_reader_and_our_writer_then_a_c_reader() {
    let k = TestKey::new();
    let status =
        Command::new(c_program("shm_write", &[("SIZE", SIZE)])).args([&k.arg(), "strcpy from C"]).status().unwrap();
    assert!(status.success());
    run(&mut reader(&k)).success().stdout("strcpy from C\n"); // at once: no semaphore to wait on
    k.assert_clean();

    run(writer(&k).arg("from Rust")).success();
    let out = Command::new(c_program("shm_read", &[])).arg(k.arg()).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "from Rust\n", "{out:?}");
    run(reader(&k).arg("--clean")).success().stderr(predicate::str::contains("removed segment and semaphores"));
    k.assert_clean();
}

#[test]
fn a_message_too_long_is_refused_before_any_call() {
    let k = TestKey::new();
    run(writer(&k).arg("z".repeat(SIZE)))
        .code(2)
        .stderr(predicate::str::contains(format!("at most {} bytes", SIZE - 1)));
    k.assert_clean();
}

#[test]
fn a_segment_of_another_size_under_the_key_is_a_clear_error() {
    let k = TestKey::new();
    let id = sysv::shmget(k.key, 100, libc::IPC_CREAT | 0o600).unwrap();
    run(&mut writer(&k)).code(1).stderr(
        predicate::str::contains(format!("has 100 bytes, not {SIZE}")).and(predicate::str::contains("ipcrm -M")),
    );
    // The semaphores the failed open made are removed again; the foreign segment is left alone.
    assert_eq!(sysv::semget(k.key, 0, 0), Err(nix::errno::Errno::ENOENT), "the failed open left its semaphores");
    assert_eq!(sysv::shmget(k.key, 0, 0), Ok(id));
    sysv::shm_remove(id).unwrap();
    k.assert_clean();
}

#[test]
fn every_stop_signal_ends_a_waiting_reader_cleanly_in_both_variants() {
    let signals = [(Signal::SIGINT, 130), (Signal::SIGTERM, 143), (Signal::SIGQUIT, 131), (Signal::SIGHUP, 129)];
    for posix in [false, true] {
        for (sig, status) in signals {
            let k = TestKey::new();
            let mut r = Running::spawn(reader(&k).args(variant(posix)));
            r.wait_for_stderr("reader: waiting on");
            r.signal(sig);
            let done = r.finish();
            assert_eq!(done.shell_status(), status, "{sig} posix={posix}: {}", done.stderr);
            assert!(!done.stderr.contains("left in place"), "{}", done.stderr);
            k.assert_clean();
        }
    }
}

/// `--posix` or nothing.
fn variant(posix: bool) -> &'static [&'static str] {
    if posix { &["--posix"] } else { &[] }
}

/// Where glibc keeps POSIX shared memory `name` (`/x` is /dev/shm/x).
fn dev_shm(name: &str) -> String {
    format!("/dev/shm{name}")
}

/// Where glibc keeps named semaphore `name` (`/x` is /dev/shm/sem.x).
fn dev_shm_sem(name: &str) -> String {
    format!("/dev/shm/sem.{}", name.trim_start_matches('/'))
}

/// Whether the key's segment (SysV) or shared memory (POSIX) exists now.
fn exists(k: &TestKey, posix: bool) -> bool {
    if posix {
        std::path::Path::new(&dev_shm(&shm_ipc::shm_name(k.key))).exists()
    } else {
        sysv::shmget(k.key, 0, 0).is_ok()
    }
}

#[test]
fn a_stopped_waiting_writer_leaves_its_message_for_the_next_reader() {
    for posix in [false, true] {
        for (sig, status) in [(Signal::SIGHUP, 129), (Signal::SIGQUIT, 131)] {
            let k = TestKey::new();
            let mut w = Running::spawn(writer(&k).args(variant(posix)).args(["one", "two"]));
            w.wait_for_stderr("writer: waiting for the reader");
            w.signal(sig);
            let done = w.finish();
            assert_eq!(done.shell_status(), status, "{sig} posix={posix}: {}", done.stderr);
            assert!(
                done.stderr.lines().last().is_some_and(|l| l.starts_with("writer: 1 more message waits in")
                    && l.ends_with("left in place for the next reader")),
                "{}",
                done.stderr
            );
            assert!(exists(&k, posix), "the message that waits was removed");
            run(reader(&k).args(variant(posix))).success().stdout("one\n").stderr("");
            k.assert_clean();
        }
    }
}

#[test]
fn a_count_1_reader_leaves_the_rest_to_the_next_readers() {
    for posix in [false, true] {
        let k = TestKey::new();
        let mut w = Running::spawn(writer(&k).args(variant(posix)).args(["one", "two", "three"]));
        w.wait_for_stderr("writer: waiting for the reader");
        run(reader(&k).args(variant(posix)).args(["--count", "1"])).success().stdout("one\n");
        run(reader(&k).args(variant(posix)).args(["--count", "1"])).success().stdout("two\n");
        let done = w.finish();
        assert!(done.status.success(), "posix={posix}: {}", done.stderr);
        // The writer reported success: its last message must still be there, and it is.
        assert!(exists(&k, posix), "posix={posix}: 'three' was destroyed");
        run(reader(&k).args(variant(posix))).success().stdout("three\n").stderr("");
        k.assert_clean();
    }
}

#[test]
fn two_readers_at_once_get_one_message_each_and_the_last_one_removes() {
    for posix in [false, true] {
        let k = TestKey::new();
        let mut r1 = Running::spawn(reader(&k).args(variant(posix)));
        r1.wait_for_stderr("reader: waiting on");
        let mut r2 = Running::spawn(reader(&k).args(variant(posix)));
        r2.wait_for_stderr("reader: waiting on");
        run(writer(&k).args(variant(posix)).arg("one")).success().stderr("");
        run(writer(&k).args(variant(posix)).arg("two")).success();
        let (a, b) = (r1.finish(), r2.finish());
        assert!(a.status.success() && b.status.success(), "posix={posix}: {a:?} {b:?}");
        let mut got = [a.stdout_str(), b.stdout_str()];
        got.sort();
        assert_eq!(got, ["one\n", "two\n"], "posix={posix}");
        k.assert_clean();
    }
}

#[test]
fn a_peer_killed_with_sigkill_mid_wait_loses_nothing_and_leaks_nothing() {
    for posix in [false, true] {
        // The writer dies waiting: the message it wrote is the next reader's, who removes all.
        let k = TestKey::new();
        let mut w = Running::spawn(writer(&k).args(variant(posix)).args(["one", "two"]));
        w.wait_for_stderr("writer: waiting for the reader");
        w.signal(Signal::SIGKILL);
        assert_eq!(w.finish().shell_status(), 137);
        run(reader(&k).args(variant(posix))).success().stdout("one\n").stderr("");
        k.assert_clean();

        // The reader dies waiting: the writer still delivers, to the next reader.
        let k = TestKey::new();
        let mut r = Running::spawn(reader(&k).args(variant(posix)));
        r.wait_for_stderr("reader: waiting on");
        r.signal(Signal::SIGKILL);
        assert_eq!(r.finish().shell_status(), 137);
        run(writer(&k).args(variant(posix)).arg("after the kill")).success();
        run(reader(&k).args(variant(posix))).success().stdout("after the kill\n");
        k.assert_clean();
    }
}

#[test]
fn objects_removed_under_a_waiting_process_end_it_with_one_clear_line() {
    for posix in [false, true] {
        let k = TestKey::new();
        let mut r = Running::spawn(reader(&k).args(variant(posix)));
        r.wait_for_stderr("reader: waiting on");
        run(reader(&k).args(variant(posix)).arg("--clean")).success();
        let done = r.finish(); // within a wait slice, not forever
        assert_eq!(done.shell_status(), 1, "posix={posix}: {}", done.stderr);
        let last = done.stderr.lines().last().unwrap_or_default().to_string();
        // SysV: EIDRM in semop, or EINVAL if the removal fell between two timed waits.
        let why = if posix { "was unlinked" } else { "the segment and its semaphores were removed" };
        assert!(last.starts_with("reader: ") && last.contains(why), "{last}");

        let mut w = Running::spawn(writer(&k).args(variant(posix)).args(["one", "two"]));
        w.wait_for_stderr("writer: waiting for the reader");
        run(reader(&k).args(variant(posix)).arg("--clean")).success();
        let done = w.finish();
        assert_eq!(done.shell_status(), 1, "posix={posix}: {}", done.stderr);
        let last = done.stderr.lines().last().unwrap_or_default().to_string();
        assert!(last.ends_with("message 2 of 2 was not delivered (the 1 before it were written)"), "{last}");
        assert!(!done.stderr.contains("left in place"), "{}", done.stderr);
        k.assert_clean();
    }
}

#[test]
fn a_segment_removed_alone_under_a_waiting_reader_ends_it() {
    // `ipcrm -M` without -S: the semaphores stay, so the waiter must look at the segment itself.
    let k = TestKey::new();
    let mut r = Running::spawn(&mut reader(&k));
    r.wait_for_stderr("reader: waiting on");
    sysv::shm_remove(sysv::shmget(k.key, 0, 0).unwrap()).unwrap();
    let done = r.finish();
    assert_eq!(done.shell_status(), 1, "{}", done.stderr);
    assert!(done.stderr.contains("was removed (ipcrm -m?) while this process waited"), "{}", done.stderr);
    run(writer(&k).arg("to a new segment")).success();
    run(&mut reader(&k)).success().stdout("to a new segment\n");
    k.assert_clean();
}

#[test]
fn modes_are_exact_whatever_the_umask() {
    for (umask, mode) in [("077", 0o640), ("022", 0o666)] {
        for posix in [false, true] {
            let k = TestKey::new();
            let status = Command::new("sh")
                .arg("-c")
                .arg(format!("umask {umask}; exec \"$0\" \"$@\""))
                .arg(tests::bin("shm-ipc", "writer"))
                .args(["--key", &k.arg(), "--mode", &format!("{mode:o}")])
                .args(variant(posix))
                .arg("x")
                .status()
                .unwrap();
            assert!(status.success());
            if posix {
                let [full, free] = shm_ipc::sem_names(k.key);
                for path in [dev_shm(&shm_ipc::shm_name(k.key)), dev_shm_sem(&full), dev_shm_sem(&free)] {
                    let got = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
                    assert_eq!(got, mode, "{path} under umask {umask}: {got:o}");
                }
            } else {
                let shm = sysv::shm_stat(sysv::shmget(k.key, 0, 0).unwrap()).unwrap();
                let sem = sysv::sem_stat(sysv::semget(k.key, 0, 0).unwrap()).unwrap();
                assert_eq!(u32::from(shm.shm_perm.mode) & 0o777, mode, "segment under umask {umask}");
                assert_eq!(u32::from(sem.sem_perm.mode) & 0o777, mode, "semaphores under umask {umask}");
            }
            run(reader(&k).args(variant(posix))).success().stdout("x\n");
            k.assert_clean();
        }
    }
}

#[test]
fn a_posix_object_not_sized_yet_is_awaited_not_refused() {
    use nix::fcntl::OFlag;
    use nix::sys::stat::Mode;
    let k = TestKey::new();
    // What another process has done between shm_open(O_EXCL) and ftruncate.
    let name = shm_ipc::shm_name(k.key);
    let fd = nix::sys::mman::shm_open(
        name.as_str(),
        OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_EXCL,
        Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    let mut r = Running::spawn(reader(&k).arg("--posix"));
    r.wait_for_stderr("reader: waiting for the writer to give the new shared memory its size");
    nix::unistd::ftruncate(&fd, SIZE as i64).unwrap();
    r.wait_for_stderr("reader: waiting on POSIX shared memory");
    run(writer(&k).args(["--posix", "sized late"])).success();
    let done = r.finish();
    assert!(done.status.success(), "{}", done.stderr);
    assert_eq!(done.stdout_str(), "sized late\n");
    k.assert_clean();
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
    let [full, _] = shm_ipc::sem_names(k.key);
    for path in [dev_shm(&shm_ipc::shm_name(k.key)), dev_shm_sem(&full)] {
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{path}");
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

#[test]
fn an_open_refused_for_another_users_segment_removes_the_semaphores_it_made() {
    let Some((_dir, mut nobody_writer)) = as_nobody("shm-ipc", "writer") else { return };
    let k = TestKey::new();
    // root's segment with no semaphores, as the note's C writer leaves it.
    let status = Command::new(c_program("shm_write", &[("SIZE", SIZE)])).args([&k.arg(), "root's"]).status().unwrap();
    assert!(status.success());
    let out = nobody_writer.args(["--key", &k.arg(), "nobody's"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("Permission denied"), "{out:?}");
    assert_eq!(sysv::semget(k.key, 0, 0), Err(nix::errno::Errno::ENOENT), "nobody's semaphores were left");
    run(&mut reader(&k)).success().stdout("root's\n");
    k.assert_clean();
}

/// A waiting line names the segment and the semaphore, and says "start the peer" only when the
/// kernel shows nobody else attached (IPC_STAT shm_nattch).
#[test]
fn the_waiting_line_says_start_the_peer_only_when_nobody_is_attached() {
    let k = TestKey::new();
    let mut first = Running::spawn(&mut reader(&k));
    let line = first.wait_for_stderr("reader: waiting");
    assert!(
        line.contains(&format!("on segment {} for the writer's semaphore FULL (0) of set {}", k.arg(), k.arg())),
        "{line}"
    );
    assert!(line.contains("(start the writer: cargo run -p shm-ipc --bin writer"), "{line}");
    let mut second = Running::spawn(&mut reader(&k));
    let line = second.wait_for_stderr("reader: waiting");
    assert!(line.contains("(1 other process(es) attached, not necessarily a writer)"), "{line}");
    assert!(!line.contains("start the"), "{line}");
    run(writer(&k).args(["a", "b"])).success();
    let (a, b) = (first.finish(), second.finish());
    assert!(a.status.success() && b.status.success(), "{a:?} {b:?}");
    let mut got = [a.stdout_str(), b.stdout_str()];
    got.sort();
    assert_eq!(got, ["a\n", "b\n"]);
    k.assert_clean();
}

/// The last one out removes the segment, then the semaphore set. A writer that starts between the
/// two (held there by strace's delay) must still deliver: it waits for the set's BUSY, finds the
/// set removed and starts over with new objects. (Removing the set first let such a writer make a
/// new set beside the doomed segment and write into it: lost, with exit 0.)
#[test]
fn a_writer_that_starts_while_the_last_one_out_removes_still_delivers() {
    if Command::new("strace").arg("-V").output().is_err() {
        eprintln!("skipped: strace is not installed");
        return;
    }
    let k = TestKey::new();
    run(writer(&k).arg("m1")).success();
    // Every shmctl returns 1 s late: after its IPC_RMID the segment is gone, the set still there.
    let mut slow = Command::new("strace");
    slow.args(["-f", "-qq", "-o", "/dev/null", "-e", "trace=shmctl", "-e", "inject=shmctl:delay_exit=1000000"]);
    slow.arg(tests::bin("shm-ipc", "reader")).args(["--key", &k.arg()]);
    let first = Running::spawn(&mut slow);
    let deadline = std::time::Instant::now() + tests::running::TIMEOUT;
    while sysv::shmget(k.key, 0, 0).is_ok() || sysv::semget(k.key, 0, 0).is_err() {
        assert!(std::time::Instant::now() < deadline, "the reader never came between its two removals");
        std::thread::yield_now();
    }
    run(writer(&k).arg("m2")).success();
    let first = first.finish();
    assert_eq!(first.stdout_str(), "m1\n", "{first:?}");
    run(&mut reader(&k)).success().stdout("m2\n");
    k.assert_clean();
}

// Moved from hardening.rs (issue 14).

#[test]
fn a_missing_segment_with_no_create_names_call_key_and_hint() {
    let k = tests::TestKey::new();
    tests::run(tests::keyed("shm-ipc", "reader", &k).arg("--no-create")).code(1).stderr(format!(
        "reader: semget(key {}): No such file or directory; nothing has that key yet; start the writer first\n",
        k.arg()
    ));
    k.assert_clean();
}

// ---- --trace (issue 15) ------------------------------------------------------------------------

/// The SysV calls of the pair. semop is asked of strace too: glibc makes it as semtimedop, so a
/// line of ours named semop would be a lie that this catches.
const SYSV_CALLS: [&str; 8] = ["shmget", "shmat", "shmdt", "shmctl", "semget", "semop", "semtimedop", "semctl"];

/// Runs a waiting reader, then a writer, both with `--trace` under strace (tracing `calls`);
/// returns each side's `--trace` lines beside what strace saw of it.
fn traced_pair(k: &TestKey, posix: bool, calls: &[&str]) -> [(Vec<Call>, Straced); 2] {
    let mut rs = Straced::new(reader(k).args(variant(posix)).arg("--trace"), calls, false);
    let mut r = Running::spawn(&mut rs.command);
    r.wait_for_stderr("reader: waiting on");
    let mut ws = Straced::new(writer(k).args(variant(posix)).arg("--trace"), calls, false);
    let w = ws.command.output().expect("run the writer under strace");
    assert!(w.status.success(), "writer: {}", String::from_utf8_lossy(&w.stderr));
    let done = r.finish();
    assert!(done.status.success(), "reader: {}", done.stderr);
    assert_eq!(done.stdout_str(), "Linux Programming\n");
    [(strace::ours(done.stderr.as_bytes()), rs), (strace::ours(&w.stderr), ws)]
}

#[test]
fn trace_shows_the_sysv_calls_exactly_as_strace_does() {
    if !strace::available() {
        return;
    }
    let k = TestKey::new();
    for (ours, theirs) in traced_pair(&k, false, &SYSV_CALLS) {
        strace::assert_exact(&ours, &theirs.calls(), &SYSV_CALLS);
    }
    k.assert_clean();
}

#[test]
fn layout_traces_its_private_segment_exactly_as_strace_does() {
    if !strace::available() {
        return;
    }
    // Not following the forks: the children make no IPC call (they write through the mapping).
    let calls = [&SYSV_CALLS[..], &["wait4"]].concat();
    let mut s = Straced::new(Command::new(tests::bin("shm-ipc", "layout")).arg("--trace"), &calls, false);
    let out = s.command.output().expect("run layout under strace");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let ours = strace::ours(&out.stderr);
    let names: Vec<&str> = ours.iter().map(|c| c.name.as_str()).collect();
    let forks = ["fork", "wait4", "fork", "wait4"];
    let want = [&["shmget", "shmat", "shmctl", "shmctl"][..], &forks, &["shmdt"]].concat();
    assert_eq!(names, want, "{}", strace::side_by_side(&ours, &s.path()));
    strace::assert_exact(&ours, &s.calls(), &SYSV_CALLS);
    strace::assert_exact(&ours, &s.calls(), &["wait4"]);
}

/// The C library's calls of `--posix`, which `--trace` marks as library calls.
const LIBRARY_CALLS: [&str; 10] = [
    "shm_open",
    "shm_unlink",
    "sem_open",
    "sem_close",
    "sem_unlink",
    "sem_wait",
    "sem_trywait",
    "sem_timedwait",
    "sem_post",
    "sem_getvalue",
];

/// The system calls strace is asked for in the `--posix` run: ours, and those glibc makes of the
/// library calls.
const POSIX_SYSCALLS: [&str; 9] =
    ["openat", "ftruncate", "fchmod", "mmap", "munmap", "newfstatat", "umask", "link", "unlink"];

/// sem_open's mapping of the semaphore (a sem_t is 32 bytes on x86-64 glibc).
const SEM_MMAP: [&str; 6] = ["NULL", "32", "PROT_READ|PROT_WRITE", "MAP_SHARED", "?", "0"];

/// Our lines as strace sees them: system calls as they are, and each library call as the system
/// call(s) by which glibc 2.36 makes it, where one tells what was asked: shm_open is an openat of
/// /dev/shm/NAME with O_NOFOLLOW|O_CLOEXEC added; sem_open makes the semaphore in a temporary file,
/// maps it (the mapping is what it returns) and links it to /dev/shm/sem.NAME, or, without
/// O_CREAT, opens that file and maps it; sem_close unmaps it; shm_unlink and sem_unlink unlink.
/// sem_wait and friends are a futex call or none: nothing to compare. `?` stands for an fd or a
/// path that only glibc knows.
fn as_strace_sees_them(ours: &[Call]) -> Vec<Call> {
    let sys = |name: &str, args: &[&str], result: &str| Call {
        name: name.into(),
        args: args.iter().map(|a| a.to_string()).collect(),
        result: result.into(),
        library: false,
    };
    let mut out = Vec::new();
    for c in ours {
        if !c.library {
            out.push(c.clone());
            continue;
        }
        let name = c.arg(0).trim_matches('"');
        let shm = format!("\"/dev/shm{name}\"");
        let sem = format!("\"/dev/shm/sem.{}\"", name.trim_start_matches('/'));
        let failed = c.result.starts_with("-1 ");
        match c.name.as_str() {
            "shm_open" => {
                let flags = format!("{}|O_NOFOLLOW|O_CLOEXEC", c.arg(1));
                let mut args = vec!["AT_FDCWD", &shm, &flags];
                if flags.contains("O_CREAT") {
                    args.push(c.arg(2));
                }
                out.push(sys("openat", &args, &c.result));
            }
            "shm_unlink" => out.push(sys("unlink", &[&shm], &c.result)),
            "sem_unlink" => out.push(sys("unlink", &[&sem], &c.result)),
            "sem_open" if c.args.len() == 4 => {
                if !failed {
                    out.push(sys("mmap", &SEM_MMAP, &c.result));
                }
                out.push(sys("link", &["?", &sem], if failed { &c.result } else { "0" }));
            }
            "sem_open" => {
                out.push(sys("openat", &["AT_FDCWD", &sem, "O_RDWR|O_NOFOLLOW"], if failed { &c.result } else { "?" }));
                if !failed {
                    out.push(sys("mmap", &SEM_MMAP, &c.result));
                }
            }
            "sem_close" => out.push(sys("munmap", &[c.arg(0), "32"], &c.result)),
            _ => {}
        }
    }
    out
}

/// What must agree between a call of ours (as strace sees it) and strace's: for openat the path,
/// the flags (as a set) and the mode, and the fd only as "some fd" (sem_open's is glibc's; ours
/// reappear in ftruncate, fchmod and newfstatat, compared whole); for mmap all but the fd; for link
/// the name linked to; the whole call otherwise.
fn what_matters(c: &Call) -> Option<String> {
    let result = if c.result.starts_with("-1 ") { c.result.as_str() } else { "ok" };
    Some(match c.name.as_str() {
        "openat" => {
            let mut flags: Vec<&str> = c.arg(2).split('|').collect();
            flags.sort_unstable();
            format!("openat({}, {}, {}) = {result}", c.arg(1), flags.join("|"), c.arg(3))
        }
        "mmap" => {
            let a = |i| c.arg(i);
            format!("mmap({}, {}, {}, {}, {}) = {}", a(0), a(1), a(2), a(3), a(5), c.result)
        }
        "link" => format!("link(.., {}) = {}", c.arg(1), c.result),
        _ => c.text(),
    })
}

#[test]
fn trace_shows_the_posix_calls_as_strace_sees_them() {
    if !strace::available() {
        return;
    }
    let k = TestKey::new();
    let mut seen = std::collections::BTreeSet::new();
    for (ours, theirs) in traced_pair(&k, true, &POSIX_SYSCALLS) {
        let why = || strace::side_by_side(&ours, &theirs.path());
        for c in &ours {
            assert_eq!(c.library, LIBRARY_CALLS.contains(&c.name.as_str()), "{}: {}", c.text(), why());
            seen.insert(c.name.clone());
        }
        let expected = as_strace_sees_them(&ours);
        let calls = theirs.calls();
        for name in POSIX_SYSCALLS {
            if expected.iter().any(|c| c.name == name) {
                seen.insert(format!("strace {name}"));
                let ok = std::panic::catch_unwind(|| strace::assert_in_order(&expected, &calls, name, what_matters));
                assert!(ok.is_ok(), "{name}: {}", why());
            }
        }
    }
    // Whichever side removes, the run as a whole showed every kind of call.
    let kinds = ["shm_open", "ftruncate", "fchmod", "mmap", "munmap", "newfstatat", "sem_open", "sem_post"];
    for name in kinds.into_iter().chain(["sem_close", "sem_unlink", "shm_unlink"]) {
        assert!(seen.contains(name), "no {name} traced: {seen:?}");
    }
    for name in POSIX_SYSCALLS {
        assert!(seen.contains(&format!("strace {name}")), "no {name} compared with strace: {seen:?}");
    }
    k.assert_clean();
}
