//! The mechanisms, each as a pair of one-way links between the two processes. Each uses its
//! crate's own library code (file_ipc, pipe_ipc's FIFOs, msgq_ipc, shm_ipc, signal_ipc) where the
//! workspace has it; the spin and futex rings and the socket are the bench's own.

use pipe_ipc::fifo;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use common::posix::Mapped;
use common::sysv::{self, Attached};
use common::{Error, Key, Memory, MemoryMut, Result, SysResult};
use msgq_ipc::Queue;
use nix::errno::Errno;
use nix::mqueue::{MQ_OFlag, MqAttr, MqdT, mq_open, mq_unlink};
use nix::sys::stat::Mode;
use nix::unistd::Pid;

use crate::msg::{self, Expect, Stamp};
use crate::ring::{self, Ring, Wait};
use crate::semring::{self, SemRing};
use crate::sys;

/// One direction of a mechanism: every message has the same size.
pub trait Link {
    fn send(&mut self, msg: &[u8]) -> Result<()>;
    /// Receives one message into `buf` (exactly `buf.len()` bytes).
    fn recv(&mut self, buf: &mut [u8]) -> Result<()>;

    /// Sends message `s` (msg.rs): written into `scratch`, then sent. An in-place link writes
    /// it where the receiver will find it instead.
    fn send_seq(&mut self, s: &Stamp, scratch: &mut [u8]) -> Result<()> {
        msg::fill(scratch, s);
        self.send(scratch)
    }

    /// Receives into `buf`, poisoned first so that bytes the transport did not deliver cannot
    /// pass, and checks it is a message `e` accepts. Returns the number it carries.
    fn recv_seq(&mut self, buf: &mut [u8], e: &Expect) -> Result<u64> {
        buf.fill(msg::POISON);
        self.recv(buf)?;
        msg::check(buf, buf.len(), e)
    }

    /// Answers message `s`, which `received` holds (as `recv_seq` left it): sent back as it
    /// came, or written anew where the peer reads it by an in-place link.
    fn echo(&mut self, _: &Stamp, received: &mut [u8]) -> Result<()> {
        self.send(received)
    }
}

pub struct Ends {
    pub tx: Box<dyn Link>,
    pub rx: Box<dyn Link>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Side {
    Parent,
    Child,
}

/// What a mechanism made before the fork; each side opens its ends after it.
pub trait Setup: Send + Sync {
    fn open(&self, side: Side, peer: Pid) -> Result<Ends>;
    /// Removes every object it made (also called from the stop thread).
    fn cleanup(&self);
}

pub struct Mechanism {
    pub id: &'static str,
    /// What the row is, in a few words (`--list`).
    pub about: &'static str,
    /// Largest message it carries.
    pub max_size: fn() -> usize,
    /// A shared-memory row: compared with the hardware's limits.
    pub shm: bool,
    pub setup: fn(size: usize, key: u32) -> Result<Arc<dyn Setup>>,
}

pub const ALL: &[Mechanism] = &[
    Mechanism {
        id: "file",
        about: "file_ipc: a temp file, rename, inotify",
        max_size: unlimited,
        shm: false,
        setup: file,
    },
    Mechanism { id: "pipe", about: "two pipes", max_size: unlimited, shm: false, setup: pipe },
    Mechanism { id: "fifo", about: "pipe_ipc's FIFOs", max_size: unlimited, shm: false, setup: fifo },
    Mechanism {
        id: "unix-socket",
        about: "a socketpair, the familiar baseline",
        max_size: unlimited,
        shm: false,
        setup: unix_socket,
    },
    Mechanism {
        id: "sysv-mq",
        about: "msgq_ipc: one SysV queue, a message type per direction",
        max_size: sysv_mq_max,
        shm: false,
        setup: sysv_mq,
    },
    Mechanism {
        id: "posix-mq",
        about: "two POSIX queues, one mq_send and one mq_receive per message",
        max_size: posix_mq_max,
        shm: false,
        setup: posix_mq,
    },
    Mechanism {
        id: "sysv-shm-sem",
        about: "a SysV segment of slots and a semaphore pair, one semop per message",
        max_size: unlimited,
        shm: true,
        setup: sysv_shm_sem,
    },
    Mechanism {
        id: "sysv-shm-spin",
        about: "a ring in a SysV segment, waits spin then yield, messages copied",
        max_size: unlimited,
        shm: true,
        setup: sysv_shm_spin,
    },
    Mechanism {
        id: "sysv-shm-inplace",
        about: "the spin ring used in place: written and checked where the message lies",
        max_size: unlimited,
        shm: true,
        setup: sysv_shm_inplace,
    },
    Mechanism {
        id: "posix-shm-futex",
        about: "the ring in POSIX shared memory, waits sleep in futex(2)",
        max_size: unlimited,
        shm: true,
        setup: posix_shm_futex,
    },
    Mechanism {
        id: "signal",
        about: "sigqueue and sigwaitinfo, the 8-byte sigval word only",
        max_size: signal_max,
        shm: false,
        setup: signal,
    },
];

/// The first of the two keys of row `row` (0, 1, ...) of the bench whose PID is `pid`. The
/// bench's keys have bit 29 set and bit 30 clear (the tests' keys set bit 30), then the PID.
pub fn row_key(pid: u32, row: usize) -> u32 {
    (0x2000_0000 | (pid & 0x1_ffff) << 12) + 2 * row as u32
}

/// The signal row's only size: the 8-byte `union sigval` that sigqueue carries.
pub const SIGNAL_SIZE: usize = 8;

fn unlimited() -> usize {
    usize::MAX
}

fn sysv_mq_max() -> usize {
    msgq_ipc::Flavor::SysV.max_text()
}

fn posix_mq_max() -> usize {
    msgq_ipc::POSIX_MSG_SIZE
}

fn signal_max() -> usize {
    SIGNAL_SIZE
}

/// Per side: (this side's tx, this side's rx) out of (parent-to-child, child-to-parent).
fn pick<T>(side: Side, down: T, up: T) -> (T, T) {
    match side {
        Side::Parent => (down, up),
        Side::Child => (up, down),
    }
}

// ---- byte streams: pipe, FIFO, socket -------------------------------------------------------

/// A byte stream's end: write(2) and read(2) through common::fd's traced wrappers, as C makes them.
struct Stream(OwnedFd);

impl Link for Stream {
    fn send(&mut self, mut msg: &[u8]) -> Result<()> {
        while !msg.is_empty() {
            match common::fd::write(&self.0, msg) {
                Ok(n) => msg = &msg[n..],
                Err(Errno::EINTR) => {}
                Err(e) => return Err(Error::sys("write", "stream", e)),
            }
        }
        Ok(())
    }

