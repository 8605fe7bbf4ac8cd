//! Regression tests for what the API fuzzing (issue 19, part 4; crates/castanet/tests/api_fuzz.rs
//! and the hand-made cases in hostile_inputs.rs) found: answers the OpenAPI document did not
//! describe, requests the document forbids that were answered 200, and 500s.
mod common;

use castanet_manager::http::AccessMode;
use serde_json::{Value, json};

use common::{TestManager, start_configured};

async fn start_in_mode(mode: AccessMode) -> TestManager {
    start_configured(tempfile::tempdir().expect("temp dir"), |config| {
        config.access.mode = mode;
    })
    .await
}

/// Sends `method path` with an optional JSON body; returns (status, body).
async fn call(m: &TestManager, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    let method =
        reqwest::Method::from_bytes(method.to_ascii_uppercase().as_bytes()).expect("method");
    let mut request = m.http.request(method, format!("{}{path}", m.url));
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// The statuses the served document lists for `method path`.
fn documented(document: &Value, method: &str, path: &str) -> Vec<String> {
    document["paths"][path][method]["responses"]
        .as_object()
        .map(|responses| responses.keys().cloned().collect())
        .unwrap_or_default()
}

fn assert_error_shape(status: u16, body: &Value, what: &str) {
    assert_eq!(body["code"], status, "{what}: {body}");
    assert!(body["message"].is_string(), "{what}: {body}");
}

/// Found by schemathesis (ST103, undocumented status): GET jobs/{id}/tasks, .../blocklist,
/// .../last-rendered, tasks/{id}/log and .../logtail answered a malformed id with a 400
/// their document did not list. Now every operation with an `{id}` lists it, and the id
/// is typed as a UUID.
#[tokio::test]
async fn every_operation_documents_the_400_for_an_id_that_is_not_a_uuid() {
    let m = common::start().await;
    let (status, document) = m.get("/api/v3/openapi.json").await;
    assert_eq!(status, 200);
    let paths = document["paths"].as_object().expect("paths");
    let mut checked = 0;
    for (path, operations) in paths {
        if !path.contains("{id}") {
            continue;
        }
        for (method, operation) in operations.as_object().expect("operations") {
            let id = operation["parameters"]
                .as_array()
                .and_then(|p| p.iter().find(|p| p["name"] == "id"))
                .expect("an id parameter");
            assert_eq!(id["schema"]["format"], "uuid", "{method} {path}");
            let url = path.replace("{id}", "not-a-uuid");
            let body = operation.get("requestBody").map(|_| json!({}));
            let (status, answer) = call(&m, method, &url, body.as_ref()).await;
            assert_eq!(status, 400, "{method} {url}: {answer}");
            assert_error_shape(status, &answer, &url);
            assert!(
                documented(&document, method, path).contains(&"400".to_string()),
                "{method} {path} does not document its 400"
            );
            checked += 1;
        }
    }
    assert!(checked >= 25, "only {checked} operations take an id");

    let (status, answer) = m.get("/api/v3/audit?limit=many").await;
    assert_eq!(status, 400, "{answer}");
    assert!(documented(&document, "get", "/api/v3/audit").contains(&"400".to_string()));
}

/// Found by schemathesis (ST201, schema-violating request accepted): the document lists
/// `status_in` as job statuses, but unknown ones (and "") were dropped and the query
/// answered 200 with nothing left out.
#[tokio::test]
async fn a_jobs_query_with_a_status_that_is_not_a_job_status_is_refused() {
    let m = common::start().await;
    for statuses in [json!([""]), json!(["queud"]), json!([" queued"])] {
        let query = json!({ "status_in": statuses });
        let (status, body) = m.post("/api/v3/jobs/query", &query).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_error_shape(status, &body, "jobs query");
        assert!(
            body["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("status_in: ")),
            "{body}"
        );
    }
    let query = json!({ "status_in": ["queued", "active"] });
    let (status, body) = m.post("/api/v3/jobs/query", &query).await;
    assert_eq!(status, 200, "{body}");
    // The query string's comma list still forgives blanks between commas.
    let (status, body) = m.get("/api/v3/jobs?status=queued,,active").await;
    assert_eq!(status, 200, "{body}");
}

/// Found by hand (path parameters of /job-files): a NUL in the path, a name longer than the
/// file system allows and a folder each made the read fail with something other than
/// "not found", answered 500.
#[tokio::test]
async fn a_job_file_path_with_a_nul_an_overlong_name_or_a_folder_is_a_4xx() {
    let m = common::start().await;
    let folder = m.manager.state.logs.jobs_root().join("job-abcd");
    std::fs::create_dir_all(folder.join("inner")).expect("folder");
    let long = "x".repeat(300);
    let cases = [
        ("/job-files/a%00b.txt".to_string(), 400),
        (format!("/job-files/{long}"), 404),
        (format!("/job-files/job-abcd/{long}/task.txt"), 404),
        ("/job-files/job-abcd".to_string(), 404),
        ("/job-files/job-abcd/inner/".to_string(), 404),
        ("/job-files/job-abcd/inner/x/y".to_string(), 404),
        // Found by hand too: a Windows client's `..\\` read as a (missing) file name, a 404.
        ("/job-files/..%5c..%5csecret.txt".to_string(), 400),
    ];
    let (_, document) = m.get("/api/v3/openapi.json").await;
    let listed = documented(&document, "get", "/job-files/{path}");
    for (path, want) in cases {
        let (status, body) = m.get(&path).await;
        assert_eq!(status, want, "{path}: {body}");
        assert_error_shape(status, &body, &path);
        assert!(listed.contains(&want.to_string()), "{want} for {path}");
    }
}

/// The document is the one of the manager's access mode (schemathesis' missing-header and
/// ignored-auth checks read it): in `open` mode no operation needs a token, in `token`
/// mode every API operation does and lists 401 and 403; every JSON body can be too large
/// (413).
#[tokio::test]
async fn the_document_says_where_the_access_mode_needs_a_token() {
    let open = start_in_mode(AccessMode::Open).await;
    let (_, document) = open.get("/api/v3/openapi.json").await;
    let text = document["paths"].to_string();
    assert!(!text.contains("\"security\""), "open mode needs no token");
    assert!(documented(&document, "get", "/api/v3/jobs").contains(&"401".to_string()));

    let token = start_in_mode(AccessMode::Token).await;
    let (status, body) = token.get("/api/v3/openapi.json").await;
    assert_eq!(status, 401, "{body}");
    let holder = start_in_mode(AccessMode::SubmitOpen).await;
    let (_, submit_open) = holder.get("/api/v3/openapi.json").await;
    let needs_token = |document: &Value, method: &str, path: &str| {
        document["paths"][path][method]["security"][0]
            .get("apiToken")
            .is_some()
    };
    assert!(!needs_token(&submit_open, "post", "/api/v3/jobs"));
    assert!(!needs_token(&submit_open, "get", "/api/v3/jobs"));
    assert!(needs_token(&submit_open, "delete", "/api/v3/jobs/{id}"));
    assert!(needs_token(&submit_open, "get", "/api/v3/audit"));
    assert!(!needs_token(&submit_open, "get", "/healthz"));
    for (method, path) in [("delete", "/api/v3/jobs/{id}"), ("get", "/api/v3/audit")] {
        let listed = documented(&submit_open, method, path);
        assert!(listed.contains(&"401".to_string()), "{method} {path}");
        assert!(listed.contains(&"403".to_string()), "{method} {path}");
    }
    assert!(documented(&submit_open, "get", "/healthz") == ["200"]);
    for (path, operations) in submit_open["paths"].as_object().expect("paths") {
        for (method, operation) in operations.as_object().expect("operations") {
            // Uploads are streamed, not read whole: only JSON bodies meet the limit.
            if operation["requestBody"]["content"]
                .get("application/json")
                .is_some()
            {
                let listed = documented(&submit_open, method, path);
                assert!(listed.contains(&"413".to_string()), "{method} {path}");
            }
        }
    }
    assert_eq!(
        submit_open["components"]["securitySchemes"]["apiToken"]["scheme"],
        "bearer"
    );
}

/// Found by hand: serde_json checks UTF-8 only in the strings it keeps, so invalid bytes in
/// a field a handler skips passed, and the request was answered 200.
#[tokio::test]
async fn a_body_with_invalid_utf8_in_a_field_nobody_reads_is_a_400() {
    let m = common::start().await;
    let body = b"{\"unknown\": \"\xc3\x28\"}".to_vec();
    let response = m
        .http
        .post(format!("{}/api/v3/jobs/query", m.url))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status().as_u16(), 400);
    let answer: Value = response.json().await.expect("JSON");
    assert_eq!(
        answer["message"], "invalid jobs query: not UTF-8 (at byte 13)",
        "{answer}"
    );
}

/// Found by hand: SQLite's LIKE stops at a NUL, so `?q=%00` matched every job.
#[tokio::test]
async fn a_job_search_for_a_nul_is_a_400_not_every_job() {
    let m = common::start().await;
    let (status, job) = m.post("/api/v3/jobs", &common::echo_sleep_job(1, 0)).await;
    assert_eq!(status, 200, "{job}");
    let (status, body) = m.get("/api/v3/jobs?q=%00").await;
    assert_eq!(status, 400, "{body}");
    assert_error_shape(status, &body, "q");
    let (status, body) = m.get("/api/v3/jobs?q=zzz").await;
    assert_eq!((status, &body["total"]), (200, &json!(0)), "{body}");
}

/// Found by hand: the shared-storage location answered 200 for any platform, echoing
/// `../../` back as a platform name.
#[tokio::test]
async fn a_platform_that_is_not_a_plain_word_is_a_400() {
    let m = common::start().await;
    for kind in ["shared-storage", "variables"] {
        for platform in ["..%2f..%2f", "%2e%2e%2f", "..%5cwin", "a%00b", "linux%20"] {
            let path = format!("/api/v3/configuration/{kind}/users/{platform}");
            let (status, body) = m.get(&path).await;
            assert_eq!(status, 400, "{path}: {body}");
            assert_error_shape(status, &body, &path);
        }
        let (status, body) = m
            .get(&format!("/api/v3/configuration/{kind}/workers/windows"))
            .await;
        assert_eq!(status, 200, "{body}");
    }
}

/// Found by hand: DELETE /jobs/mass-delete answered a body over the limit with 400, where
/// every other endpoint (and the document) says 413.
#[tokio::test]
async fn an_oversized_mass_deletion_body_is_a_413() {
    let m = common::start().await;
    let huge = format!(
        "{{\"last_updated_max\": \"{}\"}}",
        "9".repeat(3 * 1024 * 1024)
    );
    let response = m
        .http
        .delete(format!("{}/api/v3/jobs/mass-delete", m.url))
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .expect("DELETE");
    assert_eq!(response.status().as_u16(), 413);
    let answer: Value = response.json().await.expect("JSON");
    assert_error_shape(413, &answer, "mass delete");
}
