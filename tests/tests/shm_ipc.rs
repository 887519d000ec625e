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
                let path = dev_shm(&shm_ipc::shm_name(k.key));
                let got = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
                assert_eq!(got, mode, "{path} under umask {umask}: {got:o}");
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

/// A creator killed between shm_open(O_CREAT|O_EXCL) and ftruncate leaves an object of size 0,
/// and nobody would ever size it: the next process does (a creator still alive sizes it to the
/// same length, which changes nothing), instead of waiting for it or refusing the object.
#[test]
fn a_posix_object_its_creator_never_sized_is_sized_by_the_next_one() {
    use nix::fcntl::OFlag;
    use nix::sys::stat::Mode;
    let k = TestKey::new();
    let name = shm_ipc::shm_name(k.key);
    let fd = nix::sys::mman::shm_open(
        name.as_str(),
        OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_EXCL,
        Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    drop(fd); // its creator is gone
    let mut r = Running::spawn(reader(&k).arg("--posix"));
    r.wait_for_stderr("reader: waiting on POSIX shared memory");
    assert_eq!(std::fs::metadata(dev_shm(&name)).unwrap().len(), shm_ipc::POSIX_SIZE as u64);
    run(writer(&k).args(["--posix", "sized by the reader"])).success();
    let done = r.finish();
    assert!(done.status.success(), "{}", done.stderr);
    assert_eq!(done.stdout_str(), "sized by the reader\n");
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
    let path = dev_shm(&shm_ipc::shm_name(k.key));
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600, "{path}");
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

/// The C library's calls of `--posix`, which `--trace` marks as library calls (sem_unlink only in
/// `--clean`, for the named semaphores of older versions).
const LIBRARY_CALLS: [&str; 3] = ["shm_open", "shm_unlink", "sem_unlink"];

/// The system calls strace is asked for in the `--posix` run: ours, and those glibc makes of the
/// library calls.
const POSIX_SYSCALLS: [&str; 9] =
    ["openat", "ftruncate", "fchmod", "mmap", "munmap", "newfstatat", "fcntl", "futex", "unlink"];

/// Our lines as strace sees them: system calls as they are, and each library call as the system
/// call by which glibc 2.36 makes it: shm_open is an openat of /dev/shm/NAME with
/// O_NOFOLLOW|O_CLOEXEC added; shm_unlink and sem_unlink unlink.
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
            "sem_unlink" => {
                let sem = format!("\"/dev/shm/sem.{}\"", name.trim_start_matches('/'));
                out.push(sys("unlink", &[&sem], &c.result));
            }
            _ => {}
        }
    }
    out
}

/// What must agree between a call of ours (as strace sees it) and strace's: for openat the path,
/// the flags (as a set) and the mode, and the fd only as "some fd"; for mmap all but the fd; the
/// whole call otherwise. The standard library's own fcntl (F_DUPFD_CLOEXEC, F_GETFD) and futex
/// (FUTEX_*_PRIVATE, for its locks) calls are left out.
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
        "fcntl" if !c.arg(1).starts_with("F_OFD_") => return None,
        "futex" if c.arg(1).contains("PRIVATE") => return None,
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
    // Whichever side removes, the run as a whole showed every kind of call, and nothing that
    // sem_open would make on the way.
    let kinds = ["shm_open", "ftruncate", "fchmod", "mmap", "munmap", "newfstatat", "fcntl", "futex", "shm_unlink"];
    for name in kinds {
        assert!(seen.contains(name), "no {name} traced: {seen:?}");
    }
    assert!(!seen.iter().any(|n| n.starts_with("sem_")), "a semaphore call: {seen:?}");
    for name in POSIX_SYSCALLS {
        assert!(seen.contains(&format!("strace {name}")), "no {name} compared with strace: {seen:?}");
    }
    k.assert_clean();
}

// ---- SIGKILL at any point of a POSIX hand-over (issue 20) --------------------------------------

