//! A binary's `--trace` set beside strace's view of the same run: the program runs under strace
//! with `--trace` on, and its own lines are compared with the lines strace printed for the same
//! calls. Skipped, saying so, where strace is missing or may not trace (no ptrace).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// One call as a line shows it: `name(args) = result`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub name: String,
    /// The top-level arguments as printed, e.g. `["0x4d2", "IPC_CREAT|0600"]`.
    pub args: Vec<String>,
    /// `3`, `0x7f...`, or `-1 EEXIST (File exists)`.
    pub result: String,
    /// Ours only: a library call, not a system call (`/* library call */`).
    pub library: bool,
}

impl Call {
    /// `name(args) = result`, with strace's column padding taken out.
    pub fn text(&self) -> String {
        format!("{}({}) = {}", self.name, self.args.join(", "), self.result)
    }

    pub fn arg(&self, i: usize) -> &str {
        self.args.get(i).map_or("", String::as_str)
    }
}

/// Whether strace can trace here; when not, says why once and the tests that need it skip.
pub fn available() -> bool {
    static OK: OnceLock<bool> = OnceLock::new();
    *OK.get_or_init(|| match Command::new("strace").args(["-o", "/dev/null", "true"]).output() {
        Ok(o) if o.status.success() => true,
        Ok(o) => {
            eprintln!("skipped: strace cannot trace here: {}", String::from_utf8_lossy(&o.stderr).trim());
            false
        }
        Err(e) => {
            eprintln!("skipped: strace is not installed ({e})");
            false
        }
    })
}

/// [`available`], saying `skipped: strace not found` when there is no strace at all: for the tests
/// that kill or hold a process at a chosen call (`-e inject=`), which skip without it.
pub fn found_or_skip() -> bool {
    if Command::new("strace").arg("-V").output().is_err() {
        eprintln!("skipped: strace not found");
        return false;
    }
    available()
}

/// `cmd` run under strace, which traces `calls` (`-e trace=`) and applies `inject` (`-e inject=`)
/// to them; strace's own lines go nowhere.
pub fn injecting(cmd: &Command, calls: &str, inject: &str) -> Command {
    let mut c = Command::new("strace");
    c.args(["-qq", "-o", "/dev/null", "-e", &format!("trace={calls}"), "-e", &format!("inject={inject}"), "--"]);
    c.arg(cmd.get_program()).args(cmd.get_args());
    c
}

/// `cmd` run under strace, which writes the calls named in `calls` (strace's `-e trace=` list) to
/// a file; `follow` follows forked children (`-f`). Signals and exits are left out of the file.
pub struct Straced {
    pub command: Command,
    out: tempfile::NamedTempFile,
}

impl Straced {
    pub fn new(cmd: &Command, calls: &[&str], follow: bool) -> Straced {
        let out = tempfile::NamedTempFile::new().expect("strace output file");
        let mut c = Command::new("strace");
        c.args(["-qq", "-e", "signal=none", "-e"]).arg(format!("trace={}", calls.join(",")));
        if follow {
            c.arg("-f");
        }
        c.arg("-o").arg(out.path()).arg("--").arg(cmd.get_program()).args(cmd.get_args());
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
        }
        if let Some(dir) = cmd.get_current_dir() {
            c.current_dir(dir);
        }
        Straced { command: c, out }
    }

    /// What strace printed, once the program has ended.
    pub fn calls(&self) -> Vec<Call> {
        self.calls_by_pid().into_iter().map(|(_, c)| c).collect()
    }

    /// [`Straced::calls`] with the process that made each (0 when strace did not say: no `-f`).
    /// With `-f`, a call that another process's line interrupted is printed in two pieces,
    /// `write(4, "..." <unfinished ...>` and later `<... write resumed>) = 20`: they are joined
    /// again, in the place where the call returned.
    pub fn calls_by_pid(&self) -> Vec<(u32, Call)> {
        let text = std::fs::read_to_string(self.out.path()).expect("read strace output");
        let mut started: std::collections::HashMap<u32, String> = std::collections::HashMap::new();
        let mut calls = Vec::new();
        for l in text.lines() {
            let (pid, line) = split_pid(l);
            if let Some(head) = line.strip_suffix(" <unfinished ...>") {
                started.insert(pid, head.to_string());
                continue;
            }
            let joined;
            let line = match line.strip_prefix("<... ").and_then(|r| r.split_once(" resumed>")) {
                Some((_, tail)) => match started.remove(&pid) {
                    Some(head) => {
                        joined = format!("{head}{tail}");
                        &joined
                    }
                    None => continue,
                },
                None => line,
            };
            if let Some(c) = parse(line) {
                calls.push((pid, c));
            }
        }
        calls
    }

    pub fn path(&self) -> PathBuf {
        self.out.path().to_path_buf()
    }
}

