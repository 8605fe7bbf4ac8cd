//! Open Job Description templates through `POST /api/v3/jobs/openjd`, over the real HTTP API
//! and gRPC: tasks, names, commands and step dependencies as stored and as handed out, and
//! 400s naming unsupported features and bad parameter values (with nothing stored).
mod common;
mod sim_worker;

use std::collections::BTreeSet;

use common::TestManager;
use serde_json::{Value, json};
use sim_worker::{SimWorker, start_with};

const TEMPLATE: &str = r##"
specificationVersion: jobtemplate-2023-09
name: "Wedge {{Param.Shot}}"
parameterDefinitions:
- {name: Shot, type: STRING, default: sh010}
- {name: Out, type: PATH}
- {name: Last, type: INT, default: 2, minValue: 1}
steps:
- name: Render
  parameterSpace:
    taskParameterDefinitions:
    - {name: Frame, type: INT, range: "1-{{Param.Last}}"}
    - {name: Layer, type: STRING, range: [bg, fg]}
  script:
    actions:
      onRun:
        command: "{{Task.File.Run}}"
        args: ["{{Param.Out}}", "{{Task.Param.Frame}}", "{{Task.Param.Layer}}"]
        timeout: 30
    embeddedFiles:
    - name: Run
      type: TEXT
      runnable: true
      data: "#!/bin/sh\necho {{Step.Name}} > $1/$2-$3\n"
- name: Gather
  dependencies: [{dependsOn: Render}]
  script:
    actions:
      onRun: {command: ls, args: ["{{Param.Out}}"]}
"##;

async fn tasks_of(m: &TestManager, job: &str) -> Vec<Value> {
    let (status, list) = m.get(&format!("/api/v3/jobs/{job}/tasks")).await;
    assert_eq!(status, 200, "{list}");
    let mut tasks = Vec::new();
    for summary in list["tasks"].as_array().expect("tasks") {
        let id = summary["id"].as_str().expect("id");
        let (status, task) = m.get(&format!("/api/v3/tasks/{id}")).await;
        assert_eq!(status, 200, "{task}");
        tasks.push(task);
    }
    tasks
}

fn named<'a>(tasks: &'a [Value], name: &str) -> &'a Value {
    tasks
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no task {name}"))
}

#[tokio::test]
async fn a_template_becomes_tasks_with_commands_and_step_dependencies_and_runs_in_order() {
    let m = start_with(|_| {}).await;
    let (status, job) = m
        .post(
            "/api/v3/jobs/openjd",
            &json!({"template": TEMPLATE, "parameters": {"Out": "/tmp/wedge"}, "priority": 60}),
        )
        .await;
    assert_eq!(status, 200, "{job}");
    assert_eq!(job["type"], "openjd");
    assert_eq!(job["name"], "Wedge sh010");
    assert_eq!(job["priority"], 60);
    assert_eq!(job["status"], "queued");
    assert_eq!(job["settings"]["openjd_parameters"]["Last"], "2");
    assert_eq!(
        job["settings"]["openjd_steps"][1]["depends_on"],
        json!(["Render"])
    );
    let job_id = job["id"].as_str().expect("id");

    let tasks = tasks_of(&m, job_id).await;
    let names: BTreeSet<&str> = tasks.iter().filter_map(|t| t["name"].as_str()).collect();
    let expected = [
        "Gather",
        "Render Frame=1 Layer=bg",
        "Render Frame=1 Layer=fg",
        "Render Frame=2 Layer=bg",
        "Render Frame=2 Layer=fg",
    ];
    assert_eq!(names, BTreeSet::from(expected));
    let render = named(&tasks, "Render Frame=2 Layer=fg");
    assert_eq!(render["task_type"], "openjd");
    assert_eq!(render["dependencies"], json!([]));
    let command = &render["commands"][0];
    assert_eq!(command["name"], "openjd-run");
    assert_eq!(command["parameters"]["command"], "{{Task.File.Run}}");
    assert_eq!(
        command["parameters"]["args"],
        json!(["/tmp/wedge", "2", "fg"])
    );
    assert_eq!(command["parameters"]["timeout_seconds"], 30);
    assert_eq!(
        command["parameters"]["files"],
        json!([{"name": "Run", "filename": null, "runnable": true,
                "data": "#!/bin/sh\necho Render > $1/$2-$3\n"}])
    );
    let gather = named(&tasks, "Gather");
    let waits_for: BTreeSet<&str> = gather["dependencies"]
        .as_array()
        .expect("dependencies")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let render_ids: BTreeSet<&str> = tasks
        .iter()
        .filter(|t| t["name"] != "Gather")
        .filter_map(|t| t["id"].as_str())
        .collect();
    assert_eq!(waits_for, render_ids);
    // What explains a waiting task works for a job whose type is no job-type script.
    let (status, why) = m
        .get(&format!(
            "/api/v3/tasks/{}/why",
            gather["id"].as_str().expect("id")
        ))
        .await;
    assert_eq!(status, 200, "{why}");

    // The four renders are handed out (with their commands) before the gathering step.
    let mut worker = SimWorker::connect_for(&m, "openjd-runner", &["openjd"]).await;
    let mut seen = Vec::new();
    for _ in 0..5 {
        let task = worker.next_assignment().await;
        assert_eq!(task.job_type, "openjd");
        assert_eq!(task.commands.len(), 1);
        assert_eq!(task.commands[0].name, "openjd-run");
        let parameters: Value =
            serde_json::from_str(&task.commands[0].parameters_json).expect("JSON parameters");
        assert!(parameters["args"].is_array(), "{parameters}");
        seen.push(task.task_name.clone());
        worker.complete(&task).await;
    }
    assert_eq!(seen.last().map(String::as_str), Some("Gather"), "{seen:?}");
    m.wait_for_job(job_id, std::time::Duration::from_secs(10), |j| {
        j["status"] == "completed"
    })
    .await;

    // Requeueing needs no job-type script either: the stored tasks run again, in order.
    let (status, answer) = m
        .post(
            &format!("/api/v3/jobs/{job_id}/setstatus"),
            &json!({"status": "requeueing", "reason": "once more"}),
        )
        .await;
    assert!(status == 204 || status == 200, "{status} {answer}");
    let mut again = Vec::new();
    for _ in 0..5 {
        let task = worker.next_assignment().await;
        again.push(task.task_name.clone());
        worker.complete(&task).await;
    }
    assert_eq!(
        again.last().map(String::as_str),
        Some("Gather"),
        "{again:?}"
    );
    m.wait_for_job(job_id, std::time::Duration::from_secs(10), |j| {
        j["status"] == "completed"
    })
    .await;
}

