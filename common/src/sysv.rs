//! Thin safe wrappers over the System V IPC calls, which nix does not wrap: message queues,
//! shared memory and semaphores. Every libc call of the workspace's SysV code is here; each
//! returns the errno as a nix `Errno` so callers name the call and object in their error, and
//! prints itself for `--trace` exactly as strace shows it.

use std::marker::PhantomData;
use std::ptr::NonNull;

use nix::errno::Errno;

use crate::trace::{self, Interrupted, Try};
use crate::{Access, Key, Memory, MemoryMut, ReadOnly, ReadWrite};

fn check(ret: i32) -> nix::Result<i32> {
    Errno::result(ret)
}

// ---- message queues -------------------------------------------------------------------------

pub fn msgget(key: Key, flags: i32) -> nix::Result<i32> {
    // SAFETY: msgget takes plain integers.
    let r = check(unsafe { libc::msgget(key.raw(), flags) });
    trace::call(&r, |r| (format!("msgget({}, {})", trace::key(key.raw()), trace::ipc_get_flags(flags)), r.decimal()));
    r
}

const MSG_FLAGS: [(i64, &str); 3] = [
    (libc::IPC_NOWAIT as i64, "IPC_NOWAIT"),
    (libc::MSG_NOERROR as i64, "MSG_NOERROR"),
    (libc::MSG_EXCEPT as i64, "MSG_EXCEPT"),
];

// c_long is i64 here but i32 on 32-bit targets: the conversions are not useless there.
#[allow(clippy::useless_conversion, clippy::unnecessary_fallible_conversions)]
/// Sends `text` with type `mtype` (> 0). `flags` is 0 or IPC_NOWAIT.
pub fn msgsnd(id: i32, mtype: i64, text: &[u8], flags: i32) -> nix::Result<()> {
    // struct msgbuf { long mtype; char mtext[]; }, built in c_long units so mtype is aligned.
    let longs = 1 + text.len().div_ceil(size_of::<libc::c_long>());
    let mut buf: Vec<libc::c_long> = vec![0; longs];
    buf[0] = libc::c_long::try_from(mtype).map_err(|_| Errno::EINVAL)?;
    // SAFETY: buf holds 8 bytes of mtype followed by at least text.len() bytes.
    unsafe {
        std::ptr::copy_nonoverlapping(text.as_ptr(), buf.as_mut_ptr().add(1).cast::<u8>(), text.len());
    }
    trace::begin(); // waits for room unless IPC_NOWAIT
    // SAFETY: buf is a valid msgbuf whose mtext has text.len() bytes.
    let r = check(unsafe { libc::msgsnd(id, buf.as_ptr().cast(), text.len(), flags) }).map(drop);
    trace::call(&r, |r| {
        let msg = format!("{{mtype={mtype}, mtext={}}}", trace::quote(text));
        let ret = r.interrupted(Interrupted::NoHandler).unwrap_or_else(|| r.zero());
        (format!("msgsnd({id}, {msg}, {}, {})", text.len(), trace::flags(flags.into(), &MSG_FLAGS)), ret)
    });
    r
}

/// A buffer for [`msgrcv`], sized once for the largest message (kernel.msgmax).
pub struct MsgBuf(Vec<libc::c_long>, usize);

impl MsgBuf {
    pub fn new(max_text: usize) -> Self {
        MsgBuf(vec![0; 1 + max_text.div_ceil(size_of::<libc::c_long>())], max_text)
    }
}

/// Receives (and removes: msgrcv takes the message off the queue) one message of type `mtype`
/// (0: the oldest; > 0: the oldest of that type; < 0: the lowest type <= |mtype|). Returns its
/// type and its text.
pub fn msgrcv(id: i32, buf: &mut MsgBuf, mtype: i64, flags: i32) -> nix::Result<(i64, &[u8])> {
    msgrcv_try(id, buf, mtype, flags, Try::First)
}

