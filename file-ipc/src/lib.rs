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

pub mod sys;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use common::stop::{OnStop, on_stop};
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
    let me = geteuid().as_raw();
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
    check_message(&st, path)?;
    Ok(Some((fd, st)))
}

fn alive(pid: i32) -> bool {
    kill(Pid::from_raw(pid), None) != Err(Errno::ESRCH)
}

pub struct Writer {
    spot: Spot,
    tmp: PathBuf,
    gone: Watch,
    mode: u32,
    /// (dev, ino) of our last delivered message, for the line of a stopped writer.
    last: Arc<Mutex<Option<(u64, u64)>>>,
    /// Held while the temp file is created, and for good by a stop: none is made after the
    /// stop removed it.
    creating: Arc<Mutex<()>>,
    _stop: OnStop,
}

impl Writer {
    /// A writer of message files with permissions `mode` (0600 unless the user widens it).
    pub fn new(path: &Path, mode: u32) -> Result<Self> {
        let spot = Spot::new(path)?;
        let gone = spot.watch(AddWatchFlags::IN_DELETE | AddWatchFlags::IN_MOVED_FROM)?;
        // Refused before anything is written: only a message file of ours may sit at the path.
        open_message(&spot.path)?;
        let tmp = spot.private("tmp");
        let last = Arc::new(Mutex::new(None));
        let creating = Arc::new(Mutex::new(()));
        let stop = {
            let (tmp, path, last, creating) = (tmp.clone(), spot.path.clone(), last.clone(), creating.clone());
            on_stop(move || {
                // Never leave a half-written message behind, nor let one be started after this.
                std::mem::forget(creating.lock().unwrap_or_else(PoisonError::into_inner));
                let _ = sys::unlink(&tmp);
                let ours = *last.lock().unwrap_or_else(PoisonError::into_inner);
                if ours.is_some() && lstat(&path).ok().map(|st| (st.st_dev, st.st_ino)) == ours {
                    say!("writer: our last message still waits at {} for a reader; left in place", path.display());
                }
            })
        };
        let writer = Writer { tmp, spot, gone, mode, last, creating, _stop: stop };
        writer.spot.lock()?.remove_dead_tmp();
        Ok(writer)
    }

    /// Delivers one message as one file. If an unread message is still there, calls `on_wait`
    /// and waits until it is gone: nothing is ever overwritten.
    pub fn send(&mut self, msg: &[u8], on_wait: &mut dyn FnMut()) -> Result<()> {
        // Held from creating the temp file to renaming it, except while waiting: a stop then
        // finds either no temp file, or one that it removes and that is never renamed after.
        let creating = self.creating.clone();
        let mut guard = Some(creating.lock().unwrap_or_else(PoisonError::into_inner));
        let id = self.write_tmp(msg).inspect_err(|_| {
            let _ = sys::unlink(&self.tmp);
        })?;
        loop {
            if guard.is_none() {
                guard = Some(creating.lock().unwrap_or_else(PoisonError::into_inner));
            }
            // Under the directory lock: a reader that claimed a message has printed it (or put it
            // back) before the next one can take its place.
            let locked = self.spot.lock()?;
            // RENAME_NOREPLACE: checking "is it there?" then renaming would let two writers both
            // see it free and the second would overwrite the first's message.
            match sys::rename_noreplace(&self.tmp, &self.spot.path) {
                Ok(()) => {
                    *self.last.lock().unwrap_or_else(PoisonError::into_inner) = Some(id);
                    drop(guard);
                    break;
                }
                Err(Errno::EEXIST) => {
                    drop(locked);
                    if let Err(e) = open_message(&self.spot.path) {
                        let _ = sys::unlink(&self.tmp);
                        return Err(e);
                    }
                    guard = None;
                    on_wait();
                    self.gone.wait()?;
                }
                Err(e) => {
                    let _ = sys::unlink(&self.tmp);
                    return Err(Error::sys("renameat2", self.spot.path.display(), e));
                }
            }
        }
        Ok(())
    }

