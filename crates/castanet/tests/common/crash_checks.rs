//! What the crash-consistency tests look at after a kill: the database through the `sqlite3`
//! CLI (read-only, so looking does not checkpoint or otherwise change what the restarted
//! manager finds), files growing on disk as the events a kill waits for, and the manager's
//! directories.
#![allow(dead_code)]
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{ManagerProcess, signal, wait_exit};

/// The database a manager started in `dir` uses (the config's default).
pub fn database(dir: &Path) -> PathBuf {
    dir.join("castanet-manager.sqlite")
}

/// `<storage_root>/jobs` of a manager started in `dir`: task logs and previews, per job.
pub fn jobs_files(dir: &Path) -> PathBuf {
    dir.join("castanet-storage").join("jobs")
}

/// A job's directory of task logs and previews.
pub fn job_dir(dir: &Path, job_id: &str) -> PathBuf {
    jobs_files(dir)
        .join(format!("job-{}", &job_id[..4]))
        .join(job_id)
}

/// The job ids that have a directory under `<storage_root>/jobs`.
pub fn job_dirs(dir: &Path) -> Vec<String> {
    let mut ids = Vec::new();
    let Ok(groups) = std::fs::read_dir(jobs_files(dir)) else {
        return ids;
    };
    for group in groups.flatten() {
        for job in std::fs::read_dir(group.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            ids.push(job.file_name().to_string_lossy().into_owned());
        }
    }
    ids.sort();
    ids
}

/// Runs one statement on `db` with the sqlite3 CLI, read-only; rows are lines, columns
/// are separated by `|`.
pub fn sql(db: &Path, statement: &str) -> String {
    sqlite3(db, &["-readonly"], statement)
}

/// Runs `statement` on `db` with the sqlite3 CLI and `options`, and returns its output.
fn sqlite3(db: &Path, options: &[&str], statement: &str) -> String {
    let output = Command::new("sqlite3")
        .args(options)
        .args(["-batch", "-noheader", "-separator", "|"])
        .arg(db)
        .arg(statement)
        .output()
        .expect("the sqlite3 CLI runs");
    assert!(
        output.status.success(),
        "sqlite3 {statement}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// Deletes a job's rows and leaves its tombstone, as the store's `delete_job` does in one
/// transaction, on the database of a stopped manager; the job's files stay.
pub fn delete_rows_leaving_tombstone(db: &Path, job_id: &str) {
    let statement = format!(
        "PRAGMA foreign_keys = ON; BEGIN;
         DELETE FROM jobs WHERE id = '{job_id}';
         INSERT INTO deleted_job_dirs (job_id, deleted_at) VALUES ('{job_id}', '2026-01-01');
         COMMIT;"
    );
    sqlite3(db, &[], &statement);
    let tasks = sql_count(
        db,
        &format!("SELECT count(*) FROM tasks WHERE job_id = '{job_id}'"),
    );
    assert_eq!(tasks, 0, "the tasks of job {job_id} went with it");
}

/// The first of `job_ids` that is still stored and has a directory.
pub fn stored_job_with_files<'a>(
    dir: &Path,
    mut job_ids: impl Iterator<Item = &'a String>,
) -> Option<String> {
    let db = database(dir);
    job_ids
        .find(|id| {
            job_dir(dir, id).exists()
                && sql_count(&db, &format!("SELECT count(*) FROM jobs WHERE id = '{id}'")) == 1
        })
        .cloned()
}

/// Makes a job's directory with a 4-byte task log in it, and returns the directory.
pub fn plant_job_dir(dir: &Path, job_id: &str) -> PathBuf {
    let job_dir = job_dir(dir, job_id);
    std::fs::create_dir_all(&job_dir).expect("job dir");
    std::fs::write(job_dir.join(format!("task-{job_id}.txt")), "log\n").expect("log");
    job_dir
}

/// One number from `statement`.
pub fn sql_count(db: &Path, statement: &str) -> u64 {
    let text = sql(db, statement);
    text.parse()
        .unwrap_or_else(|_| panic!("{statement} gave {text:?}, not a number"))
}

/// `PRAGMA integrity_check` is `ok` and no row points at a row that is not there.
pub fn assert_intact(db: &Path) {
    assert_eq!(
        crate::common::sqlite_integrity_check(db),
        "ok",
        "integrity check of {}",
        db.display()
    );
    assert_eq!(
        sql(db, "PRAGMA foreign_key_check"),
        "",
        "rows whose parent is missing in {}",
        db.display()
    );
}

/// Bytes in the file at `path`; 0 when it does not exist.
pub fn size_of(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// The files directly in `dir` with their sizes, by name.
pub fn files_in(dir: &Path) -> Vec<(String, u64)> {
    let mut files: Vec<(String, u64)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| {
            let size = e.metadata().map(|m| m.len()).unwrap_or(0);
            (e.file_name().to_string_lossy().into_owned(), size)
        })
        .collect();
    files.sort();
    files
}

/// The entries directly in `dir` (links followed) with the content they lead to, by name.
pub fn links_in(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut links: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| {
            let content = std::fs::read(e.path()).unwrap_or_default();
            (e.file_name().to_string_lossy().into_owned(), content)
        })
        .collect();
    links.sort();
    links
}

