//! Property fuzzing of the worker protocol over a real gRPC loopback connection: random and
//! hostile messages (any strings, ids and numbers, NaN progress, missing fields, wrong or
//! garbage credentials, calls in any order: updates for unknown leases, task updates before
//! sign-on, logs for tasks never held) each get a well-formed answer — success or a status that
//! is the caller's fault, never an internal error or a hang — and the manager still schedules a
//! normal task to a normal worker afterwards.
mod common;
mod fuzz_support;
mod sim_worker;

use std::time::Duration;

use castanet_protocol::WorkerServiceClient;
use castanet_protocol::v1;
use proptest::prelude::*;
use proptest::test_runner::{TestCaseError, TestRunner};
use tonic::transport::Channel;

use common::TestManager;

/// Every call must be answered within this (the manager's own timeouts are longer).
const ANSWER_WITHIN: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy)]
enum Credentials {
    Own,
    WrongToken,
    UnknownWorker,
    Missing,
    Garbage,
}

#[derive(Debug, Clone)]
enum Call {
    Register {
        right_secret: bool,
        name: String,
        platform: String,
    },
    SignOn(v1::SignOnRequest),
    SignOff(String),
    Connect(Vec<v1::TaskLease>),
    /// With `true`: about the task the worker was assigned, when it has one.
    Update(v1::TaskUpdate, bool),
    UploadLog(Vec<v1::LogChunk>, bool),
    LastRendered(v1::LastRendered, bool),
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z -]{0,12}",
        any::<String>(),
        Just(String::new()),
        "[\u{0}-\u{1f}]{1,4}",
        (1usize..4).prop_map(|kib| "x".repeat(kib * 1024 * 64)),
    ]
}

/// A task id: one of the job's real tasks, or anything else.
fn task_id(known: Vec<String>) -> impl Strategy<Value = String> {
    prop_oneof![prop::sample::select(known), text()]
}

fn big_u64() -> impl Strategy<Value = u64> {
    prop_oneof![
        any::<u64>(),
        0u64..4,
        Just(u64::MAX),
        Just(i64::MAX as u64 + 1)
    ]
}

fn sign_on() -> impl Strategy<Value = v1::SignOnRequest> {
    (
        text(),
        text(),
        prop::collection::vec(prop_oneof![Just("misc".to_owned()), text()], 0..4),
        any::<u32>(),
        any::<u32>(),
        any::<u64>(),
        prop::collection::btree_map(text(), text(), 0..3),
        any::<bool>(),
        prop::collection::vec(text(), 0..3),
    )
        .prop_map(
            |(
                name,
                platform,
                task_types,
                slots,
                cpu_cores,
                ram_bytes,
                software,
                can_restart,
                self_check_problems,
            )| {
                // Any text as a mirror path: the manager keeps only an absolute one.
                let storage_mirror = self_check_problems.first().cloned().unwrap_or_default();
                v1::SignOnRequest {
                    name,
                    platform,
                    supported_task_types: task_types,
                    slots,
                    capabilities: Some(v1::Capabilities {
                        cpu_cores,
                        ram_bytes,
                        gpus: vec![v1::Gpu {
                            name: "gpu".into(),
                            vram_bytes: u64::MAX,
                            index: u32::MAX,
                        }],
                        software: software.into_iter().collect(),
                    }),
                    software_version: "fuzz".into(),
                    can_restart,
                    self_check_problems,
                    storage_mirror,
                }
            },
        )
}

