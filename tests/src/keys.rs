//! Keys no other test process and no user object is likely to hold: 0x4 in the top nibble, then
//! this process's PID (below 2^22, Linux's pid_max limit) and a per-process counter.

use std::sync::atomic::{AtomicU32, Ordering};

pub fn unique_key() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    assert!(n < 256, "more than 256 keys in one test process");
    0x4000_0000 | (std::process::id() & 0x3f_ffff) << 8 | n
}
