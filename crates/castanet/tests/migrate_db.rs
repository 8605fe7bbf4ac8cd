//! `castanet manager migrate-db` through the real binaries: a farm run on SQLite (a real
//! worker completed and failed jobs; others queued, paused, canceled, waiting for another job;
//! a worker tag, an API token, audit entries) is copied into a PostgreSQL database, and a
//! manager started on that database answers the REST API exactly as the SQLite one does. A
//! second copy into the same database is refused. Needs a PostgreSQL server
//! (`CASTANET_TEST_POSTGRES`; `cargo xtask test` starts one) and says it skips otherwise.
mod common;

use std::path::Path;
use std::time::Duration;

use common::cli as castanet;
use common::{Api, ManagerProcess, WorkerProcess};
use serde_json::{Value, json};

const FAILING_TEMPLATE: &str = r##"specificationVersion: jobtemplate-2023-09
name: "Always fails"
steps:
- name: Fail
  script:
    actions:
      onRun:
        command: "{{Task.File.Fail}}"
    embeddedFiles:
    - name: Fail
      type: TEXT
      runnable: true
      filename: fail.sh
      data: |
        #!/bin/sh
        echo "failing on purpose" >&2
        exit 1
"##;

fn submitted_id(out: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix("submitted job "))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no job id in {out:?}"))
        .to_string()
}

fn submit(manager: &str, args: &[&str]) -> String {
    let mut all = vec!["submit"];
    all.extend_from_slice(args);
    let (ok, out, err) = castanet(manager, &all);
    assert!(ok, "submit {args:?}: {out}{err}");
    submitted_id(&out)
}

/// An `echo-sleep-test` job of one 0 s sleep, with `extra` options.
fn submit_echo(manager: &str, extra: &[&str]) -> String {
    let mut args = vec![
        "echo-sleep-test",
        "--set",
        "message=hi",
        "--set",
        "sleep_repeats=1",
    ];
    args.extend_from_slice(&["--set", "sleep_duration_seconds=0"]);
    args.extend_from_slice(extra);
    submit(manager, &args)
}

/// `castanet manager --config CONFIG ARGS…`: (succeeded, stdout, stderr).
fn manager_cli(config: &Path, args: &[&str]) -> (bool, String, String) {
    let mut all = vec![
        "manager",
        "--config",
        config.to_str().expect("a UTF-8 path"),
    ];
    all.extend_from_slice(args);
    castanet("http://127.0.0.1:1", &all)
}

fn set_config(config: &Path, key: &str, value: toml::Value) {
    let text = std::fs::read_to_string(config).expect("config");
    let mut table: toml::Table = toml::from_str(&text).expect("config parses");
    table.insert(key.into(), value);
    std::fs::write(config, toml::to_string(&table).expect("config written")).expect("written");
}

