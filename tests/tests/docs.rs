//! Output blocks that cannot go stale (issue 23.5). Every block of program output in the READMEs
//! and docs/claims.md (everything fenced but ```sh, which tests/tests/readme.rs runs) is one of:
//!
//! - made by a run: the line before its fence says `<!-- output: NAME -->`, and [`output`] runs
//!   NAME's commands for real; the block must be what they print, with figures, PIDs, ids and
//!   addresses masked ([`masked`]). `UPDATE_DOCS=1 cargo test -p tests --test docs` writes what
//!   the run printed back into the file (with the README's key 1234 and paths in place of the
//!   test's own);
//! - checked for its shape: a `--trace` block, every `[bin pid]` line of which is a call in
//!   strace's syntax that the workspace traces, made by a binary of the page's package; or the
//!   bench's output, whose lines are the kinds a real run prints and whose rows have its columns;
//! - or a timeline chart: `<!-- timeline: docs/timeline/NAME.txt -->`, the same as that file;
//! - or quoted, not ours: the line before its fence says `<!-- quoted: WHAT -->` (the note's C,
//!   strace of the note's C programs).
//!
//! Figures in prose come from the top README's bench table: its prose and README.ko.md quote the
//! ranges the table gives, and docs/claims.md(.ko.md) quote no latency, they point at the table.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use tests::{Running, TestKey, bin, keyed};

/// The pages whose blocks are checked, and the package whose binaries their traces show.
const PAGES: &[(&str, Option<&str>)] = &[
    ("README.md", None),
    ("README.ko.md", None),
    ("docs/claims.md", None),
    ("docs/claims.ko.md", None),
    ("file-ipc/README.md", Some("file-ipc")),
    ("pipe-ipc/README.md", Some("pipe-ipc")),
    ("msgq-ipc/README.md", Some("msgq-ipc")),
    ("shm-ipc/README.md", Some("shm-ipc")),
    ("signal-ipc/README.md", Some("signal-ipc")),
    ("bench/README.md", Some("bench")),
    ("common/README.md", None),
];

/// Where the README's traces put the runtime directory, for paths written back.
const DOC_DIR: &str = "/tmp/ipc-notes-0";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

/// A fenced block: its first line (1-based) after the fence, its info string, the marker on the
/// line before its fence, and its lines.
struct Block {
    at: usize,
    info: String,
    marker: Option<String>,
    lines: Vec<String>,
}

fn blocks(text: &str) -> Vec<Block> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some(info) = lines[i].trim_start().strip_prefix("```") else {
            i += 1;
            continue;
        };
        let marker = i.checked_sub(1).and_then(|p| {
            let l = lines[p].trim();
            l.strip_prefix("<!-- ").and_then(|m| m.strip_suffix(" -->")).map(str::to_string)
        });
        let start = i + 1;
        let mut end = start;
        while end < lines.len() && !lines[end].trim_start().starts_with("```") {
            end += 1;
        }
        out.push(Block {
            at: start + 1,
            info: info.trim().to_string(),
            marker,
            lines: lines[start..end].iter().map(|l| l.to_string()).collect(),
        });
        i = end + 1;
    }
    out
}

/// Figures, PIDs, ids, keys and addresses out: what may differ from run to run.
fn masked(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '0' && chars.peek() == Some(&'x') {
            chars.next();
            while chars.next_if(char::is_ascii_hexdigit).is_some() {}
            out.push_str("0x#");
        } else if c.is_ascii_digit() {
            while chars.next_if(|c| c.is_ascii_digit() || *c == '.').is_some() {}
            out.push('#');
        } else {
            out.push(c);
        }
    }
    out.lines().map(str::trim_end).collect::<Vec<_>>().join("\n")
}

/// A place of its own for one run: a key, and a 0700 directory as `$XDG_RUNTIME_DIR`.
struct Run {
    key: TestKey,
    dir: tempfile::TempDir,
}

