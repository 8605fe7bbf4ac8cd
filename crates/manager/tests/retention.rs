//! Housekeeping with a hand-moved clock: task logs of old finished jobs, of deleted jobs
//! and beyond the size cap are deleted (never those of jobs that can still run), and
//! workers offline too long are removed.
mod common;

use std::time::Duration;

use castanet_manager::monitor::{ManualClock, RetentionSettings, retention};
use common::{TestManager, authed, echo_sleep_job, start};

const DAY: Duration = Duration::from_secs(24 * 3600);

/// Submits a one-task job, writes `bytes` of log for its task; returns (job id, task id).
async fn job_with_log(m: &TestManager, bytes: usize) -> (String, String) {
    let (status, job) = m.post("/api/v3/jobs", &echo_sleep_job(0, 0)).await;
    assert_eq!(status, 200, "{job}");
    let job_id = job["id"].as_str().unwrap().to_string();
    let (_, tasks) = m.get(&format!("/api/v3/jobs/{job_id}/tasks")).await;
    let task_id = tasks["tasks"][0]["id"].as_str().unwrap().to_string();
    let line = "x".repeat(99);
    let text = vec![line; bytes / 100].join("\n");
    m.manager
        .state
        .logs
        .append(&job_id, &task_id, &text)
        .await
        .unwrap();
    (job_id, task_id)
}

