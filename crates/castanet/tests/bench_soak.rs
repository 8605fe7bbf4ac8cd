//! The short version of `castanet bench --scenario soak`, through the real binary: a
//! manager process with 20,000 stored tasks, 40 simulated workers on their own gRPC
//! connections, a restart on the same database with every worker reattaching; on
//! PostgreSQL also a standby that takes over when the active manager is killed. The full
//! soak (1,000 workers, 1,000,000 tasks) is run by hand; its figures are in
//! docs/benchmarks.md.
mod common;

use std::process::Command;

use serde_json::Value;

/// Runs the short soak with `extra` arguments; its JSON result and printed table.
fn short_soak(extra: &[&str]) -> (Value, String) {
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
        .args(extra)
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
    let result: Value = serde_json::from_str(&text).expect("JSON");
    let soak = result["soak"].clone();
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
    assert_reattached(&soak["restart"]);
    // Leases survive a restart and a fail-over: no task is handed out twice.
    assert_eq!(soak["tasks_assigned_twice"], 0, "{soak:#}");
    (soak, String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The farm's times after a restart or fail-over are in order.
fn assert_reattached(times: &Value) {
    let seconds = |key: &str| times[key].as_f64().unwrap_or_default();
    let first = seconds("first_assignment_seconds");
    let signed_on = seconds("all_signed_on_seconds");
    let dispatching = seconds("all_dispatching_seconds");
    assert!(
        first > 0.0 && signed_on > 0.0 && dispatching >= signed_on && dispatching >= first,
        "{times:#}"
    );
}

#[test]
fn soak_runs_restarts_and_reports_every_figure() {
    let (soak, table) = short_soak(&[]);
    assert!(soak["failover"].is_null(), "no standby on SQLite: {soak:#}");
    assert!(table.contains("soak: restart"), "{table}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_on_postgresql_fails_over_to_the_standby() {
    let Ok(server) = std::env::var("CASTANET_TEST_POSTGRES") else {
        println!("skipped: no CASTANET_TEST_POSTGRES server (cargo xtask postgres starts one)");
        return;
    };
    let database = common::postgres::new_database(&server).await;
    let (soak, table) =
        tokio::task::spawn_blocking(move || short_soak(&["--soak-database", &database]))
            .await
            .expect("the soak");
    let failover = &soak["failover"];
    assert_reattached(failover);
    let ready = failover["standby_ready_seconds"]
        .as_f64()
        .unwrap_or_default();
    assert!(ready > 0.0 && ready < 10.0, "{failover:#}");
    assert!(table.contains("soak: fail-over"), "{table}");
}
