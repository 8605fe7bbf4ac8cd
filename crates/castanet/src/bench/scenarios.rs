//! The bench scenarios. Each one drives the in-process manager through its real paths
//! (store + dispatcher + gRPC stream, or REST) and measures from the outside.
use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use castanet_manager::AppState;
use castanet_manager::store::{NewJob, NewTask};
use serde_json::json;

use super::sim::{SimEvent, SimFarm};

/// How long any single wait in a scenario may take before the bench gives up.
const PATIENCE: Duration = Duration::from_secs(120);

async fn next_event(farm: &mut SimFarm) -> anyhow::Result<SimEvent> {
    tokio::time::timeout(PATIENCE, farm.events.recv())
        .await
        .context("no worker event within 120 s")?
        .context("the simulated workers stopped")
}

/// Stores a job of `tasks` independent no-op tasks, as submission would.
pub(super) async fn insert_job(
    state: &AppState,
    tasks: usize,
) -> anyhow::Result<(String, Vec<String>)> {
    let job_id = uuid::Uuid::new_v4().to_string();
    let job = NewJob {
        id: job_id.clone(),
        name: format!("bench {tasks} tasks"),
        job_type: "echo-sleep-test".into(),
        type_etag: String::new(),
        priority: 50,
        status: "queued".into(),
        settings: json!({}),
        metadata: json!({}),
        submitter_platform: "linux".into(),
        worker_tag_id: None,
        storage_checkout_id: String::new(),
        requirements: Default::default(),
        limits: Default::default(),
        depends_on: Vec::new(),
        preview_first_every: None,
        target_task_seconds: None,
        created_at: castanet_manager::store::now(),
    };
    let commands =
        json!([{ "name": "echo", "parameters": { "message": "bench" }, "total_step_count": 1 }])
            .to_string();
    let new_tasks: Vec<NewTask> = (0..tasks)
        .map(|i| NewTask {
            id: uuid::Uuid::new_v4().to_string(),
            name: format!("noop-{i}"),
            task_type: "misc".into(),
            priority: 50,
            commands: commands.clone(),
            steps_total: 1,
            dependencies: Vec::new(),
            frames: None,
        })
        .collect();
    state.store.insert_job(&job, &new_tasks).await?;
    Ok((job_id, new_tasks.into_iter().map(|t| t.id).collect()))
}

/// Task runnable (job committed, dispatcher kicked) → a worker holds the assignment.
pub async fn dispatch_latency(
    state: &AppState,
    farm: &mut SimFarm,
    samples: usize,
) -> anyhow::Result<Vec<Duration>> {
    let mut latencies = Vec::with_capacity(samples);
    for _ in 0..samples {
        let (_, ids) = insert_job(state, 1).await?;
        let start = Instant::now();
        state.dispatcher.kick();
        let mut assigned = None;
        loop {
            match next_event(farm).await? {
                SimEvent::Assigned { task_id, at, .. } if task_id == ids[0] => assigned = Some(at),
                SimEvent::Completed { task_id, .. } if task_id == ids[0] => break,
                _ => {}
            }
        }
        let at = assigned.context("completed without being assigned")?;
        latencies.push(at.duration_since(start));
    }
    Ok(latencies)
}

pub struct Throughput {
    pub tasks: usize,
    pub elapsed: Duration,
    /// Completion sent → next assignment received, per worker.
    pub gaps: Vec<Duration>,
}

/// One job of `tasks` no-op tasks over the whole farm, until every task completed.
pub async fn throughput(
    state: &AppState,
    farm: &mut SimFarm,
    tasks: usize,
) -> anyhow::Result<Throughput> {
    let (_, ids) = insert_job(state, tasks).await?;
    let wanted: std::collections::HashSet<String> = ids.into_iter().collect();
    let start = Instant::now();
    state.dispatcher.kick();
    let mut done = 0;
    let mut last_completion: HashMap<usize, Instant> = HashMap::new();
    let mut gaps = Vec::new();
    while done < tasks {
        match next_event(farm).await? {
            SimEvent::Assigned {
                worker,
                task_id,
                at,
            } if wanted.contains(&task_id) => {
                if let Some(previous) = last_completion.remove(&worker) {
                    gaps.push(at.duration_since(previous));
                }
            }
            SimEvent::Completed {
                worker,
                task_id,
                sent_at,
            } if wanted.contains(&task_id) => {
                done += 1;
                last_completion.insert(worker, sent_at);
            }
            _ => {}
        }
    }
    Ok(Throughput {
        tasks,
        elapsed: start.elapsed(),
        gaps,
    })
}

