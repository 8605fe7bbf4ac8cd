//! The live event stream: a subscriber sees a job's changes in order, filtered to what it
//! asked for.
mod common;

use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;

/// Reads SSE events (name, data) until `enough` says so or 10 s pass.
async fn read_events(
    response: reqwest::Response,
    enough: impl Fn(&[(String, Value)]) -> bool,
) -> Vec<(String, Value)> {
    let mut body = response.bytes_stream();
    let mut buffer = String::new();
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !enough(&events) {
        let chunk = tokio::time::timeout_at(deadline, body.next())
            .await
            .expect("events arrive in time")
            .expect("stream open")
            .expect("chunk");
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let mut name = String::new();
            let mut data = String::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    name = v.trim().to_string();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim());
                }
            }
            if !name.is_empty() {
                events.push((name, serde_json::from_str(&data).unwrap_or(Value::Null)));
            }
        }
    }
    events
}

#[tokio::test]
async fn a_subscriber_sees_job_then_task_then_log_events_for_its_job_only() {
    let m = common::start().await;
    // An unrelated job first: the filtered stream must not show it.
    let (_, other) = m.post("/api/v3/jobs", &common::echo_sleep_job(1, 0)).await;

    let (id, token) = m.register("events-worker").await;
    let mut client = m.grpc().await;
    let sign_on = castanet_protocol::v1::SignOnRequest {
        name: "events-worker".into(),
        supported_task_types: vec!["misc".into()],
        slots: 1,
        ..Default::default()
    };
    client
        .sign_on(common::authed(sign_on, &id, &token))
        .await
        .unwrap();

    // Subscribe to everything, submit, then learn the job id from the first job event.
    let all = m
        .http
        .get(format!("{}/api/v3/events", m.url))
        .send()
        .await
        .unwrap();
    assert_eq!(all.headers()["content-type"], "text/event-stream");
    // Higher priority than the other job, so the worker's one slot goes to it.
    let mut submission = common::echo_sleep_job(1, 0);
    submission["priority"] = serde_json::json!(60);
    let (_, job) = m.post("/api/v3/jobs", &submission).await;
    let job_id = job["id"].as_str().unwrap().to_string();
    let filtered = m
        .http
        .get(format!("{}/api/v3/events?job={job_id}", m.url))
        .send()
        .await
        .unwrap();

    let _stream = client
        .connect_worker(common::authed(
            castanet_protocol::v1::ConnectRequest::default(),
            &id,
            &token,
        ))
        .await
        .unwrap();

    let events = read_events(filtered, |e| e.iter().any(|(kind, _)| kind == "task")).await;
    assert!(
        events
            .iter()
            .all(|(_, data)| data["job_id"] == job_id.as_str()),
        "{events:?}"
    );
    // The worker's event is published after its stream opened, which may come after the
    // dispatcher already handed out the task: wait for both.
    let everything = read_events(all, |e| {
        e.iter().filter(|(kind, _)| kind == "job").count() >= 2
            && e.iter().any(|(kind, _)| kind == "worker")
    })
    .await;
    let first_job = everything
        .iter()
        .position(|(kind, _)| kind == "job")
        .unwrap();
    assert_eq!(
        everything[first_job].1["job_id"],
        job_id.as_str(),
        "the new job is announced first"
    );
    assert!(
        everything.iter().any(|(kind, _)| kind == "worker"),
        "{everything:?}"
    );
    // Events carry the changed entity's fields (as Flamenco's updates do): no re-read needed.
    let job_event = &everything[first_job].1;
    assert_eq!(job_event["name"], "test job", "{job_event}");
    assert!(
        ["queued", "active"].contains(&job_event["status"].as_str().unwrap_or_default()),
        "{job_event}"
    );
    assert!(job_event["steps_total"].as_i64().is_some(), "{job_event}");
    let task_event = events
        .iter()
        .find(|(kind, _)| kind == "task")
        .map(|(_, data)| data)
        .expect("a task event");
    assert!(
        task_event["status"].is_string() && task_event["name"].is_string(),
        "{task_event}"
    );
    let worker_event = everything
        .iter()
        .find(|(kind, _)| kind == "worker")
        .map(|(_, data)| data)
        .expect("a worker event");
    assert_eq!(worker_event["name"], "events-worker", "{worker_event}");
    assert!(
        everything
            .iter()
            .all(|(_, data)| data["job_id"] != other["id"]),
        "the older job did not change"
    );
    // Open worker connections would hold the manager's graceful shutdown for its grace period.
    drop(_stream);
    drop(client);
    m.manager.shutdown().await.unwrap();
}

/// An open event stream read one event at a time.
struct EventReader {
    body: futures::stream::BoxStream<'static, reqwest::Result<Vec<u8>>>,
    buffer: String,
}

