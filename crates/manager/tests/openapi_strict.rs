//! What the manager sends is what its OpenAPI document says, strictly: on a farm with a
//! rendered frame and preview video, a blocklisted worker, a job waiting for another, a tag,
//! a notification rule and audit entries, every documented JSON GET answer (and the answers
//! to the writes that built the farm) is checked against its schema: no property the
//! document does not describe, every required one present, types, enums and formats right.
mod common;
mod openapi_validator;
mod sim_worker;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use castanet_protocol::v1;
use common::TestManager;
use openapi_validator::Validator;
use serde_json::{Value, json};
use sim_worker::{SimWorker, start_with};

/// Documented JSON GET answers this test does not check, and why.
const NOT_CHECKED: &[(&str, &str)] = &[(
    "/api/v3/openapi.json",
    "the document itself; its shape is OpenAPI's",
)];

/// Checks answers against the document and remembers which paths were checked.
struct Checker<'a> {
    validator: Validator<'a>,
    doc: &'a Value,
    problems: Vec<String>,
    checked: BTreeSet<String>,
}

impl Checker<'_> {
    /// Checks `answer` (sent with `status`) against what the document says `method path`
    /// answers with that status; an undocumented JSON answer is a problem too.
    fn check(&mut self, method: &str, path: &str, url: &str, status: u16, answer: &Value) {
        let responses = &self.doc["paths"][path][method]["responses"];
        let schema = &responses[status.to_string()]["content"]["application/json"]["schema"];
        if schema.is_null() {
            if !(answer.is_null() || answer == &json!("")) {
                self.problems.push(format!(
                    "{method} {url}: answered {status} with JSON the document does not \
                     describe: {answer}"
                ));
            }
            return;
        }
        for problem in self.validator.problems(schema, answer) {
            self.problems
                .push(format!("{method} {url} ({status}): {problem}"));
        }
        if status == 200 || status == 201 {
            self.checked.insert(format!("{method} {path}"));
        }
    }
}

/// POSTs `body` to `url` (documented as `path`), checks the answer, returns it.
async fn post(m: &TestManager, c: &mut Checker<'_>, path: &str, url: &str, body: Value) -> Value {
    let (status, answer) = m.post(url, &body).await;
    assert!(status < 300, "POST {url}: {status} {answer}");
    c.check("post", path, url, status, &answer);
    answer
}

fn id_of(answer: &Value) -> String {
    answer["id"].as_str().expect("an id").to_owned()
}

