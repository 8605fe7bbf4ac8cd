//! The REST API against a real manager on loopback: shapes, submission errors, and
//! that rejected input stores nothing.
mod common;

use common::{echo_sleep_job, start};
use serde_json::{Value, json};

#[tokio::test]
async fn version_and_job_types_have_the_add_on_shapes() {
    let m = start().await;
    let (status, version) = m.get("/api/v3/version").await;
    assert_eq!(status, 200);
    for key in ["version", "shortversion", "name", "git"] {
        assert!(version[key].is_string(), "{key} missing in {version}");
    }
    assert_eq!(version["shortversion"], "3.9-beta1");

    let (status, types) = m.get("/api/v3/jobs/types").await;
    assert_eq!(status, 200);
    let echo = types["job_types"]
        .as_array()
        .and_then(|all| all.iter().find(|t| t["name"] == "echo-sleep-test"))
        .cloned()
        .expect("echo-sleep-test is built in");
    assert_eq!(echo["label"], "Echo Sleep Test");
    assert!(echo["etag"].as_str().is_some_and(|e| !e.is_empty()));
    let keys: Vec<&str> = echo["settings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["key"].as_str())
        .collect();
    assert_eq!(keys, ["message", "sleep_duration_seconds", "sleep_repeats"]);

    let (status, single) = m.get("/api/v3/jobs/type/echo-sleep-test").await;
    assert_eq!((status, &single["etag"]), (200, &echo["etag"]));
    let (status, missing) = m.get("/api/v3/jobs/type/no-such-type").await;
    assert_eq!(status, 404, "{missing}");
    m.manager.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_submitted_job_is_stored_with_all_its_tasks_and_dependencies() {
    let m = start().await;
    let (status, job) = m.post("/api/v3/jobs", &echo_sleep_job(39, 0)).await;
    assert_eq!(status, 200, "{job}");
    for key in [
        "id",
        "name",
        "type",
        "priority",
        "submitter_platform",
        "created",
        "updated",
        "status",
        "activity",
    ] {
        assert!(!job[key].is_null(), "Job.{key} missing: {job}");
    }
    assert_eq!(job["status"], "queued");
    assert_eq!(job["steps_total"], 40);
    assert_eq!(job["metadata"], json!({"project": "tests"}));
    let id = job["id"].as_str().unwrap();

    let (status, tasks) = m.get(&format!("/api/v3/jobs/{id}/tasks")).await;
    assert_eq!(status, 200);
    let tasks = tasks["tasks"].as_array().unwrap().clone();
    assert_eq!(tasks.len(), 40);
    assert_eq!(tasks[0]["name"], "echo");
    assert!(
        tasks
            .iter()
            .enumerate()
            .all(|(i, t)| t["index_in_job"] == json!(i + 1))
    );
    assert!(
        tasks
            .iter()
            .all(|t| t["status"] == "queued" && t["task_type"] == "misc")
    );

    let (status, sleep) = m
        .get(&format!(
            "/api/v3/tasks/{}",
            tasks[1]["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(status, 200);
    assert_eq!(sleep["dependencies"], json!([tasks[0]["id"]]));
    assert_eq!(sleep["commands"][0]["name"], "sleep");
    assert_eq!(
        sleep["commands"][0]["parameters"],
        json!({"duration_in_seconds": 0})
    );
    m.manager.shutdown().await.unwrap();
}

async fn assert_rejected(m: &common::TestManager, body: &str, status: u16, needle: &str) {
    let (got, answer) = m.post_raw("/api/v3/jobs", body).await;
    assert_eq!(got, status, "{body} -> {answer}");
    assert_eq!(answer["code"], json!(status), "{answer}");
    let message = answer["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(needle),
        "message {message:?} should mention {needle:?}"
    );
}

#[tokio::test]
async fn bad_submissions_get_a_clear_error_and_store_nothing() {
    let m = start().await;
    assert_rejected(&m, "{\"name\": \"x\",", 400, "invalid job submission").await;
    assert_rejected(&m, "[]", 400, "invalid job submission").await;

    let mut missing_name = echo_sleep_job(1, 0);
    missing_name.as_object_mut().unwrap().remove("name");
    assert_rejected(&m, &missing_name.to_string(), 400, "name").await;

    let mut unknown_type = echo_sleep_job(1, 0);
    unknown_type["type"] = json!("no-such-type");
    assert_rejected(&m, &unknown_type.to_string(), 400, "no-such-type").await;

    let mut missing_setting = echo_sleep_job(1, 0);
    missing_setting["settings"]
        .as_object_mut()
        .unwrap()
        .remove("message");
    assert_rejected(&m, &missing_setting.to_string(), 400, "message").await;

    let mut wrong_type = echo_sleep_job(1, 0);
    wrong_type["settings"]["sleep_repeats"] = json!("three");
    assert_rejected(&m, &wrong_type.to_string(), 400, "sleep_repeats").await;

    let mut bad_status = echo_sleep_job(1, 0);
    bad_status["initial_status"] = json!("completed");
    assert_rejected(&m, &bad_status.to_string(), 400, "initial_status").await;

    let mut stale = echo_sleep_job(1, 0);
    stale["type_etag"] = json!("0123456789");
    assert_rejected(&m, &stale.to_string(), 412, "echo-sleep-test").await;

    let (status, jobs) = m.get("/api/v3/jobs").await;
    assert_eq!((status, jobs), (200, json!({"jobs": [], "total": 0})));
    assert_eq!(m.manager.state.store.count_jobs().await.unwrap(), 0);
    m.manager.shutdown().await.unwrap();
}

#[tokio::test]
async fn checking_a_job_compiles_it_without_storing_anything() {
    let m = start().await;
    let (status, body) = m.post("/api/v3/jobs/check", &echo_sleep_job(3, 1)).await;
    assert_eq!(status, 204, "{body}");
    let mut bad = echo_sleep_job(3, 1);
    bad["settings"]["sleep_duration_seconds"] = json!(true);
    let (status, body) = m.post("/api/v3/jobs/check", &bad).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(m.manager.state.store.count_jobs().await.unwrap(), 0);
    m.manager.shutdown().await.unwrap();
}

#[tokio::test]
async fn unknown_ids_and_paths_are_named_in_the_error() {
    let m = start().await;
    let (status, body) = m.get("/api/v3/jobs/not-a-uuid").await;
    assert_eq!(status, 400);
    assert!(body["message"].as_str().unwrap().contains("not-a-uuid"));
    let (status, _) = m
        .get("/api/v3/jobs/6f0e3c1e-8f7a-4a53-9d55-0c2d7b8c9a10")
        .await;
    assert_eq!(status, 404);
    let (status, _) = m
        .get("/api/v3/tasks/6f0e3c1e-8f7a-4a53-9d55-0c2d7b8c9a10/logtail")
        .await;
    assert_eq!(status, 404);
    let (status, body): (u16, Value) = m.get("/api/v3/nothing-here").await;
    assert_eq!(status, 404, "{body}");
    let (status, _) = m.get("/job-files/../castanet-manager.sqlite").await;
    assert!(
        status == 400 || status == 404,
        "path escape must not be served, got {status}"
    );
    m.manager.shutdown().await.unwrap();
}

#[tokio::test]
async fn jobs_and_tasks_survive_a_restart_on_the_same_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let m = common::start_in(dir).await;
    let (_, job) = m.post("/api/v3/jobs", &echo_sleep_job(5, 0)).await;
    let id = job["id"].as_str().unwrap().to_string();
    let (_, before) = m.get(&format!("/api/v3/jobs/{id}/tasks")).await;
    let common::TestManager { manager, dir, .. } = m;
    manager.shutdown().await.unwrap();
    assert_eq!(dir.path(), path);

    let m = common::start_in(dir).await;
    let (status, again) = m.get(&format!("/api/v3/jobs/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(again["name"], job["name"]);
    assert_eq!(again["settings"], job["settings"]);
    let (_, after) = m.get(&format!("/api/v3/jobs/{id}/tasks")).await;
    assert_eq!(before, after);
    m.manager.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_task_s_commands_are_offered_expanded_for_a_worker_platform() {
    let m = common::start_configured(tempfile::tempdir().expect("temp dir"), |config| {
        let farm = castanet_manager::variables::VariableConfig {
            is_twoway: true,
            linux: Some("/mnt/farm".into()),
            windows: Some(r"F:\farm".into()),
            ..Default::default()
        };
        config.variables.insert("farm".into(), farm);
    })
    .await;
    let mut job = echo_sleep_job(1, 0);
    job["settings"]["message"] = json!("/mnt/farm/shot-010");
    let (status, job) = m.post("/api/v3/jobs", &job).await;
    assert_eq!(status, 200, "{job}");
    let (_, tasks) = m
        .get(&format!(
            "/api/v3/jobs/{}/tasks",
            job["id"].as_str().unwrap()
        ))
        .await;
    let echo = tasks["tasks"][0]["id"].as_str().unwrap().to_string();
    let message = |task: &Value| task["commands"][0]["parameters"]["message"].clone();

    let (status, stored) = m.get(&format!("/api/v3/tasks/{echo}")).await;
    assert_eq!(status, 200, "{stored}");
    assert_eq!(message(&stored), "{farm}/shot-010", "{stored}");
    assert!(stored.get("expanded_for").is_none());
    for (platform, expected) in [
        ("windows", r"F:\farm\shot-010"),
        ("linux", "/mnt/farm/shot-010"),
    ] {
        let (status, task) = m
            .get(&format!("/api/v3/tasks/{echo}?platform={platform}"))
            .await;
        assert_eq!(status, 200, "{task}");
        assert_eq!(message(&task), expected, "{platform}: {task}");
        assert_eq!(task["expanded_for"], platform);
    }
    let (status, refused) = m.get(&format!("/api/v3/tasks/{echo}?platform=amiga")).await;
    assert_eq!(status, 400, "{refused}");
    assert!(
        refused["message"].to_string().contains("amiga"),
        "{refused}"
    );
}

#[tokio::test]
async fn settings_the_add_on_computes_are_named_with_what_to_pass_when_missing() {
    let m = start().await;
    let mut settings = json!({
        "frames": "1-3", "render_output_root": "/renders", "add_path_components": 0,
        "blendfile": "/projects/scene.blend", "format": "PNG", "scene": "Scene",
    });
    let job = |settings: &Value| {
        json!({
            "name": "render", "type": "simple-blender-render", "priority": 50,
            "submitter_platform": "linux", "settings": settings,
        })
    };
    let (status, answer) = m.post("/api/v3/jobs", &job(&settings)).await;
    assert_eq!(status, 400, "{answer}");
    let message = answer["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("\"image_file_extension\" is required but missing")
            && message.contains("C.scene.render.file_extension")
            && message.contains("--set image_file_extension="),
        "{message}"
    );
    settings["image_file_extension"] = json!(".png");
    let (status, answer) = m.post("/api/v3/jobs", &job(&settings)).await;
    assert_eq!(status, 400, "{answer}");
    let message = answer["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("\"render_output_path\" is missing")
            && message.contains("<render_output_root>/"),
        "the script names what to pass: {message}"
    );
}
