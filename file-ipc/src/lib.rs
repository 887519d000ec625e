//! File IPC (note section 1, claims F1-F2): each message is one whole file. The writer writes a
//! private temp file and renames it onto the agreed path, so a reader never sees half a message
//! (the note's hidden trap); the reader is told by inotify, because nothing else tells it that a
//! file arrived (the real cost of file IPC, more than the disk the note blames: the page cache
//! usually means no disk I/O at all).

use std::ffi::OsStr;
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use common::stop::{OnStop, on_stop};
use common::{Error, Result, SysResult};
use nix::errno::Errno;
use nix::fcntl::{AT_FDCWD, OFlag, RenameFlags, open, renameat2};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use nix::sys::stat::{Mode, fchmod};

/// The writer's message when none is given (the note has no example).
pub const DEFAULT_MESSAGE: &str = "Hello File IPC";

/// Where writer and reader meet unless `--path` says otherwise: in the per-user directory.
pub fn default_path() -> Result<PathBuf> {
    common::paths::default_path("file-ipc.msg")
}

/// The agreed path, split for inotify (which watches the directory) and for the private names
/// that sit beside it (a rename only works within one file system).
struct Spot {
    path: PathBuf,
    dir: PathBuf,
    name: PathBuf,
}

impl Spot {
    fn new(path: &Path) -> Result<Self> {
        let name = path.file_name().ok_or_else(|| Error::Usage(format!("{} does not name a file", path.display())))?;
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        Ok(Spot { path: path.to_path_buf(), dir, name: name.into() })
    }

    /// A private name beside the agreed one: dot-prefixed and with our PID, so it never matches.
    fn private(&self, what: &str) -> PathBuf {
        let mut n = b".".to_vec();
        n.extend_from_slice(self.name.as_os_str().as_bytes());
        n.extend_from_slice(format!(".{}.{what}", std::process::id()).as_bytes());
        self.dir.join(OsStr::from_bytes(&n))
    }

    /// Watches the directory for `mask` events. Made before the first look at the path, so an
    /// event between the look and the wait is not lost.
    fn watch(&self, mask: AddWatchFlags) -> Result<Watch> {
        let fd = Inotify::init(InitFlags::IN_CLOEXEC).sys("inotify_init1", "IN_CLOEXEC")?;
        fd.add_watch(&self.dir, mask)
            .sys("inotify_add_watch", self.dir.display())
            .map_err(|e| e.hint("the directory must exist"))?;
        Ok(Watch { fd, name: self.name.clone() })
    }
}

struct Watch {
    fd: Inotify,
    name: PathBuf,
}

impl Watch {
    /// Blocks until an event names our file, or the event queue overflowed (events were lost:
    /// the caller looks again either way).
    fn wait(&self) -> Result<()> {
        loop {
            let events = match self.fd.read_events() {
                Err(Errno::EINTR) => continue,
                other => other.sys("read", "inotify")?,
            };
            let ours = |e: &nix::sys::inotify::InotifyEvent| {
                e.mask.contains(AddWatchFlags::IN_Q_OVERFLOW) || e.name.as_deref() == Some(self.name.as_os_str())
            };
            if events.iter().any(ours) {
                return Ok(());
            }
        }
    }
}

/// Removes `path` if the process is stopped before the guard is dropped.
fn unlink_on_stop(path: &Path) -> OnStop {
    let path = path.to_path_buf();
    on_stop(move || {
        let _ = std::fs::remove_file(&path);
    })
}

pub struct Writer {
    spot: Spot,
    tmp: PathBuf,
    gone: Watch,
    mode: u32,
}

impl Writer {
    /// A writer of message files with permissions `mode` (0600 unless the user widens it).
    pub fn new(path: &Path, mode: u32) -> Result<Self> {
        let spot = Spot::new(path)?;
        let gone = spot.watch(AddWatchFlags::IN_DELETE | AddWatchFlags::IN_MOVED_FROM)?;
        Ok(Writer { tmp: spot.private("tmp"), spot, gone, mode })
    }

    /// Delivers one message as one file. If an unread message is still there, calls `on_wait`
    /// and waits until it is gone: nothing is ever overwritten.
    pub fn send(&mut self, msg: &[u8], on_wait: &mut dyn FnMut()) -> Result<()> {
        let cleanup = unlink_on_stop(&self.tmp);
        self.write_tmp(msg).inspect_err(|_| {
            let _ = std::fs::remove_file(&self.tmp);
        })?;
        loop {
            // RENAME_NOREPLACE: checking "is it there?" then renaming would let two writers both
            // see it free and the second would overwrite the first's message.
            match renameat2(AT_FDCWD, &self.tmp, AT_FDCWD, &self.spot.path, RenameFlags::RENAME_NOREPLACE) {
                Ok(()) => break,
                Err(Errno::EEXIST) => {
                    on_wait();
                    self.gone.wait()?;
                }
                Err(e) => {
                    let _ = std::fs::remove_file(&self.tmp);
                    return Err(Error::sys("renameat2", self.spot.path.display(), e));
                }
            }
        }
        drop(cleanup); // handed over: the file is the reader's now
        Ok(())
    }

