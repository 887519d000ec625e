//! Named pipes (FIFOs): a path in the file system that unrelated processes open, one to write and
//! one to read (P1, M5). Data never touches the disk: the kernel keeps a pipe buffer.

use std::fs::File;
use std::path::{Path, PathBuf};

use common::stop::{OnStop, on_stop};
use common::{Error, Result, SysResult};
use nix::errno::Errno;
use nix::fcntl::AT_FDCWD;
use nix::fcntl::{OFlag, open};
use nix::sys::stat::{FchmodatFlags, Mode, SFlag, fchmodat, lstat};
use nix::unistd::mkfifo;

pub fn default_path() -> Result<PathBuf> {
    common::paths::default_path("pipe-ipc.fifo")
}

/// Makes the FIFO unless it exists (whichever side starts first makes it), with `mode` (0600
/// unless the user widens it). A path that exists but is no FIFO is refused: writing "messages"
/// into a regular file is not a pipe.
pub fn make(path: &Path, mode: u32) -> Result<()> {
    match mkfifo(path, Mode::S_IRUSR | Mode::S_IWUSR) {
        // Set exactly (mkfifo's mode is cut by the umask): the user asked for these bits.
        Ok(()) if mode != 0o600 => {
            fchmodat(AT_FDCWD, path, Mode::from_bits_truncate(mode), FchmodatFlags::NoFollowSymlink)
                .sys("chmod", path.display())
        }
        Ok(()) => Ok(()),
        Err(Errno::EEXIST) => {
            let st = lstat(path).sys("lstat", path.display())?;
            if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFIFO {
                Ok(())
            } else {
                Err(Error::sys("mkfifo", path.display(), Errno::EEXIST)
                    .hint("that path is not a FIFO; remove it or choose another --fifo=PATH"))
            }
        }
        Err(e) => Err(Error::sys("mkfifo", path.display(), e).hint("the directory must exist and be writable")),
    }
}

/// Removes the FIFO if the process is stopped while the guard lives.
pub fn remove_on_stop(path: &Path) -> OnStop {
    let path = path.to_path_buf();
    on_stop(move || {
        let _ = std::fs::remove_file(&path);
    })
}

/// Opens one end, blocking until the other end is opened too. Blocking on purpose: a
/// non-blocking read open succeeds at once and then reads end-of-file while no writer is there.
pub fn open_end(path: &Path, write: bool) -> Result<File> {
    let dir = if write { OFlag::O_WRONLY } else { OFlag::O_RDONLY };
    loop {
        // O_NOFOLLOW: `make` checked a FIFO, so a symlink now means somebody swapped it.
        match open(path, dir | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC, Mode::empty()) {
            Err(Errno::EINTR) => continue,
            other => return Ok(File::from(other.sys("open", path.display())?)),
        }
    }
}

/// `reader --fifo --clean`: removes a FIFO left by a process killed with SIGKILL.
pub fn clean(path: &Path) -> Result<String> {
    match lstat(path) {
        Err(Errno::ENOENT) => Ok(format!("no FIFO at {}: nothing to remove", path.display())),
        Err(e) => Err(Error::sys("lstat", path.display(), e)),
        Ok(st) if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFIFO => {
            Err(Error::Failed(format!("{} is not a FIFO: left alone", path.display())))
        }
        Ok(_) => {
            std::fs::remove_file(path).sys("unlink", path.display())?;
            Ok(format!("removed FIFO {}", path.display()))
        }
    }
}
