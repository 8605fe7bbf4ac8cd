//! `GET /api/v3/status`: the farm's one-word status follows workers and jobs.
mod common;

use common::{echo_sleep_job, misc_sign_on, start};
use serde_json::json;

async fn status(m: &common::TestManager) -> String {
    let (code, body) = m.get("/api/v3/status").await;
    assert_eq!(code, 200, "{body}");
    body["status"].as_str().unwrap_or_default().to_string()
}

#[tokio::test]
async fn farm_status_follows_workers_and_work() {
    let m = start().await;
    assert_eq!(status(&m).await, "inoperative", "no workers yet");

    // Kept open so the worker stays connected (awake).
    let _worker = m.connect(misc_sign_on("status-node", 1)).await;
    assert_eq!(status(&m).await, "idle", "an awake worker and no work");

    let mut paused = echo_sleep_job(1, 0);
    paused["initial_status"] = json!("paused");
    let (code, _) = m.post("/api/v3/jobs", &paused).await;
    assert_eq!(code, 200);
    assert_eq!(status(&m).await, "idle", "a paused job is not work");

    let (code, _) = m.post("/api/v3/jobs", &echo_sleep_job(1, 0)).await;
    assert_eq!(code, 200);
    assert_eq!(
        status(&m).await,
        "active",
        "queued work and an awake worker"
    );
}
