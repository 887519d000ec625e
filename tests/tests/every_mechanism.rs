//! What every mechanism must do, users' mistakes and rough handling included: bad input gets one
//! clear line and the right exit status, nothing is left behind, nothing is lost, objects are
//! private by default. Each test loops over `tests::EVERY` and matches on the mechanism with no
//! wildcard arm (see tests/src/mechanisms.rs); a mechanism it cannot apply to says why in one line.
//! One mechanism's own behaviour goes in its crate's file (file_ipc.rs, pipe_ipc.rs, ...).

use msgq_ipc::posix_queue_name;
use shm_ipc::shm_name;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;

use common::sysv;
use nix::sys::signal::Signal;
use predicates::prelude::*;
use tests::{EVERY, Mechanism, Place, Running, as_nobody, cmd, entries, ignoring, run};

#[test]
fn bad_keys_are_bad_usage_everywhere() {
    for m in EVERY {
        match m {
            Mechanism::SysvQueue | Mechanism::PosixQueue | Mechanism::SysvShm | Mechanism::PosixShm => {}
            // These take a path or a PID, not a key.
            Mechanism::File | Mechanism::Pipe | Mechanism::Fifo | Mechanism::Signal => continue,
        }
        for name in ["writer", "reader"] {
            for key in ["0", "0x100000000", "4294967296", "twelve", "-5"] {
                cmd(m.package(), name)
                    .args(m.variant())
                    .arg(format!("--key={key}"))
                    .assert()
                    .code(2)
                    .stderr(predicate::str::contains("--key").and(predicate::str::contains("panicked").not()));
            }
        }
    }
}

#[test]
fn another_users_objects_are_refused_and_explained() {
    // msgget/shmget with flags 0 succeed for another user's object; msgrcv or IPC_STAT refuse.
    for m in EVERY {
        let place = Place::new(m);
        // User nobody must reach the path to be refused by the reader rather than by the directory.
        std::fs::set_permissions(place.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = place.path().display().to_string();
        let key = place.key.arg();
        let refused = match m {
            Mechanism::File => {
                format!("reader: {path} belongs to uid 0, not to you (uid 65534): refused and left as it was")
            }
            Mechanism::Fifo => {
                format!("reader: FIFO {path} belongs to uid 0, not to you (uid 65534): refused and left as it was")
            }
            Mechanism::SysvQueue => {
                format!("reader: msgrcv(queue {key}): Permission denied; the queue belongs to another user")
            }
            Mechanism::PosixQueue => format!(
                "reader: mq_open({}): Permission denied; the queue belongs to another user",
                posix_queue_name(&key)
            ),
            Mechanism::SysvShm => {
                format!("reader: shmctl(IPC_STAT)(key {key}): Permission denied; it belongs to another user")
            }
            Mechanism::PosixShm => {
                format!("reader: shm_open({}): Permission denied; it belongs to another user", shm_name(&key))
            }
            Mechanism::Signal => {
                let Some((_dir, mut nobody_writer)) = as_nobody(m.package(), "writer") else { return };
                let mut r = Running::spawn(&mut place.reader());
                r.wait_for_stderr("waiting for SIGINT");
                let pid = r.pid.to_string();
                let out = nobody_writer.arg(&pid).output().unwrap();
                assert_eq!(out.status.code(), Some(1), "{out:?}");
                let err = String::from_utf8_lossy(&out.stderr);
                let want = format!(
                    "writer: kill(pid {pid}): Operation not permitted; you may signal only your own user's processes"
                );
                assert!(err.starts_with(&want), "{m:?}: {err}");
                run(place.writer().arg(&pid)).success(); // root's own signal still arrives
                assert_eq!(r.finish().stdout_str(), "Catch SIGINT!\n");
                continue;
            }
            // An anonymous pipe has no name by which another user could open it.
            Mechanism::Pipe => continue,
        };
        let Some((_dir, mut nobody_reader)) = as_nobody(m.package(), "reader") else { return };
        let mut w = Running::spawn(place.writer().arg("root's"));
        let fifo_writer = if m == Mechanism::Fifo {
            w.wait_for_stderr("writer: waiting"); // the FIFO exists once the writer waits in open()
            Some(w)
        } else {
            assert!(w.finish().status.success(), "{m:?}");
            None
        };
        let out = nobody_reader.args(place.args()).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{m:?}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.starts_with(&refused), "{m:?}: {err}");
        run(&mut place.reader()).success().stdout("root's\n"); // the message is intact
        if let Some(w) = fifo_writer {
            assert!(w.finish().status.success(), "{m:?}: the FIFO writer");
        }
        place.assert_clean();
    }
}

