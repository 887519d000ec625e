//! file-ipc end to end (claims F1-F2): whole messages through renamed files, inotify waits.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
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
    let (a, b) = (a.finish(), b.finish());
    assert!(a.status.success() && b.status.success(), "{a:?} {b:?}");
    let mut got = vec![a.stdout_str(), b.stdout_str()];
    got.sort();
    assert_eq!(got, ["one\n", "two\n"]);
    assert!(entries(dir.path()).is_empty(), "left {:?}", entries(dir.path()));
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

/// Every stop signal, with the status a shell shows for it.
const STOPS: [(Signal, i32); 4] =
    [(Signal::SIGINT, 130), (Signal::SIGTERM, 143), (Signal::SIGHUP, 129), (Signal::SIGQUIT, 131)];

#[test]
fn stopped_reader_exits_by_its_signal_and_leaves_nothing() {
    for (sig, status) in STOPS {
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
    for (sig, status) in STOPS {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("msg");
        let mut w = Running::spawn(writer().arg("--path").arg(&path).args(["kept", "never sent"]));
        w.wait_for_stderr("writer: waiting");
        w.signal(sig);
        let done = w.finish();
        assert_eq!(done.shell_status(), status, "{sig}: {done:?}");
        assert!(done.stderr.contains("our last message still waits at"), "{sig}: one line says so: {done:?}");
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

#[test]
fn a_count_one_reader_leaves_the_rest_to_the_next_reader() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("msg");
    let mut w = Running::spawn(writer().arg("--path").arg(&path).args(["one", "two", "three"]));
    w.wait_for_stderr("writer: waiting");
    let first = cmd("file-ipc", "reader").arg("--path").arg(&path).output().unwrap();
    assert!(first.status.success(), "{first:?}");
    assert_eq!(first.stdout, b"one\n");
    let err = String::from_utf8_lossy(&first.stderr);
    // The writer puts "two" in place as soon as "one" is taken: the reader may or may not see it.
    assert!(err.lines().count() <= 1, "at most one line: {err}");
    assert!(err.is_empty() || err.contains("a message waits at") && err.contains("left in place for the next reader"));
    let second = cmd("file-ipc", "reader").arg("--path").arg(&path).args(["--count", "2"]).output().unwrap();
    assert!(second.status.success(), "{second:?}");
    assert_eq!(second.stdout, b"two\nthree\n");
    assert!(w.finish().status.success());
    assert!(entries(dir.path()).is_empty(), "left {:?}", entries(dir.path()));
}

/// The PID of a process that has exited: what a SIGKILLed peer's private file is named after.
fn dead_pid() -> u32 {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

/// What a writer or reader killed with SIGKILL may leave beside the path: its private directory
/// (`.NAME.PID.N.d`) with the message it was writing or putting back, never delivered.
fn dead_private_dir(dir: &std::path::Path) -> std::path::PathBuf {
    let private = dir.join(format!(".msg.{}.0.d", dead_pid()));
    std::fs::create_dir(&private).unwrap();
    std::fs::write(private.join("tmp"), "half").unwrap();
    private
}

#[test]
fn a_killed_peer_wedges_nothing_and_its_leftovers_go() {
    // A dead process's private directory: the next reader removes it, and works.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("msg");
    dead_private_dir(dir.path());
    let mut r = Running::spawn(reader().arg("--path").arg(&path));
    r.wait_for_stderr("reader: waiting");
    cmd("file-ipc", "writer").arg("--path").arg(&path).arg("next").assert().success();
    let done = r.finish();
    assert!(done.status.success(), "{done:?}");
    assert_eq!(done.stdout_str(), "next\n");
    assert!(entries(dir.path()).is_empty(), "left {:?}", entries(dir.path()));

    // A writer killed while it waits: its undelivered temp file goes (with its directory), its delivered message stays.
    let mut w = Running::spawn(writer().arg("--path").arg(&path).args(["delivered", "never delivered"]));
    w.wait_for_stderr("writer: waiting");
    w.signal(Signal::SIGKILL);
    assert_eq!(w.finish().shell_status(), 137);
    assert_eq!(entries(dir.path()).len(), 2, "message and private directory");
    cmd("file-ipc", "reader").arg("--path").arg(&path).assert().success().stdout("delivered\n");
    assert!(entries(dir.path()).is_empty(), "left {:?}", entries(dir.path()));

    // A reader killed while it waits: the next pair works and leaves nothing.
    let mut r = Running::spawn(reader().arg("--path").arg(&path));
    r.wait_for_stderr("reader: waiting");
    r.signal(Signal::SIGKILL);
    r.finish();
    cmd("file-ipc", "writer").arg("--path").arg(&path).arg("next").assert().success();
    cmd("file-ipc", "reader").arg("--path").arg(&path).assert().success().stdout("next\n");
    assert!(entries(dir.path()).is_empty(), "left {:?}", entries(dir.path()));
}

/// `reader --clean` removes the unread message and whatever killed peers left (a private
/// directory with a message being written or put back): nothing is left.
#[test]
fn clean_leaves_nothing_after_killed_peers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("msg");
    cmd("file-ipc", "writer").arg("--path").arg(&path).arg("unread").assert().success();
    dead_private_dir(dir.path());
    let out = cmd("file-ipc", "reader").arg("--path").arg(&path).arg("--clean").output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("reader: removed "), "{out:?}");
    assert!(entries(dir.path()).is_empty(), "left {:?}", entries(dir.path()));
}

/// A tree of what is in `dir`: kind and owner of each entry, and a directory's entries.
fn snapshot(dir: &std::path::Path) -> Vec<String> {
    use std::os::unix::fs::MetadataExt;
    let mut all = Vec::new();
    for name in entries(dir) {
        let p = dir.join(&name);
        let m = std::fs::symlink_metadata(&p).unwrap();
        all.push(format!("{name} {:?} uid {} mode {:o}", m.file_type(), m.uid(), m.mode()));
        if m.is_dir() {
            all.extend(snapshot(&p).into_iter().map(|e| format!("{name}/{e}")));
        }
    }
    all
}

#[test]
fn only_a_message_file_of_ours_is_ever_taken_or_replaced() {
    let root = nix::unistd::geteuid().is_root();
    let cases: [(&str, MakeAt); 4] = [
        ("a directory", |p| std::fs::create_dir(p).unwrap()),
        ("a symlink", |p| std::os::unix::fs::symlink("target", p).unwrap()),
        ("a FIFO", |p| nix::unistd::mkfifo(p, nix::sys::stat::Mode::S_IRWXU).unwrap()),
        ("another user's file", |p| {
            std::fs::write(p, "theirs").unwrap();
            std::os::unix::fs::chown(p, Some(65534), Some(65534)).unwrap();
        }),
    ];
    for (what, make) in cases {
        if what == "another user's file" && !root {
            eprintln!("skipped: needs root to chown a file to nobody");
            continue;
        }
        for bin in ["reader", "writer"] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("msg");
            make(&path);
            std::fs::write(dir.path().join("target"), "the symlink's target").unwrap();
            let before = snapshot(dir.path());
            let out = cmd("file-ipc", bin).arg("--path").arg(&path).output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{bin} on {what}: {out:?}");
            assert!(err.contains("refused and left as it was"), "{bin} on {what}: {err}");
            assert_eq!(snapshot(dir.path()), before, "{bin} changed {what}");
            assert_eq!(std::fs::read(dir.path().join("target")).unwrap(), b"the symlink's target");
        }
    }
}