    fn write_tmp(&self, msg: &[u8]) -> Result<()> {
        // O_EXCL never follows a symlink planted at the name; 0600: only we may read it.
        let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_CLOEXEC;
        let fd = open(&self.tmp, flags, Mode::S_IRUSR | Mode::S_IWUSR).sys("open", self.tmp.display())?;
        if self.mode != 0o600 {
            // Set exactly (open's mode is cut by the umask): the user asked for these bits.
            fchmod(&fd, Mode::from_bits_truncate(self.mode)).sys("fchmod", self.tmp.display())?;
        }
        File::from(fd).write_all(msg).sys("write", self.tmp.display())
    }
}

pub struct Reader {
    spot: Spot,
    claimed: PathBuf,
    arrived: Watch,
}

impl Reader {
    pub fn new(path: &Path) -> Result<Self> {
        let spot = Spot::new(path)?;
        // IN_MOVED_TO: our writer renames onto the path (that is no IN_CREATE). IN_CLOSE_WRITE: a
        // plain `echo hi > path` is complete once closed.
        let arrived = spot.watch(AddWatchFlags::IN_MOVED_TO | AddWatchFlags::IN_CLOSE_WRITE)?;
        Ok(Reader { claimed: spot.private("claimed"), spot, arrived })
    }

    /// Waits for a message (calling `on_wait` once if there is none yet), claims it by renaming it
    /// to a private name, so two readers never both get it, then reads and removes it.
    pub fn recv(&mut self, on_wait: &mut dyn FnMut()) -> Result<Vec<u8>> {
        let cleanup = unlink_on_stop(&self.claimed);
        loop {
            match std::fs::rename(&self.spot.path, &self.claimed) {
                Ok(()) => break,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    on_wait();
                    self.arrived.wait()?;
                }
                Err(e) => return Err(Error::io("rename", self.spot.path.display(), e)),
            }
        }
        let msg = self.read_claimed();
        let removed = std::fs::remove_file(&self.claimed).sys("unlink", self.claimed.display());
        drop(cleanup);
        let msg = msg?;
        removed?;
        Ok(msg)
    }

    fn read_claimed(&self) -> Result<Vec<u8>> {
        // O_NOFOLLOW: a symlink planted at the agreed path is refused, not followed.
        let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = open(&self.claimed, flags, Mode::empty())
            .sys("open", self.spot.path.display())
            .map_err(|e| e.hint("a message must be a regular file, not a symlink"))?;
        let mut msg = Vec::new();
        File::from(fd).read_to_end(&mut msg).sys("read", self.spot.path.display())?;
        Ok(msg)
    }
}

/// `reader --clean`: removes an unread message at `path` and the private files that a writer or
/// reader killed with SIGKILL left beside it (`.NAME.PID.tmp`, `.NAME.PID.claimed`).
pub fn clean(path: &Path) -> Result<String> {
    let spot = Spot::new(path)?;
    let mut removed = Vec::new();
    if std::fs::symlink_metadata(path).is_ok() {
        std::fs::remove_file(path).sys("unlink", path.display())?;
        removed.push(path.display().to_string());
    }
    let prefix = format!(".{}.", spot.name.display());
    for entry in std::fs::read_dir(&spot.dir).sys("opendir", spot.dir.display())?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(&prefix) && (name.ends_with(".tmp") || name.ends_with(".claimed")) {
            std::fs::remove_file(entry.path()).sys("unlink", entry.path().display())?;
            removed.push(entry.path().display().to_string());
        }
    }
    Ok(if removed.is_empty() {
        format!("nothing to remove at {}", path.display())
    } else {
        format!("removed {}", removed.join(", "))
    })
}

/// F2: this process's reads, from /proc/self/io: `rchar` counts the bytes read() returned,
/// `read_bytes` the bytes fetched from the storage device. A message file just written by another
/// process is in the page cache, so `read_bytes` stays 0: file IPC's cost is not the disk.
pub fn io_report() -> Result<String> {
    let io = std::fs::read_to_string("/proc/self/io").sys("read", "/proc/self/io")?;
    let field = |name: &str| {
        io.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(':')?.trim().parse::<u64>().ok()).unwrap_or(0)
    };
    let (rchar, read_bytes) = (field("rchar"), field("read_bytes"));
    let verdict = if read_bytes == 0 {
        "every byte came from the page cache: the disk was not touched"
    } else {
        "some bytes came from the storage device (a cold cache)"
    };
    Ok(format!(
        "read() returned {rchar} bytes in all (rchar), {read_bytes} of them fetched from storage (read_bytes): {verdict}"
    ))
}
