//! The chaos run: a manager and 4 real workers (2 slots each) run marker jobs
//! (`common/markers.rs`) while a seeded schedule SIGKILLs and restarts the manager,
//! SIGKILLs and restarts workers, SIGSTOPs workers past the worker timeout and resumes
//! them, and cuts workers' networks (veth down) for shorter and longer than the fence.
//! Afterwards: every job completed, no task lost, no two runs of one task alive at once, every aborted run explained by a fault, each task's log whole
//! (its completed run's first and last line, no line twice) and the database intact.
//!
//! A 75-second run with a fixed seed is part of `cargo xtask test`; `cargo xtask chaos
//! --minutes N [--seed S]` runs a long one (`CASTANET_CHAOS_SECONDS`/`_SEED`). The network
//! lives in namespaces made here (root: `ip netns`); without them the run stays on
//! loopback and says that it cuts no network.
mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::farm_net::FarmNet as Net;
use common::markers::{self, now, overlaps, runs};
use common::{ManagerProcess, WorkerProcess, signal};
use serde_json::Value;

const WORKERS: usize = 4;
const SLOTS: u32 = 2;
const WORKER_TIMEOUT_SECONDS: u64 = 6;
/// The fence the manager announces: half the worker timeout.
const FENCE_SECONDS: f64 = WORKER_TIMEOUT_SECONDS as f64 / 2.0;
const PORT: u16 = 18_080;
const TASKS_PER_JOB: u32 = 12;
/// Jobs kept in flight at once.
const JOBS_IN_FLIGHT: usize = 2;

/// The short run in `cargo xtask test`: about 16 faults in 75 s, a fixed seed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_chaos_run() {
    chaos(Duration::from_secs(75), 20_261_204).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "minutes long; run by `cargo xtask chaos`"]
async fn chaos_run() {
    let seconds = std::env::var("CASTANET_CHAOS_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(600);
    let seed = std::env::var("CASTANET_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| now().to_bits());
    chaos(Duration::from_secs(seconds), seed).await;
}

/// SplitMix64: a seeded schedule that replays exactly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn seconds(&mut self, from: f64, to: f64) -> Duration {
        let unit = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        Duration::from_secs_f64(from + (to - from) * unit)
    }
}

/// The farm under test: where things run and how to (re)start them.
struct Farm {
    dir: PathBuf,
    net: Option<Net>,
    manager: Option<ManagerProcess>,
    workers: Vec<Option<WorkerProcess>>,
    secret: String,
    api_url: String,
    http: reqwest::Client,
}

impl Farm {
    fn start(dir: &Path) -> Self {
        std::fs::write(
            dir.join("castanet-manager.toml"),
            format!(
                "registration_secret = \"chaos\"\nworker_timeout_seconds = {WORKER_TIMEOUT_SECONDS}\n\
                 task_timeout_seconds = 60\nstartup_grace_seconds = 10\n\
                 [retries]\nbackoff_base_seconds = 0\n"
            ),
        )
        .expect("config");
        markers::install_job_type(dir);
        // CASTANET_CHAOS_LOOPBACK=1 runs without namespaces even where they could be made.
        let loopback = std::env::var_os("CASTANET_CHAOS_LOOPBACK").is_some();
        let net = match Net::create(WORKERS).and_then(|net| {
            if loopback {
                Err("CASTANET_CHAOS_LOOPBACK is set".to_string())
            } else {
                Ok(net)
            }
        }) {
            Ok(net) => Some(net),
            Err(e) => {
                eprintln!(
                    "chaos: NO NETWORK CUTS in this run: network namespaces cannot be made here ({e})"
                );
                None
            }
        };
        let mut farm = Farm {
            dir: dir.to_path_buf(),
            net,
            manager: None,
            workers: (0..WORKERS).map(|_| None).collect(),
            secret: "chaos".into(),
            api_url: String::new(),
            http: reqwest::Client::new(),
        };
        farm.start_manager();
        for k in 1..=WORKERS {
            farm.start_worker(k);
        }
        farm
    }

    fn start_manager(&mut self) {
        let manager = match &self.net {
            Some(net) => {
                let ns = net.manager_ns();
                let listen = format!("0.0.0.0:{PORT}");
                let manager = ManagerProcess::start_wrapped(
                    &self.dir,
                    &listen,
                    &["ip", "netns", "exec", &ns],
                );
                self.api_url = format!("http://10.214.0.2:{PORT}");
                manager
            }
            None => {
                let listen = if self.api_url.is_empty() {
                    "127.0.0.1:0".to_string()
                } else {
                    self.api_url.trim_start_matches("http://").to_string()
                };
                let manager = ManagerProcess::start(&self.dir, &listen);
                self.api_url = manager.url.clone();
                manager
            }
        };
        self.manager = Some(manager);
    }

