//! The approval gate and the on-complete task over real gRPC and REST: a gated job renders its
//! preview pass, waits in awaiting-approval (holding back the jobs that depend on it), is
//! approved (its final pass and the on-complete task appended and run, the on-complete last) or
//! rejected (its comment kept); refusals are 400/409 naming why; the audit log has the actions.
mod common;
mod sim_worker;

use std::time::Duration;

use common::TestManager;
use serde_json::{Value, json};
use sim_worker::{SimWorker, start_with};

fn gated_job(name: &str) -> Value {
    json!({
        "name": name, "type": "blender-render-with-approval", "priority": 50,
        "submitter_platform": "linux",
        "settings": {
            "frames": "1-10", "chunk_size": 5, "preview_every_nth": 5,
            "preview_resolution_percentage": 25, "preview_samples": 4,
            "render_output_root": "/render", "add_path_components": 0,
            "render_output_path": "/render/shot/######",
            "blendfile": "/projects/scene.blend", "format": "PNG",
            "image_file_extension": ".png", "scene": "Scene",
        },
        "metadata": {},
        "on_complete": "touch '/review/shot done'",
    })
}

async fn submit(m: &TestManager, job: &Value) -> String {
    let (status, answer) = m.post("/api/v3/jobs", job).await;
    assert_eq!(status, 200, "{answer}");
    answer["id"].as_str().expect("job id").to_owned()
}

