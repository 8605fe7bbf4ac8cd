//! `soak`: the farm at scale. A `castanet manager` process stores `--soak-jobs` jobs
//! submitted over REST (one of `--soak-big-tasks` tasks, the others of `--soak-tasks`:
//! 1,000,000 tasks by default) before any worker exists; then `--soak-workers` simulated
//! workers, each on its own gRPC connection, run tasks for `--soak-seconds` while the
//! dashboard's two heaviest pages are requested. Then the manager is stopped and started
//! again on the same database and port, and the time until every worker has signed on
//! again and received a new task is measured. On PostgreSQL a standby manager then joins
//! and the active one is killed (`soak_failover`).
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use super::api_scenarios::{call, stored_tasks, task_counts};
use super::processes::{BENCH_JOB_TYPE_NAME, ManagerProcess};
use super::scenarios::memory_mib;
use super::sim::{self, SimEvent, SimFarm};
use super::soak_failover;
use super::{p50_p99, percentiles};

/// The shape of the soak.
pub struct SoakShape {
    pub workers: usize,
    pub jobs: usize,
    pub tasks_per_job: usize,
    pub big_job_tasks: usize,
    pub seconds: u64,
    /// Samples of each page.
    pub samples: usize,
    /// A PostgreSQL URL for the manager's database; its own SQLite file when `None`.
    pub database: Option<String>,
}

/// How long the farm gets to reattach after the restart before the scenario gives up.
const REATTACH_LIMIT: Duration = Duration::from_secs(300);
/// How long a probe job may wait for its worker.
const PROBE_LIMIT: Duration = Duration::from_secs(60);
/// The task type of the probe jobs: only the probe worker runs it, so a probe measures
/// dispatch to an idle worker while every other worker is busy.
const PROBE_TASK_TYPE: &str = "soak-probe";

