//! Deleting jobs marked for deletion: the Shaman checkout (when Shaman is on and no other
//! job uses it), the rows (job, tasks, failures, blocklist, last-rendered; running tasks
//! are aborted on their workers first), then the job's directory of task logs and
//! previews. A `job-deleted` event follows. A job whose deletion fails stays marked and is
//! retried by the sweep that runs at start and every minute.
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::AppState;
use crate::ops;
use crate::shaman::CheckoutError;
use crate::store::StoreError;

/// How often marked jobs are looked for again (a failed deletion, one left by a restart).
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum DeleteError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("cannot remove the Shaman checkout \"{checkout}\": {source}")]
    Checkout {
        checkout: String,
        source: CheckoutError,
    },
}

/// Whether deleting the job also removes its Shaman checkout (Flamenco's
/// `what-would-delete-do`): Shaman is on, the job has a checkout, and no job that
/// stays uses the same one.
pub async fn would_remove_checkout(state: &AppState, job_id: &str) -> Result<bool, StoreError> {
    let info = state.store.deletion_info(job_id).await?;
    Ok(state.shaman.is_some() && !info.checkout_id.is_empty() && !info.checkout_shared)
}

/// Deletes one job that is marked for deletion. Returns false when it was already gone
/// (another deletion of it finished first).
pub async fn delete_marked_job(state: &AppState, job_id: &str) -> Result<bool, DeleteError> {
    let info = match state.store.deletion_info(job_id).await {
        Ok(info) => info,
        Err(StoreError::NotFound(_)) => return Ok(false),
        Err(e) => return Err(e.into()),
    };
    if let Some(shaman) = &state.shaman
        && !info.checkout_id.is_empty()
        && !info.checkout_shared
    {
        shaman
            .erase_checkout(&info.checkout_id)
            .await
            .map_err(|source| DeleteError::Checkout {
                checkout: info.checkout_id.clone(),
                source,
            })?;
    }
    // Rows first, files after: a task log written by a worker that has not stopped yet
    // cannot bring back a job that no longer exists. The rows' transaction leaves a
    // tombstone, so files a kill leaves behind are removed at the next start.
    let Some(effects) = ops::job_actions::delete_job(&state.store, job_id).await? else {
        return Ok(false);
    };
    // Workers stop its tasks now; the files may take a while.
    ops::apply(effects, state).await;
    remove_job_dir(state, job_id).await;
    tracing::info!(job = %job_id, checkout = %info.checkout_id, "job deleted");
    Ok(true)
}

/// Removes `jobs/job-xxxx/<id>/` and its group directory once that is empty, then the
/// job's tombstone. Returns whether the directory is gone (a failure is logged and the
/// tombstone stays for the next start).
async fn remove_job_dir(state: &AppState, job_id: &str) -> bool {
    let dir = state.logs.job_dir(job_id);
    match tokio::fs::remove_dir_all(&dir).await {
        Ok(()) => {
            if let Some(group) = dir.parent() {
                // Fails while other jobs share the group: it is not empty then.
                let _ = tokio::fs::remove_dir(group).await;
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            tracing::warn!(
                "job {job_id} is deleted but its files under {} are not: {e}",
                dir.display()
            );
            return false;
        }
    }
    if let Err(e) = state.store.deleted_job_dir_removed(job_id).await {
        tracing::warn!("cannot forget the tombstone of deleted job {job_id}: {e}");
    }
    true
}

/// Deletes the given marked jobs one after the other; a failure is logged and the job
/// stays marked for the next sweep.
pub async fn delete_marked_jobs(state: &AppState, job_ids: &[String]) {
    for job_id in job_ids {
        if let Err(e) = delete_marked_job(state, job_id).await {
            tracing::error!("deleting job {job_id} failed (retried later): {e}");
        }
    }
}

/// Deletes every marked job now.
pub async fn sweep(state: &AppState) {
    match state.store.jobs_marked_for_deletion().await {
        Ok(ids) => delete_marked_jobs(state, &ids).await,
        Err(e) => tracing::error!("cannot list jobs marked for deletion: {e}"),
    }
}

/// Removes the directories of the jobs whose tombstone says their rows went but their
/// files may not have (a manager stopped in between), and the tombstones. Only tombstoned
/// jobs: a folder the database merely does not know (a restored older backup, another
/// database) is left alone.
pub async fn remove_dirs_of_tombstoned_jobs(state: &AppState) {
    let job_ids = match state.store.deleted_job_dirs().await {
        Ok(job_ids) => job_ids,
        Err(e) => {
            tracing::error!("cannot list the deleted jobs whose files may remain: {e}");
            return;
        }
    };
    let mut removed = 0;
    for job_id in &job_ids {
        // A tombstone names a directory to delete: only ids of the form the manager makes.
        let relative = crate::logs::TaskLogs::job_dir_relative(job_id);
        let Some((group, name)) = relative.split_once('/') else {
            continue;
        };
        if crate::logs::TaskLogs::job_of_dir(group, name).is_none() {
            tracing::warn!("ignoring the tombstone of a job with an unexpected id {job_id:?}");
            continue;
        }
        if remove_job_dir(state, job_id).await {
            removed += 1;
        }
    }
    if removed > 0 {
        tracing::info!(
            jobs = removed,
            "removed the files of jobs deleted before a restart"
        );
    }
}

/// Removes what jobs deleted before a restart left on disk and sweeps at start, then
/// sweeps every `SWEEP_INTERVAL`, until `shutdown`.
pub async fn run(state: AppState, shutdown: CancellationToken) {
    remove_dirs_of_tombstoned_jobs(&state).await;
    sweep(&state).await;
    let first = tokio::time::Instant::now() + SWEEP_INTERVAL;
    let mut ticks = tokio::time::interval_at(first, SWEEP_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        sweep(&state).await;
    }
}
