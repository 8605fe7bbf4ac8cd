//! Crash consistency (issue 19): the real manager SIGKILLed during a 100,000-task submission,
//! a mass deletion, a Shaman upload and a backup. After a restart on the same files there is
//! the whole thing or none of it, the database passes `PRAGMA integrity_check`, and the
//! manager serves and schedules again.
//!
//! Kills wait for an event where one can be seen (the WAL or a temporary file growing, jobs
//! disappearing); the fixed delays are the chosen fault schedule, fractions of a measured
//! submission. The cases take turns (`TURN`): they would otherwise share the two cores of a
//! CI machine and move each other's kill points.
mod common;
#[path = "common/crash_checks.rs"]
mod crash_checks;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{Api, ManagerProcess, WorkerProcess, completed, signal, wait_exit};
use crash_checks::*;
use serde_json::json;
use tokio::io::AsyncWriteExt;

static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const BIG_JOB_TASKS: u64 = 100_000;
/// Jobs of the mass deletion that run (each with a log per task); every fifth one has a big
/// paused sibling.
const RAN_JOBS: u64 = 30;
const MIB: u64 = 1024 * 1024;

/// When a submission's manager is killed.
#[derive(Clone, Copy, Debug)]
enum KillAt {
    /// Once the WAL holds more than this many bytes: the tasks are being inserted.
    WalPast(u64),
    /// Right after the answer arrived (the WAL is being copied into the database file).
    Answer,
    /// This share of a whole submission's time after the POST was sent.
    Share(f64),
}

/// Submits a 100,000-task job named `name`, kills the manager at `kill`, and returns the
/// manager's answer (the job's id, or why there was none) and the time from the POST to
/// the answer or the kill.
async fn submit_and_kill(
    manager: ManagerProcess,
    dir: &Path,
    name: &str,
    kill: KillAt,
    whole_submission: Duration,
) -> (Result<String, String>, Duration) {
    let url = manager.url.clone();
    let body = render_job(name, BIG_JOB_TASKS as u32, "queued");
    let started = Instant::now();
    let mut post = tokio::spawn(async move { post_job(&url, &body).await });
    let mut answered = None;
    let wal = dir.join("castanet-manager.sqlite-wal");
    match kill {
        KillAt::WalPast(bytes) => {
            wait_until(Duration::from_secs(60), "WAL growing", || {
                size_of(&wal) > bytes
            })
            .await
        }
        KillAt::Answer => answered = Some((&mut post).await.expect("the POST task")),
        KillAt::Share(share) => tokio::time::sleep(whole_submission.mul_f64(share)).await,
    }
    let at = started.elapsed();
    kill_manager(manager);
    let answer = match answered {
        Some(answer) => answer,
        None => post.await.expect("the POST task"),
    };
    (answer, at)
}

/// After a restart: the job named `name` is absent, or stored whole (every task, queued,
/// counted); an answered submission is stored. Returns whether it is stored.
async fn check_submission(
    dir: &Path,
    api: &Api,
    name: &str,
    answer: &Result<String, String>,
) -> bool {
    let db = database(dir);
    let rows = sql(
        &db,
        &format!(
            "SELECT j.id, j.status, j.steps_total,
                (SELECT count(*) FROM tasks t WHERE t.job_id = j.id),
                (SELECT count(*) FROM tasks t WHERE t.job_id = j.id AND t.status = 'queued'),
                (SELECT group_concat(c.status || '=' || c.n) FROM job_task_counts c
                 WHERE c.job_id = j.id)
             FROM jobs j WHERE j.name = '{name}'"
        ),
    );
    let rows: Vec<&str> = rows.lines().collect();
    assert!(rows.len() <= 1, "{name} stored more than once: {rows:?}");
    if let Ok(id) = answer {
        assert!(
            rows.first().is_some_and(|row| row.starts_with(id.as_str())),
            "{name} was answered as {id} but is not stored: {rows:?}"
        );
    }
    let Some(row) = rows.first() else {
        return false;
    };
    let fields: Vec<&str> = row.split('|').collect();
    let whole = BIG_JOB_TASKS.to_string();
    let counted = format!("queued={whole}");
    assert_eq!(
        fields[1..],
        [
            "queued",
            whole.as_str(),
            whole.as_str(),
            whole.as_str(),
            counted.as_str()
        ],
        "{name} is stored, but not whole: {row}"
    );
    let job = api.get(&format!("/api/v3/jobs/{}", fields[0])).await;
    assert_eq!(job["status"], "queued", "{job}");
    true
}