fn update(known: Vec<String>) -> impl Strategy<Value = v1::TaskUpdate> {
    (
        task_id(known),
        big_u64(),
        big_u64(),
        prop_oneof![0i32..4, any::<i32>()],
        prop::option::of(text()),
        prop::option::of(any::<u32>()),
        prop::option::of(prop_oneof![
            any::<f32>(),
            Just(f32::NAN),
            Just(f32::INFINITY),
            Just(-1.0f32),
            Just(1e30f32)
        ]),
        prop::option::of((any::<i32>(), text(), prop::collection::vec(text(), 0..3))),
        prop::option::of((text(), prop::option::of(big_u64()))),
    )
        .prop_map(
            |(task_id, lease_epoch, sequence, status, activity, steps, progress, failure, tail)| {
                v1::TaskUpdate {
                    task_id,
                    lease_epoch,
                    sequence,
                    status,
                    activity,
                    steps_completed: steps,
                    progress_percent: progress,
                    failure: failure.map(|(fault_class, message, last_log_lines)| v1::Failure {
                        fault_class,
                        message,
                        last_log_lines,
                    }),
                    log_tail: tail.map(|(text, offset)| v1::LogTail { text, offset }),
                }
            },
        )
}

fn call(known: Vec<String>) -> impl Strategy<Value = Call> {
    let lease =
        (task_id(known.clone()), big_u64()).prop_map(|(task_id, lease_epoch)| v1::TaskLease {
            task_id,
            lease_epoch,
        });
    let chunk = (
        task_id(known.clone()),
        big_u64(),
        text(),
        prop::option::of(big_u64()),
    )
        .prop_map(|(task_id, lease_epoch, text, offset)| v1::LogChunk {
            task_id,
            lease_epoch,
            text,
            offset,
        });
    let last_rendered = (
        task_id(known.clone()),
        big_u64(),
        prop_oneof![Just("image/jpeg".to_owned()), text()],
        prop::collection::vec(any::<u8>(), 0..2048),
        prop::option::of(any::<i64>()),
    )
        .prop_map(
            |(task_id, lease_epoch, mime_type, image, frame)| v1::LastRendered {
                task_id,
                lease_epoch,
                mime_type,
                image,
                frame,
            },
        );
    prop_oneof![
        (any::<bool>(), text(), text()).prop_map(|(right_secret, name, platform)| {
            Call::Register {
                right_secret,
                name,
                platform,
            }
        }),
        sign_on().prop_map(Call::SignOn),
        text().prop_map(Call::SignOff),
        prop::collection::vec(lease, 0..4).prop_map(Call::Connect),
        (update(known), any::<bool>()).prop_map(|(update, held)| Call::Update(update, held)),
        (prop::collection::vec(chunk, 0..4), any::<bool>())
            .prop_map(|(chunks, held)| Call::UploadLog(chunks, held)),
        (last_rendered, any::<bool>()).prop_map(|(image, held)| Call::LastRendered(image, held)),
    ]
}

fn credentials() -> impl Strategy<Value = Credentials> {
    prop_oneof![
        6 => Just(Credentials::Own),
        1 => Just(Credentials::WrongToken),
        1 => Just(Credentials::UnknownWorker),
        1 => Just(Credentials::Missing),
        1 => Just(Credentials::Garbage),
    ]
}

/// The hostile worker's identity during one case, and what it keeps open.
struct Session {
    id: String,
    token: String,
    client: WorkerServiceClient<Channel>,
    streams: Vec<tonic::Streaming<v1::Instruction>>,
    /// The last task assigned to it: (task id, lease epoch).
    held: Option<(String, u64)>,
}

impl Session {
    /// Points a message at the held task, so hostile values reach a real lease.
    fn aim(&self, on_held: bool, task_id: &mut String, lease_epoch: &mut u64) {
        if let (true, Some((held_id, held_epoch))) = (on_held, &self.held) {
            task_id.clone_from(held_id);
            *lease_epoch = *held_epoch;
        }
    }
}

fn with_credentials<T>(
    message: T,
    session: &Session,
    credentials: Credentials,
) -> tonic::Request<T> {
    match credentials {
        Credentials::Own => common::authed(message, &session.id, &session.token),
        Credentials::WrongToken => common::authed(message, &session.id, "not-the-token"),
        Credentials::UnknownWorker => common::authed(
            message,
            "00000000-0000-4000-8000-000000000000",
            &session.token,
        ),
        Credentials::Missing => tonic::Request::new(message),
        Credentials::Garbage => {
            let mut request = tonic::Request::new(message);
            let metadata = request.metadata_mut();
            metadata.insert(
                castanet_protocol::WORKER_ID_HEADER,
                tonic::metadata::MetadataValue::from_static("'; DROP TABLE workers; --"),
            );
            metadata.insert(
                castanet_protocol::AUTHORIZATION_HEADER,
                tonic::metadata::MetadataValue::from_static("Basic Zm9vOmJhcg=="),
            );
            request
        }
    }
}

