//! The note's process A (section 3), call for call: msgget, msgsnd with IPC_NOWAIT.
//! Usage: note_writer [KEY]   (default 1234; the full pair is `--bin writer`)

// The note's buffer: a type, then the text (the C's `struct msgbuf`).
#[repr(C)]
struct MsgBuf {
    mtype: libc::c_long,
    mtext: [u8; 8192], // kernel.msgmax: the largest message
}

fn main() {
    let key: libc::key_t = match std::env::args().nth(1).map(|k| k.parse()) {
        None => 1234, // key는 1234(예)
        Some(Ok(k)) => k,
        Some(Err(e)) => fail("KEY", e),
    };
    // SAFETY: msgget takes plain integers.
    let msqid = unsafe { libc::msgget(key, libc::IPC_CREAT | 0o666) }; // msqid = msgget(key, msgflg);
    if msqid < 0 {
        fail("msgget", std::io::Error::last_os_error());
    }
    let text = b"Hello Message Queue\0"; // buf_length counts the NUL, as the full pair's (strlen+1)
    let mut buf = MsgBuf { mtype: 1, mtext: [0; 8192] };
    buf.mtext[..text.len()].copy_from_slice(text);
    // SAFETY: buf is a live MsgBuf whose mtext holds text.len() bytes.
    let sent = unsafe { libc::msgsnd(msqid, (&raw const buf).cast(), text.len(), libc::IPC_NOWAIT) }; // msgsnd(msqid, &buf, buf_length, IPC_NOWAIT);
    if sent < 0 {
        fail("msgsnd", std::io::Error::last_os_error());
    }
}

fn fail(what: &str, e: impl std::fmt::Display) -> ! {
    eprintln!("{what}: {e}");
    std::process::exit(1)
}