/// The pid that starts a line of `strace -f`: `[pid  123] ` on a terminal, `123  ` in a file
/// written with `-o`; 0 when there is none.
fn split_pid(line: &str) -> (u32, &str) {
    if let Some(rest) = line.strip_prefix("[pid")
        && let Some((pid, l)) = rest.split_once(']')
    {
        return (pid.trim().parse().unwrap_or(0), l.trim_start());
    }
    let digits = line.len() - line.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    if digits > 0 && line[digits..].starts_with(' ') {
        return (line[..digits].parse().unwrap_or(0), line[digits..].trim_start());
    }
    (0, line)
}

/// The `--trace` lines of a program's stderr (`[<bin> <pid>] call(...) = result`).
pub fn ours(stderr: &[u8]) -> Vec<Call> {
    String::from_utf8_lossy(stderr)
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix('[')?;
            let (who, call) = rest.split_once("] ")?;
            who.rsplit_once(' ')?.1.parse::<u32>().ok()?;
            parse(call)
        })
        .collect()
}

/// [`ours`] with the pid each line carries, to set beside [`Straced::calls_by_pid`] when a
/// program forks.
pub fn ours_by_pid(stderr: &[u8]) -> Vec<(u32, Call)> {
    String::from_utf8_lossy(stderr)
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix('[')?;
            let (who, call) = rest.split_once("] ")?;
            let pid = who.rsplit_once(' ')?.1.parse::<u32>().ok()?;
            Some((pid, parse(call)?))
        })
        .collect()
}

/// Parses `name(args) = result`; None for anything else (strace's `<unfinished ...>` lines too).
pub fn parse(line: &str) -> Option<Call> {
    let open = line.find('(')?;
    let name = &line[..open];
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return None;
    }
    let close = open + matching_paren(&line[open..])?;
    let rest = line[close + 1..].trim_start().strip_prefix("= ")?;
    let (result, library) = match rest.strip_suffix(" /* library call */") {
        Some(r) => (r, true),
        None => (rest, false),
    };
    Some(Call { name: name.into(), args: split_args(&line[open + 1..close]), result: result.into(), library })
}

/// The characters of `s` outside quoted strings, each with the bracket depth after it: `(`, `{`
/// and `[` open, their mates close.
fn unquoted(s: &str) -> impl Iterator<Item = (usize, char, i32)> + '_ {
    let (mut depth, mut quoted, mut escaped) = (0, false, false);
    s.char_indices().filter_map(move |(i, c)| {
        if quoted {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => quoted = false,
                _ => {}
            }
            return None;
        }
        match c {
            '"' => quoted = true,
            '(' | '{' | '[' => depth += 1,
            ')' | '}' | ']' => depth -= 1,
            _ => {}
        }
        Some((i, c, depth))
    })
}

/// Offset of the `)` that closes the `(` at the start of `s`, past quotes and brackets.
fn matching_paren(s: &str) -> Option<usize> {
    unquoted(s).find(|&(_, c, depth)| c == ')' && depth == 0).map(|(i, _, _)| i)
}

/// Splits at the commas that are not inside quotes or brackets.
pub fn split_args(s: &str) -> Vec<String> {
    let mut args = Vec::new();
    let mut start = 0;
    for (i, _, _) in unquoted(s).filter(|&(_, c, depth)| c == ',' && depth == 0) {
        args.push(s[start..i].trim().to_string());
        start = i + 1;
    }
    if !s.trim().is_empty() {
        args.push(s[start..].trim().to_string());
    }
    args
}

