//! Streams from workers: task log chunks and last-rendered previews. Both are accepted
//! only from the worker holding the task under the quoted lease.
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use castanet_protocol::v1;
use tonic::{Code, Status, Streaming};

use super::WorkerApi;
use crate::events::Event;
use crate::logs::StorageRefusal;
use crate::state::TaskStatus;

/// Largest preview image accepted.
const MAX_PREVIEW_BYTES: usize = 25 * 1024 * 1024;

/// Checks that `worker_id` holds `task_id` under `epoch`; returns the task's job id.
pub(super) async fn check_lease(
    api: &WorkerApi,
    worker_id: &str,
    task_id: &str,
    epoch: u64,
) -> Result<String, Status> {
    let task = api
        .state
        .store
        .get_task(task_id)
        .await
        .map_err(|e| api.store_status(e))?
        .ok_or_else(|| Status::not_found(format!("task {task_id} does not exist")))?;
    let held = task.status == TaskStatus::Active.as_str()
        && task.worker_id.as_deref() == Some(worker_id)
        && task.lease_epoch == epoch as i64;
    if !held {
        return Err(Status::failed_precondition(format!(
            "task {task_id} is not held by this worker under lease {epoch}"
        )));
    }
    Ok(task.job_id)
}

/// How often log output may refresh a task's "last touched" time.
const TOUCH_INTERVAL: Duration = Duration::from_secs(10);

/// When each task's log output last refreshed its "last touched" time (a database write).
/// A task's first chunk only starts the interval: the assignment and the worker's
/// keep-alives touch it too, and a write per task there was a measurable share of a short
/// task's cost. Task timeouts are minutes long, so one write per task per interval is plenty.
#[derive(Default)]
pub(super) struct LogTouches {
    touched: Mutex<HashMap<String, Instant>>,
}

impl LogTouches {
    /// Whether a log chunk of `task_id` should refresh its "last touched" time now.
    pub(super) fn due(&self, task_id: &str) -> bool {
        // Only times live here: a poisoned lock is still usable.
        let mut touched = self.touched.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if touched.len() > 10_000 {
            touched.retain(|_, at| now.duration_since(*at) < TOUCH_INTERVAL);
        }
        match touched.get(task_id) {
            Some(at) if now.duration_since(*at) < TOUCH_INTERVAL => false,
            Some(_) => {
                touched.insert(task_id.to_string(), now);
                true
            }
            None => {
                touched.insert(task_id.to_string(), now);
                false
            }
        }
    }
}

/// Appends every chunk of the stream to its task's log, in order.
pub(super) async fn receive_log(
    api: &WorkerApi,
    worker_id: &str,
    mut chunks: Streaming<v1::LogChunk>,
) -> Result<u64, Status> {
    let state = &api.state;
    let mut written = 0u64;
    // The lease is checked once per (task, epoch) in the stream, not per chunk.
    let mut checked: Option<(String, u64, String)> = None;
    while let Some(chunk) = chunks.message().await? {
        let job_id = match &checked {
            Some((task, epoch, job)) if *task == chunk.task_id && *epoch == chunk.lease_epoch => {
                job.clone()
            }
            _ => {
                let job = check_lease(api, worker_id, &chunk.task_id, chunk.lease_epoch).await?;
                checked = Some((chunk.task_id.clone(), chunk.lease_epoch, job.clone()));
                job
            }
        };
        if chunk.text.is_empty() {
            continue;
        }
        if api.memory.log_touches.due(&chunk.task_id) {
            // Output counts as a sign of life for the task timeout, like an update does.
            state
                .store
                .touch_task(&chunk.task_id, worker_id, chunk.lease_epoch as i64)
                .await
                .map_err(|e| api.store_status(e))?;
        }
        written += append_log(
            api,
            &job_id,
            &chunk.task_id,
            chunk.lease_epoch,
            chunk.offset,
            &chunk.text,
        )
        .await?;
    }
    Ok(written)
}

