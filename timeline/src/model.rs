//! From what the run printed to what the chart draws: each call as a short label, the object's
//! state where a call shows or changes it, the spans a side waited, and the hand-overs (which
//! call gave each message, which took it).

use std::collections::HashSet;

use crate::parse::{self, Call};
use crate::run::{Seen, Side, ended};
use crate::scenario::{Kind, Scenario};

/// The widest label a column of the text chart holds.
pub const LABEL: usize = 30;

/// A call shorter than this is not drawn as a wait.
const WAITED: u64 = 1_000_000;

#[derive(Clone, Debug)]
pub struct Event {
    pub side: Side,
    /// Where it sits in time (ns): when it returned.
    pub at: u64,
    /// The short label: `msgrcv → "one"`.
    pub label: String,
    /// The whole trace line (for the SVG's tooltip), or what the event is.
    pub full: String,
    /// How long it waited, if it did (≥ 1 ms).
    pub waited: Option<u64>,
    /// The object's state after it, if it shows or changes it.
    pub state: Option<String>,
    /// The side's end (`exit 0`), or a signal timeline sent.
    pub end: bool,
    /// Not the side's own: timeline's SIGINT, shown on the writer's side.
    pub outside: bool,
}

/// A message handed over: from event `from` to event `to` (indices into [`Chart::events`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Arrow {
    pub from: usize,
    pub to: usize,
    pub text: String,
}

/// Everything the chart shows, in time order.
#[derive(Debug)]
pub struct Chart {
    pub title: String,
    pub object: String,
    pub pids: [Option<u32>; 2],
    pub events: Vec<Event>,
    pub arrows: Vec<Arrow>,
    /// Spans (ns) each side waited: a wait's call, and from a waiting line or a timed-out try to
    /// the side's next call.
    pub waits: Vec<(Side, u64, u64)>,
    /// What the reader printed.
    pub printed: String,
    pub t0: u64,
    /// A line under the chart that names what its labels abbreviate.
    pub legend: Option<String>,
    /// The middle column's head.
    pub column: String,
}

/// What a message-carrying call does.
enum Role {
    None,
    /// Hands these messages over (their texts, or None where the call does not show them).
    Give(Vec<Option<String>>),
    Take(Vec<Option<String>>),
}

/// What a side keeps between its calls: the descriptors of the FIFO.
#[derive(Default)]
struct SideState {
    fifo_fds: HashSet<String>,
}

/// The object's state, as the calls show it.
#[derive(Default)]
struct Object {
    queued: i64,
    bytes: i64,
    sems: [i64; 2],
    pending: i64,
}

