//! How the worker shows it is alive and what it does when the manager is not: keep-alive
//! updates for silent tasks, and the fence that stops the tasks once the manager has been
//! silent too long (it may be about to hand them to other workers).

// Shared with session.rs, which uses all of the fake manager.
#[allow(dead_code)]
mod fake_manager;
mod harness;

use std::time::{Duration, Instant};

use castanet_protocol::v1::instruction::Kind;
use castanet_protocol::v1::{Heartbeat, TaskStatus};
use fake_manager::{Event, SECRET, Script};
use harness::{Worker, connected, task};

/// A fake manager answering sign-on with `script`, and a worker connected to it.
async fn connected_worker(script: Script) -> (fake_manager::Handle, tempfile::TempDir, Worker) {
    let mut manager = fake_manager::start(script).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let worker = Worker::start(&manager, dir.path(), Some(SECRET));
    assert_eq!(connected(&mut manager).await, []);
    (manager, dir, worker)
}

fn is_keepalive(event: &Event) -> bool {
    matches!(event, Event::Update(u) if u.status == TaskStatus::Unspecified as i32
        && u.activity.is_none() && u.progress_percent.is_none() && u.steps_completed.is_none())
}

#[tokio::test]
async fn a_silent_task_sends_keepalives_until_it_ends() {
    let (mut manager, _dir, worker) = connected_worker(Script {
        task_keepalive_ms: 200,
        ..Script::default()
    })
    .await;
    manager
        .instruct(task("t1", 3, &[("sleep", r#"{"duration_in_seconds": 2}"#)]))
        .await;

    let mut keepalives = Vec::new();
    let completed = loop {
        match manager.next().await {
            Event::Update(u) if u.status == TaskStatus::Completed as i32 => break u,
            event if is_keepalive(&event) => {
                if let Event::Update(u) = event {
                    keepalives.push(u);
                }
            }
            _ => {}
        }
    };
    // "Started" after 200 ms, then 1.8 s of silence at one keep-alive per 200 ms: about 8.
    assert!(
        (6..=10).contains(&keepalives.len()),
        "{} keep-alives",
        keepalives.len()
    );
    assert!(
        keepalives
            .iter()
            .all(|u| u.task_id == "t1" && u.lease_epoch == 3 && u.failure.is_none())
    );
    let sequences: Vec<u64> = keepalives.iter().map(|u| u.sequence).collect();
    assert!(sequences.windows(2).all(|w| w[0] < w[1]), "{sequences:?}");
    assert!(completed.sequence > *sequences.last().unwrap_or(&0));
    worker.stop().await.expect("clean shutdown");
}

#[tokio::test]
async fn no_keepalives_when_the_manager_asks_for_none() {
    let (mut manager, _dir, worker) = connected_worker(Script::default()).await;
    manager
        .instruct(task(
            "t1",
            1,
            &[("sleep", r#"{"duration_in_seconds": 0.6}"#)],
        ))
        .await;
    loop {
        let event = manager.next().await;
        assert!(!is_keepalive(&event), "unasked keep-alive: {event:?}");
        if matches!(&event, Event::Update(u) if u.status == TaskStatus::Completed as i32) {
            break;
        }
    }
    worker.stop().await.expect("clean shutdown");
}

/// Whether process `pid` is alive (not a zombie).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            != Some("Z")
    })
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_silent_manager_gets_the_tasks_stopped_and_a_new_connection() {
    let (mut manager, dir, worker) = connected_worker(Script {
        fence_after_ms: 600,
        ..Script::default()
    })
    .await;
    let pid_file = dir.path().join("pid");
    let script = format!("echo $$ > '{}'; exec sleep 30", pid_file.display());
    let params = serde_json::json!({"exe": "sh", "args": ["-c", script]}).to_string();
    manager.instruct(task("t1", 5, &[("exec", &params)])).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let pid = loop {
        if let Some(pid) = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
        {
            break pid;
        }
        assert!(Instant::now() < deadline, "the task never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let started = Instant::now();

    // The manager says nothing more (no heartbeats): the worker stops the task and
    // connects anew, listing no tasks.
    assert_eq!(connected(&mut manager).await, []);
    let reconnected_after = started.elapsed();
    assert!(
        reconnected_after >= Duration::from_millis(400),
        "fenced too early: {reconnected_after:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive(pid) {
        assert!(
            Instant::now() < deadline,
            "the task's process survived the fence"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let reported_end = manager.drain().into_iter().any(|e| {
        matches!(e, Event::Update(u) if u.status == TaskStatus::Completed as i32
            || u.status == TaskStatus::Failed as i32)
    });
    assert!(!reported_end, "a fenced task reports nothing");
    worker.stop().await.expect("clean shutdown");
}

#[tokio::test]
async fn heartbeats_keep_the_fence_away() {
    let (mut manager, _dir, worker) = connected_worker(Script {
        fence_after_ms: 400,
        ..Script::default()
    })
    .await;
    manager
        .instruct(task(
            "t1",
            1,
            &[("sleep", r#"{"duration_in_seconds": 1.5}"#)],
        ))
        .await;
    // A heartbeat every 100 ms while the 1.5 s task runs, well past the 400 ms fence.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(Instant::now() < deadline, "the task never completed");
        manager.instruct(Kind::Heartbeat(Heartbeat {})).await;
        match tokio::time::timeout(Duration::from_millis(100), manager.next()).await {
            Ok(Event::Update(u)) if u.status == TaskStatus::Completed as i32 => break,
            Ok(Event::Connect { .. }) => panic!("the worker reconnected: it fenced"),
            _ => {}
        }
    }
    worker.stop().await.expect("clean shutdown");
}
