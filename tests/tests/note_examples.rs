//! The note's C programs in Rust (`examples/note_*.rs`) beside the full pairs (issue 21): one test
//! for each row of a README's table "The note's version and this one". Each runs one scenario with
//! the example, where it goes wrong as the row says, then the same scenario with the full pair,
//! where it does not.
//!
//! The examples run only on the test's own key (in decimal, their first argument) or in a
//! directory of its own, never on the note's 1234 or ./ipc.txt. They leak like the note's C
//! (queue, segment, file): every test checks what an example left, by name, and removes it
//! ([`TestKey::take_leftovers`]). Programs without a ready line are awaited through /proc
//! ([`procfs`]): the system call they block in, the signal bit they set, a stop.

use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};

use common::sysv;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::WaitStatus;
use nix::unistd::Pid;
use predicates::prelude::*;
use tests::{Running, TestKey, bin, entries, keyed, procfs, program_as_nobody, run, strace};

/// Package `package`'s example `name`, as a command.
fn example(package: &str, name: &str) -> Command {
    Command::new(tests::example(package, name))
}

/// The key as the examples take it: decimal, like the note's 1234.
fn decimal(key: &TestKey) -> String {
    key.key.get().to_string()
}

fn queue_left(key: &TestKey) -> Vec<String> {
    vec![format!("SysV queue {}", key.key)]
}

fn segment_left(key: &TestKey) -> Vec<String> {
    vec![format!("SysV segment {}", key.key)]
}

/// A directory others may enter (0755), as a user's home or working directory usually is.
fn open_dir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod 0755");
    dir
}

/// `cmd` with the usual umask, 022, whatever the test runner's.
fn usual_umask(cmd: &mut Command) -> &mut Command {
    // SAFETY: umask() is async-signal-safe, as pre_exec requires.
    unsafe {
        cmd.pre_exec(|| {
            libc::umask(0o022);
            Ok(())
        })
    }
}

/// Waits (bounded) for the end of a child started without [`Running`].
fn wait_bounded(child: &mut Child) -> ExitStatus {
    let mut status = None;
    procfs::wait_until(&format!("the end of pid {}", child.id()), || {
        status = child.try_wait().expect("try_wait");
        status.is_some()
    });
    status.expect("a status")
}

fn pid_of(child: &Child) -> Pid {
    Pid::from_raw(child.id() as i32)
}

/// A process that a failing test must not leave behind: killed (and reaped, if it is this
/// process's) when dropped, unless [`Self::reap`] saw its end.
struct Guard(Option<Pid>);