pub fn build(s: &Scenario, object: String, seen: &[Seen]) -> Chart {
    let mut events = Vec::new();
    let mut roles = Vec::new();
    let mut waits = Vec::new();
    let mut pids = [None, None];
    let mut printed = String::new();
    let mut sides = [SideState::default(), SideState::default()];
    // Calls first, each side in its own order; states need the merged order, below.
    let mut calls: Vec<(Side, Call)> = Vec::new();
    let mut marks: Vec<(Side, u64, Mark)> = Vec::new();
    for x in seen {
        match x {
            Seen::Line(side, at, text) => match parse::line(text) {
                Some(c) => {
                    pids[*side as usize] = Some(c.pid);
                    calls.push((*side, c));
                }
                None if crate::run::is_waiting(*side, text) => marks.push((*side, *at, Mark::Waiting)),
                None => {}
            },
            Seen::Out(Side::Reader, text) => printed.push_str(text),
            Seen::Out(..) => {}
            Seen::End(side, at, status) => marks.push((*side, *at, Mark::End(ended(status)))),
            Seen::Stopped(side, at) => marks.push((*side, *at, Mark::Stopped)),
        }
    }
    let pid_names: Vec<String> = pids.iter().flatten().map(u32::to_string).collect();
    // Each call at its place in time: a call that can wait where it returned, so that the calls
    // that change the object (a semop applied after a short wait) come in the order they took
    // effect; the others where they were made.
    // Roles first, each side in its own order (a FIFO's descriptors are a side's own).
    let roles_of: Vec<Role> =
        calls.iter().map(|(side, c)| role(s.kind, *side, c, &mut sides[*side as usize])).collect();
    let place = places(s.kind, &calls, &roles_of);
    let mut timed: Vec<(u64, Item)> = Vec::new();
    for (((side, c), role), at) in calls.into_iter().zip(roles_of).zip(place) {
        let waited = c.took.filter(|&t| t >= WAITED);
        timed.push((at, Item::Call(side, c, waited, role)));
    }
    for (side, at, m) in marks {
        timed.push((at, Item::Mark(side, m)));
    }
    timed.sort_by_key(|(at, _)| *at);
    let t0 = timed.first().map_or(0, |(at, _)| *at);

    let mut obj = Object::default();
    // A side waits from a waiting line or a timed-out try until its next call begins.
    let mut waiting_since: [Option<u64>; 2] = [None, None];
    for (at, item) in timed {
        match item {
            Item::Call(side, c, waited, role) => {
                let i = side as usize;
                if let Some(since) = waiting_since[i].take() {
                    waits.push((side, since, c.at.max(since)));
                }
                if waited.is_some() {
                    waits.push((side, c.at, c.end()));
                    if matches!(c.errno(), Some("EAGAIN" | "ETIMEDOUT")) {
                        waiting_since[i] = Some(c.end());
                    }
                }
                let state = state(s.kind, side, &c, &role, &mut obj);
                let label = no_pids(&label(s.kind, &c, waited), &pid_names);
                let full = format!("[{} {}] {}({}) = {}", c.bin, c.pid, c.name, c.args.join(", "), c.ret);
                events.push(Event { side, at, label, full, waited, state, end: false, outside: false });
                roles.push(role);
            }
            Item::Mark(side, Mark::Waiting) => waiting_since[side as usize] = Some(at),
            Item::Mark(side, Mark::End(how)) => {
                if let Some(since) = waiting_since[side as usize].take() {
                    waits.push((side, since, at));
                }
                let full = format!("{} {how}", side.name());
                events.push(Event { side, at, label: how, full, waited: None, state: None, end: true, outside: false });
                roles.push(Role::None);
            }
            Item::Mark(side, Mark::Stopped) => {
                let label = "SIGINT (timeline's kill)".to_string();
                let full = format!("timeline sends SIGINT to the {}", side.name());
                let side = Side::Writer;
                events.push(Event { side, at, label, full, waited: None, state: None, end: false, outside: true });
                roles.push(Role::Give(vec![Some("SIGINT".into())]));
            }
        }
    }
    // The stop's SIGINT is taken by the reader's first line after it.
    if let Some(k) = events.iter().position(|e| e.outside)
        && let Some(j) = (k + 1..events.len()).find(|&j| events[j].side == Side::Reader)
    {
        roles[j] = Role::Take(vec![Some("SIGINT".into())]);
    }
    let arrows = arrows(s, &events, &roles);
    let first = if s.run.writer_first { "writer first" } else { "reader first" };
    let title = format!("timeline {}: {}, {first}", s.kind.command(), object);
    let legend = (s.kind == Kind::Shm).then(|| "F: semaphore FULL (0), B: semaphore BUSY (1)".to_string());
    let column = s.column().to_string();
    Chart { title, object, pids, events, arrows, waits, printed, t0, legend, column }
}

enum Mark {
    Waiting,
    End(String),
    Stopped,
}

enum Item {
    Call(Side, Call, Option<u64>, Role),
    Mark(Side, Mark),
}

