//! The note's file IPC (section 1) at its simplest, writing side. The note gives no C: these are
//! the calls of the C its prose describes (the README's): fopen "w", fprintf, fclose.
//! Usage: note_writer [PATH [TEXT]]   (default ipc.txt in the current directory, "Hello File IPC";
//! the full pair is `--bin writer`)

use nix::fcntl::{OFlag, open};
use nix::sys::stat::Mode;
use nix::unistd::write;

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().unwrap_or_else(|| "ipc.txt".into()); // "텍스트 파일 txt"
    let text = args.next().unwrap_or_else(|| "Hello File IPC".into());
    let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_TRUNC; // what fopen(path, "w") does
    let fd = match open(path.as_str(), flags, Mode::from_bits_truncate(0o666)) {
        Ok(fd) => fd, // FILE *f = fopen(path, "w");
        Err(e) => fail(&path, e),
    };
    // fprintf(f, "%s", text); the file is already there, empty: a reader now sees part or none
    if let Err(e) = write(&fd, text.as_bytes()) {
        fail(&path, e);
    }
    // fclose(f); when `fd` drops here
}

fn fail(path: &str, e: nix::Error) -> ! {
    eprintln!("{path}: {e}");
    std::process::exit(1)
}