    fn write_tmp(&self, msg: &[u8]) -> Result<(u64, u64)> {
        // O_EXCL never follows a symlink planted at the name; 0600: only we may read it.
        let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_CLOEXEC;
        let fd = sys::open(&self.tmp, flags, Mode::S_IRUSR | Mode::S_IWUSR).sys("open", self.tmp.display())?;
        // Exactly the mode asked for, whatever the umask (open's mode is cut by it).
        sys::fchmod(&fd, Mode::from_bits_truncate(self.mode)).sys("fchmod", self.tmp.display())?;
        let st = fstat(&fd).sys("fstat", self.tmp.display())?;
        let mut rest = msg;
        while !rest.is_empty() {
            match sys::write(&fd, rest) {
                Ok(n) => rest = &rest[n..],
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(Error::sys("write", self.tmp.display(), e)),
            }
        }
        Ok((st.st_dev, st.st_ino))
    }
}

pub struct Reader {
    spot: Spot,
    claimed: PathBuf,
    arrived: Watch,
    /// A message claimed and not yet delivered: a stop puts it back at the path.
    holding: Arc<Mutex<bool>>,
    /// With `--show-io`: what reading the messages cost (see [`IoTally`]).
    pub io: Option<IoTally>,
    _stop: OnStop,
}

impl Reader {
    pub fn new(path: &Path) -> Result<Self> {
        let spot = Spot::new(path)?;
        // IN_MOVED_TO: our writer renames onto the path (that is no IN_CREATE). IN_CLOSE_WRITE: a
        // plain `echo hi > path` is complete once closed.
        let arrived = spot.watch(AddWatchFlags::IN_MOVED_TO | AddWatchFlags::IN_CLOSE_WRITE)?;
        let claimed = spot.private("claimed");
        let holding = Arc::new(Mutex::new(false));
        let stop = {
            let (claimed, path, holding) = (claimed.clone(), spot.path.clone(), holding.clone());
            on_stop(move || {
                // Wait for a message being printed (without limit: common::gate): it is then
                // printed once, whole, not put back to be printed twice.
                let held = common::gate::lock_when_released(&holding, Duration::from_secs(2));
                if held.as_deref().is_none_or(|h| *h) {
                    put_back(&claimed, &path);
                }
                // Kept locked until the process dies: the main thread claims nothing more.
                std::mem::forget(held);
            })
        };
        let reader = Reader { claimed, spot, arrived, holding, io: None, _stop: stop };
        // Refused before anything is read: only a message file of ours may sit at the path.
        open_message(&reader.spot.path)?;
        reader.spot.lock()?.recover_dead();
        Ok(reader)
    }

    /// Waits for a message, claims it, reads and removes it: the bench's receive.
    pub fn recv(&mut self, on_wait: &mut dyn FnMut()) -> Result<Vec<u8>> {
        let mut got = Vec::new();
        self.recv_with(on_wait, &mut |m| {
            got = m.to_vec();
            Ok(())
        })?;
        Ok(got)
    }

