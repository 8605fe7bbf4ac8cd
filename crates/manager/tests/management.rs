//! The management reads the dashboard and CLI use: jobs filtered, searched and paged in
//! the database; workers with their tags and tasks.
mod common;

use castanet_protocol::v1;
use common::{authed, echo_sleep_job, start};
use serde_json::json;

#[tokio::test]
async fn jobs_are_filtered_searched_ordered_and_paged() {
    let m = start().await;
    let mut ids = Vec::new();
    for (i, name) in [
        "alpha shot",
        "beta shot",
        "gamma comp",
        "delta comp",
        "epsilon shot",
    ]
    .iter()
    .enumerate()
    {
        let mut job = echo_sleep_job(1, 0);
        job["name"] = json!(name);
        job["priority"] = json!(10 * i);
        job["metadata"] = json!({ "project": if i % 2 == 0 { "sprite" } else { "wing" } });
        if i == 4 {
            job["initial_status"] = json!("paused");
        }
        let (status, job) = m.post("/api/v3/jobs", &job).await;
        assert_eq!(status, 200);
        ids.push(job["id"].as_str().unwrap().to_string());
    }
    let names = |v: &serde_json::Value| -> Vec<String> {
        v["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["name"].as_str().unwrap().to_string())
            .collect()
    };

    let (_, page) = m.get("/api/v3/jobs?limit=2").await;
    assert_eq!(names(&page), ["epsilon shot", "delta comp"], "newest first");
    assert_eq!(page["total"], 5);
    let (_, page) = m.get("/api/v3/jobs?limit=2&offset=4").await;
    assert_eq!(names(&page), ["alpha shot"]);
    let (_, found) = m.get("/api/v3/jobs?q=SHOT&order=name").await;
    assert_eq!(names(&found), ["alpha shot", "beta shot", "epsilon shot"]);
    let (_, paused) = m.get("/api/v3/jobs?status=paused").await;
    assert_eq!(names(&paused), ["epsilon shot"]);
    let (_, by_priority) = m.get("/api/v3/jobs?order=priority&limit=1").await;
    assert_eq!(names(&by_priority), ["epsilon shot"]);

    let (status, wrong) = m.get("/api/v3/jobs?status=running").await;
    assert_eq!(status, 400);
    assert!(wrong["message"].as_str().unwrap().contains("running"));
    let (status, _) = m.get("/api/v3/jobs?limit=0").await;
    assert_eq!(status, 400);
    let (status, _) = m.get("/api/v3/jobs?order=sideways").await;
    assert_eq!(status, 400);

    let (status, queried) = m
        .post(
            "/api/v3/jobs/query",
            &json!({ "status_in": ["queued"], "metadata": { "project": "sprite" }, "order_by": ["name"] }),
        )
        .await;
    assert_eq!(status, 200, "{queried}");
    assert_eq!(names(&queried), ["alpha shot", "gamma comp"]);
    m.manager.shutdown().await.unwrap();
}

#[tokio::test]
async fn workers_are_listed_with_their_tags_and_current_task() {
    let m = start().await;
    let (id, token) = m.register("node-7").await;
    let mut client = m.grpc().await;
    let sign_on = v1::SignOnRequest {
        name: "node-7".into(),
        platform: "linux".into(),
        supported_task_types: vec!["misc".into()],
        slots: 2,
        capabilities: Some(v1::Capabilities {
            cpu_cores: 8,
            ram_bytes: 16 << 30,
            ..Default::default()
        }),
        software_version: "1.2.3".into(),
        can_restart: false,
        self_check_problems: Vec::new(),
        storage_mirror: String::new(),
    };
    client.sign_on(authed(sign_on, &id, &token)).await.unwrap();
    let mut stream = client
        .connect_worker(authed(v1::ConnectRequest::default(), &id, &token))
        .await
        .unwrap()
        .into_inner();
    let (_, job) = m.post("/api/v3/jobs", &echo_sleep_job(1, 0)).await;
    let assigned = common::next_message(&mut stream).await.unwrap().unwrap();
    let Some(v1::instruction::Kind::AssignTask(task)) = assigned.kind else {
        panic!("expected a task")
    };

    let (status, list) = m.get("/api/v3/worker-mgt/workers").await;
    assert_eq!(status, 200);
    let summary = &list["workers"][0];
    assert_eq!(summary["name"], "node-7");
    assert_eq!(summary["status"], "awake");
    assert_eq!(summary["version"], "1.2.3");
    assert_eq!(summary["slots"], 2);
    assert!(summary["last_seen"].is_string());

    let (_, tag) = m
        .post("/api/v3/worker-mgt/tags", &json!({ "name": "fast" }))
        .await;
    let tag_id = tag["id"].as_str().unwrap();
    let (status, _) = m
        .post(
            &format!("/api/v3/worker-mgt/workers/{id}/settags"),
            &json!({ "tag_ids": [tag_id] }),
        )
        .await;
    assert_eq!(status, 204);
    let unknown = "6f0e3c1e-8f7a-4a53-9d55-0c2d7b8c9a10";
    let (status, refused) = m
        .post(
            &format!("/api/v3/worker-mgt/workers/{id}/settags"),
            &json!({ "tag_ids": [unknown] }),
        )
        .await;
    assert_eq!(status, 400);
    assert!(refused["message"].as_str().unwrap().contains(unknown));

    let (status, worker) = m.get(&format!("/api/v3/worker-mgt/workers/{id}")).await;
    assert_eq!(status, 200, "{worker}");
    assert_eq!(worker["platform"], "linux");
    assert_eq!(worker["supported_task_types"], json!(["misc"]));
    assert_eq!(worker["capabilities"]["cpu_cores"], 8);
    assert_eq!(
        worker["tags"],
        json!([{ "id": tag_id, "name": "fast" }]),
        "the refused change left the tags alone"
    );
    assert_eq!(worker["task"]["id"], task.task_id.as_str());
    assert_eq!(worker["task"]["job_id"], job["id"]);

    let (status, _) = m
        .get(&format!("/api/v3/worker-mgt/workers/{unknown}"))
        .await;
    assert_eq!(status, 404);
    drop(stream);
    drop(client);
    m.manager.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_deleted_worker_is_cut_off_at_once_and_its_task_requeued() {
    let m = start().await;
    let sign_on = common::misc_sign_on("doomed", 1);
    let common::TestWorker {
        id,
        token,
        mut client,
        mut stream,
    } = m.connect(sign_on.clone()).await;
    m.post("/api/v3/jobs", &echo_sleep_job(1, 0)).await;
    let Some(v1::instruction::Kind::AssignTask(task)) = common::next_message(&mut stream)
        .await
        .unwrap()
        .unwrap()
        .kind
    else {
        panic!("expected a task")
    };

    let deleted = m
        .http
        .delete(format!("{}/api/v3/worker-mgt/workers/{id}", m.url))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status().as_u16(), 204);
    let ended = tokio::time::timeout(
        std::time::Duration::from_secs(1),
        common::next_message(&mut stream),
    )
    .await;
    assert!(
        matches!(ended, Ok(Ok(None)) | Ok(Err(_))),
        "the stream closes within 1 s: {ended:?}"
    );
    let refused = client
        .sign_on(authed(sign_on, &id, &token))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);

    let (_, back) = m.get(&format!("/api/v3/tasks/{}", task.task_id)).await;
    assert_eq!(back["status"], "queued");
    let (status, _) = m.get(&format!("/api/v3/worker-mgt/workers/{id}")).await;
    assert_eq!(status, 404);
    let (_, list) = m.get("/api/v3/worker-mgt/workers").await;
    assert_eq!(list["workers"], json!([]));
    drop(client);
    m.manager.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_tagged_job_waits_for_tagged_workers_until_its_tag_is_cleared() {
    let m = start().await;
    let (_, tag) = m
        .post("/api/v3/worker-mgt/tags", &json!({ "name": "gpu" }))
        .await;
    let tag_id = tag["id"].as_str().unwrap().to_string();

    let mut unknown = echo_sleep_job(1, 0);
    unknown["worker_tag"] = json!("6f0e3c1e-8f7a-4a53-9d55-0c2d7b8c9a10");
    let (status, refused) = m.post("/api/v3/jobs", &unknown).await;
    assert_eq!(status, 400, "{refused}");

    let mut tagged = echo_sleep_job(1, 0);
    tagged["worker_tag"] = json!(tag_id);
    let (status, job) = m.post("/api/v3/jobs", &tagged).await;
    assert_eq!(status, 200, "{job}");
    assert_eq!(job["worker_tag"], tag_id.as_str());
    let job_id = job["id"].as_str().unwrap().to_string();

    // An untagged worker is not given the job's tasks.
    let common::TestWorker {
        client, mut stream, ..
    } = m.connect(common::misc_sign_on("plain", 1)).await;
    let (_, tasks) = m.get(&format!("/api/v3/jobs/{job_id}/tasks")).await;
    let echo = tasks["tasks"][0]["id"].as_str().unwrap().to_string();
    let (_, why) = m.get(&format!("/api/v3/tasks/{echo}/why")).await;
    assert!(why.to_string().contains("worker-tag"), "{why}");
    assert!(
        why["blockers"][0]["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("worker tag \"gpu\" has no workers"),
        "the empty tag is named: {why}"
    );

    let url = |path: &str| format!("/api/v3/jobs/{job_id}/settag{path}");
    let (status, _) = m.post(&url(""), &json!({ "name": "no-such-tag" })).await;
    assert_eq!(status, 406);
    let (status, _) = m.post(&url(""), &json!({ "name": "gpu" })).await;
    assert_eq!(status, 204);
    // Clearing the tag opens the job to every worker: the waiting worker gets the task.
    let (status, _) = m.post(&url(""), &json!({})).await;
    assert_eq!(status, 204);
    let message = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        common::next_message(&mut stream),
    )
    .await
    .expect("the task arrives")
    .unwrap()
    .unwrap();
    let Some(v1::instruction::Kind::AssignTask(task)) = message.kind else {
        panic!("expected a task")
    };
    assert_eq!(task.task_id, echo);
    let (_, job) = m.get(&format!("/api/v3/jobs/{job_id}")).await;
    assert!(job.get("worker_tag").is_none(), "{job}");
    drop(stream);
    drop(client);
    m.manager.shutdown().await.unwrap();
}
