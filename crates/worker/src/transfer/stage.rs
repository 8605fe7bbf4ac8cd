//! A task's files around its commands: the inputs fetched and linked into the mirror before,
//! the outputs uploaded after.
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use castanet_protocol::v1;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use super::{PARALLEL_DOWNLOADS, PARALLEL_UPLOADS, StageError, Transfers, long_call};
use crate::commands;
use crate::logs::LogSink;

/// Output files changed this long before the task started still count as its own (file
/// systems with coarse modification times).
const MTIME_SLACK: std::time::Duration = std::time::Duration::from_secs(2);

/// The inputs of a running task: their blobs stay in the cache until it ends.
pub struct Staged {
    transfers: Arc<Transfers>,
    shas: Vec<String>,
    /// When the inputs were in place: outputs are the files changed after this.
    pub started: SystemTime,
}

impl Drop for Staged {
    fn drop(&mut self) {
        self.transfers.cache.release(&self.shas);
    }
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// Fetches what `task` reads and links it into the mirror. Output directories outside the
/// mirror decline the task: their files could never reach the manager.
pub async fn stage_in(
    transfers: &Arc<Transfers>,
    task: &v1::AssignTask,
    log: &LogSink,
    cancel: &CancellationToken,
) -> Result<Staged, StageError> {
    let staged = fetch_inputs(transfers, task, log, cancel).await;
    if let Err(StageError::Declined(problem)) = &staged {
        log.line(format!(
            "Declined: {problem}. This worker asks to be blocklisted for this job's {} tasks; \
             the task goes back to the queue.",
            task.task_type
        ))
        .await;
    }
    staged
}

async fn fetch_inputs(
    transfers: &Arc<Transfers>,
    task: &v1::AssignTask,
    log: &LogSink,
    cancel: &CancellationToken,
) -> Result<Staged, StageError> {
    let mut wanted = Vec::new();
    for command in &task.commands {
        let (name, params) = (command.name.as_str(), command.parameters_json.as_str());
        for dir in commands::output_directories(name, params) {
            if transfers.mirror_path(&dir).is_none() {
                return Err(StageError::Declined(format!(
                    "this worker has no shared storage, and the output directory {} is not a farm \
                     path it mirrors (a path under a two-way variable or the job storage), so \
                     its files could never reach the manager",
                    dir.display()
                )));
            }
        }
        let read = commands::input_files(name, params)
            .into_iter()
            .chain(commands::input_directories(name, params));
        wanted.extend(read.filter_map(|path| transfers.mirror_path(&path)));
    }
    wanted.sort();
    wanted.dedup();
    let mut listed = list_inputs(transfers, task, wanted, cancel).await?;
    // A requested file inside the job's checkout is listed twice: count it once.
    let mut seen = std::collections::HashSet::new();
    listed.files.retain(|file| seen.insert(file.path.clone()));
    for file in &mut listed.files {
        if !super::cache::is_sha256(&file.sha256) {
            return Err(StageError::Refused(format!(
                "the manager listed {} with {:?}, which is not a SHA-256",
                file.path, file.sha256
            )));
        }
        file.sha256.make_ascii_lowercase();
    }
    for missing in &listed.missing {
        log.line(format!(
            "The manager has no {missing}; the command reading it will say so."
        ))
        .await;
    }
    let shas: Vec<String> = listed.files.iter().map(|f| f.sha256.clone()).collect();
    transfers.cache.pin(&shas);
    let mut staged = Staged {
        transfers: transfers.clone(),
        shas,
        started: SystemTime::now(),
    };
    let started = Instant::now();
    // Each blob once, however many paths name it; a local file with the right content (an
    // output this worker made) needs nothing.
    let mut needed: HashMap<&str, &v1::StoredFile> = HashMap::new();
    let mut hits = 0u64;
    let mut in_place = Vec::new();
    for file in &listed.files {
        let local = transfers.local_path(&file.path)?;
        if already_there(&local, file).await {
            in_place.push(file.path.clone());
        } else if transfers.cache.holds(&file.sha256, file.size)
            || needed.insert(file.sha256.as_str(), file).is_some()
        {
            // In the cache, or a second path of a blob being downloaded.
            hits += 1;
        }
    }
    let incoming: u64 = needed.values().map(|f| f.size).sum();
    let cache = transfers.clone();
    let _ = tokio::task::spawn_blocking(move || cache.cache.make_room(incoming)).await;
    let downloads: Vec<_> = needed
        .values()
        .map(|file| transfers.fetch(file, cancel))
        .collect();
    let received = all_done(downloads, PARALLEL_DOWNLOADS).await?;
    transfers.count_cache(hits + in_place.len() as u64, needed.len() as u64);
    for file in listed.files.iter().filter(|f| !in_place.contains(&f.path)) {
        link(
            &transfers.cache.blob_path(&file.sha256),
            &transfers.local_path(&file.path)?,
        )?;
    }
    if !listed.files.is_empty() {
        log.line(format!(
            "Inputs from the manager: {} files, {} from the cache, {} downloaded ({} in {:.1} s).",
            listed.files.len(),
            listed.files.len() - needed.len(),
            needed.len(),
            megabytes(received),
            started.elapsed().as_secs_f64()
        ))
        .await;
    }
    // Every task's report: the dashboard shows the worker's figures from its first task on.
    transfers.report_totals().await;
    staged.started = SystemTime::now();
    Ok(staged)
}

async fn list_inputs(
    transfers: &Transfers,
    task: &v1::AssignTask,
    paths: Vec<String>,
    cancel: &CancellationToken,
) -> Result<v1::ListInputsResponse, StageError> {
    let request = v1::ListInputsRequest {
        job_id: task.job_id.clone(),
        task_id: task.task_id.clone(),
        paths,
    };
    let mut retry = super::Retry::new("the task's input list");
    loop {
        let mut api = transfers.client.api();
        let answer = tokio::select! {
            () = cancel.cancelled() => return Err(StageError::Canceled),
            answer = api.list_inputs(long_call(request.clone())) => answer,
        };
        match answer {
            Ok(listed) => return Ok(listed.into_inner()),
            Err(status) if crate::client::is_transient(&status) => {
                retry.wait(status.message(), cancel).await?;
            }
            Err(status) => {
                return Err(StageError::Refused(format!(
                    "the manager refused the task's input list: {}",
                    status.message()
                )));
            }
        }
    }
}

/// Whether the mirror holds `file` already as a regular file with its content.
async fn already_there(local: &Path, file: &v1::StoredFile) -> bool {
    match tokio::fs::symlink_metadata(local).await {
        Ok(metadata) if metadata.is_file() && metadata.len() == file.size => {
            let path = local.to_path_buf();
            let sha =
                tokio::task::spawn_blocking(move || castanet_protocol::content::sha256_file(&path))
                    .await;
            matches!(sha, Ok(Ok(sha)) if sha.eq_ignore_ascii_case(&file.sha256))
        }
        _ => false,
    }
}

/// Makes `local` a link to `blob` (replacing whatever was there).
fn link(blob: &Path, local: &Path) -> Result<(), StageError> {
    if std::fs::read_link(local).is_ok_and(|target| target == blob) {
        return Ok(());
    }
    if let Some(parent) = local.parent() {
        std::fs::create_dir_all(parent).map_err(|e| StageError::local(parent, e))?;
    }
    match std::fs::symlink_metadata(local) {
        Ok(metadata) if metadata.is_dir() => {
            return Err(StageError::Local(format!(
                "{} is a directory here, but the job has a file there",
                local.display()
            )));
        }
        Ok(_) => std::fs::remove_file(local).map_err(|e| StageError::local(local, e))?,
        Err(_) => {}
    }
    crate::platform::symlink_file(blob, local).map_err(|e| StageError::local(local, e))
}

/// Uploads the files the task's commands wrote into their output directories since `staged`
/// was made.
pub async fn stage_out(
    transfers: &Arc<Transfers>,
    task: &v1::AssignTask,
    staged: &Staged,
    log: &LogSink,
    cancel: &CancellationToken,
) -> Result<(), StageError> {
    let since = staged.started - MTIME_SLACK;
    let mut outputs: Vec<PathBuf> = Vec::new();
    for command in &task.commands {
        for dir in commands::output_directories(&command.name, &command.parameters_json) {
            outputs.extend(written_since(&dir, since));
        }
    }
    outputs.sort();
    outputs.dedup();
    if outputs.is_empty() {
        return Ok(());
    }
    let started = Instant::now();
    let mut uploads = Vec::new();
    for local in &outputs {
        let Some(mirror_path) = transfers.mirror_path(local) else {
            return Err(StageError::Local(format!(
                "the output {} has a name that cannot be sent to the manager",
                local.display()
            )));
        };
        uploads.push(transfers.upload(task, local, mirror_path, cancel));
    }
    let count = uploads.len();
    let sent = all_done(uploads, PARALLEL_UPLOADS).await?;
    log.line(format!(
        "Outputs to the manager: {count} files stored and verified, {} sent in {:.1} s.",
        megabytes(sent),
        started.elapsed().as_secs_f64()
    ))
    .await;
    transfers.report_totals().await;
    Ok(())
}

/// Runs the transfers, `parallel` at a time; the bytes they moved, or the first error.
async fn all_done<F>(transfers: Vec<F>, parallel: usize) -> Result<u64, StageError>
where
    F: std::future::Future<Output = Result<u64, StageError>>,
{
    let mut running = futures::stream::iter(transfers).buffer_unordered(parallel);
    let mut total = 0;
    while let Some(moved) = running.next().await {
        total += moved?;
    }
    Ok(total)
}

/// Regular files directly in `dir` changed at or after `since` (links are inputs).
fn written_since(dir: &Path, since: SystemTime) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|entry| {
            entry
                .metadata()
                .is_ok_and(|m| m.is_file() && m.modified().is_ok_and(|modified| modified >= since))
                && entry.file_type().is_ok_and(|t| t.is_file())
        })
        .map(|entry| entry.path())
        .collect()
}
