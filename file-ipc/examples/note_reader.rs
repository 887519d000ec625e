//! The note's file IPC (section 1) at its simplest, reading side: open, read, print a text file.
//! Usage: note_reader [PATH]   (default ipc.txt in the current directory; the full pair is
//! `--bin reader`)

use nix::fcntl::{OFlag, open};
use nix::sys::stat::Mode;
use nix::unistd::read;

fn main() {
    let path = std::env::args().nth(1).unwrap_or_else(|| "ipc.txt".into()); // "텍스트 파일 txt"
    let fd = match open(path.as_str(), OFlag::O_RDONLY, Mode::empty()) {
        Ok(fd) => fd,
        Err(e) => fail(&path, e), // nothing tells the reader when the file will be there
    };
    let mut buf = [0u8; 4096];
    let n = match read(&fd, &mut buf) {
        Ok(n) => n, // whatever is there now: all, part or none of what the writer writes
        Err(e) => fail(&path, e),
    };
    println!("{}", String::from_utf8_lossy(&buf[..n]));
}

fn fail(path: &str, e: nix::Error) -> ! {
    eprintln!("{path}: {e}");
    std::process::exit(1)
}
