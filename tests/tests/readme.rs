//! Every command that a README shows runs to its end as written, in the order written (issue 13).
//!
//! The commands come from the README text itself, so a README change that breaks an example fails
//! here. Each ```sh block is run line by line, with `cargo run ... -p PKG --bin NAME` replaced by
//! the harness's binary of that package (the same program, without the same-named-binary trap),
//! and `cargo run ... -p PKG --example NAME` by the harness's build of that example. Under
//! `# Terminal 1` a command is started in the background and may wait for its peer: the test goes
//! on once it printed its `waiting` line (or ended). Commands under `# Terminal 2`, and in blocks
//! without terminals, run to their end one after the other. At the end of a block every Terminal
//! 1 process must have ended too. A command ends with status 0 unless its comment says
//! `(status N)`, and a comment `prints "a", then "b"` names what it must print. `PID` (or the
//! README's sample `4242`) stands for the PID that Terminal 1 printed.
//!
//! Each README gets a key of its own (passed as `--key` to the binaries that take one) and its own
//! `$XDG_RUNTIME_DIR`, so nothing can meet a user's objects, and nothing may be left at the end of
//! each block (a later block's reader must not clean up after an earlier one).
//!
//! The note's examples (`examples/note_*.rs`) are the note's programs and nothing more, so:
//! - Keys. An example takes a key as its first argument when its source's `Usage:` line says
//!   `[KEY`. Given none in the README line (the note's default 1234 is meant), the README's key is
//!   added, in decimal. The note's key as a word of a command, `1234` (e.g. `ipcrm -Q 1234`, or
//!   `-- 1234` for an example), also stands for the README's key in decimal: the README shows what a
//!   user types for key 1234, and the test runs the same on its own key.
//! - Paths. An example's default path is relative (`ipc.txt`) and each README runs in its own
//!   directory, so a path needs no translation.
//! - Ready. An example prints no ready line and no PID: under Terminal 1 the test goes on once the
//!   example sleeps in a system call (its exec done and `S` in /proc/PID/stat: before that it
//!   runs, it does not sleep), and `PID`/`4242` stand for the example's own PID (the line is
//!   exec'ed, so the process started is the example).
//! - Orphans. The note's fork program does not wait for its child, which is left to PID 1 (some
//!   containers' PID 1 never reaps it). This test adopts orphans (`PR_SET_CHILD_SUBREAPER`) and, at
//!   the end of each block, waits for every adopted example process: it must end, like any
//!   command.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, PoisonError};

use nix::unistd::Pid;
use tests::{Running, TestKey, bin, entries, example, procfs};

/// The note's key, which stands for the README's own in a command.
const NOTE_KEY: &str = "1234";

/// Commands a test does not run as written, and why.
const NOT_RUN: &[(&str, &str)] = &[
    ("cargo test --workspace", "it is this test suite"),
    ("cargo run --release -p bench", "a 40-second benchmark: tests/tests/bench.rs runs the same binary with --quick"),
];

/// One command of a README, where it stands, and how it must end.
#[derive(Debug)]
struct Step {
    at: String,
    terminal: u8,
    line: String,
    status: i32,
    /// From a comment `prints "a", then "b"`: what must be on the command's stdout.
    prints: Vec<String>,
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

/// The ```sh blocks of `readme`, each a list of steps.
fn blocks(readme: &str) -> Vec<Vec<Step>> {
    let text = std::fs::read_to_string(root().join(readme)).unwrap_or_else(|e| panic!("{readme}: {e}"));
    let mut out = Vec::new();
    let mut block: Option<Vec<Step>> = None;
    let mut terminal = 0;
    let mut pending = String::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.starts_with("```") {
            match block.take() {
                Some(b) => out.push(b),
                None if line == "```sh" => {
                    block = Some(Vec::new());
                    terminal = 0;
                }
                None => {}
            }
            continue;
        }
        let Some(steps) = block.as_mut() else { continue };
        if let Some(t) = line.strip_prefix("# Terminal ") {
            terminal = t.trim().parse().unwrap_or_else(|_| panic!("{readme}:{}: `# Terminal N`", n + 1));
            continue;
        }
        if line.is_empty() || line.starts_with('#') {
            continue; // a comment, or output shown as one
        }
        let (command, comment) = split_comment(line);
        pending.push_str(command.trim_end_matches('\\'));
        if command.ends_with('\\') {
            continue;
        }
        let status = comment
            .split_once("(status ")
            .map_or(0, |(_, rest)| rest.split(')').next().and_then(|s| s.trim().parse().ok()).expect("(status N)"));
        let prints = match comment.split_once("prints \"") {
            Some((_, quoted)) => format!("\"{quoted}").split('"').skip(1).step_by(2).map(str::to_string).collect(),
            None => Vec::new(),
        };
        let line = std::mem::take(&mut pending);
        steps.push(Step { at: format!("{readme}:{}", n + 1), terminal, line, status, prints });
    }
    out
}