pub async fn soak(shape: &SoakShape) -> anyhow::Result<Value> {
    if shape.jobs == 0 || shape.workers == 0 {
        bail!("the soak needs at least one job and one worker");
    }
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let manager_dir = dir.path().join("manager");
    let manager = ManagerProcess::start_on(&manager_dir, shape.database.as_deref())?;
    eprintln!(
        "manager on {} (log: {})",
        manager.url,
        manager.log.display()
    );
    let rss = RssWatch::start(manager.pid());
    let http = reqwest::Client::new();

    let storing = Instant::now();
    let big = submit(&http, &manager.url, shape.big_job_tasks, "big", "misc").await?;
    for n in 1..shape.jobs {
        let name = n.to_string();
        submit(&http, &manager.url, shape.tasks_per_job, &name, "misc").await?;
        if n % 100 == 0 {
            eprintln!("  {n} of {} jobs stored", shape.jobs);
        }
    }
    let store_seconds = storing.elapsed().as_secs_f64();
    let tasks_stored = stored_tasks(&http, &manager.url).await?;
    let rss_stored = rss.now();

    // One busy worker that can run the stored tasks (it keeps the one it is given), so
    // they are not impossible while the probe worker, which cannot, is the only other.
    let mut holder = sim::new_farm();
    holder.hold.store(true, Ordering::Relaxed);
    sim::grow(&mut holder, &manager.url, &manager.secret, 1, 1).await?;
    let mut probe = sim::new_farm();
    probe.task_types = vec![PROBE_TASK_TYPE.into()];
    sim::grow(&mut probe, &manager.url, &manager.secret, 1, 1).await?;
    let idle_dispatch =
        probe_dispatch(&http, &manager.url, &mut probe, shape.samples, None).await?;

    let mut farm = sim::new_farm();
    farm.reconnect = true;
    // On PostgreSQL the workers know the standby's address from the start, as real ones would.
    let standby_listen = match shape.database {
        Some(_) => Some(soak_failover::free_loopback_address()?),
        None => None,
    };
    farm.standby = standby_listen
        .as_ref()
        .map(|listen| format!("http://{listen}"));
    let connecting = Instant::now();
    sim::grow_together(&mut farm, &manager.url, &manager.secret, shape.workers).await?;
    let connect_seconds = connecting.elapsed().as_secs_f64();

    let window = Duration::from_secs(shape.seconds);
    let until = Instant::now() + window;
    let pages = tokio::spawn(sample_pages(
        http.clone(),
        manager.url.clone(),
        big,
        shape.samples,
        until,
    ));
    let busy_dispatch = {
        let (http, url, samples) = (http.clone(), manager.url.clone(), shape.samples);
        tokio::spawn(
            async move { probe_dispatch(&http, &url, &mut probe, samples, Some(until)).await },
        )
    };
    let run = run_farm(&mut farm, window).await?;
    let pages = pages.await.context("the page sampler")??;
    let busy_dispatch = busy_dispatch.await.context("the dispatch probe")??;
    let rss_running = rss.peak_since_reset();
    // Every worker must find work after the restart, even the last to sign on again.
    let counts = task_counts(&http, &manager.url).await?;
    let queued = counts.get("queued").copied().unwrap_or_default();
    if queued < (shape.workers * 20) as i64 {
        bail!(
            "the farm ran out of work during the soak (tasks by status: {counts:?}; {} \
             workers): store more tasks or shorten --soak-seconds",
            shape.workers
        );
    }

    let listen = manager
        .url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let stopping = Instant::now();
    manager.stop()?;
    let stop_seconds = stopping.elapsed().as_secs_f64();
    let restarting = Instant::now();
    let manager = ManagerProcess::start_listening(&manager_dir, &listen)?;
    let listening_seconds = restarting.elapsed().as_secs_f64();
    let rss = RssWatch::start(manager.pid());
    let mut assigned = run.assigned;
    let reattached = wait_reattached(&mut farm, restarting, &mut assigned, "restart").await?;
    let rss_restarted = rss.now();
    let hwm = memory_mib(&manager.pid().to_string(), "VmHWM:");
    let failover = match &standby_listen {
        Some(listen) => {
            let standby_dir = dir.path().join("standby");
            let (active_dir, farm) = (&manager_dir, &mut farm);
            Some(
                soak_failover::fail_over(
                    manager,
                    active_dir,
                    &standby_dir,
                    listen,
                    farm,
                    &mut assigned,
                )
                .await?,
            )
        }
        None => {
            manager.stop()?;
            None
        }
    };

    Ok(json!({
        "workers": shape.workers,
        "jobs": shape.jobs,
        "tasks_stored": tasks_stored,
        "store_seconds": store_seconds,
        "connect_seconds": connect_seconds,
        "run_seconds": window.as_secs_f64(),
        "tasks_completed": run.completed,
        "tasks_per_second": (run.completed as f64 / window.as_secs_f64()).round(),
        "dispatch_under_load": percentiles(run.gaps),
        "probe_dispatch_before_the_farm": idle_dispatch.report(),
        "probe_dispatch_while_running": busy_dispatch.report(),
        // Over the whole soak: each such task ran again.
        "tasks_assigned_twice": assigned.values().filter(|&&n| n > 1).count(),
        "pages": pages,
        "manager_rss_mib": {
            "stored": rss_stored,
            "running_peak": rss_running,
            "after_restart": rss_restarted,
            "restarted_peak": hwm,
        },
        "restart": {
            "stop_seconds": stop_seconds,
            "listening_seconds": listening_seconds,
            "all_signed_on_seconds": reattached.signed_on.as_secs_f64(),
            "first_assignment_seconds": reattached.first_assigned.as_secs_f64(),
            "all_dispatching_seconds": reattached.dispatching.as_secs_f64(),
        },
        "failover": failover,
    }))
}

/// Submits a bench-exec job of `tasks` tasks of `task_type`; returns its id.
async fn submit(
    http: &reqwest::Client,
    url: &str,
    tasks: usize,
    name: &str,
    task_type: &str,
) -> anyhow::Result<String> {
    let body = json!({
        "name": format!("soak {name}"),
        "type": BENCH_JOB_TYPE_NAME,
        "priority": 50,
        "submitter_platform": "linux",
        "settings": { "tasks": tasks, "exe": "/bin/true", "task_type": task_type },
        "metadata": {},
    });
    let job = call(
        http,
        reqwest::Method::POST,
        &format!("{url}/api/v3/jobs"),
        Some(&body),
    )
    .await?;
    Ok(job["id"].as_str().context("no job id")?.to_string())
}