/// Polls `url` until it answers 200.
async fn until_ok(m: &TestManager, url: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, body) = m.get(url).await;
        if status == 200 {
            return;
        }
        assert!(Instant::now() < deadline, "{url}: still {status} {body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn every_answer_is_exactly_what_the_document_describes() {
    let m = start_with(|c| {
        c.preview_video.min_interval_seconds = 0.0;
        c.blocklist_threshold = 1;
    })
    .await;
    let (_, doc) = m.get("/api/v3/openapi.json").await;
    let mut c = Checker {
        validator: Validator::new(&doc),
        doc: &doc,
        problems: Vec::new(),
        checked: BTreeSet::new(),
    };
    let tags = "/api/v3/worker-mgt/tags";
    let tag = post(
        &m,
        &mut c,
        tags,
        tags,
        json!({"name": "gpu", "description": "cards"}),
    )
    .await;
    let jobs = "/api/v3/jobs";
    let render = id_of(&post(&m, &mut c, jobs, jobs, common::render_job("1-3")).await);
    let echo = id_of(&post(&m, &mut c, jobs, jobs, common::echo_sleep_job(2, 0)).await);
    let mut waiting = common::echo_sleep_job(1, 0);
    waiting["depends_on"] = json!([render]);
    let waiting = id_of(&post(&m, &mut c, jobs, jobs, waiting).await);
    let rules = "/api/v3/notifications/rules";
    let rule = json!({"name": "hook", "kind": "webhook", "events": ["job-completed"],
                      "url": "http://127.0.0.1:9/hook", "secret": "s"});
    let rule = id_of(&post(&m, &mut c, rules, rules, rule).await);
    let (status, _) = m
        .post(
            &format!("/api/v3/jobs/{echo}/setpriority"),
            &json!({"priority": 60}),
        )
        .await;
    assert_eq!(status, 204);
    let query = "/api/v3/jobs/query";
    post(&m, &mut c, query, query, json!({})).await;

    // A rendered frame (and so a preview video) and a worker blocklisted by one failure.
    // Both sign on before either job's tasks are looked at: a farm where no registered
    // worker runs a job's task type fails that job at once.
    let mut failing = SimWorker::connect(&m, "failing").await;
    let mut renderer = SimWorker::connect_for(&m, "renderer", &["blender", "ffmpeg"]).await;
    let task = renderer.next_assignment().await;
    let frames = tempfile::tempdir().expect("temp dir");
    let image = common::jpeg(frames.path(), "red", "40x30");
    let preview = v1::LastRendered {
        task_id: task.task_id.clone(),
        lease_epoch: task.lease_epoch,
        mime_type: "image/jpeg".into(),
        image,
        frame: Some(1),
    };
    renderer
        .client
        .upload_last_rendered(common::authed(preview, &renderer.id, &renderer.token))
        .await
        .expect("frame accepted");
    renderer.complete(&task).await;
    let task = failing.next_assignment().await;
    failing.fail(&task, v1::FaultClass::NonzeroExit).await;
    until_ok(&m, &format!("/api/v3/jobs/{render}/preview-video")).await;
    let schedule = json!({"is_active": false, "days_of_week": "mo tu",
                          "start_time": "22:00", "end_time": "06:00"});
    let url = format!("/api/v3/worker-mgt/workers/{}/sleep-schedule", renderer.id);
    let (status, answer) = m.post(&url, &schedule).await;
    assert_eq!(status, 204, "{answer}");

    let mut tasks = Vec::new();
    for job in [&render, &echo, &waiting] {
        let (_, answer) = m.get(&format!("/api/v3/jobs/{job}/tasks")).await;
        for task in answer["tasks"].as_array().expect("tasks") {
            tasks.push(id_of(task));
        }
    }
    let workers = vec![renderer.id.clone(), failing.id.clone()];
    let job_ids = vec![render.clone(), echo.clone(), waiting.clone()];
    let ids = job_ids.join(",");
    let empty_file = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855/0";
    let fill = |path: &str| -> Vec<String> {
        let many = |ids: &[String], name: &str| -> Vec<String> {
            ids.iter().map(|id| path.replace(name, id)).collect()
        };
        if path.starts_with("/api/v3/jobs/{id}") {
            many(&job_ids, "{id}")
        } else if path.starts_with("/api/v3/tasks/{id}") {
            many(&tasks, "{id}")
        } else if path.starts_with("/api/v3/worker-mgt/workers/{id}") {
            many(&workers, "{id}")
        } else if path.starts_with("/api/v3/worker-mgt/tag/{id}") {
            many(&[id_of(&tag)], "{id}")
        } else if path.contains("{rule_id}") {
            many(std::slice::from_ref(&rule), "{rule_id}")
        } else if path.contains("{audience}") {
            [("workers", "linux"), ("users", "windows")]
                .iter()
                .map(|(a, p)| path.replace("{audience}", a).replace("{platform}", p))
                .collect()
        } else if path.contains("{name}") {
            many(
                &["simple-blender-render".into(), "echo-sleep-test".into()],
                "{name}",
            )
        } else if path.contains("{checksum}") {
            vec![path.replace("{checksum}/{filesize}", empty_file)]
        } else {
            vec![path.to_owned()]
        }
    };
    let with_queries = |url: String| -> Vec<String> {
        let query = if url.ends_with("/tasks/page") {
            "?limit=2&status=queued,completed"
        } else if url.ends_with("/last-rendered-images") || url.ends_with("/task-counts") {
            return vec![format!("{url}?ids={ids}"), format!("{url}?limit=5")];
        } else if url.ends_with("/api/v3/jobs") || url.ends_with("/api/v3/audit") {
            "?limit=5"
        } else {
            return vec![url];
        };
        vec![url.clone(), format!("{url}{query}")]
    };
    let mut expected = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        let get = &item["get"];
        if get["responses"]["200"]["content"]["application/json"].is_null()
            || NOT_CHECKED.iter().any(|(skipped, _)| skipped == path)
        {
            continue;
        }
        expected.insert(format!("get {path}"));
        for url in fill(path).into_iter().flat_map(with_queries) {
            let (status, answer) = m.get(&url).await;
            c.check("get", path, &url, status, &answer);
        }
    }
    assert!(
        c.problems.is_empty(),
        "answers that differ from the document:\n{}",
        c.problems.join("\n")
    );
    let unchecked: Vec<_> = expected.difference(&c.checked).collect();
    assert!(
        unchecked.is_empty(),
        "never answered 200, so never checked (add what they need to the farm): {unchecked:?}"
    );
    assert!(c.checked.len() > 40, "{:?}", c.checked);
    m.manager.shutdown().await.expect("shuts down");
}
