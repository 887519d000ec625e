//! The one stderr line of a process that blocks waiting for its peer: what it waits for, what the
//! object already holds, and the command that starts the peer when none is there. Shown once per
//! process, however often it then waits; tests wait for this line instead of sleeping.

/// Which binary this is, from Cargo (`common::program!()`), so no main writes its own name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Program {
    pub package: &'static str,
    pub bin: &'static str,
}

/// This binary's [`Program`]: its package and name as Cargo built it.
#[macro_export]
macro_rules! program {
    () => {
        $crate::Program { package: env!("CARGO_PKG_NAME"), bin: env!("CARGO_BIN_NAME") }
    };
}

/// The binary's name, as its diagnostics start: `reader: ...`.
impl std::fmt::Display for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.bin)
    }
}

impl Program {
    /// The other half of the pair: a writer's reader, a reader's writer.
    pub fn counterpart(self) -> &'static str {
        match self.bin {
            "writer" => "reader",
            "reader" => "writer",
            other => other,
        }
    }

    /// The waiting line of this program, which waits `what` (e.g. "on queue 0x4d2 for a message
    /// of type 1") for its counterpart; name the counterpart's arguments with [`Ready::peer_args`].
    pub fn waiting(self, what: impl Into<String>) -> Ready {
        let peer = Peer { package: self.package, bin: self.counterpart(), args: String::new() };
        Ready { bin: self.bin, what: what.into(), peer, look: Box::new(Seen::unknown), shown: false }
    }
}

impl Program {
    /// The one line of a writer that ends while `count` messages it sent wait `place` (e.g.
    /// "in queue 0x4d2", "at /run/user/0/file-ipc.msg"), so that delivered is told from left: where they wait, the command that
    /// reads them and the one that removes them (`--clean`). `args` are what the reader needs to
    /// meet the writer (`--key 0x40...`, `--posix`), `read_args` what only the reading command
    /// needs (a queue's `--type`). `reader_there`: Some(true) when a reader is
    /// known to be there (no line: the normal hand-over), Some(false) when none is, None where the
    /// mechanism cannot tell (the line then says "if no reader takes it").
    pub fn left_waiting(
        self,
        count: u64,
        place: &str,
        args: &str,
        read_args: &str,
        reader_there: Option<bool>,
    ) -> Option<String> {
        if count == 0 || reader_there == Some(true) {
            return None;
        }
        let (what, it) = if count == 1 {
            ("the message waits".to_string(), "it")
        } else {
            (format!("{count} messages wait"), "them")
        };
        let with = |extra: &str| [extra, args].iter().filter(|a| !a.is_empty()).copied().collect::<Vec<_>>().join(" ");
        let count_arg = if count > 1 { format!("--count {count}") } else { String::new() };
        let read_args = [count_arg.as_str(), read_args].iter().filter(|a| !a.is_empty()).copied().collect::<Vec<_>>();
        let reader = self.counterpart();
        let read = Peer { package: self.package, bin: reader, args: with(&read_args.join(" ")) }.command();
        let clean = Peer { package: self.package, bin: reader, args: with("--clean") }.command();
        Some(match reader_there {
            Some(_) => {
                format!("{self}: {what} {place} for a {reader}: read {it} with {read}, or remove {it} with {clean}")
            }
            None => format!(
                "{self}: {what} {place} until a {reader} takes {it}; if none runs, read {it} with {read}, or remove {it} with {clean}"
            ),
        })
    }
}

/// The peer a waiting process needs, as a command: `cargo run -p <package> --bin <bin> -- <args>`.
struct Peer {
    package: &'static str,
    bin: &'static str,
    /// What the peer must be given to meet us (`--key 0x40...`, `--posix`), or nothing.
    args: String,
}

impl Peer {
    fn command(&self) -> String {
        let args = if self.args.is_empty() { String::new() } else { format!(" -- {}", self.args) };
        format!("cargo run -p {} --bin {}{args}", self.package, self.bin)
    }
}

/// Whether the peer is there, as far as the mechanism can tell.
pub enum PeerState {
    /// Nobody is there: the line says how to start the peer.
    Absent,
    /// Somebody is there, in these words ("a writer is attached"): no "start the peer".
    Present(String),
    /// The mechanism cannot tell (a queue does not know who will send).
    Unknown,
}

/// What a process sees of its object at the moment it starts to wait.
pub struct Seen {
    /// What the object already holds that this wait does not take, e.g. "it holds 1 message of type 3".
    pub holds: Option<String>,
    pub peer: PeerState,
}

impl Seen {
    pub fn unknown() -> Seen {
        Seen { holds: None, peer: PeerState::Unknown }
    }
}

