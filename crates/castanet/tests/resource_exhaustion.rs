//! Full disks under a running farm of real `castanet` processes (issue 19, part 3): the
//! manager's database disk, its storage root (task logs) and a worker's data directory each
//! fill up on a small tmpfs while marker tasks run and write log lines. Expected: clear
//! errors (507 for submissions that cannot be stored, 503 from `/readyz`, naming why), no
//! update or log line lost — what the manager cannot store waits on the worker and arrives
//! once the filler file is gone — every job completes, every log is whole with no line
//! twice, the database passes `PRAGMA integrity_check`, and nothing needed a restart.
//!
//! Mounting a tmpfs needs root; elsewhere each test says so and passes.
mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::full_disk::{Tmpfs, check_marker_log, start_worker_logging_to};
use common::{Api, ManagerProcess, WorkerProcess, completed, markers, sqlite_integrity_check};
use serde_json::{Value, json};

/// Ticks of the long marker tasks (× 0.2 s): long enough to fill a disk while they run.
const LONG_TICKS: u32 = 40;

/// Long task names make long log lines, so the text a worker holds back while the manager
/// cannot store it soon spans more than one page of the log file.
fn long_label(prefix: &str) -> String {
    format!("{prefix}-{}", "x".repeat(150))
}

/// A manager config in `dir` with `extra` TOML lines, and the marker job type installed.
fn write_config(dir: &Path, extra: &str) {
    let text = format!("registration_secret = \"full-disk\"\n{extra}");
    std::fs::write(dir.join("castanet-manager.toml"), text).expect("config");
    markers::install_job_type(dir);
}