/// The mode asked for, whatever the umask: an fchmod puts back what the umask cut, and only then.
#[test]
fn mode_is_exact_whatever_the_umask() {
    use std::os::unix::process::CommandExt;
    for (umask, mode) in [(0o077, 0o640), (0o022, 0o666), (0o022, 0o600), (0o077, 0o600)] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("msg");
        let mut w = writer();
        w.arg("--trace").arg("--path").arg(&path).args(["--mode", &format!("{mode:o}"), "x"]);
        // SAFETY: umask() is async-signal-safe, as pre_exec requires.
        unsafe {
            w.pre_exec(move || {
                libc::umask(umask);
                Ok(())
            });
        }
        let out = w.output().unwrap();
        assert!(out.status.success(), "{out:?}");
        let got = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(got, mode, "--mode {mode:o} under umask {umask:03o}");
        let fchmod = String::from_utf8_lossy(&out.stderr).contains("] fchmod(");
        assert_eq!(fchmod, mode & umask != 0, "an fchmod for --mode {mode:o} under umask {umask:03o}");
    }
}

/// A reader whose stdout is gone before its print (EPIPE at the first byte): the message it took
/// goes back to the path, whole, with its mode and before the writer's next one, and the next
/// reader prints it. The writer, stopped, still knows it as its own.
#[test]
fn a_message_whose_print_fails_at_its_first_byte_goes_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("msg");
    let mut w = Running::spawn(writer().arg("--path").arg(&path).args(["--mode", "640", "back", "next"]));
    w.wait_for_stderr("writer: waiting");
    let (read, write) = nix::unistd::pipe().unwrap();
    drop(read);
    let out = reader().arg("--path").arg(&path).stdout(std::process::Stdio::from(write)).output().unwrap();
    assert_eq!(out.status.signal(), Some(libc::SIGPIPE), "ends by SIGPIPE (141 in a shell): {out:?}");
    assert_eq!(std::fs::read(&path).unwrap(), b"back", "put back whole, before \"next\"");
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o640, "with its mode");
    w.signal(Signal::SIGTERM);
    let stopped = w.finish();
    assert_eq!(stopped.shell_status(), 143, "{stopped:?}");
    assert!(stopped.stderr.contains("our last message still waits at"), "{stopped:?}");
    assert_eq!(entries(dir.path()), ["msg"], "nothing else left");
    cmd("file-ipc", "reader").arg("--path").arg(&path).assert().success().stdout("back\n");
    assert!(entries(dir.path()).is_empty(), "left {:?}", entries(dir.path()));
}

