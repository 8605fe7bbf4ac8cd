//! Worker status changes and sleep schedules against a real manager over gRPC: lazy
//! requests wait for the running task and block new ones, forced ones hand the task back,
//! `awake` resumes, `offline` ends in a sign-off, a reconnecting worker gets its pending
//! request, schedules drive sleep with a hand-moved clock, and bad input is refused by name.
mod common;
mod sim_worker;

use std::sync::Arc;
use std::time::{Duration, Instant};

use castanet_manager::events::Event;
use castanet_manager::monitor::{ManualClock, SleepScheduleMonitor};
use castanet_protocol::v1::{self, instruction::Kind};
use common::{TestManager, authed, echo_sleep_job};
use serde_json::{Value, json};
use sim_worker::{SimWorker, sign_on_request, start_with};

const QUIET: Duration = Duration::from_millis(300);

async fn manager() -> TestManager {
    // The background schedule check would use the system clock; tests drive their own.
    start_with(|c| c.sleep_schedule_check_seconds = 0).await
}

async fn submit(m: &TestManager, repeats: i64) -> String {
    let (status, job) = m.post("/api/v3/jobs", &echo_sleep_job(repeats, 0)).await;
    assert_eq!(status, 200, "{job}");
    job["id"].as_str().unwrap().to_string()
}

async fn set_status(m: &TestManager, worker: &str, status: &str, lazy: bool) -> (u16, Value) {
    m.post(
        &format!("/api/v3/worker-mgt/workers/{worker}/setstatus"),
        &json!({ "status": status, "is_lazy": lazy }),
    )
    .await
}

async fn worker(m: &TestManager, id: &str) -> Value {
    let (status, w) = m.get(&format!("/api/v3/worker-mgt/workers/{id}")).await;
    assert_eq!(status, 200, "{w}");
    w
}

/// Polls the worker until `done` holds, failing after 10 s.
async fn wait_for_worker(m: &TestManager, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let w = worker(m, id).await;
        if done(&w) {
            return w;
        }
        assert!(Instant::now() < deadline, "worker never got there: {w}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn expect_change(kind: Kind, status: v1::WorkerStatus, lazy: bool) {
    match kind {
        Kind::ChangeStatus(change) => {
            assert_eq!(change.status(), status, "{change:?}");
            assert_eq!(change.lazy, lazy, "{change:?}");
        }
        other => panic!("expected ChangeStatus {status:?}, got {other:?}"),
    }
}

#[tokio::test]
async fn a_lazy_sleep_waits_for_the_task_then_no_new_task_until_awake() {
    let m = manager().await;
    let mut events = m.manager.state.events.subscribe();
    let mut a = SimWorker::connect(&m, "a").await;
    let _job = submit(&m, 2).await;
    let first = a.next_assignment().await;

    let (status, body) = set_status(&m, &a.id, "asleep", true).await;
    assert_eq!(status, 204, "{body}");
    let w = worker(&m, &a.id).await;
    assert_eq!(w["status"], "awake", "{w}");
    assert_eq!(
        w["status_change"],
        json!({ "status": "asleep", "is_lazy": true })
    );
    // The request is announced on the event bus.
    let announced = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Ok(published) = events.recv().await
                && let Event::Worker { worker_id } = &published.event
                && *worker_id == a.id
            {
                return;
            }
        }
    })
    .await;
    assert!(announced.is_ok(), "no worker event for the request");
    // Nothing reaches the worker while its task runs.
    assert!(a.instruction_within(QUIET).await.is_none());

    a.complete(&first).await;
    expect_change(a.next_instruction().await, v1::WorkerStatus::Asleep, true);
    wait_for_worker(&m, &a.id, |w| {
        w["status"] == "asleep" && w.get("status_change").is_none()
    })
    .await;
    // The next task is runnable, but an asleep worker gets nothing.
    assert!(
        a.instruction_within(QUIET).await.is_none(),
        "an asleep worker got an instruction"
    );

    let (status, body) = set_status(&m, &a.id, "awake", false).await;
    assert_eq!(status, 204, "{body}");
    expect_change(a.next_instruction().await, v1::WorkerStatus::Awake, false);
    let second = a.next_assignment().await;
    assert_ne!(second.task_id, first.task_id);
    assert_eq!(worker(&m, &a.id).await["status"], "awake");
    m.manager.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_forced_sleep_hands_the_running_task_back_without_failing_it() {
    let m = manager().await;
    let mut a = SimWorker::connect(&m, "a").await;
    let _job = submit(&m, 1).await;
    let task = a.next_assignment().await;

    let (status, body) = set_status(&m, &a.id, "asleep", false).await;
    assert_eq!(status, 204, "{body}");
    match a.next_instruction().await {
        Kind::AbortTask(abort) => assert_eq!(abort.task_id, task.task_id),
        other => panic!("expected AbortTask, got {other:?}"),
    }
    expect_change(a.next_instruction().await, v1::WorkerStatus::Asleep, false);
    let (_, t) = m.get(&format!("/api/v3/tasks/{}", task.task_id)).await;
    assert_eq!(t["status"], "queued", "{t}");
    assert_eq!(t["failed_by_workers"], json!([]), "{t}");
    assert_eq!(worker(&m, &a.id).await["status"], "asleep");

    // Another worker takes it over; a late report from the sleeper changes nothing.
    let mut b = SimWorker::connect(&m, "b").await;
    let retry = b.next_assignment().await;
    assert_eq!(retry.task_id, task.task_id);
    assert!(a.instruction_within(QUIET).await.is_none());
    m.manager.shutdown().await.unwrap();
}

