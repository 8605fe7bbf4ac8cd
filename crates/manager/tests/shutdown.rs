//! Shutdown: background tasks finish before the store closes, and a closed store answers
//! "shutting down" rather than claiming corrupt data.
mod common;

use castanet_manager::store::{StoreError, WorkerTaskUpdate};

#[tokio::test]
async fn shutdown_waits_for_background_work_before_closing_the_store() {
    let m = common::start().await;
    let state = m.manager.state.clone();
    let (done, mut outcome) = tokio::sync::oneshot::channel();
    let worker_state = state.clone();
    state.background.spawn(async move {
        worker_state.background.shutdown().cancelled().await;
        // A last write after the cancellation, as a monitor finishing its step makes.
        let wrote = worker_state.store.list_jobs(10, 0).await.map(|_| ());
        let _ = done.send(wrote);
    });
    m.manager.shutdown().await.expect("manager stops");
    let wrote = outcome
        .try_recv()
        .expect("the task ended before shutdown returned");
    assert!(wrote.is_ok(), "the store was open for it: {wrote:?}");
    assert!(state.store.is_closed());
}

#[tokio::test]
async fn a_closed_store_answers_shutting_down() {
    let m = common::start().await;
    let state = m.manager.state.clone();
    m.manager.shutdown().await.expect("manager stops");
    let update = WorkerTaskUpdate {
        worker_id: "w".into(),
        task_id: "t".into(),
        lease_epoch: 1,
        sequence: 1,
        status: None,
        activity: Some("rendering".into()),
        steps_completed: None,
        progress: None,
        fault_class: None,
        failure_message: String::new(),
    };
    let refused = state.store.apply_worker_task_update(&update).await;
    assert!(
        matches!(refused, Err(StoreError::ShuttingDown)),
        "{refused:?}"
    );
}
