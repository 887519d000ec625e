//! File IPC (note section 1, claims F1-F2): each message is one whole file. The writer writes a
//! temp file in a private directory and renames it onto the agreed path, so a reader never sees
//! half a message (the note's hidden trap); the reader is told by inotify, because nothing else
//! tells it that a file arrived (the real cost of file IPC, more than the disk the note blames:
//! the page cache usually means no disk I/O at all).

/// One line on stderr, never a panic: a stop may run when stderr is a closed pipe, and a panic
/// in the stop thread would keep the process from dying.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

pub mod print;
mod private;
mod reader;
pub mod sys;
mod writer;

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
    /// The directory, kept open between two locks by a writer (one lock and one unlock per
    /// message). Never while the process waits: an open descriptor holds back the watch's
    /// IN_DELETE_SELF until it is closed, and a removed directory must be noticed at once.
    spare: Mutex<Option<Fd>>,
    /// Whether the directory is kept open between locks: a writer's choice. A reader waits for
    /// an event after every message, so it closes the directory each time (the close unlocks).
    keep_open: bool,
}

impl Spot {
    fn new(path: &Path, keep_open: bool) -> Result<Self> {
        let name = path.file_name().ok_or_else(|| Error::Usage(format!("{} does not name a file", path.display())))?;
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        Ok(Spot { path: path.to_path_buf(), dir, name: name.into(), spare: Mutex::new(None), keep_open })
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
    let me = my_uid();
    if st.st_uid != me {
        return Err(Error::Failed(format!(
            "{} belongs to uid {}, not to you (uid {me}): refused and left as it was; choose another --path",
            path.display(),
            st.st_uid
        )));
    }
    Ok(())
}

/// Our effective UID, asked once: it never changes in our process, and every message is checked.
fn my_uid() -> u32 {
    static EUID: OnceLock<u32> = OnceLock::new();
    *EUID.get_or_init(|| geteuid().as_raw())
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

/// Writes `msg` to `tmp`, a new file of ours, with permissions `mode` exactly: 0600 unless the
/// user widens it, and never a moment wider than asked.
fn write_file(tmp: &Path, msg: &[u8], mode: u32) -> Result<()> {
    // O_EXCL never follows a symlink planted at the name.
    let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_CLOEXEC;
    let mode = Mode::from_bits_truncate(mode);
    let fd = sys::open(tmp, flags, mode).sys("open", tmp.display())?;
    // open's mode is cut by the umask: only then put back (never under the usual 022 or 077 with
    // 0600, so no call per message).
    if common::fd::umask_cuts(mode.bits()) {
        sys::fchmod(&fd, mode).sys("fchmod", tmp.display())?;
    }
    let mut rest = msg;
    while !rest.is_empty() {
        match sys::write(&fd, rest) {
            Ok(n) => rest = &rest[n..],
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(Error::sys("write", tmp.display(), e)),
        }
    }
    Ok(())
}

/// Whether a message file of ours with the bytes `msg` is at `path` (by the time of the look).
/// Untraced (std's calls, as the lstat of the checks): a look at the end of a run, which finds
/// the message taken or not as the reader's timing goes, not a call that carries a message.
fn waits_at(path: &Path, msg: &[u8]) -> bool {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let Ok(st) = lstat(path) else { return false };
    if check_message(&st, path).is_err() || st.st_size != msg.len() as i64 {
        return false;
    }
    let flags = libc::O_NOFOLLOW | libc::O_NONBLOCK;
    let Ok(mut file) = std::fs::OpenOptions::new().read(true).custom_flags(flags).open(path) else { return false };
    let mut got = Vec::with_capacity(msg.len());
    file.read_to_end(&mut got).is_ok() && got == msg
}

fn alive(pid: i32) -> bool {
    kill(Pid::from_raw(pid), None) != Err(Errno::ESRCH)
}

/// The directory, flock()ed until dropped: a reader's take and its delivery, and a writer's
/// rename, never overlap.
struct Locked<'a> {
    spot: &'a Spot,
    fd: Option<Fd>,
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        let Some(fd) = self.fd.take() else { return };
        // The close of a reader's descriptor lets go of the lock. An unlock cannot fail on a
        // descriptor we hold; were it to, the exit would let go of it.
        if self.spot.keep_open && sys::flock_un(&fd).is_ok() {
            *lock(&self.spot.spare) = Some(fd);
        }
    }
}

impl Spot {
    fn lock(&self) -> Result<Locked<'_>> {
        let spare = lock(&self.spare).take();
        let fd = match spare {
            Some(fd) => fd,
            None => sys::open(&self.dir, OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
                .sys("open", self.dir.display())?,
        };
        loop {
            match sys::flock_ex(&fd) {
                Ok(()) => return Ok(Locked { spot: self, fd: Some(fd) }),
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(Error::sys("flock", self.dir.display(), e)),
            }
        }
    }

    /// Before a wait: the directory kept open is closed (see `spare`).
    fn close_spare(&self) {
        drop(lock(&self.spare).take());
    }
}

/// A mutex of ours: a panic elsewhere (there is none on purpose) must not stop a stop.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `reader --clean`: removes an unread message at `path` and the private directories that a
/// writer or reader killed with SIGKILL left beside it (`.NAME.PID.N.d`, see [`private`]).
pub fn clean(path: &Path) -> Result<String> {
    let spot = Spot::new(path, false)?;
    let mut removed = Vec::new();
    if let Ok(st) = lstat(path) {
        check_message(&st, path)?;
        sys::unlink(path).sys("unlink", path.display())?;
        removed.push(path.display().to_string());
    }
    removed.extend(private::remove_all(&spot)?);
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

/// The note's fgets: reads `file`, `size` bytes as its fstat gave (a message file never changes
/// once at the path, so no read() that returns 0 is needed to see its end) or to an earlier end,
/// 4096 bytes at a time as the note's C does through stdio (its buffer is the file's st_blksize),
/// adding what it cost to `tally` (if one is kept).
fn read_counted(file: &Fd, msg: &mut Vec<u8>, size: i64, tally: Option<&mut IoTally>, path: &Path) -> Result<usize> {
    let before = if tally.is_some() { Some(io_now()?) } else { None };
    let mut chunk = [0u8; 4096];
    let start = msg.len();
    while ((msg.len() - start) as i64) < size {
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
