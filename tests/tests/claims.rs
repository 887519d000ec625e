//! docs/claims.md holds every claim of the note with what to run to see it. This checks that no
//! id is missing, that every command names a binary, test or bench row that exists, and that
//! each `Run` prints what its `Shows` lines say. (Files inside the repository only: a user's
//! clone has no ../shared.)

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use predicates::prelude::*;
use tests::{Running, TestKey, bin, cmd};

/// The note's claims, as numbered in the project's claim list.
const IDS: &[&str] = &[
    "N1", "N2", "F1", "F2", "P1", "P2", "P2-code", "M1", "M2", "M3", "M4", "M5", "M6", "S1", "S2", "S3", "S4", "S5",
    "S6", "S7", "S-code", "G1", "G2", "G3", "G4", "G5", "G6", "G7", "G8", "G9", "G10", "G11", "G-code",
];

const NOTHING_TO_RUN: &str = "motivation, nothing to run";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

struct Claim {
    verdict: String,
    /// (kind, command) for every **Run:**, **Test:** and **Bench:** line.
    commands: Vec<(String, String)>,
    shows: Vec<String>,
}

fn claims() -> HashMap<String, Claim> {
    let text = std::fs::read_to_string(root().join("docs/claims.md")).expect("docs/claims.md");
    let mut out = HashMap::new();
    for section in text.split("\n### ").skip(1) {
        let heading = section.lines().next().unwrap_or_default();
        let (id, verdict) =
            heading.split_once(" · ").unwrap_or_else(|| panic!("heading without ' · verdict': {heading}"));
        let mut claim = Claim { verdict: verdict.trim().to_string(), commands: Vec::new(), shows: Vec::new() };
        for line in section.lines() {
            let quoted =
                || line.split('`').nth(1).unwrap_or_else(|| panic!("{id}: no `command` in {line}")).to_string();
            for kind in ["Run", "Test", "Bench"] {
                if line.starts_with(&format!("**{kind}:**")) {
                    claim.commands.push((kind.to_string(), quoted()));
                }
            }
            if line.starts_with("**Shows:**") {
                claim.shows.push(quoted());
            }
        }
        assert!(out.insert(id.to_string(), claim).is_none(), "{id} appears twice");
    }
    out
}

#[test]
fn every_claim_is_there_with_a_verdict_and_something_to_run() {
    let claims = claims();
    for id in IDS {
        let c = claims.get(*id).unwrap_or_else(|| panic!("docs/claims.md has no section for {id}"));
        let known = ["true", "half true", "wrong", NOTHING_TO_RUN];
        assert!(known.contains(&c.verdict.as_str()), "{id}: verdict {:?}", c.verdict);
        if c.verdict != NOTHING_TO_RUN {
            assert!(!c.commands.is_empty(), "{id}: nothing to run");
        }
        let runs = c.commands.iter().any(|(k, _)| k == "Run");
        assert_eq!(runs, !c.shows.is_empty(), "{id}: a Run needs Shows lines and Shows need a Run");
    }
    for id in claims.keys() {
        assert!(IDS.contains(&id.as_str()), "docs/claims.md has {id}, which is not a claim of the note");
    }
}

/// `cargo test -p tests --test FILE NAME` or `cargo test -p PKG NAME`: the test must exist.
fn check_test(id: &str, command: &str) {
    let words: Vec<&str> = command.split_whitespace().collect();
    let name = words.last().expect("a test name");
    let files: Vec<PathBuf> = match words.as_slice() {
        ["cargo", "test", "-p", "tests", "--test", file, _] => vec![root().join(format!("tests/tests/{file}.rs"))],
        ["cargo", "test", "-p", package, _] => rust_files(&root().join(package).join("src")),
        _ => panic!("{id}: not a test command I know: {command}"),
    };
    let found = files.iter().any(|f| std::fs::read_to_string(f).is_ok_and(|t| t.contains(&format!("fn {name}("))));
    assert!(found, "{id}: no test fn {name} for `{command}`");
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

/// `cargo run --release -p bench -- --only A,B`: every row must be one of the bench's.
fn check_bench(id: &str, command: &str) {
    let rows =
        command.split("--only ").nth(1).unwrap_or_else(|| panic!("{id}: a bench command names its rows: {command}"));
    for row in rows.trim().split(',') {
        assert!(bench::mechs::ALL.iter().any(|m| m.id == row), "{id}: the bench has no row {row}");
    }
}

/// `cargo run [-q] -p PKG --bin BIN [-- ARGS]`: runs it and returns stdout and stderr.
fn run(id: &str, command: &str) -> String {
    let words: Vec<&str> = command.split_whitespace().filter(|w| *w != "-q").collect();
    let (head, args) = match words.iter().position(|w| *w == "--") {
        Some(i) => (&words[..i], &words[i + 1..]),
        None => (&words[..], &[][..]),
    };
    let ["cargo", "run", "-p", package, "--bin", name] = head else {
        panic!("{id}: not a run command I know: {command}")
    };
    let done = Running::spawn(Command::new(bin(package, name)).args(args)).finish();
    assert!(done.status.success(), "{id}: `{command}` failed: {done:?}");
    done.stdout_str() + &done.stderr
}

#[test]
fn every_command_exists_and_prints_what_the_page_says() {
    let mut outputs: HashMap<String, String> = HashMap::new();
    for (id, claim) in claims() {
        for (kind, command) in &claim.commands {
            match kind.as_str() {
                "Test" => check_test(&id, command),
                "Bench" => check_bench(&id, command),
                _ => {
                    let out = outputs.entry(command.clone()).or_insert_with(|| run(&id, command));
                    for want in &claim.shows {
                        assert!(out.contains(want.as_str()), "{id}: `{command}` does not print {want:?}:\n{out}");
                    }
                }
            }
        }
    }
}

// ---- the claims' own tests ------------------------------------------------------------------

/// F2: a message file just written is read from the page cache; no byte comes from the disk.
#[test]
fn a_message_file_is_read_from_the_page_cache() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("msg");
    cmd("file-ipc", "writer").arg("--path").arg(&path).arg("cached").assert().success();
    cmd("file-ipc", "reader")
        .arg("--path")
        .arg(&path)
        .arg("--show-io")
        .assert()
        .success()
        .stdout("cached\n")
        .stderr(predicate::str::contains("0 of them fetched from storage (read_bytes)"));
}

/// M4: msgrcv removes the message it returns (the note says it "pushes").
#[test]
fn msgrcv_removes_the_message_it_returns() {
    let k = TestKey::new();
    cmd("msgq-ipc", "writer").args(["--key", &k.arg(), "first", "second"]).assert().success();
    cmd("msgq-ipc", "reader")
        .args(["--key", &k.arg(), "--show-count", "--count", "2"])
        .assert()
        .success()
        .stdout("first\nsecond\n")
        .stderr(predicate::str::contains(format!("queue {} held 2 before and 1 after", k.arg())))
        .stderr(predicate::str::contains(format!("queue {} held 1 before and 0 after", k.arg())));
    k.assert_clean();
}
