//! This run's own key or directory, and what the pair left of it at the end: a run never meets a
//! user's objects and leaves none of its own.

use std::path::{Path, PathBuf};

use common::{Key, Result, SysResult};
use nix::errno::Errno;
use nix::mqueue::{MQ_OFlag, mq_close, mq_open};
use nix::sys::stat::Mode;

use crate::scenario::{Kind, Place};

/// A key under which no queue, segment, semaphore set or POSIX object exists now. Keys of
/// 0x71xxxxxx, from the PID and the clock: two runs at once get two keys.
pub fn free_key() -> Key {
    let pid = std::process::id();
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let mut k = (pid.wrapping_mul(2_654_435_761) ^ nanos) & 0x00ff_ffff;
    loop {
        let key = Key::new(0x7100_0000 | k);
        if !taken(key) {
            return key;
        }
        k = (k + 1) & 0x00ff_ffff;
    }
}

/// Whether anything of `key` exists, of any pair.
fn taken(key: Key) -> bool {
    !left(key, Kind::Msgq).is_empty()
        || !left(key, Kind::MsgqPosix).is_empty()
        || !left(key, Kind::Shm).is_empty()
        || !left(key, Kind::ShmPosix).is_empty()
}

/// What of `key` a pair of `kind` made exists now, by name: `queue 0x71..`.
pub fn left(key: Key, kind: Kind) -> Vec<String> {
    let exists = |r: nix::Result<i32>| !matches!(r, Err(Errno::ENOENT));
    let mut found = Vec::new();
    match kind {
        // SAFETY: msgget takes plain integers; flag 0 only looks.
        Kind::Msgq | Kind::Request if exists(Errno::result(unsafe { libc::msgget(key.raw(), 0) })) => {
            found.push(format!("queue {key}"));
        }
        Kind::Shm => {
            // SAFETY: shmget and semget take plain integers; flag 0 only looks.
            if exists(Errno::result(unsafe { libc::shmget(key.raw(), 0, 0) })) {
                found.push(format!("segment {key}"));
            }
            // SAFETY: as above.
            if exists(Errno::result(unsafe { libc::semget(key.raw(), 0, 0) })) {
                found.push(format!("semaphore set {key}"));
            }
        }
        Kind::MsgqPosix => {
            let name = format!("/msgq-ipc-{key}");
            match mq_open(name.as_str(), MQ_OFlag::O_RDONLY, Mode::empty(), None) {
                Ok(q) => {
                    let _ = mq_close(q);
                    found.push(format!("POSIX queue {name}"));
                }
                Err(Errno::ENOENT) => {}
                Err(_) => found.push(format!("POSIX queue {name}")),
            }
        }
        Kind::ShmPosix => {
            let path = format!("/dev/shm/shm-ipc-{key}");
            if Path::new(&path).symlink_metadata().is_ok() {
                found.push(path);
            }
        }
        _ => {}
    }
    found
}

/// A new directory for this run's FIFO or message file, 0700, in the user's runtime directory.
pub fn run_dir() -> Result<PathBuf> {
    let base = common::paths::user_dir()?;
    for n in 0.. {
        let dir = base.join(format!("timeline-{}-{n}", std::process::id()));
        match nix::unistd::mkdir(&dir, Mode::S_IRWXU) {
            Ok(()) => return Ok(dir),
            Err(Errno::EEXIST) => continue,
            Err(e) => {
                return Err(common::Error::sys("mkdir", dir.display(), e).hint("is the runtime directory writable?"));
            }
        }
    }
    unreachable!("an unbounded range ends only by returning")
}

/// Removes what the pair left in `place` (its reader's `--clean` for a key; the run's directory),
/// and says what there was.
pub fn clean_up(
    kind: Kind,
    place: &Place,
    dir: &Path,
    reader: &Path,
    clean_args: &[std::ffi::OsString],
) -> Result<Vec<String>> {
    let mut found = Vec::new();
    if let Place::Key(key) = place {
        found = left(*key, kind);
        if !found.is_empty() {
            let out = std::process::Command::new(reader)
                .arg("--clean")
                .args(clean_args)
                .output()
                .sys("fork/exec", reader.display())?;
            let still = left(*key, kind);
            if !out.status.success() || !still.is_empty() {
                return Err(common::Error::Failed(format!(
                    "could not remove {} with `reader --clean`: {}",
                    still.join(", "),
                    String::from_utf8_lossy(&out.stderr).trim()
                )));
            }
        }
    }
    if dir.exists() {
        for e in std::fs::read_dir(dir).sys("opendir", dir.display())?.flatten() {
            found.push(e.path().display().to_string());
        }
        std::fs::remove_dir_all(dir).sys("rmdir", dir.display())?;
    }
    Ok(found)
}