#[tokio::test]
async fn offline_signs_the_worker_off_and_restart_needs_a_restartable_worker() {
    let m = manager().await;
    let mut a = SimWorker::connect(&m, "a").await;
    let (status, body) = set_status(&m, &a.id, "restart", false).await;
    assert_eq!(status, 412, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("cannot restart"),
        "{body}"
    );

    let (status, body) = set_status(&m, &a.id, "offline", true).await;
    assert_eq!(status, 204, "{body}");
    // Idle, so the lazy request goes out at once; it stays pending until the sign-off.
    expect_change(a.next_instruction().await, v1::WorkerStatus::Offline, true);
    assert_eq!(
        worker(&m, &a.id).await["status_change"]["status"],
        "offline"
    );
    a.client
        .sign_off(authed(v1::SignOffRequest::default(), &a.id, &a.token))
        .await
        .expect("signs off");
    let w = worker(&m, &a.id).await;
    assert_eq!(w["status"], "offline", "{w}");
    assert!(w.get("status_change").is_none(), "{w}");
    m.manager.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_restartable_worker_is_told_to_restart_and_a_reconnecting_worker_gets_its_request() {
    let m = manager().await;
    let (id, token) = m.register("r").await;
    let mut client = m.grpc().await;
    let mut sign_on = sign_on_request("r", 1);
    sign_on.can_restart = true;
    client
        .sign_on(authed(sign_on.clone(), &id, &token))
        .await
        .expect("signs on");
    let stream = client
        .connect_worker(authed(v1::ConnectRequest::default(), &id, &token))
        .await
        .expect("connects")
        .into_inner();
    // Gone: the request waits for it.
    drop(stream);
    wait_for_worker(&m, &id, |w| w["connected"] == false).await;
    let (status, body) = set_status(&m, &id, "restart", false).await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(worker(&m, &id).await["status_change"]["status"], "restart");

    client
        .sign_on(authed(sign_on, &id, &token))
        .await
        .expect("signs on again");
    let mut stream = client
        .connect_worker(authed(v1::ConnectRequest::default(), &id, &token))
        .await
        .expect("connects again")
        .into_inner();
    let message = tokio::time::timeout(Duration::from_secs(10), common::next_message(&mut stream))
        .await
        .expect("an instruction in time")
        .expect("stream healthy")
        .expect("stream open");
    expect_change(message.kind.unwrap(), v1::WorkerStatus::Restart, false);
    m.manager.shutdown().await.unwrap();
}

#[tokio::test]
async fn clearing_a_pending_request_lets_the_worker_carry_on() {
    let m = manager().await;
    let mut a = SimWorker::connect(&m, "a").await;
    let _job = submit(&m, 2).await;
    let first = a.next_assignment().await;
    let (status, _) = set_status(&m, &a.id, "asleep", true).await;
    assert_eq!(status, 204);
    let url = format!("{}/api/v3/worker-mgt/workers/{}/setstatus", m.url, a.id);
    let response = m.http.delete(&url).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 204);
    assert!(worker(&m, &a.id).await.get("status_change").is_none());
    a.complete(&first).await;
    let second = a.next_assignment().await;
    assert_ne!(second.task_id, first.task_id);

    let unknown = format!(
        "{}/api/v3/worker-mgt/workers/{}/setstatus",
        m.url,
        uuid::Uuid::new_v4()
    );
    let response = m.http.delete(&unknown).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 404);
    m.manager.shutdown().await.unwrap();
}

/// `HH:MM` of the manager-local time `offset` after `clock`'s now.
fn local_hhmm(clock: &ManualClock, offset: Duration) -> String {
    use castanet_manager::monitor::Clock;
    let at = clock.now() + chrono::Duration::from_std(offset).unwrap();
    at.with_timezone(&chrono::Local).format("%H:%M").to_string()
}

