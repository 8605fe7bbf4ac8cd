//! Jobs that depend on other jobs, over real gRPC: a job waits until its dependencies have
//! completed, is on hold while one failed (shown in `/why`), and cycles are refused.
mod common;
mod sim_worker;

use std::time::Duration;

use castanet_protocol::v1::FaultClass;
use common::{TestManager, echo_sleep_job};
use serde_json::{Value, json};
use sim_worker::{SimWorker, start_with};

async fn submit(m: &TestManager, job: &Value) -> Value {
    let (status, answer) = m.post("/api/v3/jobs", job).await;
    assert_eq!(status, 200, "{answer}");
    answer
}

fn depending_on(ids: &[&str]) -> Value {
    let mut job = echo_sleep_job(0, 0);
    job["depends_on"] = json!(ids);
    job
}

async fn put_dependencies(m: &TestManager, job: &str, ids: &[&str]) -> (u16, Value) {
    let response = m
        .http
        .put(format!("{}/api/v3/jobs/{job}/dependencies", m.url))
        .json(&json!({ "depends_on": ids }))
        .send()
        .await
        .expect("PUT answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn only_task(m: &TestManager, job: &str) -> String {
    let (_, tasks) = m.get(&format!("/api/v3/jobs/{job}/tasks")).await;
    tasks["tasks"][0]["id"].as_str().expect("task").to_string()
}

async fn why_rules(m: &TestManager, task: &str) -> Vec<(String, String)> {
    let (_, why) = m.get(&format!("/api/v3/tasks/{task}/why")).await;
    why["blockers"]
        .as_array()
        .expect("blockers")
        .iter()
        .map(|b| {
            let text = |k: &str| b[k].as_str().unwrap_or_default().to_string();
            (text("rule"), text("detail"))
        })
        .collect()
}

#[tokio::test]
async fn a_job_waits_for_its_dependency_and_runs_once_it_completed() {
    let m = start_with(|_| {}).await;
    let mut worker = SimWorker::connect(&m, "a").await;
    let first = submit(&m, &echo_sleep_job(0, 0)).await;
    let first_id = first["id"].as_str().expect("id");
    let second = submit(&m, &depending_on(&[first_id])).await;
    let second_id = second["id"].as_str().expect("id");
    assert_eq!(second["status"], "waiting-for-dependencies", "{second}");
    assert_eq!(second["depends_on"], json!([first_id]));
    assert!(
        second["activity"]
            .as_str()
            .is_some_and(|a| a.contains("Waiting for 1 job")),
        "{second}"
    );
    let waiting = only_task(&m, second_id).await;
    let rules = why_rules(&m, &waiting).await;
    assert!(
        rules
            .iter()
            .any(|(rule, detail)| rule == "job-dependency" && detail.contains(first_id)),
        "{rules:?}"
    );
    // The farm's "queued" is work that can run now: the waiting job's task is apart.
    let (_, summary) = m.get("/api/v3/farm/summary").await;
    assert_eq!(summary["tasks"]["waiting"], 1, "{summary}");

    // The one worker gets the first job's task, not the waiting job's.
    let task = worker.next_assignment().await;
    assert_eq!(task.job_id, first_id);
    worker.complete(&task).await;
    m.wait_for_job(second_id, Duration::from_secs(10), |j| {
        j["status"] != "waiting-for-dependencies"
    })
    .await;
    let task = worker.next_assignment().await;
    assert_eq!(task.job_id, second_id);
    worker.complete(&task).await;
    m.wait_for_job(second_id, Duration::from_secs(10), |j| {
        j["status"] == "completed"
    })
    .await;

    // A job whose dependencies already completed is queued at once; the add-on's metadata
    // key says the same as the field.
    let mut third = echo_sleep_job(0, 0);
    third["metadata"]["depends_on"] = json!(format!("{first_id}, {second_id}"));
    let third = submit(&m, &third).await;
    assert_eq!(third["status"], "queued", "{third}");
    let (_, shown) = m
        .get(&format!(
            "/api/v3/jobs/{}/dependencies",
            third["id"].as_str().unwrap_or_default()
        ))
        .await;
    assert_eq!(
        shown["dependencies"].as_array().map(Vec::len),
        Some(2),
        "{shown}"
    );
}

#[tokio::test]
async fn a_failed_dependency_holds_its_dependent_until_it_completes_after_a_requeue() {
    let m = start_with(|_| {}).await;
    let mut worker = SimWorker::connect(&m, "a").await;
    let first = submit(&m, &echo_sleep_job(0, 0)).await;
    let first_id = first["id"].as_str().expect("id").to_string();
    let second = submit(&m, &depending_on(&[&first_id])).await;
    let second_id = second["id"].as_str().expect("id").to_string();

    let task = worker.next_assignment().await;
    worker.fail(&task, FaultClass::MissingInput).await;
    m.wait_for_job(&first_id, Duration::from_secs(10), |j| {
        j["status"] == "failed"
    })
    .await;
    let held = m
        .wait_for_job(&second_id, Duration::from_secs(10), |j| {
            j["activity"]
                .as_str()
                .is_some_and(|a| a.starts_with("On hold"))
        })
        .await;
    assert_eq!(held["status"], "waiting-for-dependencies", "{held}");
    let waiting = only_task(&m, &second_id).await;
    let rules = why_rules(&m, &waiting).await;
    assert!(
        rules.iter().any(|(rule, detail)| rule == "job-dependency"
            && detail.contains("on hold")
            && detail.contains("failed")),
        "{rules:?}"
    );

    let (status, answer) = m
        .post(
            &format!("/api/v3/jobs/{first_id}/setstatus"),
            &json!({ "status": "requeueing", "reason": "fixed the input" }),
        )
        .await;
    assert_eq!(status, 204, "{answer}");
    let task = worker.next_assignment().await;
    assert_eq!(task.job_id, first_id);
    worker.complete(&task).await;
    let task = worker.next_assignment().await;
    assert_eq!(
        task.job_id, second_id,
        "released once its dependency completed"
    );
    worker.complete(&task).await;
    m.wait_for_job(&second_id, Duration::from_secs(10), |j| {
        j["status"] == "completed"
    })
    .await;
}

#[tokio::test]
async fn dependencies_change_while_waiting_and_cycles_and_unknown_jobs_are_refused() {
    let m = start_with(|_| {}).await;
    let mut paused = echo_sleep_job(0, 0);
    paused["initial_status"] = json!("paused");
    let a = submit(&m, &paused).await;
    let a_id = a["id"].as_str().expect("id").to_string();
    let b = submit(&m, &depending_on(&[&a_id])).await;
    let b_id = b["id"].as_str().expect("id").to_string();
    let c = submit(&m, &depending_on(&[&b_id])).await;
    let c_id = c["id"].as_str().expect("id").to_string();

    // a → c would close a → c → b → a.
    let (status, answer) = put_dependencies(&m, &a_id, &[&c_id]).await;
    assert_eq!(status, 409, "{answer}");
    let message = answer["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("cycle") && message.contains(&a_id) && message.contains(&b_id),
        "{message}"
    );
    let (status, answer) = put_dependencies(&m, &a_id, &[&a_id]).await;
    assert_eq!(status, 409, "{answer}");
    let unknown = "6f1c2b1e-0000-4000-8000-000000000000";
    let (status, answer) = put_dependencies(&m, &a_id, &[unknown]).await;
    assert_eq!(status, 400, "{answer}");
    assert!(answer["message"].to_string().contains(unknown), "{answer}");
    let (status, answer) = m.post("/api/v3/jobs", &depending_on(&[unknown])).await;
    assert_eq!(status, 400, "{answer}");
    let (status, answer) = m.post("/api/v3/jobs", &depending_on(&["not-a-uuid"])).await;
    assert_eq!(status, 400, "{answer}");
    // Nothing changed: a has no dependencies, b still waits for a.
    let (_, shown) = m.get(&format!("/api/v3/jobs/{a_id}")).await;
    assert!(shown.get("depends_on").is_none(), "{shown}");
    let (_, shown) = m.get(&format!("/api/v3/jobs/{b_id}")).await;
    assert_eq!(shown["depends_on"], json!([a_id]));

    // Dropping b's dependency queues it; giving it one again makes it wait.
    let (status, answer) = put_dependencies(&m, &b_id, &[]).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["status"], "queued", "{answer}");
    let (status, answer) = put_dependencies(&m, &b_id, &[&a_id]).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["status"], "waiting-for-dependencies", "{answer}");

    // Resuming a paused job with unmet dependencies makes it wait, not run.
    let (status, _) = put_dependencies(&m, &a_id, &[&c_id]).await;
    assert_eq!(status, 409, "still a cycle");
    let d = submit(&m, &paused).await;
    let d_id = d["id"].as_str().expect("id").to_string();
    let (status, answer) = put_dependencies(&m, &d_id, &[&c_id]).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["status"], "paused", "{answer}");
    let (status, _) = m
        .post(
            &format!("/api/v3/jobs/{d_id}/setstatus"),
            &json!({ "status": "queued", "reason": "resume" }),
        )
        .await;
    assert_eq!(status, 204);
    let (_, shown) = m.get(&format!("/api/v3/jobs/{d_id}")).await;
    assert_eq!(shown["status"], "waiting-for-dependencies", "{shown}");

    // A waiting job can be canceled.
    let (status, _) = m
        .post(
            &format!("/api/v3/jobs/{c_id}/setstatus"),
            &json!({ "status": "cancel-requested", "reason": "not needed" }),
        )
        .await;
    assert_eq!(status, 204);
    let (_, shown) = m.get(&format!("/api/v3/jobs/{c_id}")).await;
    assert_eq!(shown["status"], "canceled", "{shown}");
    let (status, _) = put_dependencies(&m, &c_id, &[]).await;
    assert_eq!(status, 409, "a canceled job's dependencies do not change");
}

