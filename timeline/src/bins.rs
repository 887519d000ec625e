//! The pair's binaries, built as the tests' harness (tests/src/bins.rs) builds them: one
//! `cargo build -p PACKAGE --bins` per package, because every pair has bins named `writer` and
//! `reader`, which overwrite each other in target/debug when built together. They are copied to
//! `target/bins/PACKAGE/` under the harness's lock, in the harness's target directory, so a run
//! after the tests (or during them) builds nothing again, and a copy is never half-written.
//!
//! Not escargot: it runs the same cargo build, and the collision, the lock and the copy would
//! still be ours to handle; this is the harness's way, in forty lines, with no new dependency.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{Error, Result, SysResult};
use nix::fcntl::{Flock, FlockArg};

/// The workspace this binary was built from.
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| workspace().join("target"), PathBuf::from)
}

/// The directory holding `package`'s `writer` and `reader`, built now if they are not fresh.
pub fn dir(package: &str) -> Result<PathBuf> {
    let bins = target_dir().join("bins");
    fs::create_dir_all(&bins).sys("mkdir", bins.display())?;
    let lock_path = bins.join(".lock");
    let lock = File::create(&lock_path).sys("open", lock_path.display())?;
    let _held =
        Flock::lock(lock, FlockArg::LockExclusive).map_err(|(_, e)| Error::sys("flock", lock_path.display(), e))?;

    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(&cargo)
        .current_dir(workspace())
        .args(["build", "--quiet", "--message-format=json-render-diagnostics", "--bins", "-p", package])
        .arg("--target-dir")
        .arg(bins.join("build"))
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| {
            Error::io("exec", cargo.to_string_lossy(), e)
                .hint("timeline builds the pair with cargo: run it with `cargo run -p timeline`")
        })?;
    if !out.status.success() {
        return Err(Error::Failed(format!("cargo build -p {package} --bins failed (its errors are above)")));
    }
    let dir = bins.join(package);
    fs::create_dir_all(&dir).sys("mkdir", dir.display())?;
    let mut copied = 0;
    for line in out.stdout.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let Ok(msg) = serde_json::from_slice::<serde_json::Value>(line) else { continue };
        let ours = msg["package_id"]
            .as_str()
            .is_some_and(|id| id.contains(&format!("/{package}#")) || id.contains(&format!("#{package}@")));
        let bin = msg["target"]["kind"].as_array().is_some_and(|k| k.iter().any(|k| k == "bin"));
        if let (true, true, Some(exe)) = (ours, bin, msg["executable"].as_str()) {
            let exe = Path::new(exe);
            let Some(name) = exe.file_name() else { continue };
            let dest = dir.join(name);
            let tmp = dest.with_extension("copying");
            fs::copy(exe, &tmp).sys("copy", exe.display())?;
            // rename: a run still using the previous copy keeps its file.
            fs::rename(&tmp, &dest).sys("rename", dest.display())?;
            copied += 1;
        }
    }
    if copied == 0 {
        return Err(Error::Failed(format!("cargo build -p {package} --bins reported no executable")));
    }
    Ok(dir)
}