/// Point 6: readers and writers stopped at many pseudo-random moments of a numbered stream. Each
/// message that a writer delivered is printed exactly once, or is still there for a final reader;
/// no private directory or temp file is left.
#[test]
fn stops_at_random_moments_neither_lose_nor_double_a_message() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("msg");
    let mut seed: u32 = 0x2545_f491;
    let mut next = |n: u32| {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed % n
    };
    let mut printed: Vec<String> = Vec::new();
    for round in 0..12 {
        let tag = format!("r{round}");
        let mut w = writer()
            .arg("--path")
            .arg(&path)
            .args(["--numbered", "--repeat", "400", &tag])
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut r = reader()
            .arg("--path")
            .arg(&path)
            .args(["--count", "1000"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(r.stdout.take().unwrap());
        let first = 1 + next(60);
        let sigs = [Signal::SIGTERM, Signal::SIGINT];
        let (sig_r, sig_w) = (sigs[next(2) as usize], sigs[next(2) as usize]);
        let kill = |pid: u32, sig| nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig).unwrap();
        // After a pseudo-random number of printed lines (an event, not a sleep), stop one side
        // and at once the other: each is then somewhere in its claim, print, write or rename.
        let mut line = String::new();
        for _ in 0..first {
            line.clear();
            if out.read_line(&mut line).unwrap() == 0 {
                break;
            }
            printed.push(line.trim_end().to_string());
        }
        if round % 2 == 0 {
            kill(r.id(), sig_r);
            kill(w.id(), sig_w);
        } else {
            kill(w.id(), sig_w);
            kill(r.id(), sig_r);
        }
        for l in out.lines() {
            printed.push(l.unwrap());
        }
        let (rs, ws) = (r.wait().unwrap(), w.wait().unwrap());
        assert!(rs.signal().is_some() || rs.success(), "reader {rs:?}");
        assert!(ws.signal().is_some(), "writer {ws:?} (400 messages cannot all be read)");
        // What the stopped pair left: at most the one delivered message, nothing private.
        let left = entries(dir.path());
        assert!(left.is_empty() || left == ["msg"], "round {round} left {left:?}");
        if !left.is_empty() {
            let out = cmd("file-ipc", "reader").arg("--path").arg(&path).output().unwrap();
            assert!(out.status.success(), "{out:?}");
            printed.extend(String::from_utf8(out.stdout).unwrap().lines().map(String::from));
        }
        assert!(entries(dir.path()).is_empty());
        // Each writer's delivered messages: 0, 1, 2, ... with none missing or doubled.
        let mine: Vec<&String> = printed.iter().filter(|l| l.ends_with(&format!(" {tag}"))).collect();
        for (i, l) in mine.iter().enumerate() {
            assert_eq!(**l, format!("{i} {tag}"), "round {round}: {mine:?}");
        }
    }
}

/// Puts something at a path, for the refusal tests.
type MakeAt = fn(&std::path::Path);