/// Where each call sits in time: where it returned, except a call that hands a message over and
/// returned after the call that took it (its sender was scheduled late): the message was in the
/// object before it was taken, so the give sits just before its take and no arrow goes up.
fn places(kind: Kind, calls: &[(Side, Call)], roles: &[Role]) -> Vec<u64> {
    let mut place: Vec<u64> = calls.iter().map(|(_, c)| c.end()).collect();
    let messages = |side: Side, give: bool| -> Vec<usize> {
        let mut v = Vec::new();
        for (i, r) in roles.iter().enumerate() {
            match r {
                Role::Give(m) if give && calls[i].0 == side => v.extend(std::iter::repeat_n(i, m.len())),
                Role::Take(m) if !give && calls[i].0 != side => v.extend(std::iter::repeat_n(i, m.len())),
                _ => {}
            }
        }
        v
    };
    for giver in [Side::Writer, Side::Reader] {
        let mut after = 0; // the taker's calls before this are earlier messages'
        for (g, t) in messages(giver, true).into_iter().zip(messages(giver, false)) {
            // The first of the taker's calls to see the message: the take, or a look before it
            // (the FIFO reader's tee).
            let seen = (after..=t).find(|&j| calls[j].0 == calls[t].0 && (j == t || looks(kind, &calls[j].1)));
            let seen = calls[seen.unwrap_or(t)].1.end().saturating_sub(1);
            place[g] = place[g].min(seen).max(calls[g].1.at);
            after = t + 1;
        }
    }
    place
}

/// Whether `c` sees a message before taking it: the FIFO reader copies it with tee before it reads.
fn looks(kind: Kind, c: &Call) -> bool {
    kind == Kind::Fifo && c.name == "tee" && c.ok()
}

/// Pairs each message given with the one taken, in order, each direction apart: every pair
/// delivers at most once and in order. A take that shows no text gets the scenario's.
fn arrows(s: &Scenario, events: &[Event], roles: &[Role]) -> Vec<Arrow> {
    let texts = s.texts();
    let mut out = Vec::new();
    // Given by the writer (or timeline) and taken by the reader, then back (request's replies).
    for giver in [Side::Writer, Side::Reader] {
        let mut given: Vec<(usize, Option<String>)> = Vec::new();
        let mut taken: Vec<(usize, Option<String>)> = Vec::new();
        for (i, r) in roles.iter().enumerate() {
            match r {
                Role::Give(m) if events[i].side == giver => given.extend(m.iter().map(|t| (i, t.clone()))),
                Role::Take(m) if events[i].side != giver => taken.extend(m.iter().map(|t| (i, t.clone()))),
                _ => {}
            }
        }
        for (k, ((from, gt), (to, tt))) in given.into_iter().zip(taken).enumerate() {
            let text = tt.or(gt).unwrap_or_else(|| texts.get(k).cloned().unwrap_or_default());
            out.push(Arrow { from, to, text });
        }
    }
    out.sort_by_key(|a| (a.to, a.from));
    out
}