/// `cmd args  # comment` into the command and the comment; a `#` inside quotes is the command's.
fn split_comment(line: &str) -> (&str, &str) {
    let mut quote = None;
    for (i, c) in line.char_indices() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '#') if i == 0 || line[..i].ends_with(' ') => return (line[..i].trim(), &line[i + 1..]),
            _ => {}
        }
    }
    (line.trim(), "")
}

/// Whether the binary at `path` takes `--key` (the SysV pairs do).
fn takes_key(path: &Path) -> bool {
    static SEEN: Mutex<Option<HashMap<PathBuf, bool>>> = Mutex::new(None);
    let mut seen = SEEN.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    *seen.get_or_insert_with(HashMap::new).entry(path.to_path_buf()).or_insert_with(|| {
        let help = Command::new(path).arg("--help").output().expect("--help");
        String::from_utf8_lossy(&help.stdout).contains("--key")
    })
}

/// Whether the example `name` of `package` takes a key (its source's `Usage:` line says `[KEY`).
fn example_takes_key(package: &str, name: &str) -> bool {
    let src = root().join(package).join("examples").join(format!("{name}.rs"));
    let text = std::fs::read_to_string(&src).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
    let usage =
        text.lines().find(|l| l.contains("Usage:")).unwrap_or_else(|| panic!("{}: no Usage: line", src.display()));
    usage.contains("[KEY")
}

/// A README line made runnable, and the example it starts, if it is one.
struct Translated {
    line: String,
    example: Option<PathBuf>,
}

/// The shell line with every `cargo run [-q] [--release] -p PKG [--bin NAME | --example NAME] [--]`
/// replaced by the program (a binary with the README's own `--key`, an example with the README's
/// key in decimal if it takes one and the line gives none), `PID` / `4242` by the PID Terminal 1
/// printed, and the note's key `1234` by the README's key in decimal.
fn translate(line: &str, key: &TestKey, pid: Option<&str>) -> Translated {
    let mut out = Vec::new();
    let mut started = None;
    let mut words = line.split(' ').peekable();
    while let Some(w) = words.next() {
        if w == "cargo" && words.peek() == Some(&"run") {
            words.next();
            let (mut package, mut name, mut ex) = (None, None, None);
            while let Some(&next) = words.peek() {
                match next {
                    "-q" | "--quiet" | "--release" => {}
                    "-p" => package = words.nth(1),
                    "--bin" => name = words.nth(1),
                    "--example" => ex = words.nth(1),
                    "--" => {}
                    _ => break,
                }
                if !matches!(next, "-p" | "--bin" | "--example") {
                    words.next();
                }
                if next == "--" {
                    break;
                }
            }
            let package = package.unwrap_or_else(|| panic!("`cargo run` without -p in {line}"));
            if let Some(ex) = ex {
                let path = example(package, ex);
                out.push(path.display().to_string());
                // No argument of the README's own: the note's key is meant.
                let no_args = words.peek().is_none_or(|w| w.starts_with(['|', ';', '&', '<', '>']));
                if no_args && example_takes_key(package, ex) {
                    out.push(key.key.get().to_string());
                }
                started = Some(path);
                continue;
            }
            let path = bin(package, name.unwrap_or(package));
            out.push(path.display().to_string());
            if takes_key(&path) {
                out.push(format!("--key {}", key.arg()));
            }
        } else if w == "PID" || w == "4242" {
            out.push(pid.unwrap_or_else(|| panic!("`{w}` in {line}, but Terminal 1 printed no pid")).to_string());
        } else if w == NOTE_KEY {
            out.push(key.key.get().to_string());
        } else {
            out.push(w.to_string());
        }
    }
    Translated { line: out.join(" "), example: started }
}

/// The PID in a ready line such as `reader: pid 4242, waiting for SIGINT`.
fn pid_in(line: &str) -> Option<String> {
    let digits: String = line.split_once("pid ")?.1.chars().take_while(char::is_ascii_digit).collect();
    (!digits.is_empty()).then_some(digits)
}

/// A line without shell syntax, which the shell execs (so the process started is the command).
fn is_simple(line: &str) -> bool {
    !line.contains(['|', ';', '&', '<', '>', '$', '`'])
}

fn shell(line: &str, dir: &Path) -> Command {
    let mut c = Command::new("bash");
    c.arg("-c").arg(if is_simple(line) { format!("exec {line}") } else { line.to_string() });
    c.current_dir(dir).env("XDG_RUNTIME_DIR", dir).env("TMPDIR", dir).env_remove("CI");
    c
}

