//! The calls that carry file-ipc's messages (open, write, rename, read and unlink of the message
//! files, the directory lock and the inotify descriptor), one thin wrapper each, printed for
//! `--trace` as strace 6.1 shows it (open, read, write, fchmod and close are `common::fd`'s). Not
//! traced: the checks around them (lstat, fstat, fstatfs) and the start's scan for files a killed
//! peer left (`read_dir`: an openat of the directory, getdents64). The flags printed are the ones
//! passed: std's `File::create`/`fs::rename`/`fs::remove_file` would hide them (and pick the
//! call), so the object is touched only through nix (libc where nix has no wrapper that gives the
//! number strace prints).

use std::ffi::{CString, OsString};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

pub use common::fd::{Fd, fchmod, open, read, write};
use common::trace;
use nix::errno::Errno;
use nix::fcntl::{AT_FDCWD, RenameFlags};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use nix::unistd::UnlinkatFlags;

/// `flock(4, LOCK_EX) = 0`: the whole wait for the lock (EINTR is the caller's to retry).
pub fn flock_ex(fd: &Fd) -> nix::Result<()> {
    flock(fd, libc::LOCK_EX, "LOCK_EX")
}

/// `flock(4, LOCK_UN) = 0`: the lock let go, the descriptor kept for the next message.
pub fn flock_un(fd: &Fd) -> nix::Result<()> {
    flock(fd, libc::LOCK_UN, "LOCK_UN")
}

fn flock(fd: &Fd, op: libc::c_int, name: &str) -> nix::Result<()> {
    // libc: nix's `Flock` would own the descriptor and its plain `flock` is deprecated.
    trace::begin();
    // SAFETY: flock takes a descriptor that `fd` keeps open and an integer operation.
    let r = Errno::result(unsafe { libc::flock(fd.as_raw_fd(), op) }).map(drop);
    trace::call(&r, |r| (format!("flock({}, {name})", fd.as_raw_fd()), r.zero()));
    r
}

/// `renameat2(AT_FDCWD, "from", AT_FDCWD, "to", RENAME_NOREPLACE) = 0`: fails with EEXIST
/// instead of replacing what is at `to`.
pub fn rename_noreplace(from: &Path, to: &Path) -> nix::Result<()> {
    let r = nix::fcntl::renameat2(AT_FDCWD, from, AT_FDCWD, to, RenameFlags::RENAME_NOREPLACE);
    trace::call(&r, |r| {
        let call =
            format!("renameat2(AT_FDCWD, {}, AT_FDCWD, {}, RENAME_NOREPLACE)", trace::path(from), trace::path(to));
        (call, r.zero())
    });
    r
}

/// `unlinkat(AT_FDCWD, "path", 0) = 0` (unlinkat on every architecture, where unlink() is not).
pub fn unlink(path: &Path) -> nix::Result<()> {
    let r = nix::unistd::unlinkat(AT_FDCWD, path, UnlinkatFlags::NoRemoveDir);
    trace::call(&r, |r| (format!("unlinkat(AT_FDCWD, {}, 0)", trace::path(path)), r.zero()));
    r
}

/// `mkdirat(AT_FDCWD, "dir", 0700) = 0`: a private directory, ours alone.
pub fn mkdir(dir: &Path) -> nix::Result<()> {
    let r = nix::sys::stat::mkdirat(AT_FDCWD, dir, nix::sys::stat::Mode::S_IRWXU);
    trace::call(&r, |r| (format!("mkdirat(AT_FDCWD, {}, 0700)", trace::path(dir)), r.zero()));
    r
}

/// `unlinkat(AT_FDCWD, "dir", AT_REMOVEDIR) = 0`.
pub fn rmdir(dir: &Path) -> nix::Result<()> {
    let r = nix::unistd::unlinkat(AT_FDCWD, dir, UnlinkatFlags::RemoveDir);
    trace::call(&r, |r| (format!("unlinkat(AT_FDCWD, {}, AT_REMOVEDIR)", trace::path(dir)), r.zero()));
    r
}

/// `inotify_init1(IN_CLOEXEC) = 3`.
pub fn inotify_init1(flags: InitFlags) -> nix::Result<Fd> {
    let r = Inotify::init(flags).map(|i| Fd::from(OwnedFd::from(i)));
    trace::call(&r, |r| {
        let names = [(libc::IN_NONBLOCK.into(), "IN_NONBLOCK"), (libc::IN_CLOEXEC.into(), "IN_CLOEXEC")];
        (
            format!("inotify_init1({})", trace::flags(flags.bits().into(), &names)),
            r.or_errno(|fd| fd.as_raw_fd().to_string()),
        )
    });
    r
}