/// An answer the manager may give a hostile caller: success, or a status that blames the call.
fn check_answer<T>(
    what: &str,
    answer: Result<T, tonic::Status>,
) -> Result<Option<T>, TestCaseError> {
    use tonic::Code;
    match answer {
        Ok(value) => Ok(Some(value)),
        Err(status) => {
            let blames_the_call = matches!(
                status.code(),
                Code::InvalidArgument
                    | Code::NotFound
                    | Code::FailedPrecondition
                    | Code::Unauthenticated
                    | Code::PermissionDenied
                    | Code::OutOfRange
                    | Code::ResourceExhausted
                    | Code::AlreadyExists
            );
            prop_assert!(blames_the_call, "{what}: {status:?}");
            prop_assert!(
                !status.message().is_empty(),
                "{what}: {status:?} says nothing"
            );
            Ok(None)
        }
    }
}

async fn answered<F: std::future::Future>(what: &str, call: F) -> Result<F::Output, TestCaseError> {
    tokio::time::timeout(ANSWER_WITHIN, call)
        .await
        .map_err(|_| TestCaseError::fail(format!("{what}: no answer within {ANSWER_WITHIN:?}")))
}

async fn run_call(
    m: &TestManager,
    session: &mut Session,
    call: Call,
    credentials: Credentials,
) -> Result<(), TestCaseError> {
    let what: String = format!("{call:?} with {credentials:?}")
        .chars()
        .take(300)
        .collect();
    let what = what.as_str();
    match call {
        Call::Register {
            right_secret,
            name,
            platform,
        } => {
            let registration_secret = if right_secret {
                m.secret.clone()
            } else {
                "wrong".to_owned()
            };
            let request = v1::RegisterRequest {
                registration_secret,
                name,
                platform,
            };
            let answer = answered(what, session.client.register(request)).await?;
            if let Some(registered) = check_answer(what, answer)? {
                let registered = registered.into_inner();
                session.id = registered.worker_id;
                session.token = registered.token;
            }
        }
        Call::SignOn(request) => {
            let request = with_credentials(request, session, credentials);
            check_answer(what, answered(what, session.client.sign_on(request)).await?)?;
        }
        Call::SignOff(reason) => {
            let request = with_credentials(v1::SignOffRequest { reason }, session, credentials);
            check_answer(
                what,
                answered(what, session.client.sign_off(request)).await?,
            )?;
        }
        Call::Connect(running_tasks) => {
            let request = v1::ConnectRequest { running_tasks };
            let request = with_credentials(request, session, credentials);
            let answer = answered(what, session.client.connect_worker(request)).await?;
            if let Some(stream) = check_answer(what, answer)? {
                let mut stream = stream.into_inner();
                let first = common::next_message(&mut stream);
                if let Ok(Ok(Some(message))) =
                    tokio::time::timeout(Duration::from_millis(50), first).await
                    && let Some(v1::instruction::Kind::AssignTask(task)) = message.kind
                {
                    session.held = Some((task.task_id, task.lease_epoch));
                }
                session.streams.push(stream);
            }
        }
        Call::Update(mut update, on_held) => {
            session.aim(on_held, &mut update.task_id, &mut update.lease_epoch);
            let request = with_credentials(update, session, credentials);
            check_answer(
                what,
                answered(what, session.client.update_task(request)).await?,
            )?;
        }
        Call::UploadLog(mut chunks, on_held) => {
            for chunk in &mut chunks {
                session.aim(on_held, &mut chunk.task_id, &mut chunk.lease_epoch);
            }
            let request = with_credentials(tokio_stream::iter(chunks), session, credentials);
            check_answer(
                what,
                answered(what, session.client.upload_log(request)).await?,
            )?;
        }
        Call::LastRendered(mut image, on_held) => {
            session.aim(on_held, &mut image.task_id, &mut image.lease_epoch);
            let request = with_credentials(image, session, credentials);
            let answer = answered(what, session.client.upload_last_rendered(request)).await?;
            check_answer(what, answer)?;
        }
    }
    Ok(())
}