async fn task_names(m: &TestManager, job: &str) -> Vec<String> {
    let (status, answer) = m.get(&format!("/api/v3/jobs/{job}/tasks")).await;
    assert_eq!(status, 200, "{answer}");
    answer["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .map(|t| t["name"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Runs every task handed to `worker` until the job reaches `status`; the names in hand-out order.
async fn run_until(
    m: &TestManager,
    worker: &mut SimWorker,
    job: &str,
    status: &str,
) -> Vec<String> {
    let mut ran = Vec::new();
    loop {
        let (_, now) = m.get(&format!("/api/v3/jobs/{job}")).await;
        if now["status"] == status {
            return ran;
        }
        let task = worker.next_assignment().await;
        ran.push(task.task_name.clone());
        worker.complete(&task).await;
        // The ripple commits with the completion; the next turn sees the job's status.
    }
}

fn message(answer: &Value) -> String {
    answer["message"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn a_gated_job_waits_for_approval_then_runs_its_final_pass_and_the_on_complete_task_last() {
    let m = start_with(|_| {}).await;
    let mut worker = SimWorker::connect_for(&m, "w1", &["blender", "misc"]).await;
    let job = submit(&m, &gated_job("gated")).await;
    // A job that depends on it must not start before the final pass completed.
    let mut dependent = common::echo_sleep_job(1, 0);
    dependent["depends_on"] = json!([job]);
    let dependent = submit(&m, &dependent).await;

    // The preview pass: frames 1 and 6 (every 5th), in chunks of 5; no on-complete task yet.
    assert_eq!(task_names(&m, &job).await, ["preview-1,6"]);
    let (_, submitted) = m.get(&format!("/api/v3/jobs/{job}")).await;
    assert_eq!(submitted["approval"]["state"], "pending", "{submitted}");
    assert_eq!(submitted["on_complete"], "touch '/review/shot done'");
    // Approving before the preview finished is a conflict that says why.
    let (status, answer) = m
        .post(&format!("/api/v3/jobs/{job}/approve"), &json!({}))
        .await;
    assert_eq!(status, 409, "{answer}");
    assert!(message(&answer).contains("has not finished"), "{answer}");

    let ran = run_until(&m, &mut worker, &job, "awaiting-approval").await;
    assert_eq!(ran, ["preview-1,6"]);
    let (_, waiting) = m.get(&format!("/api/v3/jobs/{dependent}")).await;
    assert_eq!(waiting["status"], "waiting-for-dependencies", "{waiting}");
    // Neither status can be set through the generic status change.
    for status in ["awaiting-approval", "rejected", "completed"] {
        let (code, answer) = m
            .post(
                &format!("/api/v3/jobs/{job}/setstatus"),
                &json!({ "status": status }),
            )
            .await;
        assert_eq!(code, 409, "{status}: {answer}");
    }
    // Nothing runs while the job awaits approval.
    assert!(
        worker
            .instruction_within(Duration::from_millis(300))
            .await
            .is_none()
    );

    let (status, approved) = m
        .post(
            &format!("/api/v3/jobs/{job}/approve"),
            &json!({ "comment": "lighting is fine" }),
        )
        .await;
    assert_eq!(status, 200, "{approved}");
    assert_eq!(approved["status"], "queued", "{approved}");
    assert_eq!(approved["approval"]["state"], "approved");
    assert_eq!(approved["approval"]["by"], "anonymous");
    assert_eq!(approved["approval"]["comment"], "lighting is fine");
    assert!(approved["approval"]["at"].is_string());
    // The final pass (two chunks of five) and the on-complete task, numbered on.
    let names = task_names(&m, &job).await;
    assert_eq!(
        names,
        ["preview-1,6", "render-1-5", "render-6-10", "on-complete"]
    );
    let (_, tasks) = m.get(&format!("/api/v3/jobs/{job}/tasks")).await;
    let indices: Vec<i64> = tasks["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .map(|t| t["index_in_job"].as_i64().unwrap_or_default())
        .collect();
    assert_eq!(indices, [1, 2, 3, 4]);
    assert_eq!(approved["steps_total"], json!(2 + 10 + 1), "{approved}");

    let ran = run_until(&m, &mut worker, &job, "completed").await;
    assert_eq!(
        ran.last().map(String::as_str),
        Some("on-complete"),
        "{ran:?}"
    );
    assert_eq!(ran.len(), 3, "{ran:?}");
    // The on-complete task runs the command line, no shell, with the job's facts around it.
    let on_complete_id = tasks["tasks"][3]["id"].as_str().expect("id").to_owned();
    let (_, task) = m.get(&format!("/api/v3/tasks/{on_complete_id}")).await;
    let command = &task["commands"][0];
    assert_eq!(command["name"], "exec", "{task}");
    assert_eq!(command["parameters"]["exe"], "touch");
    assert_eq!(command["parameters"]["args"], json!(["/review/shot done"]));
    assert_eq!(command["parameters"]["env"]["CASTANET_JOB_ID"], json!(job));
    assert_eq!(
        command["parameters"]["env"]["CASTANET_RENDER_OUTPUT"],
        "/render/shot"
    );
    assert_eq!(
        task["dependencies"].as_array().map(Vec::len),
        Some(3),
        "{task}"
    );

    // The dependent job is released once the gated one completed; approving again is refused.
    m.wait_for_job(&dependent, Duration::from_secs(10), |j| {
        j["status"] != "waiting-for-dependencies"
    })
    .await;
    let (status, answer) = m
        .post(&format!("/api/v3/jobs/{job}/approve"), &json!({}))
        .await;
    assert_eq!(status, 409, "{answer}");
    assert!(message(&answer).contains("already approved"), "{answer}");

    let (_, audit) = m.get("/api/v3/audit").await;
    let approvals: Vec<&Value> = audit["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["path"] == format!("/api/v3/jobs/{job}/approve"))
        .collect();
    assert_eq!(approvals.len(), 3, "{audit}");
    assert!(
        approvals
            .iter()
            .any(|e| e["status"] == 200 && e["actor"] == "anonymous")
    );
}

#[tokio::test]
async fn a_rejection_needs_a_comment_and_keeps_it() {
    let m = start_with(|_| {}).await;
    let mut worker = SimWorker::connect_for(&m, "w1", &["blender", "misc"]).await;
    let job = submit(&m, &gated_job("to reject")).await;
    let mut dependent = common::echo_sleep_job(1, 0);
    dependent["depends_on"] = json!([job]);
    let dependent = submit(&m, &dependent).await;
    run_until(&m, &mut worker, &job, "awaiting-approval").await;

    for body in [json!({}), json!({ "comment": "   " })] {
        let (status, answer) = m.post(&format!("/api/v3/jobs/{job}/reject"), &body).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert!(message(&answer).contains("comment"), "{answer}");
    }
    let (status, answer) = m
        .post(
            &format!("/api/v3/jobs/{job}/reject"),
            &json!({ "comment": 1 }),
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    // A reviewer name with a control character is refused by name.
    let (status, answer) = m
        .post(
            &format!("/api/v3/jobs/{job}/reject"),
            &json!({ "comment": "too dark", "reviewer": "sam\u{7}" }),
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    assert!(message(&answer).contains("reviewer"), "{answer}");
    let (_, still) = m.get(&format!("/api/v3/jobs/{job}")).await;
    assert_eq!(still["status"], "awaiting-approval", "{still}");

    // Open access: the request names its reviewer.
    let (status, rejected) = m
        .post(
            &format!("/api/v3/jobs/{job}/reject"),
            &json!({ "comment": "the cube is too dark", "reviewer": "Supervisor Sam" }),
        )
        .await;
    assert_eq!(status, 200, "{rejected}");
    assert_eq!(rejected["approval"]["by"], "Supervisor Sam", "{rejected}");
    assert_eq!(rejected["status"], "rejected");
    assert_eq!(rejected["approval"]["state"], "rejected");
    assert_eq!(rejected["approval"]["comment"], "the cube is too dark");
    assert!(
        rejected["activity"]
            .as_str()
            .unwrap_or_default()
            .contains("the cube is too dark")
    );
    assert_eq!(
        task_names(&m, &job).await.len(),
        1,
        "no final pass for a rejected job"
    );
    // Final: neither approve nor reject again, nor requeue.
    let (status, _) = m
        .post(&format!("/api/v3/jobs/{job}/approve"), &json!({}))
        .await;
    assert_eq!(status, 409);
    let (status, _) = m
        .post(
            &format!("/api/v3/jobs/{job}/setstatus"),
            &json!({ "status": "requeueing" }),
        )
        .await;
    assert_eq!(status, 409);
    // The dependent job is on hold: a rejected job never completes.
    let held = m
        .wait_for_job(&dependent, Duration::from_secs(10), |j| {
            j["activity"]
                .as_str()
                .unwrap_or_default()
                .starts_with("On hold")
        })
        .await;
    assert_eq!(held["status"], "waiting-for-dependencies", "{held}");
    // No gate, unknown job, bad id.
    let plain = submit(&m, &common::echo_sleep_job(1, 0)).await;
    let (status, answer) = m
        .post(&format!("/api/v3/jobs/{plain}/approve"), &json!({}))
        .await;
    assert_eq!(status, 409, "{answer}");
    assert!(message(&answer).contains("no approval gate"), "{answer}");
    let unknown = uuid::Uuid::new_v4();
    let (status, _) = m
        .post(
            &format!("/api/v3/jobs/{unknown}/reject"),
            &json!({ "comment": "x" }),
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = m.post("/api/v3/jobs/not-a-uuid/approve", &json!({})).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn an_on_complete_command_runs_after_every_task_of_an_ungated_job() {
    let m = start_with(|_| {}).await;
    let mut worker = SimWorker::connect(&m, "w1").await;
    for (bad, says) in [("echo 'open", "unterminated"), ("   ", "program")] {
        let mut job = common::echo_sleep_job(2, 0);
        job["on_complete"] = json!(bad);
        let (status, answer) = m.post("/api/v3/jobs", &job).await;
        assert_eq!(status, 400, "{bad}: {answer}");
        assert!(message(&answer).contains(says), "{answer}");
    }
    let (_, before) = m.get("/api/v3/jobs").await;
    assert_eq!(
        before["jobs"].as_array().map(Vec::len),
        Some(0),
        "nothing stored: {before}"
    );

    // The add-on's way: the metadata key.
    let mut job = common::echo_sleep_job(2, 0);
    job["metadata"]["on_complete"] = json!("echo done");
    let job = submit(&m, &job).await;
    let names = task_names(&m, &job).await;
    assert_eq!(
        names.last().map(String::as_str),
        Some("on-complete"),
        "{names:?}"
    );
    let ran = run_until(&m, &mut worker, &job, "completed").await;
    assert_eq!(ran.len(), names.len(), "{ran:?}");
    assert_eq!(
        ran.last().map(String::as_str),
        Some("on-complete"),
        "{ran:?}"
    );
}

/// Sends `method path` with a bearer token; (status, body).
async fn call_as(
    m: &TestManager,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: &Value,
) -> (u16, Value) {
    let response = m
        .http
        .request(method, format!("{}{path}", m.url))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_reviewer_is_the_token_holder_and_two_racing_approvals_get_one_final_pass() {
    use castanet_manager::http::AccessMode;
    use castanet_manager::store::{ApiRole, hash_api_token, new_api_token};
    let m = start_with(|config| config.access.mode = AccessMode::Token).await;
    let store = &m.manager.state.store;
    let (viewer, alice) = (new_api_token(), new_api_token());
    store
        .insert_api_token("viewer", ApiRole::Viewer, &hash_api_token(&viewer))
        .await
        .expect("token");
    store
        .insert_api_token("alice", ApiRole::Submitter, &hash_api_token(&alice))
        .await
        .expect("token");
    let mut worker = SimWorker::connect_for(&m, "w1", &["blender", "misc"]).await;
    let (status, job) = call_as(
        &m,
        &alice,
        reqwest::Method::POST,
        "/api/v3/jobs",
        &gated_job("tokens"),
    )
    .await;
    assert_eq!(status, 200, "{job}");
    let job = job["id"].as_str().expect("id").to_owned();
    let task = worker.next_assignment().await;
    worker.complete(&task).await;

    // The ripple commits with the completion, before it is acknowledged.
    let (_, now) = call_as(
        &m,
        &alice,
        reqwest::Method::GET,
        &format!("/api/v3/jobs/{job}"),
        &Value::Null,
    )
    .await;
    assert_eq!(now["status"], "awaiting-approval", "{now}");

    // A viewer may look, not review.
    let approve = format!("/api/v3/jobs/{job}/approve");
    let (status, _) = call_as(&m, &viewer, reqwest::Method::POST, &approve, &json!({})).await;
    assert_eq!(status, 403);
    // Two approvals at once: one wins, the other is told it came too late; one final pass.
    // With a token, the token names the reviewer, whatever the request says.
    let body = json!({ "comment": "ok", "reviewer": "someone else" });
    let (first, second) = tokio::join!(
        call_as(&m, &alice, reqwest::Method::POST, &approve, &body),
        call_as(&m, &alice, reqwest::Method::POST, &approve, &body),
    );
    let mut codes = [first.0, second.0];
    codes.sort_unstable();
    assert_eq!(codes, [200, 409], "{first:?} {second:?}");
    let approved = if first.0 == 200 { first.1 } else { second.1 };
    assert_eq!(approved["approval"]["by"], "alice", "{approved}");
    let (_, tasks) = call_as(
        &m,
        &alice,
        reqwest::Method::GET,
        &format!("/api/v3/jobs/{job}/tasks"),
        &Value::Null,
    )
    .await;
    assert_eq!(tasks["tasks"].as_array().map(Vec::len), Some(4), "{tasks}");

    let admin = new_api_token();
    store
        .insert_api_token("admin", ApiRole::Admin, &hash_api_token(&admin))
        .await
        .expect("token");
    let (_, audit) = call_as(
        &m,
        &admin,
        reqwest::Method::GET,
        "/api/v3/audit",
        &Value::Null,
    )
    .await;
    let actors: Vec<(&str, i64)> = audit["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["path"] == approve.as_str())
        .map(|e| {
            (
                e["actor"].as_str().unwrap_or_default(),
                e["status"].as_i64().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(actors.len(), 3, "{audit}");
    assert!(
        actors.contains(&("viewer", 403)) && actors.contains(&("alice", 200)),
        "{actors:?}"
    );
}

/// A gated job type whose final pass fails to compile when the setting `broken` is true.
const GATED_SCRIPT: &str = r#"
const JOB_TYPE = { label: "Gated", settings: [{ key: "broken", type: "bool", default: false }] };
function compileJob(job) { job.addTask(author.Task("preview", "misc")); }
function compileApproved(job) {
  if (job.settings.broken) throw "the final pass cannot be made: the shot is missing";
  job.addTask(author.Task("final", "misc"));
}
"#;

#[tokio::test]
async fn a_failing_final_pass_changes_nothing_and_a_preview_task_can_run_again_before_the_review() {
    let scripts = tempfile::tempdir().expect("scripts dir");
    std::fs::write(scripts.path().join("gated.js"), GATED_SCRIPT).expect("script");
    let folder = scripts.path().to_path_buf();
    let m = start_with(move |config| config.scripts_dir = folder).await;
    let mut worker = SimWorker::connect(&m, "w1").await;
    let job = submit(
        &m,
        &json!({
            "name": "broken", "type": "gated", "priority": 50, "submitter_platform": "linux",
            "settings": { "broken": true },
        }),
    )
    .await;
    run_until(&m, &mut worker, &job, "awaiting-approval").await;
    let (status, answer) = m
        .post(&format!("/api/v3/jobs/{job}/approve"), &json!({}))
        .await;
    assert_eq!(status, 400, "{answer}");
    assert!(message(&answer).contains("the shot is missing"), "{answer}");
    let (_, still) = m.get(&format!("/api/v3/jobs/{job}")).await;
    assert_eq!(still["status"], "awaiting-approval", "{still}");
    assert_eq!(still["approval"]["state"], "pending");
    assert_eq!(task_names(&m, &job).await, ["preview"]);

    // Rendering the preview task again: the job runs it, then waits for approval again.
    let (_, tasks) = m.get(&format!("/api/v3/jobs/{job}/tasks")).await;
    let preview = tasks["tasks"][0]["id"].as_str().expect("id").to_owned();
    let (status, answer) = m
        .post(
            &format!("/api/v3/tasks/{preview}/setstatus"),
            &json!({ "status": "queued" }),
        )
        .await;
    assert_eq!(status, 204, "{answer}");
    let (_, requeued) = m.get(&format!("/api/v3/jobs/{job}")).await;
    // Handed out at once to the idle worker, or about to be.
    assert!(
        requeued["status"] == "queued" || requeued["status"] == "active",
        "{requeued}"
    );
    let ran = run_until(&m, &mut worker, &job, "awaiting-approval").await;
    assert_eq!(ran, ["preview"]);

    // Rejected is final, for the tasks too.
    let (status, _) = m
        .post(
            &format!("/api/v3/jobs/{job}/reject"),
            &json!({ "comment": "no shot" }),
        )
        .await;
    assert_eq!(status, 200);
    let (status, answer) = m
        .post(
            &format!("/api/v3/tasks/{preview}/setstatus"),
            &json!({ "status": "queued" }),
        )
        .await;
    assert_eq!(status, 409, "{answer}");
    assert!(message(&answer).contains("rejected"), "{answer}");
}

#[tokio::test]
async fn an_openjd_job_takes_an_on_complete_command_too() {
    let m = start_with(|_| {}).await;
    let mut worker = SimWorker::connect_for(&m, "w1", &["openjd", "misc"]).await;
    let template = "specificationVersion: jobtemplate-2023-09\nname: Echo\nsteps:\n- name: Echo\n  \
                    parameterSpace:\n    taskParameterDefinitions:\n    - name: Frame\n      type: INT\n      \
                    range: \"1-2\"\n  script:\n    actions:\n      onRun:\n        command: /bin/echo\n        \
                    args: [\"{{Task.Param.Frame}}\"]\n";
    let (status, answer) = m
        .post(
            "/api/v3/jobs/openjd",
            &json!({ "template": template, "on_complete": "echo 'unclosed" }),
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    let (status, job) = m
        .post(
            "/api/v3/jobs/openjd",
            &json!({ "template": template, "on_complete": "echo delivered" }),
        )
        .await;
    assert_eq!(status, 200, "{job}");
    let job = job["id"].as_str().expect("id").to_owned();
    let ran = run_until(&m, &mut worker, &job, "completed").await;
    assert_eq!(ran.len(), 3, "{ran:?}");
    assert_eq!(
        ran.last().map(String::as_str),
        Some("on-complete"),
        "{ran:?}"
    );
}