/// inotify event bits as strace names them, in its order (the bits' order).
const INOTIFY_MASK: [(i64, &str); 22] = [
    (0x1, "IN_ACCESS"),
    (0x2, "IN_MODIFY"),
    (0x4, "IN_ATTRIB"),
    (0x8, "IN_CLOSE_WRITE"),
    (0x10, "IN_CLOSE_NOWRITE"),
    (0x20, "IN_OPEN"),
    (0x40, "IN_MOVED_FROM"),
    (0x80, "IN_MOVED_TO"),
    (0x100, "IN_CREATE"),
    (0x200, "IN_DELETE"),
    (0x400, "IN_DELETE_SELF"),
    (0x800, "IN_MOVE_SELF"),
    (0x2000, "IN_UNMOUNT"),
    (0x4000, "IN_Q_OVERFLOW"),
    (0x8000, "IN_IGNORED"),
    (0x0100_0000, "IN_ONLYDIR"),
    (0x0200_0000, "IN_DONT_FOLLOW"),
    (0x0400_0000, "IN_EXCL_UNLINK"),
    (0x1000_0000, "IN_MASK_CREATE"),
    (0x2000_0000, "IN_MASK_ADD"),
    (0x4000_0000, "IN_ISDIR"),
    (0x8000_0000, "IN_ONESHOT"),
];

/// `IN_CLOSE_WRITE|IN_MOVED_TO|IN_DELETE_SELF|IN_MOVE_SELF`.
pub fn inotify_mask(mask: AddWatchFlags) -> String {
    trace::flags(mask.bits().into(), &INOTIFY_MASK)
}

/// `inotify_add_watch(3, "dir", IN_MOVED_TO|...) = 1`. libc: nix's WatchDescriptor hides the
/// number that strace prints.
pub fn inotify_add_watch(fd: &Fd, dir: &Path, mask: AddWatchFlags) -> nix::Result<i32> {
    let c = CString::new(dir.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
    // SAFETY: `fd` keeps the descriptor open and `c` is a NUL-terminated path that outlives the call.
    let r = Errno::result(unsafe { libc::inotify_add_watch(fd.as_raw_fd(), c.as_ptr(), mask.bits()) });
    trace::call(&r, |r| {
        (format!("inotify_add_watch({}, {}, {})", fd.as_raw_fd(), trace::path(dir), inotify_mask(mask)), r.decimal())
    });
    r
}

/// One event of an inotify read: what happened and, for an event in the watched directory, to
/// which name.
pub struct Event {
    pub mask: AddWatchFlags,
    pub name: Option<OsString>,
}

/// The events in `buf`, as read from an inotify descriptor: `struct inotify_event { int wd;
/// uint32_t mask, cookie, len; char name[len]; }` one after the other, the name NUL-padded.
pub fn inotify_events(buf: &[u8]) -> Vec<Event> {
    const HEAD: usize = 16;
    let word = |b: &[u8], at: usize| b.get(at..at + 4).and_then(|w| w.try_into().ok()).map(u32::from_ne_bytes);
    let mut events = Vec::new();
    let mut at = 0;
    while let (Some(mask), Some(len)) = (word(buf, at + 4), word(buf, at + 12)) {
        let end = at + HEAD + len as usize;
        let Some(raw) = buf.get(at + HEAD..end) else { break };
        let name = raw.split(|&b| b == 0).next().filter(|n| !n.is_empty()).map(|n| OsString::from_vec(n.to_vec()));
        events.push(Event { mask: AddWatchFlags::from_bits_truncate(mask), name });
        at = end;
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_as_strace_prints_them() {
        let m = AddWatchFlags::IN_MOVED_TO | AddWatchFlags::IN_CLOSE_WRITE | AddWatchFlags::IN_DELETE_SELF;
        assert_eq!(
            inotify_mask(m | AddWatchFlags::IN_MOVE_SELF),
            "IN_CLOSE_WRITE|IN_MOVED_TO|IN_DELETE_SELF|IN_MOVE_SELF"
        );
        let m = AddWatchFlags::IN_DELETE | AddWatchFlags::IN_MOVED_FROM;
        assert_eq!(inotify_mask(m), "IN_MOVED_FROM|IN_DELETE");
    }

    #[test]
    fn parses_inotify_events() {
        let mut buf = Vec::new();
        for (mask, name) in [(0x80u32, &b"msg\0\0\0\0\0\0\0\0\0\0\0\0\0"[..]), (0x8000, &b""[..])] {
            buf.extend_from_slice(&1i32.to_ne_bytes());
            buf.extend_from_slice(&mask.to_ne_bytes());
            buf.extend_from_slice(&0u32.to_ne_bytes());
            buf.extend_from_slice(&(name.len() as u32).to_ne_bytes());
            buf.extend_from_slice(name);
        }
        let e = inotify_events(&buf);
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].name.as_deref(), Some(std::ffi::OsStr::new("msg")));
        assert!(e[0].mask.contains(AddWatchFlags::IN_MOVED_TO));
        assert!(e[1].name.is_none() && e[1].mask.contains(AddWatchFlags::IN_IGNORED));
    }
}