    fn recv(&mut self, mut buf: &mut [u8]) -> Result<()> {
        // A stream keeps no boundaries (M6): read until the whole message is in.
        while !buf.is_empty() {
            match common::fd::read(&self.0, buf) {
                Ok(0) => return Err(Error::Failed("stream: end of file (the peer is gone)".into())),
                Ok(n) => buf = &mut buf[n..],
                Err(Errno::EINTR) => {}
                Err(e) => return Err(Error::sys("read", "stream", e)),
            }
        }
        Ok(())
    }
}

/// Descriptors made before the fork: each side takes its own and closes the other side's, so
/// that no process holds an end it does not use.
struct Fds<T>(Mutex<Option<(T, T)>>);

impl<T> Fds<T> {
    fn take(&self, side: Side) -> Result<T> {
        let both = self.0.lock().unwrap_or_else(PoisonError::into_inner).take();
        let (parent, child) = both.ok_or_else(|| Error::Failed("the ends were taken already".into()))?;
        Ok(if side == Side::Parent { parent } else { child })
    }
}

/// Per side: (tx, rx) ends of the two pipes.
type PipeEnds = (OwnedFd, OwnedFd);

impl Setup for Fds<PipeEnds> {
    fn open(&self, side: Side, _: Pid) -> Result<Ends> {
        let (tx, rx) = self.take(side)?;
        Ok(Ends { tx: Box::new(Stream(tx)), rx: Box::new(Stream(rx)) })
    }

    fn cleanup(&self) {}
}

fn pipe(_: usize, _: u32) -> Result<Arc<dyn Setup>> {
    let (down_r, down_w) = nix::unistd::pipe().sys("pipe", "down")?;
    let (up_r, up_w) = nix::unistd::pipe().sys("pipe", "up")?;
    Ok(Arc::new(Fds(Mutex::new(Some(((down_w, up_r), (up_w, down_r)))))))
}

impl Setup for Fds<UnixStream> {
    fn open(&self, side: Side, _: Pid) -> Result<Ends> {
        let s = self.take(side)?;
        let tx = s.try_clone().sys("dup", "socket")?;
        Ok(Ends { tx: Box::new(Stream(tx.into())), rx: Box::new(Stream(s.into())) })
    }

