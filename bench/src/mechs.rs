//! The mechanisms, each as a pair of one-way links between the two processes. Each uses its
//! crate's own library code (file_ipc, pipe_ipc's FIFOs, msgq_ipc, shm_ipc, signal_ipc) where the
//! workspace has it; the spin and futex rings and the socket are the bench's own.

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Arc;

use common::posix::Mapped;
use common::sysv::{self, Attached};
use common::{Error, Key, Result, SysResult};
use msgq_ipc::{PosixQueue, Queue};
use nix::unistd::Pid;
use shm_ipc::Channel;

use crate::ring::{self, Ring, Wait};

/// One direction of a mechanism: every message has the same size.
pub trait Link {
    fn send(&mut self, msg: &[u8]) -> Result<()>;
    /// Receives one message into `buf` (exactly `buf.len()` bytes).
    fn recv(&mut self, buf: &mut [u8]) -> Result<()>;
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
    /// Largest message it carries.
    pub max_size: fn() -> usize,
    /// A shared-memory row: compared with the hardware's limits.
    pub shm: bool,
    pub setup: fn(size: usize, key: u32) -> Result<Arc<dyn Setup>>,
}

pub const ALL: &[Mechanism] = &[
    Mechanism { id: "file", max_size: unlimited, shm: false, setup: file },
    Mechanism { id: "pipe", max_size: unlimited, shm: false, setup: pipe },
    Mechanism { id: "fifo", max_size: unlimited, shm: false, setup: fifo },
    Mechanism { id: "unix-socket", max_size: unlimited, shm: false, setup: unix_socket },
    Mechanism { id: "sysv-mq", max_size: sysv_mq_max, shm: false, setup: sysv_mq },
    Mechanism { id: "posix-mq", max_size: posix_mq_max, shm: false, setup: posix_mq },
    Mechanism { id: "sysv-shm-sem", max_size: unlimited, shm: true, setup: sysv_shm_sem },
    Mechanism { id: "sysv-shm-spin", max_size: unlimited, shm: true, setup: sysv_shm_spin },
    Mechanism { id: "posix-shm-futex", max_size: unlimited, shm: true, setup: posix_shm_futex },
    Mechanism { id: "signal", max_size: signal_max, shm: false, setup: signal },
];

/// The signal row's only size: the 8-byte `union sigval` that sigqueue carries.
pub const SIGNAL_SIZE: usize = 8;

fn unlimited() -> usize {
    usize::MAX
}

fn sysv_mq_max() -> usize {
    msgq_ipc::msgmax() - 1 // the crate sends the text and a NUL
}

fn posix_mq_max() -> usize {
    8191
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

struct Stream<S>(S);

impl<S: Read + Write> Link for Stream<S> {
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        self.0.write_all(msg).sys("write", "stream")
    }

    fn recv(&mut self, buf: &mut [u8]) -> Result<()> {
        // A stream keeps no boundaries (M6): read until the whole message is in.
        self.0.read_exact(buf).sys("read", "stream")
    }
}

struct Pipes {
    down: (std::os::fd::OwnedFd, std::os::fd::OwnedFd),
    up: (std::os::fd::OwnedFd, std::os::fd::OwnedFd),
}

impl Setup for Pipes {
    fn open(&self, side: Side, _: Pid) -> Result<Ends> {
        let file = |fd: &std::os::fd::OwnedFd| fd.try_clone().map(File::from).sys("dup", "pipe");
        let (tx, rx) = match side {
            Side::Parent => (file(&self.down.1)?, file(&self.up.0)?),
            Side::Child => (file(&self.up.1)?, file(&self.down.0)?),
        };
        Ok(Ends { tx: Box::new(Stream(tx)), rx: Box::new(Stream(rx)) })
    }

    fn cleanup(&self) {}
}

fn pipe(_: usize, _: u32) -> Result<Arc<dyn Setup>> {
    let down = nix::unistd::pipe().sys("pipe", "down")?;
    let up = nix::unistd::pipe().sys("pipe", "up")?;
    Ok(Arc::new(Pipes { down, up }))
}

struct Socket(UnixStream, UnixStream);