#[test]
fn a_removed_directory_is_noticed_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    let mut r = Running::spawn(reader().arg("--path").arg(sub.join("msg")));
    r.wait_for_stderr("reader: waiting");
    std::fs::remove_dir(&sub).unwrap();
    let done = r.finish();
    assert_eq!(done.shell_status(), 1, "{done:?}");
    assert!(done.stderr.contains("was removed or moved"), "{done:?}");
}

#[test]
fn xdg_runtime_dir_is_used_only_if_it_is_ours_and_0700() {
    let root = nix::unistd::geteuid().is_root();
    let cases: [(&str, u32, bool); 3] =
        [("ours, 0700", 0o700, false), ("ours, 0755", 0o755, false), ("nobody's", 0o700, true)];
    for (what, mode, chown) in cases {
        if chown && !root {
            eprintln!("skipped: needs root to chown a directory to nobody");
            continue;
        }
        let tmp = tempfile::tempdir().unwrap();
        let xdg = tmp.path().join("xdg");
        std::fs::create_dir(&xdg).unwrap();
        std::fs::set_permissions(&xdg, std::fs::Permissions::from_mode(mode)).unwrap();
        if chown {
            std::os::unix::fs::chown(&xdg, Some(65534), Some(65534)).unwrap();
        }
        let fallback = tmp.path().join(format!("ipc-notes-{}", nix::unistd::getuid()));
        cmd("file-ipc", "writer").env("XDG_RUNTIME_DIR", &xdg).env("TMPDIR", tmp.path()).arg("x").assert().success();
        let used = if mode == 0o700 && !chown { &xdg } else { &fallback };
        assert_eq!(entries(used), ["file-ipc.msg"], "XDG_RUNTIME_DIR {what}");
        if used == &fallback {
            assert!(entries(&xdg).is_empty(), "XDG_RUNTIME_DIR {what} must not be used");
            let m = std::fs::metadata(&fallback).unwrap().permissions().mode();
            assert_eq!(m & 0o777, 0o700, "the fallback is private");
        }
    }
}

/// Runs `c` as the controlling process of a new pseudo-terminal; returns the master side, whose
/// close is what a terminal window closing does: the kernel sends SIGHUP.
fn in_a_terminal(c: &mut Command) -> std::fs::File {
    use std::ffi::CStr;
    use std::os::fd::FromRawFd;
    use std::os::unix::process::CommandExt;
    // SAFETY: posix_openpt returns a new descriptor or -1; checked.
    let master = unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) };
    assert!(master >= 0, "posix_openpt");
    // SAFETY: `master` is a pty master just opened; ptsname's buffer is copied at once.
    let slave = unsafe {
        assert_eq!(libc::grantpt(master), 0);
        assert_eq!(libc::unlockpt(master), 0);
        CStr::from_ptr(libc::ptsname(master)).to_owned()
    };
    // SAFETY: setsid() and open() are async-signal-safe, as pre_exec requires. A session leader
    // opening a terminal without O_NOCTTY makes it its controlling terminal.
    unsafe {
        c.pre_exec(move || {
            if libc::setsid() < 0 || libc::open(slave.as_ptr(), libc::O_RDWR) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    // SAFETY: `master` is open and owned by nobody else.
    unsafe { std::fs::File::from_raw_fd(master) }
}

#[test]
fn closing_the_terminal_of_a_waiting_reader_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = reader();
    c.arg("--path").arg(dir.path().join("msg"));
    let master = in_a_terminal(&mut c);
    let mut r = Running::spawn(&mut c);
    r.wait_for_stderr("reader: waiting");
    drop(master); // the terminal window closes
    let done = r.finish();
    assert_eq!(done.shell_status(), 129, "{done:?}");
    assert!(entries(dir.path()).is_empty(), "left {:?}", entries(dir.path()));
}

/// `--show-io` counts only the reads of the message files (/proc/self/io right around each), not
/// what the process read before (the shell here, `cargo run` for a user: rchar survives exec), and
/// names the file system: on tmpfs there is no storage to skip.
#[test]
fn show_io_counts_only_the_message_reads_and_names_the_file_system() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("msg");
    let w = Running::spawn(writer().arg("--path").arg(&path).args(["twelve bytes", "and 9 more"]));
    // bash reads a file itself before it execs the reader: the same process, the same counters.
    let script = r#"while read -r l; do :; done < /proc/self/maps; exec "$0" --path "$1" --count 2 --show-io"#;
    let out = Command::new("bash").args(["-c", script]).arg(bin("file-ipc", "reader")).arg(&path).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{out:?}");
    assert!(w.finish().status.success());
    assert!(err.contains("read() returned 22 bytes (rchar), 0 of them fetched from storage (read_bytes)"), "{err}");
    let on_tmpfs = nix::sys::statfs::statfs(dir.path()).unwrap().filesystem_type() == nix::sys::statfs::TMPFS_MAGIC;
    let fs = if on_tmpfs { "tmpfs is memory" } else { "the files are on " };
    assert!(err.contains(fs), "{err}");
}

