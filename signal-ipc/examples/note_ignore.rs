//! The note's second signal program (section 5): signal(SIGINT, SIG_IGN), then pause() forever.
//! Ctrl-C does nothing; `kill PID` (SIGTERM) ends it.
//! Usage: note_ignore   (no arguments; the full program is `--bin reader -- --ignore`)

use nix::sys::signal::{SigHandler, Signal, signal};
use nix::unistd::pause;

fn main() {
    // SAFETY: SIG_IGN installs no Rust code as a handler.
    if unsafe { signal(Signal::SIGINT, SigHandler::SigIgn) }.is_err() {
        println!("Can't catch SIGINT!"); // if(signal(SIGINT, SIG_IGN) == SIG_ERR){ printf(...);
        std::process::exit(libc::EXIT_FAILURE); // exit(EXIT_FAILURE);
    }
    loop {
        pause(); // for(;;){ pause(); }
    }
}
