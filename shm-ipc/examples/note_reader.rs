//! The note's shared memory (section 4), reading side, call for call: shmget, shmat, printf.
//! Usage: note_reader [KEY]   (default 1234; the full pair is `--bin reader`)

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
    // A volatile copy: a writer may change the segment meanwhile, so no Rust slice of it.
    let mut buf = [0u8; SIZE];
    for (i, b) in buf.iter_mut().enumerate() {
        // SAFETY: the segment is at least SIZE bytes (shmget checks it) and mapped readable.
        *b = unsafe { shmaddr.cast::<u8>().add(i).read_volatile() };
    }
    let text = buf.split(|&b| b == 0).next().unwrap_or_default(); // what %s prints: up to the NUL
    println!("{}", String::from_utf8_lossy(text)); // printf("%s\n", (char*)shmaddr);
}

fn fail(what: &str, e: impl std::fmt::Display) -> ! {
    eprintln!("{what}: {e}");
    std::process::exit(1)
}