/// The text of a message as a call shows it: NULs at the end dropped.
fn text(bytes: &[u8]) -> String {
    let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// The lines of a stream's bytes (a pipe carries lines): complete ones only.
fn lines(bytes: &[u8]) -> Vec<Option<String>> {
    let n = bytes.iter().filter(|&&b| b == b'\n').count();
    let mut v: Vec<Option<String>> =
        bytes.split(|&b| b == b'\n').take(n).map(|l| Some(String::from_utf8_lossy(l).into_owned())).collect();
    v.truncate(n);
    v
}

fn role(kind: Kind, side: Side, c: &Call, me: &mut SideState) -> Role {
    // sigsuspend "fails" when the handler ran: that is its taking the signal.
    let handled = c.name == "rt_sigsuspend" && c.errno() == Some("ERESTARTNOHAND");
    if !c.ok() && !handled {
        return Role::None;
    }
    let writer = side == Side::Writer;
    let mtext = |n: usize| parse::field(c.arg(n), "mtext").and_then(|q| parse::unquote(&q)).map(|b| text(&b));
    match (kind, c.name.as_str()) {
        (Kind::Msgq | Kind::Request, "msgsnd") => Role::Give(vec![mtext(1)]),
        (Kind::Msgq | Kind::Request, "msgrcv") => Role::Take(vec![mtext(1)]),
        (Kind::MsgqPosix, "mq_timedsend") => Role::Give(vec![parse::unquote(c.arg(1)).map(|b| text(&b))]),
        (Kind::MsgqPosix, "mq_timedreceive") => Role::Take(vec![parse::unquote(c.arg(1)).map(|b| text(&b))]),
        (Kind::Shm, "semtimedop") => {
            let full = sem_ops(c.arg(1)).iter().find(|(n, _)| *n == 0).map(|(_, op)| *op);
            match full {
                Some(1) if writer => Role::Give(vec![None]),
                Some(-1) if !writer => Role::Take(vec![None]),
                _ => Role::None,
            }
        }
        (Kind::ShmPosix, "futex") if writer && c.arg(1) == "FUTEX_WAKE" => Role::Give(vec![None]),
        // The reader copies under its lock on byte 2, after the writer's wake (or finding FULL).
        (Kind::ShmPosix, "fcntl") if !writer && c.arg(1) == "F_OFD_SETLKW" && c.arg(2).contains("l_start=2") => {
            Role::Take(vec![None])
        }
        (Kind::Fifo, "openat") => {
            if c.arg(1).ends_with(".fifo\"") && !c.arg(2).contains("O_PATH") {
                me.fifo_fds.insert(c.ret.clone());
            }
            Role::None
        }
        (Kind::Fifo, "close") => {
            me.fifo_fds.remove(c.arg(0));
            Role::None
        }
        (Kind::Fifo, "write") if me.fifo_fds.contains(c.arg(0)) => stream(c, true),
        (Kind::Fifo, "read") if me.fifo_fds.contains(c.arg(0)) => stream(c, false),
        (Kind::Pipe, "write") if writer && c.arg(0) == "1" => stream(c, true),
        (Kind::Pipe, "read") if !writer && c.arg(0) == "0" => stream(c, false),
        (Kind::File, "renameat2") if writer => Role::Give(vec![None]),
        (Kind::File, "unlinkat") if !writer && takes_message(c) => Role::Take(vec![None]),
        (Kind::Signal, "kill" | "rt_sigqueueinfo") if writer => Role::Give(vec![None]),
        (Kind::Signal, "rt_sigsuspend" | "rt_sigtimedwait") if !writer => Role::Take(vec![None]),
        _ => Role::None,
    }
}

fn stream(c: &Call, give: bool) -> Role {
    let l = parse::unquote(c.arg(1)).map(|b| lines(&b)).unwrap_or_default();
    if l.is_empty() {
        Role::None
    } else if give {
        Role::Give(l)
    } else {
        Role::Take(l)
    }
}

/// `[{sem_num=0, sem_op=-1, sem_flg=0}, ...]` as (num, op) pairs.
fn sem_ops(arg: &str) -> Vec<(i64, i64)> {
    let inner = arg.strip_prefix('[').and_then(|a| a.strip_suffix(']')).unwrap_or("");
    parse::split_args(inner)
        .iter()
        .filter_map(|op| {
            let n = parse::field(op, "sem_num")?.parse().ok()?;
            let v = parse::field(op, "sem_op")?.parse().ok()?;
            Some((n, v))
        })
        .collect()
}

/// The names of shm-ipc's semaphores.
/// The names of shm-ipc's semaphores: F (FULL, sem 0) and B (BUSY, sem 1), short so that a
/// semop's three operations fit a column.
const SEMS: [&str; 2] = ["F", "B"];

fn sems(v: &[i64; 2]) -> String {
    format!("F={} B={}", v[0], v[1])
}

fn queued(n: i64) -> String {
    format!("{n} queued")
}

/// The object's state after `c`, where the call shows or changes it.
fn state(kind: Kind, side: Side, c: &Call, role: &Role, o: &mut Object) -> Option<String> {
    let ok = c.ok();
    let creating = c.args.iter().any(|a| a.contains("O_CREAT") || a.contains("IPC_CREAT"));
    match (kind, c.name.as_str()) {
        (Kind::Msgq | Kind::Request, "msgget") if ok && creating => Some(queued(o.queued)),
        (Kind::Msgq | Kind::Request, "msgsnd") if ok => {
            o.queued += 1;
            Some(queued(o.queued))
        }
        (Kind::Msgq | Kind::Request, "msgrcv") if ok => {
            o.queued -= 1;
            Some(queued(o.queued))
        }
        (Kind::Msgq | Kind::Request, "msgctl") if ok => match c.arg(1) {
            "IPC_STAT" => {
                o.queued = parse::field(c.arg(2), "msg_qnum").and_then(|n| n.parse().ok()).unwrap_or(o.queued);
                let closed = parse::field(c.arg(2), "msg_qbytes").as_deref() == Some("0");
                Some(if closed { format!("{}, closed", o.queued) } else { queued(o.queued) })
            }
            "IPC_SET" => Some("closed".into()),
            "IPC_RMID" => Some("removed".into()),
            _ => None,
        },
        (Kind::MsgqPosix, "mq_open") if ok && creating => Some(queued(o.queued)),
        (Kind::MsgqPosix, "mq_timedsend") if ok => {
            o.queued += 1;
            Some(queued(o.queued))
        }
        (Kind::MsgqPosix, "mq_timedreceive") if ok => {
            o.queued -= 1;
            Some(queued(o.queued))
        }
        (Kind::MsgqPosix, "mq_getsetattr") if ok => {
            o.queued = parse::field(c.arg(2), "mq_curmsgs").and_then(|n| n.parse().ok()).unwrap_or(o.queued);
            Some(queued(o.queued))
        }
        (Kind::MsgqPosix, "mq_unlink") if ok => Some("unlinked".into()),
        (Kind::Shm, "semget") if ok && creating => Some(sems(&o.sems)),
        (Kind::Shm, "semtimedop") if ok => {
            for (n, op) in sem_ops(c.arg(1)) {
                if let Some(v) = o.sems.get_mut(n as usize) {
                    *v += op;
                }
            }
            Some(sems(&o.sems))
        }
        (Kind::Shm, "semctl") if ok && c.arg(2) == "GETVAL" => {
            let n: usize = c.arg(1).parse().unwrap_or(0);
            if let (Some(v), Ok(val)) = (o.sems.get_mut(n), c.ret.parse()) {
                *v = val;
            }
            Some(sems(&o.sems))
        }
        (Kind::Shm, "shmctl") if ok && c.arg(1) == "IPC_RMID" => Some("seg removed".into()),
        (Kind::Shm, "shmctl") if ok && c.arg(1) == "IPC_STAT" => {
            parse::field(c.arg(2), "shm_nattch").map(|n| format!("{n} attached"))
        }
        (Kind::Shm, "semctl") if ok && c.arg(2) == "IPC_RMID" => Some("sems removed".into()),
        (Kind::ShmPosix, "shm_open") if ok && creating => Some("made, EMPTY".into()),
        (Kind::ShmPosix, "futex") if c.arg(1) == "FUTEX_WAIT" => Some(format!("word={}", c.arg(2))),
        (Kind::ShmPosix, "shm_unlink") if ok => Some("unlinked".into()),
        (Kind::Fifo, "mknodat") if ok => Some("FIFO made".into()),
        (Kind::Fifo | Kind::Pipe, "write" | "read") if !matches!(role, Role::None) => {
            let n: i64 = c.ret.parse().unwrap_or(0);
            o.bytes += if c.name == "write" { n } else { -n };
            Some(format!("{} bytes", o.bytes))
        }
        (Kind::Fifo, "unlink") if ok => Some("FIFO removed".into()),
        (Kind::File, "renameat2") if ok => Some("message file".into()),
        (Kind::File, "unlinkat") if ok && takes_message(c) => Some("no file".into()),
        (Kind::Signal, "kill" | "rt_sigqueueinfo") if ok => {
            o.pending += 1;
            Some(format!("{} pending", o.pending))
        }
        (Kind::Signal, "rt_sigsuspend" | "rt_sigtimedwait") if side == Side::Reader => {
            o.pending = (o.pending - 1).max(0);
            Some(format!("{} pending", o.pending))
        }
        _ => None,
    }
}

/// file-ipc's unlinkat of the message itself (a reader's take), not of a file or directory of
/// its own (`.m.4242.d/tmp`, `.m.4242.d`).
fn takes_message(c: &Call) -> bool {
    c.arg(2) == "0" && !c.arg(1).trim_matches('"').ends_with("/tmp")
}

/// The file name of a quoted path, its private directory (`.m.4242.d`) or the file in it
/// (`.m.4242.d/tmp`) down to what it is: `private`, `tmp`.
fn base(quoted: &str) -> String {
    let p = quoted.trim_matches('"');
    let name = p.rsplit('/').next().unwrap_or(p);
    if name.starts_with('.') && name.ends_with(".d") { "private".into() } else { name.to_string() }
}

/// Flags without their prefixes and the ones every call has: `RDONLY|NONBLOCK`.
fn short_flags(f: &str, prefix: &str) -> String {
    f.split('|')
        .filter(|x| !matches!(*x, "O_CLOEXEC" | "O_NOFOLLOW") && !x.starts_with('0'))
        .map(|x| x.strip_prefix(prefix).unwrap_or(x))
        .collect::<Vec<_>>()
        .join("|")
}

/// A message for a label: quoted, cut to `max` characters.
fn msg(t: &str, max: usize) -> String {
    let t = t.replace('\n', "\\n");
    if t.chars().count() > max {
        format!("\"{}…\"", t.chars().take(max - 1).collect::<String>())
    } else {
        format!("\"{t}\"")
    }
}

fn label(kind: Kind, c: &Call, waited: Option<u64>) -> String {
    let a = |n| c.arg(n);
    let ok = c.ok();
    let mtext = |n| {
        parse::field(a(n), "mtext").and_then(|q| parse::unquote(&q)).map(|b| msg(&text(&b), 12)).unwrap_or_default()
    };
    let base_label = match c.name.as_str() {
        "msgget" | "semget" | "shmget" => {
            let f = a(if c.name == "msgget" { 1 } else { 2 });
            let f = short_flags(f, "IPC_");
            if f.is_empty() { c.name.clone() } else { format!("{} {f}", c.name) }
        }
        "msgsnd" => format!("msgsnd {}", mtext(1)),
        "msgrcv" if ok => format!("msgrcv → {}", mtext(1)),
        "msgrcv" if a(4).contains("IPC_NOWAIT") => "msgrcv NOWAIT".into(),
        "msgctl" | "shmctl" => {
            let cmd = a(1).trim_start_matches("IPC_");
            if a(1) == "IPC_SET" {
                let q = parse::field(a(2), "msg_qbytes").unwrap_or_default();
                format!("msgctl SET qbytes={q}")
            } else {
                format!("{} {cmd}", c.name)
            }
        }
        "semctl" => format!("semctl {} {}", sem_name(kind, a(1)), a(2).trim_start_matches("IPC_")),
        "semtimedop" => {
            let ops: Vec<String> = sem_ops(a(1))
                .iter()
                .map(|&(n, op)| {
                    let name = sem_name(kind, &n.to_string());
                    match op {
                        0 => format!("{name}=0"),
                        o if o > 0 => format!("{name}+{o}"),
                        o => format!("{name}{o}"),
                    }
                })
                .collect();
            format!("semop {}", ops.join(" "))
        }
        "shmat" => {
            if a(2).contains("RDONLY") {
                "shmat RDONLY".into()
            } else {
                "shmat".into()
            }
        }
        "shm_open" | "mq_open" => {
            let f = short_flags(a(1), "O_").replace("RDWR|", "").replace("|NONBLOCK", "");
            format!("{} {f}", c.name)
        }
        "mq_timedsend" => format!("mq_send {}", parse::unquote(a(1)).map(|b| msg(&text(&b), 12)).unwrap_or_default()),
        "mq_timedreceive" if ok => {
            format!("mq_receive → {}", parse::unquote(a(1)).map(|b| msg(&text(&b), 10)).unwrap_or_default())
        }
        "mq_timedreceive" => "mq_receive".into(),
        "mq_getsetattr" => "mq_getattr".into(),
        "fcntl" if a(1).starts_with("F_OFD_") => {
            let ty = parse::field(a(2), "l_type").unwrap_or_default();
            let ty = ty.trim_start_matches("F_").trim_end_matches("LCK");
            let at = parse::field(a(2), "l_start").unwrap_or_default();
            format!("fcntl {} {ty}@{at}", a(1).trim_start_matches("F_OFD_"))
        }
        "futex" => {
            let op = a(1).trim_start_matches("FUTEX_");
            if op == "WAIT" { format!("futex WAIT {}", a(2)) } else { format!("futex {op} → {}", c.ret) }
        }
        "newfstatat" => "fstat".into(),
        "ftruncate" => format!("ftruncate {}", a(1)),
        "fchmod" | "fchmodat" => format!("{} {}", c.name, a(c.args.len().saturating_sub(1))),
        "mknodat" => format!("mknod {} FIFO", base(a(1))),
        "openat" if a(2).contains("O_DIRECTORY") => "open dir".into(),
        "openat" => format!("open {} {}", base(a(1)), short_flags(a(2), "O_")),
        "read" | "write" => {
            // Text as text; anything else (inotify's events) by its kind.
            let data = parse::unquote(a(1)).map(|b| {
                let text = b.iter().all(|&c| c == b'\n' || (0x20..0x7f).contains(&c));
                if text { msg(&String::from_utf8_lossy(&b), 12) } else { "binary".into() }
            });
            match data {
                Some(d) if ok && c.ret != "0" => {
                    if c.name == "read" {
                        format!("read {} → {d}", a(0))
                    } else {
                        format!("write {} {d}", a(0))
                    }
                }
                Some(_) if c.ret == "0" => format!("{} {} → EOF", c.name, a(0)),
                _ => format!("{} {}", c.name, a(0)),
            }
        }
        "tee" => format!("tee {}→{}", a(0), a(1)),
        "close" => format!("close {}", a(0)),
        // Their names hold the run's key.
        "shm_unlink" | "mq_unlink" => c.name.clone(),
        "unlinkat" if a(2) == "AT_REMOVEDIR" => format!("rmdir {}", base(a(1))),
        "unlink" | "unlinkat" => {
            let p = if c.name == "unlinkat" { a(1) } else { a(0) };
            format!("{} {}", if c.name == "unlinkat" { "unlink" } else { &c.name }, base(p))
        }
        "renameat2" => format!("rename {} → {}", base(a(1)), base(a(3))),
        "mkdirat" => format!("mkdir {}", base(a(1))),
        "flock" => format!("flock {}", a(1)),
        "inotify_add_watch" => "inotify_add_watch".into(),
        "rt_sigprocmask" => format!("sigprocmask {} {}", a(0).trim_start_matches("SIG_"), a(1)),
        "rt_sigaction" => format!("sigaction {}", a(0)),
        "rt_sigsuspend" => "sigsuspend".into(),
        "rt_sigtimedwait" if ok => format!("sigtimedwait → {}", c.ret.split(['(', ')']).nth(1).unwrap_or("")),
        "kill" => format!("kill {}", a(1)),
        _ => c.name.clone(),
    };
    let result = match c.errno() {
        Some("ERESTARTNOHAND") => " → handler ran".to_string(),
        Some(e) => format!(" → {e}"),
        None => String::new(),
    };
    let took = waited.map(|t| format!(" {}", duration(t))).unwrap_or_default();
    // The result and the wait are what a reader looks for: the call's details give way first,
    // cut alike whether it waited or not (a call that can wait always keeps room for its length).
    let reserve = if c.took.is_some() { " 999ms".len() } else { 0 };
    let room = LABEL.saturating_sub(result.chars().count() + reserve);
    format!("{}{result}{took}", crate::chart::fit(&base_label, room))
}

fn sem_name(kind: Kind, n: &str) -> String {
    match (kind, n.parse::<usize>()) {
        (Kind::Shm, Ok(i)) if i < SEMS.len() => SEMS[i].to_string(),
        _ => format!("sem{n}"),
    }
}

/// `302ms`, `1.2s`, `850µs`.
pub fn duration(ns: u64) -> String {
    if ns >= 1_000_000_000 {
        format!("{:.1}s", ns as f64 / 1e9)
    } else if ns >= 1_000_000 {
        format!("{}ms", ns / 1_000_000)
    } else {
        format!("{}µs", ns / 1000)
    }
}

/// The label with the pair's PIDs (in temporary file names) as `PID`.
fn no_pids(label: &str, pids: &[String]) -> String {
    pids.iter().fold(label.to_string(), |l, p| l.replace(p.as_str(), "PID"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(line: &str) -> Call {
        parse::line(line).unwrap()
    }

    #[test]
    fn labels_are_short_and_free_of_ids() {
        let c = call(
            r#"1.000000 [reader 9] msgrcv(4128769, {mtype=1, mtext="Hello Message Queue\0\0"...}, 8192, 1, 0) = 20 <0.302957>"#,
        );
        assert_eq!(label(Kind::Msgq, &c, Some(302_957_000)), "msgrcv → \"Hello Messa…\" 302ms");
        let c = call("1.000000 [writer 9] msgget(0x71000001, IPC_CREAT|IPC_EXCL|0600) = -1 EEXIST (File exists)");
        assert_eq!(label(Kind::Msgq, &c, None), "msgget CREAT|EXCL → EEXIST");
        let c = call(
            "1.000000 [reader 9] semtimedop(5, [{sem_num=0, sem_op=-1, sem_flg=0}, {sem_num=1, sem_op=0, sem_flg=0}, {sem_num=1, sem_op=1, sem_flg=SEM_UNDO}], 3, NULL) = 0",
        );
        assert_eq!(label(Kind::Shm, &c, None), "semop F-1 B=0 B+1");
    }

    /// A sender scheduled late returns after the reader took its message (seen in about a third
    /// of reader-first msgq runs): the send still sits before the take.
    #[test]
    fn a_give_that_returned_after_its_take_sits_before_it() {
        let calls = vec![
            (
                Side::Reader,
                call(r#"1.000000 [reader 9] msgrcv(4, {mtype=1, mtext="one\0"}, 8192, 1, 0) = 4 <0.500000>"#),
            ),
            (Side::Writer, call(r#"1.400000 [writer 8] msgsnd(4, {mtype=1, mtext="one\0"}, 4, 0) = 0 <0.200000>"#)),
        ];
        let mut sides = [SideState::default(), SideState::default()];
        let roles: Vec<Role> =
            calls.iter().map(|(side, c)| role(Kind::Msgq, *side, c, &mut sides[*side as usize])).collect();
        let place = places(Kind::Msgq, &calls, &roles);
        assert!(place[1] < place[0], "the send at {} is not before the take at {}", place[1], place[0]);
        assert!(place[1] >= 1_400_000_000, "the send is placed before it began");
    }

    #[test]
    fn reads_lines_of_a_stream() {
        assert_eq!(lines(b"one\ntwo\n"), [Some("one".to_string()), Some("two".to_string())]);
        assert_eq!(lines(b"one\ntw"), [Some("one".to_string())]);
    }
}