/// [`msgrcv`] as a wait loop repeats it (see [`Try`]).
#[allow(clippy::useless_conversion, clippy::unnecessary_fallible_conversions)]
pub fn msgrcv_try(id: i32, buf: &mut MsgBuf, mtype: i64, flags: i32, t: Try) -> nix::Result<(i64, &[u8])> {
    let mtype = libc::c_long::try_from(mtype).map_err(|_| Errno::EINVAL)?;
    trace::begin(); // waits for a message unless IPC_NOWAIT
    // SAFETY: buf.0 is a msgbuf with room for buf.1 bytes of mtext.
    let n = Errno::result(unsafe { libc::msgrcv(id, buf.0.as_mut_ptr().cast(), buf.1, mtype, flags) });
    trace::call_try(t, &n, |r| {
        // As strace: the buffer's first bytes (up to its size), not only the message's.
        let shown = match r.value() {
            // SAFETY: buf.0 holds mtype and buf.1 bytes of mtext, all initialised.
            Some(_) => format!("{{mtype={}, mtext={}}}", buf.0[0], trace::quote(unsafe { mtext(&buf.0, buf.1) })),
            None => trace::ptr(buf.0.as_ptr()),
        };
        let f = trace::flags(flags.into(), &MSG_FLAGS);
        let ret = r.interrupted(Interrupted::NoHandler).unwrap_or_else(|| r.decimal());
        (format!("msgrcv({id}, {shown}, {}, {mtype}, {f})", buf.1), ret)
    });
    let n = n? as usize;
    // SAFETY: the kernel wrote n <= buf.1 bytes after mtype.
    let text = unsafe { std::slice::from_raw_parts(buf.0.as_ptr().add(1).cast::<u8>(), n) };
    Ok((i64::from(buf.0[0]), text))
}

/// The `len` bytes of mtext after a msgbuf's mtype.
///
/// # Safety
/// `buf` must hold at least `len` bytes after its first element.
unsafe fn mtext(buf: &[libc::c_long], len: usize) -> &[u8] {
    // SAFETY: the caller vouches for the length; c_long storage is initialised and u8-aligned.
    unsafe { std::slice::from_raw_parts(buf.as_ptr().add(1).cast::<u8>(), len) }
}

pub fn msg_stat(id: i32) -> nix::Result<libc::msqid_ds> {
    // SAFETY: msqid_ds is plain data; the kernel fills it.
    let mut ds: libc::msqid_ds = unsafe { std::mem::zeroed() };
    // SAFETY: ds is a valid msqid_ds for IPC_STAT to write.
    let r = check(unsafe { libc::msgctl(id, libc::IPC_STAT, &mut ds) });
    trace::call(&r, |r| {
        let shown = if r.value().is_some() { trace::msqid_ds(&ds, true) } else { trace::ptr(&ds) };
        (format!("msgctl({id}, IPC_STAT, {shown})"), r.decimal())
    });
    r?;
    Ok(ds)
}

/// IPC_SET: writes back owner, group, mode and msg_qbytes from `ds` (take it from [`msg_stat`]).
pub fn msg_set(id: i32, ds: &libc::msqid_ds) -> nix::Result<()> {
    let mut ds = *ds;
    // SAFETY: ds is a valid msqid_ds for IPC_SET to read.
    let r = check(unsafe { libc::msgctl(id, libc::IPC_SET, &mut ds) }).map(drop);
    trace::call(&r, |r| (format!("msgctl({id}, IPC_SET, {})", trace::msqid_ds(&ds, false)), r.zero()));
    r
}

pub fn msg_remove(id: i32) -> nix::Result<()> {
    // SAFETY: IPC_RMID ignores the buffer.
    let r = check(unsafe { libc::msgctl(id, libc::IPC_RMID, std::ptr::null_mut()) }).map(drop);
    trace::call(&r, |r| (format!("msgctl({id}, IPC_RMID, NULL)"), r.zero()));
    r
}

// ---- shared memory --------------------------------------------------------------------------

pub fn shmget(key: Key, size: usize, flags: i32) -> nix::Result<i32> {
    shmget_raw(key.raw(), size, flags)
}

