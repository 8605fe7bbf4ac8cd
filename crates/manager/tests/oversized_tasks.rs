//! Tasks too large for a worker to receive (issue 23, item 2): refused at submission when the
//! script made them so, failed at hand-out (never handed out again) when variables did.
mod common;

use std::time::Duration;

use serde_json::{Value, json};

const BIG_PARAMETER_SCRIPT: &str = "const JOB_TYPE = { label: 'Big Parameter', settings: [] };\n\
     function compileJob(job) {\n\
       const task = author.Task('huge', 'misc');\n\
       task.addCommand(author.Command('echo', { message: 'x'.repeat(8 * 1024 * 1024) }));\n\
       job.addTask(task);\n\
     }\n";

#[tokio::test]
async fn a_task_over_the_instruction_limit_is_refused_at_submission() {
    let dir = tempfile::tempdir().expect("temp dir");
    let scripts = dir.path().join("scripts");
    std::fs::create_dir_all(&scripts).expect("scripts folder");
    std::fs::write(scripts.join("big_parameter.js"), BIG_PARAMETER_SCRIPT).expect("script");
    let m = common::start_in(dir).await;

    let submission = json!({
        "name": "eight megabytes",
        "type": "big-parameter",
        "priority": 50,
        "submitter_platform": "linux",
        "settings": {},
    });
    for path in ["/api/v3/jobs/check", "/api/v3/jobs"] {
        let (status, body) = m.post(path, &submission).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["code"], 400, "{body}");
        let message = body["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("huge") && message.contains("at most 2097152"),
            "names the task and the limit: {message}"
        );
    }
    let (status, jobs) = m.get("/api/v3/jobs").await;
    assert_eq!(status, 200, "{jobs}");
    assert_eq!(jobs["jobs"].as_array().map(Vec::len), Some(0), "{jobs}");
}

#[tokio::test]
async fn a_task_that_variables_make_too_large_fails_once_instead_of_looping() {
    let dir = tempfile::tempdir().expect("temp dir");
    let m = common::start_configured(dir, |config| {
        config.variables.insert(
            "big".into(),
            castanet_manager::variables::VariableConfig {
                all: Some("y".repeat(200_000)),
                ..Default::default()
            },
        );
    })
    .await;
    // 25 × 200 kB = 5 MB once expanded; the submission itself is small.
    let mut job = common::echo_sleep_job(1, 0);
    job["settings"]["message"] = Value::String("{big}".repeat(25));
    let (status, job) = m.post("/api/v3/jobs", &job).await;
    assert_eq!(status, 200, "{job}");
    let job_id = job["id"].as_str().expect("job id").to_owned();

    let mut worker = m.connect(common::misc_sign_on("receiver", 1)).await;
    let failed = m
        .wait_for_job(&job_id, Duration::from_secs(10), |job| {
            job["status"] == "failed"
        })
        .await;
    let reason = failed["activity"].as_str().unwrap_or_default();
    assert!(reason.contains("too-large"), "{failed}");

    let (status, tasks) = m.get(&format!("/api/v3/jobs/{job_id}/tasks")).await;
    assert_eq!(status, 200, "{tasks}");
    let echo = tasks["tasks"]
        .as_array()
        .and_then(|tasks| tasks.iter().find(|t| t["name"] == "echo"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(echo["status"], "failed", "{tasks}");
    let activity = echo["activity"].as_str().unwrap_or_default();
    assert!(
        activity.contains("bytes with variables expanded"),
        "{activity}"
    );

    // The worker never received it: its stream is open and holds nothing but heartbeats.
    let next = tokio::time::timeout(
        Duration::from_millis(300),
        common::next_message(&mut worker.stream),
    )
    .await;
    assert!(next.is_err(), "nothing is handed out: {next:?}");
}
