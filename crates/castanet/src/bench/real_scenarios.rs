//! The real path: a `castanet manager` process and real `castanet worker` processes on
//! loopback, jobs submitted over REST as a user submits them.
//!
//! `real-workers`: submit → first task started on an idle farm, then the tasks/s of one big
//! job of `exec /bin/true` tasks, with each task's time on its worker split into steps
//! (from the workers' timing records) and the CPU time of every process.
//! `submit-http`: one 100,000-frame `simple-blender-render` job POSTed to a manager process.
use std::collections::HashSet;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::api_scenarios::call;
use super::processes::{BENCH_JOB_TYPE_NAME, CpuTime, ManagerProcess, TaskRecord, WorkerProcess};
use super::scenarios::{count_tasks, memory_mib, submit_blender_job};
use super::{p50_p99, percentiles};

/// The shape of the real farm.
pub struct RealFarmShape {
    pub workers: usize,
    pub slots: u32,
    /// Tasks of the throughput job.
    pub tasks: usize,
    /// Single-task jobs for the submit → start latency.
    pub samples: usize,
}

/// How long the farm gets to come up, and one job to finish.
const FARM_LIMIT: Duration = Duration::from_secs(60);
const JOB_LIMIT: Duration = Duration::from_secs(600);
/// How often the job's status is read while waiting for it to complete. The time a job
/// took comes from its tasks' timing records instead (the last final update
/// acknowledged), so this polling costs the manager little and measures nothing.
const POLL_EVERY: Duration = Duration::from_millis(20);

/// A manager process, its workers and the timing records they report.
struct RealFarm {
    _dir: tempfile::TempDir,
    manager: ManagerProcess,
    workers: Vec<WorkerProcess>,
    records: mpsc::UnboundedReceiver<TaskRecord>,
    http: reqwest::Client,
}