    fn cleanup(&self) {}
}

fn unix_socket(_: usize, _: u32) -> Result<Arc<dyn Setup>> {
    let (a, b) = UnixStream::pair().sys("socketpair", "AF_UNIX")?;
    Ok(Arc::new(Fds(Mutex::new(Some((a, b))))))
}

/// Where the file and FIFO rows of the row with key `key` work: a directory of the bench's own.
pub fn scratch_path(key: u32) -> Result<PathBuf> {
    Ok(common::paths::user_dir()?.join(format!("bench-{key:x}")))
}

fn scratch_dir(key: u32) -> Result<PathBuf> {
    let dir = scratch_path(key)?;
    std::fs::create_dir(&dir).sys("mkdir", dir.display())?;
    Ok(dir)
}

struct Fifos(PathBuf);

impl Setup for Fifos {
    fn open(&self, side: Side, _: Pid) -> Result<Ends> {
        let (down, up) = (self.0.join("down"), self.0.join("up"));
        // Opened in the same order on both sides (down, then up), so neither blocks forever.
        let (tx, rx) = match side {
            Side::Parent => {
                let tx = fifo::open_end(&down, fifo::End::Write)?;
                (tx, fifo::open_end(&up, fifo::End::Read)?)
            }
            Side::Child => {
                let rx = fifo::open_end(&down, fifo::End::Read)?;
                (fifo::open_end(&up, fifo::End::Write)?, rx)
            }
        };
        Ok(Ends { tx: Box::new(Stream(tx.into())), rx: Box::new(Stream(rx.into())) })
    }

    fn cleanup(&self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn fifo(_: usize, key: u32) -> Result<Arc<dyn Setup>> {
    let dir = scratch_dir(key)?;
    pipe_ipc::fifo::make(&dir.join("down"), 0o600)?;
    pipe_ipc::fifo::make(&dir.join("up"), 0o600)?;
    Ok(Arc::new(Fifos(dir)))
}

// ---- file: file_ipc's writer and reader ------------------------------------------------------

struct Files(PathBuf);

enum FileLink {
    Tx(file_ipc::Writer),
    Rx(file_ipc::Reader),
}

impl Link for FileLink {
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        match self {
            FileLink::Tx(w) => w.send(msg, &mut || {}),
            FileLink::Rx(_) => Err(Error::Failed("send on a receiving link".into())),
        }
    }

    fn recv(&mut self, buf: &mut [u8]) -> Result<()> {
        match self {
            FileLink::Rx(r) => copy_exact(&r.recv(&mut || {})?, buf),
            FileLink::Tx(_) => Err(Error::Failed("receive on a sending link".into())),
        }
    }
}

impl Setup for Files {
    fn open(&self, side: Side, _: Pid) -> Result<Ends> {
        // A directory per direction, as a pair has: a reader watches only its own.
        let (tx, rx) = pick(side, self.0.join("down/msg"), self.0.join("up/msg"));
        let (tx, rx) = (file_ipc::Writer::new(&tx, 0o600)?, file_ipc::Reader::new(&rx)?);
        Ok(Ends { tx: Box::new(FileLink::Tx(tx)), rx: Box::new(FileLink::Rx(rx)) })
    }

    fn cleanup(&self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn file(_: usize, key: u32) -> Result<Arc<dyn Setup>> {
    let dir = scratch_dir(key)?;
    for d in ["down", "up"] {
        if let Err(e) = std::fs::create_dir(dir.join(d)).sys("mkdir", dir.join(d).display()) {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(e);
        }
    }
    Ok(Arc::new(Files(dir)))
}

fn copy_exact(got: &[u8], buf: &mut [u8]) -> Result<()> {
    if got.len() != buf.len() {
        return Err(Error::Failed(format!("received {} bytes, expected {}", got.len(), buf.len())));
    }
    buf.copy_from_slice(got);
    Ok(())
}

/// Makes the down (0) and up (1) objects of `setup` with `make`; if either fails, removes what
/// was made before returning the error.
fn make_both<S: Setup + 'static>(setup: S, make: impl Fn(&S, usize) -> Result<()>) -> Result<Arc<dyn Setup>> {
    if let Err(e) = make(&setup, 0).and_then(|()| make(&setup, 1)) {
        setup.cleanup();
        return Err(e);
    }
    Ok(Arc::new(setup))
}

/// Strips the NUL that msgq_ipc and shm_ipc add, as the note's C does (strlen+1).
fn copy_c_text(got: &[u8], buf: &mut [u8]) -> Result<()> {
    copy_exact(got.strip_suffix(&[0]).unwrap_or(got), buf)
}

// ---- message queues: msgq_ipc ---------------------------------------------------------------

/// A queue and the message type (SysV) this link sends or takes; one queue carries both
/// directions by type, as `reader --serve` does (M6).
struct MqLink {
    queue: Queue,
    mtype: i64,
}

impl Link for MqLink {
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        self.queue.send(self.mtype, msg, msgq_ipc::WhenFull::Wait, &mut || {})
    }