/// Polls `condition` every few milliseconds until it holds, failing after `limit`; the
/// runtime's thread is free in between.
pub async fn wait_until(limit: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition() {
        assert!(Instant::now() < deadline, "not within {limit:?}: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// SIGKILLs the manager and waits until it is gone.
pub fn kill_manager(mut manager: ManagerProcess) {
    signal(&manager.child, libc::SIGKILL);
    wait_exit(&mut manager.child, Duration::from_secs(10));
}

/// A `simple-blender-render` job that compiles to exactly `frames` render tasks (no `fps`:
/// no preview video task).
pub fn render_job(name: &str, frames: u32, initial_status: &str) -> Value {
    json!({
        "name": name, "type": "simple-blender-render", "priority": 50,
        "submitter_platform": "linux", "initial_status": initial_status,
        "settings": {
            "frames": format!("1-{frames}"), "chunk_size": 1,
            "render_output_root": "/tmp/castanet-crash/out", "add_path_components": 0,
            "render_output_path": format!("/tmp/castanet-crash/out/{name}/######"),
            "blendfile": "/tmp/castanet-crash/scene.blend", "format": "PNG",
            "image_file_extension": ".png", "has_previews": false, "scene": "Scene",
        },
    })
}

/// `echo-sleep-test` with `sleeps` sleep tasks of 0 s after its echo task.
pub fn echo_job(name: &str, sleeps: u32, priority: u32, initial_status: &str) -> Value {
    json!({
        "name": name, "type": "echo-sleep-test", "priority": priority,
        "submitter_platform": "linux", "initial_status": initial_status,
        "settings": { "message": name, "sleep_duration_seconds": 0, "sleep_repeats": sleeps },
    })
}

/// POSTs a job; the stored job's id, or the reason there was no answer.
pub async fn post_job(url: &str, body: &Value) -> Result<String, String> {
    let response = reqwest::Client::new()
        .post(format!("{url}/api/v3/jobs"))
        .json(body)
        .send()
        .await
        .map_err(|e| format!("no answer: {e}"))?;
    let status = response.status();
    let job: Value = response.json().await.map_err(|e| format!("{e}"))?;
    if status.as_u16() != 200 {
        return Err(format!("{status}: {job}"));
    }
    Ok(job["id"].as_str().expect("id").to_string())
}

/// Deterministic bytes that do not compress (xorshift), for uploads.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut bytes = Vec::with_capacity(len + 8);
    while bytes.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes.extend_from_slice(&state.to_le_bytes());
    }
    bytes.truncate(len);
    bytes
}

/// SHA-256 of a file, hex, from `sha256sum`.
pub fn sha256_of(path: &Path) -> String {
    let output = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum runs");
    assert!(output.status.success(), "sha256sum {}", path.display());
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .next()
        .expect("a checksum")
        .to_string()
}

/// `castanet manager backup FILE` for the manager in `dir`.
pub fn start_backup(dir: &Path, file: &Path) -> Child {
    Command::new(crate::common::BIN)
        .args(["manager", "--config"])
        .arg(dir.join("castanet-manager.toml"))
        .arg("backup")
        .arg(file)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("backup starts")
}

/// Waits until a file not in `before` grows to 4 MiB in `folder`: the backup is copying.
pub async fn wait_for_copying(folder: &Path, before: &[(String, u64)]) {
    wait_until(Duration::from_secs(60), "the backup writing", || {
        files_in(folder).iter().any(|(name, bytes)| {
            *bytes >= 4 * 1024 * 1024 && !before.iter().any(|(b, _)| b == name)
        })
    })
    .await;
}

/// A backup that passes the integrity check and holds one job of `tasks` tasks.
pub fn assert_complete_backup(file: &Path, tasks: u64) {
    assert_intact(file);
    assert_eq!(
        sql(
            file,
            "SELECT count(*), (SELECT count(*) FROM tasks) FROM jobs"
        ),
        format!("1|{tasks}"),
        "{}",
        file.display()
    );
}

/// No `<name>.partial-*` copy, no SQLite `-journal` of one and no `<name>-journal` is left
/// in `folder`.
pub fn assert_no_unfinished_backup(folder: &Path, name: &str) {
    let partial = format!("{name}.partial-");
    let journal = format!("{name}-journal");
    let left: Vec<_> = files_in(folder)
        .into_iter()
        .filter(|(file, _)| file.starts_with(&partial) || *file == journal)
        .collect();
    assert!(left.is_empty(), "an unfinished backup left {left:?}");
}

/// A manager in `dir`, on the config written at the first start. A debug build compiles a
/// 100,000-task job in about 4 s (1.5 s in release), too close to the default 5 s script
/// limit on a busy machine, so the limit is raised.
pub fn start_manager(dir: &Path) -> ManagerProcess {
    let config = dir.join("castanet-manager.toml");
    if !config.exists() {
        std::fs::write(
            &config,
            "registration_secret = \"crash-consistency\"\nscript_time_limit_ms = 60000\n",
        )
        .expect("config");
    }
    ManagerProcess::start(dir, "127.0.0.1:0")
}

/// Where a manager started in `dir` keeps Shaman uploads.
pub fn file_store(dir: &Path) -> PathBuf {
    dir.join("castanet-shared").join("file-store")
}

/// Asks the manager at `url` for a Shaman checkout: (status, body), or why there was no
/// answer.
pub async fn create_checkout(url: String, request: Value) -> Result<(u16, Value), String> {
    let answer = reqwest::Client::new()
        .post(format!("{url}/api/v3/shaman/checkout/create"))
        .json(&request)
        .send()
        .await
        .map_err(|e| format!("no answer: {e}"))?;
    let status = answer.status().as_u16();
    let body: Value = answer.json().await.map_err(|e| e.to_string())?;
    Ok((status, body))
}