#[tokio::test]
async fn a_sleep_schedule_puts_the_worker_to_sleep_and_wakes_it_without_fighting_the_operator() {
    let m = manager().await;
    let clock = Arc::new(ManualClock::starting_now());
    let monitor = SleepScheduleMonitor::new(m.manager.state.clone(), clock.clone());
    let mut a = SimWorker::connect(&m, "a").await;
    let path = format!("/api/v3/worker-mgt/workers/{}/sleep-schedule", a.id);
    let (status, _) = m.get(&path).await;
    assert_eq!(status, 204, "no schedule yet");

    let hour = Duration::from_secs(3600);
    let schedule = json!({
        "is_active": true,
        "days_of_week": "",
        "start_time": local_hhmm(&clock, hour),
        "end_time": local_hhmm(&clock, 2 * hour),
    });
    let (status, body) = m.post(&path, &schedule).await;
    assert_eq!(status, 204, "{body}");
    let (status, stored) = m.get(&path).await;
    assert_eq!(status, 200);
    assert_eq!(stored, schedule);
    assert!(monitor.check_once().await.requested.is_empty(), "awake now");

    clock.advance(hour + hour / 2);
    let report = monitor.check_once().await;
    assert_eq!(report.requested.len(), 1, "{report:?}");
    expect_change(a.next_instruction().await, v1::WorkerStatus::Asleep, true);
    assert_eq!(worker(&m, &a.id).await["status"], "asleep");

    // The operator wakes it at night: the schedule leaves it awake until its next change.
    let (status, _) = set_status(&m, &a.id, "awake", false).await;
    assert_eq!(status, 204);
    expect_change(a.next_instruction().await, v1::WorkerStatus::Awake, false);
    assert!(monitor.check_once().await.requested.is_empty());
    assert_eq!(worker(&m, &a.id).await["status"], "awake");

    // Put back to sleep by hand, the morning wakes it.
    let (status, _) = set_status(&m, &a.id, "asleep", false).await;
    assert_eq!(status, 204);
    expect_change(a.next_instruction().await, v1::WorkerStatus::Asleep, false);
    clock.advance(hour + hour / 2);
    let report = monitor.check_once().await;
    assert_eq!(report.requested.len(), 1, "{report:?}");
    expect_change(a.next_instruction().await, v1::WorkerStatus::Awake, true);
    assert_eq!(worker(&m, &a.id).await["status"], "awake");
    m.manager.shutdown().await.unwrap();
}