fn shmget_raw(key: libc::key_t, size: usize, flags: i32) -> nix::Result<i32> {
    // SAFETY: shmget takes plain integers.
    let r = check(unsafe { libc::shmget(key, size, flags) });
    trace::call(&r, |r| (format!("shmget({}, {size}, {})", trace::key(key), trace::ipc_get_flags(flags)), r.decimal()));
    r
}

/// shmget(IPC_PRIVATE, ...): a new segment with no key, shared only through fork.
pub fn shmget_private(size: usize, flags: i32) -> nix::Result<i32> {
    shmget_raw(libc::IPC_PRIVATE, size, flags)
}

pub fn shm_stat(id: i32) -> nix::Result<libc::shmid_ds> {
    shm_stat_try(id, Try::First)
}

/// [`shm_stat`] as a wait loop repeats it (see [`Try`]).
pub fn shm_stat_try(id: i32, t: Try) -> nix::Result<libc::shmid_ds> {
    // SAFETY: shmid_ds is plain data; the kernel fills it.
    let mut ds: libc::shmid_ds = unsafe { std::mem::zeroed() };
    // SAFETY: ds is a valid shmid_ds for IPC_STAT to write.
    let r = check(unsafe { libc::shmctl(id, libc::IPC_STAT, &mut ds) });
    trace::call_try(t, &r, |r| {
        let shown = if r.value().is_some() { trace::shmid_ds(&ds) } else { trace::ptr(&ds) };
        (format!("shmctl({id}, IPC_STAT, {shown})"), r.decimal())
    });
    r?;
    Ok(ds)
}

pub fn shm_remove(id: i32) -> nix::Result<()> {
    // SAFETY: IPC_RMID ignores the buffer.
    let r = check(unsafe { libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()) }).map(drop);
    trace::call(&r, |r| (format!("shmctl({id}, IPC_RMID, NULL)"), r.zero()));
    r
}

/// A segment attached to this process's address space, detached (shmdt) on drop. `A` says
/// whether it was attached read-only ([`ReadOnly`], SHM_RDONLY: nothing to write with) or
/// read-write ([`ReadWrite`]).
///
/// A read-only attachment cannot be written through:
/// ```compile_fail
/// use common::{MemoryMut, ReadOnly, sysv::Attached};
/// fn f(m: &mut Attached<ReadOnly>) {
///     m.write(0, b"x");
/// }
/// ```
pub struct Attached<A: Access> {
    addr: NonNull<u8>,
    len: usize,
    access: PhantomData<A>,
}

// SAFETY: the handle owns its attachment, which is process-wide: any thread may use or detach
// it. It is not Sync: writes take &mut self.
unsafe impl<A: Access> Send for Attached<A> {}

impl Attached<ReadOnly> {
    /// shmat(SHM_RDONLY): maps segment `id`, all of it (its size from IPC_STAT), wherever the
    /// kernel chooses.
    pub fn read_only(id: i32) -> nix::Result<Self> {
        Self::attach(id, libc::SHM_RDONLY)
    }
}

impl Attached<ReadWrite> {
    /// shmat: maps segment `id` read-write, all of it (its size from IPC_STAT).
    pub fn read_write(id: i32) -> nix::Result<Self> {
        Self::attach(id, 0)
    }
}

impl<A: Access> Attached<A> {
    fn attach(id: i32, flags: i32) -> nix::Result<Self> {
        // SAFETY: a null address lets the kernel pick a free range; nothing else is at it.
        let p = unsafe { libc::shmat(id, std::ptr::null(), flags) };
        let r = if p as isize == -1 { Err(Errno::last()) } else { Ok(p) };
        trace::call(&r, |r| {
            let f = trace::flags(flags.into(), &[(libc::SHM_RDONLY.into(), "SHM_RDONLY")]);
            (format!("shmat({id}, NULL, {f})"), r.or_errno(|p| trace::ptr(*p)))
        });
        let addr = NonNull::new(r?.cast()).ok_or(Errno::EFAULT)?;
        // The size after attaching: our attachment keeps the segment (even one marked for
        // removal), so it is the size of the very segment mapped, and a segment's size is fixed.
        let mut mem = Attached { addr, len: 0, access: PhantomData };
        mem.len = shm_stat(id)?.shm_segsz; // on error, drop detaches
        Ok(mem)
    }
}

