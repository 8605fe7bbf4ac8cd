//! 50 workers race for 2,000 tasks over real gRPC: every task runs exactly once.
mod common;
mod sim_worker;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use castanet_protocol::v1::instruction::Kind;
use common::echo_sleep_job;
use sim_worker::{SimWorker, start_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_workers_race_for_two_thousand_tasks_without_doubles_or_losses() {
    let m = start_with(|_| {}).await;
    let ran: Arc<Mutex<Vec<String>>> = Arc::default();
    for i in 0..50 {
        let mut worker = SimWorker::connect(&m, &format!("w{i:02}")).await;
        let ran = ran.clone();
        tokio::spawn(async move {
            while let Ok(Some(message)) = common::next_message(&mut worker.stream).await {
                if let Some(Kind::AssignTask(task)) = message.kind {
                    ran.lock().unwrap().push(task.task_id.clone());
                    worker.complete(&task).await;
                }
            }
        });
    }
    let (status, job) = m.post("/api/v3/jobs", &echo_sleep_job(1999, 0)).await;
    assert_eq!(status, 200, "{job}");
    let job_id = job["id"].as_str().unwrap().to_string();
    m.wait_for_job(&job_id, Duration::from_secs(120), |j| {
        j["status"] == "completed"
    })
    .await;
    let ran = ran.lock().unwrap().clone();
    let unique: HashSet<&String> = ran.iter().collect();
    assert_eq!(unique.len(), 2000, "every task ran");
    assert_eq!(ran.len(), 2000, "no task was handed out twice");
    m.manager.shutdown().await.unwrap();
}
