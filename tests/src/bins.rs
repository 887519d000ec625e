//! Builds each mechanism package on its own and hands out its binaries.
//!
//! Every mechanism crate has bins named `writer` and `reader`. Built in one cargo invocation they
//! collide in target/debug (cargo warns "output filename collision" and keeps the last one), so
//! `CARGO_BIN_EXE_writer` could run another package's writer. Here each package is built with
//! its own `cargo build -p NAME --bins`, and its bins are copied to `target/bins/NAME/` while a
//! file lock is held: cargo reports the shared `target/bins/build/debug/writer`, which the next
//! package's build overwrites, and tests in other processes (nextest) build in parallel. Each
//! binary's `--version` is then checked to name the package, so a mix-up fails loudly.
//!
//! The examples (the note's C programs in Rust, `examples/note_*.rs`) collide the same way: msgq-ipc
//! and shm-ipc both have `note_writer` and `note_reader` in target/debug/examples. [`example`]
//! builds one package's with `cargo build -p NAME --examples` and copies them to
//! `target/bins/NAME/examples/`. They take no `--version` (they are the note's programs, nothing
//! more), so the package is checked in cargo's own report of what it built instead.

use std::collections::HashMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, PoisonError};

use nix::fcntl::{Flock, FlockArg};

/// The path of package `package`'s binary `name`, built and checked once per test process.
pub fn bin(package: &str, name: &str) -> PathBuf {
    static READY: Mutex<Option<HashMap<String, PathBuf>>> = Mutex::new(None);
    let mut ready = READY.lock().unwrap_or_else(PoisonError::into_inner);
    let ready = ready.get_or_insert_with(HashMap::new);
    let dir = ready.entry(package.to_string()).or_insert_with(|| build(package, Kind::Bins)).clone();
    let path = dir.join(name);
    ready.entry(format!("{package}/{name}")).or_insert_with(|| {
        check_version(&path, package, name);
        path.clone()
    });
    path
}

/// The path of package `package`'s example `name` (`examples/NAME.rs`), built once per test
/// process like [`bin`], in a directory of the package's own.
pub fn example(package: &str, name: &str) -> PathBuf {
    static READY: Mutex<Option<HashMap<String, PathBuf>>> = Mutex::new(None);
    let mut ready = READY.lock().unwrap_or_else(PoisonError::into_inner);
    let dir = ready
        .get_or_insert_with(HashMap::new)
        .entry(package.to_string())
        .or_insert_with(|| build(package, Kind::Examples));
    let path = dir.join(name);
    assert!(path.exists(), "{package} has no example {name} (built: {:?})", crate::entries(dir));
    path
}

/// `bin` as an assert_cmd command.
pub fn cmd(package: &str, name: &str) -> assert_cmd::Command {
    assert_cmd::Command::new(bin(package, name))
}

fn target_dir() -> PathBuf {
    // This test binary sits in <target>/debug/deps/.
    let exe = std::env::current_exe().expect("current_exe");
    exe.ancestors().nth(3).expect("test binary inside a target directory").to_path_buf()
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Bins,
    Examples,
}

impl Kind {
    /// cargo's flag, and cargo's name in a target's `kind`.
    fn flag(self) -> &'static str {
        if self == Kind::Bins { "--bins" } else { "--examples" }
    }

    fn target_kind(self) -> &'static str {
        if self == Kind::Bins { "bin" } else { "example" }
    }
}