/// What `--trace` prints of file-ipc: every call on the message files, their directory and the
/// inotify descriptor (strace's `-e trace=` names; glibc's rename() is renameat2 on the
/// architectures without a renameat system call).
const TRACED: [&str; 11] = [
    "openat",
    "read",
    "write",
    "close",
    "fchmod",
    "flock",
    "mkdirat",
    "renameat2",
    "unlinkat",
    "inotify_init1",
    "inotify_add_watch",
];

/// Each traced line is strace's line for the same call, in the same order: name, path, flags,
/// mode, fd, size, the bytes shown and the result (strace shows more of these calls, made by the
/// loader and std, and our reader's write of the message to stdout, which is not traced).
fn assert_trace_matches(stderr: &str, straced: &tests::strace::Straced, expect: &[&str]) {
    use tests::strace::{assert_in_order, ours, side_by_side};
    let ours = ours(stderr.as_bytes());
    let theirs = straced.calls();
    let why = side_by_side(&ours, &straced.path());
    for c in &ours {
        assert!(TRACED.contains(&c.name.as_str()) && !c.library, "untraced by the test: {}\n{why}", c.text());
    }
    for name in expect {
        assert!(ours.iter().any(|c| c.name == *name), "no traced {name}\n{why}");
    }
    let names: std::collections::BTreeSet<&str> = ours.iter().map(|c| c.name.as_str()).collect();
    for name in names {
        assert_in_order(&ours, &theirs, name, |c| Some(c.text()));
    }
    // Calls that only the pair makes (no std or loader call among strace's): none may be missing.
    let only_ours = ["inotify_init1", "inotify_add_watch", "flock", "fchmod", "mkdirat", "renameat2", "unlinkat"];
    tests::strace::assert_exact(&ours, &theirs, &only_ours);
}

#[test]
fn trace_shows_the_calls_strace_sees_reader_first() {
    if !tests::strace::available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("msg");
    let mut rc = reader();
    rc.arg("--trace").arg("--path").arg(&path);
    let mut rs = tests::strace::Straced::new(&rc, &TRACED, false);
    let mut r = Running::spawn(&mut rs.command);
    r.wait_for_stderr("reader: waiting");
    // Quotes, a tab and more than strace's 32 shown bytes: the buffer is printed as strace does.
    let msg = "a \"quoted\"\tmessage, longer than 32 bytes";
    let mut wc = writer();
    wc.arg("--trace").arg("--path").arg(&path).arg(msg);
    let mut ws = tests::strace::Straced::new(&wc, &TRACED, false);
    let w = Running::spawn(&mut ws.command).finish();
    assert!(w.status.success(), "{w:?}");
    let done = r.finish();
    assert!(done.status.success(), "{done:?}");
    assert_eq!(done.stdout_str(), format!("{msg}\n"));
    // No fchmod: a umask takes nothing from 0600 unless it takes the owner's own bits.
    let writer_calls =
        ["inotify_init1", "inotify_add_watch", "mkdirat", "openat", "flock", "write", "renameat2", "close"];
    assert_trace_matches(&w.stderr, &ws, &writer_calls);
    let reader_calls = ["inotify_init1", "inotify_add_watch", "openat", "flock", "read", "unlinkat", "close"];
    assert_trace_matches(&done.stderr, &rs, &reader_calls);
    assert!(done.stderr.contains(", IN_CLOSE_WRITE|IN_MOVED_TO|IN_DELETE_SELF|IN_MOVE_SELF) = "), "{}", done.stderr);
    assert!(w.stderr.contains(", O_WRONLY|O_CREAT|O_EXCL|O_CLOEXEC, 0600) = "), "{}", w.stderr);
    assert!(entries(dir.path()).is_empty());
}