    fn recv(&mut self, buf: &mut [u8]) -> Result<()> {
        copy_c_text(&self.queue.recv(self.mtype, &mut || {})?.1, buf)
    }
}

struct SysvMq(Key);

impl Setup for SysvMq {
    fn open(&self, side: Side, _: Pid) -> Result<Ends> {
        let (tx, rx) = pick(side, 1, 2);
        let link = |mtype| Ok::<_, Error>(Box::new(MqLink { queue: Queue::existing(self.0)?, mtype }));
        Ok(Ends { tx: link(tx)?, rx: link(rx)? })
    }

    fn cleanup(&self) {
        let _ = msgq_ipc::clean(self.0, msgq_ipc::Flavor::SysV);
    }
}

fn sysv_mq(_: usize, key: u32) -> Result<Arc<dyn Setup>> {
    let key = Key::new(key);
    Queue::get_or_create(key, 0o600)?;
    Ok(Arc::new(SysvMq(key)))
}

// Two POSIX queues (down, up), the bench's own: one mq_send and one mq_receive per message, as a
// C program makes (msgq_ipc's sender also asks mq_getattr whether the queue is full).

/// Linux's default limits for an unprivileged queue, as msgq_ipc's POSIX queue asks for.
const MQ_MSGS: i64 = msgq_ipc::POSIX_MAX_MSGS as i64;

struct MqEnd {
    mqd: MqdT,
    name: String,
}

impl Link for MqEnd {
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        loop {
            match sys::mq_send_msg(&self.mqd, msg) {
                Err(Errno::EINTR) => continue, // SIGSTOP/SIGCONT
                other => return other.sys("mq_send", &self.name),
            }
        }
    }

    fn recv(&mut self, buf: &mut [u8]) -> Result<()> {
        let n = loop {
            match sys::mq_receive_msg(&self.mqd, buf) {
                Err(Errno::EINTR) => continue,
                other => break other.sys("mq_receive", &self.name)?,
            }
        };
        if n != buf.len() {
            return Err(Error::Failed(format!("{}: a message of {n} bytes, not {}", self.name, buf.len())));
        }
        Ok(())
    }
}

/// Whether [`mq_end`] makes the queue (the parent, once) or opens the one made.
#[derive(Clone, Copy, PartialEq, Eq)]
enum MqOpen {
    Create,
    Existing,
}

fn mq_end(name: &str, size: usize, open: MqOpen) -> Result<MqEnd> {
    let flags = if open == MqOpen::Create { MQ_OFlag::O_CREAT | MQ_OFlag::O_EXCL } else { MQ_OFlag::empty() };
    let attr = MqAttr::new(0, MQ_MSGS, size as i64, 0);
    let mqd =
        mq_open(name, MQ_OFlag::O_RDWR | MQ_OFlag::O_CLOEXEC | flags, Mode::from_bits_truncate(0o600), Some(&attr))
            .sys("mq_open", name)?;
    Ok(MqEnd { mqd, name: name.to_string() })
}

/// The POSIX object names (queues or shared memory) of the row with key `key`, one per direction.
pub fn posix_names(key: u32) -> (String, String) {
    (format!("/bench-{key:x}-down"), format!("/bench-{key:x}-up"))
}

struct PosixMqSetup {
    names: (String, String),
    size: usize,
}

impl Setup for PosixMqSetup {
    fn open(&self, side: Side, _: Pid) -> Result<Ends> {
        let (tx, rx) = pick(side, &self.names.0, &self.names.1);
        Ok(Ends {
            tx: Box::new(mq_end(tx, self.size, MqOpen::Existing)?),
            rx: Box::new(mq_end(rx, self.size, MqOpen::Existing)?),
        })
    }

    fn cleanup(&self) {
        let _ = mq_unlink(self.names.0.as_str());
        let _ = mq_unlink(self.names.1.as_str());
    }
}

fn posix_mq(size: usize, key: u32) -> Result<Arc<dyn Setup>> {
    make_both(PosixMqSetup { names: posix_names(key), size }, |m, i| {
        mq_end([&m.names.0, &m.names.1][i], m.size, MqOpen::Create).map(drop)
    })
}

// ---- shared memory with semaphores: one semop per message per side (semring.rs) ----------

impl Link for SemRing {
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        SemRing::send(self, msg)
    }

