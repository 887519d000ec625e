//! The note's file IPC (section 1) at its simplest, reading side. The note gives no C: these are
//! the calls of the C its prose describes (the README's): fopen "r", fgets, printf, fclose.
//! Usage: note_reader [PATH]   (default ipc.txt in the current directory; the full pair is
//! `--bin reader`)

use nix::fcntl::{OFlag, open};
use nix::sys::stat::Mode;
use nix::unistd::read;

fn main() {
    let path = std::env::args().nth(1).unwrap_or_else(|| "ipc.txt".into()); // "텍스트 파일 txt"
    let fd = match open(path.as_str(), OFlag::O_RDONLY, Mode::empty()) {
        Ok(fd) => fd,             // FILE *f = fopen(path, "r");
        Err(e) => fail(&path, e), // nothing tells the reader when the file will be there
    };
    let mut buf = [0u8; 4096];
    let n = match read(&fd, &mut buf) {
        Ok(n) => n, // fgets(buf, 4096, f): whatever is there now, all, part or none of it
        Err(e) => fail(&path, e),
    };
    println!("{}", String::from_utf8_lossy(&buf[..n])); // printf("%s\n", buf);
    // fclose(f); when `fd` drops here
}

fn fail(path: &str, e: nix::Error) -> ! {
    eprintln!("{path}: {e}");
    std::process::exit(1)
}
