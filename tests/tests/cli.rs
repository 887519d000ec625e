//! Conventions every binary keeps: --version names the package, --help, exit 2 on bad usage.

use predicates::prelude::*;
use tests::cmd;

/// Every (package, binary) of the workspace.
const BINARIES: &[(&str, &str)] = &[
    ("file-ipc", "writer"),
    ("file-ipc", "reader"),
    ("pipe-ipc", "writer"),
    ("pipe-ipc", "reader"),
    ("pipe-ipc", "fork"),
    ("msgq-ipc", "writer"),
    ("msgq-ipc", "reader"),
    ("shm-ipc", "writer"),
    ("shm-ipc", "reader"),
    ("shm-ipc", "layout"),
    ("signal-ipc", "writer"),
    ("signal-ipc", "reader"),
    ("signal-ipc", "demo"),
    ("bench", "bench"),
    ("timeline", "timeline"),
];

#[test]
fn version_names_package_and_binary() {
    for (package, name) in BINARIES {
        let want = tests::bins::version_line(package, name);
        cmd(package, name).arg("--version").assert().success().stdout(want).stderr("");
    }
}

#[test]
fn help_is_on_stdout() {
    for (package, name) in BINARIES {
        for flag in ["--help", "-h"] {
            cmd(package, name)
                .arg(flag)
                .assert()
                .success()
                .stdout(predicate::str::contains(format!("Usage: {name}")))
                // A help made at run time (common::cli::with_help) replaces its placeholder, which
                // says where it is made: one left means the argument's id no longer matches.
                .stdout(predicate::str::contains("(help:").not());
        }
    }
}

/// Issue 15: every program of a pair (and `fork`, `layout`, `demo`) can show its calls.
#[test]
fn every_ipc_binary_takes_trace() {
    for (package, name) in BINARIES.iter().filter(|(p, _)| *p != "bench") {
        cmd(package, name).arg("--help").assert().success().stdout(predicate::str::contains("--trace"));
    }
}

#[test]
fn bad_usage_exits_2_with_a_message_on_stderr() {
    for (package, name) in BINARIES {
        cmd(package, name)
            .arg("--no-such-flag")
            .assert()
            .code(2)
            .stdout("")
            .stderr(predicate::str::contains("--no-such-flag"));
    }
    cmd("file-ipc", "writer").args(["--repeat", "0"]).assert().code(2);
    cmd("file-ipc", "reader").args(["--count", "x"]).assert().code(2);
    for key in ["0", "0x100000000", "twelve", "-5"] {
        cmd("msgq-ipc", "reader")
            .arg(format!("--key={key}"))
            .assert()
            .code(2)
            .stderr(predicate::str::contains("--key"));
    }
    // `--key -1` (with a space) is a refused key, not a flag: no tip to write `-- -1`, which
    // would make it a message.
    for (package, name) in
        [("msgq-ipc", "reader"), ("msgq-ipc", "writer"), ("shm-ipc", "reader"), ("shm-ipc", "writer")]
    {
        cmd(package, name)
            .args(["--key", "-1"])
            .assert()
            .code(2)
            .stderr(predicate::str::contains("-1 is not a key").and(predicate::str::contains("-- -1").not()));
    }
}

/// `demo | head -1` and `layout | head -1`: the walk-throughs end quietly when their reader has
/// gone, children included (no panic, nothing on stderr, death by SIGPIPE as a filter's). The
/// reader is gone before the first write (a pipe whose read end is closed), so that no output
/// can slip into the pipe's buffer first.
#[test]
fn walk_throughs_end_quietly_when_the_reader_goes() {
    use std::os::unix::process::ExitStatusExt;
    for (package, name) in [("signal-ipc", "demo"), ("shm-ipc", "layout"), ("bench", "bench")] {
        let (read_end, write_end) = nix::unistd::pipe().expect("pipe");
        drop(read_end);
        let mut c = std::process::Command::new(tests::bin(package, name));
        if name == "bench" {
            c.arg("--list");
        }
        let out = c.stdout(std::process::Stdio::from(write_end)).output().expect("spawn");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.is_empty(), "{package} {name} into a closed pipe printed on stderr: {stderr}");
        assert_eq!(out.status.signal(), Some(libc::SIGPIPE), "{package} {name}: {:?}", out.status);
    }
}

/// Issue 23.7: every binary's help ends with what its exit statuses mean, and every writer's shows
/// its default message in full.
#[test]
fn help_ends_with_exit_statuses_and_shows_the_default_message() {
    for (package, name) in BINARIES {
        let out = cmd(package, name).arg("--help").assert().success().get_output().stdout.clone();
        let help = String::from_utf8_lossy(&out);
        let (_, statuses) = help
            .rsplit_once("\nExit status:\n")
            .unwrap_or_else(|| panic!("{package} {name} --help has no 'Exit status:' block at its end:\n{help}"));
        let first: Vec<&str> = statuses.lines().filter_map(|l| l.split_whitespace().next()).collect();
        assert_eq!(first, ["0", "1", "2", "128+n"], "{package} {name}: the exit statuses, in order:\n{statuses}");
    }
    let defaults = [
        ("file-ipc", file_ipc::DEFAULT_MESSAGE),
        ("pipe-ipc", pipe_ipc::DEFAULT_MESSAGE),
        ("msgq-ipc", msgq_ipc::DEFAULT_MESSAGE),
        ("shm-ipc", shm_ipc::DEFAULT_MESSAGE),
    ];
    for (package, message) in defaults {
        cmd(package, "writer")
            .arg("--help")
            .assert()
            .success()
            .stdout(predicate::str::contains(format!("[default: the note's \"{message}\"]")));
    }
}