/// One worker runs a job of `tasks` no-op tasks: completion sent → next task received.
pub async fn gap(
    state: &AppState,
    farm: &mut SimFarm,
    tasks: usize,
) -> anyhow::Result<Vec<Duration>> {
    let run = throughput(state, farm, tasks).await?;
    Ok(run.gaps)
}

/// Cancel request sent over REST → the worker running the task receives AbortTask.
pub async fn cancel_latency(
    state: &AppState,
    farm: &mut SimFarm,
    base_url: &str,
    samples: usize,
) -> anyhow::Result<Vec<Duration>> {
    let http = reqwest::Client::new();
    farm.hold.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut latencies = Vec::with_capacity(samples);
    for _ in 0..samples {
        let (job_id, ids) = insert_job(state, 1).await?;
        state.dispatcher.kick();
        loop {
            if let SimEvent::Assigned { task_id, .. } = next_event(farm).await?
                && task_id == ids[0]
            {
                break;
            }
        }
        let start = Instant::now();
        let response = http
            .post(format!("{base_url}/api/v3/jobs/{job_id}/setstatus"))
            .json(&json!({ "status": "cancel-requested", "reason": "bench" }))
            .send()
            .await?;
        if !response.status().is_success() {
            bail!("cancel answered {}", response.status());
        }
        loop {
            if let SimEvent::Aborted { task_id, at } = next_event(farm).await?
                && task_id == ids[0]
            {
                latencies.push(at.duration_since(start));
                break;
            }
        }
    }
    farm.hold.store(false, std::sync::atomic::Ordering::Relaxed);
    Ok(latencies)
}

/// `POST /api/v3/jobs` of a `simple-blender-render` job of `frames` frames, one frame per
/// task, submitted paused so the farm does not start on it: compile in QuickJS + store in
/// SQLite. Returns the job type, the number of tasks and the time.
pub async fn compile_and_store(
    base_url: &str,
    frames: u64,
) -> anyhow::Result<(&'static str, u64, Duration)> {
    let http = reqwest::Client::new();
    let (job_id, elapsed) = submit_blender_job(&http, base_url, frames, "paused").await?;
    let count = count_tasks(&http, base_url, &job_id).await?;
    Ok(("simple-blender-render", count, elapsed))
}

/// POSTs a `simple-blender-render` job of frames 1..=`frames`, one frame per task, and
/// reads the answer. Returns the job id and the time from sending to the whole answer.
pub async fn submit_blender_job(
    http: &reqwest::Client,
    base_url: &str,
    frames: u64,
    initial_status: &str,
) -> anyhow::Result<(String, Duration)> {
    let settings = json!({
        "frames": format!("1-{frames}"), "chunk_size": 1,
        "render_output_root": "/render", "add_path_components": 0,
        "render_output_path": "/render/bench/{timestamp}/######",
        "blendfile": "/projects/bench.blend", "fps": 24.0, "format": "PNG",
        "image_file_extension": ".png", "has_previews": false, "scene": "Scene",
    });
    let body = json!({
        "name": format!("bench {frames} frames"),
        "type": "simple-blender-render",
        "priority": 50,
        "submitter_platform": "linux",
        "initial_status": initial_status,
        "settings": settings,
        "metadata": {},
    });
    let start = Instant::now();
    let response = http
        .post(format!("{base_url}/api/v3/jobs"))
        .json(&body)
        .send()
        .await?;
    let status = response.status();
    let text = response.text().await?;
    let elapsed = start.elapsed();
    if !status.is_success() {
        bail!("submitting failed: {status}: {text}");
    }
    let job: serde_json::Value = serde_json::from_str(&text)?;
    let job_id = job["id"].as_str().context("the answer names no job id")?;
    Ok((job_id.to_string(), elapsed))
}

/// How many tasks the job has, per `GET /api/v3/jobs/{id}/tasks`.
pub async fn count_tasks(
    http: &reqwest::Client,
    base_url: &str,
    job_id: &str,
) -> anyhow::Result<u64> {
    let tasks: serde_json::Value = http
        .get(format!("{base_url}/api/v3/jobs/{job_id}/tasks"))
        .send()
        .await?
        .json()
        .await?;
    Ok(tasks["tasks"].as_array().map(|t| t.len()).unwrap_or(0) as u64)
}

/// Resident memory of this process (manager and simulated workers), in MiB.
pub fn rss_mib() -> Option<f64> {
    memory_mib("self", "VmRSS:")
}

/// A memory figure of /proc/`pid`/status (e.g. `VmRSS:`, `VmHWM:` for the peak), in MiB.
pub fn memory_mib(pid: &str, field: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}