// SAFETY: shmat mapped shm_segsz bytes (rounded up to pages) at the page-aligned addr, readable,
// until drop detaches them; addr and len never change.
unsafe impl<A: Access> Memory for Attached<A> {
    fn base(&self) -> NonNull<u8> {
        self.addr
    }

    fn len(&self) -> usize {
        self.len
    }
}

// SAFETY: as for Memory, and attached without SHM_RDONLY, so the pages are writable.
unsafe impl MemoryMut for Attached<ReadWrite> {}

impl<A: Access> Drop for Attached<A> {
    fn drop(&mut self) {
        // SAFETY: addr came from shmat and is detached once.
        let r = check(unsafe { libc::shmdt(self.addr.as_ptr().cast()) }).map(drop);
        trace::call(&r, |r| (format!("shmdt({})", trace::ptr(self.addr.as_ptr())), r.zero()));
    }
}

// ---- semaphores -----------------------------------------------------------------------------

pub fn semget(key: Key, nsems: i32, flags: i32) -> nix::Result<i32> {
    // SAFETY: semget takes plain integers.
    let r = check(unsafe { libc::semget(key.raw(), nsems, flags) });
    trace::call(&r, |r| {
        (format!("semget({}, {nsems}, {})", trace::key(key.raw()), trace::ipc_get_flags(flags)), r.decimal())
    });
    r
}

/// One operation of a [`semop`] call: on semaphore `num`, add `op` (> 0), wait to subtract it
/// (< 0), or wait for zero (0).
pub fn sembuf(num: u16, op: i16, flags: i16) -> libc::sembuf {
    libc::sembuf { sem_num: num, sem_op: op, sem_flg: flags }
}

/// Performs all `ops` atomically: all at once or none. This is semop(2), made as glibc makes it on
/// x86-64 (and as strace shows it): semtimedop with no timeout.
pub fn semop(id: i32, ops: &mut [libc::sembuf]) -> nix::Result<()> {
    semtimedop_traced(id, ops, None, Try::First)
}

fn semtimedop_traced(id: i32, ops: &mut [libc::sembuf], timeout: Option<&libc::timespec>, t: Try) -> nix::Result<()> {
    let ts = timeout.map_or(std::ptr::null(), |t| t as *const libc::timespec);
    trace::begin();
    // SAFETY: ops points at ops.len() valid sembufs; ts is null or a valid relative timeout.
    let r = check(unsafe { semtimedop(id, ops.as_mut_ptr(), ops.len(), ts) }).map(drop);
    trace::call_try(t, &r, |r| {
        let t = timeout.map_or("NULL".into(), trace::timespec);
        (format!("semtimedop({id}, {}, {}, {t})", trace::sembufs(ops), ops.len()), r.zero())
    });
    r
}

// SAFETY: the declaration matches glibc's semtimedop(2) (sys/sem.h with _GNU_SOURCE), which the
// libc crate does not declare.
unsafe extern "C" {
    fn semtimedop(
        semid: libc::c_int,
        sops: *mut libc::sembuf,
        nsops: libc::size_t,
        timeout: *const libc::timespec,
    ) -> libc::c_int;
}

/// [`semop`] that gives up after `timeout` with EAGAIN, so a waiter can look around between
/// waits; `t` says which try of such a loop this is (see [`Try`]).
pub fn semop_timed(id: i32, ops: &mut [libc::sembuf], timeout: std::time::Duration, t: Try) -> nix::Result<()> {
    let ts =
        libc::timespec { tv_sec: timeout.as_secs() as libc::time_t, tv_nsec: timeout.subsec_nanos() as libc::c_long };
    semtimedop_traced(id, ops, Some(&ts), t)
}

