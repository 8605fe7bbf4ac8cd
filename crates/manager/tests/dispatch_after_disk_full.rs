//! Dispatching resumes by itself after a full database disk (issue 19, part 3). A dispatch
//! pass whose assignment write fails used to wait for the next wake-up (a submission, a
//! task update, a worker connecting): with the farm's workers idle, queued tasks stayed
//! queued after the disk had room again. The database lives on a small tmpfs (root only);
//! elsewhere the test says so and passes.
mod common;
mod tmpfs;

use std::time::Duration;

use castanet_protocol::v1;
use serde_json::json;

use common::{TestManager, authed, next_assignment};
use tmpfs::Tmpfs;

/// Writes tags until the database refuses three in a row: the WAL file's spare room (from
/// earlier failed writes) is used up, and every write fails now.
async fn use_up_the_wal(m: &TestManager) {
    let mut refused_in_a_row = 0;
    for n in 0..5000 {
        let (status, _) = m
            .post(
                "/api/v3/worker-mgt/tags",
                &json!({ "name": format!("t{n}") }),
            )
            .await;
        refused_in_a_row = if status == 507 {
            refused_in_a_row + 1
        } else {
            0
        };
        if refused_in_a_row == 3 {
            return;
        }
    }
    panic!("the database kept taking writes on a full disk");
}

#[tokio::test]
async fn queued_tasks_go_out_once_the_database_disk_has_room_again() {
    let mount_point = tempfile::tempdir().expect("temp dir");
    let Some(tmpfs) = Tmpfs::mount(mount_point.path(), "40m") else {
        eprintln!("skipped: cannot mount a tmpfs here (needs root)");
        return;
    };
    let m = common::start_with_database(mount_point.path().join("castanet.sqlite")).await;
    let mut worker = m.connect(common::misc_sign_on("w", 1)).await;
    let (status, body) = m.post("/api/v3/jobs", &common::echo_sleep_job(2, 1)).await;
    assert_eq!(status, 200, "{body}");
    let echo = next_assignment(&mut worker.stream).await;
    let done = v1::TaskUpdate {
        task_id: echo.task_id.clone(),
        lease_epoch: echo.lease_epoch,
        sequence: 1,
        status: v1::TaskStatus::Completed as i32,
        ..Default::default()
    };
    worker
        .client
        .update_task(authed(done, &worker.id, &worker.token))
        .await
        .expect("echo completed");
    // The worker's one slot holds the first sleep task; the second waits in the queue.
    let first_sleep = next_assignment(&mut worker.stream).await;

    let filler = tmpfs.fill();
    use_up_the_wal(&m).await;
    // The slot frees without a database write, so the dispatch pass itself meets the
    // full disk, and nothing is handed out while it lasts.
    m.manager
        .state
        .dispatcher
        .task_finished(&worker.id, &first_sleep.task_id);
    let nothing = tokio::time::timeout(
        Duration::from_millis(500),
        common::next_message(&mut worker.stream),
    )
    .await;
    assert!(nothing.is_err(), "assigned on a full disk: {nothing:?}");

    std::fs::remove_file(&filler).expect("room again");
    let second_sleep = next_assignment(&mut worker.stream).await;
    assert_ne!(second_sleep.task_id, first_sleep.task_id);
}
