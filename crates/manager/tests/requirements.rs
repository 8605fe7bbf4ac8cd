//! Job requirements (minimum RAM, GPUs, required worker tags) matched against what the
//! workers report, and impossible tasks: a task no registered worker could ever run
//! fails at once, naming the rule — at submission, and again when a worker is deleted.
mod common;

use std::time::Duration;

use castanet_protocol::v1::{self, instruction::Kind};
use common::{TestManager, authed, echo_sleep_job, start};
use serde_json::{Value, json};

const GIB: u64 = 1 << 30;

async fn submit_with(m: &TestManager, requirements: Value) -> String {
    let mut job = echo_sleep_job(1, 0);
    job["requirements"] = requirements;
    let (status, answer) = m.post("/api/v3/jobs", &job).await;
    assert_eq!(status, 200, "{answer}");
    answer["id"].as_str().unwrap().to_string()
}

async fn tasks_of(m: &TestManager, job: &str) -> Vec<Value> {
    let (_, tasks) = m.get(&format!("/api/v3/jobs/{job}/tasks")).await;
    tasks["tasks"].as_array().unwrap().clone()
}

/// Runs every task the worker gets until `job` completed.
async fn run_until_completed(m: &TestManager, w: &mut common::TestWorker, job: &str) {
    let mut sequence = 0;
    loop {
        let (_, state) = m.get(&format!("/api/v3/jobs/{job}")).await;
        if state["status"] == "completed" {
            return;
        }
        let next =
            tokio::time::timeout(Duration::from_secs(10), common::next_message(&mut w.stream))
                .await
                .expect("an assignment within 10 s")
                .expect("stream open")
                .expect("an instruction");
        let Some(Kind::AssignTask(task)) = next.kind else {
            continue;
        };
        sequence += 1;
        let done = v1::TaskUpdate {
            task_id: task.task_id.clone(),
            lease_epoch: task.lease_epoch,
            sequence,
            status: v1::TaskStatus::Completed as i32,
            ..Default::default()
        };
        w.client
            .update_task(authed(done, &w.id, &w.token))
            .await
            .expect("update applied");
    }
}

#[tokio::test]
async fn tasks_go_only_to_workers_that_meet_the_jobs_requirements() {
    let m = start().await;
    let (_, tag) = m
        .post("/api/v3/worker-mgt/tags", &json!({ "name": "render-node" }))
        .await;
    let tag_id = tag["id"].as_str().unwrap().to_string();
    // Both idle and connected before the job arrives: only the fit one may take it.
    let _small = m
        .connect(common::sized_sign_on("small", &["misc"], 8, 0))
        .await;
    let mut big = m
        .connect(common::sized_sign_on("big", &["misc"], 64, 2))
        .await;
    let (status, answer) = m
        .post(
            &format!("/api/v3/worker-mgt/workers/{}/settags", big.id),
            &json!({ "tag_ids": [tag_id] }),
        )
        .await;
    assert!(status < 300, "{answer}");

    let job = submit_with(
        &m,
        json!({ "min_ram_bytes": 32 * GIB, "min_gpus": 1, "required_tags": ["render-node"] }),
    )
    .await;
    // The job shows what it asks, as stored.
    let (_, shown) = m.get(&format!("/api/v3/jobs/{job}")).await;
    assert_eq!(
        shown["requirements"],
        json!({ "min_ram_bytes": 32 * GIB, "min_gpus": 1, "required_tags": ["render-node"] })
    );
    run_until_completed(&m, &mut big, &job).await;
    for task in tasks_of(&m, &job).await {
        assert_eq!(task["worker"]["name"], "big", "{task}");
    }
}