impl Run {
    fn new() -> Run {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o700)).expect("chmod");
        Run { key: TestKey::new(), dir }
    }

    /// `package`'s `name` with `args`, in this place: stdout and stderr in one pipe, in the order
    /// printed, as a terminal shows them.
    fn shown(&self, package: &str, name: &str, args: &[&str]) -> String {
        let mut c = if ["msgq-ipc", "shm-ipc"].contains(&package) && name != "layout" {
            keyed(package, name, &self.key)
        } else {
            Command::new(bin(package, name))
        };
        c.args(args).env("XDG_RUNTIME_DIR", self.dir.path());
        shown(c)
    }

    /// What a user on the README's key and paths would see.
    fn as_documented(&self, text: &str) -> String {
        let key = self.key.key;
        // The note's key is the default: a user gives no --key for it.
        text.replace(&format!(" -- --key {key}\n"), "\n")
            .replace(&format!(" -- --key {key},"), ",")
            .replace(&format!(" --key {key}"), "")
            .replace(&self.dir.path().display().to_string(), DOC_DIR)
            .replace(&key.to_string(), "0x4d2")
            .replace(&format!("key={}", key.get()), "key=1234")
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let left = self.key.take_leftovers();
        assert!(left.is_empty() || std::thread::panicking(), "a docs run left {left:?}");
    }
}

/// Runs `c` to its end, its stdout and stderr into one pipe.
fn shown(mut c: Command) -> String {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).expect("pipe2");
    let w2 = w.try_clone().expect("dup");
    let mut child = c.stdout(Stdio::from(w)).stderr(Stdio::from(w2)).stdin(Stdio::null()).spawn().expect("spawn");
    drop(c); // the command holds the write ends too: the read ends only once they are closed
    let mut out = String::new();
    std::io::Read::read_to_string(&mut std::fs::File::from(r), &mut out).expect("read output");
    child.wait().expect("wait");
    out
}

/// The output of a block's NAME, from real runs.
fn output(name: &str) -> String {
    let run = Run::new();
    let text = match name {
        // N1 and S2: lines of `layout`.
        "claims-n1" => pick(&run.shown("shm-ipc", "layout", &[]), |l| l.contains("the plain variable")),
        "claims-s2" => pick(&run.shown("shm-ipc", "layout", &[]), |l| {
            l.starts_with("  stack variable") || l.starts_with("  highest user mapping")
        }),
        "claims-f1" => {
            let w = run.shown("file-ipc", "writer", &[]);
            let r = run.shown("file-ipc", "reader", &[]);
            format!("$ cargo run -p file-ipc --bin writer; cargo run -p file-ipc --bin reader\n{w}{r}")
        }
        "claims-p1" => {
            let fifo = ["--fifo"];
            let mut r = Running::spawn(
                Command::new(bin("pipe-ipc", "reader")).args(fifo).env("XDG_RUNTIME_DIR", run.dir.path()),
            );
            let waiting = r.wait_for_stderr("waiting");
            let w = run.shown("pipe-ipc", "writer", &["--fifo", "hello"]);
            let done = r.finish();
            format!(
                "$ cargo run -p pipe-ipc --bin reader -- --fifo          # Terminal 1\n{waiting}\n\
                 $ cargo run -p pipe-ipc --bin writer -- --fifo hello    # Terminal 2\n{w}{}",
                done.stdout_str()
            )
        }
        "claims-m1" => {
            let mut t = "$ writer --type 3 three; writer --type 1 one; writer --type 2 two\n".to_string();
            for (ty, text) in [("3", "three"), ("1", "one"), ("2", "two")] {
                t.push_str(&run.shown("msgq-ipc", "writer", &["--type", ty, text]));
            }
            t.push_str("$ reader --type -2 --keep\n");
            t.push_str(&run.shown("msgq-ipc", "reader", &["--type", "-2", "--keep"]));
            run.shown("msgq-ipc", "reader", &["--clean"]);
            t
        }
        "claims-m3" => {
            let big = "x".repeat(8000);
            let t = run.shown("msgq-ipc", "writer", &["--repeat", "3", &big]);
            run.shown("msgq-ipc", "reader", &["--clean"]);
            pick(&t, |l| l.contains("Try again"))
        }
        "claims-m4" => {
            run.shown("msgq-ipc", "writer", &["a", "b"]);
            let t = run.shown("msgq-ipc", "reader", &["--show-count"]);
            run.shown("msgq-ipc", "reader", &["--clean"]);
            pick(&t, |l| l.contains("msgrcv took one message"))
        }
        "claims-g-code" => {
            let mut r = Running::spawn(&mut Command::new(bin("signal-ipc", "reader")));
            let line = r.wait_for_stderr("waiting for SIGINT");
            let pid = r.pid.to_string();
            assert!(Command::new(bin("signal-ipc", "writer")).arg(&pid).status().expect("writer").success());
            let done = r.finish();
            format!("{line}\n{}", done.stdout_str()).replace(&pid, "4242")
        }
        other => panic!("no run makes the output {other:?}"),
    };
    run.as_documented(&text)
}

