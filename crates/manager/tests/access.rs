//! API access control: the three modes, token roles, revocation, and the audit log of
//! every state-changing request.
mod common;

use castanet_manager::http::AccessMode;
use castanet_manager::store::{ApiRole, hash_api_token, new_api_token};
use common::{TestManager, echo_sleep_job, start_configured};
use serde_json::{Value, json};

async fn start_in_mode(mode: AccessMode) -> TestManager {
    start_configured(tempfile::tempdir().unwrap(), |config| {
        config.access.mode = mode;
    })
    .await
}

/// Creates a token the way `castanet manager token create` does; returns the token.
async fn token(m: &TestManager, name: &str, role: ApiRole) -> String {
    let token = new_api_token();
    m.manager
        .state
        .store
        .insert_api_token(name, role, &hash_api_token(&token))
        .await
        .unwrap();
    token
}

/// Sends `method path` with an optional token and JSON body; returns (status, body).
async fn call(
    m: &TestManager,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = m.http.request(method, format!("{}{path}", m.url));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn audit(m: &TestManager, token: &str) -> Vec<Value> {
    let (status, body) = call(m, "GET", "/api/v3/audit", Some(token), None).await;
    assert_eq!(status, 200, "{body}");
    body["entries"].as_array().unwrap().clone()
}

const UUID: &str = "00000000-0000-4000-8000-000000000000";

#[tokio::test]
async fn in_token_mode_every_endpoint_needs_a_token_and_roles_limit_what_it_may_do() {
    let m = start_in_mode(AccessMode::Token).await;
    let viewer = token(&m, "viewer-1", ApiRole::Viewer).await;
    let submitter = token(&m, "submitter-1", ApiRole::Submitter).await;
    let admin = token(&m, "admin-1", ApiRole::Admin).await;

    // Without a token, every endpoint answers 401 (and says how to authenticate).
    let job = echo_sleep_job(1, 0);
    let endpoints: Vec<(&str, String)> = vec![
        ("GET", "/api/v3/version".into()),
        ("GET", "/api/v3/jobs".into()),
        ("POST", "/api/v3/jobs".into()),
        ("POST", "/api/v3/jobs/check".into()),
        ("POST", "/api/v3/jobs/query".into()),
        ("GET", "/api/v3/jobs/types".into()),
        ("GET", format!("/api/v3/jobs/{UUID}")),
        ("DELETE", format!("/api/v3/jobs/{UUID}")),
        ("POST", format!("/api/v3/jobs/{UUID}/setstatus")),
        ("POST", format!("/api/v3/tasks/{UUID}/setstatus")),
        ("GET", format!("/api/v3/tasks/{UUID}/log")),
        ("GET", "/api/v3/events".into()),
        ("GET", "/api/v3/worker-mgt/workers".into()),
        ("DELETE", format!("/api/v3/worker-mgt/workers/{UUID}")),
        ("GET", "/api/v3/worker-mgt/tags".into()),
        ("POST", "/api/v3/worker-mgt/tags".into()),
        ("GET", "/api/v3/configuration".into()),
        ("POST", "/api/v3/shaman/checkout/requirements".into()),
        ("GET", "/api/v3/audit".into()),
        ("GET", "/metrics".into()),
        ("GET", "/job-files/x/y.png".into()),
    ];
    for (method, path) in &endpoints {
        let (status, body) = call(&m, method, path, None, Some(&job)).await;
        assert_eq!(status, 401, "{method} {path} without a token: {body}");
        assert!(
            body["message"].as_str().unwrap().contains("token"),
            "{body}"
        );
    }
    // Liveness and readiness stay open for probes.
    assert_eq!(call(&m, "GET", "/healthz", None, None).await.0, 200);
    assert_eq!(call(&m, "GET", "/readyz", None, None).await.0, 200);
    // An unknown token is refused whatever it asks for.
    let (status, body) = call(&m, "GET", "/api/v3/jobs", Some("not-a-token"), None).await;
    assert_eq!(status, 401, "{body}");

    // A viewer reads but changes nothing.
    assert_eq!(
        call(&m, "GET", "/api/v3/jobs", Some(&viewer), None).await.0,
        200
    );
    assert_eq!(
        call(&m, "GET", "/metrics", Some(&viewer), None).await.0,
        200
    );
    let (status, body) = call(&m, "POST", "/api/v3/jobs", Some(&viewer), Some(&job)).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("role viewer"),
        "{body}"
    );
    let (worker_id, _) = m.register("victim").await;
    let delete_worker = format!("/api/v3/worker-mgt/workers/{worker_id}");
    assert_eq!(
        call(&m, "DELETE", &delete_worker, Some(&viewer), None)
            .await
            .0,
        403
    );
    assert_eq!(
        call(&m, "GET", "/api/v3/audit", Some(&viewer), None)
            .await
            .0,
        403
    );

    // A submitter submits and acts on jobs, but cannot delete workers.
    let (status, submitted) = call(&m, "POST", "/api/v3/jobs", Some(&submitter), Some(&job)).await;
    assert_eq!(status, 200, "{submitted}");
    let job_id = submitted["id"].as_str().unwrap();
    let (status, body) = call(
        &m,
        "POST",
        &format!("/api/v3/jobs/{job_id}/setpriority"),
        Some(&submitter),
        Some(&json!({ "priority": 70 })),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let (status, body) = call(&m, "DELETE", &delete_worker, Some(&submitter), None).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("role admin"),
        "{body}"
    );

    // An admin may do everything.
    let (status, body) = call(&m, "DELETE", &delete_worker, Some(&admin), None).await;
    assert_eq!(status, 204, "{body}");

    // Each change, allowed or refused, is in the audit log: who, what, when, answer.
    let entries = audit(&m, &admin).await;
    let find = |actor: &str, method: &str, path: &str, status: i64| {
        entries.iter().any(|e| {
            e["actor"] == actor
                && e["method"] == method
                && e["path"] == path
                && e["status"] == status
                && e["remote"] == "127.0.0.1"
                && chrono::DateTime::parse_from_rfc3339(e["at"].as_str().unwrap()).is_ok()
        })
    };
    assert!(find("viewer-1", "POST", "/api/v3/jobs", 403), "{entries:?}");
    assert!(
        find("submitter-1", "POST", "/api/v3/jobs", 200),
        "{entries:?}"
    );
    let set_priority = format!("/api/v3/jobs/{job_id}/setpriority");
    assert!(
        find("submitter-1", "POST", &set_priority, 204),
        "{entries:?}"
    );
    assert!(
        find("submitter-1", "DELETE", &delete_worker, 403),
        "{entries:?}"
    );
    assert!(
        find("admin-1", "DELETE", &delete_worker, 204),
        "{entries:?}"
    );
    assert!(
        find("anonymous", "POST", "/api/v3/jobs", 401),
        "{entries:?}"
    );
    // Reads and dry runs are not audited.
    assert!(entries.iter().all(|e| e["method"] != "GET"), "{entries:?}");
    assert!(
        entries.iter().all(|e| e["path"] != "/api/v3/jobs/check"),
        "{entries:?}"
    );
    // Newest first, and paged with `before`.
    let first_id = entries[0]["id"].as_i64().unwrap();
    assert!(
        entries
            .windows(2)
            .all(|w| w[0]["id"].as_i64() > w[1]["id"].as_i64())
    );
    let (status, page) = call(
        &m,
        "GET",
        &format!("/api/v3/audit?limit=2&before={first_id}"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(status, 200, "{page}");
    let page = page["entries"].as_array().unwrap();
    assert_eq!(page.len(), 2);
    assert_eq!(page[0]["id"], entries[1]["id"]);
    let (status, body) = call(&m, "GET", "/api/v3/audit?limit=0", Some(&admin), None).await;
    assert_eq!(status, 400, "{body}");
    m.manager.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_revoked_token_stops_working_at_once() {
    let m = start_in_mode(AccessMode::Token).await;
    let viewer = token(&m, "short-lived", ApiRole::Viewer).await;
    assert_eq!(
        call(&m, "GET", "/api/v3/jobs", Some(&viewer), None).await.0,
        200
    );
    let store = &m.manager.state.store;
    let revoked = store.revoke_api_token("short-lived").await.unwrap();
    assert!(revoked.revoked_at.is_some());
    let (status, body) = call(&m, "GET", "/api/v3/jobs", Some(&viewer), None).await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("revoked"),
        "{body}"
    );
    // Revoking twice names what was not found; the name can be given out again.
    let again = store.revoke_api_token("short-lived").await.unwrap_err();
    assert!(again.to_string().contains("short-lived"), "{again}");
    let renewed = token(&m, "short-lived", ApiRole::Admin).await;
    let duplicate = store
        .insert_api_token("short-lived", ApiRole::Viewer, &hash_api_token("other"))
        .await
        .unwrap_err();
    assert!(
        duplicate.to_string().contains("exists already"),
        "{duplicate}"
    );
    assert_eq!(
        call(&m, "GET", "/api/v3/audit", Some(&renewed), None)
            .await
            .0,
        200
    );
    let tokens = store.list_api_tokens().await.unwrap();
    assert_eq!(tokens.len(), 2);
    // The token is also accepted as a query parameter (for browser event streams).
    let (status, _) = call(
        &m,
        "GET",
        &format!("/api/v3/jobs?access_token={renewed}"),
        None,
        None,
    )
    .await;
    assert_eq!(status, 200);
    m.manager.shutdown().await.unwrap();
}

#[tokio::test]
async fn in_submit_open_mode_anyone_views_and_submits_but_administering_needs_a_token() {
    let m = start_in_mode(AccessMode::SubmitOpen).await;
    let admin = token(&m, "admin", ApiRole::Admin).await;
    assert_eq!(call(&m, "GET", "/api/v3/version", None, None).await.0, 200);
    let (status, submitted) = call(
        &m,
        "POST",
        "/api/v3/jobs",
        None,
        Some(&echo_sleep_job(1, 0)),
    )
    .await;
    assert_eq!(status, 200, "{submitted}");
    let job_id = submitted["id"].as_str().unwrap();
    let delete_job = format!("/api/v3/jobs/{job_id}");
    let (status, body) = call(&m, "DELETE", &delete_job, None, None).await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("submit-open"),
        "{body}"
    );
    let tag = json!({ "name": "gpu", "description": "" });
    assert_eq!(
        call(&m, "POST", "/api/v3/worker-mgt/tags", None, Some(&tag))
            .await
            .0,
        401
    );
    assert_eq!(
        call(
            &m,
            "POST",
            "/api/v3/worker-mgt/tags",
            Some(&admin),
            Some(&tag)
        )
        .await
        .0,
        200
    );
    let entries = audit(&m, &admin).await;
    assert!(
        entries.iter().any(|e| e["actor"] == "anonymous"
            && e["path"] == "/api/v3/jobs"
            && e["status"] == 200)
    );
    assert!(entries.iter().any(|e| e["actor"] == "admin"
        && e["path"] == "/api/v3/worker-mgt/tags"
        && e["role"] == "admin"));
    m.manager.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_open_default_lets_anyone_act_and_still_audits_it() {
    let m = common::start().await;
    assert_eq!(m.manager.state.config.access.mode, AccessMode::Open);
    let (status, submitted) = m.post("/api/v3/jobs", &echo_sleep_job(1, 0)).await;
    assert_eq!(status, 200, "{submitted}");
    let job_id = submitted["id"].as_str().unwrap();
    let (status, _) = call(&m, "DELETE", &format!("/api/v3/jobs/{job_id}"), None, None).await;
    assert!(status < 300, "{status}");
    let (status, body) = m.get("/api/v3/audit").await;
    assert_eq!(status, 200, "{body}");
    let entries = body["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{body}");
    assert_eq!(entries[0]["method"], "DELETE");
    assert_eq!(entries[1]["path"], "/api/v3/jobs");
    assert!(entries.iter().all(|e| e["actor"] == "anonymous"));
    m.manager.shutdown().await.unwrap();
}
