//! A task that ends before the worker says "Started" costs one call: its result, with its
//! whole log.

// Shared with session.rs, which uses all of the fake manager.
#[allow(dead_code)]
mod fake_manager;
mod harness;

use castanet_protocol::v1::TaskStatus;
use fake_manager::{Event, SECRET, Script};
use harness::{Worker, connected, task, update_of};

#[tokio::test]
async fn a_short_task_reports_only_its_result_with_its_whole_log() {
    let mut manager = fake_manager::start(Script::default()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let worker = Worker::start(&manager, dir.path(), Some(SECRET));
    connected(&mut manager).await;

    manager
        .instruct(task(
            "t1",
            3,
            &[
                ("echo", r#"{"message": "hello"}"#),
                ("echo", r#"{"message": "bye"}"#),
            ],
        ))
        .await;
    // One call: the final status, its log lines with it (no "Started", no milestones,
    // no upload of their own).
    let completed = manager.wait_for(update_of).await;
    assert_eq!(completed.status, TaskStatus::Completed as i32);
    assert_eq!(completed.steps_completed, Some(2));
    let tail = completed.log_tail.expect("the log goes with the result");
    assert_eq!(tail.text, "echo: \"hello\"\necho: \"bye\"\n");
    assert_eq!(tail.offset, Some(0));
    worker.stop().await.expect("clean shutdown");
    let after = manager.drain();
    assert!(
        !after
            .iter()
            .any(|e| matches!(e, Event::Update(_) | Event::Log(_))),
        "{after:?}"
    );
}