/// Submit → assigned of one-task probe jobs, one after the other (up to `samples`, and
/// until `until`): the `POST` over REST, the job's compile and store, the dispatcher
/// finding the one runnable task among all those stored, and the gRPC instruction.
/// Probe times: from the job's `POST` to its worker having the task, and the `POST`'s own
/// answer time (compile and store) within it.
#[derive(Default)]
struct ProbeTimes {
    assigned: Vec<Duration>,
    submitted: Vec<Duration>,
}

async fn probe_dispatch(
    http: &reqwest::Client,
    url: &str,
    probe: &mut SimFarm,
    samples: usize,
    until: Option<Instant>,
) -> anyhow::Result<ProbeTimes> {
    let mut times = ProbeTimes::default();
    while times.assigned.len() < samples && until.is_none_or(|until| Instant::now() < until) {
        let name = format!("probe {}", times.assigned.len());
        let start = Instant::now();
        submit(http, url, 1, &name, PROBE_TASK_TYPE).await?;
        times.submitted.push(start.elapsed());
        loop {
            let event = tokio::time::timeout(PROBE_LIMIT, probe.events.recv())
                .await
                .with_context(|| format!("the probe worker got no task within {PROBE_LIMIT:?}"))?
                .context("the probe worker stopped")?;
            if let SimEvent::Assigned { at, .. } = event {
                times.assigned.push(at.saturating_duration_since(start));
                break;
            }
        }
    }
    Ok(times)
}

impl ProbeTimes {
    fn report(self) -> Value {
        let mut report = percentiles(self.assigned);
        if report.is_object() {
            report["post_answered"] = percentiles(self.submitted);
        }
        report
    }
}

/// What the simulated farm did in the run window.
struct FarmRun {
    completed: usize,
    /// Completion sent → the same worker's next task received.
    gaps: Vec<Duration>,
    /// Assignments per task id.
    assigned: HashMap<String, u32>,
}

/// Follows the farm for `window`. Events carry their own times, so events still queued
/// from before the window (the workers ran while others connected) and those read late
/// are told apart by time, not by when they are read.
async fn run_farm(farm: &mut SimFarm, window: Duration) -> anyhow::Result<FarmRun> {
    let start = Instant::now();
    let end = start + window;
    let mut run = FarmRun {
        completed: 0,
        gaps: Vec::new(),
        assigned: HashMap::new(),
    };
    let mut last_sent: Vec<Option<Instant>> = vec![None; farm.size];
    let mut follow = |event: SimEvent, run: &mut FarmRun| match event {
        SimEvent::Assigned {
            worker,
            task_id,
            at,
        } => {
            let sent = last_sent.get_mut(worker).and_then(Option::take);
            if let Some(sent) = sent.filter(|&sent| sent >= start && at < end) {
                run.gaps.push(at.saturating_duration_since(sent));
            }
            *run.assigned.entry(task_id).or_default() += 1;
        }
        SimEvent::Completed {
            worker, sent_at, ..
        } => {
            if sent_at >= start && sent_at < end {
                run.completed += 1;
            }
            if let Some(slot) = last_sent.get_mut(worker) {
                *slot = Some(sent_at);
            }
        }
        SimEvent::Aborted { .. } | SimEvent::Reattached { .. } => {}
    };
    let deadline = tokio::time::Instant::from_std(end);
    loop {
        tokio::select! {
            event = farm.events.recv() => follow(event.context("the simulated farm stopped")?, &mut run),
            _ = tokio::time::sleep_until(deadline) => break,
        }
    }
    while let Ok(event) = farm.events.try_recv() {
        follow(event, &mut run);
    }
    Ok(run)
}

/// When every worker had signed on again, and had received a task, after a restart or a
/// fail-over.
pub(super) struct Reattached {
    /// The first task a worker received on its new instruction stream.
    pub first_assigned: Duration,
    pub signed_on: Duration,
    pub dispatching: Duration,
}