/// The line of `--trace` that shows a process getting the slot: the exclusive lock on byte 2 of
/// the object (see posix_chan.rs). Until that call returns nothing is copied; after it, the copy
/// and the store of the state word make no system call.
fn takes_the_slot(line: &str) -> bool {
    line.contains("fcntl(") && line.contains("F_OFD_SETLKW, {l_type=F_WRLCK") && line.contains(SLOT_BYTE)
}

/// What a lock line of the slot's byte shows.
const SLOT_BYTE: &str = "l_start=2,";

/// A fresh writer sends "m2" and "m3" while fresh readers, one message each, take what there is
/// until "m3" has come; returns all they printed. A wedge fails here: every process must end
/// within the harness's bounded wait.
fn a_fresh_pair_delivers_m2_m3(k: &TestKey, after: &str) -> Vec<String> {
    let w = Running::spawn(writer(k).args(["--posix", "m2", "m3"]));
    let mut got: Vec<String> = Vec::new();
    while !got.iter().any(|l| l == "m3") {
        assert!(got.len() < 4, "{after}: readers printed {got:?} and no m3");
        let r = Running::spawn(reader(k).arg("--posix")).finish();
        assert!(r.status.success(), "{after}: a fresh reader failed: {}", r.stderr);
        got.extend(r.stdout_str().lines().map(String::from));
    }
    let w = w.finish();
    assert!(w.status.success(), "{after}: the fresh writer failed: {}", w.stderr);
    got
}

/// Nothing of the key is left once the fresh pair is done: its last one out removed the object,
/// so `reader --posix --clean` finds nothing, and /dev/shm holds no file of the key (no
/// semaphore, no temporary file of sem_open).
fn assert_nothing_left(k: &TestKey, after: &str) {
    let clean = Running::spawn(reader(k).args(["--posix", "--clean"])).finish();
    assert!(clean.status.success(), "{after}: {}", clean.stderr);
    assert!(clean.stderr.contains("nothing named"), "{after}: the fresh pair left {}", clean.stderr);
    let name = shm_ipc::shm_name(k.key);
    let left: Vec<String> = tests::entries(std::path::Path::new("/dev/shm"))
        .into_iter()
        .filter(|e| e.contains(name.trim_start_matches('/')))
        .collect();
    assert!(left.is_empty(), "{after}: /dev/shm still has {left:?}");
    k.assert_clean();
}

/// Kills a writer of one message, "m1", with SIGKILL on entry to the n-th call of `call`, for
/// every n until it runs to its end (`write`: just after each `--trace`d call returned, before
/// its line is printed; `fcntl`, `futex`, `ftruncate`: on entry to each lock, wake and sizing).
/// Then a fresh pair must deliver m2 and m3 in order, after m1 if m1 was committed, without
/// waiting forever; nothing is left.
fn sweep_writer_kills(call: &str) {
    let k = TestKey::new();
    for n in 1.. {
        let inject = format!("{call}:signal=KILL:when={n}");
        let w1 = Running::spawn(&mut strace::injecting(writer(&k).args(["--posix", "--trace", "m1"]), call, &inject))
            .finish();
        let killed = w1.shell_status() == 137;
        assert!(killed || w1.status.success(), "{inject}: {}", w1.stderr);
        let after = format!("writer killed at {inject} (its last line: {:?})", w1.stderr.lines().last());
        eprintln!("{after}"); // shown if a fresh process hangs
        let got = a_fresh_pair_delivers_m2_m3(&k, &after);
        // m1 is either committed (the next reader gets it) or never was; never torn, never twice.
        let whole = ["m1", "m2", "m3"];
        assert!(got == whole || (killed && got == whole[1..]), "{after}: readers printed {got:?}");
        assert_nothing_left(&k, &after);
        if !killed {
            assert!(n > 1, "{call}: the writer was never killed");
            return;
        }
    }
}