#[tokio::test]
async fn unsupported_features_and_bad_values_are_refused_with_their_names() {
    let m = common::start().await;
    let with_environment = TEMPLATE.replace(
        "- name: Gather\n",
        "- name: Gather\n  stepEnvironments: [{name: Venv}]\n",
    );
    let cases = [
        (
            json!({"template": with_environment, "parameters": {"Out": "/o"}}),
            "steps[1].stepEnvironments is not supported",
        ),
        (
            json!({"template": TEMPLATE.replace("steps:\n", "jobEnvironments: []\nsteps:\n"),
                   "parameters": {"Out": "/o"}}),
            "jobEnvironments is not supported",
        ),
        (
            json!({"template": TEMPLATE, "parameters": {"Out": "/o", "Last": 0}}),
            "parameter Last: 0 is below minValue 1",
        ),
        (
            json!({"template": TEMPLATE, "parameters": {}}),
            "parameter Out (PATH) needs a value",
        ),
        (
            json!({"template": TEMPLATE, "parameters": {"Out": "/o", "Lats": 3}}),
            "parameter Lats",
        ),
        (
            json!({"template": "not: [a template", "parameters": {}}),
            "not valid YAML or JSON",
        ),
        (
            json!({"template": TEMPLATE, "parameters": {"Out": "/o"}, "colour": "red"}),
            "colour",
        ),
        (
            json!({"template": TEMPLATE, "parameters": {"Out": "/o"}, "name": ""}),
            "job name must not be empty",
        ),
    ];
    for (body, expected) in cases {
        let (status, answer) = m.post("/api/v3/jobs/openjd", &body).await;
        assert_eq!(status, 400, "{expected}: {answer}");
        let message = answer["message"].as_str().unwrap_or_default();
        assert!(message.contains(expected), "{expected}: {answer}");
    }
    let (_, jobs) = m.get("/api/v3/jobs").await;
    assert_eq!(jobs["jobs"], json!([]), "nothing was stored: {jobs}");
    // Each attempt is in the audit log, as a submission is.
    let (status, audit) = m.get("/api/v3/audit").await;
    assert_eq!(status, 200, "{audit}");
    let refused = audit["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| {
            e["method"] == "POST" && e["path"] == "/api/v3/jobs/openjd" && e["status"] == 400
        })
        .count();
    assert_eq!(refused, 8, "{audit}");
}

#[tokio::test]
async fn the_submitted_name_replaces_the_template_name_and_the_job_is_listed() {
    let m = common::start().await;
    let (status, job) = m
        .post(
            "/api/v3/jobs/openjd",
            &json!({"template": TEMPLATE, "parameters": {"Out": "/o", "Last": "1"},
                    "name": "My wedge", "initial_status": "paused",
                    "metadata": {"project": "tests"}}),
        )
        .await;
    assert_eq!(status, 200, "{job}");
    assert_eq!(job["name"], "My wedge");
    assert_eq!(job["status"], "paused");
    assert_eq!(job["metadata"]["project"], "tests");
    let (_, jobs) = m.get("/api/v3/jobs").await;
    assert_eq!(jobs["jobs"][0]["type"], "openjd", "{jobs}");
    let tasks = tasks_of(&m, job["id"].as_str().expect("id")).await;
    assert_eq!(tasks.len(), 3);
}