/// Root shares its objects with --mode 666; user nobody reads the message, exits 0 and leaves the
/// objects to their owner with one line (it may use them, not remove them).
#[test]
fn another_users_shared_objects_are_read_and_left_to_their_owner() {
    for m in EVERY {
        match m {
            Mechanism::SysvQueue | Mechanism::PosixQueue | Mechanism::SysvShm | Mechanism::PosixShm => {}
            // Their readers refuse another user's path whatever its mode (see the test above).
            Mechanism::File | Mechanism::Fifo => continue,
            // Nothing named to share: the pipe lives between two processes, a signal in the kernel.
            Mechanism::Pipe | Mechanism::Signal => continue,
        }
        let Some((_dir, mut nobody_reader)) = as_nobody(m.package(), "reader") else { return };
        let place = Place::new(m);
        run(place.writer().args(["--mode", "666", "shared"])).success();
        let out = nobody_reader.args(place.args()).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{m:?}: {out:?}");
        assert_eq!(out.stdout, b"shared\n", "{m:?}");
        assert!(
            err.contains("left") && err.contains("in place: it is uid 0's, and only its owner (or root) may remove it"),
            "{m:?}: {err}"
        );
        assert!(!place.key.take_leftovers().is_empty(), "{m:?}: the owner's objects were kept");
    }
}

#[test]
fn non_utf8_bytes_pass_through_every_mechanism() {
    let raw = std::ffi::OsStr::from_bytes(b"\xff\xfe caf\xe9");
    for m in EVERY {
        match m {
            Mechanism::File
            | Mechanism::Pipe
            | Mechanism::Fifo
            | Mechanism::SysvQueue
            | Mechanism::PosixQueue
            | Mechanism::SysvShm
            | Mechanism::PosixShm => {}
            // A signal carries a number, not text.
            Mechanism::Signal => continue,
        }
        let place = Place::new(m);
        let (w, r) = place.exchange([raw], [] as [&str; 0]);
        assert!(w.status.success() && r.status.success(), "{m:?}: {w:?} {r:?}");
        assert_eq!(r.stdout, b"\xff\xfe caf\xe9\n", "{m:?}");
        place.assert_clean();
        // Writer first, where the writer can leave its message and end before any reader comes.
        if matches!(
            m,
            Mechanism::File | Mechanism::SysvQueue | Mechanism::PosixQueue | Mechanism::SysvShm | Mechanism::PosixShm
        ) {
            run(place.writer().arg(raw)).success();
            let r = Running::spawn(&mut place.reader()).finish();
            assert_eq!(r.stdout, b"\xff\xfe caf\xe9\n", "{m:?}, writer first: {}", r.stderr);
            place.assert_clean();
        }
    }
}