/// As [`sweep_writer_kills`] for a reader that finds "m1" waiting. m1 may be lost only if the
/// killed reader had got the slot (its trace shows the lock): it is then the message that reader
/// had taken and not printed; otherwise the next reader prints it.
fn sweep_reader_kills(call: &str) {
    let k = TestKey::new();
    for n in 1.. {
        run(writer(&k).args(["--posix", "m1"])).success();
        let inject = format!("{call}:signal=KILL:when={n}");
        let r1 =
            Running::spawn(&mut strace::injecting(reader(&k).args(["--posix", "--trace"]), call, &inject)).finish();
        let killed = r1.shell_status() == 137;
        assert!(killed || r1.status.success(), "{inject}: {}", r1.stderr);
        let after = format!("reader killed at {inject} (its last line: {:?})", r1.stderr.lines().last());
        eprintln!("{after}"); // shown if a fresh process hangs
        let mut got: Vec<String> = r1.stdout_str().lines().map(String::from).collect();
        got.extend(a_fresh_pair_delivers_m2_m3(&k, &after));
        let took = r1.stderr.lines().any(takes_the_slot);
        let whole = ["m1", "m2", "m3"];
        assert!(got == whole || (killed && took && got == whole[1..]), "{after}: readers printed {got:?}");
        assert_nothing_left(&k, &after);
        if !killed {
            assert!(n > 1, "{call}: the reader was never killed");
            return;
        }
    }
}

/// The calls a killed process dies at, each at every n: `write` on entry to each `--trace` line,
/// so just after each call it traces returned; then on entry to the locks, wakes and sizing
/// (`fcntl`, `futex`, `ftruncate`) and the unlink of the last one out.
const KILL_AT: [&str; 5] = ["write", "fcntl", "futex", "ftruncate", "unlink"];

#[test]
fn a_posix_writer_killed_at_any_call_wedges_nothing_and_leaves_nothing() {
    if strace::found_or_skip() {
        // A writer alone never unlinks: its message waits in the object.
        for call in KILL_AT.into_iter().filter(|&c| c != "unlink") {
            sweep_writer_kills(call);
        }
    }
}

#[test]
fn a_posix_reader_killed_at_any_call_loses_at_most_what_it_took_and_leaves_nothing() {
    if strace::found_or_skip() {
        // The reader finds the object sized: it makes no ftruncate.
        for call in KILL_AT.into_iter().filter(|&c| c != "ftruncate") {
            sweep_reader_kills(call);
        }
    }
}

/// A process run with `--trace` under strace and held, by strace's delay at the exit of a
/// write(2), just after it printed the first line that [`takes_the_slot`]: it has the slot and
/// has copied nothing yet, and runs no code of its own until it is killed.
struct Held {
    strace: Running,
    pid: nix::unistd::Pid,
}

impl Held {
    /// `setup` runs before each of the two runs: a dry one under strace that counts the writes up
    /// to that line, and the held one.
    fn after_taking_the_slot(cmd: &mut Command, k: &TestKey, setup: &dyn Fn()) -> Held {
        setup();
        let out = tempfile::NamedTempFile::new().unwrap();
        let dry = Command::new("strace")
            .args(["-qq", "-s", "400", "-e", "trace=write", "-o"])
            .arg(out.path())
            .arg("--")
            .arg(cmd.get_program())
            .args(cmd.get_args())
            .output()
            .unwrap();
        assert!(dry.status.success(), "{}", String::from_utf8_lossy(&dry.stderr));
        let writes = std::fs::read_to_string(out.path()).unwrap();
        let n = writes.lines().position(takes_the_slot).expect("the dry run took the slot") + 1;
        run(reader(k).args(["--posix", "--clean"])).success();
        setup();
        let inject = format!("write:delay_exit=20s:when={n}");
        let mut strace = Running::spawn(&mut strace::injecting(cmd, "write", &inject));
        let line = strace.wait_for_stderr(SLOT_BYTE);
        assert!(takes_the_slot(&line), "{line}");
        // `[writer 1234] fcntl(...)`: the pid of the held process, strace's child.
        let pid = line.split(']').next().and_then(|w| w.rsplit(' ').next()).and_then(|p| p.parse().ok());
        Held { strace, pid: nix::unistd::Pid::from_raw(pid.expect("a pid in the trace line")) }
    }