/// The database holds only whole jobs: no task without its job, no job short of tasks.
fn assert_only_whole_jobs(db: &Path) {
    assert_eq!(
        sql_count(
            db,
            "SELECT count(*) FROM tasks WHERE job_id NOT IN (SELECT id FROM jobs)"
        ),
        0,
        "tasks without their job"
    );
    assert_eq!(
        sql_count(
            db,
            &format!(
                "SELECT count(*) FROM jobs j WHERE j.name LIKE 'big-%'
                 AND (SELECT count(*) FROM tasks t WHERE t.job_id = j.id) <> {BIG_JOB_TASKS}"
            )
        ),
        0,
        "a job short of tasks"
    );
    assert_intact(db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100000_task_submission_killed_anywhere_is_stored_whole_or_not_at_all() {
    let _turn = TURN.lock().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let dir = dir.path();
    let mut manager = start_manager(dir);
    // The first kill waits for the WAL to grow past 16 MiB: a 100,000-task job writes about
    // 85 MiB there before it commits, so this kill lands in the middle of the insert (only
    // a fresh WAL shows that: SQLite reuses the file without shrinking it). Then one kill
    // right after the answer, which also measures a whole submission, and kills at shares
    // of it (compiling, inserting, committing).
    let schedule = [
        KillAt::WalPast(16 * MIB),
        KillAt::Answer,
        KillAt::Share(0.2),
        KillAt::Share(0.6),
        KillAt::Share(0.95),
    ];
    let mut whole_submission = Duration::ZERO;
    let mut stored = 0;
    let mut outcomes = Vec::new();
    for (round, kill) in schedule.into_iter().enumerate() {
        let name = format!("big-{round}");
        let (answer, at) = submit_and_kill(manager, dir, &name, kill, whole_submission).await;
        if let KillAt::Answer = kill {
            assert!(answer.is_ok(), "{answer:?}");
            whole_submission = at;
        }
        manager = start_manager(dir);
        let api = Api::new(&manager.url);
        let is_stored = check_submission(dir, &api, &name, &answer).await;
        if let KillAt::WalPast(_) = kill {
            assert!(!is_stored, "killed mid-insert, yet stored");
        }
        stored += usize::from(is_stored);
        assert_only_whole_jobs(&database(dir));
        let listed = api.get("/api/v3/jobs").await;
        assert_eq!(listed["total"], stored, "{listed}");
        outcomes.push(format!(
            "{kill:?} at {at:.2?}: {}, {}",
            if answer.is_ok() {
                "answered"
            } else {
                "no answer"
            },
            if is_stored { "stored whole" } else { "absent" }
        ));
    }
    eprintln!("submission kills (a whole submission took {whole_submission:.2?}):");
    for outcome in &outcomes {
        eprintln!("  {outcome}");
    }

    // A client whose POST got no answer cannot tell whether its job was stored: sending it
    // again stores a new job (a new id) either way, so the farm then holds it twice exactly
    // when the unanswered one was stored whole. Nothing half-stored is ever left to clash.
    let api = Api::new(&manager.url);
    let retried = post_job(
        &manager.url,
        &render_job("big-retry", BIG_JOB_TASKS as u32, "queued"),
    )
    .await
    .expect("a retried submission is stored");
    assert!(check_submission(dir, &api, "big-retry", &Ok(retried)).await);
    assert_only_whole_jobs(&database(dir));

    // The restarted manager schedules: a worker runs a more urgent job to its end.
    let _worker = WorkerProcess::start(&manager, &dir.join("w"), "after-the-kills", 1);
    api.wait_connected(1, Duration::from_secs(30)).await;
    let urgent = post_job(&manager.url, &echo_job("urgent", 1, 90, "queued"))
        .await
        .expect("submitted");
    api.wait_for_job(&urgent, Duration::from_secs(60), completed)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mass_deletion_killed_midway_leaves_whole_jobs_and_finishes_after_a_restart() {
    let _turn = TURN.lock().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let dir = dir.path();
    let db = database(dir);
    let manager = start_manager(dir);
    let api = Api::new(&manager.url);
    let worker = WorkerProcess::start(&manager, &dir.join("w"), "log-writer", 4);
    api.wait_connected(1, Duration::from_secs(30)).await;
    // Jobs that ran (with a task log per task) and big paused ones (3,001 tasks each, whose
    // rows take a while to delete), every one with the number of tasks it must keep.
    let mut tasks_of: BTreeMap<String, u64> = BTreeMap::new();
    for i in 0..RAN_JOBS {
        let id = post_job(
            &manager.url,
            &echo_job(&format!("ran-{i}"), 2, 50, "queued"),
        )
        .await;
        tasks_of.insert(id.expect("submitted"), 3);
        if i % 5 == 0 {
            let big = echo_job(&format!("paused-{i}"), 3000, 50, "paused");
            tasks_of.insert(post_job(&manager.url, &big).await.expect("submitted"), 3001);
        }
    }
    wait_until(Duration::from_secs(90), "the small jobs complete", || {
        sql_count(&db, "SELECT count(*) FROM jobs WHERE status = 'completed'") == RAN_JOBS
    })
    .await;
    assert_eq!(
        job_dirs(dir).len() as u64,
        RAN_JOBS,
        "every job that ran has its task logs"
    );
    let files_of: BTreeMap<&String, Vec<(String, u64)>> = tasks_of
        .keys()
        .map(|id| (id, files_in(&job_dir(dir, id))))
        .collect();

    // Every job so far is selected; one submitted in a later second stays, and runs.
    let bound = chrono::Utc::now();
    let second_after = bound.timestamp() + 1;
    wait_until(Duration::from_secs(2), "the next second", || {
        chrono::Utc::now().timestamp() >= second_after
    })
    .await;
    let keeper = post_job(&manager.url, &echo_job("keeper", 1, 50, "queued"))
        .await
        .expect("submitted");
    api.wait_for_job(&keeper, Duration::from_secs(60), completed)
        .await;
    worker.stop();
    let keeper_files = files_in(&job_dir(dir, &keeper));
    assert!(!keeper_files.is_empty(), "the keeper has task logs");
    let answer = reqwest::Client::new()
        .delete(format!("{}/api/v3/jobs/mass-delete", manager.url))
        .json(&json!({ "last_updated_max": bound.to_rfc3339() }))
        .send()
        .await
        .expect("mass delete");
    assert_eq!(answer.status().as_u16(), 204);
    let asked = Instant::now();
    let all = tasks_of.len() as u64;
    wait_until(
        Duration::from_secs(60),
        "a third of the jobs deleted",
        || sql_count(&db, "SELECT count(*) FROM jobs") <= 1 + all - all / 3,
    )
    .await;
    let killed_after = asked.elapsed();
    kill_manager(manager);

    // As the kill left it: each job whole and marked (with every file it had), or gone with
    // all its rows. Previews would live in the same job directory as the logs.
    let mut gone = 0;
    let mut files_left = 0;
    for (id, tasks) in &tasks_of {
        let row = sql(
            &db,
            &format!(
                "SELECT delete_requested_at IS NOT NULL,
                    (SELECT count(*) FROM tasks WHERE job_id = '{id}') FROM jobs WHERE id = '{id}'"
            ),
        );
        if row.is_empty() {
            gone += 1;
            files_left += usize::from(job_dir(dir, id).exists());
            let rows = sql_count(
                &db,
                &format!("SELECT count(*) FROM tasks WHERE job_id = '{id}'"),
            );
            assert_eq!(rows, 0, "job {id} is gone but {rows} of its tasks are not");
        } else {
            assert_eq!(row, format!("1|{tasks}"), "job {id} is not whole");
            assert_eq!(
                files_in(&job_dir(dir, id)),
                files_of[id],
                "files of job {id}"
            );
        }
    }
    assert_intact(&db);
    assert!(gone > 0 && gone < tasks_of.len(), "{gone} jobs gone");
    eprintln!(
        "mass deletion killed {killed_after:.2?} after the request, with {gone} of {} jobs \
         deleted ({files_left} of them with their files still on disk)",
        tasks_of.len()
    );
    // A kill between a job's rows and its files: the window is too short to hit every time,
    // so one job that ran and is still marked is deleted as the store does it (rows gone and
    // a tombstone in one transaction) while its files stay.
    let tombstoned = stored_job_with_files(dir, tasks_of.keys()).expect("a marked job with files");
    delete_rows_leaving_tombstone(&db, &tombstoned);
    // A folder of a job this database never knew, as a restored older backup leaves: kept.
    let unknown = uuid::Uuid::new_v4().to_string();
    let unknown_dir = plant_job_dir(dir, &unknown);

    let manager = start_manager(dir);
    let api = Api::new(&manager.url);
    wait_until(Duration::from_secs(60), "the marked jobs deleted", || {
        sql_count(&db, "SELECT count(*) FROM jobs") == 1
    })
    .await;
    assert_eq!(
        sql(
            &db,
            "SELECT id, (SELECT count(*) FROM tasks WHERE job_id = jobs.id) FROM jobs"
        ),
        format!("{keeper}|2")
    );
    let listed = api.get("/api/v3/jobs").await;
    assert_eq!(listed["total"], 1, "{listed}");
    let mut kept = vec![keeper.clone(), unknown.clone()];
    kept.sort();
    wait_until(
        Duration::from_secs(20),
        "the files of deleted jobs removed",
        || job_dirs(dir) == kept && sql_count(&db, "SELECT count(*) FROM deleted_job_dirs") == 0,
    )
    .await;
    assert!(!job_dir(dir, &tombstoned).exists());
    assert_eq!(
        files_in(&job_dir(dir, &keeper)),
        keeper_files,
        "the keeper's files"
    );
    assert_eq!(
        files_in(&unknown_dir),
        [(format!("task-{unknown}.txt"), 4)],
        "the unknown job's files"
    );
    assert_intact(&db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shaman_upload_killed_midway_is_not_stored_and_can_be_sent_again() {
    let _turn = TURN.lock().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let dir = dir.path();
    let manager = start_manager(dir);
    let content = noise(32 * MIB as usize, 19);
    let file = dir.join("scene.blend");
    std::fs::write(&file, &content).expect("file");
    let (sha, size) = (sha256_of(&file), content.len());
    let uploading = file_store(dir).join("uploading");
    let blob = file_store(dir)
        .join("stored")
        .join(&sha[..2])
        .join(&sha[2..])
        .join(format!("{size}.blob"));
    let path = format!("/api/v3/shaman/files/{sha}/{size}");

    // Half the body is sent, then nothing: the manager is killed waiting for the rest.
    let mut stream = tokio::net::TcpStream::connect(manager.listen_address())
        .await
        .expect("connect");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/octet-stream\r\n\
         Content-Length: {size}\r\nX-Shaman-Original-Filename: scene.blend\r\n\r\n",
        manager.listen_address()
    );
    stream.write_all(head.as_bytes()).await.expect("head");
    stream
        .write_all(&content[..size / 2])
        .await
        .expect("half the body");
    wait_until(
        Duration::from_secs(30),
        "a quarter of the file received",
        || {
            files_in(&uploading)
                .iter()
                .any(|(_, bytes)| *bytes >= size as u64 / 4)
        },
    )
    .await;
    kill_manager(manager);
    drop(stream);
    assert!(!blob.exists(), "a half upload is in the store");
    let left_by_the_kill = files_in(&uploading);
    assert!(
        !left_by_the_kill.is_empty(),
        "the kill left no temporary file"
    );

    let manager = start_manager(dir);
    let api = Api::new(&manager.url);
    assert_eq!(api.get(&path).await["status"], "unknown");
    let needed = reqwest::Client::new()
        .post(format!(
            "{}/api/v3/shaman/checkout/requirements",
            manager.url
        ))
        .json(&json!({ "files": [{ "sha": sha, "size": size, "path": "scene.blend" }] }))
        .send()
        .await
        .expect("requirements");
    let needed: serde_json::Value = needed.json().await.expect("JSON");
    assert_eq!(needed["files"][0]["status"], "unknown", "{needed}");
    wait_until(
        Duration::from_secs(10),
        "the interrupted upload removed",
        || files_in(&uploading).is_empty(),
    )
    .await;

    let answer = reqwest::Client::new()
        .post(format!("{}{path}", manager.url))
        .body(content)
        .send()
        .await
        .expect("upload");
    assert_eq!(answer.status().as_u16(), 204);
    assert_eq!(api.get(&path).await["status"], "stored");
    assert_eq!(size_of(&blob), size as u64);
    assert_eq!(sha256_of(&blob), sha, "the stored file's checksum");
    assert!(files_in(&uploading).is_empty());
}

/// Links in the checkout of the test below: making them takes a second or two (much longer
/// on a loaded machine), and the request stays well under the 2 MiB body limit.
const CHECKOUT_FILES: usize = 4_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shaman_checkout_killed_midway_is_removed_at_restart() {
    let _turn = TURN.lock().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let dir = dir.path();
    let manager = start_manager(dir);
    // One stored file under many names.
    let file = dir.join("texture.png");
    std::fs::write(&file, b"one texture\n").expect("file");
    let (sha, size) = (sha256_of(&file), size_of(&file));
    let answer = reqwest::Client::new()
        .post(format!("{}/api/v3/shaman/files/{sha}/{size}", manager.url))
        .body(std::fs::read(&file).expect("file"))
        .send()
        .await
        .expect("upload");
    assert_eq!(answer.status().as_u16(), 204);
    let files: Vec<_> = (0..CHECKOUT_FILES)
        .map(|i| json!({ "sha": sha, "size": size, "path": format!("t/{i}.png") }))
        .collect();
    let request = json!({ "checkoutPath": "shot-1", "files": files });
    // A finished checkout, which the restart must leave whole.
    let finished: Vec<_> = (0..10)
        .map(|i| json!({ "sha": sha, "size": size, "path": format!("t/{i}.png") }))
        .collect();
    let finished = json!({ "checkoutPath": "shot-0", "files": finished });
    let (status, body) = create_checkout(manager.url.clone(), finished)
        .await
        .expect("an answer");
    assert_eq!(status, 200, "{body}");
    let checkouts = dir.join("castanet-shared").join("jobs");
    let finished_links = links_in(&checkouts.join("shot-0").join("t"));
    assert_eq!(finished_links.len(), 10);
    let links = checkouts.join("shot-1");
    let post = tokio::spawn(create_checkout(manager.url.clone(), request.clone()));
    wait_until(Duration::from_secs(30), "the links being made", || {
        std::fs::read_dir(links.join("t")).map_or(0, |d| d.count()) >= CHECKOUT_FILES / 10
    })
    .await;
    kill_manager(manager);
    let answer = post.await.expect("the POST task");
    assert!(answer.is_err(), "answered before the kill: {answer:?}");
    let made_at_kill = std::fs::read_dir(links.join("t")).map_or(0, |d| d.count());
    assert!(made_at_kill < CHECKOUT_FILES, "the checkout was finished");

    let manager = start_manager(dir);
    wait_until(Duration::from_secs(10), "the half checkout removed", || {
        !links.exists()
    })
    .await;
    // The add-on asks again: the checkout is made whole, under the name it asked for.
    let (status, body) = create_checkout(manager.url.clone(), request)
        .await
        .expect("an answer");
    assert_eq!(
        (status, &body["checkoutPath"]),
        (200, &json!("shot-1")),
        "{body}"
    );
    let made = std::fs::read_dir(links.join("t")).map_or(0, |d| d.count());
    assert_eq!(made, CHECKOUT_FILES);
    let last = links.join("t").join(format!("{}.png", CHECKOUT_FILES - 1));
    assert_eq!(std::fs::read(last).expect("a link"), b"one texture\n");
    assert_eq!(
        links_in(&checkouts.join("shot-0").join("t")),
        finished_links,
        "the finished checkout"
    );
    let notes = std::fs::read_dir(file_store(dir).join("checkouts-in-progress"));
    assert_eq!(notes.map_or(0, |notes| notes.count()), 0, "notes left");
    eprintln!("checkout killed with {made_at_kill} of {CHECKOUT_FILES} links made");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_killed_midway_leaves_no_file_that_passes_for_a_backup() {
    let _turn = TURN.lock().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let dir = dir.path();
    let db = database(dir);
    let manager = start_manager(dir);
    post_job(
        &manager.url,
        &render_job("backed-up", BIG_JOB_TASKS as u32, "queued"),
    )
    .await
    .expect("submitted");
    let backups = dir.join("backups");
    std::fs::create_dir(&backups).expect("backups folder");

    // The backup process SIGKILLed mid-copy: no FILE, and nothing left that looks like one.
    let first = backups.join("first.sqlite");
    let mut backup = start_backup(dir, &first);
    wait_for_copying(&backups, &[]).await;
    signal(&backup, libc::SIGKILL);
    wait_exit(&mut backup, Duration::from_secs(10));
    assert!(!first.exists(), "a killed backup left {}", first.display());
    let left = files_in(&backups);
    assert!(
        left.iter()
            .all(|(name, _)| name.starts_with("first.sqlite.partial-")),
        "a killed backup left a file not named as unfinished: {left:?}"
    );
    // The same FILE again, undisturbed.
    let mut backup = start_backup(dir, &first);
    assert!(wait_exit(&mut backup, Duration::from_secs(60)).success());
    assert_complete_backup(&first, BIG_JOB_TASKS);

    // The manager SIGKILLed while a backup runs: the backup reads its own snapshot.
    let second = backups.join("second.sqlite");
    let before = files_in(&backups);
    let mut backup = start_backup(dir, &second);
    wait_for_copying(&backups, &before).await;
    kill_manager(manager);
    let finished = wait_exit(&mut backup, Duration::from_secs(60));
    // What docs/operations.md promises: the manager's death does not stop a backup.
    assert!(
        finished.success(),
        "the backup failed with the manager: {finished}"
    );
    assert_complete_backup(&second, BIG_JOB_TASKS);
    assert_no_unfinished_backup(&backups, "second.sqlite");
    assert_intact(&db);
    let manager = start_manager(dir);
    let listed = Api::new(&manager.url).get("/api/v3/jobs").await;
    assert_eq!(listed["total"], 1, "{listed}");
    assert_eq!(sql_count(&db, "SELECT count(*) FROM tasks"), BIG_JOB_TASKS);
}