#[test]
fn trace_shows_the_writer_waiting_on_an_unread_message() {
    if !tests::strace::available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("msg");
    let mut wc = writer();
    wc.arg("--trace").arg("--path").arg(&path).args(["one", "two"]);
    let mut ws = tests::strace::Straced::new(&wc, &TRACED, false);
    let mut w = Running::spawn(&mut ws.command);
    // "two" found "one" unread: renameat2 failed with EEXIST and the writer waits on inotify.
    w.wait_for_stderr("writer: waiting");
    let mut rc = reader();
    rc.arg("--trace").arg("--path").arg(&path).args(["--count", "2"]);
    let mut rs = tests::strace::Straced::new(&rc, &TRACED, false);
    let done = Running::spawn(&mut rs.command).finish();
    assert!(done.status.success(), "{done:?}");
    assert_eq!(done.stdout_str(), "one\ntwo\n");
    let w = w.finish();
    assert!(w.status.success(), "{w:?}");
    assert!(w.stderr.contains(" RENAME_NOREPLACE) = -1 EEXIST (File exists)"), "{}", w.stderr);
    assert_trace_matches(&w.stderr, &ws, &["renameat2", "read", "write"]);
    assert_trace_matches(&done.stderr, &rs, &["read", "unlinkat"]);
    assert!(entries(dir.path()).is_empty());
}

// ---- crashes and stops at the moments that matter (issue 20) -----------------------------------

/// A pipe whose buffer is already full: a process given the write end as stdout blocks in its
/// first write, before a byte of it goes out. The read end drains the filler and then the output.
fn full_pipe() -> (std::fs::File, std::os::fd::OwnedFd) {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap();
    fcntl(&write, FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).unwrap();
    for chunk in [&[0u8; 4096][..], &[0u8; 1][..]] {
        while nix::unistd::write(&write, chunk).is_ok() {}
    }
    // The child shares the description: it must block, not get EAGAIN.
    fcntl(&write, FcntlArg::F_SETFL(OFlag::empty())).unwrap();
    (read.into(), write)
}

/// Waits (bounded) until the main thread of `pid` is blocked in system call `nr` with first
/// argument `arg0` (/proc/PID/syscall), the event a test acts on instead of sleeping.
fn wait_in_syscall(pid: nix::unistd::Pid, nr: libc::c_long, arg0: Option<u64>) {
    let deadline = std::time::Instant::now() + tests::running::TIMEOUT;
    let file = format!("/proc/{pid}/task/{pid}/syscall");
    loop {
        let now = std::fs::read_to_string(&file).unwrap_or_default();
        let mut f = now.split_whitespace();
        let call = f.next().and_then(|n| n.parse::<libc::c_long>().ok());
        let first = f.next().and_then(|a| u64::from_str_radix(a.trim_start_matches("0x"), 16).ok());
        if call == Some(nr) && arg0.is_none_or(|a| first == Some(a)) {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "pid {pid} never blocked in system call {nr}: {now}");
        std::thread::yield_now();
    }
}

/// A reader killed as it prints (at its write to stdout, the message already taken from the
/// path): that message is the one loss allowed. Nothing of it is left to be printed again, nor
/// to come behind a newer one: the next reader prints the next message only.
#[test]
fn a_reader_killed_as_it_prints_loses_that_message_only() {
    if !tests::strace::found_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("msg");
    cmd("file-ipc", "writer").arg("--path").arg(&path).arg("first").assert().success();
    // The message is there: the reader's first write is its print.
    let killed = Command::new("strace")
        .args(["-qq", "-o", "/dev/null", "-e", "trace=write", "-e", "inject=write:signal=KILL:when=1", "--"])
        .arg(bin("file-ipc", "reader"))
        .arg("--path")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(killed.status.signal(), Some(libc::SIGKILL), "{killed:?}");
    assert_eq!(killed.stdout, b"", "killed before its print");
    assert!(entries(dir.path()).is_empty(), "taken, and nothing of it left: {:?}", entries(dir.path()));
    let mut next = Running::spawn(reader().arg("--path").arg(&path));
    next.wait_for_stderr_or_end("reader: waiting");
    cmd("file-ipc", "writer").arg("--path").arg(&path).arg("second").assert().success();
    let done = next.finish();
    assert!(done.status.success(), "{done:?}");
    assert_eq!(done.stdout_str(), "second\n", "the killed reader's message came again: {done:?}");
    assert!(entries(dir.path()).is_empty(), "left {:?}", entries(dir.path()));
}

