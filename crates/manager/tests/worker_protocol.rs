//! The worker protocol over real gRPC on loopback: authentication, instant dispatch,
//! leases, idempotent updates, logs, and one worker per task under concurrency.
mod common;

use std::collections::HashSet;
use std::time::Duration;

use castanet_protocol::v1::{self, instruction::Kind};
use common::{authed, echo_sleep_job, next_assignment, start};
use tonic::Code;

fn sign_on(slots: u32) -> v1::SignOnRequest {
    v1::SignOnRequest {
        name: "test-worker".into(),
        platform: "linux".into(),
        supported_task_types: vec!["misc".into()],
        slots,
        capabilities: Some(v1::Capabilities {
            cpu_cores: 2,
            ram_bytes: 1 << 30,
            ..Default::default()
        }),
        software_version: "test".into(),
        can_restart: false,
        self_check_problems: Vec::new(),
        storage_mirror: String::new(),
    }
}

/// Registers, signs on and opens the instruction stream.
async fn connected_worker(
    m: &common::TestManager,
    slots: u32,
) -> (String, String, tonic::Streaming<v1::Instruction>) {
    let (id, token) = m.register("w").await;
    let mut client = m.grpc().await;
    client
        .sign_on(authed(sign_on(slots), &id, &token))
        .await
        .unwrap();
    let stream = client
        .connect_worker(authed(v1::ConnectRequest::default(), &id, &token))
        .await
        .unwrap()
        .into_inner();
    (id, token, stream)
}