#[tokio::test]
async fn a_chain_of_three_jobs_runs_in_order() {
    let m = start_with(|_| {}).await;
    let mut worker = SimWorker::connect(&m, "a").await;
    let first = submit(&m, &echo_sleep_job(0, 0)).await;
    let first_id = first["id"].as_str().expect("id").to_string();
    let second = submit(&m, &depending_on(&[&first_id])).await;
    let second_id = second["id"].as_str().expect("id").to_string();
    let third = submit(&m, &depending_on(&[&second_id])).await;
    let third_id = third["id"].as_str().expect("id").to_string();
    assert_eq!(third["status"], "waiting-for-dependencies", "{third}");
    for expected in [&first_id, &second_id, &third_id] {
        let task = worker.next_assignment().await;
        assert_eq!(&task.job_id, expected, "the chain runs in order");
        worker.complete(&task).await;
        m.wait_for_job(expected, Duration::from_secs(10), |j| {
            j["status"] == "completed"
        })
        .await;
    }
}

#[tokio::test]
async fn a_queued_dependent_waits_again_when_its_dependency_is_requeued_and_outlives_its_deletion()
{
    let m = start_with(|_| {}).await;
    let mut worker = SimWorker::connect(&m, "a").await;
    // The dependent goes to a tag without members, so once released it stays queued: no
    // worker takes it while the test looks at it.
    let (status, tag) = m
        .post(
            "/api/v3/worker-mgt/tags",
            &json!({ "name": "nobody-yet", "description": "" }),
        )
        .await;
    assert!(status < 300, "{tag}");
    let first = submit(&m, &echo_sleep_job(0, 0)).await;
    let first_id = first["id"].as_str().expect("id").to_string();
    let mut dependent = depending_on(&[&first_id]);
    dependent["worker_tag"] = tag["id"].clone();
    let second = submit(&m, &dependent).await;
    let second_id = second["id"].as_str().expect("id").to_string();

    let task = worker.next_assignment().await;
    worker.complete(&task).await;
    m.wait_for_job(&second_id, Duration::from_secs(10), |j| {
        j["status"] == "queued"
    })
    .await;

    // Requeueing the completed dependency makes the released (not started) job wait again.
    let (status, answer) = m
        .post(
            &format!("/api/v3/jobs/{first_id}/setstatus"),
            &json!({ "status": "requeueing", "reason": "render it again" }),
        )
        .await;
    assert_eq!(status, 204, "{answer}");
    m.wait_for_job(&second_id, Duration::from_secs(10), |j| {
        j["status"] == "waiting-for-dependencies"
    })
    .await;
    let task = worker.next_assignment().await;
    assert_eq!(task.job_id, first_id);
    worker.complete(&task).await;
    m.wait_for_job(&second_id, Duration::from_secs(10), |j| {
        j["status"] == "queued"
    })
    .await;

    // Deleting the completed dependency (retention, say) does not hold the dependent back.
    let response = m
        .http
        .delete(format!("{}/api/v3/jobs/{first_id}", m.url))
        .send()
        .await
        .expect("DELETE answers");
    assert_eq!(response.status().as_u16(), 204);
    let (_, shown) = m
        .get(&format!("/api/v3/jobs/{second_id}/dependencies"))
        .await;
    assert_eq!(shown["dependencies"], json!([]), "{shown}");
    let (_, job) = m.get(&format!("/api/v3/jobs/{second_id}")).await;
    assert_eq!(job["status"], "queued", "{job}");
}
