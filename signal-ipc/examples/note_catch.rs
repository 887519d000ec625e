//! The note's signal handler program (section 5): signal(SIGINT, handler), then pause() forever.
//! Ctrl-C prints `Catch SIGINT!` and exits 0.
//! Usage: note_catch   (no arguments; the full program is `--bin reader`)

use nix::sys::signal::{SigHandler, Signal, signal};
use nix::unistd::pause;

// static void signal_handler(int signo)
extern "C" fn signal_handler(_signo: libc::c_int) {
    // printf and exit are not async-signal-safe (a lock held by the interrupted code deadlocks
    // them): write(2) and _exit(2) are, so the handler uses those and prints the same.
    let msg = b"Catch SIGINT!\n"; // printf("Catch SIGINT!\n");
    // SAFETY: write and _exit are async-signal-safe; msg is a static byte string.
    unsafe {
        libc::write(libc::STDOUT_FILENO, msg.as_ptr().cast(), msg.len());
        libc::_exit(libc::EXIT_SUCCESS); // exit(EXIT_SUCCESS);
    }
}

fn main() {
    // SAFETY: the handler only calls async-signal-safe functions.
    if unsafe { signal(Signal::SIGINT, SigHandler::Handler(signal_handler)) }.is_err() {
        println!("Can't catch SIGINT!"); // if(signal(SIGINT, signal_handler) == SIG_ERR){ printf(...);
        std::process::exit(libc::EXIT_FAILURE); // exit(EXIT_FAILURE);
    }
    loop {
        pause(); // for(;;){ pause(); }
    }
}
