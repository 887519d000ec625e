//! File IPC (note section 1, claims F1-F2): each message is one whole file. The writer writes a
//! private temp file and renames it onto the agreed path, so a reader never sees half a message
//! (the note's hidden trap); the reader is told by inotify, because nothing else tells it that a
//! file arrived (the real cost of file IPC, more than the disk the note blames: the page cache
//! usually means no disk I/O at all).

/// One line on stderr, never a panic: a stop may run when stderr is a closed pipe, and a panic
/// in the stop thread would keep the process from dying.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

pub mod print;
mod reader;
pub mod sys;
mod writer;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};

use common::{Error, Result, SysResult};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::inotify::{AddWatchFlags, InitFlags};
use nix::sys::signal::kill;
use nix::sys::stat::{FileStat, Mode, SFlag, fstat, lstat};
use nix::sys::statfs::{
    BTRFS_SUPER_MAGIC, EXT4_SUPER_MAGIC, FsType, OVERLAYFS_SUPER_MAGIC, TMPFS_MAGIC, XFS_SUPER_MAGIC, fstatfs,
};
use nix::unistd::{Pid, geteuid};
use sys::Fd;

pub use print::{Undelivered, print_line};
pub use reader::Reader;
pub use writer::Writer;

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
        let fd = sys::inotify_init1(InitFlags::IN_CLOEXEC).sys("inotify_init1", "IN_CLOEXEC")?;
        sys::inotify_add_watch(&fd, &self.dir, mask | AddWatchFlags::IN_DELETE_SELF | AddWatchFlags::IN_MOVE_SELF)
            .sys("inotify_add_watch", self.dir.display())
            .map_err(|e| e.hint("the directory must exist"))?;
        Ok(Watch { fd, dir: self.dir.clone(), name: self.name.clone() })
    }
}

struct Watch {
    fd: Fd,
    dir: PathBuf,
    name: PathBuf,
}

impl Watch {
    /// Blocks until an event names our file, or the event queue overflowed (events were lost:
    /// the caller looks again either way).
    fn wait(&self) -> Result<()> {
        // Room for many events: one is 16 bytes and the name, at most NAME_MAX + 1 padded.
        let mut buf = [0u8; 4096];
        loop {
            let n = match sys::read(&self.fd, &mut buf) {
                Err(Errno::EINTR) => continue,
                other => other.sys("read", "inotify")?,
            };
            let events = sys::inotify_events(&buf[..n]);
            // The directory itself removed or moved away: nothing can arrive there any more.
            let gone = AddWatchFlags::IN_IGNORED | AddWatchFlags::IN_DELETE_SELF | AddWatchFlags::IN_MOVE_SELF;
            if events.iter().any(|e| e.mask.intersects(gone)) {
                return Err(Error::Failed(format!(
                    "the directory {} was removed or moved: nothing can arrive there any more",
                    self.dir.display()
                )));
            }
            let ours = |e: &sys::Event| {
                e.mask.contains(AddWatchFlags::IN_Q_OVERFLOW) || e.name.as_deref() == Some(self.name.as_os_str())
            };
            if events.iter().any(ours) {
                return Ok(());
            }
        }
    }
}

/// What may sit at the agreed path: only a regular file of the effective user is a message.
/// Anything else (directory, symlink, FIFO, socket, another user's file) is refused, untouched.
fn check_message(st: &FileStat, path: &Path) -> Result<()> {
    let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
    if kind != SFlag::S_IFREG {
        let what = match kind {
            SFlag::S_IFDIR => "a directory",
            SFlag::S_IFLNK => "a symlink",
            SFlag::S_IFIFO => "a FIFO",
            SFlag::S_IFSOCK => "a socket",
            _ => "a device",
        };
        return Err(Error::Failed(format!(
            "{} is {what}, not a message file: refused and left as it was; choose another --path",
            path.display()
        )));
    }
    // Asked once: it never changes in our process, and every message is checked.
    static EUID: OnceLock<u32> = OnceLock::new();
    let me = *EUID.get_or_init(|| geteuid().as_raw());
    if st.st_uid != me {
        return Err(Error::Failed(format!(
            "{} belongs to uid {}, not to you (uid {me}): refused and left as it was; choose another --path",
            path.display(),
            st.st_uid
        )));
    }
    Ok(())
}

