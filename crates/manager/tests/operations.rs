//! Operations: health and readiness, Prometheus metrics, and an online backup taken while
//! workers run tasks that a new manager starts from.
mod common;

use std::collections::HashMap;

use castanet_protocol::v1;
use common::{echo_sleep_job, start};

/// Parses Prometheus text format strictly enough to catch malformed output:
/// `name{label="value",...} number` lines, `# HELP` / `# TYPE` comments.
fn parse_prometheus(text: &str) -> HashMap<String, f64> {
    let mut samples = HashMap::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(comment) = line.strip_prefix("# ") {
            let kind = comment.split_whitespace().next().unwrap();
            assert!(
                kind == "HELP" || kind == "TYPE",
                "bad comment line {line:?}"
            );
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("no value in {line:?}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line:?}"));
        let name_end = series.find('{').unwrap_or(series.len());
        let name = &series[..name_end];
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name in {line:?}"
        );
        if name_end < series.len() {
            let labels = series[name_end..]
                .strip_prefix('{')
                .and_then(|l| l.strip_suffix('}'))
                .unwrap();
            for label in labels.split(',') {
                let (key, quoted) = label
                    .split_once('=')
                    .unwrap_or_else(|| panic!("bad label in {line:?}"));
                assert!(
                    !key.is_empty() && quoted.starts_with('"') && quoted.ends_with('"'),
                    "{line:?}"
                );
            }
        }
        samples.insert(series.to_string(), value);
    }
    samples
}

#[tokio::test]
async fn health_readiness_and_metrics_report_the_farm() {
    let m = start().await;
    let ok = m
        .http
        .get(format!("{}/healthz", m.url))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status().as_u16(), 200);
    let (status, ready) = m.get("/readyz").await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["database"], "ok");

    m.post("/api/v3/jobs", &echo_sleep_job(4, 0)).await;
    m.register("metrics-worker").await;
    let text = m
        .http
        .get(format!("{}/metrics", m.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let samples = parse_prometheus(&text);
    assert_eq!(samples["castanet_tasks{status=\"queued\"}"], 5.0, "{text}");
    assert_eq!(samples["castanet_jobs{status=\"queued\"}"], 1.0);
    assert_eq!(samples["castanet_workers{status=\"registered\"}"], 1.0);
    assert!(samples["castanet_database_bytes"] > 0.0);
    assert!(samples.contains_key("castanet_sse_clients"));
    m.manager.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_backup_taken_while_workers_run_restores_every_job() {
    let m = start().await;
    // A job type whose tasks are all runnable at once, so every worker gets one.
    let scripts = m.dir.path().join("scripts");
    std::fs::create_dir_all(&scripts).unwrap();
    std::fs::write(
        scripts.join("parallel_sleep.js"),
        "const JOB_TYPE = { label: 'Parallel sleep', settings: [ { key: 'count', type: 'int32', default: 10 } ] };\n\
         function compileJob(job) {\n\
           for (let i = 0; i < job.settings.count; i++) {\n\
             const task = author.Task('sleep-' + i, 'misc');\n\
             task.addCommand(author.Command('sleep', { duration_in_seconds: 1 }));\n\
             job.addTask(task);\n\
           }\n\
         }\n",
    )
    .unwrap();
    let mut jobs = Vec::new();
    for _ in 0..3 {
        let mut job = echo_sleep_job(0, 0);
        job["type"] = serde_json::json!("parallel-sleep");
        job["settings"] = serde_json::json!({ "count": 10 });
        let (status, job) = m.post("/api/v3/jobs", &job).await;
        assert_eq!(status, 200, "{job}");
        jobs.push(job["id"].as_str().unwrap().to_string());
    }
    // 20 workers, each holding a running task while the backup is taken.
    let mut streams = Vec::new();
    for n in 0..20 {
        let common::TestWorker {
            client, mut stream, ..
        } = m.connect(common::misc_sign_on(&format!("w{n}"), 1)).await;
        let first = stream.message().await.unwrap().unwrap();
        assert!(matches!(
            first.kind,
            Some(v1::instruction::Kind::AssignTask(_))
        ));
        streams.push((client, stream));
    }

    let backup_dir = tempfile::tempdir().unwrap();
    let backup = backup_dir.path().join("castanet-manager.sqlite");
    castanet_manager::store::backup(&m.manager.state.config.database_path(), &backup)
        .await
        .unwrap();
    let again =
        castanet_manager::store::backup(&m.manager.state.config.database_path(), &backup).await;
    assert!(
        again.unwrap_err().to_string().contains("exists already"),
        "a backup never overwrites"
    );
    let (_, live_tasks) = m.get(&format!("/api/v3/jobs/{}/tasks", jobs[0])).await;
    drop(streams);
    m.manager.shutdown().await.unwrap();

    // A manager started on the backup has every job and task.
    let restored = common::start_in(backup_dir).await;
    let (_, listed) = restored.get("/api/v3/jobs").await;
    assert_eq!(listed["jobs"].as_array().unwrap().len(), 3);
    for id in &jobs {
        let (status, tasks) = restored.get(&format!("/api/v3/jobs/{id}/tasks")).await;
        assert_eq!(status, 200);
        assert_eq!(tasks["tasks"].as_array().unwrap().len(), 10);
    }
    let (_, restored_tasks) = restored
        .get(&format!("/api/v3/jobs/{}/tasks", jobs[0]))
        .await;
    let ids = |v: &serde_json::Value| -> Vec<String> {
        v["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(&restored_tasks), ids(&live_tasks));
    restored.manager.shutdown().await.unwrap();
}
