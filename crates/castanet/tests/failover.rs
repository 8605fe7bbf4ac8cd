//! A standby manager takes over through the real binaries: two `castanet manager` processes
//! share one PostgreSQL database (one active, one standby answering reads and refusing writes),
//! three `castanet worker` processes are given both (`--manager a,b`) and run a 200-task job.
//! The active manager is SIGKILLed mid-job: the standby takes over within 10 s, the workers
//! reattach to it with their running tasks, and the job completes with every task run to its
//! end exactly once and never two runs of one task alive at once. The killed manager, started
//! again, is a standby. Needs a PostgreSQL server (`CASTANET_TEST_POSTGRES`; `cargo xtask
//! test` starts one) and says it skips otherwise.
mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::markers::{self, now, runs};
use common::{Api, ManagerProcess, WorkerProcess, completed};

const TASKS: usize = 200;
const SECRET: &str = "failover";

/// A manager in `dir` on `database`, with the marker job type; logs go to `storage`, which
/// the managers share (on a real farm: the shared storage).
fn start_manager(dir: &Path, database: &str, storage: &Path) -> ManagerProcess {
    let config = dir.join("castanet-manager.toml");
    if !config.exists() {
        std::fs::write(
            &config,
            format!(
                "registration_secret = \"{SECRET}\"\ndatabase = \"{database}\"\n\
                 storage_root = \"{}\"\n[retries]\nbackoff_base_seconds = 0\n",
                storage.display()
            ),
        )
        .expect("config");
        markers::install_job_type(dir);
    }
    ManagerProcess::start(dir, "127.0.0.1:0")
}

/// `GET /readyz`: (status, body).
async fn readiness(url: &str) -> (u16, String) {
    match reqwest::get(format!("{url}/readyz")).await {
        Ok(response) => (
            response.status().as_u16(),
            response.text().await.unwrap_or_default(),
        ),
        Err(e) => (0, e.to_string()),
    }
}

fn ended(markers: &Path) -> usize {
    runs(markers)
        .values()
        .filter(|task_runs| task_runs.iter().any(|run| run.ended))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_takes_over_mid_job_and_no_task_runs_twice_at_once() {
    let Ok(server) = std::env::var("CASTANET_TEST_POSTGRES") else {
        println!("skipped: no CASTANET_TEST_POSTGRES server (cargo xtask postgres starts one)");
        return;
    };
    let database = common::postgres::new_database(&server).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let storage = dir.path().join("storage");
    let (dir_a, dir_b) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::create_dir_all(&dir_a).expect("dir a");
    std::fs::create_dir_all(&dir_b).expect("dir b");
    let active = start_manager(&dir_a, &database, &storage);
    let standby = start_manager(&dir_b, &database, &storage);
    // The standby names the active manager once it has read who that is.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = readiness(&standby.url).await;
        assert_eq!(status, 503, "{body}");
        assert!(body.contains("standby"), "{body}");
        if body.contains(&active.url) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the standby never named the active manager: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let refused = reqwest::Client::new()
        .post(format!("{}/api/v3/worker-mgt/tags", standby.url))
        .json(&serde_json::json!({"name": "not-on-a-standby"}))
        .send()
        .await
        .expect("an answer");
    assert_eq!(refused.status().as_u16(), 503);

    let managers = format!("{},{}", active.url, standby.url);
    let workers: Vec<WorkerProcess> = (1..=3)
        .map(|n| {
            let data = dir.path().join(format!("w{n}"));
            WorkerProcess::start_with(&managers, SECRET, &data, &format!("w{n}"), 4)
        })
        .collect();
    let api = Api::new(&active.url);
    api.wait_connected(3, Duration::from_secs(30)).await;
    let marker_file = dir.path().join("markers");
    // 200 tasks of 0.6 s on 12 slots: about 12 s of work.
    let job = markers::submit(&api, &marker_file, "run", TASKS as u32, 3).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while ended(&marker_file) < TASKS / 4 {
        assert!(Instant::now() < deadline, "the job did not get going");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let killed_at = now();
    let mut killed = active;
    common::signal(&killed.child, libc::SIGKILL);
    common::wait_exit(&mut killed.child, Duration::from_secs(10));
    let taken_over = Instant::now();
    loop {
        if readiness(&standby.url).await.0 == 200 {
            break;
        }
        assert!(
            taken_over.elapsed() < Duration::from_secs(10),
            "the standby did not take over within 10 s: {:?}",
            readiness(&standby.url).await
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let takeover_seconds = taken_over.elapsed().as_secs_f64();
    println!("the standby took over {takeover_seconds:.3} s after the kill");
    // Reads went on meanwhile: the dashboard and the API answer on the new active manager.
    let api = Api::new(&standby.url);
    assert!(api.text("/").await.contains("<"), "the dashboard is served");
    api.wait_for_job(&job, Duration::from_secs(120), completed)
        .await;

    let by_task = runs(&marker_file);
    assert_eq!(by_task.len(), TASKS, "every task ran");
    let faults = markers::overlaps(&by_task);
    assert!(faults.is_empty(), "{faults:#?}");
    for (task, task_runs) in &by_task {
        let ends = task_runs.iter().filter(|run| run.ended).count();
        assert_eq!(
            ends, 1,
            "{task} ran to its end {ends} times: {task_runs:#?}"
        );
    }
    let reruns: usize = by_task.values().map(|r| r.len() - 1).sum();
    println!("{reruns} task runs were started again after the kill at {killed_at:.3}");
    // The first task the new active manager handed out: runs that start between the kill and
    // the takeover were handed out by the killed manager just before it died.
    let first_new_run = by_task
        .values()
        .flatten()
        .map(|run| run.start)
        .filter(|start| *start > killed_at + takeover_seconds)
        .fold(f64::INFINITY, f64::min);
    let first_assignment = first_new_run - killed_at;
    println!("the new active manager's first task started {first_assignment:.3} s after the kill");
    assert!(first_assignment < 10.0, "{first_assignment:.3} s");

    // The killed manager, started again, finds the lock taken: it is a standby now.
    let restarted = start_manager(&dir_a, &database, &storage);
    let (status, body) = readiness(&restarted.url).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("standby"), "{body}");
    drop(workers);
    restarted.stop();
    standby.stop();
}
