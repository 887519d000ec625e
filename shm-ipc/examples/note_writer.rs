//! The note's shared memory (section 4), writing side, call for call: shmget, shmat, strcpy.
//! Usage: note_writer [KEY [TEXT]]   (default 1234 and the note's text; the full pair is `--bin writer`)

const SIZE: usize = 4096; // the note leaves SIZE undefined; shm-ipc's, so both meet

fn main() {
    let mut args = std::env::args().skip(1);
    let key: libc::key_t = match args.next().map(|k| k.parse()) {
        None => 1234, // (key_t)1234
        Some(Ok(k)) => k,
        Some(Err(e)) => fail("KEY", e),
    };
    let mut text = args.next().unwrap_or_else(|| "Linux Programming".into()).into_bytes();
    text.push(0); // strcpy copies the NUL too
    if text.len() > SIZE {
        fail("TEXT", format!("longer than the segment's {SIZE} bytes"));
    }
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
    // Volatile byte by byte: another process may read the segment meanwhile, so no Rust slice of it.
    for (i, &b) in text.iter().enumerate() {
        // SAFETY: the mapping is at least SIZE bytes and writable; i < text.len() <= SIZE.
        unsafe { shmaddr.cast::<u8>().add(i).write_volatile(b) }; // strcpy((char*)shmaddr, "Linux Programming");
    }
}

fn fail(what: &str, e: impl std::fmt::Display) -> ! {
    eprintln!("{what}: {e}");
    std::process::exit(1)
}