#[test]
fn clean_recovers_what_a_sigkill_left() {
    for m in EVERY {
        let place = Place::new(m);
        let key = place.key.arg();
        let removed = match m {
            Mechanism::File => {
                // A writer killed while it waits leaves its temp file beside the unread message.
                let mut w = Running::spawn(place.writer().args(["one", "two"]));
                w.wait_for_stderr("writer: waiting");
                w.signal(Signal::SIGKILL);
                assert_eq!(w.finish().shell_status(), 137);
                assert_eq!(entries(place.dir.path()).len(), 2, "message and temp file");
                run(place.reader().arg("--clean")).success().stderr(predicate::str::contains("removed"));
                place.assert_clean();
                continue;
            }
            Mechanism::Fifo => "removed FIFO".to_string(),
            Mechanism::SysvQueue => format!("reader: removed queue {key}\n"),
            Mechanism::PosixQueue => format!("reader: removed POSIX queue {}\n", posix_queue_name(&key)),
            Mechanism::SysvShm => format!("reader: removed segment and semaphores of key {key}\n"),
            Mechanism::PosixShm => format!("reader: removed 1 POSIX object(s) of {}\n", shm_name(&key)),
            // Neither makes anything that could outlive it, so neither has a --clean.
            Mechanism::Pipe | Mechanism::Signal => continue,
        };
        // A reader killed while it waits (in open() for the FIFO) leaves what it made.
        let mut r = Running::spawn(&mut place.reader());
        r.wait_for_stderr("reader: waiting");
        r.signal(Signal::SIGKILL); // nothing can clean up after SIGKILL
        assert_eq!(r.finish().shell_status(), 137);
        if m == Mechanism::Fifo {
            assert_eq!(entries(place.dir.path()), ["msg"]);
        }
        run(place.reader().arg("--clean")).success().stderr(predicate::str::contains(removed));
        place.assert_clean();
    }
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
fn a_hundred_thousand_through_every_mechanism() {
    for m in EVERY {
        let (n, writer_extra): (usize, &[&str]) = match m {
            // Each file message costs a create, a rename, an unlink and an inotify wake-up: 10,000.
            Mechanism::File => (10_000, &[]),
            Mechanism::Pipe | Mechanism::Fifo | Mechanism::SysvShm | Mechanism::PosixShm => (100_000, &[]),
            // The queue fills long before the reader has taken 100,000: the writer waits for room.
            Mechanism::SysvQueue | Mechanism::PosixQueue => (100_000, &["--wait"]),
            // Signals carry numbers, not lines: 10,000 queued values in order are in signal_ipc.rs
            // (ten_thousand_realtime_values_arrive_all_in_order).
            Mechanism::Signal => continue,
        };
        let place = Place::new(m);
        let count = n.to_string();
        // The pipe's reader reads to end of file; it takes no --count without --fifo.
        let reader_args: &[&str] = if m == Mechanism::Pipe { &[] } else { &["--count", &count] };
        let mut writer_args = writer_extra.to_vec();
        writer_args.extend(["--numbered", "--repeat", &count, "m"]);
        let (w, r) = place.exchange(&writer_args, reader_args);
        assert!(w.status.success(), "{m:?}: {}", w.stderr);
        assert!(r.status.success(), "{m:?}: {}", r.stderr);
        assert_lines(&r.stdout, &numbered(n, "m"));
        place.assert_clean();
    }
}

#[test]
fn mode_widens_only_when_asked_for_every_mechanism() {
    for m in EVERY {
        let place = Place::new(m);
        let key = place.key.arg();
        // The FIFO's writer waits for the reader below; dropping it would stop it.
        let mut fifo_writer = None;
        match m {
            Mechanism::Fifo => {
                let mut w = Running::spawn(place.writer().args(["--mode", "640", "x"]));
                w.wait_for_stderr("writer: waiting"); // the FIFO exists once the writer waits in open()
                assert_eq!(std::fs::metadata(place.path()).unwrap().permissions().mode() & 0o777, 0o640);
                fifo_writer = Some(w);
            }
            Mechanism::File
            | Mechanism::SysvQueue
            | Mechanism::PosixQueue
            | Mechanism::SysvShm
            | Mechanism::PosixShm => {
                run(place.writer().args(["--mode", "640", "x"])).success();
                let mode = match m {
                    Mechanism::SysvQueue => {
                        sysv::msg_stat(sysv::msgget(place.key.key, 0).unwrap()).unwrap().msg_perm.mode
                    }
                    Mechanism::SysvShm => {
                        sysv::shm_stat(sysv::shmget(place.key.key, 0, 0).unwrap()).unwrap().shm_perm.mode
                    }
                    Mechanism::PosixQueue => {
                        // A POSIX queue descriptor is a file descriptor on Linux: fstat gives its mode.
                        use nix::mqueue::{MQ_OFlag, mq_close, mq_open};
                        let name = posix_queue_name(&key);
                        let q =
                            mq_open(name.as_str(), MQ_OFlag::O_RDONLY, nix::sys::stat::Mode::empty(), None).unwrap();
                        let st = nix::sys::stat::fstat(&q).unwrap();
                        mq_close(q).unwrap();
                        st.st_mode as u16
                    }
                    Mechanism::PosixShm => {
                        std::fs::metadata(format!("/dev/shm{}", shm_name(&key))).unwrap().permissions().mode() as u16
                    }
                    // The message file.
                    _ => std::fs::metadata(place.path()).unwrap().permissions().mode() as u16,
                };
                assert_eq!(mode & 0o777, 0o640, "{m:?}");
            }
            // An anonymous pipe has no name for other users to open: there is no mode to widen.
            Mechanism::Pipe => continue,
            // A signal makes no object; who may send one is the kernel's rule (same user or root).
            Mechanism::Signal => continue,
        }
        run(&mut place.reader()).success().stdout("x\n");
        if let Some(w) = fifo_writer {
            assert!(w.finish().status.success(), "{m:?}");
        }
        place.assert_clean();
        cmd(m.package(), "writer")
            .args(m.variant())
            .args(["--mode", "999", "x"])
            .assert()
            .code(2)
            .stderr(predicate::str::contains("not a permission mode"));
    }
}

#[test]
fn ctrl_z_and_fg_on_every_waiting_reader() {
    for m in EVERY {
        match m {
            // The stdin reader prints no line when it waits, so there is no event to stop it at;
            // the FIFO reader reads a pipe the same way and is covered.
            Mechanism::Pipe => continue,
            Mechanism::Signal => {
                let place = Place::new(m);
                let mut r = Running::spawn(&mut place.reader());
                r.wait_for_stderr("waiting for SIGINT");
                r.signal(Signal::SIGSTOP);
                r.signal(Signal::SIGCONT);
                run(place.writer().arg(r.pid.to_string())).success();
                assert_eq!(r.finish().stdout_str(), "Catch SIGINT!\n", "{m:?}");
                continue;
            }
            Mechanism::File
            | Mechanism::Fifo
            | Mechanism::SysvQueue
            | Mechanism::PosixQueue
            | Mechanism::SysvShm
            | Mechanism::PosixShm => {}
        }
        let place = Place::new(m);
        let mut r = Running::spawn(&mut place.reader());
        r.wait_for_stderr("reader: waiting");
        r.signal(Signal::SIGSTOP);
        r.signal(Signal::SIGCONT);
        run(place.writer().arg("after fg")).success();
        let done = r.finish();
        assert_eq!(done.stdout_str(), "after fg\n", "{m:?}: {}", done.stderr);
        place.assert_clean();
    }
}

#[test]
fn a_reader_started_with_sigint_ignored_stays_deaf_to_it() {
    // As a non-interactive shell starts `reader &`: SIGINT ignored. Then only SIGTERM stops it.
    for m in EVERY {
        match m {
            Mechanism::File
            | Mechanism::Fifo
            | Mechanism::SysvQueue
            | Mechanism::PosixQueue
            | Mechanism::SysvShm
            | Mechanism::PosixShm => {}
            // SIGINT is the very message it waits for; ignoring it is its --ignore (signal_ipc.rs).
            Mechanism::Signal => continue,
            // The stdin reader prints no line when it waits, so there is no event to signal it at.
            Mechanism::Pipe => continue,
        }
        let place = Place::new(m);
        let mut r = Running::spawn(ignoring(&mut place.reader(), Signal::SIGINT));
        r.wait_for_stderr("reader: waiting");
        r.signal(Signal::SIGINT);
        r.signal(Signal::SIGTERM);
        assert_eq!(r.finish().shell_status(), 143, "{m:?}: SIGINT must have been ignored");
        place.assert_clean();
    }
}

/// Issue 23.3: a writer that ends while its messages wait in the object, with no reader there,
/// says so in one line: where they wait, the command that reads them and the one that removes
/// them. Both commands are run as hinted (issue 23.4): the first prints the messages, the second
/// leaves nothing behind.
#[test]
fn a_writer_that_leaves_its_messages_says_where_and_how_to_read_or_remove_them() {
    for m in EVERY {
        let (messages, shown): (&[&str], &str) = match m {
            Mechanism::File => (&[], "the message waits at "),
            Mechanism::SysvQueue | Mechanism::PosixQueue => (&["one", "two"], "2 messages wait in "),
            Mechanism::SysvShm | Mechanism::PosixShm => (&[], "the message waits in "),
            // A FIFO keeps bytes only while an end is open: its writer waits until they are read.
            Mechanism::Fifo => continue,
            // No object holds anything: the pipe's bytes die with it, a signal is delivered or not.
            Mechanism::Pipe | Mechanism::Signal => continue,
        };
        let place = Place::new(m);
        let wrote = run(place.writer().args(messages)).success().get_output().stderr.clone();
        let wrote = String::from_utf8_lossy(&wrote).into_owned();
        let lines: Vec<&str> = wrote.lines().collect();
        assert!(lines.len() == 1 && lines[0].starts_with(&format!("writer: {shown}")), "{m:?}: {wrote}");
        let hinted = tests::hints::commands_in(lines[0]);
        assert_eq!(hinted.len(), 2, "{m:?}: a command that reads and one that removes: {wrote}");
        assert!(hinted[1].args.contains(&"--clean".to_string()), "{m:?}: {wrote}");
        let want = if messages.is_empty() { format!("{}\n", m.default_message()) } else { "one\ntwo\n".into() };
        run(&mut hinted[0].command()).success().stdout(want);
        place.assert_clean();
        // Again, and removed this time.
        run(place.writer().args(messages)).success();
        run(&mut hinted[1].command()).success();
        place.assert_clean();
    }
}

/// Issue 23.2: a waiting line names what is there. Each pair in both start orders: a line that the
/// second process prints (the first one is running) never says to start the first, and every
/// command a waiting line hints at parses (issue 23.4).
#[test]
fn a_waiting_line_never_calls_a_peer_that_is_there_absent() {
    for m in EVERY {
        let (writer_args, reader_args): (&[&str], &[&str]) = match m {
            Mechanism::File
            | Mechanism::SysvQueue
            | Mechanism::PosixQueue
            | Mechanism::SysvShm
            | Mechanism::PosixShm => (&["one", "two"], &["--count", "2"]),
            Mechanism::Fifo => (&["one", "two"], &[]),
            // `writer | reader` start together, and a pipe reader says nothing unless stdin is a
            // terminal (tests/tests/terminal.rs).
            Mechanism::Pipe => continue,
            // The writer needs the reader's PID, so it cannot come first; the reader's line is
            // checked in signal_ipc.rs.
            Mechanism::Signal => continue,
        };
        for writer_first in [false, true] {
            let place = Place::new(m);
            let (mut first_cmd, mut second_cmd, second_name, first_name) = if writer_first {
                (place.writer(), place.reader(), "reader", "writer")
            } else {
                (place.reader(), place.writer(), "writer", "reader")
            };
            let (first_args, second_args) =
                if writer_first { (writer_args, reader_args) } else { (reader_args, writer_args) };
            first_cmd.args(first_args);
            // A FIFO writer that waits for a reader is woken by the reader's open and joins at
            // once, mostly before the reader looks: its fcntl calls (the lock that makes it a
            // member, then blocking writes) are slowed down (strace), so that the reader looks
            // while the writer is there but not yet a member.
            if m == Mechanism::Fifo && writer_first && tests::strace::found_or_skip() {
                first_cmd = tests::strace::injecting(&first_cmd, "fcntl", "fcntl:delay_enter=100000");
            }
            let mut first = Running::spawn(&mut first_cmd);
            let first_line = first.wait_for_stderr_or_end("waiting");
            let second = Running::spawn(second_cmd.args(second_args)).finish();
            let first = first.finish();
            let order = if writer_first { "writer first" } else { "reader first" };
            assert!(first.status.success() && second.status.success(), "{m:?}, {order}: {first:?}\n{second:?}");
            let reader_out = if writer_first { second.stdout_str() } else { first.stdout_str() };
            assert_eq!(reader_out, "one\ntwo\n", "{m:?}, {order}");
            for line in second.stderr.lines().filter(|l| l.contains(" waiting ")) {
                assert!(
                    !line.contains(&format!("(start the {first_name}:")),
                    "{m:?}, {order}: the {second_name} says to start the {first_name}, which runs: {line}"
                );
                tests::hints::assert_parses(line);
            }
            if let Some(line) = first_line {
                tests::hints::assert_parses(&line);
            }
            place.assert_clean();
        }
    }
}