/// How many processes wait on semaphore `num`: (GETNCNT, GETZCNT), those waiting for it to grow
/// and those waiting for zero. Linux counts a blocked semop only on the semaphore it blocks on.
pub fn sem_waiters(id: i32, num: i32) -> nix::Result<(i32, i32)> {
    Ok((semctl_get(id, num, libc::GETNCNT, "GETNCNT")?, semctl_get(id, num, libc::GETZCNT, "GETZCNT")?))
}

pub fn sem_value(id: i32, num: i32) -> nix::Result<i32> {
    semctl_get(id, num, libc::GETVAL, "GETVAL")
}

/// semctl of a command that takes no argument and returns a count or a value.
fn semctl_get(id: i32, num: i32, cmd: i32, name: &str) -> nix::Result<i32> {
    // SAFETY: GETVAL, GETNCNT and GETZCNT take no argument.
    let r = check(unsafe { libc::semctl(id, num, cmd) });
    trace::call(&r, |r| (format!("semctl({id}, {num}, {name}, NULL)"), r.decimal()));
    r
}

pub fn sem_stat(id: i32) -> nix::Result<libc::semid_ds> {
    // SAFETY: semid_ds is plain data; the kernel fills it.
    let mut ds: libc::semid_ds = unsafe { std::mem::zeroed() };
    // SAFETY: IPC_STAT takes a pointer to a semid_ds to write.
    let r = check(unsafe { libc::semctl(id, 0, libc::IPC_STAT, &mut ds as *mut libc::semid_ds) });
    trace::call(&r, |r| {
        let shown = if r.value().is_some() { trace::semid_ds(&ds) } else { trace::ptr(&ds) };
        (format!("semctl({id}, 0, IPC_STAT, {shown})"), r.decimal())
    });
    r?;
    Ok(ds)
}

pub fn sem_remove(id: i32) -> nix::Result<()> {
    // SAFETY: IPC_RMID takes no argument.
    let r = check(unsafe { libc::semctl(id, 0, libc::IPC_RMID) }).map(drop);
    trace::call(&r, |r| (format!("semctl({id}, 0, IPC_RMID, NULL)"), r.zero()));
    r
}

/// Gets the object of `key` with `get(flags)`, creating it (0600 or `mode`) if missing. Returns the
/// id and whether this call created it: IPC_CREAT|IPC_EXCL first, so "created" is never a guess.
pub fn get_or_create(mode: i32, get: impl Fn(i32) -> nix::Result<i32>) -> nix::Result<(i32, bool)> {
    loop {
        match get(libc::IPC_CREAT | libc::IPC_EXCL | mode) {
            Ok(id) => return Ok((id, true)),
            Err(Errno::EEXIST) => match get(0) {
                Ok(id) => return Ok((id, false)),
                Err(Errno::ENOENT) => continue, // removed in between: try to create again
                Err(e) => return Err(e),
            },
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The length is the segment's own, whatever the caller expects; what a read-write
    /// attachment writes, a read-only one of the same segment reads.
    #[test]
    fn attachments_take_the_segment_size_and_share_its_bytes() -> nix::Result<()> {
        let id = shmget_private(100, libc::IPC_CREAT | 0o600)?;
        let (rw, ro) = (Attached::read_write(id), Attached::read_only(id));
        shm_remove(id)?; // gone once both detach, even if the test fails
        let (mut rw, ro) = (rw?, ro?);
        assert_eq!((rw.len(), ro.len()), (100, 100));
        rw.write_c_string(b"hello");
        assert_eq!(ro.read_c_string(), b"hello");
        let mut out = [0u8; 7];
        ro.read(1, &mut out);
        assert_eq!(&out, b"ello\0\0\0");
        rw.put_le_words(8, 2, [1, 2]);
        assert_eq!(ro.le_words(8, 3).collect::<Vec<_>>(), [1, 2, 0]);
        Ok(())
    }
}