impl EventReader {
    fn new(response: reqwest::Response) -> Self {
        Self {
            body: response
                .bytes_stream()
                .map(|chunk| chunk.map(|bytes| bytes.to_vec()))
                .boxed(),
            buffer: String::new(),
        }
    }

    /// The next event (name, data); panics when none comes within 10 s.
    async fn next(&mut self) -> (String, Value) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut name = String::new();
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        name = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim());
                    }
                }
                if !name.is_empty() {
                    return (name, serde_json::from_str(&data).unwrap_or(Value::Null));
                }
            }
            let chunk = tokio::time::timeout_at(deadline, self.body.next())
                .await
                .expect("an event arrives within 10 s")
                .expect("stream open")
                .expect("chunk");
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// Waits for `task-log` events of `task_id` until the task's log tail holds `text`
    /// (several manager lines may be announced before the awaited one).
    async fn log_line(&mut self, m: &common::TestManager, task_id: &str, text: &str) -> String {
        loop {
            let (kind, data) = self.next().await;
            if kind != "task-log" || data["task_id"] != task_id {
                continue;
            }
            let (status, tail) = m.get(&format!("/api/v3/tasks/{task_id}/logtail")).await;
            assert_eq!(status, 200, "{tail}");
            let tail = tail.as_str().unwrap_or_default().to_string();
            if tail.contains(text) {
                return tail;
            }
        }
    }
}

#[tokio::test]
async fn manager_written_log_lines_are_announced_as_task_log_events() {
    let m = common::start().await;
    let (_, job) = m.post("/api/v3/jobs", &common::echo_sleep_job(1, 0)).await;
    let job_id = job["id"].as_str().unwrap().to_string();
    let stream = m
        .http
        .get(format!("{}/api/v3/events?job={job_id}", m.url))
        .send()
        .await
        .unwrap();
    let mut events = EventReader::new(stream);

    // The assignment line is kept back until the log is read or written, yet announced
    // at once: a dashboard tailing the task shows it without polling.
    let mut worker = m.connect(common::misc_sign_on("log-events", 1)).await;
    let assigned = match tokio::time::timeout(
        Duration::from_secs(10),
        common::next_message(&mut worker.stream),
    )
    .await
    .expect("an assignment within 10 s")
    .expect("stream healthy")
    .and_then(|message| message.kind)
    {
        Some(castanet_protocol::v1::instruction::Kind::AssignTask(task)) => task,
        other => panic!("expected an assignment, got {other:?}"),
    };
    let tail = events
        .log_line(&m, &assigned.task_id, "Task assigned to worker log-events")
        .await;
    assert!(tail.contains(&worker.id), "{tail}");

    // Signing off hands the task back with a manager line; with no worker left nothing
    // else writes to this log, so the event can only come from that line.
    worker
        .client
        .sign_off(common::authed(
            castanet_protocol::v1::SignOffRequest {
                reason: "testing log events".into(),
            },
            &worker.id,
            &worker.token,
        ))
        .await
        .unwrap();
    let tail = events
        .log_line(
            &m,
            &assigned.task_id,
            "Task returned to the queue because the worker signed off",
        )
        .await;
    assert!(
        tail.contains("Task assigned to worker log-events"),
        "{tail}"
    );
    drop(worker);
    m.manager.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_client_that_falls_behind_gets_one_resync_instead_of_slowing_the_manager() {
    let m = common::start().await;
    let response = m
        .http
        .get(format!("{}/api/v3/events", m.url))
        .send()
        .await
        .expect("stream opens");
    assert_eq!(response.status(), 200);
    // More events in one burst than a client's buffer holds (4,096): publishing never
    // waits for the client; the client is told to re-read instead.
    let events = &m.manager.state.events;
    for i in 0..5_000 {
        events.publish(castanet_manager::events::Event::job(&format!("job-{i}")));
    }
    let seen = read_events(response, |seen| {
        seen.iter().any(|(name, _)| name == "resync")
    })
    .await;
    let (name, _) = seen.last().expect("an event");
    assert_eq!(name, "resync");
    // What came before the resync is whatever was written before the client lagged;
    // never more than the burst itself.
    assert!(seen.len() <= 5_001, "{} events", seen.len());

    // The manager goes on serving streams as usual.
    let more = m
        .http
        .get(format!("{}/api/v3/events", m.url))
        .send()
        .await
        .expect("second stream opens");
    events.publish(castanet_manager::events::Event::job("after"));
    let after = read_events(more, |seen| !seen.is_empty()).await;
    assert_eq!(after[0].0, "job");
    assert_eq!(after[0].1["job_id"], "after");
}
