//! The benchmark runs in the suite (`--quick`), and its JSON is checked for shape and sanity.
//! No test asserts a speed: numbers vary by machine.

use serde_json::Value;
use tests::cmd;

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
    let out = cmd("bench", "bench").arg("--quick").arg("--json").arg(&json).arg("--svg").arg(&svg).assert().success();
    let table = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
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