fn build(package: &str, kind: Kind) -> PathBuf {
    let bins = target_dir().join("bins");
    fs::create_dir_all(&bins).expect("create target/bins");
    let lock = File::create(bins.join(".lock")).expect("create target/bins/.lock");
    let _held = Flock::lock(lock, FlockArg::LockExclusive).map_err(|(_, e)| e).expect("flock target/bins/.lock");

    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(workspace)
        .args(["build", "--quiet", "--message-format=json-render-diagnostics", kind.flag(), "-p", package])
        .arg("--target-dir")
        .arg(bins.join("build"))
        .stderr(Stdio::inherit())
        .output()
        .expect("run cargo build");
    assert!(out.status.success(), "cargo build -p {package} {} failed", kind.flag());

    let dir = if kind == Kind::Bins { bins.join(package) } else { bins.join(package).join("examples") };
    fs::create_dir_all(&dir).expect("create target/bins/<package>");
    let mut copied = 0;
    for line in out.stdout.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let msg: serde_json::Value = serde_json::from_slice(line).expect("cargo JSON message");
        let ours = msg["package_id"]
            .as_str()
            .is_some_and(|id| id.contains(&format!("/{package}#")) || id.contains(&format!("#{package}@")));
        let of_kind = msg["target"]["kind"].as_array().is_some_and(|k| k.iter().any(|k| k == kind.target_kind()));
        if let (true, true, Some(exe)) = (ours, of_kind, msg["executable"].as_str()) {
            let exe = Path::new(exe);
            let dest = dir.join(exe.file_name().expect("executable name"));
            let tmp = dest.with_extension("copying");
            fs::copy(exe, &tmp).expect("copy binary");
            // rename: a test still running the previous copy keeps its file.
            fs::rename(&tmp, &dest).expect("rename binary");
            copied += 1;
        }
    }
    assert!(copied > 0, "cargo build -p {package} {} reported no executable", kind.flag());
    dir
}

fn check_version(path: &Path, package: &str, name: &str) {
    let out = Command::new(path).arg("--version").output().expect("run --version");
    let want = version_line(package, name);
    assert_eq!(String::from_utf8_lossy(&out.stdout), want, "{} is not {package}'s {name}", path.display());
}

/// The C program `tests/c/NAME.c`, compiled once per test process with the system's `cc`, with
/// `-DNAME=VALUE` for each of `defines`: the pair's contract (sizes) comes from its crate.
pub fn c_program(name: &str, defines: &[(&str, usize)]) -> PathBuf {
    static BUILT: Mutex<Option<HashMap<String, PathBuf>>> = Mutex::new(None);
    let mut built = BUILT.lock().unwrap_or_else(PoisonError::into_inner);
    built
        .get_or_insert_with(HashMap::new)
        .entry(format!("{name}{defines:?}"))
        .or_insert_with(|| {
            let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("c").join(format!("{name}.c"));
            let dir = target_dir().join("bins").join("c");
            fs::create_dir_all(&dir).expect("create target/bins/c");
            let suffix: String = defines.iter().map(|(d, v)| format!("-{d}{v}")).collect();
            let out = dir.join(format!("{name}{suffix}"));
            // Compiled under a name of this process's own, then renamed: parallel test processes.
            let tmp = dir.join(format!("{name}{suffix}.{}", std::process::id()));
            let status = Command::new("cc")
                .args(["-std=c11", "-D_DEFAULT_SOURCE", "-O1", "-Wall", "-Wextra", "-Werror"])
                .args(defines.iter().map(|(d, v)| format!("-D{d}={v}")))
                .arg("-o")
                .arg(&tmp)
                .arg(&src)
                .status()
                .expect("run cc (a C compiler is needed for the compatibility tests)");
            assert!(status.success(), "cc {} failed", src.display());
            fs::rename(&tmp, &out).expect("rename C program");
            out
        })
        .clone()
}

/// What `--version` prints: `<package> <bin> <version>`, or `<package> <version>` for a package's
/// own-named bin (bench).
pub fn version_line(package: &str, name: &str) -> String {
    let v = env!("CARGO_PKG_VERSION");
    if package == name { format!("{package} {v}\n") } else { format!("{package} {name} {v}\n") }
}

/// A command that runs package `package`'s binary `name` as user nobody (setpriv), from a copy in
/// a 0755 directory (the build tree need not be readable by nobody). None, after saying so on
/// stderr, when the tests do not run as root.
pub fn as_nobody(package: &str, name: &str) -> Option<(tempfile::TempDir, Command)> {
    program_as_nobody(&bin(package, name))
}

/// [`as_nobody`] for any program, e.g. an [`example`].
pub fn program_as_nobody(program: &Path) -> Option<(tempfile::TempDir, Command)> {
    let name = program.file_name().expect("program name");
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root to run {} as user nobody", program.display());
        return None;
    }
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod 0755");
    let exe = dir.path().join(name);
    fs::copy(program, &exe).expect("copy binary");
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"]).arg(&exe);
    Some((dir, cmd))
}
