//! What every IPC pair of the workspace shares: the note's default SysV key, key parsing,
//! the CLI flags, the error type and exit statuses, stdout handling and stop-and-clean-up on
//! SIGINT, SIGTERM, SIGQUIT and SIGHUP.

pub mod cleanup;
pub mod cli;
pub mod error;
pub mod fd;
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
pub mod trace;

pub use error::{Error, Result, SysResult};
pub use key::Key;
pub use memory::{Access, Memory, MemoryMut, ReadOnly, ReadWrite, Words};
pub use ready::{PeerState, Program, Ready, Seen};

/// The key of the note's SysV examples: `(key_t)1234`.
pub const DEFAULT_KEY: Key = Key::new(1234);