    /// SIGKILL to the held process (it dies without running another instruction of its own),
    /// then to strace, which would otherwise hold it at its exit until the delay is over. Returns
    /// what the process printed, once it is gone with its locks.
    fn kill(self) -> tests::Finished {
        nix::sys::signal::kill(self.pid, Signal::SIGKILL).unwrap();
        self.strace.signal(Signal::SIGKILL);
        let done = self.strace.finish();
        // Detached from strace, it ends its exit and init reaps it.
        let deadline = std::time::Instant::now() + tests::running::TIMEOUT;
        while nix::sys::signal::kill(self.pid, None).is_ok() && !is_zombie(self.pid) {
            assert!(std::time::Instant::now() < deadline, "pid {} outlived its SIGKILL", self.pid);
            std::thread::yield_now();
        }
        done
    }
}

fn is_zombie(pid: nix::unistd::Pid) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_or(true, |s| s.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('Z')))
}

/// A writer killed after it got the slot and had copied part of its message: the bytes of a torn
/// copy (its message's start over the end of an older one) lie under EMPTY. No reader prints
/// them; the next writer copies over them and the fresh pair delivers in order.
#[test]
fn a_posix_writer_killed_mid_copy_never_makes_a_reader_print_a_torn_message() {
    if !strace::found_or_skip() {
        return;
    }
    let k = TestKey::new();
    // An older, longer message, taken by a --keep reader: its bytes stay, under EMPTY.
    let older = || {
        run(writer(&k).args(["--posix", "an older message, longer than the next"])).success();
        run(reader(&k).args(["--posix", "--keep"])).success().stdout("an older message, longer than the next\n");
    };
    let mut w1 = writer(&k);
    w1.args(["--posix", "--trace", "half-written message"]);
    let held = Held::after_taking_the_slot(&mut w1, &k, &older);
    // What the killed copy leaves: the start of its text, no NUL, the older bytes after it.
    let shm = std::fs::OpenOptions::new().write(true).open(dev_shm(&shm_ipc::shm_name(k.key))).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&shm, b"half-writ", 0).unwrap();
    drop(shm);
    let w1 = held.kill();
    assert!(!w1.stderr.contains("F_UNLCK, l_whence=SEEK_SET, l_start=2"), "not held: {}", w1.stderr);
    let got = a_fresh_pair_delivers_m2_m3(&k, "a writer killed mid-copy");
    assert_eq!(got, ["m2", "m3"], "a torn message was printed");
    assert_nothing_left(&k, "a writer killed mid-copy");
}

/// A reader killed after it got the slot, in the middle of copying a message out: the message
/// was not taken (its state word still says FULL), so the next reader prints it, then the rest.
#[test]
fn a_posix_reader_killed_mid_copy_leaves_the_message_to_the_next_reader() {
    if !strace::found_or_skip() {
        return;
    }
    let k = TestKey::new();
    let published = || {
        run(writer(&k).args(["--posix", "published whole"])).success();
    };
    let mut r1 = reader(&k);
    r1.args(["--posix", "--trace"]);
    let held = Held::after_taking_the_slot(&mut r1, &k, &published);
    let r1 = held.kill();
    assert_eq!(r1.stdout_str(), "", "the killed reader printed");
    let got = a_fresh_pair_delivers_m2_m3(&k, "a reader killed mid-copy");
    assert_eq!(got, ["published whole", "m2", "m3"]);
    assert_nothing_left(&k, "a reader killed mid-copy");
}
