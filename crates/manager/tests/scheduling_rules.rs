//! The behaviours of reference §16 ("easiest to get wrong") that concern the manager,
//! item by item. Where a test elsewhere already shows an item, it is named here instead
//! of repeated; the items without one have their test in this file.
//!
//! | §16 item | shown by |
//! |---|---|
//! | 1 scheduler eligibility | `concurrency.rs`, `failures.rs` (failure list, blocklist), `management.rs::a_tagged_job_waits_for_tagged_workers_until_its_tag_is_cleared`, `requirements.rs`, `state::why` unit tests |
//! | 2 ordering | [`item_2_job_priority_then_creation_order_decide_who_runs_first`] |
//! | 2 re-delivery | `worker_protocol.rs::a_reconnecting_worker_hands_back_tasks_it_no_longer_runs` (tasks it still runs are kept under their lease) |
//! | 3 double assignment | `concurrency.rs::fifty_workers_race_for_two_thousand_tasks_without_doubles_or_losses`, `worker_protocol.rs::concurrent_workers_never_get_the_same_task` |
//! | 4 pending status request gates scheduling | `worker_status.rs::a_lazy_sleep_waits_for_the_task_then_no_new_task_until_awake` |
//! | 5 job/task rippling and follow-ups | `state::ripple` and `state::job_change` unit tests, `job_actions.rs::pause_waits_for_the_running_task_and_resume_runs_the_rest` |
//! | 6 requeue semantics | `job_actions.rs::user_requeue_clears_failure_lists_and_blocklist`, `job_actions.rs::requeueing_one_task_of_a_failed_job_makes_it_runnable`, `state::job_change` unit tests |
//! | 7 worker-returned tasks go to paused | [`item_7_a_task_handed_back_while_its_job_pauses_becomes_paused`] |
//! | 8 soft/hard failure and the % rule | `failures.rs`, `state::failure` unit tests |
//! | 9 blocklisting (without upstream's off-by-ones) | `failures.rs::blocklisting_at_the_threshold_requeues_the_workers_failed_tasks`, `state::failure::tests::blocklisting_happens_at_the_threshold_not_one_before` |
//! | 10 timeouts | `timeouts.rs` |
//! | 11 sign-off/sign-on memory | `sign_off.rs` |
//! | 12, 13 variables | `job_types.rs::paths_submitted_on_windows_reach_each_worker_in_its_own_notation`, `variables` unit tests |
//! | 14 add-on response strictness | `addon_contract.rs` |
//! | 15 job compile contract | `api.rs`, `job_types.rs` |
//! | 16 frame chunker | compiler unit tests |
//! | 17 Shaman | `shaman.rs` |
//! | 18 log/update pipeline (manager side: 409 = task reassigned) | `timeouts.rs::only_the_lease_holder_can_touch_a_task` |
//! | 20 sleep schedules | `worker_status.rs::a_sleep_schedule_puts_the_worker_to_sleep_and_wakes_it_without_fighting_the_operator`, `state::sleep` unit tests |
mod common;
mod sim_worker;

use std::time::Duration;

use common::{TestManager, echo_sleep_job};
use serde_json::json;
use sim_worker::{SimWorker, start_with};

async fn submit(m: &TestManager, name: &str, priority: i64) -> String {
    let mut job = echo_sleep_job(1, 0);
    job["name"] = json!(name);
    job["priority"] = json!(priority);
    let (status, answer) = m.post("/api/v3/jobs", &job).await;
    assert_eq!(status, 200, "{answer}");
    answer["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn item_2_job_priority_then_creation_order_decide_who_runs_first() {
    let m = start_with(|_| {}).await;
    // Submitted while no worker is there, so the whole queue is known at the first pick.
    let low = submit(&m, "low", 30).await;
    let high_old = submit(&m, "high-old", 70).await;
    let high_new = submit(&m, "high-new", 70).await;
    let mut w = SimWorker::connect(&m, "only").await;
    let mut order = Vec::new();
    for _ in 0..6 {
        let task = w.next_assignment().await;
        order.push((task.job_id.clone(), task.task_name.clone()));
        w.complete(&task).await;
    }
    // Each job is echo → sleep (the sleep waits for the echo). Once the older high job's
    // echo is done its sleep outranks the newer job of the same priority.
    let expected = [
        (&high_old, "echo"),
        (&high_old, "sleep"),
        (&high_new, "echo"),
        (&high_new, "sleep"),
        (&low, "echo"),
        (&low, "sleep"),
    ];
    let got: Vec<(&String, &str)> = order.iter().map(|(j, n)| (j, n.as_str())).collect();
    let names = |j: &String| match j {
        j if *j == low => "low",
        j if *j == high_old => "high-old",
        _ => "high-new",
    };
    let readable: Vec<String> = got
        .iter()
        .map(|(j, n)| format!("{}:{n}", names(j)))
        .collect();
    assert_eq!(got.len(), expected.len());
    for ((job, name), (want_job, want_name)) in got.iter().zip(expected.iter()) {
        assert!(
            *job == *want_job && name.starts_with(want_name),
            "order was {readable:?}"
        );
    }
}

#[tokio::test]
async fn item_7_a_task_handed_back_while_its_job_pauses_becomes_paused() {
    let m = start_with(|_| {}).await;
    let job = submit(&m, "pausing", 50).await;
    let mut w = SimWorker::connect(&m, "w").await;
    let running = w.next_assignment().await;
    let (status, answer) = m
        .post(
            &format!("/api/v3/jobs/{job}/setstatus"),
            &json!({ "status": "pause-requested", "reason": "test" }),
        )
        .await;
    assert!(status < 300, "{answer}");
    // The worker signs off while the task still runs: it is handed back, and as its job
    // is pausing it becomes paused, not queued — and the job reaches paused.
    w.client
        .sign_off(common::authed(
            castanet_protocol::v1::SignOffRequest {
                reason: "test".into(),
            },
            &w.id,
            &w.token,
        ))
        .await
        .expect("signs off");
    m.wait_for_job(&job, Duration::from_secs(10), |j| j["status"] == "paused")
        .await;
    let (_, task) = m.get(&format!("/api/v3/tasks/{}", running.task_id)).await;
    assert_eq!(task["status"], "paused", "{task}");
}