    /// Waits for a message (calling `on_wait` once if there is none yet), claims it by renaming it
    /// to a private name, so two readers never both get it, hands it to `deliver` and removes it
    /// only once delivered. If `deliver` fails or the process is stopped first, the message is
    /// put back at the path for the next reader.
    pub fn recv_with(&mut self, on_wait: &mut dyn FnMut(), deliver: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()> {
        loop {
            common::gate::safe_point(); // a stop parks here, holding nothing
            let locked = self.spot.lock()?;
            let Some((file, st)) = open_message(&self.spot.path)? else {
                locked.recover_dead();
                if std::fs::symlink_metadata(&self.spot.path).is_err() {
                    drop(locked);
                    on_wait();
                    self.arrived.wait()?;
                }
                continue;
            };
            let mut holding = self.holding.lock().unwrap_or_else(PoisonError::into_inner);
            match sys::rename(&self.spot.path, &self.claimed) {
                Ok(()) => *holding = true,
                Err(Errno::ENOENT) => continue, // a foreign reader took it
                Err(e) => return Err(Error::sys("rename", self.spot.path.display(), e)),
            }
            // The name was ours when opened; it must still be the same file now.
            if lstat(&self.claimed).map(|c| (c.st_dev, c.st_ino)) != Ok((st.st_dev, st.st_ino)) {
                put_back(&self.claimed, &self.spot.path);
                *holding = false;
                return Err(Error::Failed(format!(
                    "{} was replaced while it was claimed: refused",
                    self.spot.path.display()
                )));
            }
            let mut msg = Vec::new();
            let delivered = read_counted(&file, &mut msg, self.io.as_mut(), &self.spot.path).and_then(|_| {
                // A stop waits until it is printed whole; given up (a second stop), it is lost.
                let claimed = self.claimed.clone();
                let _held = common::gate::hold(&msg).if_lost(move || {
                    let _ = sys::unlink(&claimed);
                });
                deliver(&msg)
            });
            if let Err(e) = delivered {
                put_back(&self.claimed, &self.spot.path);
                *holding = false;
                return Err(e);
            }
            // Delivered: gone already (someone removed it by hand) is no failure after success.
            let removed = match sys::unlink(&self.claimed) {
                Err(Errno::ENOENT) => Ok(()),
                other => other.sys("unlink", self.claimed.display()),
            };
            *holding = false;
            return removed;
        }
    }

    /// The end of a run: one line if a message still waits at the path (it is left for the next
    /// reader), none otherwise.
    pub fn pending(&self) -> Option<String> {
        let _locked = self.spot.lock().ok();
        let st = lstat(&self.spot.path).ok()?;
        check_message(&st, &self.spot.path).ok()?;
        Some(format!("a message waits at {}; left in place for the next reader", self.spot.path.display()))
    }
}

/// Puts a claimed message back at the agreed path, never over another message.
fn put_back(claimed: &Path, path: &Path) {
    match sys::rename_noreplace(claimed, path) {
        Ok(()) | Err(Errno::ENOENT) => {}
        Err(e) => say!(
            "reader: could not put back the message claimed as {} ({}); `reader --clean` removes it",
            claimed.display(),
            e.desc()
        ),
    }
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

    /// Our private files beside the path whose process is gone: (path, pid, what).
    fn dead_private(&self) -> Vec<(PathBuf, i32, &'static str)> {
        let prefix = format!(".{}.", self.name.display());
        let Ok(dir) = std::fs::read_dir(&self.dir) else { return Vec::new() };
        dir.flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let rest = name.strip_prefix(&prefix)?;
                let (pid, what) = rest.split_once('.')?;
                let what = match what {
                    "tmp" => "tmp",
                    "claimed" => "claimed",
                    _ => return None,
                };
                let pid: i32 = pid.parse().ok()?;
                let st = lstat(&e.path()).ok()?;
                check_message(&st, &e.path()).ok()?;
                (!alive(pid)).then(|| (e.path(), pid, what))
            })
            .collect()
    }
}

impl Locked<'_> {
    /// A writer killed with SIGKILL leaves its unfinished temp file: it was never delivered.
    fn remove_dead_tmp(&self) {
        for (p, _, what) in self.spot.dead_private() {
            if what == "tmp" {
                let _ = sys::unlink(&p);
            }
        }
    }

    /// A reader killed with SIGKILL leaves the message it claimed: it goes back to the path.
    fn recover_dead(&self) {
        self.remove_dead_tmp();
        if let Some((p, pid, _)) = self.spot.dead_private().into_iter().find(|(_, _, w)| *w == "claimed")
            && sys::rename_noreplace(&p, &self.spot.path).is_ok()
        {
            say!("reader: took back the message that reader {pid} had claimed when it was killed");
        }
    }
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

/// Reads `fd` to its end (read() until it returns 0), 4096 bytes at a time as the note's C does
/// through stdio (its buffer is the file's st_blksize).
fn read_to_end(fd: &Fd, msg: &mut Vec<u8>) -> nix::Result<usize> {
    let mut chunk = [0u8; 4096];
    let start = msg.len();
    loop {
        match sys::read(fd, &mut chunk) {
            Ok(0) => return Ok(msg.len() - start),
            Ok(n) => msg.extend_from_slice(&chunk[..n]),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Reads `file` to its end, adding what it cost to `tally` (if one is kept).
fn read_counted(file: &Fd, msg: &mut Vec<u8>, tally: Option<&mut IoTally>, path: &Path) -> Result<usize> {
    let read = |msg: &mut Vec<u8>| read_to_end(file, msg).sys("read", path.display());
    let Some(tally) = tally else { return read(msg) };
    let before = io_now()?;
    let n = read(msg)?;
    let after = io_now()?;
    // The first look's own read() is counted in the second: it is not the message's.
    tally.rchar += after.0.saturating_sub(before.0).saturating_sub(before.2);
    tally.read_bytes += after.1.saturating_sub(before.1);
    if tally.fs.is_none() {
        tally.fs = fstatfs(file).ok().map(|st| fs_name(st.filesystem_type()));
    }
    Ok(n)
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