async fn cancel(m: &TestManager, job_id: &str) {
    let (status, body) = m
        .post(
            &format!("/api/v3/jobs/{job_id}/setstatus"),
            &serde_json::json!({ "status": "cancel-requested", "reason": "test" }),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    m.wait_for_job(job_id, Duration::from_secs(10), |j| {
        j["status"] == "canceled"
    })
    .await;
}

/// Waits until the stored clock (millisecond text) has moved past the last change, so
/// the next job finishes strictly later.
async fn next_millisecond() {
    let start = castanet_manager::store::now();
    let deadline = std::time::Instant::now() + Duration::from_secs(1);
    while castanet_manager::store::now() == start {
        assert!(std::time::Instant::now() < deadline);
        tokio::task::yield_now().await;
    }
}

fn log_exists(m: &TestManager, job_id: &str, task_id: &str) -> bool {
    m.manager.state.logs.path(job_id, task_id).exists()
}

#[tokio::test]
async fn logs_of_old_finished_and_deleted_jobs_go_while_queued_jobs_keep_theirs() {
    let m = start().await;
    let clock = ManualClock::starting_now();
    let (old_job, old_task) = job_with_log(&m, 1000).await;
    cancel(&m, &old_job).await;
    let (queued_job, queued_task) = job_with_log(&m, 1000).await;
    let (deleted_job, deleted_task) = job_with_log(&m, 1000).await;
    let url = format!("{}/api/v3/jobs/{deleted_job}", m.url);
    let deleted = m.http.delete(url).send().await.unwrap();
    assert_eq!(deleted.status().as_u16(), 204);
    assert!(
        !log_exists(&m, &deleted_job, &deleted_task),
        "deleting a job removes its files"
    );
    // A late write (a worker that had not stopped yet) leaves files of a deleted job.
    m.manager
        .state
        .logs
        .append(&deleted_job, &deleted_task, "late line")
        .await
        .unwrap();
    assert!(log_exists(&m, &deleted_job, &deleted_task));

    let settings = RetentionSettings {
        task_log_max_age: Some(7 * DAY),
        ..Default::default()
    };
    // Now: only the deleted job's files go.
    let report = retention::check_once(&m.manager.state, &clock, &settings).await;
    assert_eq!(report.deleted_job_dirs, [deleted_job.as_str()]);
    assert!(report.jobs_with_logs_deleted.is_empty(), "{report:?}");
    assert!(!m.manager.state.logs.job_dir(&deleted_job).exists());
    assert!(log_exists(&m, &old_job, &old_task));

    // Six days on, nothing is old enough; eight days on, the finished job's logs go.
    clock.advance(6 * DAY);
    let report = retention::check_once(&m.manager.state, &clock, &settings).await;
    assert_eq!(report, Default::default());
    clock.advance(2 * DAY);
    let report = retention::check_once(&m.manager.state, &clock, &settings).await;
    assert_eq!(report.jobs_with_logs_deleted, [old_job.as_str()]);
    assert!(report.bytes_freed >= 900, "{report:?}");
    assert!(!log_exists(&m, &old_job, &old_task));
    assert!(
        log_exists(&m, &queued_job, &queued_task),
        "a queued job keeps its logs"
    );
    // The job itself stays, and a second pass has nothing left to do.
    assert_eq!(m.get(&format!("/api/v3/jobs/{old_job}")).await.0, 200);
    let report = retention::check_once(&m.manager.state, &clock, &settings).await;
    assert_eq!(report, Default::default());
    m.manager.shutdown().await.unwrap();
}

#[tokio::test]
async fn over_the_size_cap_the_oldest_finished_jobs_lose_their_logs_first() {
    let m = start().await;
    let clock = ManualClock::starting_now();
    let (older, older_task) = job_with_log(&m, 3000).await;
    cancel(&m, &older).await;
    next_millisecond().await;
    let (newer, newer_task) = job_with_log(&m, 3000).await;
    cancel(&m, &newer).await;
    let (queued, queued_task) = job_with_log(&m, 3000).await;

    let settings = RetentionSettings {
        task_log_max_bytes: Some(7000),
        ..Default::default()
    };
    let report = retention::check_once(&m.manager.state, &clock, &settings).await;
    assert_eq!(
        report.jobs_with_logs_deleted,
        [older.as_str()],
        "{report:?}"
    );
    assert!(!log_exists(&m, &older, &older_task));
    assert!(log_exists(&m, &newer, &newer_task));
    assert!(log_exists(&m, &queued, &queued_task));
    // Under a cap no finished job can meet, only the queued job's logs remain.
    let settings = RetentionSettings {
        task_log_max_bytes: Some(10),
        ..Default::default()
    };
    let report = retention::check_once(&m.manager.state, &clock, &settings).await;
    assert_eq!(
        report.jobs_with_logs_deleted,
        [newer.as_str()],
        "{report:?}"
    );
    assert!(log_exists(&m, &queued, &queued_task));
    m.manager.shutdown().await.unwrap();
}

#[tokio::test]
async fn workers_offline_longer_than_the_limit_are_removed_and_connected_ones_kept() {
    let m = start().await;
    let clock = ManualClock::starting_now();
    let (away_id, away_token) = m.register("away").await;
    let connected = m.connect(common::misc_sign_on("connected", 1)).await;
    let settings = RetentionSettings {
        offline_worker_max_age: Some(DAY),
        ..Default::default()
    };
    let report = retention::check_once(&m.manager.state, &clock, &settings).await;
    assert!(report.workers_removed.is_empty(), "{report:?}");

    clock.advance(DAY + Duration::from_secs(60));
    let report = retention::check_once(&m.manager.state, &clock, &settings).await;
    assert_eq!(report.workers_removed, [away_id.as_str()]);
    let (_, listed) = m.get("/api/v3/worker-mgt/workers").await;
    let names: Vec<&str> = listed["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["connected"]);
    // The removed worker's token no longer works.
    let refused = m
        .grpc()
        .await
        .sign_on(authed(
            common::misc_sign_on("away", 1),
            &away_id,
            &away_token,
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused}");
    // Off by default.
    let defaults = RetentionSettings::from_config(&Default::default());
    assert!(defaults.offline_worker_max_age.is_none());
    assert!(defaults.task_log_max_age.is_none() && defaults.task_log_max_bytes.is_none());
    drop(connected);
    m.manager.shutdown().await.unwrap();
}

#[tokio::test]
async fn folders_the_manager_did_not_make_for_a_job_survive_a_pass() {
    let m = start().await;
    let clock = ManualClock::starting_now();
    let root = m.manager.state.logs.jobs_root().to_path_buf();
    let id = uuid::Uuid::new_v4();
    let uppercase = id.hyphenated().to_string().to_uppercase();
    let foreign = [
        root.join("proj").join(&uppercase),
        root.join(format!("job-{}", &uppercase[..4]))
            .join(&uppercase),
        root.join("proj").join(id.simple().to_string()),
        root.join(format!("job-{}", &id.to_string()[..4]))
            .join(id.simple().to_string()),
        root.join("proj").join(id.hyphenated().to_string()),
        root.join("other-name").join("x"),
    ];
    for dir in &foreign {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("task-1.txt"), "not the manager's").unwrap();
    }
    // The manager's own folder of an unknown job still goes, as it always did.
    let vanished = m
        .manager
        .state
        .logs
        .job_dir(&uuid::Uuid::new_v4().to_string());
    std::fs::create_dir_all(&vanished).unwrap();

    let settings = RetentionSettings::default();
    let report = retention::check_once(&m.manager.state, &clock, &settings).await;
    assert_eq!(report.deleted_job_dirs.len(), 1, "{report:?}");
    assert!(!vanished.exists());
    for dir in &foreign {
        assert!(
            dir.join("task-1.txt").exists(),
            "{} was removed",
            dir.display()
        );
    }
    m.manager.shutdown().await.unwrap();
}
