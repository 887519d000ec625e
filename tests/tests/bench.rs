//! The benchmark runs in the suite (`--quick`), and its JSON is checked for shape and sanity.
//! No test asserts a speed: numbers vary by machine.

use std::process::Command;

use common::{Key, sysv};
use serde_json::Value;
use tests::{Running, bin, cmd};

/// The bench's keys are `0x2000_0000 | (pid & 0x1ffff) << 12`, two per row: none of the SysV or
/// POSIX objects or scratch directories of any of them may be left.
fn assert_nothing_left(pid: u32) {
    let base = 0x2000_0000 | (pid & 0x1_ffff) << 12;
    let mut left = Vec::new();
    for k in base..base + 128 {
        let key = Key::new(k);
        if sysv::msgget(key, 0).is_ok() || sysv::shmget(key, 0, 0).is_ok() || sysv::semget(key, 0, 0).is_ok() {
            left.push(format!("SysV object {key}"));
        }
        for name in [format!("/dev/shm/bench-{k:x}-down"), format!("/dev/shm/bench-{k:x}-up")] {
            if std::path::Path::new(&name).exists() {
                left.push(name);
            }
        }
        if nix::mqueue::mq_unlink(format!("/msgq-ipc-{key}").as_str()).is_ok() {
            left.push(format!("POSIX queue of {key}"));
        }
        if common::paths::user_dir().is_ok_and(|d| d.join(format!("bench-{k:x}")).exists()) {
            left.push(format!("scratch directory bench-{k:x}"));
        }
    }
    assert!(left.is_empty(), "the bench left {left:?}");
}

const IDS: &[&str] = &[
    "file",
    "pipe",
    "fifo",
    "unix-socket",
    "sysv-mq",
    "posix-mq",
    "sysv-shm-sem",
    "sysv-shm-spin",
    "posix-shm-futex",
    "signal",
];

#[test]
fn quick_run_reports_every_mechanism_with_sane_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let (json, svg) = (dir.path().join("bench.json"), dir.path().join("bench.svg"));
    let run = Running::spawn(
        Command::new(bin("bench", "bench")).arg("--quick").arg("--json").arg(&json).arg("--svg").arg(&svg),
    );
    let pid = run.pid.as_raw() as u32;
    let done = run.finish();
    assert!(done.status.success(), "{}", done.stderr);
    assert_nothing_left(pid);
    let table = done.stdout_str();
    let v: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();

    assert!(v["machine"]["cpus"].as_u64().unwrap() >= 1);
    assert!(v["machine"]["kernel"].as_str().is_some_and(|k| !k.is_empty()));
    let results = v["results"].as_array().unwrap();
    for id in IDS {
        assert!(results.iter().any(|r| r["mechanism"] == *id), "no result for {id}");
        assert!(table.contains(id), "{id} missing from the table");
    }
    for r in results {
        let rtt = &r["rtt_ns"];
        let (min, p50, p99, p999) = (
            rtt["min"].as_u64().unwrap(),
            rtt["p50"].as_u64().unwrap(),
            rtt["p99"].as_u64().unwrap(),
            rtt["p999"].as_u64().unwrap(),
        );
        assert!(min > 0 && min <= p50 && p50 <= p99 && p99 <= p999, "{r}");
        assert!(r["throughput"]["msgs_per_s"].as_f64().unwrap() > 0.0, "{r}");
        assert!(r["throughput"]["mb_per_s"].as_f64().unwrap() > 0.0, "{r}");
        assert!(["same", "cross", "none"].contains(&r["placement"].as_str().unwrap()), "{r}");
        assert!(r["size"].as_u64().unwrap() >= 8, "{r}");
    }
    assert!(v["limits"]["memcpy_mb_per_s"]["4096"].as_f64().unwrap() > 0.0);
    let chart = std::fs::read_to_string(&svg).unwrap();
    assert!(chart.starts_with("<svg") && chart.contains("sysv-shm-spin"), "an SVG chart");
}

#[test]
fn an_unknown_mechanism_is_bad_usage() {
    cmd("bench", "bench")
        .args(["--only", "carrier-pigeon"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("unknown mechanism 'carrier-pigeon'"));
}