/// The crates whose sources name their binaries' options, and the binaries they hold (`common`'s
/// lines are printed by every binary).
const SOURCES: &[(&str, &[&str])] = &[
    ("common", &[]),
    ("file-ipc", &["writer", "reader"]),
    ("pipe-ipc", &["writer", "reader", "fork"]),
    ("msgq-ipc", &["writer", "reader"]),
    ("shm-ipc", &["writer", "reader", "layout"]),
    ("signal-ipc", &["writer", "reader", "demo"]),
    ("bench", &["bench"]),
];

/// Options of cargo and of the test harness, which lines and comments name too.
const NOT_OURS: &[&str] =
    &["--bin", "--example", "--release", "--quiet", "--workspace", "--test", "--nocapture", "--all-targets", "--help"];

/// Issue 23.4: every option that a string or a doc comment of a crate's source names (the hints its
/// binaries print, their help) is an option of one of that crate's binaries, and `--opt=VALUE`
/// names one that takes a value. (The hinted commands of the waiting and leftover lines are also
/// run through the parser: every_mechanism.rs, tests::hints.)
#[test]
fn every_option_a_source_names_exists() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root");
    let helps: Vec<(&str, &str, String)> = SOURCES
        .iter()
        .flat_map(|(package, bins)| bins.iter().map(move |b| (*package, *b)))
        .map(|(package, name)| {
            let out = cmd(package, name).arg("--help").assert().success().get_output().stdout.clone();
            (package, name, String::from_utf8_lossy(&out).into_owned())
        })
        .collect();
    // Hidden options (`#[arg(long = "break", hide = true, ...)]`) are in no help: the sources name them.
    let mut hidden: Vec<(&str, String)> = Vec::new();
    for (package, _) in SOURCES {
        for file in tests::rust_files(&root.join(package).join("src")) {
            let text = std::fs::read_to_string(&file).expect("read source");
            for line in text.lines().filter(|l| l.contains("hide = true")) {
                if let Some(name) = line.split("long = \"").nth(1).and_then(|r| r.split('"').next()) {
                    hidden.push((package, format!("      --{name} <")));
                }
            }
        }
    }
    let mut wrong = Vec::new();
    for (package, _) in SOURCES {
        let own = |p: &str| *package == "common" || p == *package;
        let theirs: Vec<&str> = helps
            .iter()
            .filter(|(p, _, _)| own(p))
            .map(|(_, _, h)| h.as_str())
            .chain(hidden.iter().filter(|(p, _)| own(p)).map(|(_, h)| h.as_str()))
            .collect();
        // A doc comment may name another crate's binary's option (`reader --serve`).
        let all: Vec<&str> =
            helps.iter().map(|(_, _, h)| h.as_str()).chain(hidden.iter().map(|(_, h)| h.as_str())).collect();
        for file in tests::rust_files(&root.join(package).join("src")) {
            let text = std::fs::read_to_string(&file).expect("read source");
            for (n, comment, piece) in texts_of(&text) {
                let theirs = if comment { &all } else { &theirs };
                for (flag, valued) in options_named(&piece) {
                    if NOT_OURS.contains(&flag.as_str()) {
                        continue;
                    }
                    let exists =
                        theirs.iter().any(|h| h.contains(&format!("{flag} ")) || h.contains(&format!("{flag}\n")));
                    let takes_value = theirs.iter().any(|h| h.contains(&format!("{flag} <")));
                    if !exists || (valued && !takes_value) {
                        let eq = if valued { "=" } else { "" };
                        wrong.push(format!("{}:{n}: {flag}{eq}: {}", file.display(), piece.trim()));
                    }
                }
            }
        }
    }
    assert!(wrong.is_empty(), "options that no binary of the crate has (or that take no value):\n{}", wrong.join("\n"));
}

/// The texts of a Rust source that a user may read: its string literals (across lines) and its
/// comments, each with the line it starts on and whether it is a comment.
fn texts_of(src: &str) -> Vec<(usize, bool, String)> {
    let (mut out, mut line) = (Vec::new(), 1);
    let mut chars = src.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' => line += 1,
            '/' if chars.peek() == Some(&'/') => {
                let comment: String = std::iter::from_fn(|| chars.next_if(|&c| c != '\n')).collect();
                out.push((line, true, comment));
            }
            // A char literal: '"' is no string.
            '\'' => {
                let lit: String = chars.clone().take(3).collect();
                if lit.starts_with("\"'") || lit.starts_with("\\\"'") {
                    chars.nth(lit.find('\'').unwrap_or(0));
                }
            }
            '"' => {
                let (start, mut text, mut escaped) = (line, String::new(), false);
                for c in chars.by_ref() {
                    if c == '\n' {
                        line += 1;
                    }
                    match (c, escaped) {
                        ('\\', false) => escaped = true,
                        ('"', false) => break,
                        _ => {
                            escaped = false;
                            text.push(c);
                        }
                    }
                }
                out.push((start, false, text));
            }
            _ => {}
        }
    }
    out
}

/// The `--option` words in `text`, each with whether it is written `--option=VALUE`.
fn options_named(text: &str) -> Vec<(String, bool)> {
    let texts = [text];
    let mut found = Vec::new();
    for text in texts {
        let mut rest = text;
        while let Some(at) = rest.find("--") {
            let before = rest[..at].chars().last();
            rest = &rest[at + 2..];
            let name: String = rest.chars().take_while(|c| c.is_ascii_lowercase() || *c == '-').collect();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '-') || name.len() < 2 || name.starts_with('-') {
                continue;
            }
            let valued = rest[name.len()..].starts_with('=');
            found.push((format!("--{}", name.trim_end_matches('-')), valued));
        }
    }
    found
}