    fn start_worker(&mut self, k: usize) {
        let data_dir = self.dir.join(format!("w{k}"));
        let name = format!("chaos-{k}");
        let worker = match &self.net {
            Some(net) => {
                let ns = net.worker_ns(k);
                WorkerProcess::start_wrapped_at(
                    &format!("http://10.214.{k}.1:{PORT}"),
                    &self.secret,
                    &data_dir,
                    &name,
                    SLOTS,
                    &["ip", "netns", "exec", &ns],
                )
            }
            None => WorkerProcess::start_with(&self.api_url, &self.secret, &data_dir, &name, SLOTS),
        };
        self.workers[k - 1] = Some(worker);
    }

    /// Undoes a fault; returns the worker it concerned.
    fn undo(&mut self, action: Undo) -> usize {
        match action {
            Undo::RestartWorker(k) => {
                self.start_worker(k);
                k
            }
            Undo::Resume(k) => {
                if let Some(w) = &self.workers[k - 1] {
                    signal(&w.child, libc::SIGCONT);
                }
                k
            }
            Undo::Reconnect(k) => {
                if let Some(net) = &self.net {
                    net.set_link(k, true);
                }
                k
            }
        }
    }

    async fn get(&self, path: &str) -> Option<Value> {
        let response = self
            .http
            .get(format!("{}{path}", self.api_url))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .ok()?;
        if !response.status().is_success() {
            return None;
        }
        response.json().await.ok()
    }

    async fn submit(&self, markers: &Path, label: &str, ticks: u32) -> Option<String> {
        let body = serde_json::json!({
            "name": label, "type": "marker-run", "priority": 50, "submitter_platform": "linux",
            "settings": {
                "markers": markers.display().to_string(), "label": label,
                "tasks": TASKS_PER_JOB, "ticks": ticks,
            },
        });
        let response = self
            .http
            .post(format!("{}/api/v3/jobs", self.api_url))
            .timeout(Duration::from_secs(10))
            .json(&body)
            .send()
            .await
            .ok()?;
        if !response.status().is_success() {
            return None;
        }
        let job: Value = response.json().await.ok()?;
        job["id"].as_str().map(str::to_string)
    }

