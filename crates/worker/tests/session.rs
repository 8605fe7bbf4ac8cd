//! The worker's session logic against a fake manager: registration, sign-on, the instruction
//! stream, ordered updates and logs, aborts, reconnects and shutdown. The real manager is
//! exercised by the castanet crate's end-to-end tests.

mod fake_manager;
mod harness;

use std::time::{Duration, Instant};

use castanet_protocol::v1::instruction::Kind;
use castanet_protocol::v1::{AbortTask, ChangeStatus, TaskLease, TaskStatus, WorkerStatus};
use castanet_worker::{Credentials, WorkerError};
use fake_manager::{Event, SECRET, Script};
use harness::{Worker, connected, task, update_of};

#[tokio::test]
async fn registers_signs_on_and_runs_an_echo_task() {
    let mut manager = fake_manager::start(Script {
        last_update_sequence: 41,
        ..Script::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("temp dir");
    let worker = Worker::start(&manager, dir.path(), Some(SECRET));

    assert_eq!(
        manager.next().await,
        Event::Register {
            name: "test-worker".into(),
            platform: "linux".into()
        }
    );
    let Event::SignOn(sign_on) = manager.next().await else {
        panic!("expected SignOn")
    };
    assert_eq!(sign_on.slots, 2);
    assert_eq!(
        sign_on.supported_task_types,
        ["blender", "ffmpeg", "file-management", "misc", "openjd"]
    );
    assert_eq!(sign_on.software_version, env!("CARGO_PKG_VERSION"));
    assert!(
        sign_on
            .capabilities
            .is_some_and(|c| c.cpu_cores >= 1 && c.ram_bytes > 0)
    );
    assert_eq!(connected(&mut manager).await, []);

    let stored = std::fs::read_to_string(dir.path().join(castanet_worker::CREDENTIALS_FILE))
        .expect("credentials");
    let stored: Credentials = toml::from_str(&stored).expect("valid credentials");
    assert_eq!(stored.worker_id, "worker-1");
    assert_eq!(stored.manager_url, format!("http://{}", manager.addr));

    manager
        .instruct(task(
            "t1",
            7,
            &[
                ("echo", r#"{"message": "hello"}"#),
                ("sleep", r#"{"duration_in_seconds": 1}"#),
                ("echo", r#"{"message": "bye"}"#),
            ],
        ))
        .await;

    // In order: started (the task runs longer than the worker waits before saying so);
    // the log (each chunk stored before anything after it, the last lines with the final
    // status) and the steps after each command but the last; then completed.
    let mut log = String::new();
    let mut updates = Vec::new();
    let mut open_chunk = false;
    let completed = loop {
        match manager.next().await {
            Event::Log(chunk) => {
                assert_eq!((chunk.task_id.as_str(), chunk.lease_epoch), ("t1", 7));
                assert_eq!(chunk.offset, Some(log.len() as u64));
                log.push_str(&chunk.text);
                open_chunk = true;
            }
            Event::LogClosed { task_id } => {
                assert_eq!(task_id, "t1");
                open_chunk = false;
            }
            Event::Update(update) if update.status == TaskStatus::Completed as i32 => {
                break update;
            }
            Event::Update(update) => updates.push(update),
            other => panic!("unexpected {other:?}"),
        }
    };
    let started = updates.remove(0);
    assert_eq!(
        (
            started.task_id.as_str(),
            started.lease_epoch,
            started.sequence
        ),
        ("t1", 7, 42)
    );
    assert_eq!(started.status, TaskStatus::Active as i32);
    assert_eq!(started.activity.as_deref(), Some("Started"));
    assert!(!open_chunk, "completed before the log was stored");
    assert!(
        log.starts_with("echo: \"hello\"\n") && log.ends_with("echo: \"bye\"\n"),
        "{log:?}"
    );
    let milestones: Vec<_> = updates
        .iter()
        .map(|u| (u.sequence, u.steps_completed, u.activity.as_deref()))
        .collect();
    assert_eq!(
        milestones,
        [
            (43, Some(1), Some("Finished command 1/3: echo")),
            (44, Some(2), Some("Finished command 2/3: sleep")),
        ]
    );

    assert_eq!(completed.sequence, 45);
    assert_eq!(completed.status, TaskStatus::Completed as i32);
    assert_eq!(completed.activity.as_deref(), Some("Completed"));
    assert_eq!(completed.steps_completed, Some(3));
    assert_eq!(completed.progress_percent, Some(100.0));

    worker.stop().await.expect("clean shutdown");
    assert_eq!(
        manager.next().await,
        Event::SignOff {
            reason: "worker shutting down".into()
        }
    );
}

#[tokio::test]
async fn failed_commands_are_reported_with_their_fault_and_last_lines() {
    let mut manager = fake_manager::start(Script::default()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let worker = Worker::start(&manager, dir.path(), Some(SECRET));
    connected(&mut manager).await;

    manager
        .instruct(task(
            "t1",
            1,
            &[
                (
                    "exec",
                    r#"{"exe": "sh", "args": ["-c", "echo before; exit 3"]}"#,
                ),
                ("echo", r#"{"message": "never"}"#),
            ],
        ))
        .await;
    let failed = manager
        .wait_for(|e| update_of(e).filter(|u| u.status == TaskStatus::Failed as i32))
        .await;
    let message = "command 1/2 (exec): command exited abnormally with code 3";
    assert_eq!(failed.activity, Some(format!("Failed: {message}")));
    let failure = failed.failure.expect("failure details");
    assert_eq!(
        failure.fault_class,
        castanet_protocol::v1::FaultClass::NonzeroExit as i32
    );
    assert_eq!(failure.message, message);
    assert_eq!(failure.last_log_lines.len(), 3);
    assert!(
        failure.last_log_lines[1].ends_with("> before"),
        "{:?}",
        failure.last_log_lines
    );

    worker.stop().await.expect("clean shutdown");
}

#[tokio::test]
async fn transport_failures_retry_the_same_sequence_number() {
    let mut manager = fake_manager::start(Script {
        failing_updates: 2,
        ..Script::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("temp dir");
    let worker = Worker::start(&manager, dir.path(), Some(SECRET));
    connected(&mut manager).await;

    manager
        .instruct(task("t1", 1, &[("echo", r#"{"message": "x"}"#)]))
        .await;
    let mut sequences = Vec::new();
    while sequences.len() < 3 {
        let update = manager.wait_for(update_of).await;
        sequences.push((update.sequence, update.status));
    }
    // A short task sends only its result: the same number, three times.
    let completed = TaskStatus::Completed as i32;
    assert_eq!(sequences, [(1, completed), (1, completed), (1, completed)]);
    worker.stop().await.expect("clean shutdown");
}

#[tokio::test]
async fn commands_run_while_the_manager_does_not_take_updates() {
    // "Started" fails five times (about 3 s of backoff); the commands must not wait for it.
    let mut manager = fake_manager::start(Script {
        failing_updates: 5,
        ..Script::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("temp dir");
    let worker = Worker::start(&manager, dir.path(), Some(SECRET));
    connected(&mut manager).await;

    manager
        .instruct(task(
            "t1",
            1,
            &[
                ("echo", r#"{"message": "first"}"#),
                ("echo", r#"{"message": "second"}"#),
                ("sleep", r#"{"duration_in_seconds": 1}"#),
            ],
        ))
        .await;
    let mut log = String::new();
    let mut update_calls = Vec::new();
    while !log.contains("second") {
        match manager.next().await {
            Event::Log(chunk) => log.push_str(&chunk.text),
            Event::Update(update) => update_calls.push((update.sequence, update.status)),
            _ => {}
        }
    }
    let active = TaskStatus::Active as i32;
    assert!(
        update_calls.len() < 6 && update_calls.iter().all(|&call| call == (1, active)),
        "both commands ran while \"Started\" was still being retried: {update_calls:?}"
    );

    // Then everything arrives, in order: started, the milestones of the first two
    // commands, completed.
    let mut sequences: Vec<u64> = update_calls.iter().map(|&(sequence, _)| sequence).collect();
    loop {
        let update = manager.wait_for(update_of).await;
        sequences.push(update.sequence);
        if update.status == TaskStatus::Completed as i32 {
            break;
        }
    }
    sequences.dedup();
    assert_eq!(sequences, [1, 2, 3, 4]);
    worker.stop().await.expect("clean shutdown");
}

/// Live (non-zombie) process with this pid?
#[cfg(target_os = "linux")]
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| {
            stat.rsplit_once(')')
                .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn aborted_tasks_are_killed_and_never_reported() {
    let mut manager = fake_manager::start(Script::default()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let worker = Worker::start(&manager, dir.path(), Some(SECRET));
    connected(&mut manager).await;

    manager
        .instruct(task(
            "t1",
            3,
            &[(
                "exec",
                r#"{"exe": "sh", "args": ["-c", "echo $$; exec sleep 30"]}"#,
            )],
        ))
        .await;
    let pid: u32 = manager
        .wait_for(|e| match e {
            Event::Log(chunk) => chunk
                .text
                .lines()
                .find_map(|l| l.split_once(" > ").and_then(|(_, pid)| pid.parse().ok())),
            _ => None,
        })
        .await;
    assert!(alive(pid));

    let aborted_at = Instant::now();
    manager
        .instruct(Kind::AbortTask(AbortTask {
            task_id: "t1".into(),
            lease_epoch: 3,
            reason: "job canceled".into(),
        }))
        .await;
    while alive(pid) {
        assert!(
            aborted_at.elapsed() < Duration::from_millis(500),
            "the task's process survived the abort"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    // The worker keeps serving: a next task runs. Then `run` returns only after every
    // runner ended, so any report about t1 would be recorded by now.
    manager
        .instruct(task("t2", 1, &[("echo", r#"{"message": "next"}"#)]))
        .await;
    manager
        .wait_for(|e| {
            update_of(e).filter(|u| u.task_id == "t2" && u.status == TaskStatus::Completed as i32)
        })
        .await;
    worker.stop().await.expect("clean shutdown");
    let late_reports: Vec<_> = manager
        .drain()
        .into_iter()
        .filter_map(|e| update_of(&e))
        .filter(|u| u.task_id == "t1")
        .collect();
    assert_eq!(late_reports, []);
}

#[tokio::test]
async fn reconnects_listing_the_running_tasks() {
    let mut manager = fake_manager::start(Script::default()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let worker = Worker::start(&manager, dir.path(), Some(SECRET));
    connected(&mut manager).await;

    manager
        .instruct(task(
            "t1",
            5,
            &[("sleep", r#"{"duration_in_seconds": 60}"#)],
        ))
        .await;
    manager
        .wait_for(|e| update_of(e).filter(|u| u.status == TaskStatus::Active as i32))
        .await;
    manager.hang_up();

    assert!(matches!(manager.next().await, Event::SignOn(_)));
    assert_eq!(
        connected(&mut manager).await,
        [TaskLease {
            task_id: "t1".into(),
            lease_epoch: 5
        }]
    );
    // Shutting down aborts the sleeping task without reporting it.
    worker.stop().await.expect("clean shutdown");
    let events = manager.drain();
    assert!(events.iter().all(|e| update_of(e).is_none()), "{events:?}");
    assert!(events.iter().any(|e| matches!(e, Event::SignOff { .. })));
}

#[tokio::test]
async fn forgotten_workers_register_again() {
    let mut manager = fake_manager::start(Script::default()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let stale = "worker_id = \"gone\"\ntoken = \"old\"\nmanager_url = \"http://elsewhere\"\n";
    std::fs::write(dir.path().join(castanet_worker::CREDENTIALS_FILE), stale)
        .expect("write credentials");
    let worker = Worker::start(&manager, dir.path(), Some(SECRET));

    assert!(matches!(manager.next().await, Event::Register { .. }));
    assert!(matches!(manager.next().await, Event::SignOn(_)));
    connected(&mut manager).await;
    let stored = std::fs::read_to_string(dir.path().join(castanet_worker::CREDENTIALS_FILE))
        .expect("credentials");
    assert!(stored.contains("worker-1"), "{stored}");
    worker.stop().await.expect("clean shutdown");
}

#[tokio::test]
async fn stored_credentials_are_reused() {
    let mut manager = fake_manager::start(Script::default()).await;
    manager.know_worker("known", "tok");
    let dir = tempfile::tempdir().expect("temp dir");
    let creds = "worker_id = \"known\"\ntoken = \"tok\"\nmanager_url = \"\"\n";
    std::fs::write(dir.path().join(castanet_worker::CREDENTIALS_FILE), creds)
        .expect("write credentials");
    // No secret needed: the worker never registers.
    let worker = Worker::start(&manager, dir.path(), None);
    assert!(matches!(manager.next().await, Event::SignOn(_)));
    connected(&mut manager).await;
    worker.stop().await.expect("clean shutdown");
}

#[tokio::test]
async fn a_wrong_secret_is_fatal() {
    let manager = fake_manager::start(Script::default()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let worker = Worker::start(&manager, dir.path(), Some("guess"));
    match worker.finished().await {
        Err(WorkerError::RegistrationRejected(message)) => {
            assert_eq!(message, "wrong registration secret")
        }
        other => panic!("expected a rejected registration, got {other:?}"),
    }
}

#[tokio::test]
async fn registering_needs_a_secret() {
    let manager = fake_manager::start(Script::default()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let worker = Worker::start(&manager, dir.path(), None);
    let result = worker.finished().await;
    assert!(
        matches!(result, Err(WorkerError::NoRegistrationSecret)),
        "{result:?}"
    );
    assert_eq!(
        result.map_err(|e| e.to_string()),
        Err("no registration secret: pass --registration-secret or set CASTANET_REGISTRATION_SECRET".to_string())
    );
}

#[tokio::test]
async fn going_offline_on_request_signs_off() {
    let mut manager = fake_manager::start(Script::default()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let worker = Worker::start(&manager, dir.path(), Some(SECRET));
    connected(&mut manager).await;
    manager
        .instruct(Kind::ChangeStatus(ChangeStatus {
            status: WorkerStatus::Offline as i32,
            lazy: false,
        }))
        .await;
    worker.finished().await.expect("clean exit");
    assert!(matches!(manager.next().await, Event::SignOff { .. }));
}

#[tokio::test]
async fn going_offline_lazily_finishes_the_running_task_first() {
    let mut manager = fake_manager::start(Script::default()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let worker = Worker::start(&manager, dir.path(), Some(SECRET));
    connected(&mut manager).await;
    manager
        .instruct(task("t1", 1, &[("sleep", r#"{"duration_in_seconds": 1}"#)]))
        .await;
    manager
        .wait_for(|e| update_of(e).filter(|u| u.status == TaskStatus::Active as i32))
        .await;
    manager
        .instruct(Kind::ChangeStatus(ChangeStatus {
            status: WorkerStatus::Offline as i32,
            lazy: true,
        }))
        .await;
    worker.finished().await.expect("clean exit");
    let events = manager.drain();
    let completed = events
        .iter()
        .position(|e| update_of(e).is_some_and(|u| u.status == TaskStatus::Completed as i32));
    let signed_off = events
        .iter()
        .position(|e| matches!(e, Event::SignOff { .. }));
    assert!(completed.is_some() && completed < signed_off, "{events:?}");
}

#[cfg(unix)]
#[tokio::test]
async fn a_task_finished_during_a_manager_restart_is_reported_afterwards() {
    let mut manager = fake_manager::start(Script::default()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let worker = Worker::start(&manager, dir.path(), Some(SECRET));
    connected(&mut manager).await;

    // The task waits for a file the test creates while the manager is down.
    let go = dir.path().join("go");
    let done = dir.path().join("done");
    let script = format!(
        "echo waiting; while [ ! -e '{}' ]; do sleep 0.01; done; touch '{}'",
        go.display(),
        done.display()
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

    manager.kill_server().await;
    std::fs::write(&go, "").expect("create the go file");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done.exists() {
        assert!(Instant::now() < deadline, "the task never finished");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    manager.restart_server();

    // The worker signs on again and delivers the result with the sequence number it had.
    let mut reconnected = false;
    let mut completed = None;
    while !(reconnected && completed.is_some()) {
        match manager.next().await {
            Event::Connect { .. } => reconnected = true,
            Event::Update(update) if update.status == TaskStatus::Completed as i32 => {
                completed = Some(update)
            }
            _ => {}
        }
    }
    let completed = completed.expect("completed");
    assert_eq!(
        (
            completed.task_id.as_str(),
            completed.lease_epoch,
            completed.sequence
        ),
        ("t1", 2, 2)
    );
    worker.stop().await.expect("clean shutdown");
}

#[tokio::test]
async fn damaged_credentials_are_replaced() {
    let mut manager = fake_manager::start(Script::default()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(castanet_worker::CREDENTIALS_FILE);
    std::fs::write(&path, "this is = not [toml").expect("write credentials");
    let worker = Worker::start(&manager, dir.path(), Some(SECRET));
    assert!(matches!(manager.next().await, Event::Register { .. }));
    connected(&mut manager).await;
    let stored = std::fs::read_to_string(&path).expect("credentials");
    assert!(stored.contains("worker-1"), "{stored}");
    worker.stop().await.expect("clean shutdown");
}

#[tokio::test]
async fn a_worker_deleted_while_connected_registers_again() {
    let mut manager = fake_manager::start(Script::default()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let worker = Worker::start(&manager, dir.path(), Some(SECRET));
    connected(&mut manager).await;
    manager
        .instruct(task(
            "t1",
            1,
            &[("sleep", r#"{"duration_in_seconds": 60}"#)],
        ))
        .await;
    manager
        .wait_for(|e| update_of(e).filter(|u| u.status == TaskStatus::Active as i32))
        .await;

    manager.delete_worker("worker-1").await;
    assert!(matches!(manager.next().await, Event::Register { .. }));
    assert!(matches!(manager.next().await, Event::SignOn(_)));
    // The old identity's task was dropped, so nothing is listed as running.
    assert_eq!(connected(&mut manager).await, []);
    let stored = std::fs::read_to_string(dir.path().join(castanet_worker::CREDENTIALS_FILE))
        .expect("credentials");
    assert!(stored.contains("worker-2"), "{stored}");
    worker.stop().await.expect("clean shutdown");
}