#[tokio::test]
async fn bad_requests_are_refused_by_name_and_change_nothing() {
    let m = manager().await;
    let a = SimWorker::connect(&m, "a").await;
    let setstatus = format!("/api/v3/worker-mgt/workers/{}/setstatus", a.id);
    let cases = [
        (json!({ "status": "sleepy", "is_lazy": true }), "sleepy"),
        (json!({ "status": "starting", "is_lazy": true }), "starting"),
        (json!({ "status": "asleep" }), "is_lazy"),
        (json!({ "is_lazy": false }), "status"),
        (json!({ "status": 3, "is_lazy": false }), "status"),
    ];
    for (body, named) in cases {
        let (status, answer) = m.post(&setstatus, &body).await;
        assert_eq!(status, 400, "{body}: {answer}");
        let message = answer["message"].as_str().unwrap();
        assert!(message.contains(named), "{body}: {message}");
    }
    let (status, _) = m.post_raw(&setstatus, "not json").await;
    assert_eq!(status, 400);
    let (status, _) = set_status(&m, &uuid::Uuid::new_v4().to_string(), "asleep", true).await;
    assert_eq!(status, 404);
    let (status, _) = set_status(&m, "not-a-uuid", "asleep", true).await;
    assert_eq!(status, 400);
    assert!(worker(&m, &a.id).await.get("status_change").is_none());

    let schedule = format!("/api/v3/worker-mgt/workers/{}/sleep-schedule", a.id);
    let good = json!({ "is_active": true, "days_of_week": "Mo,TU", "start_time": "22:00", "end_time": "06:00" });
    let cases = [
        ("days_of_week", json!("mo funday"), "funday"),
        ("start_time", json!("25:00"), "start_time"),
        ("end_time", json!("noon"), "end_time"),
        ("is_active", json!("yes"), "is_active"),
    ];
    for (field, value, named) in cases {
        let mut body = good.clone();
        body[field] = value;
        let (status, answer) = m.post(&schedule, &body).await;
        assert_eq!(status, 400, "{body}: {answer}");
        let message = answer["message"].as_str().unwrap();
        assert!(
            message.contains(named) && message.contains(field),
            "{body}: {message}"
        );
    }
    let (status, _) = m.get(&schedule).await;
    assert_eq!(status, 204, "nothing was stored");
    let (status, body) = m.post(&schedule, &good).await;
    assert_eq!(status, 204, "{body}");
    let (_, stored) = m.get(&schedule).await;
    assert_eq!(stored["days_of_week"], "mo tu", "{stored}");
    assert_eq!(stored["start_time"], "22:00");
    let (status, _) = m
        .get(&format!(
            "/api/v3/worker-mgt/workers/{}/sleep-schedule",
            uuid::Uuid::new_v4()
        ))
        .await;
    assert_eq!(status, 404);
    m.manager.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_lazy_request_whose_task_was_cancelled_is_delivered_at_once() {
    let m = manager().await;
    let mut a = SimWorker::connect(&m, "a").await;
    let job = submit(&m, 1).await;
    let task = a.next_assignment().await;
    let (status, _) = set_status(&m, &a.id, "asleep", true).await;
    assert_eq!(status, 204);
    // The job is cancelled: the task is aborted and never reported by the worker.
    let (status, body) = m
        .post(
            &format!("/api/v3/jobs/{job}/setstatus"),
            &json!({ "status": "cancel-requested", "reason": "test" }),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    match a.next_instruction().await {
        Kind::AbortTask(abort) => assert_eq!(abort.task_id, task.task_id),
        other => panic!("expected AbortTask, got {other:?}"),
    }
    expect_change(a.next_instruction().await, v1::WorkerStatus::Asleep, true);
    assert_eq!(worker(&m, &a.id).await["status"], "asleep");
    m.manager.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_worker_back_during_its_sleep_hours_goes_back_to_sleep() {
    let m = manager().await;
    let mut a = SimWorker::connect(&m, "a").await;
    let clock = ManualClock::starting_now();
    let hour = Duration::from_secs(3600);
    let now_minus_hour = {
        use castanet_manager::monitor::Clock;
        let at = clock.now() - chrono::Duration::hours(1);
        at.with_timezone(&chrono::Local).format("%H:%M").to_string()
    };
    let schedule = json!({
        "is_active": true,
        "days_of_week": "",
        "start_time": now_minus_hour,
        "end_time": local_hhmm(&clock, hour),
    });
    let path = format!("/api/v3/worker-mgt/workers/{}/sleep-schedule", a.id);
    let (status, body) = m.post(&path, &schedule).await;
    assert_eq!(status, 204, "{body}");
    // Saving applies it at once: the idle worker is sent to sleep.
    expect_change(a.next_instruction().await, v1::WorkerStatus::Asleep, true);

    // It vanishes without signing off and comes back: asleep again.
    let (id, token, mut client) = (a.id.clone(), a.token.clone(), a.client.clone());
    drop(a);
    wait_for_worker(&m, &id, |w| w["connected"] == false).await;
    client
        .sign_on(authed(sign_on_request("a", 1), &id, &token))
        .await
        .expect("signs on again");
    let mut stream = client
        .connect_worker(authed(v1::ConnectRequest::default(), &id, &token))
        .await
        .expect("connects again")
        .into_inner();
    let message = tokio::time::timeout(Duration::from_secs(10), common::next_message(&mut stream))
        .await
        .expect("an instruction in time")
        .expect("stream healthy")
        .expect("stream open");
    expect_change(message.kind.unwrap(), v1::WorkerStatus::Asleep, true);
    assert_eq!(worker(&m, &id).await["status"], "asleep");
    m.manager.shutdown().await.unwrap();
}

#[tokio::test]
async fn switching_off_a_schedule_that_holds_the_worker_asleep_wakes_it() {
    let m = manager().await;
    let mut a = SimWorker::connect(&m, "a").await;
    let path = format!("/api/v3/worker-mgt/workers/{}/sleep-schedule", a.id);
    // No times and no days: asleep all day, every day — applied as it is saved.
    let all_day = |active: bool| json!({ "is_active": active, "days_of_week": "", "start_time": "", "end_time": "" });
    let (status, body) = m.post(&path, &all_day(true)).await;
    assert_eq!(status, 204, "{body}");
    expect_change(a.next_instruction().await, v1::WorkerStatus::Asleep, true);
    assert_eq!(worker(&m, &a.id).await["status"], "asleep");

    let (status, body) = m.post(&path, &all_day(false)).await;
    assert_eq!(status, 204, "{body}");
    expect_change(a.next_instruction().await, v1::WorkerStatus::Awake, true);
    assert_eq!(worker(&m, &a.id).await["status"], "awake");

    // Asleep by the operator's hand, not the schedule's: saving an inactive schedule
    // leaves it asleep.
    let (status, _) = set_status(&m, &a.id, "asleep", false).await;
    assert_eq!(status, 204);
    expect_change(a.next_instruction().await, v1::WorkerStatus::Asleep, false);
    let (status, body) = m.post(&path, &all_day(false)).await;
    assert_eq!(status, 204, "{body}");
    assert!(
        a.instruction_within(Duration::from_millis(200))
            .await
            .is_none(),
        "no wake-up"
    );
    assert_eq!(worker(&m, &a.id).await["status"], "asleep");
    m.manager.shutdown().await.unwrap();
}
