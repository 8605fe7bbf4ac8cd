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
        assert!(
            samples.insert(series.to_string(), value).is_none(),
            "series {series} appears twice"
        );
    }
    check_histograms(text, &samples);
    samples
}

/// Every `# TYPE … histogram` has, per label set, `le` buckets that never decrease, a
/// `+Inf` bucket equal to `_count`, and a `_sum`.
fn check_histograms(text: &str, samples: &HashMap<String, f64>) {
    let histograms: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" histogram"))
        .collect();
    for name in histograms {
        let bucket_prefix = format!("{name}_bucket{{");
        // Label set (without `le`) → bucket values in the order they appear.
        let mut buckets: Vec<(String, Vec<(String, f64)>)> = Vec::new();
        for line in text.lines().filter(|l| l.starts_with(&bucket_prefix)) {
            let (series, value) = line.rsplit_once(' ').unwrap();
            let labels = &series[bucket_prefix.len()..series.len() - 1];
            let (rest, le) = match labels.rsplit_once(',') {
                Some((rest, le)) => (rest.to_string(), le),
                None => (String::new(), labels),
            };
            let le = le
                .strip_prefix("le=\"")
                .and_then(|l| l.strip_suffix('"'))
                .unwrap_or_else(|| panic!("bucket without le last: {line:?}"));
            let value: f64 = value.parse().unwrap();
            match buckets.iter_mut().find(|(l, _)| *l == rest) {
                Some((_, values)) => values.push((le.to_string(), value)),
                None => buckets.push((rest, vec![(le.to_string(), value)])),
            }
        }
        for (labels, values) in buckets {
            let bounds: Vec<f64> = values
                .iter()
                .map(|(le, _)| {
                    if le == "+Inf" {
                        f64::INFINITY
                    } else {
                        le.parse().unwrap()
                    }
                })
                .collect();
            assert!(
                bounds.windows(2).all(|w| w[0] < w[1]),
                "{name}{{{labels}}} bounds"
            );
            assert!(
                values.windows(2).all(|w| w[0].1 <= w[1].1),
                "{name}{{{labels}}} buckets decrease: {values:?}"
            );
            let (last_le, last) = values.last().unwrap();
            assert_eq!(last_le, "+Inf", "{name}{{{labels}}} has no +Inf bucket");
            let suffix = if labels.is_empty() {
                String::new()
            } else {
                format!("{{{labels}}}")
            };
            assert_eq!(
                samples[&format!("{name}_count{suffix}")],
                *last,
                "{name}{{{labels}}}"
            );
            assert!(samples.contains_key(&format!("{name}_sum{suffix}")));
        }
    }
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
    let (status, role) = m.get("/api/v3/manager").await;
    assert_eq!(status, 200, "{role}");
    assert_eq!(role["role"], "active");
    assert_eq!(role["database"], m.manager.state.store.engine().name());

    m.post("/api/v3/jobs", &echo_sleep_job(4, 0)).await;
    m.register("metrics-worker").await;
    let text = metrics_text(&m).await;
    let samples = parse_prometheus(&text);
    assert_eq!(samples["castanet_tasks{status=\"queued\"}"], 5.0, "{text}");
    assert_eq!(samples["castanet_jobs{status=\"queued\"}"], 1.0);
    assert_eq!(samples["castanet_workers{status=\"registered\"}"], 1.0);
    assert!(samples["castanet_database_bytes"] > 0.0);
    assert!(samples.contains_key("castanet_sse_clients"));
    m.manager.shutdown().await.unwrap();
}

async fn metrics_text(m: &common::TestManager) -> String {
    m.text("/metrics").await
}

/// Takes the worker's next assignment and reports it finished with `status`.
async fn finish_next_task(worker: &mut common::TestWorker, sequence: u64, status: v1::TaskStatus) {
    let task = loop {
        let instruction = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            common::next_message(&mut worker.stream),
        )
        .await
        .expect("an assignment arrives")
        .unwrap()
        .unwrap();
        if let Some(v1::instruction::Kind::AssignTask(task)) = instruction.kind {
            break task;
        }
    };
    let update = v1::TaskUpdate {
        task_id: task.task_id.clone(),
        lease_epoch: task.lease_epoch,
        sequence,
        status: status as i32,
        ..Default::default()
    };
    worker
        .client
        .update_task(common::authed(update, &worker.id, &worker.token))
        .await
        .unwrap();
}

