//! `GET /api/v3/eta` over real gRPC workers: no estimate before a task completed, then a
//! finish time inside its range for each running job and the farm; paused jobs get none.
mod common;
mod sim_worker;

use common::echo_sleep_job;
use serde_json::{Value, json};
use sim_worker::{SimWorker, next_assignment_any, start_with};

fn entry<'a>(eta: &'a Value, job: &str) -> &'a Value {
    eta["jobs"]
        .as_array()
        .and_then(|jobs| jobs.iter().find(|j| j["job_id"] == job))
        .unwrap_or_else(|| panic!("{job} in {eta}"))
}

#[tokio::test]
async fn jobs_and_the_farm_get_a_finish_time_once_tasks_have_completed() {
    let m = start_with(|_| {}).await;
    let mut workers = vec![
        SimWorker::connect(&m, "a").await,
        SimWorker::connect(&m, "b").await,
    ];
    let (_, job) = m.post("/api/v3/jobs", &echo_sleep_job(6, 0)).await;
    let job_id = job["id"].as_str().expect("id").to_string();
    let mut paused = echo_sleep_job(2, 0);
    paused["initial_status"] = json!("paused");
    let (_, paused) = m.post("/api/v3/jobs", &paused).await;
    let paused_id = paused["id"].as_str().expect("id").to_string();

    let (first, echo) = next_assignment_any(&mut workers).await;
    let (status, eta) = m.get("/api/v3/eta").await;
    assert_eq!(status, 200, "{eta}");
    let running = entry(&eta, &job_id);
    assert!(running.get("finish_at").is_none(), "{eta}");
    assert!(
        running["basis"]
            .as_str()
            .is_some_and(|b| b.contains("no task")),
        "{eta}"
    );
    assert_eq!(running["remaining_tasks"], 7);

    workers[first].complete(&echo).await;
    let (index, sleep) = next_assignment_any(&mut workers).await;
    let (_, eta) = m.get("/api/v3/eta").await;
    let running = entry(&eta, &job_id);
    let text = |v: &Value, k: &str| v[k].as_str().unwrap_or_default().to_string();
    assert!(!text(running, "finish_at").is_empty(), "{eta}");
    // RFC 3339 times in UTC with milliseconds compare as text.
    assert!(
        text(running, "earliest") <= text(running, "finish_at"),
        "{eta}"
    );
    assert!(
        text(running, "finish_at") <= text(running, "latest"),
        "{eta}"
    );
    assert!(
        text(running, "basis").contains("from 1 completed task"),
        "{eta}"
    );
    assert_eq!(running["remaining_tasks"], 6);
    assert!(
        text(&eta["farm"], "finish_at") >= text(running, "finish_at"),
        "{eta}"
    );
    assert_eq!(eta["farm"]["remaining_tasks"], 9, "{eta}");
    let held = entry(&eta, &paused_id);
    assert!(held.get("finish_at").is_none(), "{eta}");
    assert!(text(held, "basis").contains("does not run now"), "{eta}");
    workers[index].complete(&sleep).await;
}
