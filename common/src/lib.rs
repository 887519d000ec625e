//! What every IPC pair of the workspace shares: the note's default keys and sizes, key parsing,
//! the CLI flags, the error type and exit statuses, stdout handling and stop-and-clean-up on
//! SIGINT, SIGTERM, SIGQUIT and SIGHUP.

pub mod cli;
pub mod error;
pub mod gate;
pub mod key;
mod memory;
pub mod out;
pub mod paths;
pub mod posix;
pub mod process;
mod ready;
pub mod stop;
pub mod sysv;

pub use error::{Error, Result, SysResult};
pub use key::Key;
pub use memory::{Access, Memory, MemoryMut, ReadOnly, ReadWrite, Words};
pub use ready::{Peer, PeerState, Ready, Seen};

/// The key of the note's SysV examples: `(key_t)1234`.
pub const DEFAULT_KEY: Key = Key::new(1234);

/// The note's pipe message, sent with its NUL: `MSGSIZE` is undefined in the note; 20 makes it print
/// `20 Hello Child Process`.
pub const PIPE_MESSAGE: &str = "Hello Child Process";
pub const PIPE_MSGSIZE: usize = PIPE_MESSAGE.len() + 1;
