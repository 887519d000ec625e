//! Signals (note section 5, claims G1-G11): the kernel or a process tells another process that an
//! event happened. A signal carries its number and, queued with sigqueue, one integer; standard
//! signals of one kind merge while pending, real-time ones queue.

pub mod catch;
pub mod demo;
pub mod names;
pub mod show;
pub mod sys;

pub use names::{Sig, parse_signal};