    fn recv(&mut self, buf: &mut [u8]) -> Result<()> {
        SemRing::recv(self, buf)
    }
}

/// Two directions (down, up), each a segment and a semaphore pair under one key.
struct SysvShmSem {
    keys: (Key, Key),
    ids: Mutex<Vec<(i32, i32)>>,
    size: usize,
}

impl Setup for SysvShmSem {
    fn open(&self, side: Side, _: Pid) -> Result<Ends> {
        let ids = self.ids.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let (&(tx_shm, tx_sem), &(rx_shm, rx_sem)) = match (ids.first(), ids.get(1)) {
            (Some(d), Some(u)) => pick(side, d, u),
            _ => return Err(Error::Failed("sysv-shm-sem: objects missing".into())),
        };
        Ok(Ends {
            tx: Box::new(SemRing::open(tx_shm, tx_sem, self.size)?),
            rx: Box::new(SemRing::open(rx_shm, rx_sem, self.size)?),
        })
    }

    fn cleanup(&self) {
        for &(shm, sem) in self.ids.lock().unwrap_or_else(PoisonError::into_inner).iter() {
            let _ = sysv::shm_remove(shm);
            let _ = sysv::sem_remove(sem);
        }
    }
}

fn sysv_shm_sem(size: usize, key: u32) -> Result<Arc<dyn Setup>> {
    let made = SysvShmSem { keys: (Key::new(key), Key::new(key + 1)), ids: Mutex::new(Vec::new()), size };
    make_both(made, |m, i| {
        let ids = semring::create([m.keys.0, m.keys.1][i], m.size)?;
        m.ids.lock().unwrap_or_else(PoisonError::into_inner).push(ids);
        Ok(())
    })
}

// ---- shared-memory rings: spin (SysV) and futex (POSIX) -------------------------------------

impl<M: MemoryMut> Link for Ring<M> {
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        Ring::send(self, msg);
        Ok(())
    }

    fn recv(&mut self, buf: &mut [u8]) -> Result<()> {
        Ring::recv(self, buf);
        Ok(())
    }
}

/// A ring used in place (a loan, as iceoryx2's API has): the sender writes each message straight
/// into its slot, the receiver checks it where it lies; no copy on either side.
struct InPlace<M: MemoryMut>(Ring<M>);

impl<M: MemoryMut> Link for InPlace<M> {
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        self.0.send(msg);
        Ok(())
    }

    fn recv(&mut self, buf: &mut [u8]) -> Result<()> {
        self.0.recv(buf);
        Ok(())
    }

    fn send_seq(&mut self, s: &Stamp, _: &mut [u8]) -> Result<()> {
        self.0.send_in_place(s.head, |mut body| body.put_le_words(msg::body_words(s)));
        Ok(())
    }

    fn recv_seq(&mut self, buf: &mut [u8], e: &Expect) -> Result<u64> {
        let size = buf.len();
        self.0.recv_in_place(|first, body| msg::check_words(first, body.le_words(), size, e))
    }

    fn echo(&mut self, s: &Stamp, scratch: &mut [u8]) -> Result<()> {
        self.send_seq(s, scratch)
    }
}

/// Two SysV segments (down, up), each one ring.
struct SysvSpin {
    ids: (i32, i32),
    size: usize,
    copies: Copies,
}

impl Setup for SysvSpin {
    fn open(&self, side: Side, _: Pid) -> Result<Ends> {
        let (tx, rx) = pick(side, self.ids.0, self.ids.1);
        let len = ring::bytes(self.size);
        let ring = |id| -> Result<Box<dyn Link>> {
            let mem = Attached::read_write(id).sys("shmat", format!("segment id {id}"))?;
            if mem.len() < len {
                return Err(Error::Failed(format!("segment id {id}: {} bytes, a ring needs {len}", mem.len())));
            }
            let ring = Ring::new(mem, self.size, Wait::Spin);
            Ok(match self.copies {
                Copies::InPlace => Box::new(InPlace(ring)),
                Copies::InAndOut => Box::new(ring),
            })
        };
        Ok(Ends { tx: ring(tx)?, rx: ring(rx)? })
    }

    fn cleanup(&self) {
        let _ = sysv::shm_remove(self.ids.0);
        let _ = sysv::shm_remove(self.ids.1);
    }
}

