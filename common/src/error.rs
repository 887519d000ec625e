//! One error type for every binary: a failed system call names the call, the object and the errno
//! text, plus a hint; `main` turns it into `<bin>: <error>` on stderr and the exit status.

use std::fmt;
use std::process::ExitCode;

use nix::errno::Errno;

#[derive(Debug)]
pub enum Error {
    /// A system call failed: exit 1.
    Sys { call: &'static str, object: String, errno: Errno, hint: Option<String> },
    /// Something the user asked for cannot work (found after argument parsing): exit 2.
    Usage(String),
    /// The peer broke the protocol or the data is not what was expected: exit 1.
    Failed(String),
    /// Whoever reads our stdout has gone (`| head -1`): end quietly, as a Unix filter does.
    StdoutClosed,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn sys(call: &'static str, object: impl fmt::Display, errno: Errno) -> Self {
        Error::Sys { call, object: object.to_string(), errno, hint: None }
    }

    pub fn io(call: &'static str, object: impl fmt::Display, err: std::io::Error) -> Self {
        let errno = err.raw_os_error().map_or(Errno::EIO, Errno::from_raw);
        Self::sys(call, object, errno)
    }

    /// Adds a hint, unless one is already there.
    pub fn hint(mut self, text: impl Into<String>) -> Self {
        if let Error::Sys { hint: h @ None, .. } = &mut self {
            *h = Some(text.into());
        }
        self
    }

    pub fn errno(&self) -> Option<Errno> {
        match self {
            Error::Sys { errno, .. } => Some(*errno),
            _ => None,
        }
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) => 2,
            _ => 1,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Sys { call, object, errno, hint } => {
                write!(f, "{call}({object}): {}", errno.desc())?;
                match hint {
                    Some(h) => write!(f, "; {h}"),
                    None => Ok(()),
                }
            }
            Error::Usage(m) | Error::Failed(m) => f.write_str(m),
            Error::StdoutClosed => f.write_str("stdout closed"),
        }
    }
}

impl std::error::Error for Error {}

/// `.sys("msgget", key)?` on any nix call.
pub trait SysResult<T> {
    fn sys(self, call: &'static str, object: impl fmt::Display) -> Result<T>;
}

impl<T> SysResult<T> for nix::Result<T> {
    fn sys(self, call: &'static str, object: impl fmt::Display) -> Result<T> {
        self.map_err(|e| Error::sys(call, object, e))
    }
}

impl<T> SysResult<T> for std::io::Result<T> {
    fn sys(self, call: &'static str, object: impl fmt::Display) -> Result<T> {
        self.map_err(|e| Error::io(call, object, e))
    }
}

/// The body of every `main`: runs `body`, prints `<bin>: <error>` on stderr and maps the result to
/// the exit status (0 ok, 1 a call failed, 2 bad usage; clap's own usage errors exit 2 too).
pub fn main(bin: &str, body: impl FnOnce() -> Result<()>) -> ExitCode {
    main_with_status(bin, || body().map(|()| 0))
}

/// [`main`] for a body that decides its own exit status on success.
pub fn main_with_status(bin: &str, body: impl FnOnce() -> Result<u8>) -> ExitCode {
    match body() {
        Ok(status) => ExitCode::from(status),
        Err(Error::StdoutClosed) => crate::stop::die_by(nix::sys::signal::Signal::SIGPIPE),
        Err(e) => {
            crate::diag!("{bin}: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_call_object_errno_and_hint() {
        let e = Error::sys("msgget", "key 0x4d2", Errno::ENOENT).hint("start the writer first");
        assert_eq!(e.to_string(), "msgget(key 0x4d2): No such file or directory; start the writer first");
        assert_eq!(e.exit_code(), 1);
        assert_eq!(Error::Usage("x".into()).exit_code(), 2);
    }
}