fn pick(text: &str, keep: impl Fn(&str) -> bool) -> String {
    text.lines().filter(|l| keep(l)).map(|l| format!("{l}\n")).collect()
}

/// The calls the workspace's `--trace` shows: every `"name(` that a traced wrapper formats.
fn traced_calls() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for dir in ["common", "file-ipc", "pipe-ipc", "msgq-ipc", "shm-ipc", "signal-ipc"] {
        for file in tests::rust_files(&root().join(dir).join("src")) {
            let text = std::fs::read_to_string(&file).expect("read source");
            // `format!("msgrcv(...`, a wrapper's doc line `` `renameat(AT_FDCWD, ...` ``.
            let pieces =
                text.split("format!(\"").skip(1).chain(text.split("(\"").skip(1)).chain(text.split("/// `").skip(1));
            for piece in pieces {
                let name: String = piece.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                if !name.is_empty() && piece[name.len()..].starts_with('(') {
                    names.insert(name);
                }
            }
        }
    }
    names
}

/// The bench's output from a real (quick) run: its line kinds and its table header.
struct BenchShape {
    header: String,
    /// Where each right-aligned column of a row ends (after `cpus`), from the header.
    ends: Vec<usize>,
    kinds: BTreeSet<String>,
}

fn bench_shape() -> BenchShape {
    let out = Command::new(bin("bench", "bench"))
        .args(["--quick", "--only", "file,sysv-shm-spin", "--pin", "cross"])
        .output()
        .expect("run the bench");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let header = text.lines().find(|l| l.starts_with("mechanism ")).expect("a table header").trim_end().to_string();
    let mut ends = Vec::new();
    let cols = ["size", "min", "p50", "spread", "p99", "p99.9", "msgs/s", "MB/s", "x p50", "calls/msg"];
    // The header is ASCII: its byte offsets are a row's character offsets.
    let mut from = header.find("cpus").expect("cpus column");
    for c in cols {
        let at = header[from..].find(&format!(" {c}")).expect("a column") + from + 1 + c.len();
        ends.push(at);
        from = at;
    }
    let kinds = text.lines().filter(|l| !l.trim().is_empty()).map(kind).collect();
    BenchShape { header, ends, kinds }
}