#[tokio::test]
async fn unknown_top_level_submission_fields_are_refused_naming_the_field() {
    let m = start().await;
    // A typo of `requirements` and fields Flamenco does not have: each would be ignored.
    for field in ["requirement", "webhook", "dependencies", "max_workers"] {
        let mut job = echo_sleep_job(1, 0);
        job[field] = json!({ "min_gpus": 1 });
        for path in ["/api/v3/jobs", "/api/v3/jobs/check"] {
            let (status, answer) = m.post(path, &job).await;
            assert_eq!(status, 400, "{path} {field}: {answer}");
            let message = answer["message"].as_str().unwrap_or_default();
            assert!(message.contains(&format!("`{field}`")), "{message}");
        }
    }
    let mut job = echo_sleep_job(1, 0);
    job["storage"] = json!({ "shaman_checkout_id": "x", "checkout": "y" });
    let (status, answer) = m.post("/api/v3/jobs", &job).await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["message"].to_string().contains("checkout"),
        "{answer}"
    );
    let (_, jobs) = m.get("/api/v3/jobs").await;
    assert_eq!(jobs["jobs"].as_array().map_or(0, Vec::len), 0, "{jobs}");
    // A job without requirements shows none.
    let id = submit_with(&m, json!({})).await;
    let (_, shown) = m.get(&format!("/api/v3/jobs/{id}")).await;
    assert!(shown.get("requirements").is_none(), "{shown}");
    // The document lists the requirements a submission may carry.
    let (_, doc) = m.get("/api/v3/openapi.json").await;
    let properties = &doc["components"]["schemas"]["SubmittedJob"]["properties"];
    assert!(properties.get("requirements").is_some(), "{properties}");
    let requirement = &doc["components"]["schemas"]["JobRequirements"]["properties"];
    for key in ["min_ram_bytes", "min_gpus", "required_tags"] {
        assert!(requirement.get(key).is_some(), "{key}: {requirement}");
    }
}

#[tokio::test]
async fn unknown_requirement_fields_are_refused_and_nothing_is_stored() {
    let m = start().await;
    let mut job = echo_sleep_job(1, 0);
    job["requirements"] = json!({ "min_ram": 1 });
    let (status, answer) = m.post("/api/v3/jobs", &job).await;
    assert_eq!(status, 400, "{answer}");
    assert!(answer.to_string().contains("min_ram"), "{answer}");
    let (_, jobs) = m.get("/api/v3/jobs").await;
    assert_eq!(jobs["jobs"].as_array().map_or(0, Vec::len), 0, "{jobs}");
}

async fn wait_failed(m: &TestManager, job: &str) -> Value {
    m.wait_for_job(job, Duration::from_secs(10), |j| j["status"] == "failed")
        .await
}

#[tokio::test]
async fn a_task_no_registered_worker_can_run_fails_at_once_naming_the_rule() {
    let m = start().await;
    let _w = m.connect(common::sized_sign_on("w", &["misc"], 8, 0)).await;
    // (requirements, rule named in the task's activity)
    let cases = [
        (json!({ "min_gpus": 4 }), "requirements"),
        (json!({ "min_ram_bytes": 128 * GIB }), "requirements"),
        (json!({ "required_tags": ["no-such-tag"] }), "requirements"),
    ];
    for (requirements, rule) in cases {
        let job = submit_with(&m, requirements.clone()).await;
        let failed = wait_failed(&m, &job).await;
        assert!(
            failed["activity"].as_str().unwrap().contains(rule),
            "{requirements}: {failed}"
        );
        let tasks = tasks_of(&m, &job).await;
        let failed_task = tasks
            .iter()
            .find(|t| t["status"] == "failed")
            .unwrap_or_else(|| panic!("{requirements}: no failed task in {tasks:?}"));
        let (_, task) = m
            .get(&format!(
                "/api/v3/tasks/{}",
                failed_task["id"].as_str().unwrap()
            ))
            .await;
        assert!(
            task["activity"].as_str().unwrap().contains(rule),
            "{requirements}: {task}"
        );
    }

    // A task type no worker supports.
    let m2 = start().await;
    let _only_ffmpeg = m2
        .connect(common::sized_sign_on("f", &["ffmpeg"], 8, 0))
        .await;
    let job = submit_with(&m2, json!({})).await;
    let failed = wait_failed(&m2, &job).await;
    assert!(
        failed["activity"].as_str().unwrap().contains("task-type"),
        "{failed}"
    );
}

#[tokio::test]
async fn a_farm_without_signed_on_workers_lets_jobs_wait() {
    let m = start().await;
    // Registered but never signed on: it has not said what it can run yet.
    let _ = m.register("new").await;
    let job = submit_with(&m, json!({ "min_gpus": 8 })).await;
    let failed = m
        .manager
        .state
        .dispatcher
        .fail_impossible_tasks(&castanet_manager::store::FeasibilityScope::Farm)
        .await
        .unwrap();
    assert_eq!(failed, 0);
    let (_, state) = m.get(&format!("/api/v3/jobs/{job}")).await;
    assert_eq!(state["status"], "queued", "{state}");
}