    async fn job_status(&self, job: &str) -> Option<String> {
        let job = self.get(&format!("/api/v3/jobs/{job}")).await?;
        job["status"].as_str().map(str::to_string)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum FaultKind {
    KillManager,
    KillWorker,
    StopWorker,
    ShortCut,
    LongCut,
}

/// A fault and the span of time it may explain aborted runs in.
#[derive(Debug)]
struct Fault {
    kind: FaultKind,
    from: f64,
    until: f64,
}

/// Something to undo later.
#[derive(Clone, Copy)]
enum Undo {
    RestartWorker(usize),
    Resume(usize),
    Reconnect(usize),
}

async fn chaos(length: Duration, seed: u64) {
    eprintln!("chaos: seed {seed}, {} s", length.as_secs());
    let dir = tempfile::tempdir().expect("temp dir");
    let markers_file = dir.path().join("markers");
    let mut farm = Farm::start(dir.path());
    // Two streams, so the fault schedule does not depend on how many jobs got submitted.
    let mut rng = Rng(seed);
    let mut job_rng = Rng(seed ^ 0x5DEE_CE66_D1CE_4E5B);
    let mut faults: Vec<Fault> = Vec::new();
    let mut undo: Vec<(Instant, Undo)> = Vec::new();
    // Workers busy with a fault (stopped, cut off, dead) are not picked again meanwhile.
    let mut busy = [false; WORKERS];
    let mut jobs: Vec<String> = Vec::new();
    let mut open_jobs: Vec<String> = Vec::new();
    let mut round: Vec<FaultKind> = Vec::new();
    let started = Instant::now();
    let mut next_fault = started + rng.seconds(3.0, 5.0);
    let mut next_poll = started;

    while started.elapsed() < length {
        let now_i = Instant::now();
        // Due undos first.
        let (due, later): (Vec<_>, Vec<_>) = undo.into_iter().partition(|(at, _)| *at <= now_i);
        undo = later;
        for (_, action) in due {
            busy[farm.undo(action) - 1] = false;
        }
        if now_i >= next_poll {
            next_poll = now_i + Duration::from_millis(500);
            let mut still_open = Vec::new();
            for job in open_jobs.drain(..) {
                match farm.job_status(&job).await.as_deref() {
                    Some("completed") => {}
                    Some("failed" | "canceled") => {
                        panic!("chaos: job {job} ended badly (seed {seed})")
                    }
                    _ => still_open.push(job),
                }
            }
            open_jobs = still_open;
            while open_jobs.len() < JOBS_IN_FLIGHT {
                let label = format!("j{}", jobs.len() + 1);
                let ticks = 5 + job_rng.below(11) as u32;
                match farm.submit(&markers_file, &label, ticks).await {
                    Some(id) => {
                        jobs.push(id.clone());
                        open_jobs.push(id);
                    }
                    None => break, // the manager is down; later
                }
            }
        }
        if now_i >= next_fault {
            next_fault = now_i + rng.seconds(3.0, 6.0);
            if round.is_empty() {
                round = vec![
                    FaultKind::KillWorker,
                    FaultKind::KillManager,
                    FaultKind::StopWorker,
                    FaultKind::KillWorker,
                    FaultKind::ShortCut,
                    FaultKind::LongCut,
                ];
                if farm.net.is_none() {
                    round.retain(|k| !matches!(k, FaultKind::ShortCut | FaultKind::LongCut));
                }
                // A seeded shuffle.
                for i in (1..round.len()).rev() {
                    round.swap(i, rng.below(i as u64 + 1) as usize);
                }
            }
            let kind = round.pop().unwrap_or(FaultKind::KillWorker);
            let free: Vec<usize> = (1..=WORKERS).filter(|k| !busy[k - 1]).collect();
            let k = free
                .get(rng.below(free.len() as u64) as usize)
                .copied()
                .unwrap_or(0);
            let from = now();
            let (until, worker) = match kind {
                FaultKind::KillManager => {
                    if let Some(mut m) = farm.manager.take() {
                        let _ = m.child.kill();
                        let _ = m.child.wait();
                    }
                    farm.start_manager();
                    (now(), 0)
                }
                _ if k == 0 => continue,
                FaultKind::KillWorker => {
                    if let Some(w) = farm.workers[k - 1].take() {
                        w.kill();
                    }
                    busy[k - 1] = true;
                    let back = rng.seconds(0.0, 1.5);
                    undo.push((Instant::now() + back, Undo::RestartWorker(k)));
                    (now() + back.as_secs_f64(), k)
                }
                FaultKind::StopWorker => {
                    if let Some(w) = &farm.workers[k - 1] {
                        signal(&w.child, libc::SIGSTOP);
                    }
                    busy[k - 1] = true;
                    let back = Duration::from_secs(WORKER_TIMEOUT_SECONDS + 2);
                    undo.push((Instant::now() + back, Undo::Resume(k)));
                    (now() + back.as_secs_f64(), k)
                }
                FaultKind::ShortCut | FaultKind::LongCut => {
                    let Some(net) = &farm.net else { continue };
                    net.set_link(k, false);
                    busy[k - 1] = true;
                    let back = if kind == FaultKind::ShortCut {
                        rng.seconds(0.5, FENCE_SECONDS * 0.6)
                    } else {
                        rng.seconds(
                            WORKER_TIMEOUT_SECONDS as f64 + 1.0,
                            WORKER_TIMEOUT_SECONDS as f64 + 5.0,
                        )
                    };
                    undo.push((Instant::now() + back, Undo::Reconnect(k)));
                    (now() + back.as_secs_f64(), k)
                }
            };
            eprintln!(
                "chaos: {:>6.1} s {kind:?} worker {worker}",
                started.elapsed().as_secs_f64()
            );
            faults.push(Fault { kind, from, until });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Calm: undo everything, let the jobs finish.
    for (_, action) in undo.drain(..) {
        farm.undo(action);
    }
    let calm_since = now();
    let deadline = Instant::now() + Duration::from_secs(180);
    for job in &jobs {
        loop {
            match farm.job_status(job).await.as_deref() {
                Some("completed") => break,
                Some(other @ ("failed" | "canceled")) => {
                    panic!("chaos: job {job} {other} (seed {seed})")
                }
                other => assert!(
                    Instant::now() < deadline,
                    "chaos: job {job} still {other:?} 180 s after the faults stopped (seed {seed})"
                ),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    check(&farm, &markers_file, &jobs, &faults, calm_since, seed).await;
}

/// The checks after the run.
async fn check(
    farm: &Farm,
    markers_file: &Path,
    jobs: &[String],
    faults: &[Fault],
    calm: f64,
    seed: u64,
) {
    let by_task = runs(markers_file);
    let expected = jobs.len() * TASKS_PER_JOB as usize;
    assert_eq!(by_task.len(), expected, "tasks lost (seed {seed})");
    let problems = overlaps(&by_task);
    assert!(problems.is_empty(), "seed {seed}: {problems:#?}");

    // Every run but the one that counted (the last to end) was stopped, or had its result
    // lost, by a fault: it last wrote while one was on (a worker's fence fires within its
    // fence time after the manager went quiet; a worker killed right after a run ended
    // never reported it).
    let margin = FENCE_SECONDS + 2.0;
    let mut reruns = 0;
    for (task, task_runs) in &by_task {
        let counted = task_runs.iter().rposition(|r| r.ended);
        assert!(
            counted.is_some(),
            "seed {seed}: {task} never ran to its end"
        );
        for (_, run) in task_runs
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != counted)
        {
            reruns += 1;
            let explained = faults
                .iter()
                .any(|f| run.last >= f.from - 0.5 && run.last <= f.until + margin)
                || run.last >= calm - 0.5 && run.last <= calm + margin;
            assert!(
                explained,
                "seed {seed}: run {} of {task} stopped at {:.3} with no fault to explain it",
                run.pid, run.last
            );
        }
    }

    // Each task's log holds its completed run's first and last line, and no worker
    // output line twice.
    let tasks_by_name = task_ids(farm, jobs).await;
    for (task, task_runs) in &by_task {
        // The run that counted is the last to end.
        let Some(done) = task_runs.iter().rev().find(|r| r.ended) else {
            continue;
        };
        let Some(id) = tasks_by_name.get(task) else {
            panic!("seed {seed}: task {task} not found in the API");
        };
        let log = task_log(farm, id).await;
        for needle in [
            format!("start {task} {} 0", done.pid),
            format!("end {task} {} ", done.pid),
        ] {
            assert!(
                log.lines().any(|l| l.contains(&needle)),
                "seed {seed}: {task}'s log lacks {needle:?}:\n{log}"
            );
        }
        let mut seen = std::collections::HashSet::new();
        for line in log.lines().filter(|l| l.contains("pid=")) {
            assert!(
                seen.insert(line),
                "seed {seed}: {task}'s log has {line:?} twice:\n{log}"
            );
        }
    }

    let count = |kind: FaultKind| faults.iter().filter(|f| f.kind == kind).count();
    eprintln!(
        "chaos: seed {seed}: {} faults (manager kills {}, worker kills {}, stopped workers {}, \
         network cuts {} short + {} long), {} jobs, {expected} tasks, {reruns} re-runs, \
         lost 0, overlapping runs 0",
        faults.len(),
        count(FaultKind::KillManager),
        count(FaultKind::KillWorker),
        count(FaultKind::StopWorker),
        count(FaultKind::ShortCut),
        count(FaultKind::LongCut),
        jobs.len(),
    );
    let db = farm.dir.join("castanet-manager.sqlite");
    assert_eq!(
        common::sqlite_integrity_check(&db),
        "ok",
        "seed {seed}: integrity check of {}",
        db.display()
    );
}

/// Task name → task id, over all jobs.
async fn task_ids(farm: &Farm, jobs: &[String]) -> BTreeMap<String, String> {
    let mut ids = BTreeMap::new();
    for job in jobs {
        let tasks = farm
            .get(&format!("/api/v3/jobs/{job}/tasks"))
            .await
            .unwrap_or_default();
        for task in tasks["tasks"].as_array().into_iter().flatten() {
            if let (Some(name), Some(id)) = (task["name"].as_str(), task["id"].as_str()) {
                ids.insert(name.to_string(), id.to_string());
            }
        }
    }
    ids
}

async fn task_log(farm: &Farm, id: &str) -> String {
    let Some(info) = farm.get(&format!("/api/v3/tasks/{id}/log")).await else {
        return String::new();
    };
    let Some(url) = info["url"].as_str() else {
        return String::new();
    };
    let url = if url.starts_with("http") {
        url.to_string()
    } else {
        format!("{}{url}", farm.api_url)
    };
    match farm.http.get(url).send().await {
        Ok(response) => response.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}
