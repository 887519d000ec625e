//! Signals (note section 5, claims G1-G11): the kernel or a process tells another process that an
//! event happened. A signal carries its number and, queued with sigqueue, one integer; standard
//! signals of one kind merge while pending, real-time ones queue.

pub mod catch;
pub mod demo;
pub mod names;
pub mod show;
pub mod sys;

pub use names::{Sig, parse_signal};

/// The end of the reader's `--help`: its awaited signal is a success, not a stop.
pub const READER_EXIT_STATUSES: &str = "\
Exit status:
  0      done: the awaited signal came (SIGINT; with --ignore, SIGTERM; with --signal, that one --count times)
  1      a system call failed (the line names it, the object, the errno text and a hint)
  2      bad usage: an unknown flag, a bad value, a flag that needs another
  128+n  ended by another signal n: 129 SIGHUP, 131 SIGQUIT, 143 SIGTERM (130 SIGINT while waiting for --signal)";
