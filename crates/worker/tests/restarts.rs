//! Stopping and restarting the worker against a fake manager: the shutdown grace period,
//! and task results that could not be delivered before a restart.

// Shared with session.rs, which uses all of the fake manager.
#[allow(dead_code)]
mod fake_manager;
mod harness;

use std::time::{Duration, Instant};

use castanet_protocol::v1::TaskStatus;
use fake_manager::{Event, SECRET, Script};
use harness::{Worker, connected, task, update_of};

#[tokio::test]
async fn shutdown_lets_a_task_finish_within_the_grace_period() {
    let mut manager = fake_manager::start(Script::default()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let worker = Worker::start_with(&manager, dir.path(), Some(SECRET), |config| {
        config.shutdown_grace = Duration::from_secs(8);
    });
    connected(&mut manager).await;
    manager
        .instruct(task("t1", 1, &[("sleep", r#"{"duration_in_seconds": 1}"#)]))
        .await;
    manager
        .wait_for(|e| update_of(e).filter(|u| u.status == TaskStatus::Active as i32))
        .await;
    worker.stop().await.expect("clean exit");
    let events = manager.drain();
    let completed = events
        .iter()
        .position(|e| update_of(e).is_some_and(|u| u.status == TaskStatus::Completed as i32));
    let signed_off = events
        .iter()
        .position(|e| matches!(e, Event::SignOff { .. }));
    assert!(completed.is_some() && completed < signed_off, "{events:?}");
}

#[tokio::test]
async fn shutdown_aborts_a_task_still_running_after_the_grace_period() {
    let mut manager = fake_manager::start(Script::default()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let worker = Worker::start_with(&manager, dir.path(), Some(SECRET), |config| {
        config.shutdown_grace = Duration::from_millis(300);
    });
    connected(&mut manager).await;
    manager
        .instruct(task(
            "t1",
            1,
            &[("sleep", r#"{"duration_in_seconds": 3600}"#)],
        ))
        .await;
    manager
        .wait_for(|e| update_of(e).filter(|u| u.status == TaskStatus::Active as i32))
        .await;
    let started = std::time::Instant::now();
    worker.stop().await.expect("clean exit");
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "the grace was given"
    );
    let events = manager.drain();
    assert!(
        !events.iter().any(|e| update_of(e)
            .is_some_and(|u| u.status != TaskStatus::Unspecified as i32
                && u.status != TaskStatus::Active as i32)),
        "an aborted task reports nothing: {events:?}"
    );
    assert!(
        events.iter().any(|e| matches!(e, Event::SignOff { .. })),
        "{events:?}"
    );
}

#[cfg(unix)]
#[tokio::test]
async fn a_result_not_delivered_before_a_restart_is_sent_after_it() {
    let mut manager = fake_manager::start(Script::default()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let worker = Worker::start(&manager, dir.path(), Some(SECRET));
    connected(&mut manager).await;

    let go = dir.path().join("go");
    let script = format!(
        "echo waiting; while [ ! -e '{}' ]; do sleep 0.01; done",
        go.display()
    );
    let params = serde_json::json!({"exe": "sh", "args": ["-c", script]}).to_string();
    manager.instruct(task("t1", 2, &[("exec", &params)])).await;
    manager
        .wait_for(|e| match e {
            Event::Log(chunk) if chunk.text.contains("> waiting") => Some(()),
            _ => None,
        })
        .await;
    // "Started" (number 1) is delivered, so the result gets number 2.
    manager
        .wait_for(|e| update_of(e).filter(|u| u.status == TaskStatus::Active as i32))
        .await;

    // The manager dies; the task completes; the worker cannot deliver that and is stopped.
    manager.kill_server().await;
    std::fs::write(&go, "").expect("create the go file");
    let journal = dir.path().join("pending-updates.bin");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::metadata(&journal).map(|m| m.len()).unwrap_or(0) == 0 {
        assert!(Instant::now() < deadline, "the result was never journaled");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    worker
        .stop()
        .await
        .expect("clean exit while the manager is down");

    // Next start: the result goes out first, under its original number.
    manager.restart_server();
    let worker = Worker::start(&manager, dir.path(), None);
    let completed = loop {
        match manager.next().await {
            Event::Update(update) => break update,
            Event::Connect { .. } => panic!("connected before the pending result was sent"),
            _ => {}
        }
    };
    assert_eq!(completed.status, TaskStatus::Completed as i32);
    assert_eq!(
        (
            completed.task_id.as_str(),
            completed.lease_epoch,
            completed.sequence
        ),
        ("t1", 2, 2)
    );
    connected(&mut manager).await;
    assert_eq!(std::fs::metadata(&journal).map(|m| m.len()).ok(), Some(0));
    worker.stop().await.expect("clean shutdown");
}
