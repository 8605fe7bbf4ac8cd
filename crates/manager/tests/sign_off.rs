//! Sign-off in one transaction: tasks back to the queue, and the worker's awake status
//! remembered as a request that its next connection acknowledges (§2.6).
mod common;
mod sim_worker;

use castanet_protocol::v1;
use common::{authed, echo_sleep_job};
use sim_worker::{SimWorker, sign_on_request, start_with};

#[tokio::test]
async fn signing_off_requeues_tasks_and_remembers_the_status_until_the_next_connection() {
    let m = start_with(|_| {}).await;
    let mut a = SimWorker::connect(&m, "a").await;
    let (status, _) = m.post("/api/v3/jobs", &echo_sleep_job(1, 0)).await;
    assert_eq!(status, 200);
    let echo = a.next_assignment().await;
    a.client
        .sign_off(authed(
            v1::SignOffRequest {
                reason: "shutting down".into(),
            },
            &a.id,
            &a.token,
        ))
        .await
        .unwrap();
    let store = &m.manager.state.store;
    let row = store.get_worker(&a.id).await.unwrap().unwrap();
    assert_eq!(row.status, "offline");
    assert_eq!(
        row.status_requested, "awake",
        "the status it had is remembered"
    );
    let task = store.get_task(&echo.task_id).await.unwrap().unwrap();
    assert_eq!(task.status, "queued");

    let mut client = m.grpc().await;
    let answer = client
        .sign_on(authed(sign_on_request("a", 1), &a.id, &a.token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.requested_status(), v1::WorkerStatus::Awake);
    let _stream = client
        .connect_worker(authed(v1::ConnectRequest::default(), &a.id, &a.token))
        .await
        .unwrap();
    let row = store.get_worker(&a.id).await.unwrap().unwrap();
    assert_eq!(row.status, "awake");
    assert_eq!(
        row.status_requested, "",
        "reaching the status acknowledges it"
    );
    m.manager.shutdown().await.unwrap();
}