/// A bench line's kind: its words up to the first figure (`limit: memcpy`, `machine:`).
fn kind(line: &str) -> String {
    line.split_whitespace()
        .take_while(|w| !w.starts_with(|c: char| c.is_ascii_digit()))
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn is_bench_row(line: &str) -> bool {
    let w: Vec<&str> = line.split_whitespace().collect();
    w.len() > 3 && ["same", "cross", "none"].contains(&w[1]) && w[0].chars().all(|c| c.is_ascii_lowercase() || c == '-')
}

/// A row has the header's columns: each right-aligned column ends where the header's does.
fn row_fits(row: &str, shape: &BenchShape) -> bool {
    let b: Vec<char> = row.chars().collect();
    shape.ends.iter().all(|&e| e <= b.len() && b[e - 1] != ' ' && b.get(e).is_none_or(|&c| c == ' '))
}

fn is_trace_line(line: &str) -> bool {
    line.starts_with('[') && line.split_once("] ").is_some_and(|(head, _)| head[1..].split(' ').count() == 2)
}

#[test]
fn every_output_block_is_made_by_a_run_or_checked_for_its_shape() {
    let update = std::env::var_os("UPDATE_DOCS").is_some();
    let calls = traced_calls();
    let mut bench: Option<BenchShape> = None;
    let mut stale = Vec::new();
    for (page, package) in PAGES {
        let path = root().join(page);
        let Ok(text) = std::fs::read_to_string(&path) else { continue };
        let mut new_text = text.clone();
        for b in blocks(&text) {
            let at = format!("{page}:{}", b.at);
            if b.info == "sh" || b.info == "mermaid" {
                continue; // commands (run by readme.rs), diagrams
            }
            match b.marker.as_deref() {
                Some(m) if m.starts_with("quoted: ") => continue,
                // A timeline chart: the committed one, which tests/tests/timeline.rs compares
                // with a fresh run's calls and hand-overs.
                Some(m) if m.starts_with("timeline: ") => {
                    let file = root().join(&m["timeline: ".len()..]);
                    let chart = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
                    if b.lines.join("\n").trim_end() != chart.trim_end() {
                        stale.push(format!("{at}: the chart is not {}", file.display()));
                    }
                    continue;
                }
                Some(m) if m.starts_with("output: ") => {
                    let name = &m["output: ".len()..];
                    let want = output(name);
                    let have = b.lines.join("\n");
                    if masked(&have) != masked(&want) {
                        if update {
                            new_text = new_text.replacen(&format!("{have}\n"), &want, 1);
                        } else {
                            stale.push(format!(
                                "{at}: the block of {name} is not what the run prints:\n{have}\n--- the run:\n{want}"
                            ));
                        }
                    }
                    continue;
                }
                _ => {}
            }
            let lines: Vec<&str> = b.lines.iter().map(String::as_str).filter(|l| !l.trim().is_empty()).collect();
            if lines.iter().any(|l| is_trace_line(l)) {
                // A --trace block: strace's syntax, a traced call, a binary of the page's package.
                for l in lines.iter().filter(|l| is_trace_line(l)) {
                    let (head, call) = l.split_once("] ").expect("a trace line");
                    let who = head[1..].split(' ').next().unwrap_or_default();
                    let parsed = tests::strace::parse(call);
                    let known = parsed.as_ref().is_some_and(|c| calls.contains(&c.name));
                    let ours = package.is_none_or(|p| bin_of(p, who));
                    if !known || !ours {
                        stale.push(format!("{at}: not a line --trace prints ({who} of {package:?}): {l}"));
                    }
                }
                continue;
            }
            if lines.iter().any(|l| is_bench_row(l)) {
                let shape = bench.get_or_insert_with(bench_shape);
                for l in &lines {
                    let fits = if is_bench_row(l) {
                        row_fits(l, shape)
                    } else if l.starts_with("mechanism ") {
                        l.trim_end() == shape.header
                    } else {
                        shape.kinds.contains(&kind(l))
                    };
                    if !fits {
                        stale.push(format!(
                            "{at}: not a line the bench prints now:\n{l}\nits header:\n{}",
                            shape.header
                        ));
                    }
                }
                continue;
            }
            stale.push(format!("{at}: an output block that no test makes or checks (mark it <!-- output: NAME --> or <!-- quoted: WHAT -->)"));
        }
        if update && new_text != text {
            std::fs::write(&path, new_text).expect("write back");
        }
    }
    assert!(
        stale.is_empty(),
        "{}\n(UPDATE_DOCS=1 cargo test -p tests --test docs rewrites the blocks made by a run)",
        stale.join("\n\n")
    );
}

/// Whether `who` is a binary of `package` (or the note's strace-style `pid` prefix).
fn bin_of(package: &str, who: &str) -> bool {
    let bins: &[&str] = match package {
        "pipe-ipc" => &["writer", "reader", "fork"],
        "shm-ipc" => &["writer", "reader", "layout"],
        "signal-ipc" => &["writer", "reader", "demo"],
        "bench" => &["bench"],
        _ => &["writer", "reader"],
    };
    bins.contains(&who)
}

/// The figures the top README's prose quotes come from its table, and the Korean README quotes
/// the same; docs/claims.md(.ko.md) quote no latency but point at the table.
#[test]
fn figures_in_prose_come_from_the_bench_table() {
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README.md");
    let row = |name: &str| -> Vec<String> {
        let line =
            readme.lines().find(|l| l.starts_with(&format!("| {name}"))).unwrap_or_else(|| panic!("no {name} row"));
        line.split('|').map(|c| c.trim().to_string()).filter(|c| !c.is_empty()).collect()
    };
    let micros = |cell: &str| -> f64 {
        let (v, unit) = cell.split_once(' ').expect("a figure and its unit");
        let v: f64 = v.replace(',', "").parse().expect("a figure");
        match unit {
            "ns" => v / 1000.0,
            _ => v,
        }
    };
    // File: p50 round trips of 64 B on one CPU and on two, to the nearest 10 µs.
    let file = row("file");
    let (one, two) = (micros(&file[1]), micros(&file[2]));
    let r10 = |v: f64| (v / 10.0).round() as i64 * 10;
    let (lo10, hi10) = (r10(one.min(two)), r10(one.max(two)));
    let file_range = if lo10 == hi10 { format!("{lo10} µs") } else { format!("{lo10}-{hi10} µs") };
    // Shared memory polled across CPUs: the three shm rows, 64 B on two CPUs, in ns.
    let shm: Vec<i64> = ["sysv-shm-inplace", "sysv-shm-spin", "posix-shm-futex"]
        .iter()
        .map(|n| (micros(&row(n)[2]) * 1000.0).round() as i64)
        .collect();
    let (lo, hi) = (shm.iter().min().expect("rows"), shm.iter().max().expect("rows"));
    let shm_range = if lo == hi { format!("{lo} ns") } else { format!("{lo}-{hi} ns") };
    for page in ["README.md", "README.ko.md"] {
        let text = std::fs::read_to_string(root().join(page)).unwrap_or_else(|e| panic!("{page}: {e}"));
        for quoted in [&file_range, &shm_range] {
            assert!(text.contains(quoted.as_str()), "{page} does not quote {quoted}, which the bench table gives");
        }
    }
    for page in ["docs/claims.md", "docs/claims.ko.md"] {
        let text = std::fs::read_to_string(root().join(page)).expect("claims");
        let mut in_block = false;
        for (n, line) in text.lines().enumerate() {
            if line.starts_with("```") {
                in_block = !in_block;
                continue;
            }
            if in_block {
                continue;
            }
            let words: Vec<&str> = line.split_whitespace().collect();
            for w in words.windows(2) {
                let figure = w[0].trim_start_matches(|c: char| !c.is_ascii_digit());
                let unit = w[1].trim_end_matches(|c: char| !c.is_alphabetic());
                let is_figure = !figure.is_empty() && figure.chars().all(|c| c.is_ascii_digit() || ".~-,".contains(c));
                assert!(
                    !(is_figure && ["µs", "us", "ns", "ms"].contains(&unit)),
                    "{page}:{}: a latency quoted in prose ({} {}): point at the README's bench table instead",
                    n + 1,
                    w[0],
                    w[1]
                );
            }
        }
        assert!(text.contains("README.md#results"), "{page} does not point at the README's bench table");
    }
}

/// The note's source is named where its readers look (issue 23.8).
#[test]
fn the_notes_source_is_named() {
    for page in ["README.md", "README.ko.md", "docs/claims.md"] {
        let text = std::fs::read_to_string(root().join(page)).unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(
            text.contains("https://github.com/youbeen2798/CS-study_for_interview"),
            "{page} does not name the note's source"
        );
    }
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README.md");
    assert!(readme.contains("(README.ko.md)"), "README.md does not link README.ko.md");
}

#[test]
fn masks_figures_ids_and_addresses() {
    assert_eq!(masked("pid 4242 at 0x55b8e76b3f10: 12.5 µs  "), "pid # at 0x#: # µs");
    let text = "x\n```\n[reader 1] close(3) = 0\n```\n<!-- output: a -->\n```text\nb\n```\n";
    let b = blocks(text);
    assert_eq!(b.len(), 2);
    assert_eq!((b[0].at, b[0].lines.len(), b[1].marker.as_deref()), (3, 1, Some("output: a")));
}