/// Opens what is at `path` without following a symlink or blocking on a FIFO, and checks it with
/// fstat: the descriptor is what gets read, so the check cannot be raced. None if nothing is there.
fn open_message(path: &Path) -> Result<Option<(Fd, FileStat)>> {
    let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
    let fd = match sys::open(path, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(None),
        // A symlink (ELOOP), a socket (ENXIO) or a file we may not read: say what it is.
        Err(e) => {
            let st = lstat(path).sys("open", path.display())?;
            check_message(&st, path)?;
            return Err(Error::sys("open", path.display(), e));
        }
    };
    let st = fstat(&fd).sys("fstat", path.display())?;
    common::trace::count_one(); // not printed (see sys.rs), but counted: the bench's calls/msg
    check_message(&st, path)?;
    Ok(Some((fd, st)))
}

fn alive(pid: i32) -> bool {
    kill(Pid::from_raw(pid), None) != Err(Errno::ESRCH)
}

/// The directory, flock()ed: a claim and its delivery, and a writer's rename, never overlap.
struct Locked<'a> {
    spot: &'a Spot,
    _fd: Fd,
}

impl Spot {
    fn lock(&self) -> Result<Locked<'_>> {
        let fd = sys::open(&self.dir, OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
            .sys("open", self.dir.display())?;
        loop {
            match sys::flock_ex(&fd) {
                Ok(()) => return Ok(Locked { spot: self, _fd: fd }),
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(Error::sys("flock", self.dir.display(), e)),
            }
        }
    }

    /// Our private files beside the path that no live process will use: (path, pid, kind).
    /// `mine` is the kind this process makes: one of that kind named after our own PID was left
    /// by a dead process that had our PID (we have made none yet).
    fn dead_private(&self, mine: Private) -> Vec<(PathBuf, i32, Private)> {
        let prefix = format!(".{}.", self.name.display());
        let me = std::process::id() as i32;
        let Ok(dir) = std::fs::read_dir(&self.dir) else { return Vec::new() };
        dir.flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let rest = name.strip_prefix(&prefix)?;
                let (pid, what) = rest.split_once('.')?;
                let what = match what {
                    "tmp" => Private::Tmp,
                    "claimed" => Private::Claimed,
                    _ => return None,
                };
                let pid: i32 = pid.parse().ok()?;
                let st = lstat(&e.path()).ok()?;
                check_message(&st, &e.path()).ok()?;
                let dead = if pid == me { what == mine } else { !alive(pid) };
                dead.then(|| (e.path(), pid, what))
            })
            .collect()
    }
}

/// The two kinds of private file beside the agreed path.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Private {
    /// `.NAME.PID.tmp`: a writer's message being written, never delivered.
    Tmp,
    /// `.NAME.PID.claimed`: a message a reader has taken.
    Claimed,
}

impl Locked<'_> {
    /// At the start of a writer or a reader (never per message): what killed peers left. A
    /// writer's temp file was never delivered. A reader's claimed message was taken, and may have
    /// been printed in part or whole: it never goes back (it would be printed twice, or behind a
    /// newer message), it is removed, and a reader says so. Only the reader removes claimed files.
    fn remove_dead(&self, mine: Private) {
        for (p, pid, what) in self.spot.dead_private(mine) {
            match what {
                Private::Tmp => {
                    let _ = sys::unlink(&p);
                }
                Private::Claimed if mine == Private::Claimed => {
                    if sys::unlink(&p).is_ok() {
                        say!(
                            "reader: removed {}, the message that reader {pid} had taken when it was killed: it is not delivered again",
                            p.display()
                        );
                    }
                }
                Private::Claimed => {}
            }
        }
    }
}

