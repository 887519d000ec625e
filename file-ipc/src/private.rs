//! A private directory beside the agreed path, `.NAME.PID.N.d` (N counts the ones this process
//! named), where a writer, or a reader putting a message back, writes a message file before
//! renaming it onto the path. Not the watched directory itself: the reader watches it for
//! IN_CLOSE_WRITE (a plain `echo hi > path` is complete once closed), and a temp file closed
//! there would wake it once per message for nothing.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use common::{Result, SysResult};
use nix::sys::stat::{FileStat, SFlag, lstat};

use crate::{Locked, Spot, alive, lock, my_uid, sys};

/// The directory and the one file it ever holds.
#[derive(Clone)]
pub(crate) struct Private {
    pub dir: PathBuf,
    pub tmp: PathBuf,
}

/// How many private directories this process has named: each its own, so that a writer and a
/// reader (or two writers) of one process never share one.
static NAMED: AtomicU32 = AtomicU32::new(0);
/// The ones this process has made and not removed: not a dead process's leftovers.
static LIVE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

impl Private {
    /// A new private directory's name (nothing is made yet).
    pub fn new(spot: &Spot) -> Private {
        let n = NAMED.fetch_add(1, Ordering::Relaxed);
        let dir = spot.dir.join(format!(".{}.{}.{n}.d", spot.name.display(), std::process::id()));
        Private { tmp: dir.join("tmp"), dir }
    }

    /// Makes the directory, 0700.
    pub fn make(&self) -> Result<()> {
        sys::mkdir(&self.dir)
            .sys("mkdir", self.dir.display())
            .map_err(|e| e.hint("`reader --clean` removes a leftover"))?;
        lock(&LIVE).push(self.dir.clone());
        Ok(())
    }

    /// Removes the file, if any, and the directory: nothing of it is left (a stop's cleanup).
    pub fn remove(&self) {
        remove(&self.dir);
        self.forget();
    }

    /// Removes the directory, empty once each message in it was renamed away or removed (the
    /// end of a run).
    pub fn remove_empty(&self) {
        let _ = sys::rmdir(&self.dir);
        self.forget();
    }

    fn forget(&self) {
        lock(&LIVE).retain(|d| d != &self.dir);
    }
}

fn remove(dir: &Path) {
    let _ = sys::unlink(&dir.join("tmp"));
    let _ = sys::rmdir(dir);
}

/// The private directories beside `spot`'s path that are ours (a directory of our user, named
/// `.NAME.PID.N.d`), with the PID each is named after.
fn all(spot: &Spot) -> Result<Vec<(PathBuf, i32)>> {
    let prefix = format!(".{}.", spot.name.display());
    let found = std::fs::read_dir(&spot.dir).sys("opendir", spot.dir.display())?;
    Ok(found
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let (pid, n) = name.strip_prefix(&prefix)?.strip_suffix(".d")?.split_once('.')?;
            n.parse::<u32>().ok()?;
            let pid = pid.parse().ok()?;
            ours(&lstat(&e.path()).ok()?).then(|| (e.path(), pid))
        })
        .collect())
}

fn ours(st: &FileStat) -> bool {
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR && st.st_uid == my_uid()
}

/// At the start of a writer or a reader (never per message), the directory locked: removes what
/// killed processes left (a message being written or put back, never delivered). One named after
/// our own PID and not made by us was left by a dead process that had our PID.
pub(crate) fn remove_dead(spot: &Spot, _locked: &Locked<'_>) {
    let me = std::process::id() as i32;
    for (dir, pid) in all(spot).unwrap_or_default() {
        let dead = if pid == me { !lock(&LIVE).contains(&dir) } else { !alive(pid) };
        if dead {
            remove(&dir);
        }
    }
}

/// `reader --clean`: removes every private directory beside the path, live or not. Returns what
/// it removed.
pub(crate) fn remove_all(spot: &Spot) -> Result<Vec<String>> {
    let mut removed = Vec::new();
    for (dir, _) in all(spot)? {
        let tmp = dir.join("tmp");
        if lstat(&tmp).is_ok() {
            sys::unlink(&tmp).sys("unlink", tmp.display())?;
        }
        sys::rmdir(&dir).sys("rmdir", dir.display())?;
        removed.push(dir.display().to_string());
    }
    Ok(removed)
}