/// POST a JSON body; the status and the JSON answer.
async fn post(api: &Api, path: &str, body: &Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}{path}", api.url))
        .json(body)
        .send()
        .await
        .expect("POST");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn readyz(api: &Api) -> (u16, Value) {
    let response = reqwest::get(format!("{}/readyz", api.url))
        .await
        .expect("GET /readyz");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// A job big enough to need new database pages, submitted paused (it is only ballast).
fn ballast_job() -> Value {
    json!({
        "name": "ballast", "type": "echo-sleep-test", "priority": 50,
        "submitter_platform": "linux", "initial_status": "paused",
        "settings": { "message": "ballast", "sleep_duration_seconds": 1, "sleep_repeats": 300 },
    })
}

/// Polls `check` every 50 ms until it gives a value, failing with `what` after `limit`.
async fn poll<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until every task of `job` is active (its run started on a worker).
async fn wait_all_active(api: &Api, job: &str) {
    api.wait_for_tasks(job, Duration::from_secs(30), |tasks| {
        tasks.iter().all(|t| t["status"] == "active")
    })
    .await;
}

/// Waits until the markers file shows every task of `label` (`count` tasks) ended.
async fn wait_runs_ended(markers: &Path, label: &str, count: u32) {
    poll(
        "the marker runs end",
        Duration::from_secs(40),
        || async move {
            let runs = markers::runs(markers);
            let ended = (1..=count).all(|i| {
                runs.get(&format!("{label}-{i}"))
                    .is_some_and(|r| r.iter().any(|run| run.ended))
            });
            ended.then_some(())
        },
    )
    .await;
}

/// Every task of `job` (marker tasks of `ticks`) has a whole log and ran exactly once.
async fn check_job_logs(api: &Api, job: &str, markers_file: &Path, ticks: u32) {
    let runs = markers::runs(markers_file);
    for task in api.tasks(job).await {
        let name = task["name"].as_str().expect("task name");
        let id = task["id"].as_str().expect("task id");
        let log = api.task_log(id).await;
        if let Err(fault) = check_marker_log(&log, name, ticks) {
            panic!("log of {name}: {fault}\n{log}");
        }
        let count = runs.get(name).map_or(0, Vec::len);
        assert_eq!(count, 1, "{name} ran {count} times");
    }
}

/// The process is still the one started at the beginning (never restarted, never crashed).
fn assert_running(child: &mut std::process::Child, what: &str) {
    let exited = child.try_wait().expect("try_wait");
    assert!(exited.is_none(), "{what} exited: {exited:?}");
}

/// Checks that the manager and the workers are the processes started at the beginning, stops
/// them, and checks the database's integrity.
fn stop_unrestarted_farm(
    mut manager: ManagerProcess,
    mut workers: Vec<WorkerProcess>,
    database: &Path,
) {
    assert_running(&mut manager.child, "the manager");
    for worker in &mut workers {
        assert_running(&mut worker.child, &worker.name.clone());
    }
    for worker in workers {
        worker.stop();
    }
    manager.stop();
    assert_eq!(sqlite_integrity_check(database), "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_database_disk_refuses_submissions_and_loses_no_worker_update() {
    let dir = tempfile::tempdir().expect("temp dir");
    let tmpfs = match Tmpfs::mount(&dir.path().join("db"), "40m") {
        Ok(tmpfs) => tmpfs,
        Err(why) => return eprintln!("skipped: cannot mount a tmpfs here ({why})"),
    };
    let database = tmpfs.dir.join("castanet.sqlite");
    write_config(
        dir.path(),
        &format!("database = {:?}\n", database.display()),
    );
    let manager = ManagerProcess::start(dir.path(), "127.0.0.1:0");
    let api = &Api::new(&manager.url);
    let workers: Vec<WorkerProcess> = (1..=2)
        .map(|k| {
            let name = format!("w{k}");
            let log = dir.path().join(format!("{name}.log"));
            start_worker_logging_to(&manager, &dir.path().join(&name), &name, 2, &log)
        })
        .collect();
    api.wait_connected(2, Duration::from_secs(30)).await;
    assert_eq!(readyz(api).await.0, 200);

    let markers_file = dir.path().join("markers");
    let label = long_label("db");
    let job = markers::submit(api, &markers_file, &label, 4, LONG_TICKS).await;
    wait_all_active(api, &job).await;

    let filler = tmpfs.fill();
    // The WAL file keeps room a failed transaction had taken, so small writes can still
    // succeed for a while: submit ballast until one is refused, then write tags until
    // those are refused too (the WAL cannot grow any more).
    let (status, body) = poll(
        "a submission refused",
        Duration::from_secs(30),
        || async move {
            let (status, body) = post(api, "/api/v3/jobs", &ballast_job()).await;
            (status != 200).then_some((status, body))
        },
    )
    .await;
    assert_eq!(status, 507, "{body}");
    assert_eq!(body["code"], 507, "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains("database disk is full"), "{message}");
    let mut tag = 0;
    poll("small writes refused", Duration::from_secs(30), || {
        tag += 1;
        let body = json!({ "name": format!("while-full-{tag}") });
        async move {
            let (status, _) = post(api, "/api/v3/worker-mgt/tags", &body).await;
            (status == 507).then_some(())
        }
    })
    .await;
    let (status, body) = readyz(api).await;
    assert_eq!(status, 503, "{body}");
    let reason = body["message"].as_str().unwrap_or_default();
    assert!(
        reason.contains("not ready")
            && reason.contains("database")
            && (reason.contains("free") || reason.contains("full")),
        "{reason}"
    );

    // The runs end on the workers while their results cannot be stored: the manager must
    // still count them as running, the workers holding the results back.
    wait_runs_ended(&markers_file, &label, 4).await;
    let (status, _) = post(api, "/api/v3/jobs", &ballast_job()).await;
    assert_eq!(status, 507, "still full");
    let tasks = api.tasks(&job).await;
    let held = tasks.iter().filter(|t| t["status"] == "active").count();
    eprintln!("runs ended while the database disk was full; {held} of 4 results held back");
    assert_eq!(held, 4, "results stored while the disk was full? {tasks:?}");

    filler.remove();
    api.wait_for_job(&job, Duration::from_secs(30), completed)
        .await;
    check_job_logs(api, &job, &markers_file, LONG_TICKS).await;
    // The workers were told why their updates were not stored.
    let told = (1..=2).any(|k| {
        std::fs::read_to_string(dir.path().join(format!("w{k}.log")))
            .is_ok_and(|log| log.contains("the manager's database disk is full"))
    });
    assert!(told, "no worker heard that the database disk is full");
    let (status, body) = readyz(api).await;
    assert_eq!(status, 200, "{body}");
    // Submissions work again, and run, without a restart.
    let after = markers::submit(api, &markers_file, "db-after", 2, 3).await;
    api.wait_for_job(&after, Duration::from_secs(30), completed)
        .await;
    check_job_logs(api, &after, &markers_file, 3).await;

    stop_unrestarted_farm(manager, workers, &database);
}

/// The log files of `job` on disk that already hold worker output.
fn logs_with_output(jobs_root: &Path, job: &str) -> usize {
    let dir = jobs_root.join(format!("job-{}", &job[..4])).join(job);
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .filter(|entry| {
            std::fs::read_to_string(entry.path()).is_ok_and(|text| text.contains(" tick "))
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_storage_root_keeps_task_logs_on_the_workers_until_space_returns() {
    let dir = tempfile::tempdir().expect("temp dir");
    let tmpfs = match Tmpfs::mount(&dir.path().join("storage"), "8m") {
        Ok(tmpfs) => tmpfs,
        Err(why) => return eprintln!("skipped: cannot mount a tmpfs here ({why})"),
    };
    write_config(
        dir.path(),
        &format!("storage_root = {:?}\n", tmpfs.dir.display()),
    );
    let manager = ManagerProcess::start(dir.path(), "127.0.0.1:0");
    let api = &Api::new(&manager.url);
    let workers: Vec<WorkerProcess> = (1..=2)
        .map(|k| {
            let name = format!("w{k}");
            WorkerProcess::start(&manager, &dir.path().join(&name), &name, 2)
        })
        .collect();
    api.wait_connected(2, Duration::from_secs(30)).await;

    let markers_file = dir.path().join("markers");
    let label = long_label("logs");
    let job = markers::submit(api, &markers_file, &label, 4, LONG_TICKS).await;
    // Every log file has a partly used last page when the disk fills: appends that fit in
    // it still succeed, longer ones are cut short by the full disk.
    let jobs_root = tmpfs.dir.join("jobs");
    poll(
        "every task logs output",
        Duration::from_secs(30),
        || async { (logs_with_output(&jobs_root, &job) == 4).then_some(()) },
    )
    .await;

    let filler = tmpfs.fill();
    // The storage check's outcome is reused for a second.
    let (status, body) = poll(
        "/readyz sees the full storage root",
        Duration::from_secs(10),
        || async {
            let (status, body) = readyz(api).await;
            (status != 200).then_some((status, body))
        },
    )
    .await;
    assert_eq!(status, 503, "{body}");
    let reason = body["message"].as_str().unwrap_or_default();
    assert!(
        reason.contains("storage directory") && reason.contains("No space left"),
        "{reason}"
    );
    // Its tasks' logs could not be stored either: refused, naming the directory.
    let (status, body) = post(api, "/api/v3/jobs", &ballast_job()).await;
    assert_eq!(status, 507, "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("storage directory") && message.contains("is full"),
        "{message}"
    );

    // The runs end on the workers; their logs cannot be stored, so the workers hold the
    // lines (and the results, which follow the log) and the manager counts them running.
    wait_runs_ended(&markers_file, &label, 4).await;
    let tasks = api.tasks(&job).await;
    let held = tasks.iter().filter(|t| t["status"] == "active").count();
    eprintln!("runs ended while the storage root was full; {held} of 4 results held back");
    assert_eq!(
        held, 4,
        "results reported before their logs were stored? {tasks:?}"
    );
    let spooled = (1..=2)
        .filter_map(|k| std::fs::read_dir(dir.path().join(format!("w{k}/log-spool"))).ok())
        .flat_map(|entries| entries.flatten())
        .count();
    eprintln!("{spooled} task logs spooled on the workers' disks");

    filler.remove();
    api.wait_for_job(&job, Duration::from_secs(30), completed)
        .await;
    check_job_logs(api, &job, &markers_file, LONG_TICKS).await;
    let (status, body) = readyz(api).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = post(api, "/api/v3/jobs", &ballast_job()).await;
    assert_eq!(status, 200, "{body}");

    stop_unrestarted_farm(manager, workers, &dir.path().join("castanet.sqlite"));
}

/// Regular files left under `dir` (recursively), but not the filler.
fn files_under(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_under(&path));
        } else if path.file_name().is_some_and(|name| name != "filler") {
            let size = entry.metadata().map_or(0, |m| m.len());
            found.push(format!("{} ({size} bytes)", path.display()));
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_with_a_full_data_dir_keeps_working_and_says_so() {
    let dir = tempfile::tempdir().expect("temp dir");
    let tmpfs = match Tmpfs::mount(&dir.path().join("w1"), "1m") {
        Ok(tmpfs) => tmpfs,
        Err(why) => return eprintln!("skipped: cannot mount a tmpfs here ({why})"),
    };
    write_config(dir.path(), "");
    let mut manager = ManagerProcess::start(dir.path(), "127.0.0.1:0");
    let api = &Api::new(&manager.url);
    let worker_log = dir.path().join("w1.log");
    let mut worker = start_worker_logging_to(&manager, &tmpfs.dir, "w1", 2, &worker_log);
    api.wait_connected(1, Duration::from_secs(30)).await;

    // Journal, process records and spool cannot be written: the manager is there, so the
    // results still arrive, and the worker says what it cannot keep.
    let filler = tmpfs.fill();
    let markers_file = dir.path().join("markers");
    let job = markers::submit(api, &markers_file, "data-dir", 3, 10).await;
    api.wait_for_job(&job, Duration::from_secs(30), completed)
        .await;
    check_job_logs(api, &job, &markers_file, 10).await;
    assert_running(&mut worker.child, "the worker");
    let said = std::fs::read_to_string(&worker_log).unwrap_or_default();
    let complaints: Vec<&str> = said
        .lines()
        .filter(|line| line.contains("WARN") || line.contains("ERROR"))
        .collect();
    eprintln!(
        "the worker said while its data dir was full:\n{}",
        complaints.join("\n")
    );
    let journal_error = "cannot write the update journal";
    assert_eq!(said.matches(journal_error).count(), 1, "said once: {said}");

    // Room again: the data directory is used again, and what the full disk left behind
    // (records, half-written files) is gone once the tasks are done.
    filler.remove();
    let after = markers::submit(api, &markers_file, "data-dir-after", 2, 3).await;
    api.wait_for_job(&after, Duration::from_secs(30), completed)
        .await;
    check_job_logs(api, &after, &markers_file, 3).await;
    let journal = tmpfs.dir.join("pending-updates.bin");
    poll("the journal settles", Duration::from_secs(10), || async {
        std::fs::metadata(&journal)
            .is_ok_and(|m| m.len() == 0)
            .then_some(())
    })
    .await;
    // Process records are emptied, and kept for the next command, once the tasks are done.
    let left: Vec<String> = files_under(&tmpfs.dir)
        .into_iter()
        .filter(|f| !f.contains("credentials.toml") && !f.contains("pending-updates.bin ("))
        .filter(|f| !(f.contains("/processes/record-") && f.ends_with("(0 bytes)")))
        .collect();
    assert!(left.is_empty(), "left in the data directory: {left:?}");
    let said = std::fs::read_to_string(&worker_log).unwrap_or_default();
    assert!(
        said.contains("the update journal is written again"),
        "{said}"
    );
    assert_running(&mut worker.child, "the worker");
    assert_running(&mut manager.child, "the manager");
    worker.stop();
    manager.stop();
}