impl Guard {
    /// Waits (bounded) for its end: [`procfs::reap`].
    fn reap(mut self) -> WaitStatus {
        procfs::reap(self.0.take().expect("armed"))
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            let _ = kill(pid, Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(pid, None);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// msgq-ipc

#[test]
fn msgq_0666_lets_another_user_take_the_message() {
    let reader = tests::example("msgq-ipc", "note_reader");
    let Some((_dir, mut nobody)) = program_as_nobody(&reader) else { return };
    // The example: A's queue is 0666, so user nobody's B takes the message.
    let key = TestKey::new();
    run(example("msgq-ipc", "note_writer").arg(decimal(&key))).success();
    run(nobody.arg(decimal(&key))).success().stdout("Hello Message Queue\n");
    assert_eq!(key.take_leftovers(), queue_left(&key));

    // The full pair: 0600, so nobody's B is refused, and the message waits for its reader.
    let key = TestKey::new();
    run(&mut keyed("msgq-ipc", "writer", &key)).success();
    let (_dir, mut nobody) = program_as_nobody(&reader).expect("root");
    run(nobody.arg(decimal(&key))).code(1).stderr(predicate::str::contains("msgget: Permission denied"));
    run(&mut keyed("msgq-ipc", "reader", &key)).success().stdout("Hello Message Queue\n");
    key.assert_clean();
}

#[test]
fn msgq_queue_outlives_the_pair() {
    let key = TestKey::new();
    run(example("msgq-ipc", "note_writer").arg(decimal(&key))).success();
    run(example("msgq-ipc", "note_reader").arg(decimal(&key))).success().stdout("Hello Message Queue\n");
    assert_eq!(key.take_leftovers(), queue_left(&key), "the note never removes its queue");

    run(&mut keyed("msgq-ipc", "writer", &key)).success();
    run(&mut keyed("msgq-ipc", "reader", &key)).success().stdout("Hello Message Queue\n");
    key.assert_clean();
}

#[test]
fn msgq_stopped_reader_leaves_its_queue() {
    // The example: B made the queue and waits in msgrcv; Ctrl-C kills it there.
    let key = TestKey::new();
    let r = Running::spawn(example("msgq-ipc", "note_reader").arg(decimal(&key)));
    procfs::wait_until("note_reader blocked in msgrcv", || procfs::syscall(r.pid) == Some(libc::SYS_msgrcv));
    r.signal(Signal::SIGINT);
    assert_eq!(r.finish().shell_status(), 130);
    assert_eq!(key.take_leftovers(), queue_left(&key));

    let key = TestKey::new();
    let mut r = Running::spawn(&mut keyed("msgq-ipc", "reader", &key));
    r.wait_for_stderr("reader: waiting on queue");
    r.signal(Signal::SIGINT);
    assert_eq!(r.finish().shell_status(), 130);
    key.assert_clean();
}

// ---------------------------------------------------------------------------------------------
// shm-ipc

/// A segment of `size` bytes under `key` holding `text`, as another program would leave it.
fn foreign_segment(key: &TestKey, size: usize, text: &str) -> i32 {
    let id = sysv::shmget(key.key, size, libc::IPC_CREAT | libc::IPC_EXCL | 0o600).expect("shmget");
    // SAFETY: shmat maps the whole segment (size bytes) or returns -1; the text and its NUL fit.
    unsafe {
        let at = libc::shmat(id, std::ptr::null(), 0).cast::<u8>();
        assert_ne!(at as isize, -1, "shmat");
        for (i, &b) in text.as_bytes().iter().chain(std::iter::once(&0)).enumerate() {
            at.add(i).write_volatile(b);
        }
        libc::shmdt(at.cast());
    }
    id
}

/// The NUL-terminated text at the start of segment `id` of `size` bytes.
fn segment_text(id: i32, size: usize) -> String {
    let mut buf = vec![0u8; size];
    // SAFETY: shmat maps the whole segment (size bytes) read-only or returns -1.
    unsafe {
        let at = libc::shmat(id, std::ptr::null(), libc::SHM_RDONLY).cast::<u8>();
        assert_ne!(at as isize, -1, "shmat");
        for (i, b) in buf.iter_mut().enumerate() {
            *b = at.add(i).read_volatile();
        }
        libc::shmdt(at.cast());
    }
    String::from_utf8_lossy(buf.split(|&b| b == 0).next().unwrap_or_default()).into_owned()
}

#[test]
fn shm_0666_lets_another_user_read_the_segment() {
    let reader = tests::example("shm-ipc", "note_reader");
    let Some((_dir, mut nobody)) = program_as_nobody(&reader) else { return };
    let key = TestKey::new();
    run(example("shm-ipc", "note_writer").arg(decimal(&key))).success();
    run(nobody.arg(decimal(&key))).success().stdout("Linux Programming\n");
    assert_eq!(key.take_leftovers(), segment_left(&key));

    let key = TestKey::new();
    run(&mut keyed("shm-ipc", "writer", &key)).success();
    let (_dir, mut nobody) = program_as_nobody(&reader).expect("root");
    run(nobody.arg(decimal(&key))).code(1).stderr(predicate::str::contains("shmget: Permission denied"));
    run(&mut keyed("shm-ipc", "reader", &key)).success().stdout("Linux Programming\n");
    key.assert_clean();
}

#[test]
fn shm_writes_over_another_programs_segment() {
    // The example: shmget(IPC_CREAT) takes any segment of the key at least SIZE bytes long.
    let key = TestKey::new();
    let id = foreign_segment(&key, 2 * shm_ipc::SIZE, "another program's data");
    run(example("shm-ipc", "note_writer").arg(decimal(&key))).success().stderr("");
    assert_eq!(segment_text(id, 2 * shm_ipc::SIZE), "Linux Programming");
    assert_eq!(key.take_leftovers(), segment_left(&key));

    // The full writer: IPC_EXCL says the segment is not its own, IPC_STAT that it is not the
    // pair's size; it refuses, names it, and removes only the semaphores it made.
    let key = TestKey::new();
    let id = foreign_segment(&key, 2 * shm_ipc::SIZE, "another program's data");
    run(&mut keyed("shm-ipc", "writer", &key)).code(1).stderr(predicate::str::contains(format!(
        "has {} bytes, not {}",
        2 * shm_ipc::SIZE,
        shm_ipc::SIZE
    )));
    assert_eq!(segment_text(id, 2 * shm_ipc::SIZE), "another program's data");
    assert_eq!(key.take_leftovers(), segment_left(&key), "the writer left more than the other program's segment");
}

#[test]
fn shm_reader_started_first_prints_an_empty_line() {
    let key = TestKey::new();
    run(example("shm-ipc", "note_reader").arg(decimal(&key))).success().stdout("\n");
    assert_eq!(key.take_leftovers(), segment_left(&key));

    let key = TestKey::new();
    let mut r = Running::spawn(&mut keyed("shm-ipc", "reader", &key));
    r.wait_for_stderr("reader: waiting on segment");
    run(&mut keyed("shm-ipc", "writer", &key)).success();
    let done = r.finish();
    assert_eq!(done.stdout_str(), "Linux Programming\n", "{done:?}");
    key.assert_clean();
}

#[test]
fn shm_second_writer_overwrites_an_unread_message() {
    let key = TestKey::new();
    run(example("shm-ipc", "note_writer").args([decimal(&key).as_str(), "first"])).success();
    run(example("shm-ipc", "note_writer").args([decimal(&key).as_str(), "second"])).success();
    run(example("shm-ipc", "note_reader").arg(decimal(&key))).success().stdout("second\n");
    assert_eq!(key.take_leftovers(), segment_left(&key));

    let key = TestKey::new();
    run(keyed("shm-ipc", "writer", &key).arg("first")).success();
    let mut second = Running::spawn(keyed("shm-ipc", "writer", &key).arg("second"));
    second.wait_for_stderr("writer: waiting for the reader");
    run(keyed("shm-ipc", "reader", &key).args(["--count", "2"])).success().stdout("first\nsecond\n");
    assert!(second.finish().status.success());
    key.assert_clean();
}

#[test]
fn shm_segment_outlives_the_pair() {
    let key = TestKey::new();
    run(example("shm-ipc", "note_writer").arg(decimal(&key))).success();
    run(example("shm-ipc", "note_reader").arg(decimal(&key))).success().stdout("Linux Programming\n");
    let id = sysv::shmget(key.key, 0, 0).expect("the segment is still there");
    assert_eq!(sysv::shm_stat(id).expect("IPC_STAT").shm_nattch, 0, "detached by exit, but not removed");
    assert_eq!(key.take_leftovers(), segment_left(&key));

    run(&mut keyed("shm-ipc", "writer", &key)).success();
    run(&mut keyed("shm-ipc", "reader", &key)).success().stdout("Linux Programming\n");
    key.assert_clean();
}

// ---------------------------------------------------------------------------------------------
// pipe-ipc

/// A pipe whose buffer is full, so that whoever gets its write end as stdout blocks in its first
/// write: (read end, write end, bytes in it).
fn full_pipe() -> (OwnedFd, OwnedFd, usize) {
    let (rd, wr) = nix::unistd::pipe2(OFlag::O_CLOEXEC).expect("pipe2");
    fcntl(&wr, FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).expect("O_NONBLOCK");
    let mut filled = 0;
    for chunk in [4096, 1] {
        while let Ok(n) = nix::unistd::write(&wr, &vec![b'.'; chunk]) {
            filled += n;
        }
    }
    fcntl(&wr, FcntlArg::F_SETFL(OFlag::empty())).expect("blocking again");
    (rd, wr, filled)
}

/// What comes out of `rd` after the `filled` bytes put in by [`full_pipe`], to end of file.
fn after_filler(rd: OwnedFd, filled: usize) -> String {
    let mut all = Vec::new();
    std::fs::File::from(rd).read_to_end(&mut all).expect("read the pipe");
    assert!(all.len() >= filled && all[..filled].iter().all(|&b| b == b'.'), "the filler first");
    String::from_utf8_lossy(&all[filled..]).into_owned()
}

#[test]
fn pipe_parent_does_not_wait_for_its_child() {
    procfs::adopt_orphans(); // the example's child comes back here to be reaped

    // The example: its stdout is full, so the child cannot print yet; the parent ends anyway.
    let exe = tests::example("pipe-ipc", "note_fork");
    let (rd, wr, filled) = full_pipe();
    let mut parent = Command::new(&exe).stdout(wr).stderr(Stdio::null()).spawn().expect("spawn");
    let _parent = Guard(Some(pid_of(&parent)));
    assert!(wait_bounded(&mut parent).success(), "the parent ended first, with 0");
    let holders: Vec<Pid> =
        procfs::holders(rd.as_fd()).into_iter().filter(|&p| procfs::exe(p).as_ref() == Some(&exe)).collect();
    assert_eq!(holders.len(), 1, "the child, still to print: {holders:?}");
    let child = Guard(Some(holders[0]));
    assert_eq!(after_filler(rd, filled), "20 Hello Child Process\n", "printed after its parent's end");
    assert_eq!(child.reap(), WaitStatus::Exited(holders[0], 0), "a status nobody but this test sees");

    // The full program: the parent waits in wait4 while its child cannot print, and ends after it.
    let (rd, wr, filled) = full_pipe();
    let mut parent = Command::new(bin("pipe-ipc", "fork")).stdout(wr).stderr(Stdio::null()).spawn().expect("spawn");
    let p = pid_of(&parent);
    let _parent = Guard(Some(p));
    procfs::wait_until("the child blocked writing its line", || {
        procfs::children(p).into_iter().any(|c| procfs::syscall(c) == Some(libc::SYS_write))
    });
    procfs::wait_until("the parent in wait4", || procfs::syscall(p) == Some(libc::SYS_wait4));
    assert!(parent.try_wait().expect("try_wait").is_none());
    assert_eq!(after_filler(rd, filled), "20 Hello Child Process\n");
    assert!(wait_bounded(&mut parent).success());
}

/// A program run under strace, which stops it with SIGSTOP after one of its system calls; killed
/// when dropped unless resumed.
struct Stopped {
    tracer: Child,
    /// The stopped process.
    pid: Pid,
    resumed: bool,
    log: tempfile::NamedTempFile,
}

impl Stopped {
    /// Runs `program args` under strace with `filters` (`-e inject=...:signal=STOP` and what picks
    /// the call) and waits until strace reports the stop (its `--- stopped by SIGSTOP ---` line:
    /// the process state alone cannot tell it from strace's stops at every system call).
    fn start(program: &Path, args: &[&std::ffi::OsStr], filters: &[&str]) -> Stopped {
        let log = tempfile::NamedTempFile::new().expect("strace log");
        let tracer = Command::new("strace")
            .args(["-qq", "-o"])
            .arg(log.path())
            .args(filters)
            .arg(program)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("strace");
        let mut stopped = Stopped { tracer, pid: Pid::from_raw(0), resumed: false, log };
        procfs::wait_until(&format!("{} stopped ({filters:?})", program.display()), || {
            std::fs::read_to_string(stopped.log.path()).is_ok_and(|l| l.contains("--- stopped by SIGSTOP ---"))
        });
        let traced = procfs::children(pid_of(&stopped.tracer));
        assert_eq!(traced.len(), 1, "strace traces one process: {traced:?}");
        stopped.pid = traced[0];
        stopped
    }

    /// Lets it go on (or, with SIGKILL, end) and waits for strace's end.
    fn resume(mut self, sig: Signal) -> ExitStatus {
        self.resumed = true;
        kill(self.pid, sig).expect("kill");
        wait_bounded(&mut self.tracer)
    }
}

impl Drop for Stopped {
    /// strace does not kill what it traces when it ends: the tracee is killed first.
    fn drop(&mut self) {
        if !self.resumed {
            for pid in procfs::children(pid_of(&self.tracer)) {
                let _ = kill(pid, Signal::SIGKILL);
            }
            let _ = self.tracer.wait();
        }
    }
}

/// `program` stopped at its first write, the parent's message to its child, before it is
/// written (the write fails, then the stop): the stopped parent and its child, which strace does
/// not trace (no -f).
fn stopped_at_first_write(program: &Path) -> (Stopped, Guard) {
    let stopped = Stopped::start(program, &[], &["-e", "trace=write", "-e", "inject=write:error=EIO:signal=STOP"]);
    let children = procfs::children(stopped.pid);
    let child = Guard(children.first().copied());
    assert_eq!(children.len(), 1, "one child of {}: {children:?}", stopped.pid);
    (stopped, child)
}

#[test]
fn pipe_child_of_a_parent_killed_before_its_write_waits_forever() {
    if !strace::available() {
        return;
    }
    procfs::adopt_orphans(); // each child outlives its parent here

    // The example: the child keeps its own write end open, so with the parent gone, no write
    // and no end of file can ever come: it waits in read for ever.
    let (parent, guard) = stopped_at_first_write(&tests::example("pipe-ipc", "note_fork"));
    let child = guard.0.expect("child");
    parent.resume(Signal::SIGKILL);
    procfs::wait_until("the child blocked in read", || procfs::syscall(child) == Some(libc::SYS_read));
    let args = std::fs::read_to_string(format!("/proc/{child}/syscall")).expect("syscall");
    let fd =
        i64::from_str_radix(args.split_whitespace().nth(1).expect("fd").trim_start_matches("0x"), 16).expect("hex");
    let pipe = std::fs::read_link(format!("/proc/{child}/fd/{fd}")).expect("its pipe");
    assert_eq!(procfs::fds_on(child, &pipe), 2, "the read end and its own write end of {}", pipe.display());
    kill(child, Signal::SIGKILL).expect("kill the child");
    assert_eq!(guard.reap(), WaitStatus::Signaled(child, Signal::SIGKILL, false));

    // The full program: the child closed its write end, so the parent's death is end of file.
    let (parent, guard) = stopped_at_first_write(&bin("pipe-ipc", "fork"));
    let child = guard.0.expect("child");
    parent.resume(Signal::SIGKILL);
    assert_eq!(guard.reap(), WaitStatus::Exited(child, 0), "end of file, then an empty line");
}

// ---------------------------------------------------------------------------------------------
// signal-ipc

#[test]
fn signal_ignoring_example_ends_only_by_sigterm_silently() {
    // The example: SIGINT is discarded; SIGTERM's default action ends it, with nothing said.
    let exe = tests::example("signal-ipc", "note_ignore");
    let r = Running::spawn(&mut Command::new(&exe));
    procfs::wait_until("SIGINT ignored", || procfs::has_signal(r.pid, "SigIgn", Signal::SIGINT));
    r.signal(Signal::SIGINT);
    // A SIGINT still pending would be taken before SIGTERM (lower numbers first): 130, not 143.
    r.signal(Signal::SIGTERM);
    let done = r.finish();
    assert_eq!(done.shell_status(), 143, "{done:?}");
    assert_eq!(done.stdout_str(), "");

    // The full reader: SIGINT discarded too; SIGTERM caught, said, and a clean end with 0.
    let mut r = Running::spawn(Command::new(bin("signal-ipc", "reader")).arg("--ignore"));
    r.wait_for_stderr("waiting for SIGTERM");
    r.signal(Signal::SIGINT);
    r.signal(Signal::SIGTERM);
    let done = r.finish();
    assert_eq!(done.shell_status(), 0, "{done:?}");
    assert!(done.stdout_str().starts_with("Caught SIGTERM from pid "), "{done:?}");
}

// ---------------------------------------------------------------------------------------------
// file-ipc

fn full_writer(path: &Path) -> Command {
    let mut c = Command::new(bin("file-ipc", "writer"));
    c.arg("--path").arg(path);
    c
}

fn full_reader(path: &Path) -> Command {
    let mut c = Command::new(bin("file-ipc", "reader"));
    c.arg("--path").arg(path);
    c
}

fn note_file(dir: &Path) -> PathBuf {
    dir.join("ipc.txt")
}

#[test]
fn file_0666_lets_another_user_read_the_message() {
    let reader = tests::example("file-ipc", "note_reader");
    let Some((_exe_dir, mut nobody)) = program_as_nobody(&reader) else { return };
    let dir = open_dir();
    let path = note_file(dir.path());
    run(usual_umask(example("file-ipc", "note_writer").arg(&path))).success();
    run(nobody.arg(&path)).success().stdout("Hello File IPC\n");
    std::fs::remove_file(&path).expect("the example left its file");

    run(usual_umask(&mut full_writer(&path))).success();
    let (_exe_dir, mut nobody) = program_as_nobody(&reader).expect("root");
    run(nobody.arg(&path)).code(1).stderr(predicate::str::contains("Permission denied"));
    run(&mut full_reader(&path)).success().stdout("Hello File IPC\n");
    assert_eq!(entries(dir.path()), Vec::<String>::new());
}

#[test]
fn file_reader_during_the_write_sees_an_empty_file() {
    if !strace::available() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let path = note_file(dir.path());

    // The example: stopped between its open (O_TRUNC) and its write, the file is there, empty.
    let p = path.to_str().expect("a UTF-8 temp path");
    let filters = ["-P", p, "-e", "trace=openat", "-e", "inject=openat:signal=STOP"];
    let writer = Stopped::start(&tests::example("file-ipc", "note_writer"), &[path.as_os_str()], &filters);
    run(example("file-ipc", "note_reader").arg(&path)).success().stdout("\n");
    assert!(writer.resume(Signal::SIGCONT).success());
    std::fs::remove_file(&path).expect("the example left its file");

    // The full writer, stopped at the same point (its file open, its write not made): its file
    // is a temp file in its private directory, so the reader sees no message and waits.
    let filters = ["-e", "trace=write", "-e", "inject=write:signal=STOP:when=1"];
    let writer = Stopped::start(&bin("file-ipc", "writer"), &["--path".as_ref(), path.as_os_str()], &filters);
    let mut r = Running::spawn(&mut full_reader(&path));
    r.wait_for_stderr("reader: waiting for a message file");
    assert!(writer.resume(Signal::SIGCONT).success());
    assert_eq!(r.finish().stdout_str(), "Hello File IPC\n");
    assert_eq!(entries(dir.path()), Vec::<String>::new());
}

#[test]
fn file_reader_started_first_fails() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = note_file(dir.path());
    run(example("file-ipc", "note_reader").arg(&path))
        .code(1)
        .stderr(predicate::str::contains("No such file or directory"));

    let mut r = Running::spawn(&mut full_reader(&path));
    r.wait_for_stderr("reader: waiting for a message file");
    run(&mut full_writer(&path)).success();
    assert_eq!(r.finish().stdout_str(), "Hello File IPC\n");
    assert_eq!(entries(dir.path()), Vec::<String>::new());
}

#[test]
fn file_second_writer_overwrites_an_unread_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = note_file(dir.path());
    run(example("file-ipc", "note_writer").arg(&path).arg("first")).success();
    run(example("file-ipc", "note_writer").arg(&path).arg("second")).success();
    run(example("file-ipc", "note_reader").arg(&path)).success().stdout("second\n");
    std::fs::remove_file(&path).expect("the example left its file");

    run(full_writer(&path).arg("first")).success();
    let mut second = Running::spawn(full_writer(&path).arg("second"));
    second.wait_for_stderr("writer: waiting for");
    run(full_reader(&path).args(["--count", "2"])).success().stdout("first\nsecond\n");
    assert!(second.finish().status.success());
    assert_eq!(entries(dir.path()), Vec::<String>::new());
}

#[test]
fn file_message_is_read_twice() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = note_file(dir.path());
    run(example("file-ipc", "note_writer").arg(&path)).success();
    run(example("file-ipc", "note_reader").arg(&path)).success().stdout("Hello File IPC\n");
    run(example("file-ipc", "note_reader").arg(&path)).success().stdout("Hello File IPC\n");
    std::fs::remove_file(&path).expect("the example left its file");

    run(&mut full_writer(&path)).success();
    run(&mut full_reader(&path)).success().stdout("Hello File IPC\n");
    let mut again = Running::spawn(&mut full_reader(&path));
    again.wait_for_stderr("reader: waiting for a message file");
    again.signal(Signal::SIGTERM);
    let done = again.finish();
    assert_eq!((done.shell_status(), done.stdout_str().as_str()), (143, ""), "{done:?}");
    assert_eq!(entries(dir.path()), Vec::<String>::new());
}
