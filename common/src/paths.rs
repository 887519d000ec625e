//! Default paths for the file and FIFO pairs: in a directory only this user can write, never a
//! fixed name in world-writable /tmp, where another user could plant a file or a symlink first.

use std::path::PathBuf;

use nix::errno::Errno;
use nix::sys::stat::{Mode, SFlag, lstat};
use nix::unistd::{geteuid, getuid, mkdir};

use crate::{Error, Result, SysResult};

/// `$XDG_RUNTIME_DIR` if it is ours and 0700 (as the spec says it must be; a stale or borrowed
/// value is passed over), or else `<tmp>/ipc-notes-<uid>`, made 0700 and checked to be ours: a
/// directory, not a symlink, owned by us, writable by nobody else.
pub fn user_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        if private(&dir) {
            return Ok(dir);
        }
    }
    let uid = getuid();
    let dir = std::env::temp_dir().join(format!("ipc-notes-{uid}"));
    match mkdir(&dir, Mode::S_IRWXU) {
        Ok(()) | Err(Errno::EEXIST) => {}
        Err(e) => return Err(Error::sys("mkdir", dir.display(), e)),
    }
    let st = lstat(&dir).sys("lstat", dir.display())?;
    let is_dir = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR;
    if !is_dir || st.st_uid != uid.as_raw() || st.st_mode & 0o077 != 0 {
        return Err(Error::Failed(format!(
            "{} is not a private directory of uid {uid} (owner {}, mode {:o}); remove it, set XDG_RUNTIME_DIR, or pass --path",
            dir.display(),
            st.st_uid,
            st.st_mode
        )));
    }
    Ok(dir)
}

/// A directory (not a symlink to one) of the effective user with mode exactly 0700.
fn private(dir: &std::path::Path) -> bool {
    lstat(dir).is_ok_and(|st| {
        SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR
            && st.st_uid == geteuid().as_raw()
            && st.st_mode & 0o777 == 0o700
    })
}

/// `name` inside [`user_dir`].
pub fn default_path(name: &str) -> Result<PathBuf> {
    Ok(user_dir()?.join(name))
}

/// The arguments that repeat a non-default path to the peer in a ready line, e.g. `--path /x`.
pub fn peer_args(flag: &str, path: Option<&std::path::Path>) -> String {
    path.map(|p| format!("{flag} {}", p.display())).unwrap_or_default()
}
