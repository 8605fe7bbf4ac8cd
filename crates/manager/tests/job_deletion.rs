//! Job deletion as Flamenco does it: a deleted job loses its tasks, logs, previews and
//! (unless another job uses it) its Shaman checkout; running tasks are aborted first;
//! `job-deleted` is announced; mass deletion by last update; what-would-delete-do; and
//! jobs left marked by an interrupted deletion are finished by the sweep.
mod common;
mod sim_worker;

use std::time::Duration;

use castanet_manager::job_deleter;
use castanet_protocol::v1::instruction::Kind;
use futures::StreamExt;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sim_worker::{SimWorker, start_with};

async fn submit(m: &common::TestManager, body: &Value) -> String {
    let (status, job) = m.post("/api/v3/jobs", body).await;
    assert_eq!(status, 200, "{job}");
    job["id"].as_str().unwrap().to_string()
}

async fn delete(m: &common::TestManager, path: &str, body: Option<&str>) -> (u16, Value) {
    let mut request = m.http.delete(format!("{}{path}", m.url));
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Opens the event stream (before the change it should see).
async fn subscribe(m: &common::TestManager) -> reqwest::Response {
    let response = m
        .http
        .get(format!("{}/api/v3/events", m.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    response
}

/// Reads SSE events (name, data) until every job in `jobs` had a `job-deleted` event.
async fn until_deleted(response: reqwest::Response, jobs: &[&str]) -> Vec<(String, Value)> {
    let mut body = response.bytes_stream();
    let mut buffer = String::new();
    let mut events: Vec<(String, Value)> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let all_deleted = |events: &[(String, Value)]| {
        jobs.iter().all(|job| {
            events
                .iter()
                .any(|(name, data)| name == "job-deleted" && data["job_id"] == *job)
        })
    };
    while !all_deleted(&events) {
        let chunk = tokio::time::timeout_at(deadline, body.next())
            .await
            .expect("job-deleted events arrive in time")
            .expect("stream open")
            .expect("chunk");
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let name = block.lines().find_map(|l| l.strip_prefix("event:"));
            let data = block.lines().find_map(|l| l.strip_prefix("data:"));
            if let (Some(name), Some(data)) = (name, data) {
                let data = serde_json::from_str(data.trim()).unwrap_or(Value::Null);
                events.push((name.trim().to_string(), data));
            }
        }
    }
    events
}

#[tokio::test]
async fn deleting_a_running_job_aborts_it_and_removes_its_rows_and_files() {
    let m = start_with(|_| {}).await;
    let mut worker = SimWorker::connect(&m, "w").await;
    let job = submit(&m, &common::echo_sleep_job(1, 0)).await;
    let running = worker.next_assignment().await;
    let state = &m.manager.state;
    state
        .logs
        .append_manager_line(&job, &running.task_id, "rendering")
        .await
        .unwrap();
    let job_dir = state.logs.job_dir(&job);
    assert!(
        job_dir
            .join(format!("task-{}.txt", running.task_id))
            .exists()
    );
    let (_, other) = m.post("/api/v3/jobs", &common::echo_sleep_job(1, 0)).await;
    let events = subscribe(&m).await;

    let (status, body) = delete(&m, &format!("/api/v3/jobs/{job}"), None).await;
    assert_eq!(status, 204, "{body}");
    match worker.next_instruction().await {
        Kind::AbortTask(abort) => assert_eq!(abort.task_id, running.task_id),
        other => panic!("expected the running task to be aborted, got {other:?}"),
    }
    let seen = until_deleted(events, &[&job]).await;
    let names: Vec<&str> = seen
        .iter()
        .filter(|(_, data)| data["job_id"] == job.as_str())
        .map(|(name, _)| name.as_str())
        .collect();
    assert_eq!(
        names.first(),
        Some(&"job"),
        "the mark is announced: {seen:?}"
    );
    assert_eq!(names.last(), Some(&"job-deleted"), "{seen:?}");

    assert_eq!(m.get(&format!("/api/v3/jobs/{job}")).await.0, 404);
    let task = m.get(&format!("/api/v3/tasks/{}", running.task_id)).await;
    assert_eq!(task.0, 404, "{}", task.1);
    assert!(!job_dir.exists(), "the job's logs and previews are gone");
    assert_eq!(
        m.get(&format!("/api/v3/jobs/{}", other["id"].as_str().unwrap()))
            .await
            .0,
        200
    );
    let (status, body) = delete(&m, &format!("/api/v3/jobs/{job}"), None).await;
    assert_eq!(status, 404, "a deleted job is unknown: {body}");
    assert_eq!(body["code"], 404);
    m.manager.shutdown().await.unwrap();
}

/// Uploads one file and checks it out at `path`; returns the checkout's directory.
async fn checkout(m: &common::TestManager, path: &str) -> std::path::PathBuf {
    let content = b"a blend file".to_vec();
    let sha = hex::encode(Sha256::digest(&content));
    let size = content.len();
    let uploaded = m
        .http
        .post(format!("{}/api/v3/shaman/files/{sha}/{size}", m.url))
        .body(content)
        .send()
        .await
        .unwrap();
    assert!(uploaded.status().is_success(), "{}", uploaded.status());
    let files = json!([{ "sha": sha, "size": size, "path": "scene.blend" }]);
    let (status, made) = m
        .post(
            "/api/v3/shaman/checkout/create",
            &json!({ "files": files, "checkoutPath": path }),
        )
        .await;
    assert_eq!(status, 200, "{made}");
    m.dir.path().join("castanet-shared/jobs").join(path)
}

fn with_checkout(path: &str) -> Value {
    let mut job = common::echo_sleep_job(1, 0);
    job["storage"] = json!({ "shaman_checkout_id": path });
    job
}

async fn removes_checkout(m: &common::TestManager, job: &str) -> bool {
    let (status, info) = m
        .get(&format!("/api/v3/jobs/{job}/what-would-delete-do"))
        .await;
    assert_eq!(status, 200, "{info}");
    info["shaman_checkout"].as_bool().expect("a boolean")
}

#[tokio::test]
async fn a_shaman_checkout_goes_with_the_last_job_that_uses_it() {
    let m = common::start().await;
    let dir = checkout(&m, "project/shot-1").await;
    assert!(dir.join("scene.blend").exists());
    let first = submit(&m, &with_checkout("project/shot-1")).await;
    let second = submit(&m, &with_checkout("project/shot-1")).await;
    let plain = submit(&m, &common::echo_sleep_job(1, 0)).await;

    assert!(
        !removes_checkout(&m, &first).await,
        "the other job still uses it"
    );
    assert!(!removes_checkout(&m, &plain).await, "no checkout");
    let (status, _) = m
        .get(&format!(
            "/api/v3/jobs/{}/what-would-delete-do",
            uuid::Uuid::new_v4()
        ))
        .await;
    assert_eq!(status, 404);

    assert_eq!(
        delete(&m, &format!("/api/v3/jobs/{first}"), None).await.0,
        204
    );
    assert!(dir.join("scene.blend").exists(), "kept for the second job");
    assert!(removes_checkout(&m, &second).await);
    assert_eq!(
        delete(&m, &format!("/api/v3/jobs/{second}"), None).await.0,
        204
    );
    assert!(!dir.exists(), "the checkout is removed with its last job");
    m.manager.shutdown().await.unwrap();
}

#[tokio::test]
async fn mass_deletion_removes_the_jobs_updated_until_the_bound_rounded_up() {
    let m = common::start().await;
    let old_a = submit(&m, &common::echo_sleep_job(1, 0)).await;
    let old_b = submit(&m, &common::echo_sleep_job(1, 0)).await;
    let (_, job_b) = m.get(&format!("/api/v3/jobs/{old_b}")).await;
    let updated = job_b["updated"].as_str().unwrap().to_string();
    let bound: chrono::DateTime<chrono::Utc> = updated.parse().unwrap();
    // The bound is rounded up to the next whole second: a job updated after that stays.
    let whole = chrono::DurationRound::duration_trunc(bound, chrono::TimeDelta::seconds(1))
        .unwrap()
        + chrono::TimeDelta::seconds(1);
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    while chrono::Utc::now() <= whole {
        assert!(std::time::Instant::now() < deadline, "the clock moves on");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let newer = submit(&m, &common::echo_sleep_job(1, 0)).await;

    let path = "/api/v3/jobs/mass-delete";
    for bad in ["", "{}", "[1]", r#"{"last_updated_max": "soon"}"#] {
        let (status, body) = delete(&m, path, Some(bad)).await;
        assert_eq!(status, 400, "{bad:?} → {body}");
        assert!(body["message"].as_str().is_some_and(|t| !t.is_empty()));
    }
    let none = json!({ "last_updated_max": "2001-01-01T00:00:00Z" }).to_string();
    assert_eq!(delete(&m, path, Some(&none)).await.0, 416);

    let events = subscribe(&m).await;
    let selection = json!({ "last_updated_max": updated }).to_string();
    let (status, body) = delete(&m, path, Some(&selection)).await;
    assert_eq!(status, 204, "{body}");
    until_deleted(events, &[&old_a, &old_b]).await;
    assert_eq!(m.get(&format!("/api/v3/jobs/{old_a}")).await.0, 404);
    assert_eq!(m.get(&format!("/api/v3/jobs/{old_b}")).await.0, 404);
    let (status, kept) = m.get(&format!("/api/v3/jobs/{newer}")).await;
    assert_eq!(status, 200);
    assert!(kept.get("delete_requested_at").is_none(), "{kept}");
    m.manager.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_sweep_finishes_deletions_left_marked() {
    let m = common::start().await;
    let job = submit(&m, &common::echo_sleep_job(1, 0)).await;
    let state = &m.manager.state;
    // As after a crash between the request and the deletion: marked, still there.
    state.store.mark_job_for_deletion(&job).await.unwrap();
    let (status, marked) = m.get(&format!("/api/v3/jobs/{job}")).await;
    assert_eq!(status, 200);
    assert!(marked["delete_requested_at"].is_string(), "{marked}");
    assert_eq!(
        state.store.jobs_marked_for_deletion().await.unwrap(),
        std::slice::from_ref(&job)
    );

    job_deleter::sweep(state).await;
    assert_eq!(m.get(&format!("/api/v3/jobs/{job}")).await.0, 404);
    assert!(
        state
            .store
            .jobs_marked_for_deletion()
            .await
            .unwrap()
            .is_empty()
    );
    m.manager.shutdown().await.unwrap();
}