/// A mutex of ours: a panic elsewhere (there is none on purpose) must not stop a stop.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `reader --clean`: removes an unread message at `path` and the private files that a writer or
/// reader killed with SIGKILL left beside it (`.NAME.PID.tmp`, `.NAME.PID.claimed`).
pub fn clean(path: &Path) -> Result<String> {
    let spot = Spot::new(path)?;
    let mut removed = Vec::new();
    if let Ok(st) = lstat(path) {
        check_message(&st, path)?;
        sys::unlink(path).sys("unlink", path.display())?;
        removed.push(path.display().to_string());
    }
    let prefix = format!(".{}.", spot.name.display());
    for entry in std::fs::read_dir(&spot.dir).sys("opendir", spot.dir.display())?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let ours = lstat(&entry.path()).is_ok_and(|st| check_message(&st, &entry.path()).is_ok());
        if ours && name.starts_with(&prefix) && (name.ends_with(".tmp") || name.ends_with(".claimed")) {
            sys::unlink(&entry.path()).sys("unlink", entry.path().display())?;
            removed.push(entry.path().display().to_string());
        }
    }
    Ok(if removed.is_empty() {
        format!("nothing to remove at {}", path.display())
    } else {
        format!("removed {}", removed.join(", "))
    })
}

/// F2's evidence: what reading the message files cost this process, from /proc/self/io taken
/// right around each read (so nothing else the process read counts, not even what `cargo run`
/// read before the exec), and the file system the files are on.
#[derive(Default)]
pub struct IoTally {
    /// Bytes read() returned for message files (`rchar`).
    pub rchar: u64,
    /// Bytes of them fetched from the storage device (`read_bytes`).
    pub read_bytes: u64,
    /// The file system's type, from fstatfs of a message file.
    pub fs: Option<&'static str>,
}

/// `rchar` and `read_bytes` of this process now, and how many bytes this look itself read.
fn io_now() -> Result<(u64, u64, u64)> {
    let io = std::fs::read_to_string("/proc/self/io").sys("read", "/proc/self/io")?;
    let field = |name: &str| {
        io.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(':')?.trim().parse::<u64>().ok()).unwrap_or(0)
    };
    Ok((field("rchar"), field("read_bytes"), io.len() as u64))
}

/// The note's fgets: reads `file` to its end (read() until it returns 0), 4096 bytes at a time as
/// the note's C does through stdio (its buffer is the file's st_blksize), adding what it cost to
/// `tally` (if one is kept).
fn read_counted(file: &Fd, msg: &mut Vec<u8>, tally: Option<&mut IoTally>, path: &Path) -> Result<usize> {
    let before = if tally.is_some() { Some(io_now()?) } else { None };
    let mut chunk = [0u8; 4096];
    let start = msg.len();
    loop {
        match sys::read(file, &mut chunk) {
            Ok(0) => break,
            Ok(n) => msg.extend_from_slice(&chunk[..n]),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(Error::sys("read", path.display(), e)),
        }
    }
    if let (Some(tally), Some(before)) = (tally, before) {
        let after = io_now()?;
        // The first look's own read() is counted in the second: it is not the message's.
        tally.rchar += after.0.saturating_sub(before.0).saturating_sub(before.2);
        tally.read_bytes += after.1.saturating_sub(before.1);
        if tally.fs.is_none() {
            tally.fs = fstatfs(file).ok().map(|st| fs_name(st.filesystem_type()));
        }
    }
    Ok(msg.len() - start)
}

fn fs_name(t: FsType) -> &'static str {
    match t {
        TMPFS_MAGIC => "tmpfs",
        EXT4_SUPER_MAGIC => "ext4 (or ext2/3)",
        BTRFS_SUPER_MAGIC => "btrfs",
        XFS_SUPER_MAGIC => "xfs",
        OVERLAYFS_SUPER_MAGIC => "overlayfs",
        _ => "a file system on a device",
    }
}

impl IoTally {
    /// The `--show-io` line.
    pub fn report(&self) -> String {
        let fs = self.fs.unwrap_or("an unknown file system");
        let verdict = if fs == "tmpfs" {
            "tmpfs is memory, there is no storage to skip: the message never went near a disk".to_string()
        } else if self.read_bytes == 0 {
            format!("the files are on {fs}, and every byte came from the page cache: the disk was not touched")
        } else {
            format!("the files are on {fs}, and some bytes came from the storage device (a cold cache)")
        };
        format!(
            "reading the message file(s): read() returned {} bytes (rchar), {} of them fetched from storage (read_bytes); {verdict}",
            self.rchar, self.read_bytes
        )
    }
}
