//! The worker's reaction to status changes from the (fake) manager: a forced sleep stops
//! the running task without a report and keeps the connection, waking resumes work, and
//! `restart` signs off and ends the run as a restart (its own exit code), lazily after the
//! running task when asked so.

// Shared with the other session tests; this one uses only part of the fake.
#[allow(dead_code)]
mod fake_manager;
mod harness;

use std::time::Duration;

use castanet_protocol::v1::instruction::Kind;
use castanet_protocol::v1::{ChangeStatus, TaskStatus, WorkerStatus};
use castanet_worker::{RESTART_EXIT_CODE, WorkerConfig, WorkerExit};
use fake_manager::{Event, Handle, SECRET, Script};
use harness::{connected, task, update_of};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

fn start(
    manager: &Handle,
    dir: &std::path::Path,
) -> (
    CancellationToken,
    JoinHandle<Result<WorkerExit, castanet_worker::WorkerError>>,
) {
    let mut config = WorkerConfig::with_defaults(manager.addr.to_string(), dir.to_path_buf());
    config.registration_secret = Some(SECRET.into());
    config.name = "status-worker".into();
    config.slots = 1;
    let shutdown = CancellationToken::new();
    let run = tokio::spawn(castanet_worker::run_to_exit(config, shutdown.clone()));
    (shutdown, run)
}

async fn exit_of(run: JoinHandle<Result<WorkerExit, castanet_worker::WorkerError>>) -> WorkerExit {
    tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("the worker stops within 10 s")
        .expect("no panic")
        .expect("a clean exit")
}

fn change(status: WorkerStatus, lazy: bool) -> Kind {
    Kind::ChangeStatus(ChangeStatus {
        status: status as i32,
        lazy,
    })
}

#[tokio::test]
async fn a_forced_sleep_stops_the_task_unreported_and_waking_resumes_work() {
    let mut manager = fake_manager::start(Script::default()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let (shutdown, run) = start(&manager, dir.path());
    connected(&mut manager).await;
    manager
        .instruct(task(
            "t1",
            1,
            &[("sleep", r#"{"duration_in_seconds": 30}"#)],
        ))
        .await;
    manager
        .wait_for(|e| update_of(e).filter(|u| u.status == TaskStatus::Active as i32))
        .await;

    manager.instruct(change(WorkerStatus::Asleep, false)).await;
    // Still connected and signed on; after a stream break it lists no running task.
    manager.hang_up();
    let running = connected(&mut manager).await;
    assert!(running.is_empty(), "the task still runs: {running:?}");

    manager.instruct(change(WorkerStatus::Awake, false)).await;
    manager
        .instruct(task("t2", 1, &[("echo", r#"{"message": "awake again"}"#)]))
        .await;
    manager
        .wait_for(|e| {
            update_of(e).filter(|u| u.task_id == "t2" && u.status == TaskStatus::Completed as i32)
        })
        .await;
    let events = manager.drain();
    assert!(
        !events
            .iter()
            .any(|e| update_of(e).is_some_and(|u| u.task_id == "t1"
                && u.status != TaskStatus::Active as i32
                && u.status != TaskStatus::Unspecified as i32)),
        "the aborted task was reported: {events:?}"
    );
    assert!(!events.iter().any(|e| matches!(e, Event::SignOff { .. })));
    shutdown.cancel();
    assert_eq!(exit_of(run).await, WorkerExit::Stopped);
}

#[tokio::test]
async fn restart_signs_off_and_exits_with_the_restart_code() {
    let mut manager = fake_manager::start(Script::default()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let (_shutdown, run) = start(&manager, dir.path());
    let sign_on = manager
        .wait_for(|e| match e {
            Event::SignOn(request) => Some(request.clone()),
            _ => None,
        })
        .await;
    assert!(sign_on.can_restart, "the worker says it can restart");
    connected(&mut manager).await;
    manager.instruct(change(WorkerStatus::Restart, false)).await;
    let exit = exit_of(run).await;
    assert_eq!(exit, WorkerExit::Restart);
    assert_eq!(exit.exit_code(), RESTART_EXIT_CODE);
    assert_ne!(RESTART_EXIT_CODE, 0);
    assert!(matches!(manager.next().await, Event::SignOff { .. }));
}

#[tokio::test]
async fn a_lazy_restart_lets_the_running_task_finish_first() {
    let mut manager = fake_manager::start(Script::default()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let (_shutdown, run) = start(&manager, dir.path());
    connected(&mut manager).await;
    manager
        .instruct(task("t1", 1, &[("sleep", r#"{"duration_in_seconds": 1}"#)]))
        .await;
    manager
        .wait_for(|e| update_of(e).filter(|u| u.status == TaskStatus::Active as i32))
        .await;
    manager.instruct(change(WorkerStatus::Restart, true)).await;
    assert_eq!(exit_of(run).await, WorkerExit::Restart);
    let events = manager.drain();
    let completed = events
        .iter()
        .position(|e| update_of(e).is_some_and(|u| u.status == TaskStatus::Completed as i32));
    let signed_off = events
        .iter()
        .position(|e| matches!(e, Event::SignOff { .. }));
    assert!(completed.is_some() && completed < signed_off, "{events:?}");
}
