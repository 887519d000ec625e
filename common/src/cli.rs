//! Flags shared by every pair, defined once and `#[command(flatten)]`ed into each binary.

use std::borrow::Cow;
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;

use clap::Args;

use crate::{DEFAULT_KEY, Key};

/// `--version` prints `<package> <bin> <version>`, e.g. `file-ipc writer 0.1.0`: clap prints the
/// command's name and version, so the name carries the package.
#[macro_export]
macro_rules! command_name {
    () => {
        concat!(env!("CARGO_PKG_NAME"), " ", env!("CARGO_BIN_NAME"))
    };
}

/// `--trace`, on every binary: its IPC calls on stderr, in strace's syntax ([`crate::trace`]).
#[derive(Args, Debug, Clone)]
pub struct TraceArgs {
    /// Print each IPC call on stderr as it returns, as strace shows it, after `[<bin> <pid>]`
    #[arg(long)]
    pub trace: bool,

    /// With --trace: start each line with its CLOCK_MONOTONIC time (seconds), and end a call that can wait with how long it took, `<0.000123>`
    #[arg(long, requires = "trace")]
    pub trace_time: bool,
}

impl TraceArgs {
    /// Turns tracing on if `--trace` was given; `bin` starts each line. Also arms the crash tests'
    /// hook if its variable is set ([`crate::trace::arm_kill_hook`]).
    pub fn start(&self, bin: &'static str) {
        crate::trace::arm_kill_hook();
        if self.trace {
            crate::trace::start(bin);
            if self.trace_time {
                crate::trace::start_time();
            }
        }
    }
}

#[derive(Args, Debug, Clone)]
pub struct SendArgs {
    /// Send the whole message list N times
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub repeat: u64,

    /// Put a sequence number (0, 1, ...) and a space before each message, so a reader can show
    /// that none was lost, doubled or reordered
    #[arg(long)]
    pub numbered: bool,

    /// Messages to send (help: common::cli::default_message)
    #[arg(value_name = "MESSAGE")]
    pub messages: Vec<OsString>,
}

impl SendArgs {
    /// The messages in sending order: the list (or `default` if none was given), `repeat` times,
    /// numbered if asked.
    pub fn each<'a>(&'a self, default: &'a str) -> impl Iterator<Item = Cow<'a, [u8]>> + 'a {
        let list: Vec<&[u8]> = if self.messages.is_empty() {
            vec![default.as_bytes()]
        } else {
            self.messages.iter().map(|m| m.as_bytes()).collect()
        };
        let numbered = self.numbered;
        (0..self.repeat).flat_map(move |_| list.clone()).enumerate().map(move |(i, m)| {
            if numbered {
                let mut v = format!("{i} ").into_bytes();
                v.extend_from_slice(m);
                Cow::Owned(v)
            } else {
                Cow::Borrowed(m)
            }
        })
    }
}

/// For [`parse_adjusted`]: a writer's help shows its default message in full, from the crate's
/// constant (a derive's doc comment can hold only literals).
pub fn default_message(cmd: clap::Command, message: &str) -> clap::Command {
    with_help(
        cmd,
        "messages",
        format!("Messages to send, each as given (any bytes, not only UTF-8) [default: the note's {message:?}]"),
    )
}

/// The end of every binary's `--help` (`#[command(after_help = ...)]`): what its exit status says.
pub const EXIT_STATUSES: &str = "\
Exit status:
  0      done
  1      a system call failed (the line names it, the object, the errno text and a hint), or the peer broke the protocol
  2      bad usage: an unknown flag, a bad value, a message too long, a flag that needs another
  128+n  stopped by signal n: 129 SIGHUP, 130 SIGINT (Ctrl-C), 131 SIGQUIT, 143 SIGTERM; 141 SIGPIPE when stdout's reader has gone";

#[derive(Args, Debug, Clone)]
pub struct ReceiveArgs {
    /// Stop after N messages; what the writer sends beyond them waits for the next reader [default: 1]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
}

#[derive(Args, Debug, Clone, Copy)]
pub struct KeyArgs {
    /// SysV IPC key, decimal or 0x hex (0, IPC_PRIVATE, is refused)
    // A negative number is taken as the value, so it is refused as a key, not mistaken for a flag
    // (clap would suggest `-- -1`, which turns it into a message).
    #[arg(long, value_name = "KEY", default_value_t = DEFAULT_KEY, allow_negative_numbers = true)]
    pub key: Key,
}

impl KeyArgs {
    /// The arguments a peer needs to meet us, for a ready line: `--key K` unless it is the
    /// default, then `variant` (e.g. `--posix`) if any.
    pub fn peer_args(&self, variant: Option<&str>) -> String {
        let key = (self.key != DEFAULT_KEY).then(|| format!("--key {}", self.key));
        key.into_iter().chain(variant.map(str::to_string)).collect::<Vec<_>>().join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_the_whole_list_or_the_default() {
        let args = SendArgs { repeat: 2, numbered: false, messages: vec!["a".into(), "b".into()] };
        let got: Vec<Cow<[u8]>> = args.each("x").collect();
        assert_eq!(got, [&b"a"[..], b"b", b"a", b"b"]);
        let none = SendArgs { repeat: 1, numbered: false, messages: vec![] };
        assert_eq!(none.each("x").collect::<Vec<_>>(), [&b"x"[..]]);
        let numbered = SendArgs { repeat: 2, numbered: true, messages: vec![] };
        assert_eq!(numbered.each("x").collect::<Vec<_>>(), [&b"0 x"[..], b"1 x"]);
    }
}

/// Permission bits for objects a binary creates: 0600 unless the user widens them on purpose.
#[derive(Args, Debug, Clone, Copy)]
pub struct ModeArgs {
    /// Permissions (octal) for objects this process creates; the note's 0666 lets every local user read and overwrite them
    #[arg(long, value_name = "OCTAL", default_value = "600", value_parser = parse_mode)]
    pub mode: u32,
}

fn parse_mode(s: &str) -> Result<u32, String> {
    match u32::from_str_radix(s.trim_start_matches("0o"), 8) {
        Ok(m) if m <= 0o777 => Ok(m),
        _ => Err(format!("'{s}' is not a permission mode: give octal digits up to 777, e.g. 600 or 640")),
    }
}

/// `T::parse()` with the command adjusted first, e.g. to make a flattened flag need another one
/// in this binary only (`requires`), which a derive on the shared struct cannot say.
pub fn parse_adjusted<T: clap::Parser>(adjust: impl FnOnce(clap::Command) -> clap::Command) -> T {
    let matches = adjust(<T as clap::CommandFactory>::command()).get_matches();
    <T as clap::FromArgMatches>::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

/// For [`parse_adjusted`]: sets the help of argument `id`, if the command has it, to a text made at
/// runtime, e.g. one that names an object the way the library names it. A derive's doc comment
/// can hold only literals.
pub fn with_help(cmd: clap::Command, id: &str, help: String) -> clap::Command {
    if cmd.get_arguments().any(|a| a.get_id() == id) { cmd.mut_arg(id, |a| a.help(help)) } else { cmd }
}