impl Setup for Socket {
    fn open(&self, side: Side, _: Pid) -> Result<Ends> {
        let s = if side == Side::Parent { &self.0 } else { &self.1 };
        let tx = s.try_clone().sys("dup", "socket")?;
        let rx = s.try_clone().sys("dup", "socket")?;
        Ok(Ends { tx: Box::new(Stream(tx)), rx: Box::new(Stream(rx)) })
    }

    fn cleanup(&self) {}
}

fn unix_socket(_: usize, _: u32) -> Result<Arc<dyn Setup>> {
    let (a, b) = UnixStream::pair().sys("socketpair", "AF_UNIX")?;
    Ok(Arc::new(Socket(a, b)))
}

/// A directory of the bench's own for the file and FIFO rows.
fn scratch_dir(key: u32) -> Result<PathBuf> {
    let dir = common::paths::user_dir()?.join(format!("bench-{key:x}"));
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
                let tx = pipe_ipc::fifo::open_end(&down, true)?;
                (tx, pipe_ipc::fifo::open_end(&up, false)?)
            }
            Side::Child => {
                let rx = pipe_ipc::fifo::open_end(&down, false)?;
                (pipe_ipc::fifo::open_end(&up, true)?, rx)
            }
        };
        Ok(Ends { tx: Box::new(Stream(tx)), rx: Box::new(Stream(rx)) })
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
        let (tx, rx) = pick(side, self.0.join("down"), self.0.join("up"));
        let (tx, rx) = (file_ipc::Writer::new(&tx, 0o600)?, file_ipc::Reader::new(&rx)?);
        Ok(Ends { tx: Box::new(FileLink::Tx(tx)), rx: Box::new(FileLink::Rx(rx)) })
    }

    fn cleanup(&self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn file(_: usize, key: u32) -> Result<Arc<dyn Setup>> {
    Ok(Arc::new(Files(scratch_dir(key)?)))
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
        self.queue.send(self.mtype, msg, true, &mut || {})
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
        let _ = msgq_ipc::clean(self.0, false);
    }
}

fn sysv_mq(_: usize, key: u32) -> Result<Arc<dyn Setup>> {
    let key = Key::new(key);
    Queue::get_or_create(key, 0o600)?;
    Ok(Arc::new(SysvMq(key)))
}

/// Two POSIX queues (down, up): they have priorities, not types.
struct PosixMq(Key, Key);

impl Setup for PosixMq {
    fn open(&self, side: Side, _: Pid) -> Result<Ends> {
        let (tx, rx) = pick(side, self.0, self.1);
        let link = |key| {
            Ok::<_, Error>(Box::new(MqLink { queue: Queue::Posix(PosixQueue::open(key, 0o600, false)?.0), mtype: 0 }))
        };
        Ok(Ends { tx: link(tx)?, rx: link(rx)? })
    }

    fn cleanup(&self) {
        let _ = msgq_ipc::clean(self.0, true);
        let _ = msgq_ipc::clean(self.1, true);
    }
}

fn posix_mq(_: usize, key: u32) -> Result<Arc<dyn Setup>> {
    let (down, up) = (Key::new(key), Key::new(key + 1));
    make_both(PosixMq(down, up), |m, i| PosixQueue::open([m.0, m.1][i], 0o600, true).map(drop))
}

// ---- shared memory with semaphores: shm_ipc -------------------------------------------------

struct ShmLink(Channel);

impl Link for ShmLink {
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        self.0.send(msg, &mut || {})
    }

    fn recv(&mut self, buf: &mut [u8]) -> Result<()> {
        copy_exact(&self.0.recv(&mut || {})?, buf)
    }
}

/// Two of the note's segments (down, up), each with its semaphore pair, sized for the message
/// and its NUL.
struct SysvShmSem {
    keys: (Key, Key),
    seg: usize,
}

impl Setup for SysvShmSem {
    fn open(&self, side: Side, _: Pid) -> Result<Ends> {
        let (tx, rx) = pick(side, self.keys.0, self.keys.1);
        Ok(Ends {
            tx: Box::new(ShmLink(Channel::open_sysv_sized(tx, 0o600, true, false, self.seg)?)),
            rx: Box::new(ShmLink(Channel::open_sysv_sized(rx, 0o600, false, false, self.seg)?)),
        })
    }

