//! Keys of the tests' own: no other test process and no user object is likely to hold them, and
//! each is checked, when the test ends, for anything left behind under it.

use std::sync::atomic::{AtomicU32, Ordering};

use common::Key;
use common::sysv;
use nix::errno::Errno;

/// A fresh key: 0x4 in the top nibble, this process's PID (below 2^22, Linux's pid_max limit)
/// and a per-process counter.
pub fn unique_key() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    assert!(n < 256, "more than 256 keys in one test process");
    0x4000_0000 | (std::process::id() & 0x3f_ffff) << 8 | n
}

/// A unique key whose SysV and POSIX objects must all be gone when the test ends: the guard
/// removes any that are left and fails the test naming them (libtest has no after-all hook, so
/// each test guards its own key, and other users' objects can never fail it).
pub struct TestKey {
    pub key: Key,
}

impl TestKey {
    pub fn new() -> Self {
        TestKey { key: Key::new(unique_key()) }
    }

    /// The key as the binaries take it, e.g. `0x40123400`.
    pub fn arg(&self) -> String {
        self.key.to_string()
    }

    /// What exists under the key now, removing it: "queue", "segment", "semaphores" and the
    /// POSIX names of the workspace's conventions.
    pub fn take_leftovers(&self) -> Vec<String> {
        let key = self.key;
        let mut left = Vec::new();
        if let Ok(id) = sysv::msgget(key, 0) {
            let _ = sysv::msg_remove(id);
            left.push(format!("SysV queue {key}"));
        }
        if let Ok(id) = sysv::shmget(key, 0, 0) {
            let _ = sysv::shm_remove(id);
            left.push(format!("SysV segment {key}"));
        }
        if let Ok(id) = sysv::semget(key, 0, 0) {
            let _ = sysv::sem_remove(id);
            left.push(format!("SysV semaphores {key}"));
        }
        let mq = msgq_ipc::posix_queue_name(key);
        if nix::mqueue::mq_unlink(mq.as_str()) != Err(Errno::ENOENT) {
            left.push(format!("POSIX queue {mq}"));
        }
        let shm = shm_ipc::shm_name(key);
        if nix::sys::mman::shm_unlink(shm.as_str()) != Err(Errno::ENOENT) {
            left.push(format!("POSIX shared memory {shm}"));
        }
        for sem in shm_ipc::sem_names(key) {
            if common::posix::sem_unlink(&sem) != Err(Errno::ENOENT) {
                left.push(format!("POSIX semaphore {sem}"));
            }
        }
        left
    }

    /// Fails now if anything is left under the key.
    pub fn assert_clean(&self) {
        let left = self.take_leftovers();
        assert!(left.is_empty(), "left behind: {left:?}");
    }
}

impl Default for TestKey {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TestKey {
    fn drop(&mut self) {
        let left = self.take_leftovers();
        if !left.is_empty() && !std::thread::panicking() {
            panic!("the test left behind (now removed): {left:?}");
        }
    }
}
