//! The POSIX message queue calls of this crate, each printing itself for `--trace` as strace
//! shows the system call under it: glibc's mq_send and mq_receive are mq_timedsend and
//! mq_timedreceive with no timeout, mq_getattr is mq_getsetattr, and the kernel gets the queue's
//! name without its leading `/`.

use std::os::fd::{AsFd, AsRawFd};

use common::trace::{self, Try};
use nix::mqueue::{MQ_OFlag, MqAttr, MqdT};
use nix::sys::stat::Mode;

fn name(n: &str) -> String {
    trace::quote_whole(n.strip_prefix('/').unwrap_or(n).as_bytes())
}

fn attr(a: &MqAttr) -> String {
    let flags = if a.flags() & i64::from(libc::O_NONBLOCK) != 0 { "O_NONBLOCK" } else { "0" };
    format!("{{mq_flags={flags}, mq_maxmsg={}, mq_msgsize={}, mq_curmsgs={}}}", a.maxmsg(), a.msgsize(), a.curmsgs())
}

fn fd(mqd: &MqdT) -> i32 {
    mqd.as_fd().as_raw_fd()
}

/// mq_open; with `create` (O_CREAT among `flags`) the queue gets `mode` (less the umask) and `attr`.
pub(crate) fn open(n: &str, flags: MQ_OFlag, mode: Mode, create: Option<&MqAttr>) -> nix::Result<MqdT> {
    let r = nix::mqueue::mq_open(n, flags, mode, create);
    trace::call(&r, |r| {
        let f = trace::open_flags(flags.bits());
        let how = match create {
            Some(a) => format!(", {}, {}", trace::mode(mode.bits()), attr(a)),
            None => String::new(),
        };
        (format!("mq_open({}, {f}{how})", name(n)), r.or_errno(|q| fd(q).to_string()))
    });
    r
}

pub(crate) fn unlink(n: &str) -> nix::Result<()> {
    let r = nix::mqueue::mq_unlink(n);
    trace::call(&r, |r| (format!("mq_unlink({})", name(n)), r.zero()));
    r
}

/// mq_getattr: strace shows mq_getsetattr(fd, NULL, {what came back}).
pub(crate) fn getattr(mqd: &MqdT) -> nix::Result<MqAttr> {
    let r = nix::mqueue::mq_getattr(mqd);
    trace::call(&r, |r| {
        let shown = r.value().map_or_else(|| "0x?".into(), attr);
        (format!("mq_getsetattr({}, NULL, {shown})", fd(mqd)), r.or_errno(|_| "0".into()))
    });
    r
}

pub(crate) fn send(mqd: &MqdT, msg: &[u8], prio: u32, t: Try) -> nix::Result<()> {
    let r = nix::mqueue::mq_send(mqd, msg, prio);
    trace::call_try(t, &r, |r| {
        (format!("mq_timedsend({}, {}, {}, {prio}, NULL)", fd(mqd), trace::quote(msg), msg.len()), r.zero())
    });
    r
}

/// mq_receive into `buf`; strace shows the bytes received and the priority, or the pointers
/// passed when nothing came.
pub(crate) fn receive(mqd: &MqdT, buf: &mut [u8], prio: &mut u32, t: Try) -> nix::Result<usize> {
    let r = nix::mqueue::mq_receive(mqd, buf, prio);
    trace::call_try(t, &r, |r| {
        let (text, p) = match r.value() {
            Some(&n) => (trace::quote(&buf[..n]), format!("[{prio}]")),
            None => (trace::ptr(buf.as_ptr()), trace::ptr(std::ptr::from_ref(prio))),
        };
        (format!("mq_timedreceive({}, {text}, {}, {p}, NULL)", fd(mqd), buf.len()), r.decimal())
    });
    r
}
