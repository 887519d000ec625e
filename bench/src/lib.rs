//! Measures every mechanism of the note side by side, so its claims ("file IPC is slow", "shared
//! memory is fastest", "no buffer copying") become numbers: round-trip latency between two
//! processes, one-way throughput, and the hardware's limits (a cache-line round trip between two
//! CPUs, memcpy bandwidth) in the same run.

pub mod broken;
pub mod buf;
pub mod limits;
pub mod mechs;
pub mod msg;
pub mod report;
pub mod ring;
pub mod run;
pub mod semring;
pub mod stats;
pub mod sys;
pub mod vs_c;
pub mod watch;