/// A submission asks for the check of its own job only, so it does not read every waiting
/// task of the farm; the farm-wide check still finds what the job's check does not look at.
#[tokio::test]
async fn the_impossible_task_check_looks_only_at_the_jobs_it_is_asked_about() {
    use castanet_manager::store::FeasibilityScope;
    let m = start().await;
    // No worker has signed on yet: the job waits.
    let job = submit_with(&m, json!({})).await;
    // Now the only worker cannot run its task type; signing on does not ask for a check.
    let _only_ffmpeg = m
        .connect(common::sized_sign_on("f", &["ffmpeg"], 8, 0))
        .await;
    let store = &m.manager.state.store;
    let of = |ids: &[&str]| FeasibilityScope::Jobs(ids.iter().map(|id| id.to_string()).collect());
    let another = store
        .find_impossible_tasks(&of(&["another-job"]))
        .await
        .expect("check of another job");
    assert!(another.is_empty(), "{another:?}");
    for scope in [of(&[&job, "another-job"]), FeasibilityScope::Farm] {
        let found = store.find_impossible_tasks(&scope).await.expect("check");
        assert!(!found.is_empty(), "{scope:?}");
        for task in &found {
            assert_eq!(
                (task.job_id.as_str(), task.rule),
                (job.as_str(), "task-type")
            );
        }
    }
    let nothing = store
        .find_impossible_tasks(&FeasibilityScope::Nothing)
        .await
        .expect("no check");
    assert!(nothing.is_empty());
}

#[tokio::test]
async fn deleting_the_last_worker_able_to_run_a_waiting_task_fails_it() {
    let m = start().await;
    // `able` signed on but has no open stream, so the tasks wait for it.
    let (able_id, able_token) = m.register("able").await;
    let mut client = m.grpc().await;
    client
        .sign_on(authed(
            common::sized_sign_on("able", &["misc"], 8, 0),
            &able_id,
            &able_token,
        ))
        .await
        .expect("signs on");
    let _other = m
        .connect(common::sized_sign_on("other", &["ffmpeg"], 8, 0))
        .await;
    let job = submit_with(&m, json!({})).await;
    assert_eq!(
        m.manager
            .state
            .dispatcher
            .fail_impossible_tasks(&castanet_manager::store::FeasibilityScope::Farm)
            .await
            .unwrap(),
        0,
        "a registered worker can run the tasks"
    );
    let response = m
        .http
        .delete(format!("{}/api/v3/worker-mgt/workers/{able_id}", m.url))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{response:?}");
    let failed = wait_failed(&m, &job).await;
    assert!(
        failed["activity"].as_str().unwrap().contains("task-type"),
        "{failed}"
    );
}

/// The failure rules count the workers left for a failed task with the same eligibility
/// rule as the scheduler: a connected worker that does not meet the job's requirements is
/// not "left". When the only fit worker fails the task, the job fails at once with the
/// reason, instead of the task waiting as soft-failed for a worker that can never take it.
#[tokio::test]
async fn workers_that_miss_the_requirements_are_not_left_for_a_failed_task() {
    let m = start().await;
    let _small = m
        .connect(common::sized_sign_on("small", &["misc"], 8, 0))
        .await;
    let mut fit = m
        .connect(common::sized_sign_on("fit", &["misc"], 8, 1))
        .await;
    let job = submit_with(&m, json!({ "min_gpus": 1 })).await;
    let task = loop {
        let next = tokio::time::timeout(
            Duration::from_secs(10),
            common::next_message(&mut fit.stream),
        )
        .await
        .expect("an assignment within 10 s")
        .expect("stream open")
        .expect("an instruction");
        if let Some(Kind::AssignTask(task)) = next.kind {
            break task;
        }
    };
    let failed = v1::TaskUpdate {
        task_id: task.task_id.clone(),
        lease_epoch: task.lease_epoch,
        sequence: 1,
        status: v1::TaskStatus::Failed as i32,
        failure: Some(v1::Failure {
            message: "blender crashed".into(),
            fault_class: v1::FaultClass::NonzeroExit as i32,
            ..Default::default()
        }),
        ..Default::default()
    };
    fit.client
        .update_task(authed(failed, &fit.id, &fit.token))
        .await
        .expect("update applied");
    // The update's own transaction decided it: no impossible-task pass has run.
    let (_, shown) = m.get(&format!("/api/v3/tasks/{}", task.task_id)).await;
    assert_eq!(shown["status"], "failed", "{shown}");
    assert!(
        shown["activity"]
            .as_str()
            .unwrap()
            .contains("no worker is left that may run tasks of type \"misc\""),
        "{shown}"
    );
    let (_, state) = m.get(&format!("/api/v3/jobs/{job}")).await;
    assert_eq!(state["status"], "failed", "{state}");
}