impl RealFarm {
    async fn start(shape: &RealFarmShape) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir().context("creating a temporary directory")?;
        let manager = ManagerProcess::start(&dir.path().join("manager"))?;
        eprintln!(
            "manager on {} (log: {})",
            manager.url,
            manager.log.display()
        );
        let (sender, records) = mpsc::unbounded_channel();
        let mut workers = Vec::with_capacity(shape.workers);
        for n in 1..=shape.workers {
            let name = format!("bench-worker-{n}");
            let data = dir.path().join(&name);
            workers.push(WorkerProcess::start(
                &manager,
                &data,
                &name,
                shape.slots,
                sender.clone(),
            )?);
        }
        let farm = Self {
            _dir: dir,
            manager,
            workers,
            records,
            http: reqwest::Client::new(),
        };
        farm.wait_for_awake_workers(shape.workers).await?;
        Ok(farm)
    }

    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.manager.url);
        call(&self.http, reqwest::Method::GET, &url, None).await
    }

    async fn wait_for_awake_workers(&self, count: usize) -> anyhow::Result<()> {
        let deadline = Instant::now() + FARM_LIMIT;
        loop {
            let list = self.get("/api/v3/worker-mgt/workers").await?;
            let awake = list["workers"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|w| w["status"] == "awake")
                .count();
            if awake >= count {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("only {awake} of {count} workers came up within {FARM_LIMIT:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Submits a bench-exec job of `tasks` tasks; returns its id.
    async fn submit(&self, tasks: usize) -> anyhow::Result<String> {
        let body = json!({
            "name": format!("bench {tasks} × /bin/true"),
            "type": BENCH_JOB_TYPE_NAME,
            "priority": 50,
            "submitter_platform": "linux",
            "settings": { "tasks": tasks, "exe": "/bin/true" },
            "metadata": {},
        });
        let url = format!("{}/api/v3/jobs", self.manager.url);
        let job = call(&self.http, reqwest::Method::POST, &url, Some(&body)).await?;
        Ok(job["id"].as_str().context("no job id")?.to_string())
    }

    /// Waits until the manager shows the job completed.
    async fn wait_completed(&self, job_id: &str) -> anyhow::Result<()> {
        let deadline = Instant::now() + JOB_LIMIT;
        loop {
            let job = self.get(&format!("/api/v3/jobs/{job_id}")).await?;
            match job["status"].as_str() {
                Some("completed") => return Ok(()),
                Some(status @ ("failed" | "canceled")) => bail!("the bench job ended {status}"),
                _ => {}
            }
            if Instant::now() > deadline {
                bail!("the bench job did not complete within {JOB_LIMIT:?}");
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    /// The timing records of `count` tasks of `job_id` (others are skipped).
    async fn records_of(&mut self, job_id: &str, count: usize) -> anyhow::Result<Vec<TaskRecord>> {
        let mut found = Vec::with_capacity(count);
        let deadline = tokio::time::Instant::now() + FARM_LIMIT;
        while found.len() < count {
            let record = tokio::time::timeout_at(deadline, self.records.recv())
                .await
                .with_context(|| format!("{} of {count} timing records came", found.len()))?
                .context("every worker's log ended")?;
            if record.job_id == job_id {
                found.push(record);
            }
        }
        Ok(found)
    }

    fn cpu(&self) -> anyhow::Result<(CpuTime, CpuTime)> {
        let manager = CpuTime::of(self.manager.pid())?;
        let mut workers = CpuTime::default();
        for worker in &self.workers {
            let cpu = CpuTime::of(worker.pid())?;
            workers.own += cpu.own;
            workers.children += cpu.children;
        }
        Ok((manager, workers))
    }

    fn stop(self) -> anyhow::Result<()> {
        for worker in self.workers {
            worker.stop()?;
        }
        self.manager.stop()
    }
}

fn unix_micros(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

fn micros(us: i64) -> Duration {
    Duration::from_micros(u64::try_from(us).unwrap_or(0))
}

/// `castanet bench --scenario real-workers`.
pub async fn real_workers(shape: &RealFarmShape) -> anyhow::Result<Value> {
    let mut farm = RealFarm::start(shape).await?;
    // One warm-up job over every slot: connections open, programs paged in.
    let slots = shape.workers * shape.slots as usize;
    let warm_up = farm.submit(slots).await?;
    farm.wait_completed(&warm_up).await?;
    farm.records_of(&warm_up, slots).await?;

    let (mut to_assigned, mut to_started) = (Vec::new(), Vec::new());
    for _ in 0..shape.samples {
        let sent = unix_micros(SystemTime::now());
        let job = farm.submit(1).await?;
        let [record] = &farm.records_of(&job, 1).await?[..] else {
            bail!("expected one timing record");
        };
        to_assigned.push(micros(record.received_unix_us - sent));
        to_started.push(micros(record.received_unix_us + record.spawn_us - sent));
        farm.wait_completed(&job).await?;
    }

    let cpu_before = farm.cpu()?;
    let start = Instant::now();
    let job = farm.submit(shape.tasks).await?;
    // Done when the last task's final update was acknowledged (applied by the manager).
    let records = farm.records_of(&job, shape.tasks).await?;
    let elapsed = start.elapsed();
    let cpu_after = farm.cpu()?;
    farm.wait_completed(&job).await?;
    let distinct: HashSet<&str> = records.iter().map(|r| r.task_id.as_str()).collect();
    if distinct.len() != shape.tasks {
        bail!(
            "{} timing records name only {} distinct tasks",
            records.len(),
            distinct.len()
        );
    }
    let manager_rss = memory_mib(&farm.manager.pid().to_string(), "VmHWM:");
    farm.stop()?;

    let manager_cpu = cpu_after.0.since(cpu_before.0);
    let worker_cpu = cpu_after.1.since(cpu_before.1);
    let steps = |step: fn(&TaskRecord) -> i64| {
        percentiles(records.iter().map(|r| micros(step(r))).collect())
    };
    let share = |cpu: Duration| {
        json!({
            "seconds": (cpu.as_secs_f64() * 1000.0).round() / 1000.0,
            "percent_of_one_core": (1000.0 * cpu.as_secs_f64() / elapsed.as_secs_f64()).round() / 10.0,
        })
    };
    Ok(json!({
        "workers": shape.workers,
        "slots_per_worker": shape.slots,
        "tasks": shape.tasks,
        "seconds": elapsed.as_secs_f64(),
        "tasks_per_second": (shape.tasks as f64 / elapsed.as_secs_f64()).round(),
        "submit_to_assigned": percentiles(to_assigned),
        "submit_to_started": percentiles(to_started),
        "per_task_on_worker": {
            "assigned_to_spawned": steps(|r| r.spawn_us),
            "spawned_to_commands_ended": steps(|r| r.ended_us - r.spawn_us),
            "commands_ended_to_log_stored": steps(|r| r.log_stored_us - r.ended_us),
            "log_stored_to_acknowledged": steps(|r| r.acknowledged_us - r.log_stored_us),
            "assigned_to_acknowledged": steps(|r| r.acknowledged_us),
        },
        "cpu": {
            "manager": share(manager_cpu.own),
            "workers": share(worker_cpu.own),
            "task_programs": share(worker_cpu.children),
        },
        "manager_peak_rss_mib": manager_rss,
    }))
}

/// `castanet bench --scenario submit-http`: the job POSTed to a manager process, timed from
/// sending the request to having read the whole answer.
pub async fn submit_http(frames: u64) -> anyhow::Result<Value> {
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let manager = ManagerProcess::start(dir.path())?;
    let http = reqwest::Client::new();
    let before = CpuTime::of(manager.pid())?;
    let (job_id, elapsed) = submit_blender_job(&http, &manager.url, frames, "queued").await?;
    let cpu = CpuTime::of(manager.pid())?.since(before);
    let peak_rss = memory_mib(&manager.pid().to_string(), "VmHWM:");
    let tasks = count_tasks(&http, &manager.url, &job_id).await?;
    manager.stop()?;
    Ok(json!({
        "job_type": "simple-blender-render",
        "frames": frames,
        "tasks": tasks,
        "seconds": elapsed.as_secs_f64(),
        "manager_cpu_seconds": cpu.own.as_secs_f64(),
        "manager_peak_rss_mib": peak_rss,
    }))
}

/// Table rows of the real-path scenarios.
pub fn rows(result: &Value, rows: &mut Vec<(String, String)>) {
    if let Some(real) = result.get("real_workers") {
        rows.push((
            format!(
                "real workers: {} × {} slots, {} × /bin/true",
                real["workers"], real["slots_per_worker"], real["tasks"]
            ),
            format!("{} tasks/s", real["tasks_per_second"]),
        ));
        rows.push((
            "real: submit → first task started p50 / p99".into(),
            p50_p99(&real["submit_to_started"]),
        ));
        let steps = &real["per_task_on_worker"];
        for (step, name) in [
            ("assigned_to_spawned", "assigned → spawned"),
            ("spawned_to_commands_ended", "spawned → program done"),
            ("commands_ended_to_log_stored", "program done → log stored"),
            (
                "log_stored_to_acknowledged",
                "log stored → final update acknowledged",
            ),
        ] {
            rows.push((
                format!("real: per task, {name} p50 / p99"),
                p50_p99(&steps[step]),
            ));
        }
        let cpu = &real["cpu"];
        rows.push((
            "real: CPU % of a core, manager / workers / task programs".into(),
            format!(
                "{} / {} / {} %",
                cpu["manager"]["percent_of_one_core"],
                cpu["workers"]["percent_of_one_core"],
                cpu["task_programs"]["percent_of_one_core"]
            ),
        ));
    }
    if let Some(submit) = result.get("submit_http") {
        rows.push((
            format!(
                "POST over HTTP to a manager process ({} tasks)",
                submit["tasks"]
            ),
            format!("{:.2} s", submit["seconds"].as_f64().unwrap_or_default()),
        ));
    }
}