/// `<bin>: waiting <what>[; <holds>] (<peer>)`, where `<peer>` is `start the writer: <command>`
/// when none is there, `if no writer runs, start one: <command>` when the mechanism cannot tell,
/// or what the mechanism sees of the peer.
pub struct Ready {
    bin: &'static str,
    what: String,
    peer: Peer,
    look: Box<dyn FnMut() -> Seen>,
    shown: bool,
}

impl Ready {
    /// What the peer must be given to meet us (`--key 0x40...`, `--posix`); nothing by default.
    pub fn peer_args(mut self, args: impl Into<String>) -> Ready {
        self.peer.args = args.into();
        self
    }

    /// How to see, when the wait starts, what the object holds and whether the peer is there.
    pub fn looking(mut self, look: impl FnMut() -> Seen + 'static) -> Ready {
        self.look = Box::new(look);
        self
    }

    /// The line, as it would be shown now.
    pub fn line(&mut self) -> String {
        let seen = (self.look)();
        self.line_with(seen)
    }

    fn line_with(&self, seen: Seen) -> String {
        let holds = seen.holds.map(|h| format!("; {h}")).unwrap_or_default();
        let (peer, command) = (self.peer.bin, self.peer.command());
        let about_peer = match seen.peer {
            PeerState::Absent => format!("start the {peer}: {command}"),
            PeerState::Present(text) => text,
            PeerState::Unknown => format!("if no {peer} runs, start one: {command}"),
        };
        format!("{}: waiting {}{holds} ({about_peer})", self.bin, self.what)
    }

    /// Whether the line was shown already.
    pub fn shown(&self) -> bool {
        self.shown
    }

    /// Shows the line, the first time only.
    pub fn show(&mut self) {
        if !self.shown {
            let line = self.line();
            crate::diag!("{line}");
            self.shown = true;
        }
    }

    /// [`Ready::show`] with what the caller saw itself (where only the waiting code can look).
    pub fn show_seen(&mut self, seen: Seen) {
        if !self.shown {
            let line = self.line_with(seen);
            crate::diag!("{line}");
            self.shown = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const READER: Program = Program { package: "msgq-ipc", bin: "reader" };

    #[test]
    fn a_writer_that_leaves_messages_says_where_and_how_to_read_or_remove_them() {
        let writer = Program { package: "msgq-ipc", bin: "writer" };
        assert_eq!(writer.left_waiting(0, "in queue 0x4d2", "", "", None), None);
        assert_eq!(writer.left_waiting(1, "in queue 0x4d2", "", "", Some(true)), None);
        assert_eq!(
            writer.left_waiting(1, "in segment 0x40", "--key 0x40", "", Some(false)).as_deref(),
            Some(
                "writer: the message waits in segment 0x40 for a reader: read it with cargo run -p msgq-ipc --bin reader \
                 -- --key 0x40, or remove it with cargo run -p msgq-ipc --bin reader -- --clean --key 0x40"
            )
        );
        assert_eq!(
            writer.left_waiting(2, "in queue 0x4d2", "--posix", "", None).as_deref(),
            Some(
                "writer: 2 messages wait in queue 0x4d2 until a reader takes them; if none runs, read them with cargo \
                 run -p msgq-ipc --bin reader -- --count 2 --posix, or remove them with cargo run -p msgq-ipc --bin \
                 reader -- --clean --posix"
            )
        );
    }

    #[test]
    fn says_what_it_waits_for_what_is_there_and_how_to_start_the_peer() {
        let mut r = READER
            .waiting("on queue 0x40 for a message of type 1")
            .peer_args("--key 0x40")
            .looking(|| Seen { holds: Some("it holds 1 message of type 3".into()), peer: PeerState::Absent });
        assert_eq!(
            r.line(),
            "reader: waiting on queue 0x40 for a message of type 1; it holds 1 message of type 3 \
             (start the writer: cargo run -p msgq-ipc --bin writer -- --key 0x40)"
        );
        let mut r = READER
            .waiting("for a writer on FIFO /f")
            .peer_args("--key 0x40")
            .looking(|| Seen { holds: None, peer: PeerState::Present("a writer has it open".into()) });
        assert_eq!(r.line(), "reader: waiting for a writer on FIFO /f (a writer has it open)");
        let mut r = READER.waiting("on queue 0x40").peer_args("--key 0x40");
        assert_eq!(
            r.line(),
            "reader: waiting on queue 0x40 (if no writer runs, start one: cargo run -p msgq-ipc --bin writer -- --key 0x40)"
        );
    }
}
