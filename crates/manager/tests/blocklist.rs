//! `DELETE /api/v3/jobs/{id}/blocklist`: removing an entry lets the blocklisted worker take
//! the job's tasks of that type again; bad bodies and unknown jobs are refused.
mod common;
mod sim_worker;

use castanet_protocol::v1::FaultClass;
use serde_json::{Value, json};
use sim_worker::{SimWorker, start_with};

async fn remove(m: &common::TestManager, job: &str, body: &str) -> (u16, Value) {
    let response = m
        .http
        .delete(format!("{}/api/v3/jobs/{job}/blocklist", m.url))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test]
async fn removing_a_blocklist_entry_lets_the_worker_run_the_task_type_again() {
    let m = start_with(|_| {}).await;
    let mut worker = SimWorker::connect(&m, "only").await;
    let (status, job) = m.post("/api/v3/jobs", &common::echo_sleep_job(1, 0)).await;
    assert_eq!(status, 200, "{job}");
    let job = job["id"].as_str().unwrap().to_string();
    let echo = worker.next_assignment().await;
    // A worker fault blocklists the worker for the task type at once.
    worker.fail(&echo, FaultClass::MissingExecutable).await;
    let path = format!("/api/v3/jobs/{job}/blocklist");
    let (_, blocklist) = m.get(&path).await;
    assert_eq!(blocklist.as_array().map(Vec::len), Some(1), "{blocklist}");
    let entry = &blocklist[0];
    assert_eq!(entry["worker_id"], worker.id.as_str());

    for bad in ["[]", "{}", "not json", r#"[{"worker_id": "x"}]"#] {
        let (status, body) = remove(&m, &job, bad).await;
        assert_eq!(status, 400, "{bad:?} → {body}");
        assert_eq!(body["code"], 400, "{body}");
    }
    let unknown = uuid::Uuid::new_v4().to_string();
    let one = json!([{ "worker_id": worker.id, "task_type": "misc" }]).to_string();
    assert_eq!(remove(&m, &unknown, &one).await.0, 404);
    let (_, unchanged) = m.get(&path).await;
    assert_eq!(unchanged, blocklist, "refused requests change nothing");

    // Entries not on the list are ignored; the real one goes, name included or not.
    let entries = json!([
        { "worker_id": worker.id, "task_type": "blender" },
        { "worker_id": worker.id, "task_type": "misc", "worker_name": "only" },
    ]);
    let (status, body) = remove(&m, &job, &entries.to_string()).await;
    assert_eq!(status, 204, "{body}");
    let (_, after) = m.get(&path).await;
    assert_eq!(after, json!([]));

    // The job failed when its only worker was blocklisted; requeued, the worker may run it.
    let (_, task) = m.get(&format!("/api/v3/tasks/{}", echo.task_id)).await;
    if task["status"] != "queued" && task["status"] != "soft-failed" {
        let (status, body) = m
            .post(
                &format!("/api/v3/tasks/{}/setstatus", echo.task_id),
                &json!({ "status": "queued", "reason": "blocklist cleared" }),
            )
            .await;
        assert_eq!(status, 204, "{body}");
    }
    let again = worker.next_assignment().await;
    assert_eq!(again.task_id, echo.task_id);
    m.manager.shutdown().await.unwrap();
}
