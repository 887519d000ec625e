//! The commands that the binaries' lines hint at (`start the writer: cargo run -p PKG --bin NAME
//! -- ARGS`, `read it with ...`, `remove it with ...`), taken out of a line and run through the
//! named binary's own argument parser (issue 23.4): a hint must name options that exist.

use std::process::Command;

use crate::bin;

/// One hinted command: `cargo run -p <package> --bin <bin> [-- <args>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hinted {
    pub package: String,
    pub bin: String,
    pub args: Vec<String>,
}

impl Hinted {
    /// The harness's binary with the hinted arguments, to run for real.
    pub fn command(&self) -> Command {
        let mut c = Command::new(bin(&self.package, &self.bin));
        c.args(&self.args);
        c
    }
}

/// Every `cargo run -p P --bin B [-- ARGS]` in `line`; its arguments end at the end of the line or
/// at the first word that ends a clause (`,` `;` `)` after it).
pub fn commands_in(line: &str) -> Vec<Hinted> {
    let mut found = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("cargo run -p ") {
        rest = &rest[at + "cargo run -p ".len()..];
        let mut words = rest.split(' ');
        let package = words.next().unwrap_or_default().to_string();
        assert_eq!(words.next(), Some("--bin"), "a hint without --bin: {line}");
        let mut bin = words.next().unwrap_or_default().to_string();
        let mut args = Vec::new();
        let mut ended = trim_clause(&mut bin);
        if !ended && words.clone().next() == Some("--") {
            words.next();
            for w in words {
                let mut w = w.to_string();
                ended = trim_clause(&mut w);
                if !w.is_empty() {
                    args.push(w);
                }
                if ended {
                    break;
                }
            }
        }
        found.push(Hinted { package, bin, args });
    }
    found
}

/// Cuts a clause's end (`,` `;` `)`) off a word; whether there was one.
fn trim_clause(word: &mut String) -> bool {
    let cut = word.trim_end_matches([',', ';', ')']).len();
    let ended = cut < word.len();
    word.truncate(cut);
    ended
}

/// Runs each hinted command of `line` with `--help` added at its end: clap parses every argument
/// before it reacts to `--help`, so an option that does not exist, or a value given to a flag that
/// takes none (`--fifo=PATH`), fails (exit 2) and a hint that parses prints the help (exit 0).
/// Returns how many commands the line held.
pub fn assert_parses(line: &str) -> usize {
    let hinted = commands_in(line);
    for h in &hinted {
        let out = h.command().arg("--help").output().expect("run a hinted command with --help");
        assert!(
            out.status.success(),
            "the hint `{h:?}` in\n{line}\ndoes not parse: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    hinted.len()
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn finds_the_commands_of_a_line() {
        let line = "writer: 2 messages wait in queue 0x40 until a reader takes them; if none runs, read them with cargo \
                    run -p msgq-ipc --bin reader -- --count 2 --key 0x40, or remove them with cargo run -p msgq-ipc --bin \
                    reader -- --clean --key 0x40";
        let found = commands_in(line);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].args, ["--count", "2", "--key", "0x40"]);
        assert_eq!(found[1].args, ["--clean", "--key", "0x40"]);
        let found = commands_in("reader: waiting on queue 0x40 (start the writer: cargo run -p msgq-ipc --bin writer)");
        assert_eq!(found, [Hinted { package: "msgq-ipc".into(), bin: "writer".into(), args: vec![] }]);
    }
}
