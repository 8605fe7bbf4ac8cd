//! The dashboard as the manager serves it, and the read-only extensions it pages with.
mod common;

use serde_json::json;

#[tokio::test]
async fn the_dashboard_is_served_at_the_root_and_for_its_own_routes() {
    let m = common::start().await;
    let root = m.http.get(format!("{}/", m.url)).send().await.unwrap();
    assert_eq!(root.status(), 200);
    assert_eq!(root.headers()["content-type"], "text/html");
    let index = root.text().await.unwrap();
    assert!(index.contains("<html"), "{index}");
    // The dashboard's own URLs get the same page, so bookmarks and reloads work.
    let deep = m.get("/jobs/3a1c/tasks/77").await;
    assert_eq!(deep, (200, serde_json::Value::String(index.clone())));
    // API paths keep their JSON 404, and only reads fall back to the page.
    let (status, body) = m.get("/api/v3/no-such-thing").await;
    assert_eq!(status, 404);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("no such endpoint")
    );
    let (status, _) = m.post_raw("/jobs", "{}").await;
    assert_eq!(status, 404);
    // Names with an extension are files: a missing one is a 404, not the page.
    let (status, _) = m.get("/castanet-manager.sqlite").await;
    assert_eq!(status, 404);
    // A built dashboard (not the placeholder) links its scripts; they are served, cached for good.
    if let Some(start) = index.find("/assets/") {
        let name: String = index[start..].chars().take_while(|c| *c != '"').collect();
        let asset = m.http.get(format!("{}{name}", m.url)).send().await.unwrap();
        assert_eq!(asset.status(), 200, "{name}");
        assert!(
            asset.headers()["cache-control"]
                .to_str()
                .unwrap()
                .contains("immutable")
        );
    }
}

#[tokio::test]
async fn a_job_s_tasks_are_read_a_page_at_a_time() {
    let m = common::start().await;
    let (status, job) = m
        .post("/api/v3/jobs", &common::echo_sleep_job(250, 0))
        .await;
    assert_eq!(status, 200, "{job}");
    let id = job["id"].as_str().unwrap();

    let (status, page) = m
        .get(&format!(
            "/api/v3/jobs/{id}/tasks/page?offset=200&limit=100"
        ))
        .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["total"], 251);
    assert_eq!(page["offset"], 200);
    let tasks = page["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 51);
    assert_eq!(tasks[0]["index_in_job"], 201);
    assert_eq!(page["status_counts"], json!({ "queued": 251 }));

    let (_, filtered) = m
        .get(&format!(
            "/api/v3/jobs/{id}/tasks/page?status=completed,failed"
        ))
        .await;
    assert_eq!(filtered["total"], 0);
    assert_eq!(filtered["tasks"], json!([]));
    let (_, last) = m
        .get(&format!(
            "/api/v3/jobs/{id}/tasks/page?status=queued&offset=250&limit=10"
        ))
        .await;
    assert_eq!(last["total"], 251, "{last}");
    assert_eq!(last["tasks"].as_array().map(Vec::len), Some(1), "{last}");
    assert_eq!(last["tasks"][0]["index_in_job"], 251, "{last}");
    let (_, past_the_end) = m
        .get(&format!("/api/v3/jobs/{id}/tasks/page?offset=300"))
        .await;
    assert_eq!(past_the_end["total"], 251, "{past_the_end}");
    assert_eq!(past_the_end["tasks"], json!([]), "{past_the_end}");

    for bad in ["limit=1001", "limit=0", "offset=-1", "status=done"] {
        let (status, body) = m.get(&format!("/api/v3/jobs/{id}/tasks/page?{bad}")).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    let unknown = uuid::Uuid::new_v4();
    let (status, _) = m.get(&format!("/api/v3/jobs/{unknown}/tasks/page")).await;
    assert_eq!(status, 404);

    let (status, counts) = m
        .get(&format!("/api/v3/jobs/task-counts?ids={id},{unknown}"))
        .await;
    assert_eq!(status, 200, "{counts}");
    assert_eq!(
        counts,
        json!({ id: { "queued": 251 }, unknown.to_string(): {} })
    );
    let (status, _) = m.get("/api/v3/jobs/task-counts?ids=not-a-uuid").await;
    assert_eq!(status, 400);

    let (status, farm) = m.get("/api/v3/farm/summary").await;
    assert_eq!(status, 200);
    assert_eq!(
        farm,
        json!({ "workers": {}, "workers_busy": 0, "tasks": { "queued": 251 } })
    );

    // A paused job's waiting tasks are not queued work.
    let mut paused = common::echo_sleep_job(2, 0);
    paused["initial_status"] = json!("paused");
    let (status, job) = m.post("/api/v3/jobs", &paused).await;
    assert_eq!(status, 200, "{job}");
    let (_, farm) = m.get("/api/v3/farm/summary").await;
    assert_eq!(
        farm["tasks"],
        json!({ "queued": 251, "paused": 3 }),
        "{farm}"
    );
}