/// Everything the REST API says about the farm, for comparing two managers.
async fn answers(api: &Api, jobs: &[String]) -> Value {
    let mut each = Vec::new();
    for job in jobs {
        let mut detail = api.get(&format!("/api/v3/jobs/{job}")).await;
        // Estimates are computed from "now"; the stored facts are compared.
        if let Some(object) = detail.as_object_mut() {
            object.remove("eta");
        }
        each.push(json!({
            "job": detail,
            "tasks": api.get(&format!("/api/v3/jobs/{job}/tasks")).await,
        }));
    }
    let mut workers = api.get("/api/v3/worker-mgt/workers").await;
    for worker in workers["workers"].as_array_mut().into_iter().flatten() {
        if let Some(object) = worker.as_object_mut() {
            object.remove("eta");
        }
    }
    json!({
        "list": api.get("/api/v3/jobs?limit=100").await,
        "counts": api.get(&format!("/api/v3/jobs/task-counts?ids={}", jobs.join(","))).await,
        "farm": api.get("/api/v3/status").await,
        "jobs": each,
        "workers": workers,
        "tags": api.get("/api/v3/worker-mgt/tags").await,
        "audit": api.get("/api/v3/audit").await,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_farm_copied_to_postgresql_answers_as_it_did_on_sqlite() {
    let Ok(server) = std::env::var("CASTANET_TEST_POSTGRES") else {
        println!("skipped: no CASTANET_TEST_POSTGRES server (cargo xtask postgres starts one)");
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    // First start writes the config; one failure then fails a task (and its job).
    ManagerProcess::start(dir.path(), "127.0.0.1:0").stop();
    let config = dir.path().join("castanet-manager.toml");
    set_config(&config, "task_fail_after_softfail_count", 1.into());
    let manager = ManagerProcess::start(dir.path(), "127.0.0.1:0");
    let url = manager.url.clone();
    let api = Api::new(&url);
    let worker_dir = tempfile::tempdir().expect("worker dir");
    let worker = WorkerProcess::start(&manager, worker_dir.path(), "w1", 1);
    api.wait_connected(1, Duration::from_secs(30)).await;

    let tag = reqwest::Client::new()
        .post(format!("{url}/api/v3/worker-mgt/tags"))
        .json(&json!({"name": "nobody-here", "description": "no worker has it"}))
        .send()
        .await
        .expect("tag created");
    assert!(tag.status().is_success());
    let completed = submit_echo(&url, &["--name", "done"]);
    let template = dir.path().join("fails.yaml");
    std::fs::write(&template, FAILING_TEMPLATE).expect("template");
    let failed = submit(&url, &["--openjd", template.to_str().expect("path")]);
    let queued = submit_echo(&url, &["--name", "held", "--tag", "nobody-here"]);
    let paused = submit_echo(&url, &["--name", "paused", "--paused"]);
    let canceled = submit_echo(&url, &["--name", "canceled", "--tag", "nobody-here"]);
    let waiting = submit_echo(&url, &["--name", "after", "--depends-on", &queued]);
    let (ok, out, err) = castanet(&url, &["job", "cancel", &canceled]);
    assert!(ok, "{out}{err}");
    for (job, status) in [
        (&completed, "completed"),
        (&failed, "failed"),
        (&canceled, "canceled"),
    ] {
        api.wait_for_job(job, Duration::from_secs(60), |j| j["status"] == status)
            .await;
    }
    let (ok, out, err) = manager_cli(
        &config,
        &["token", "create", "--name", "ci", "--role", "viewer"],
    );
    assert!(ok, "{out}{err}");
    worker.stop();
    manager.stop();

    let database = common::postgres::new_database(&server).await;
    let (ok, out, err) = manager_cli(&config, &["migrate-db", "--to", &database]);
    assert!(ok, "migrate-db: {out}{err}");
    assert!(out.contains("every table's count matches"), "{out}");
    assert!(out.contains("tasks"), "{out}");

    let jobs = [completed, failed, queued, paused, canceled, waiting];
    let on_sqlite = ManagerProcess::start(dir.path(), "127.0.0.1:0");
    let before = answers(&Api::new(&on_sqlite.url), &jobs).await;
    let tokens_before = manager_cli(&config, &["token", "list"]);
    on_sqlite.stop();
    let statuses: Vec<&str> = before["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .map(|j| j["job"]["status"].as_str().expect("status"))
        .collect();
    assert_eq!(
        statuses,
        [
            "completed",
            "failed",
            "queued",
            "paused",
            "canceled",
            "waiting-for-dependencies"
        ]
    );

    set_config(&config, "database", database.clone().into());
    let on_postgres = ManagerProcess::start(dir.path(), "127.0.0.1:0");
    let after = answers(&Api::new(&on_postgres.url), &jobs).await;
    let tokens_after = manager_cli(&config, &["token", "list"]);
    assert_eq!(after, before);
    assert_eq!(tokens_after, tokens_before);
    assert!(tokens_after.1.contains("ci"), "{tokens_after:?}");
    on_postgres.stop();

    // The database now holds a farm: a second copy into it is refused, naming what it holds.
    let sqlite = dir.path().join("castanet-manager.sqlite");
    let from = sqlite.to_str().expect("a UTF-8 path");
    let (ok, out, err) = manager_cli(&config, &["migrate-db", "--from", from, "--to", &database]);
    assert!(!ok, "{out}");
    assert!(err.contains("already holds a farm"), "{err}");
}