    fn cleanup(&self) {
        let _ = shm_ipc::clean(self.keys.0, false);
        let _ = shm_ipc::clean(self.keys.1, false);
    }
}

fn sysv_shm_sem(size: usize, key: u32) -> Result<Arc<dyn Setup>> {
    let made = SysvShmSem { keys: (Key::new(key), Key::new(key + 1)), seg: size + 1 };
    make_both(made, |m, i| Channel::open_sysv_sized([m.keys.0, m.keys.1][i], 0o600, true, true, m.seg).map(drop))
}

// ---- shared-memory rings: spin (SysV) and futex (POSIX) -------------------------------------

impl<M: common::Memory> Link for Ring<M> {
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        Ring::send(self, msg);
        Ok(())
    }

    fn recv(&mut self, buf: &mut [u8]) -> Result<()> {
        Ring::recv(self, buf);
        Ok(())
    }
}

/// Two SysV segments (down, up), each one ring.
struct SysvSpin {
    ids: (i32, i32),
    size: usize,
}

impl Setup for SysvSpin {
    fn open(&self, side: Side, _: Pid) -> Result<Ends> {
        let (tx, rx) = pick(side, self.ids.0, self.ids.1);
        let len = ring::bytes(self.size);
        let ring = |id| -> Result<Box<dyn Link>> {
            let mem = Attached::attach(id, len, false).sys("shmat", format!("segment id {id}"))?;
            Ok(Box::new(Ring::new(mem, self.size, Wait::Spin)))
        };
        Ok(Ends { tx: ring(tx)?, rx: ring(rx)? })
    }

    fn cleanup(&self) {
        let _ = sysv::shm_remove(self.ids.0);
        let _ = sysv::shm_remove(self.ids.1);
    }
}

fn sysv_shm_spin(size: usize, key: u32) -> Result<Arc<dyn Setup>> {
    let len = ring::bytes(size);
    let make = |k: u32| {
        sysv::shmget(Key::new(k), len, libc::IPC_CREAT | libc::IPC_EXCL | 0o600).sys("shmget", format!("key {:#x}", k))
    };
    let down = make(key)?;
    let up = make(key + 1).inspect_err(|_| {
        let _ = sysv::shm_remove(down);
    })?;
    Ok(Arc::new(SysvSpin { ids: (down, up), size }))
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
            let (mem, _) = Mapped::open(name, len, 0o600, false).sys("shm_open", name)?;
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
    let made = PosixFutex { names: (format!("/bench-{key:x}-down"), format!("/bench-{key:x}-up")), size };
    make_both(made, |m, i| {
        let name = [&m.names.0, &m.names.1][i];
        Mapped::open(name, ring::bytes(m.size), 0o600, true).map(drop).map_err(|e| Error::sys("shm_open", name, e))
    })
}

// ---- signals: signal_ipc's sigqueue and sigwaitinfo -----------------------------------------

/// The real-time signal the signal row uses. The bench blocks it in every thread at start, so
/// only sigwaitinfo takes it.
pub fn bench_signal() -> i32 {
    signal_ipc::sys::rtmin()
}

enum SigLink {
    Tx(i32),
    Rx(libc::sigset_t),
}

impl Link for SigLink {
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        let SigLink::Tx(peer) = *self else { return Err(Error::Failed("send on a receiving link".into())) };
        let word = usize::from_le_bytes(msg.try_into().map_err(|_| Error::Failed("a signal carries 8 bytes".into()))?);
        loop {
            match signal_ipc::sys::sigqueue_word(peer, bench_signal(), word) {
                // The peer's pending queue is full (RLIMIT_SIGPENDING): let it drain.
                Err(nix::errno::Errno::EAGAIN) => std::thread::yield_now(),
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
        Ok(Ends { tx: Box::new(SigLink::Tx(peer.as_raw())), rx: Box::new(SigLink::Rx(set)) })
    }

    fn cleanup(&self) {}
}

fn signal(_: usize, _: u32) -> Result<Arc<dyn Setup>> {
    Ok(Arc::new(Signals))
}