fn sysv_shm_spin(size: usize, key: u32) -> Result<Arc<dyn Setup>> {
    sysv_ring(size, key, Copies::InAndOut)
}

fn sysv_shm_inplace(size: usize, key: u32) -> Result<Arc<dyn Setup>> {
    sysv_ring(size, key, Copies::InPlace)
}

/// How a ring row moves a message: copied into a slot and out of it, or built and checked in place.
#[derive(Clone, Copy)]
enum Copies {
    InAndOut,
    InPlace,
}

fn sysv_ring(size: usize, key: u32, copies: Copies) -> Result<Arc<dyn Setup>> {
    let len = ring::bytes(size);
    let make = |k: u32| {
        sysv::shmget(Key::new(k), len, libc::IPC_CREAT | libc::IPC_EXCL | 0o600).sys("shmget", format!("key {:#x}", k))
    };
    let down = make(key)?;
    let up = make(key + 1).inspect_err(|_| {
        let _ = sysv::shm_remove(down);
    })?;
    Ok(Arc::new(SysvSpin { ids: (down, up), size, copies }))
}

/// Two POSIX shared-memory objects (down, up), each one ring whose waits sleep in futex(2).
struct PosixFutex {
    names: (String, String),
    size: usize,
}

impl Setup for PosixFutex {
    fn open(&self, side: Side, _: Pid) -> Result<Ends> {
        let (tx, rx) = pick(side, &self.names.0, &self.names.1);
        let len = ring::bytes(self.size);
        let ring = |name: &String| -> Result<Box<dyn Link>> {
            let mem = Mapped::existing(name, len).sys("shm_open", name)?;
            Ok(Box::new(Ring::new(mem, self.size, Wait::Futex)))
        };
        Ok(Ends { tx: ring(tx)?, rx: ring(rx)? })
    }

    fn cleanup(&self) {
        let _ = common::posix::shm_unlink(&self.names.0);
        let _ = common::posix::shm_unlink(&self.names.1);
    }
}

fn posix_shm_futex(size: usize, key: u32) -> Result<Arc<dyn Setup>> {
    let made = PosixFutex { names: posix_names(key), size };
    make_both(made, |m, i| {
        let name = [&m.names.0, &m.names.1][i];
        Mapped::get_or_create(name, ring::bytes(m.size), 0o600).map(drop).map_err(|e| Error::sys("shm_open", name, e))
    })
}

// ---- signals: signal_ipc's sigqueue and sigwaitinfo -----------------------------------------

/// The real-time signal the signal row uses. The bench blocks it in every thread at start, so
/// only sigwaitinfo takes it.
pub fn bench_signal() -> i32 {
    signal_ipc::sys::rtmin()
}

enum SigLink {
    /// The peer's PID and ours.
    Tx(i32, i32),
    Rx(libc::sigset_t),
}

impl Link for SigLink {
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        let SigLink::Tx(peer, me) = *self else { return Err(Error::Failed("send on a receiving link".into())) };
        let word = usize::from_le_bytes(msg.try_into().map_err(|_| Error::Failed("a signal carries 8 bytes".into()))?);
        loop {
            match sys::sigqueue_word(peer, bench_signal(), word, me) {
                // The peer's pending queue is full (RLIMIT_SIGPENDING): let it drain.
                Err(nix::errno::Errno::EAGAIN) => sys::sched_yield(),
                other => return other.sys("sigqueue", format!("pid {peer}")),
            }
        }
    }

    fn recv(&mut self, buf: &mut [u8]) -> Result<()> {
        let SigLink::Rx(set) = self else { return Err(Error::Failed("receive on a sending link".into())) };
        let caught = signal_ipc::sys::sigwaitinfo(set).sys("sigwaitinfo", "SIGRTMIN")?;
        copy_exact(&caught.word.to_le_bytes(), buf)
    }
}

struct Signals;

impl Setup for Signals {
    fn open(&self, _: Side, peer: Pid) -> Result<Ends> {
        let set = signal_ipc::sys::sigset(&[bench_signal()]).sys("sigaddset", "SIGRTMIN")?;
        let me = std::process::id() as i32;
        Ok(Ends { tx: Box::new(SigLink::Tx(peer.as_raw(), me)), rx: Box::new(SigLink::Rx(set)) })
    }

    fn cleanup(&self) {}
}

fn signal(_: usize, _: u32) -> Result<Arc<dyn Setup>> {
    Ok(Arc::new(Signals))
}