async fn run_case(
    m: &TestManager,
    known: &[String],
    start_connected: bool,
    calls: Vec<(Call, Credentials)>,
) -> Result<(), TestCaseError> {
    // A fresh task for workers that sign on for `misc` and connect to be assigned.
    let (status, job) = m.post("/api/v3/jobs", &common::echo_sleep_job(1, 0)).await;
    prop_assert_eq!(status, 200, "{}", job);
    // Registered, but not signed on and without a stream: calls arrive in any order from here.
    let (id, token) = m.register("fuzz-worker").await;
    let mut session = Session {
        id,
        token,
        client: m.grpc().await,
        streams: Vec::new(),
        held: None,
    };
    if start_connected {
        // Half the cases hold a task from the start, so hostile values reach a real lease.
        let sign_on = sim_worker::sign_on_request("fuzz-worker", 1);
        run_call(m, &mut session, Call::SignOn(sign_on), Credentials::Own).await?;
        run_call(m, &mut session, Call::Connect(Vec::new()), Credentials::Own).await?;
    }
    for (call, credentials) in calls {
        run_call(m, &mut session, call, credentials).await?;
    }
    // Tasks it still holds go back to the queue for the next case (the answer may be a refusal).
    let sign_off = v1::SignOffRequest::default();
    let request = common::authed(sign_off, &session.id, &session.token);
    let answer = answered("final sign-off", session.client.sign_off(request)).await?;
    check_answer("final sign-off", answer)?;
    // Still answering: a plain registration works after whatever came before.
    let (id, _) = m.register("after-the-case").await;
    prop_assert!(!id.is_empty());
    // Whatever a worker claimed, the API shows progress within 0..=100.
    for task_id in known {
        let (_, task) = m.get(&format!("/api/v3/tasks/{task_id}")).await;
        if let Some(progress) = task.get("progress") {
            let within = progress
                .as_f64()
                .is_some_and(|p| (0.0..=100.0).contains(&p));
            prop_assert!(within, "task {task_id} shows progress {progress}");
        }
    }
    Ok(())
}

