//! The note's process B (section 3), call for call: msgget, msgrcv of type 1; then it prints the text.
//! Usage: note_reader [KEY]   (default 1234; the full pair is `--bin reader`)

#[repr(C)]
struct MsgBuf {
    mtype: libc::c_long,
    mtext: [u8; 8192], // MSGSZ, left undefined in the note: kernel.msgmax, as the full pair's
}

fn main() {
    let key: libc::key_t = match std::env::args().nth(1).map(|k| k.parse()) {
        None => 1234, // A에서 지정한 것과 동일한 key
        Some(Ok(k)) => k,
        Some(Err(e)) => fail("KEY", e),
    };
    // SAFETY: msgget takes plain integers.
    let msqid = unsafe { libc::msgget(key, libc::IPC_CREAT | 0o666) }; // msqid = msgget(key, msgflg);
    if msqid < 0 {
        fail("msgget", std::io::Error::last_os_error());
    }
    let mut rbuf = MsgBuf { mtype: 0, mtext: [0; 8192] };
    // SAFETY: rbuf is a live MsgBuf and MSGSZ is the size of its mtext.
    let n = unsafe { libc::msgrcv(msqid, (&raw mut rbuf).cast(), rbuf.mtext.len(), 1, 0) }; // msgrcv(msqid, &rbuf, MSGSZ, 1, 0);
    if n < 0 {
        fail("msgrcv", std::io::Error::last_os_error());
    }
    let text = rbuf.mtext.split(|&b| b == 0).next().unwrap_or_default(); // what %s prints: up to the NUL
    println!("{}", String::from_utf8_lossy(text)); // not in the note, which never shows what B got
}

fn fail(what: &str, e: impl std::fmt::Display) -> ! {
    eprintln!("{what}: {e}");
    std::process::exit(1)
}
