//! The note's pipe program (section 2), call for call: pipe, fork, write in the parent, read and
//! printf in the child. Prints `20 Hello Child Process`.
//! Usage: note_fork   (no arguments; the full program is `--bin fork`)

use nix::unistd::{ForkResult, fork, pipe, read, write};

const MSG: &[u8] = b"Hello Child Process\0"; // char* msg = "Hello Child Process";
const MSGSIZE: usize = MSG.len(); // the note leaves MSGSIZE undefined: the string and its NUL

fn main() {
    let Ok((rd, wr)) = pipe() else { std::process::exit(1) }; // if(pipe(fd) < 0) exit(1);
    // SAFETY: one thread only, so the child may run any code after fork.
    match unsafe { fork() } {
        // pid = fork();
        Ok(ForkResult::Parent { .. }) => {
            let _ = write(&wr, &MSG[..MSGSIZE]); // write(fd[1], msg, MSGSIZE);
        }
        Ok(ForkResult::Child) => {
            let mut buf = [0u8; 255]; // char buf[255];
            let nbytes = read(&rd, &mut buf[..MSGSIZE]).unwrap_or(0); // nbytes = read(fd[0], buf, MSGSIZE);
            let text = buf.split(|&b| b == 0).next().unwrap_or_default();
            println!("{nbytes} {}", String::from_utf8_lossy(text)); // printf("%d %s\n", nbytes, buf);
            std::process::exit(0); // exit(0);
        }
        Err(e) => eprintln!("fork: {e}"), // the note does not check fork
    }
    // return 0; (like the note, the parent does not wait for the child)
}