/// Task ids of a job, from the REST API.
async fn task_ids(m: &TestManager, job_id: &str) -> Vec<String> {
    let (_, tasks) = m.get(&format!("/api/v3/jobs/{job_id}/tasks")).await;
    tasks["tasks"]
        .as_array()
        .expect("task list")
        .iter()
        .filter_map(|task| task["id"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn hostile_worker_calls_get_well_formed_answers_and_scheduling_goes_on() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let m = runtime.block_on(common::start());
    let (status, job) = runtime.block_on(m.post("/api/v3/jobs", &common::echo_sleep_job(3, 0)));
    assert_eq!(status, 200, "{job}");
    let known = runtime.block_on(task_ids(&m, job["id"].as_str().expect("job id")));
    assert!(!known.is_empty());

    let calls = prop::collection::vec((call(known.clone()), credentials()), 1..10);
    let strategy = (any::<bool>(), calls);
    let mut runner = TestRunner::new(fuzz_support::cases(100));
    let outcome = runner.run(&strategy, |(start_connected, calls)| {
        runtime.block_on(run_case(&m, &known, start_connected, calls))
    });
    if let Err(failure) = outcome {
        panic!("{failure}");
    }

    runtime.block_on(async {
        // A normal worker and a normal job: the job's tasks are handed out and complete (tasks
        // of the first job that a fuzzed worker still holds stay with it until it times out).
        let mut worker = sim_worker::SimWorker::connect(&m, "normal-worker").await;
        let (status, fresh) = m.post("/api/v3/jobs", &common::echo_sleep_job(1, 0)).await;
        assert_eq!(status, 200, "{fresh}");
        let fresh_tasks = task_ids(&m, fresh["id"].as_str().expect("job id")).await;
        let mut done = 0;
        while done < fresh_tasks.len() {
            let task = worker.next_assignment().await;
            worker.complete(&task).await;
            if fresh_tasks.contains(&task.task_id) {
                done += 1;
            }
        }
        m.wait_for_job(
            fresh["id"].as_str().expect("job id"),
            Duration::from_secs(10),
            |job| job["status"] == "completed",
        )
        .await;
        m.manager.shutdown().await.expect("clean shutdown");
    });
}

/// Found by the property: a status quoting a 64 KiB MIME type (or task id) went out as a 64 KiB
/// `grpc-message` header; the client refused it and the whole connection closed, so the worker's
/// next call failed as well.
#[tokio::test]
async fn a_status_quoting_a_huge_string_is_cut_and_the_connection_survives() {
    let m = common::start().await;
    let (id, token) = m.register("quoting-worker").await;
    let mut client = m.grpc().await;
    let huge = "x".repeat(64 * 1024);
    let image = v1::LastRendered {
        task_id: huge.clone(),
        lease_epoch: 1,
        mime_type: huge.clone(),
        image: vec![1, 2, 3],
        frame: None,
    };
    let refused = client
        .upload_last_rendered(common::authed(image, &id, &token))
        .await
        .expect_err("not a JPEG");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
    assert!(
        refused.message().len() < 2048,
        "{} bytes",
        refused.message().len()
    );
    let update = v1::TaskUpdate {
        task_id: huge,
        lease_epoch: 1,
        sequence: 1,
        ..Default::default()
    };
    let refused = client
        .update_task(common::authed(update, &id, &token))
        .await
        .expect_err("no such task");
    assert!(
        refused.message().len() < 2048,
        "{} bytes",
        refused.message().len()
    );
    // The same connection still answers.
    let registered = client
        .register(v1::RegisterRequest {
            registration_secret: m.secret.clone(),
            name: "next".into(),
            platform: "linux".into(),
        })
        .await;
    assert!(registered.is_ok(), "{registered:?}");
    m.manager.shutdown().await.expect("clean shutdown");
}

/// Found while checking the property's progress rule on a held task: the manager stored and
/// showed whatever percent a worker sent (1e30, -1); NaN and infinities mean "no progress".
#[tokio::test]
async fn progress_from_a_worker_is_kept_within_0_to_100() {
    let m = common::start().await;
    let mut worker = sim_worker::SimWorker::connect(&m, "progress-worker").await;
    let (status, job) = m.post("/api/v3/jobs", &common::echo_sleep_job(1, 0)).await;
    assert_eq!(status, 200, "{job}");
    let task = worker.next_assignment().await;
    let cases = [
        (1e30f32, Some(100.0)),
        (-1.0, Some(0.0)),
        (42.5, Some(42.5)),
        (f32::NAN, Some(42.5)),
        (f32::INFINITY, Some(42.5)),
    ];
    for (sequence, (sent, shown)) in (1_000u64..).zip(cases) {
        let update = v1::TaskUpdate {
            task_id: task.task_id.clone(),
            lease_epoch: task.lease_epoch,
            sequence,
            progress_percent: Some(sent),
            ..Default::default()
        };
        worker
            .client
            .update_task(common::authed(update, &worker.id, &worker.token))
            .await
            .expect("update accepted");
        let (_, shown_task) = m.get(&format!("/api/v3/tasks/{}", task.task_id)).await;
        assert_eq!(
            shown_task["progress"].as_f64(),
            shown,
            "after {sent}: {shown_task}"
        );
    }
    m.manager.shutdown().await.expect("clean shutdown");
}
