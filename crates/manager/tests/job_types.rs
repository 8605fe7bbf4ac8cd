//! Job types against a real manager: custom scripts picked up without a restart, broken scripts
//! named while the others keep working, and variables from submission to a worker's commands.
mod common;
mod sim_worker;

use std::time::{Duration, Instant};

use castanet_protocol::v1;
use serde_json::{Value, json};

use common::{TestManager, authed, next_assignment};

fn script(label: &str) -> String {
    format!(
        "const JOB_TYPE = {{ label: {label:?}, settings: [\n\
           {{ key: 'blendfile', type: 'string', required: true }},\n\
         ] }};\n\
         function compileJob(job) {{\n\
           const task = author.Task('render', 'blender');\n\
           task.addCommand(author.Command('blender-render', {{\n\
             exe: '{{blender}}', exeArgs: '{{blenderArgs}}', argsBefore: [],\n\
             blendfile: job.settings.blendfile,\n\
             args: ['--render-output', '{{render}}/out/######', '--frames', 3],\n\
           }}, 1));\n\
           job.addTask(task);\n\
         }}\n"
    )
}

/// The entry of `name` in `/api/v3/jobs/types`, once it shows `want`, polled for up to 2 s.
async fn listed_type(m: &TestManager, name: &str, want: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let (status, body) = m.get("/api/v3/jobs/types").await;
        assert_eq!(status, 200, "{body}");
        let found = body["job_types"]
            .as_array()
            .and_then(|types| types.iter().find(|t| t["name"] == name))
            .cloned();
        if let Some(found) = found.filter(|found| want(found)) {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "{name} not listed as expected within 2 s: {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn scripts_dropped_into_the_folder_appear_and_change_without_restart() {
    let m = common::start().await;
    let scripts = m.dir.path().join("scripts");
    std::fs::create_dir_all(&scripts).expect("scripts folder");

    std::fs::write(scripts.join("studio_render.js"), script("Studio Render")).expect("write");
    let first = listed_type(&m, "studio-render", |_| true).await;
    assert_eq!(first["label"], "Studio Render");

    std::fs::write(scripts.join("studio_render.js"), script("Studio Render v2")).expect("edit");
    let edited = listed_type(&m, "studio-render", |t| t["label"] == "Studio Render v2").await;
    assert_ne!(edited["etag"], first["etag"], "editing changes the etag");

    std::fs::write(
        scripts.join("broken_type.js"),
        "const JOB_TYPE = {label: 'x',,};\n",
    )
    .expect("write broken");
    let (status, body) = m.get("/api/v3/jobs/type/broken-type").await;
    assert_eq!(status, 400, "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("broken-type") && message.contains("broken_type.js"),
        "names the broken script: {message}"
    );

    // The rest keeps working: listing, fetching and submitting.
    listed_type(&m, "studio-render", |t| t["label"] == "Studio Render v2").await;
    listed_type(&m, "simple-blender-render", |_| true).await;
    let (status, body) = m.post("/api/v3/jobs", &common::echo_sleep_job(1, 0)).await;
    assert_eq!(status, 200, "{body}");
}

/// Registers, signs on and connects a worker on `platform` that runs `blender` tasks.
async fn connect_worker(m: &TestManager, platform: &str) -> tonic::Streaming<v1::Instruction> {
    let mut client = m.grpc().await;
    let registered = client
        .register(v1::RegisterRequest {
            registration_secret: m.secret.clone(),
            name: format!("{platform}-node"),
            platform: platform.into(),
        })
        .await
        .expect("registers")
        .into_inner();
    let (id, token) = (registered.worker_id, registered.token);
    let mut sign_on = sim_worker::sign_on_request(&format!("{platform}-node"), 1);
    sign_on.platform = platform.into();
    sign_on.supported_task_types = vec!["blender".into()];
    client
        .sign_on(authed(sign_on, &id, &token))
        .await
        .expect("signs on");
    client
        .connect_worker(authed(v1::ConnectRequest::default(), &id, &token))
        .await
        .expect("connects")
        .into_inner()
}

#[tokio::test]
async fn paths_submitted_on_windows_reach_each_worker_in_its_own_notation() {
    let m = sim_worker::start_with(|config| {
        let two_way = |linux: &str, windows: &str| castanet_manager::variables::VariableConfig {
            is_twoway: true,
            linux: Some(linux.into()),
            windows: Some(windows.into()),
            ..Default::default()
        };
        config
            .variables
            .insert("project".into(), two_way("/mnt/projects", "P:\\"));
        config
            .variables
            .insert("render".into(), two_way("/mnt/render", "\\\\nas\\render"));
    })
    .await;
    let scripts = m.dir.path().join("scripts");
    std::fs::create_dir_all(&scripts).expect("scripts folder");
    std::fs::write(scripts.join("studio_render.js"), script("Studio Render")).expect("write");

    let submission = json!({
        "name": "windows submission",
        "type": "studio-render",
        "priority": 50,
        "submitter_platform": "windows",
        "settings": { "blendfile": "p:\\Shots\\010\\anim.blend" },
        "metadata": { "output": "\\\\NAS\\render\\shots" },
    });
    let (status, job) = m.post("/api/v3/jobs", &submission).await;
    assert_eq!(status, 200, "{job}");
    assert_eq!(
        job["settings"]["blendfile"],
        "{project}\\Shots\\010\\anim.blend"
    );
    assert_eq!(job["metadata"]["output"], "{render}\\shots");

    let mut linux = connect_worker(&m, "linux").await;
    let task = next_assignment(&mut linux).await;
    let parameters: Value =
        serde_json::from_str(&task.commands[0].parameters_json).expect("JSON parameters");
    assert_eq!(
        parameters,
        json!({
            "exe": "blender",
            "exeArgs": "-b -y",
            "argsBefore": [],
            "blendfile": "/mnt/projects/Shots/010/anim.blend",
            "args": ["--render-output", "/mnt/render/out/######", "--frames", 3],
        })
    );

    // The Linux worker's one slot is busy; the same job again goes to a Windows worker.
    let mut windows = connect_worker(&m, "windows").await;
    let (status, job) = m.post("/api/v3/jobs", &submission).await;
    assert_eq!(status, 200, "{job}");
    let task = next_assignment(&mut windows).await;
    let parameters: Value =
        serde_json::from_str(&task.commands[0].parameters_json).expect("JSON parameters");
    assert_eq!(parameters["exe"], "blender.exe");
    assert_eq!(parameters["blendfile"], "P:\\Shots\\010\\anim.blend");
    assert_eq!(
        parameters["args"],
        json!([
            "--render-output",
            "\\\\nas\\render\\out\\######",
            "--frames",
            3
        ])
    );
}

/// 3,000 tasks in a chain (each waits for the one before), so several batches are stored before
/// the script's output is complete; `mode` spoils the job at its very end.
const CHAIN_SCRIPT: &str = r#"
const JOB_TYPE = { label: "Chain", settings: [{ key: "mode", type: "string", required: true }] };
function compileJob(job) {
  const tasks = [];
  for (let i = 0; i < 3000; i++) {
    const task = author.Task(`step-${i}`, "misc");
    task.addCommand(author.Command("echo", { message: `step ${i}` }));
    if (i > 0) task.addDependency(tasks[i - 1]);
    tasks.push(task);
    job.addTask(task);
  }
  if (job.settings.mode === "cycle") tasks[0].addDependency(tasks[2999]);
  if (job.settings.mode === "nameless") tasks[2999].name = "  ";
}
"#;

fn chain_job(mode: &str) -> Value {
    json!({
        "name": format!("chain {mode}"), "type": "chain", "priority": 50,
        "submitter_platform": "linux", "initial_status": "paused",
        "settings": { "mode": mode },
    })
}

#[tokio::test]
async fn a_job_refused_after_its_first_tasks_were_stored_leaves_nothing_behind() {
    let m = common::start().await;
    let scripts = m.dir.path().join("scripts");
    std::fs::create_dir_all(&scripts).expect("scripts folder");
    std::fs::write(scripts.join("chain.js"), CHAIN_SCRIPT).expect("write");
    listed_type(&m, "chain", |_| true).await;

    let (status, body) = m.post("/api/v3/jobs", &chain_job("nameless")).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|message| message
                .contains("job.tasks[2999]: the task name must be a non-empty string")),
        "{body}"
    );
    let (status, body) = m.post("/api/v3/jobs", &chain_job("cycle")).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|message| message
            .contains("in a cycle, so these could never run: \"step-0\", \"step-1\"")),
        "{body}"
    );
    assert_eq!(m.manager.state.store.count_jobs().await.unwrap(), 0);
    assert_eq!(
        m.manager.state.store.task_status_counts().await.unwrap(),
        vec![]
    );

    // The writer is free again, and a sound job is stored whole, dependencies included.
    let (status, job) = m.post("/api/v3/jobs", &chain_job("sound")).await;
    assert_eq!(status, 200, "{job}");
    let job_id = job["id"].as_str().expect("job id");
    let (_, tasks) = m.get(&format!("/api/v3/jobs/{job_id}/tasks")).await;
    let tasks = tasks["tasks"].as_array().expect("tasks").clone();
    assert_eq!(tasks.len(), 3000);
    for index in [1, 1024, 2999] {
        let (_, task) = m
            .get(&format!(
                "/api/v3/tasks/{}",
                tasks[index]["id"].as_str().unwrap_or("")
            ))
            .await;
        assert_eq!(task["name"], format!("step-{index}"));
        assert_eq!(task["dependencies"], json!([tasks[index - 1]["id"]]));
    }
    let (_, first) = m
        .get(&format!(
            "/api/v3/tasks/{}",
            tasks[0]["id"].as_str().unwrap_or("")
        ))
        .await;
    assert_eq!(first["dependencies"], json!([]));
    m.manager.shutdown().await.unwrap();
}
