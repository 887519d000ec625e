//! The note's shared memory (section 4), writing side, call for call: shmget, shmat, strcpy.
//! Usage: note_writer [KEY]   (default 1234; the full pair is `--bin writer`)

const SIZE: usize = 4096; // the note leaves SIZE undefined; shm-ipc's, so both meet

fn main() {
    let key: libc::key_t = match std::env::args().nth(1).map(|k| k.parse()) {
        None => 1234, // (key_t)1234
        Some(Ok(k)) => k,
        Some(Err(e)) => fail("KEY", e),
    };
    // SAFETY: shmget takes plain integers.
    let shmid = unsafe { libc::shmget(key, SIZE, libc::IPC_CREAT | 0o666) }; // shmid = shmget((key_t)1234, SIZE, IPC_CREAT|0666);
    if shmid < 0 {
        fail("shmget", std::io::Error::last_os_error());
    }
    // SAFETY: shmat maps the segment anywhere (NULL address) and returns -1 on failure.
    let shmaddr = unsafe { libc::shmat(shmid, std::ptr::null(), 0) }; // shmaddr = shmat(shmid, (void*)0, 0);
    if shmaddr as isize == -1 {
        fail("shmat", std::io::Error::last_os_error());
    }
    let text = b"Linux Programming\0";
    // SAFETY: the mapping is SIZE bytes and writable; the text with its NUL is shorter.
    unsafe { std::ptr::copy_nonoverlapping(text.as_ptr(), shmaddr.cast::<u8>(), text.len()) }; // strcpy((char*)shmaddr, "Linux Programming");
}

fn fail(what: &str, e: impl std::fmt::Display) -> ! {
    eprintln!("{what}: {e}");
    std::process::exit(1)
}
