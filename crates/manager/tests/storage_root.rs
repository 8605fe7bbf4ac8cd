//! An unwritable storage directory (issue 23, item 3) is reported, not left for tasks to hang
//! on: the manager refuses to start naming it, and `/readyz` answers 503 while it lasts. A
//! regular file where the log directory should be stands in for a read-only mount: it stops
//! root too, whom permissions do not.
mod common;

use std::time::{Duration, Instant};

use castanet_manager::ManagerConfig;
use serde_json::Value;

/// GETs `path` until it answers `status` (the storage check's outcome is reused for a
/// second), failing after a deadline; returns the last body.
async fn get_until(m: &common::TestManager, path: &str, status: u16) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (got, body) = m.get(path).await;
        if got == status {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "{path} still answers {got}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// POSTs a small job until the answer is `status`, failing after a deadline.
async fn submit_until(m: &common::TestManager, status: u16) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (got, body) = m.post("/api/v3/jobs", &common::echo_sleep_job(1, 1)).await;
        if got == status {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "a submission still answers {got}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_manager_refuses_to_start_on_an_unwritable_storage_directory() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = ManagerConfig::new_default(dir.path());
    config.listen = "127.0.0.1:0".into();
    let jobs = config.storage_path().join("jobs");
    std::fs::create_dir_all(config.storage_path()).expect("storage");
    std::fs::write(&jobs, "not a directory").expect("blocker");

    let error = match castanet_manager::start(config).await {
        Ok(_) => panic!("the manager started on an unwritable storage directory"),
        Err(error) => error.to_string(),
    };
    assert!(
        error.contains("not writable") && error.contains(&jobs.display().to_string()),
        "names the directory: {error}"
    );
}

#[tokio::test]
async fn readyz_fails_while_the_storage_directory_takes_no_files() {
    let m = common::start().await;
    let (status, body) = m.get("/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["storage"], "ok", "{body}");

    let jobs = m.manager.state.config.storage_path().join("jobs");
    std::fs::remove_dir_all(&jobs).expect("remove log directory");
    std::fs::write(&jobs, "not a directory").expect("blocker");
    let body = get_until(&m, "/readyz", 503).await;
    assert_eq!(body["code"], 503, "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("storage directory") && message.contains("not writable"),
        "{message}"
    );

    std::fs::remove_file(&jobs).expect("remove blocker");
    get_until(&m, "/readyz", 200).await;
}

#[tokio::test]
async fn a_submission_is_refused_while_the_storage_directory_takes_no_files() {
    let m = common::start().await;
    let jobs = m.manager.state.config.storage_path().join("jobs");
    std::fs::remove_dir_all(&jobs).expect("remove log directory");
    std::fs::write(&jobs, "not a directory").expect("blocker");
    // Once /readyz has seen it, submissions share that outcome.
    get_until(&m, "/readyz", 503).await;
    let (status, body) = m.post("/api/v3/jobs", &common::echo_sleep_job(1, 1)).await;
    assert_eq!(status, 503, "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("storage directory") && message.contains("nothing was stored"),
        "{message}"
    );
    let (_, listed) = m.get("/api/v3/jobs").await;
    assert_eq!(listed["total"], 0, "{listed}");

    std::fs::remove_file(&jobs).expect("remove blocker");
    submit_until(&m, 200).await;
}