/// Follows the farm from `since` (the manager's stop or death) until every worker has signed
/// on again and received a task on its new stream; counts every assignment in `assigned`.
/// `after` names the event in the error.
pub(super) async fn wait_reattached(
    farm: &mut SimFarm,
    since: Instant,
    assigned: &mut HashMap<String, u32>,
    after: &str,
) -> anyhow::Result<Reattached> {
    let deadline = tokio::time::Instant::now() + REATTACH_LIMIT;
    let mut signed_on = vec![false; farm.size];
    let mut dispatched = vec![false; farm.size];
    let (mut signed_count, mut dispatched_count) = (0, 0);
    let (mut all_signed_on, mut first_assigned) = (None, None);
    while dispatched_count < farm.size || signed_count < farm.size {
        let event = tokio::select! {
            event = farm.events.recv() => event.context("the simulated farm stopped")?,
            _ = tokio::time::sleep_until(deadline) => bail!(
                "after the {after} only {signed_count} of {} workers signed on again and \
                 {dispatched_count} received a task within {REATTACH_LIMIT:?}",
                farm.size
            ),
        };
        match event {
            SimEvent::Reattached { worker, at }
                if at >= since && !std::mem::replace(&mut signed_on[worker], true) =>
            {
                signed_count += 1;
                if signed_count == farm.size {
                    all_signed_on = Some(at.duration_since(since));
                }
            }
            SimEvent::Assigned {
                worker,
                task_id,
                at,
            } => {
                *assigned.entry(task_id).or_default() += 1;
                // A worker's events arrive in order, so one that signed on again got this
                // on its new stream: not a message of the old manager still in flight.
                if signed_on[worker] && !std::mem::replace(&mut dispatched[worker], true) {
                    dispatched_count += 1;
                    first_assigned.get_or_insert(at.duration_since(since));
                }
            }
            _ => {}
        }
    }
    Ok(Reattached {
        first_assigned: first_assigned.unwrap_or_default(),
        signed_on: all_signed_on.unwrap_or_default(),
        dispatching: since.elapsed(),
    })
}

/// Answer times of the dashboard's jobs page (the newest 100 jobs and their task counts, as
/// the page asks) and of a page of 100 in the middle of the big job's tasks, while the farm
/// runs; up to `samples` of each before `until`.
async fn sample_pages(
    http: reqwest::Client,
    url: String,
    big: String,
    samples: usize,
    until: Instant,
) -> anyhow::Result<Value> {
    let get = reqwest::Method::GET;
    let mut jobs_page = Vec::with_capacity(samples);
    let mut task_page = Vec::with_capacity(samples);
    let task_page_url = format!("{url}/api/v3/jobs/{big}/tasks/page?offset=25000&limit=100");
    while jobs_page.len() < samples && Instant::now() < until {
        let start = Instant::now();
        let list = call(
            &http,
            get.clone(),
            &format!("{url}/api/v3/jobs?limit=100&offset=0"),
            None,
        )
        .await?;
        let ids: Vec<&str> = list["jobs"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|job| job["id"].as_str())
            .collect();
        let counts = format!("{url}/api/v3/jobs/task-counts?ids={}", ids.join(","));
        call(&http, get.clone(), &counts, None).await?;
        jobs_page.push(start.elapsed());

        let start = Instant::now();
        call(&http, get.clone(), &task_page_url, None).await?;
        task_page.push(start.elapsed());
    }
    let mut jobs = percentiles(jobs_page);
    jobs["request"] = json!("GET /jobs?limit=100 + GET /jobs/task-counts of those 100");
    let mut tasks = percentiles(task_page);
    tasks["request"] = json!("GET /jobs/{id}/tasks/page, 100 from the middle of the big job");
    Ok(json!([jobs, tasks]))
}

/// Samples a process's resident memory every 200 ms on its own thread.
struct RssWatch {
    pid: String,
    peak: Arc<std::sync::Mutex<f64>>,
    stop: Arc<AtomicBool>,
}

