//! What every IPC pair of the workspace shares: the note's default keys and sizes, key parsing,
//! the CLI flags, the error type and exit statuses, stdout handling and stop-and-clean-up on
//! SIGINT, SIGTERM, SIGQUIT and SIGHUP.

pub mod cli;
pub mod error;
pub mod key;
mod memory;
pub mod out;
pub mod paths;
pub mod posix;
pub mod process;
pub mod stop;
pub mod sysv;

pub use error::{Error, Result, SysResult};
pub use key::Key;
pub use memory::Memory;

/// The key of the note's SysV examples: `(key_t)1234`.
pub const DEFAULT_KEY: Key = Key::new(1234);

/// Size of the note's shared-memory segment (the note's `SIZE`, left undefined there).
pub const SHM_SIZE: usize = 4096;

/// The note's pipe message, sent with its NUL: `MSGSIZE` is undefined in the note; 20 makes it print
/// `20 Hello Child Process`.
pub const PIPE_MESSAGE: &str = "Hello Child Process";
pub const PIPE_MSGSIZE: usize = PIPE_MESSAGE.len() + 1;

/// The one stderr line of a process that blocks waiting for its peer: what it waits on and the
/// command that starts the peer. Shown once per process, however often the process then waits;
/// tests wait for this line instead of sleeping.
pub struct Ready {
    line: String,
    shown: bool,
}

impl Ready {
    /// `<bin>: waiting <waits_on> (start the <peer>: cargo run -p <package> --bin <peer>[ -- <peer_args>])`
    pub fn new(bin: &str, waits_on: &str, package: &str, peer: &str, peer_args: &str) -> Self {
        let args = if peer_args.is_empty() { String::new() } else { format!(" -- {peer_args}") };
        let line = format!("{bin}: waiting {waits_on} (start the {peer}: cargo run -p {package} --bin {peer}{args})");
        Ready { line, shown: false }
    }

    pub fn show(&mut self) {
        if !self.shown {
            crate::diag!("{}", self.line);
            self.shown = true;
        }
    }
}
