//! Timeouts driven by a hand-moved clock: a silent task is failed softly and retried
//! elsewhere; a vanished worker goes to `error`, its task moves on, and it recovers by
//! signing on again; nothing happens during the startup grace.
mod common;
mod sim_worker;

use std::sync::Arc;
use std::time::{Duration, Instant};

use castanet_manager::events::Event;
use castanet_manager::monitor::{ManualClock, Monitor, MonitorSettings};
use castanet_protocol::v1::{self, FaultClass, instruction::Kind};
use common::{authed, echo_sleep_job};
use sim_worker::{SimWorker, sign_on_request, start_with};

const MINUTE: Duration = Duration::from_secs(60);

fn settings() -> MonitorSettings {
    MonitorSettings {
        task_timeout: 10 * MINUTE,
        worker_timeout: MINUTE,
        startup_grace: 15 * MINUTE,
    }
}

async fn submit(m: &common::TestManager) -> String {
    let (status, job) = m.post("/api/v3/jobs", &echo_sleep_job(1, 0)).await;
    assert_eq!(status, 200, "{job}");
    job["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_silent_task_times_out_softly_after_the_grace_and_runs_elsewhere() {
    let m = start_with(|_| {}).await;
    let clock = Arc::new(ManualClock::starting_now());
    let monitor = Monitor::new(m.manager.state.clone(), clock.clone(), settings());
    let mut a = SimWorker::connect(&m, "a").await;
    let _job = submit(&m).await;
    let echo = a.next_assignment().await;
    // A second worker exists (idle: the other task waits for this one).
    let mut b = SimWorker::connect(&m, "b").await;

    clock.advance(11 * MINUTE);
    let report = monitor.check_once().await;
    assert!(
        report.timed_out_tasks.is_empty(),
        "still in the startup grace"
    );

    clock.advance(5 * MINUTE);
    let report = monitor.check_once().await;
    assert_eq!(report.timed_out_tasks, vec![echo.task_id.clone()]);
    match a.next_instruction().await {
        Kind::AbortTask(abort) => assert_eq!(abort.task_id, echo.task_id),
        other => panic!("expected AbortTask, got {other:?}"),
    }
    let (_, task) = m.get(&format!("/api/v3/tasks/{}", echo.task_id)).await;
    let status = task["status"].as_str().unwrap();
    assert!(["soft-failed", "active"].contains(&status), "{task}");
    assert_eq!(task["failed_by_workers"][0]["id"], a.id.as_str());
    let (_, tail) = m
        .get(&format!("/api/v3/tasks/{}/logtail", echo.task_id))
        .await;
    assert!(tail.as_str().unwrap().contains("Task timed out"), "{tail}");

    // The other worker picks it up; the one that timed out does not get it again.
    let retry = b.next_assignment().await;
    assert_eq!(retry.task_id, echo.task_id);
    assert!(
        a.instruction_within(Duration::from_millis(200))
            .await
            .is_none()
    );
    m.manager.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_vanished_worker_goes_to_error_its_task_moves_on_and_it_recovers() {
    let m = start_with(|_| {}).await;
    let clock = Arc::new(ManualClock::starting_now());
    let monitor = Monitor::new(
        m.manager.state.clone(),
        clock.clone(),
        MonitorSettings {
            startup_grace: Duration::ZERO,
            ..settings()
        },
    );
    let mut a = SimWorker::connect(&m, "a").await;
    let _job = submit(&m).await;
    let echo = a.next_assignment().await;
    let (a_id, a_token) = (a.id.clone(), a.token.clone());
    drop(a); // as if the process was killed: the stream closes
    let dispatcher = m.manager.state.dispatcher.clone();
    let deadline = Instant::now() + Duration::from_secs(5);
    while dispatcher.is_connected(&a_id) {
        assert!(
            Instant::now() < deadline,
            "the manager notices the closed stream"
        );
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut b = SimWorker::connect(&m, "b").await;
    assert!(
        b.instruction_within(Duration::from_millis(200))
            .await
            .is_none(),
        "a's task stays with a until the worker timeout"
    );

    clock.advance(2 * MINUTE);
    let report = monitor.check_once().await;
    assert_eq!(report.timed_out_workers, vec![a_id.clone()]);
    let store = &m.manager.state.store;
    assert_eq!(
        store.get_worker(&a_id).await.unwrap().unwrap().status,
        "error"
    );
    let retry = b.next_assignment().await;
    assert_eq!(retry.task_id, echo.task_id, "the task moved to b");
    b.complete(&retry).await;

    // `a` comes back: signing on and connecting takes it out of `error`.
    let mut client = m.grpc().await;
    client
        .sign_on(authed(sign_on_request("a", 1), &a_id, &a_token))
        .await
        .unwrap();
    let _stream = client
        .connect_worker(authed(v1::ConnectRequest::default(), &a_id, &a_token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        store.get_worker(&a_id).await.unwrap().unwrap().status,
        "awake"
    );
    assert!(dispatcher.is_connected(&a_id));
    m.manager.shutdown().await.unwrap();
}

/// A task timeout is a failure of the worker like any other: when it blocklists the worker,
/// the worker's earlier failed tasks of the job go back to the queue — and each of them is
/// announced on the event bus, as after a failure the worker reports itself. (The timeout
/// path once wrote their log lines but published no task event for them.)
#[tokio::test]
async fn tasks_requeued_by_a_blocklisting_after_a_timeout_are_announced() {
    let m = start_with(|c| {
        c.blocklist_threshold = 2;
        c.task_fail_after_softfail_count = 1;
        c.job_fail_percent = 100;
    })
    .await;
    let clock = Arc::new(ManualClock::starting_now());
    let monitor = Monitor::new(
        m.manager.state.clone(),
        clock.clone(),
        MonitorSettings {
            startup_grace: Duration::ZERO,
            ..settings()
        },
    );
    let mut a = SimWorker::connect(&m, "a").await;
    // A second worker that signed on but has no instruction stream: it could run the
    // requeued tasks, so the impossible-task check leaves them queued.
    let (b_id, b_token) = m.register("b").await;
    m.grpc()
        .await
        .sign_on(common::authed(
            common::misc_sign_on("b", 1),
            &b_id,
            &b_token,
        ))
        .await
        .expect("b signs on");
    let (status, job) = m.post("/api/v3/jobs", &echo_sleep_job(2, 0)).await;
    assert_eq!(status, 200, "{job}");
    let job_id = job["id"].as_str().unwrap().to_string();
    let echo = a.next_assignment().await;
    a.complete(&echo).await;
    // One failure, below the blocklist threshold: the task fails for good (after 1 worker).
    let first = a.next_assignment().await;
    a.fail(&first, FaultClass::NonzeroExit).await;
    let (_, task) = m.get(&format!("/api/v3/tasks/{}", first.task_id)).await;
    assert_eq!(task["status"], "failed", "{task}");
    let second = a.next_assignment().await;

    // From here on, every event the timeout publishes is received.
    let mut events = m.manager.state.events.subscribe();
    clock.advance(11 * MINUTE);
    let report = monitor.check_once().await;
    assert_eq!(report.timed_out_tasks, vec![second.task_id.clone()]);
    let (_, blocklist) = m.get(&format!("/api/v3/jobs/{job_id}/blocklist")).await;
    assert_eq!(blocklist.as_array().map(Vec::len), Some(1), "{blocklist}");
    let (_, task) = m.get(&format!("/api/v3/tasks/{}", first.task_id)).await;
    assert_eq!(
        task["status"], "queued",
        "requeued by the blocklisting: {task}"
    );
    let (_, tail) = m
        .get(&format!("/api/v3/tasks/{}/logtail", first.task_id))
        .await;
    assert!(tail.as_str().unwrap().contains("got blocklisted"), "{tail}");

    // The check publishes before it returns: its events are on the bus already.
    let mut announced_tasks = Vec::new();
    while let Ok(published) = events.try_recv() {
        if let Event::Task { task_id, .. } = &published.event {
            announced_tasks.push(task_id.clone());
        }
    }
    assert!(
        announced_tasks.contains(&first.task_id),
        "the requeued task {} is announced; announced: {announced_tasks:?}",
        first.task_id
    );
    assert!(
        announced_tasks.contains(&second.task_id),
        "{announced_tasks:?}"
    );
    m.manager.shutdown().await.unwrap();
}

#[tokio::test]
async fn only_the_lease_holder_can_touch_a_task() {
    let m = start_with(|_| {}).await;
    let mut a = SimWorker::connect(&m, "a").await;
    let _job = submit(&m).await;
    let echo = a.next_assignment().await;
    let store = &m.manager.state.store;
    let epoch = echo.lease_epoch as i64;
    assert!(store.touch_task(&echo.task_id, &a.id, epoch).await.unwrap());
    assert!(
        !store
            .touch_task(&echo.task_id, &a.id, epoch + 1)
            .await
            .unwrap()
    );
    assert!(
        !store
            .touch_task(&echo.task_id, "someone-else", epoch)
            .await
            .unwrap()
    );
    m.manager.shutdown().await.unwrap();
}