/// Our lines of the calls `names` are strace's, exactly and in the same order (SysV calls: the
/// program prints what it passed and what came back, all of it). Two leeways. For a wait loop
/// (`common::trace::Try`): strace may repeat the last line shown of a call when that line is a
/// failure (a try that timed out) or an `IPC_STAT` (a look that found nothing new). And strace
/// shows a call that a signal cut short and the kernel restarted by itself (`= ? ERESTART...`,
/// no handler ran), which the program never saw return.
pub fn assert_exact(ours: &[Call], theirs: &[Call], names: &[&str]) {
    let pick =
        |calls: &[Call]| -> Vec<Call> { calls.iter().filter(|c| names.contains(&c.name.as_str())).cloned().collect() };
    let (o, t) = (pick(ours), pick(theirs));
    assert!(!o.is_empty(), "no traced call of {names:?}");
    let all = |calls: &[Call]| calls.iter().map(Call::text).collect::<Vec<_>>().join("\n");
    let mut mine = o.iter().peekable();
    let mut last_shown: std::collections::HashMap<&str, &Call> = std::collections::HashMap::new();
    for c in &t {
        if mine.peek() == Some(&c) {
            mine.next();
            last_shown.insert(&c.name, c);
            continue;
        }
        if c.result.starts_with("? ERESTART") {
            continue;
        }
        let repeat = last_shown.get(c.name.as_str()) == Some(&c);
        let loop_try = c.result.starts_with("-1 ") || c.arg(1) == "IPC_STAT";
        assert!(
            repeat && loop_try,
            "--trace and strace disagree on {names:?}: strace shows {}\n--trace:\n{}\nstrace:\n{}",
            c.text(),
            all(&o),
            all(&t)
        );
    }
    assert!(mine.peek().is_none(), "--trace shows more than strace\n--trace:\n{}\nstrace:\n{}", all(&o), all(&t));
}

/// Each of our system calls named `name` is, in order, one of strace's with the same `key` (the
/// arguments that matter and the result); strace may show more such calls (made by the standard
/// library or the loader), which `key` can leave out by returning None.
pub fn assert_in_order(ours: &[Call], theirs: &[Call], name: &str, key: impl Fn(&Call) -> Option<String>) {
    let mut rest = theirs.iter().filter(|c| c.name == name).filter_map(&key);
    let mine: Vec<String> = ours.iter().filter(|c| c.name == name && !c.library).filter_map(&key).collect();
    assert!(!mine.is_empty(), "no traced {name} call");
    for m in &mine {
        assert!(rest.any(|t| &t == m), "--trace shows {m}, which strace does not (in that order)");
    }
}

/// Writes what both saw next to each other, for a failing test's message.
pub fn side_by_side(ours: &[Call], theirs: &Path) -> String {
    let o: Vec<String> = ours.iter().map(Call::text).collect();
    format!("--trace:\n{}\nstrace:\n{}", o.join("\n"), std::fs::read_to_string(theirs).unwrap_or_default())
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn parses_strace_and_trace_lines() {
        let c = parse(r#"msgsnd(3, {mtype=1, mtext="a, (b\"c"}, 20, IPC_NOWAIT) = 0"#).unwrap();
        assert_eq!(c.args, ["3", r#"{mtype=1, mtext="a, (b\"c"}"#, "20", "IPC_NOWAIT"]);
        assert_eq!(c.result, "0");
        let c = parse("msgget(0x4d2, 000)                    = -1 ENOENT (No such file or directory)").unwrap();
        assert_eq!(c.text(), "msgget(0x4d2, 000) = -1 ENOENT (No such file or directory)");
        assert!(parse("msgrcv(3, <unfinished ...>").is_none());
        let o = ours(b"[reader 12] sem_wait(0x7f) = 0 /* library call */\nreader: waiting\n");
        assert!(o.len() == 1 && o[0].library);
        assert_eq!(split_pid("[pid  123] shmdt(0x1) = 0"), (123, "shmdt(0x1) = 0"));
        assert_eq!(
            split_pid("4567  close(3)                          = 0"),
            (4567, "close(3)                          = 0")
        );
        assert_eq!(split_pid("close(3) = 0"), (0, "close(3) = 0"));
    }
}
