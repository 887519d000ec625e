//! The end-to-end harness: the right binary for each package, unique keys and paths, and child
//! processes waited on with bounded timeouts (never a sleep as synchronisation).
//!
//! Where a new test goes (tests/tests/):
//! - one mechanism's behaviour: that crate's file, `file_ipc.rs`, `pipe_ipc.rs`, `msgq_ipc.rs`,
//!   `shm_ipc.rs` or `signal_ipc.rs`;
//! - something every mechanism must do: `every_mechanism.rs`, looping over
//!   [`mechanisms::EVERY`] with an exhaustive `match`, and a one-line comment for each mechanism
//!   it cannot apply to;
//! - CLI conventions of every binary: `cli.rs`; the study note's claims: `claims.rs`; the
//!   benchmark: `bench.rs`; the READMEs' commands: `readme.rs`; terminal (pty) behaviour:
//!   `terminal.rs`; the note's C programs in Rust (`examples/note_*.rs`) beside the full pairs:
//!   `note_examples.rs`; SIGKILLs at every call and at random moments of each pair: `crash.rs`
//!   (its harness is [`crash`]).
//!
//! Run binaries only through this harness ([`bin`], [`example`], [`cmd`], [`keyed`], [`Running`],
//! [`mechanisms::Place`]), never `cargo run` or target/debug (same-named bins of different
//! packages overwrite each other there). Each test takes its own key ([`TestKey`], which fails the
//! test if anything is left under it) and its own paths (a `tempfile` directory), and waits for
//! events with bounded waits ([`Running::wait_for_stderr`], [`Running::finish`]; for a program
//! that prints no ready line, such as the note's examples, [`procfs::wait_until`] on what /proc
//! shows), never sleeps.

pub mod bins;
pub mod crash;
pub mod hints;
pub mod keys;
pub mod mechanisms;
pub mod procfs;
pub mod running;
pub mod strace;

pub use bins::{as_nobody, bin, c_program, cmd, example, program_as_nobody};
pub use keys::{TestKey, unique_key};
pub use mechanisms::{EVERY, Mechanism, Place};
pub use running::{Finished, Running};

/// `cmd` started with `sig` ignored, as `nohup` starts a command with SIGHUP ignored.
pub fn ignoring(cmd: &mut std::process::Command, sig: nix::sys::signal::Signal) -> &mut std::process::Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: signal() is async-signal-safe, as pre_exec requires.
    unsafe {
        cmd.pre_exec(move || {
            libc::signal(sig as libc::c_int, libc::SIG_IGN);
            Ok(())
        })
    }
}

/// The names in `dir`, sorted: what a test left behind.
pub fn entries(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("dir entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Package `package`'s binary `name` with `--key` set to the test's own key.
pub fn keyed(package: &str, name: &str, key: &TestKey) -> std::process::Command {
    let mut c = std::process::Command::new(bin(package, name));
    c.args(["--key", &key.arg()]);
    c
}

/// Runs `c` to the end and returns assert_cmd's assertions on it.
pub fn run(c: &mut std::process::Command) -> assert_cmd::assert::Assert {
    use assert_cmd::assert::OutputAssertExt;
    c.assert()
}

/// Every `.rs` file under `dir`, for the tests that read the sources (hints, output blocks).
pub fn rust_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(rust_files(&p));
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    out
}