/// The PIDs this test started itself (their own threads wait for them), so that an adopted
/// orphan is told from them.
static STARTED: Mutex<Option<HashSet<Pid>>> = Mutex::new(None);

fn start(cmd: &mut Command) -> Running {
    let mut started = STARTED.lock().unwrap_or_else(PoisonError::into_inner);
    let running = Running::spawn(cmd);
    started.get_or_insert_with(HashSet::new).insert(running.pid);
    running
}

/// Waits for every example process this test adopted (see the module comment): it must end.
fn reap_orphans() {
    let started = STARTED.lock().unwrap_or_else(PoisonError::into_inner);
    for pid in procfs::children(Pid::this()) {
        let ours = started.as_ref().is_some_and(|s| s.contains(&pid));
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if !ours && comm.starts_with("note_") {
            procfs::reap(pid);
        }
    }
}

fn run_readme(readme: &str) {
    procfs::adopt_orphans();
    let key = TestKey::new();
    let dir = tempfile::tempdir().expect("tempdir");
    // A runtime directory is used only if it is ours and 0700 (common::paths).
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o700)).expect("chmod 0700");
    let mut ran = 0;
    for block in blocks(readme) {
        let mut background: Vec<(Step, Running)> = Vec::new();
        let mut pid = None;
        let mut last_at = String::new();
        for step in block {
            last_at.clone_from(&step.at);
            if let Some((_, why)) = NOT_RUN.iter().find(|(c, _)| step.line.starts_with(c)) {
                eprintln!("{}: not run ({why}): {}", step.at, step.line);
                continue;
            }
            let translated = translate(&step.line, &key, pid.as_deref());
            let mut running = start(&mut shell(&translated.line, dir.path()));
            ran += 1;
            if step.terminal == 1 {
                if let Some(exe) = translated.example {
                    assert!(is_simple(&translated.line), "{}: an example under Terminal 1 must run alone", step.at);
                    let what = format!("{}: `{}` asleep or ended", step.at, step.line);
                    procfs::wait_until(&what, || {
                        procfs::asleep_in(running.pid, &exe) || matches!(procfs::state(running.pid), None | Some('Z'))
                    });
                    pid = Some(running.pid.to_string());
                } else if let Some(ready) = running.wait_for_stderr_or_end("waiting") {
                    pid = pid_in(&ready).or(pid);
                }
                background.push((step, running));
            } else {
                check(&step, running);
            }
        }
        for (step, running) in background {
            check(&step, running);
        }
        reap_orphans();
        // Block by block: a later block's reader must not clean up after an earlier one.
        let left = entries(dir.path());
        assert!(left.is_empty(), "{last_at}: the block left {left:?} in its runtime directory");
        let left = key.take_leftovers();
        assert!(left.is_empty(), "{last_at}: the block left {left:?}");
    }
    assert!(ran > 0, "{readme}: no command ran");
}

fn check(step: &Step, running: Running) {
    eprintln!("{}: waiting for the end of `{}`", step.at, step.line); // names the step a timeout hit
    let pid = running.pid;
    let done = running.finish();
    if let Some(started) = STARTED.lock().unwrap_or_else(PoisonError::into_inner).as_mut() {
        started.remove(&pid); // reaped: its number may come back as an orphan's
    }
    done.assert_no_panic();
    for want in &step.prints {
        assert!(
            done.stdout_str().contains(want.as_str()),
            "{}: `{}` did not print {want:?}: {done:?}",
            step.at,
            step.line
        );
    }
    assert_eq!(
        done.shell_status(),
        step.status,
        "{}: `{}` ended with {}, not {}\nstdout: {}\nstderr: {}",
        step.at,
        step.line,
        done.shell_status(),
        step.status,
        done.stdout_str(),
        done.stderr
    );
}

#[test]
fn top_readme() {
    run_readme("README.md");
}

#[test]
fn signal_readme() {
    run_readme("signal-ipc/README.md");
}

#[test]
fn msgq_readme() {
    run_readme("msgq-ipc/README.md");
}

#[test]
fn shm_readme() {
    run_readme("shm-ipc/README.md");
}

#[test]
fn pipe_readme() {
    run_readme("pipe-ipc/README.md");
}

#[test]
fn file_readme() {
    run_readme("file-ipc/README.md");
}

#[test]
fn timeline_readme() {
    run_readme("timeline/README.md");
}

/// The top README in Korean (issue 23.8) runs the same commands, block for block.
#[test]
fn top_readme_in_korean() {
    let sh = |page: &str| -> Vec<Vec<String>> {
        blocks(page).iter().map(|b| b.iter().map(|s| format!("{} {}", s.terminal, s.line)).collect()).collect()
    };
    assert_eq!(sh("README.ko.md"), sh("README.md"), "README.ko.md's commands are not README.md's");
    run_readme("README.ko.md");
}
