//! Requests a hostile or careless client sends (issue 23, item 7): every refusal is a JSON
//! `{code, message}` naming what was wrong, and nothing is stored.
mod common;

use castanet_protocol::v1;
use serde_json::{Value, json};

use common::TestManager;

/// The error answer of `status`, with its message.
fn refused(status: u16, body: &Value, want: u16) -> String {
    assert_eq!(status, want, "{body}");
    assert_eq!(body["code"], want, "JSON error shape: {body}");
    body["message"].as_str().unwrap_or_default().to_owned()
}

async fn count_jobs(m: &TestManager) -> i64 {
    let (_, jobs) = m.get("/api/v3/jobs").await;
    jobs["total"].as_i64().unwrap_or(-1)
}

#[tokio::test]
async fn axum_rejections_answer_in_the_api_error_shape() {
    let m = common::start().await;
    let huge = format!("{{\"name\": \"{}\"}}", "x".repeat(3 * 1024 * 1024));
    let (status, body) = m.post_raw("/api/v3/jobs", &huge).await;
    let message = refused(status, &body, 413);
    assert!(message.contains("length limit"), "{message}");

    let (status, body) = m.get("/api/v3/jobs?limit=many").await;
    let message = refused(status, &body, 400);
    assert!(message.contains("limit"), "{message}");
    assert_eq!(count_jobs(&m).await, 0);
}

#[tokio::test]
async fn bodies_must_be_json_objects() {
    let m = common::start().await;
    let (status, job) = m.post("/api/v3/jobs", &common::echo_sleep_job(1, 0)).await;
    assert_eq!(status, 200, "{job}");
    let job_id = job["id"].as_str().expect("job id").to_owned();
    let cases = [
        (format!("/api/v3/jobs/{job_id}/settag"), "tag change"),
        ("/api/v3/jobs/query".to_owned(), "jobs query"),
        (format!("/api/v3/jobs/{job_id}/setstatus"), "status change"),
        ("/api/v3/worker-mgt/tags".to_owned(), "worker tag"),
    ];
    for (path, what) in cases {
        let (status, body) = m.post_raw(&path, "[null,null]").await;
        let message = refused(status, &body, 400);
        assert_eq!(
            message,
            format!("invalid {what}: expected a JSON object, got an array"),
            "{path}"
        );
    }
    let (_, tags) = m.get("/api/v3/worker-mgt/tags").await;
    assert_eq!(tags["tags"], json!([]), "{tags}");
    let (_, job) = m.get(&format!("/api/v3/jobs/{job_id}")).await;
    assert_eq!(job["status"], "queued", "{job}");
}

#[tokio::test]
async fn event_filters_must_be_ids() {
    let m = common::start().await;
    for query in ["job=../../x", "task=x%00y"] {
        let (status, body) = m.get(&format!("/api/v3/events?{query}")).await;
        let message = refused(status, &body, 400);
        assert!(message.contains("is not a UUID"), "{query}: {message}");
    }
}

#[tokio::test]
async fn names_are_bounded_and_free_of_control_characters() {
    let m = common::start().await;
    let long = "n".repeat(257);
    for name in ["tag\u{0}name", long.as_str(), "two\nlines"] {
        let (status, body) = m
            .post("/api/v3/worker-mgt/tags", &json!({ "name": name }))
            .await;
        let message = refused(status, &body, 400);
        assert!(message.starts_with("worker tag name "), "{message}");

        let mut job = common::echo_sleep_job(1, 0);
        job["name"] = json!(name);
        let (status, body) = m.post("/api/v3/jobs", &job).await;
        let message = refused(status, &body, 400);
        assert!(message.starts_with("job name "), "{message}");
    }
    let (_, tags) = m.get("/api/v3/worker-mgt/tags").await;
    assert_eq!(tags["tags"], json!([]), "{tags}");
    assert_eq!(count_jobs(&m).await, 0);

    let refused = m
        .grpc()
        .await
        .register(v1::RegisterRequest {
            registration_secret: m.secret.clone(),
            name: "node\u{0}7".into(),
            platform: "linux".into(),
        })
        .await
        .expect_err("a NUL in a worker name is refused");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
    assert!(refused.message().contains("U+0000"), "{refused:?}");
}

#[tokio::test]
async fn script_minimum_and_maximum_bound_submitted_settings() {
    let m = common::start().await;
    let job = common::echo_sleep_job(1, -1);
    let (status, body) = m.post("/api/v3/jobs", &job).await;
    let message = refused(status, &body, 400);
    assert!(
        message.contains("\"sleep_duration_seconds\" must be at least 0, got -1"),
        "{message}"
    );
    assert_eq!(count_jobs(&m).await, 0);
}

#[tokio::test]
async fn listing_jobs_is_paged_by_default() {
    let m = common::start().await;
    for _ in 0..101 {
        let (status, job) = m.post("/api/v3/jobs", &common::echo_sleep_job(1, 0)).await;
        assert_eq!(status, 200, "{job}");
    }
    let (status, page) = m.get("/api/v3/jobs").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["jobs"].as_array().map(Vec::len), Some(100));
    assert_eq!(page["total"], 101);
    let (_, rest) = m.get("/api/v3/jobs?offset=100").await;
    assert_eq!(rest["jobs"].as_array().map(Vec::len), Some(1));
}