#[tokio::test]
async fn metrics_time_dispatching_and_finished_tasks_per_type() {
    // One failure fails a task for good, so a lone worker sees every outcome.
    let m = common::start_configured(tempfile::tempdir().unwrap(), |config| {
        config.task_fail_after_softfail_count = 1;
    })
    .await;
    let text = metrics_text(&m).await;
    let samples = parse_prometheus(&text);
    assert_eq!(
        samples["castanet_dispatch_latency_seconds_count"], 0.0,
        "{text}"
    );
    assert!(text.contains("# TYPE castanet_task_duration_seconds histogram"));

    let mut worker = m.connect(common::misc_sign_on("timed", 1)).await;
    let (_, job) = m.post("/api/v3/jobs", &echo_sleep_job(2, 0)).await;
    let job_id = job["id"].as_str().unwrap().to_string();
    for sequence in 1..=3 {
        finish_next_task(&mut worker, sequence, v1::TaskStatus::Completed).await;
    }
    m.wait_for_job(&job_id, std::time::Duration::from_secs(10), |j| {
        j["status"] == "completed"
    })
    .await;
    let (_, job) = m.post("/api/v3/jobs", &echo_sleep_job(0, 0)).await;
    let job_id = job["id"].as_str().unwrap().to_string();
    finish_next_task(&mut worker, 4, v1::TaskStatus::Failed).await;
    m.wait_for_job(&job_id, std::time::Duration::from_secs(10), |j| {
        j["status"] == "failed"
    })
    .await;

    let text = metrics_text(&m).await;
    let samples = parse_prometheus(&text);
    assert_eq!(
        samples["castanet_dispatch_latency_seconds_count"], 4.0,
        "{text}"
    );
    assert!(samples["castanet_dispatch_latency_seconds_sum"] >= 0.0);
    let completed =
        "castanet_task_duration_seconds_count{task_type=\"misc\",outcome=\"completed\"}";
    let failed = "castanet_task_duration_seconds_count{task_type=\"misc\",outcome=\"failed\"}";
    assert_eq!(samples[completed], 3.0, "{text}");
    assert_eq!(samples[failed], 1.0, "{text}");
    m.manager.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_backup_taken_while_workers_run_restores_every_job() {
    let m = start().await;
    if m.manager
        .state
        .config
        .database_location()
        .sqlite_file()
        .is_none()
    {
        println!("skipped: a backup copies an SQLite file (PostgreSQL is backed up by its server)");
        return;
    }
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
        let first = common::next_message(&mut stream).await.unwrap().unwrap();
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

#[tokio::test]
async fn a_backup_onto_a_taken_name_refuses_and_leaves_that_file_and_no_partial_one() {
    let m = start().await;
    let database = m.manager.state.config.database_path();
    let folder = tempfile::tempdir().unwrap();
    let taken = folder.path().join("taken.sqlite");
    std::fs::write(&taken, b"an operator's file").unwrap();
    // A link to nothing takes the name too.
    let dangling = folder.path().join("dangling.sqlite");
    std::os::unix::fs::symlink(folder.path().join("nowhere"), &dangling).unwrap();

    for file in [&taken, &dangling] {
        let refused = castanet_manager::store::backup(&database, file).await;
        assert!(
            refused.unwrap_err().to_string().contains("exists already"),
            "{}",
            file.display()
        );
    }
    assert_eq!(std::fs::read(&taken).unwrap(), b"an operator's file");
    assert!(std::fs::symlink_metadata(&dangling).unwrap().is_symlink());
    let mut left: Vec<String> = std::fs::read_dir(folder.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["dangling.sqlite", "taken.sqlite"], "no partial file");
    m.manager.shutdown().await.unwrap();
}