#[tokio::test]
async fn wrong_secret_or_token_is_refused_and_nothing_is_stored() {
    let m = start().await;
    let mut client = m.grpc().await;
    let refused = client
        .register(v1::RegisterRequest {
            registration_secret: "guess".into(),
            name: "intruder".into(),
            platform: "linux".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert!(refused.message().contains("registration secret"));
    assert_eq!(m.manager.state.store.count_workers().await.unwrap(), 0);

    let (id, _token) = m.register("w").await;
    let wrong = client
        .sign_on(authed(sign_on(1), &id, "not-the-token"))
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Code::Unauthenticated);
    let unknown = client
        .sign_on(authed(
            sign_on(1),
            "6f0e3c1e-8f7a-4a53-9d55-0c2d7b8c9a10",
            "x",
        ))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::Unauthenticated);
    let anonymous = client
        .sign_on(tonic::Request::new(sign_on(1)))
        .await
        .unwrap_err();
    assert_eq!(anonymous.code(), Code::Unauthenticated);
    let worker = m
        .manager
        .state
        .store
        .get_worker(&id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(worker.status, "", "a refused sign-on changes nothing");
    m.manager.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_task_is_pushed_run_logged_and_completed_once() {
    let m = start().await;
    let (id, token, mut stream) = connected_worker(&m, 1).await;
    let (_, job) = m.post("/api/v3/jobs", &echo_sleep_job(1, 0)).await;
    let job_id = job["id"].as_str().unwrap().to_string();

    let echo = next_assignment(&mut stream).await;
    assert_eq!(echo.task_name, "echo");
    assert_eq!(echo.lease_epoch, 1);
    assert_eq!(echo.commands[0].name, "echo");
    let mut client = m.grpc().await;

    let chunk = v1::LogChunk {
        task_id: echo.task_id.clone(),
        lease_epoch: echo.lease_epoch,
        text: "echo: \"hello farm\"\n".into(),
        offset: Some(0),
    };
    let ack = client
        .upload_log(authed(futures::stream::iter(vec![chunk]), &id, &token))
        .await
        .unwrap()
        .into_inner();
    assert!(ack.bytes_written > 0);

    let done = v1::TaskUpdate {
        task_id: echo.task_id.clone(),
        lease_epoch: echo.lease_epoch,
        sequence: 1,
        status: v1::TaskStatus::Completed as i32,
        activity: Some("Completed".into()),
        ..Default::default()
    };
    let ack = client
        .update_task(authed(done.clone(), &id, &token))
        .await
        .unwrap()
        .into_inner();
    assert!(ack.applied);
    // The same sequence again (a retry) is acknowledged but not applied twice.
    let ack = client
        .update_task(authed(done, &id, &token))
        .await
        .unwrap()
        .into_inner();
    assert!(!ack.applied);

    // Completing the echo task makes the sleep task runnable: it is pushed at once.
    let sleep = next_assignment(&mut stream).await;
    assert_eq!(sleep.task_name, "sleep-1");

    // An update quoting a stale lease is refused and changes nothing.
    let stale = v1::TaskUpdate {
        task_id: sleep.task_id.clone(),
        lease_epoch: sleep.lease_epoch + 7,
        sequence: 2,
        status: v1::TaskStatus::Failed as i32,
        ..Default::default()
    };
    let refused = client
        .update_task(authed(stale, &id, &token))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);

    let finish = v1::TaskUpdate {
        task_id: sleep.task_id.clone(),
        lease_epoch: sleep.lease_epoch,
        sequence: 3,
        status: v1::TaskStatus::Completed as i32,
        ..Default::default()
    };
    client
        .update_task(authed(finish, &id, &token))
        .await
        .unwrap();
    let job = m
        .wait_for_job(&job_id, Duration::from_secs(5), |j| {
            j["status"] == "completed"
        })
        .await;
    assert_eq!(job["steps_completed"], job["steps_total"]);

    let (status, tail) = m
        .get(&format!("/api/v3/tasks/{}/logtail", echo.task_id))
        .await;
    assert_eq!(status, 200);
    let tail = tail.as_str().unwrap().to_string();
    assert!(
        tail.contains("Task assigned to worker test-worker"),
        "{tail}"
    );
    assert!(tail.contains("echo: \"hello farm\""), "{tail}");
    let (_, info) = m.get(&format!("/api/v3/tasks/{}/log", echo.task_id)).await;
    let log = m
        .http
        .get(format!("{}{}", m.url, info["url"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(log.text().await.unwrap(), tail);
    m.manager.shutdown().await.unwrap();
}

#[tokio::test]
async fn concurrent_workers_never_get_the_same_task() {
    let m = start().await;
    let mut workers = Vec::new();
    for _ in 0..4 {
        workers.push(connected_worker(&m, 3).await);
    }
    let (_, job) = m.post("/api/v3/jobs", &echo_sleep_job(60, 0)).await;
    let job_id = job["id"].as_str().unwrap().to_string();
    let mut handles = Vec::new();
    for (id, token, mut stream) in workers {
        let url = m.url.clone();
        handles.push(tokio::spawn(async move {
            let mut client = castanet_protocol::WorkerServiceClient::connect(url)
                .await
                .unwrap();
            let mut ran = Vec::new();
            let mut sequence = 0;
            // Complete everything that arrives until the stream is quiet for a while.
            while let Ok(Some(Ok(instruction))) =
                tokio::time::timeout(Duration::from_millis(1500), stream.next_message()).await
            {
                let Some(Kind::AssignTask(task)) = instruction.kind else {
                    continue;
                };
                sequence += 1;
                let update = v1::TaskUpdate {
                    task_id: task.task_id.clone(),
                    lease_epoch: task.lease_epoch,
                    sequence,
                    status: v1::TaskStatus::Completed as i32,
                    ..Default::default()
                };
                client
                    .update_task(authed(update, &id, &token))
                    .await
                    .unwrap();
                ran.push(task.task_id);
            }
            ran
        }));
    }
    let mut all = Vec::new();
    for handle in handles {
        all.extend(handle.await.unwrap());
    }
    let unique: HashSet<&String> = all.iter().collect();
    assert_eq!(all.len(), 61, "every task handed out once");
    assert_eq!(unique.len(), 61, "no task handed out twice");
    m.wait_for_job(&job_id, Duration::from_secs(5), |j| {
        j["status"] == "completed"
    })
    .await;
    m.manager.shutdown().await.unwrap();
}

trait NextMessage {
    async fn next_message(&mut self) -> Option<Result<v1::Instruction, tonic::Status>>;
}

impl NextMessage for tonic::Streaming<v1::Instruction> {
    async fn next_message(&mut self) -> Option<Result<v1::Instruction, tonic::Status>> {
        common::next_message(self).await.transpose()
    }
}

#[tokio::test]
async fn a_reconnecting_worker_hands_back_tasks_it_no_longer_runs() {
    let m = start().await;
    let (id, token, mut stream) = connected_worker(&m, 1).await;
    let (_, job) = m.post("/api/v3/jobs", &echo_sleep_job(1, 0)).await;
    let echo = next_assignment(&mut stream).await;
    drop(stream);
    // The worker process restarted: it runs nothing, so the echo task goes back to the queue.
    let mut client = m.grpc().await;
    client
        .sign_on(authed(sign_on(1), &id, &token))
        .await
        .unwrap();
    let mut stream = client
        .connect_worker(authed(v1::ConnectRequest::default(), &id, &token))
        .await
        .unwrap()
        .into_inner();
    let again = next_assignment(&mut stream).await;
    assert_eq!(again.task_id, echo.task_id);
    assert_eq!(
        again.lease_epoch,
        echo.lease_epoch + 1,
        "a new lease for the new run"
    );
    let (_, task) = m.get(&format!("/api/v3/tasks/{}", echo.task_id)).await;
    assert_eq!(task["status"], "active");
    let _ = job;
    m.manager.shutdown().await.unwrap();
}

/// What a manager configured by `tweak` answers a worker signing on.
async fn sign_on_answer(
    tweak: impl FnOnce(&mut castanet_manager::ManagerConfig),
) -> v1::SignOnResponse {
    let m = common::start_configured(tempfile::tempdir().expect("temp dir"), tweak).await;
    let (id, token) = m.register("w").await;
    let answer = m
        .grpc()
        .await
        .sign_on(authed(sign_on(1), &id, &token))
        .await
        .unwrap()
        .into_inner();
    m.manager.shutdown().await.unwrap();
    answer
}

#[tokio::test]
async fn sign_on_names_the_keepalive_and_fence_times() {
    let answer = sign_on_answer(|c| {
        c.task_timeout_seconds = 15;
        c.worker_timeout_seconds = 60;
    })
    .await;
    assert_eq!(
        answer.task_keepalive_ms, 5_000,
        "a third of the task timeout"
    );
    assert_eq!(answer.fence_after_ms, 30_000, "half the worker timeout");
    let answer = sign_on_answer(|c| c.task_timeout_seconds = 0).await;
    assert_eq!(
        (answer.task_keepalive_ms, answer.fence_after_ms),
        (0, 0),
        "timeouts off: no keep-alives, no fence"
    );
}

#[tokio::test]
async fn a_reconnecting_worker_is_told_to_stop_a_task_that_is_no_longer_its_own() {
    let m = start().await;
    let (id, token, mut stream) = connected_worker(&m, 1).await;
    let (_, job) = m.post("/api/v3/jobs", &echo_sleep_job(1, 0)).await;
    let echo = next_assignment(&mut stream).await;
    drop(stream);
    // While the worker was away the job was canceled.
    let job_id = job["id"].as_str().unwrap_or_default();
    let (status, _) = m
        .post(
            &format!("/api/v3/jobs/{job_id}/setstatus"),
            &serde_json::json!({"status": "cancel-requested", "reason": "test"}),
        )
        .await;
    assert_eq!(status, 204);
    let mut client = m.grpc().await;
    client
        .sign_on(authed(sign_on(1), &id, &token))
        .await
        .unwrap();
    let request = v1::ConnectRequest {
        running_tasks: vec![v1::TaskLease {
            task_id: echo.task_id.clone(),
            lease_epoch: echo.lease_epoch,
        }],
    };
    let mut stream = client
        .connect_worker(authed(request, &id, &token))
        .await
        .unwrap()
        .into_inner();
    let first = tokio::time::timeout(Duration::from_secs(10), common::next_message(&mut stream))
        .await
        .expect("an instruction arrives")
        .expect("stream healthy")
        .expect("stream open");
    match first.kind {
        Some(Kind::AbortTask(abort)) => {
            assert_eq!(
                (abort.task_id.as_str(), abort.lease_epoch),
                (echo.task_id.as_str(), echo.lease_epoch)
            );
        }
        other => panic!("expected the stale run to be aborted first, got {other:?}"),
    }
    m.manager.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_retried_log_chunk_is_stored_once() {
    let m = start().await;
    let (id, token, mut stream) = connected_worker(&m, 1).await;
    let (_, _job) = m.post("/api/v3/jobs", &echo_sleep_job(1, 0)).await;
    let echo = next_assignment(&mut stream).await;
    let mut client = m.grpc().await;
    let chunk = |text: &str, offset: Option<u64>| v1::LogChunk {
        task_id: echo.task_id.clone(),
        lease_epoch: echo.lease_epoch,
        text: text.into(),
        offset,
    };
    // Stored, but say the answer was lost: the worker retries it with a line more; then
    // text of unknown position (a spool file) that repeats the last line; then new text.
    for sent in [
        chunk("one\ntwo\n", Some(0)),
        chunk("one\ntwo\nthree\n", Some(0)),
        chunk("three\nfour\n", None),
        chunk("five\n", Some(18)),
    ] {
        client
            .upload_log(authed(futures::stream::iter(vec![sent]), &id, &token))
            .await
            .unwrap();
    }
    let (_, info) = m.get(&format!("/api/v3/tasks/{}/log", echo.task_id)).await;
    let url = info["url"].as_str().unwrap_or_default();
    let log = m.text(url).await;
    let worker_lines: Vec<&str> = log
        .lines()
        .filter(|l| ["one", "two", "three", "four", "five"].contains(l))
        .collect();
    assert_eq!(
        worker_lines,
        ["one", "two", "three", "four", "five"],
        "{log}"
    );
    m.manager.shutdown().await.unwrap();
}

#[tokio::test]
async fn log_lines_with_a_final_update_are_stored_before_it_once() {
    let m = start().await;
    let (id, token, mut stream) = connected_worker(&m, 1).await;
    let (_, job) = m.post("/api/v3/jobs", &echo_sleep_job(1, 0)).await;
    let job_id = job["id"].as_str().unwrap().to_string();
    let echo = next_assignment(&mut stream).await;
    let mut client = m.grpc().await;

    // The first line went in a chunk of its own; the rest goes with the final status.
    let chunk = v1::LogChunk {
        task_id: echo.task_id.clone(),
        lease_epoch: echo.lease_epoch,
        text: "line one\n".into(),
        offset: Some(0),
    };
    client
        .upload_log(authed(futures::stream::iter(vec![chunk]), &id, &token))
        .await
        .unwrap();
    let done = v1::TaskUpdate {
        task_id: echo.task_id.clone(),
        lease_epoch: echo.lease_epoch,
        sequence: 1,
        status: v1::TaskStatus::Completed as i32,
        activity: Some("Completed".into()),
        log_tail: Some(v1::LogTail {
            text: "line two\nline three\n".into(),
            offset: Some(9),
        }),
        ..Default::default()
    };
    let ack = client
        .update_task(authed(done.clone(), &id, &token))
        .await
        .unwrap()
        .into_inner();
    assert!(ack.applied);
    // A retry (its acknowledgement was lost) stores nothing twice.
    let ack = client
        .update_task(authed(done, &id, &token))
        .await
        .unwrap()
        .into_inner();
    assert!(!ack.applied);
    let (_, log) = m
        .get(&format!("/api/v3/tasks/{}/logtail", echo.task_id))
        .await;
    let log = log.as_str().unwrap_or_default().to_string();
    let worker_lines: Vec<&str> = log.lines().filter(|l| l.starts_with("line ")).collect();
    assert_eq!(
        worker_lines,
        ["line one", "line two", "line three"],
        "{log}"
    );

    // Lines with an update quoting a lease the worker does not hold are not stored.
    let sleep = next_assignment(&mut stream).await;
    let stale = v1::TaskUpdate {
        task_id: sleep.task_id.clone(),
        lease_epoch: sleep.lease_epoch + 1,
        sequence: 2,
        status: v1::TaskStatus::Completed as i32,
        log_tail: Some(v1::LogTail {
            text: "from a lost lease\n".into(),
            offset: Some(0),
        }),
        ..Default::default()
    };
    let refused = client
        .update_task(authed(stale, &id, &token))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    let (_, log) = m
        .get(&format!("/api/v3/tasks/{}/logtail", sleep.task_id))
        .await;
    assert!(!log.to_string().contains("from a lost lease"), "{log}");
    let (_, job) = m.get(&format!("/api/v3/jobs/{job_id}")).await;
    assert_eq!(job["status"], "active");
    m.manager.shutdown().await.unwrap();
}