/// A reader killed after it took a message and before it printed any of it: the writer's next
/// message takes the path, and the killed reader's message never comes behind it.
#[test]
fn a_reader_killed_after_its_claim_never_reorders() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("msg");
    let (drain, full) = full_pipe();
    let w = Running::spawn(writer().arg("--path").arg(&path).args(["--numbered", "--repeat", "2", "m"]));
    let r = Running::spawn_with_stdout(reader().arg("--path").arg(&path), full.into());
    // Blocked writing "0 m" to the full pipe: taken, and not a byte of it printed.
    wait_in_syscall(r.pid, libc::SYS_write, Some(1));
    r.signal(Signal::SIGKILL);
    assert_eq!(r.finish().shell_status(), 137);
    let w = w.finish();
    assert!(w.status.success(), "the writer put \"1 m\" in place: {w:?}");
    let mut next = Running::spawn(reader().arg("--path").arg(&path).args(["--count", "2"]));
    next.wait_for_stderr_or_end("reader: waiting");
    cmd("file-ipc", "writer").arg("--path").arg(&path).arg("2 m").assert().success();
    let done = next.finish();
    assert!(done.status.success(), "{done:?}");
    assert_eq!(done.stdout_str(), "1 m\n2 m\n", "in order, the killed reader's \"0 m\" lost: {done:?}");
    assert!(entries(dir.path()).is_empty(), "left {:?}", entries(dir.path()));
    drop(drain);
}

/// A writer blocked in flock on the directory that a reader holds while it prints: SIGTERM ends
/// it within a second, with 143, and its temp file goes with it.
#[test]
fn a_writer_blocked_on_the_directory_lock_stops_within_a_second() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("msg");
    let (mut drain, full) = full_pipe();
    let mut r = Running::spawn_with_stdout(reader().arg("--path").arg(&path), full.into());
    r.wait_for_stderr("reader: waiting");
    let w = Running::spawn(writer().arg("--path").arg(&path).args(["held", "next"]));
    // The reader took "held" and prints it to the full pipe, the directory locked; the writer
    // is past its start (it delivered "held"), so its flock is the one before it delivers "next".
    wait_in_syscall(r.pid, libc::SYS_write, Some(1));
    wait_in_syscall(w.pid, libc::SYS_flock, None);
    let asked = std::time::Instant::now();
    w.signal(Signal::SIGTERM);
    let done = w.finish();
    let took = asked.elapsed();
    assert_eq!(done.shell_status(), 143, "{done:?}");
    assert!(took < std::time::Duration::from_secs(1), "the stop took {took:?}");
    let left = entries(dir.path());
    assert!(left.is_empty(), "the message is in the reader's hand, the writer's directory gone: {left:?}");
    let mut out = Vec::new();
    drain.read_to_end(&mut out).unwrap();
    assert!(out.ends_with(b"\0held\n"), "the reader printed its message once the pipe drained");
    assert!(r.finish().status.success());
    assert!(entries(dir.path()).is_empty(), "left {:?}", entries(dir.path()));
}

/// A reader stopped while its stdout blocks in the middle of a long message: the stop waits, the
/// message comes out whole, once, and nothing is put back for the next reader.
#[test]
fn a_reader_stopped_mid_print_prints_the_whole_message_once() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("msg");
    let big = "x".repeat(100_000);
    cmd("file-ipc", "writer").arg("--path").arg(&path).arg(&big).assert().success();
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    let mut r = Running::spawn_with_stdout(reader().arg("--path").arg(&path), write.into());
    // The pipe holds 64 KiB: the rest of the 100,001 bytes waits in write.
    wait_in_syscall(r.pid, libc::SYS_write, Some(1));
    r.signal(Signal::SIGTERM);
    r.wait_for_stderr("is written whole: stdout does not take it yet; stop again to give it up");
    let mut out = Vec::new();
    std::fs::File::from(read).read_to_end(&mut out).unwrap();
    assert_eq!(out.len(), 100_001, "printed whole");
    let done = r.finish();
    assert_eq!(done.shell_status(), 143, "{done:?}");
    assert!(entries(dir.path()).is_empty(), "nothing put back: {:?}", entries(dir.path()));
}