/// Stores the log lines a final update carries (`TaskUpdate.log_tail`), before the update
/// is applied, when the worker holds the task under the quoted lease. Otherwise nothing is
/// stored: the update is then the retry of one applied already (its lines were stored
/// with it), or it will be refused.
pub(super) async fn store_log_tail(
    api: &WorkerApi,
    worker_id: &str,
    task_id: &str,
    epoch: u64,
    tail: &v1::LogTail,
) -> Result<(), Status> {
    if tail.text.is_empty() {
        return Ok(());
    }
    let held = api
        .state
        .dispatcher
        .held_job(worker_id, task_id, epoch as i64)
        .ok_or(());
    let checked = match held {
        Ok(job_id) => Ok(job_id),
        Err(()) => check_lease(api, worker_id, task_id, epoch).await,
    };
    let job_id = match checked {
        Ok(job_id) => job_id,
        Err(status) if matches!(status.code(), Code::NotFound | Code::FailedPrecondition) => {
            return Ok(());
        }
        Err(status) => return Err(status),
    };
    append_log(api, &job_id, task_id, epoch, tail.offset, &tail.text).await?;
    Ok(())
}

/// Appends worker log text to a task's log (`offset`: see `LogChunk.offset`) and tells the
/// event stream; returns the bytes written.
async fn append_log(
    api: &WorkerApi,
    job_id: &str,
    task_id: &str,
    epoch: u64,
    offset: Option<u64>,
    text: &str,
) -> Result<u64, Status> {
    let state = &api.state;
    let written = state
        .logs
        .append_chunk(job_id, task_id, epoch, offset, text)
        .await
        .map_err(|e| {
            // The worker only sees a retried upload; the operator must hear of it here.
            let refusal =
                StorageRefusal::new(&e, state.logs.jobs_root(), "the log chunk was not stored");
            // Either way the worker keeps the lines and sends them again.
            if refusal.full {
                api.memory.storage_directory.refused(&refusal.message);
                Status::resource_exhausted(refusal.message)
            } else {
                tracing::error!(task = %task_id, "{}", refusal.message);
                Status::internal(refusal.message)
            }
        })?;
    api.memory.storage_directory.stored();
    state.events.publish(Event::task_log(job_id, task_id));
    Ok(written)
}

/// Keeps the newest preview of a job as `last-rendered.jpg` in the job's directory.
pub(super) async fn store_last_rendered(
    api: &WorkerApi,
    worker_id: &str,
    image: v1::LastRendered,
) -> Result<(), Status> {
    if image.image.is_empty() {
        return Err(Status::invalid_argument("empty image"));
    }
    if image.image.len() > MAX_PREVIEW_BYTES {
        return Err(Status::invalid_argument(format!(
            "image of {} bytes is larger than the {MAX_PREVIEW_BYTES} bytes allowed",
            image.image.len()
        )));
    }
    if image.mime_type != "image/jpeg" {
        return Err(Status::invalid_argument(format!(
            "previews must be image/jpeg, got \"{}\"",
            image.mime_type
        )));
    }
    if let Some(frame) = image.frame {
        crate::preview_video::check_frame_image(frame, &image.image)?;
    }
    let job_id = check_lease(api, worker_id, &image.task_id, image.lease_epoch).await?;
    let state = &api.state;
    let dir = state.logs.job_dir(&job_id);
    let write = async {
        tokio::fs::create_dir_all(&dir).await?;
        let partial = dir.join("last-rendered.jpg.partial");
        tokio::fs::write(&partial, &image.image).await?;
        tokio::fs::rename(&partial, dir.join("last-rendered.jpg")).await
    };
    write
        .await
        .map_err(|e| Status::internal(format!("cannot store preview: {e}")))?;
    // A numbered frame is also kept as that frame's image (frame grid, preview video).
    if let Some(frame) = image.frame {
        crate::preview_video::store_frame(state, &job_id, &image.task_id, frame, &image.image)
            .await?;
    }
    state
        .store
        .set_last_rendered(&job_id)
        .await
        .map_err(|e| api.store_status(e))?;
    state.events.publish(Event::LastRendered {
        job_id: job_id.clone(),
        task_id: image.frame.map(|_| image.task_id.clone()),
        frame: image.frame,
    });
    Ok(())
}
