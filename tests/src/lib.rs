//! The end-to-end harness: the right binary for each package, unique keys and paths, and child
//! processes waited on with bounded timeouts (never a sleep as synchronisation).

pub mod bins;
pub mod keys;
pub mod running;

pub use bins::{as_nobody, bin, c_program, cmd};
pub use keys::{TestKey, unique_key};
pub use running::Running;

/// The names in `dir`, sorted: what a test left behind.
pub fn entries(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("dir entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Package `package`'s binary `name` with `--key` set to the test's own key.
pub fn keyed(package: &str, name: &str, key: &TestKey) -> std::process::Command {
    let mut c = std::process::Command::new(bin(package, name));
    c.args(["--key", &key.arg()]);
    c
}

/// Runs `c` to the end and returns assert_cmd's assertions on it.
pub fn run(c: &mut std::process::Command) -> assert_cmd::assert::Assert {
    use assert_cmd::assert::OutputAssertExt;
    c.assert()
}