impl RssWatch {
    fn start(pid: u32) -> Self {
        let watch = Self {
            pid: pid.to_string(),
            peak: Default::default(),
            stop: Default::default(),
        };
        let (pid, peak, stop) = (watch.pid.clone(), watch.peak.clone(), watch.stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let (Some(now), Ok(mut peak)) = (memory_mib(&pid, "VmRSS:"), peak.lock()) {
                    *peak = peak.max(now);
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        watch
    }

    /// Resident memory now, in MiB.
    fn now(&self) -> Option<f64> {
        memory_mib(&self.pid, "VmRSS:")
    }

    /// The highest sample since the last call, in MiB.
    fn peak_since_reset(&self) -> Option<f64> {
        let mut peak = self.peak.lock().ok()?;
        Some(std::mem::take(&mut *peak))
    }
}

impl Drop for RssWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Table rows of the soak.
pub fn rows(result: &Value, rows: &mut Vec<(String, String)>) {
    let Some(soak) = result.get("soak") else {
        return;
    };
    let mib = |v: &Value| format!("{:.0} MiB", v.as_f64().unwrap_or_default());
    let stored = &soak["tasks_stored"];
    rows.push((
        format!(
            "soak: store {stored} tasks in {} jobs over REST",
            soak["jobs"]
        ),
        format!(
            "{:.1} s",
            soak["store_seconds"].as_f64().unwrap_or_default()
        ),
    ));
    rows.push((
        format!("soak: connect {} workers", soak["workers"]),
        format!(
            "{:.1} s",
            soak["connect_seconds"].as_f64().unwrap_or_default()
        ),
    ));
    rows.push((
        format!(
            "soak: throughput ({} workers, {stored} tasks stored)",
            soak["workers"]
        ),
        format!("{} tasks/s", soak["tasks_per_second"]),
    ));
    rows.push((
        "soak: dispatch under load (completion → next task) p50 / p99".into(),
        p50_p99(&soak["dispatch_under_load"]),
    ));
    for (key, when) in [
        ("probe_dispatch_before_the_farm", "before the farm connects"),
        ("probe_dispatch_while_running", "farm running"),
    ] {
        let probe = &soak[key];
        rows.push((
            format!("soak: probe job submit → assigned, {when}, p50 / p99 (POST answered)"),
            format!("{} ({})", p50_p99(probe), p50_p99(&probe["post_answered"])),
        ));
    }
    for page in soak["pages"].as_array().into_iter().flatten() {
        rows.push((
            format!(
                "soak: {} p50 / p99",
                page["request"].as_str().unwrap_or("?")
            ),
            p50_p99(page),
        ));
    }
    let rss = &soak["manager_rss_mib"];
    rows.push((
        "soak: manager RSS stored / running peak / after restart".into(),
        format!(
            "{} / {} / {}",
            mib(&rss["stored"]),
            mib(&rss["running_peak"]),
            mib(&rss["after_restart"])
        ),
    ));
    let restart = &soak["restart"];
    let seconds = |key: &str| format!("{:.2} s", restart[key].as_f64().unwrap_or_default());
    rows.push((
        "soak: restart stop / listening / all signed on / all dispatching".into(),
        format!(
            "{} / {} / {} / {}",
            seconds("stop_seconds"),
            seconds("listening_seconds"),
            seconds("all_signed_on_seconds"),
            seconds("all_dispatching_seconds")
        ),
    ));
    let failover = &soak["failover"];
    if failover.is_object() {
        let seconds = |key: &str| format!("{:.2} s", failover[key].as_f64().unwrap_or_default());
        rows.push((
            "soak: fail-over (SIGKILL) → standby ready / first task / all signed on / all dispatching"
                .into(),
            format!(
                "{} / {} / {} / {}",
                seconds("standby_ready_seconds"),
                seconds("first_assignment_seconds"),
                seconds("all_signed_on_seconds"),
                seconds("all_dispatching_seconds")
            ),
        ));
    }
    rows.push((
        "soak: tasks assigned more than once".into(),
        soak["tasks_assigned_twice"].to_string(),
    ));
}
