//! The short version of `castanet bench --scenario soak`, through the real binary: a
//! manager process with 20,000 stored tasks, 40 simulated workers on their own gRPC
//! connections, a restart on the same database with every worker reattaching. The full
//! soak (1,000 workers, 1,000,000 tasks) is run by hand; its figures are in
//! docs/benchmarks.md.
mod common;

use std::process::Command;

#[test]
fn soak_runs_restarts_and_reports_every_figure() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let json_path = dir.path().join("soak.json");
    let output = Command::new(common::BIN)
        .args([
            "bench",
            "--scenario",
            "soak",
            "--soak-workers",
            "40",
            "--soak-jobs",
            "11",
            "--soak-tasks",
            "1000",
            "--soak-big-tasks",
            "10000",
            "--soak-seconds",
            "2",
            "--samples",
            "10",
            "--json",
        ])
        .arg(&json_path)
        .env("TMPDIR", dir.path())
        .output()
        .expect("running castanet bench");
    assert!(
        output.status.success(),
        "castanet bench failed: {}\n{}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
    let text = std::fs::read_to_string(&json_path).expect("the JSON result");
    let result: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let soak = &result["soak"];
    assert_eq!(soak["tasks_stored"], 20_000, "{soak:#}");
    assert_eq!(soak["workers"], 40);
    assert!(
        soak["tasks_completed"].as_u64().unwrap_or_default() > 0,
        "{soak:#}"
    );
    assert!(
        soak["dispatch_under_load"]["p99_ms"].as_f64().is_some(),
        "{soak:#}"
    );
    for page in soak["pages"].as_array().expect("pages") {
        assert!(page["samples"].as_u64().unwrap_or_default() > 0, "{page:#}");
    }
    for key in ["stored", "running_peak", "after_restart"] {
        let mib = soak["manager_rss_mib"][key].as_f64().unwrap_or_default();
        assert!(mib > 1.0, "manager RSS {key}: {soak:#}");
    }
    let restart = &soak["restart"];
    let signed_on = restart["all_signed_on_seconds"]
        .as_f64()
        .unwrap_or_default();
    let dispatching = restart["all_dispatching_seconds"]
        .as_f64()
        .unwrap_or_default();
    assert!(signed_on > 0.0 && dispatching >= signed_on, "{restart:#}");
    // A graceful restart keeps every lease a worker lists: nothing runs twice.
    assert_eq!(soak["tasks_assigned_twice"], 0, "{soak:#}");
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(table.contains("soak: restart"), "{table}");
}
