//! Requests on jobs and tasks (REST, dashboard, CLI): status, priority, worker tag,
//! dependencies, blocklist, review, deletion marks and a new submission. Each makes one
//! store call and returns what follows it as [`Effects`].
use super::Effects;
use crate::events::Event;
use crate::state::{JobStatus, TaskStatus};
use crate::store::{ImpossibleJob, JobChange, NewTask, Store, StoreError};

/// A user asks the job to enter `requested`; returns where it settled.
pub async fn set_job_status(
    store: &Store,
    job_id: &str,
    requested: JobStatus,
    reason: &str,
) -> Result<(JobChange, Effects), StoreError> {
    let change = store.request_job_status(job_id, requested, reason).await?;
    let mut effects = Effects::new();
    effects.job_change(job_id, &change);
    Ok((change, effects))
}

/// A new priority reorders the queue: the dispatcher looks again.
pub async fn set_job_priority(
    store: &Store,
    job_id: &str,
    priority: i64,
) -> Result<Effects, StoreError> {
    store.set_job_priority(job_id, priority).await?;
    Ok(changed(job_id))
}

/// A user requeues or cancels one task: a line in its log says so and why.
pub async fn set_task_status(
    store: &Store,
    task_id: &str,
    requested: TaskStatus,
    reason: &str,
) -> Result<Effects, StoreError> {
    let change = store
        .request_task_status(task_id, requested, reason)
        .await?;
    let job_id = change.job_id.as_str();
    let reason = if reason.is_empty() {
        "no reason given"
    } else {
        reason
    };
    let mut effects = Effects::new();
    effects.log(
        job_id,
        task_id,
        format!(
            "Task changed to status \"{}\" on request: {reason}",
            change.status
        ),
    );
    if let Some(abort) = &change.to_abort {
        effects.abort(job_id, std::slice::from_ref(abort), "the task was canceled");
    }
    effects.task_changed(job_id, task_id);
    match &change.job_change {
        Some(job_change) => effects.job_change(job_id, job_change),
        None => effects.job_changed(job_id).kick(),
    };
    Ok(effects)
}

/// Only the tag's workers run the job from now on (or any worker, with no tag).
pub async fn set_job_tag(
    store: &Store,
    job_id: &str,
    tag_id: Option<&str>,
) -> Result<Effects, StoreError> {
    store.set_job_tag(job_id, tag_id).await?;
    Ok(changed(job_id))
}

/// The jobs `job_id` waits for; it may start waiting (or stop waiting) at once.
pub async fn set_job_dependencies(
    store: &Store,
    job_id: &str,
    depends_on: &[String],
) -> Result<Effects, StoreError> {
    let change = store.set_job_dependencies(job_id, depends_on).await?;
    let mut effects = changed(job_id);
    if let Some(change) = &change {
        effects.job_change(job_id, change);
    }
    Ok(effects)
}

/// Removes (worker, task type) pairs from the job's blocklist; returns how many were on it.
/// A worker that was blocked may now take the job's tasks.
pub async fn remove_blocklist_entries(
    store: &Store,
    job_id: &str,
    entries: &[(String, String)],
) -> Result<(u64, Effects), StoreError> {
    let removed = store.remove_blocklist_entries(job_id, entries).await?;
    Ok((removed, changed(job_id)))
}

/// Approves a gated job: its final pass (`tasks`, and the on-complete task) is queued.
pub async fn approve(
    store: &Store,
    job_id: &str,
    review: (&str, &str),
    tasks: Vec<NewTask>,
    on_complete: Option<NewTask>,
) -> Result<Effects, StoreError> {
    let (by, comment) = review;
    let change = store
        .approve_job(job_id, by, comment, tasks, on_complete)
        .await?;
    Ok(reviewed(job_id, &change))
}

/// Rejects a gated job: it ends as `rejected`, the comment kept.
pub async fn reject(
    store: &Store,
    job_id: &str,
    by: &str,
    comment: &str,
) -> Result<Effects, StoreError> {
    let change = store.reject_job(job_id, by, comment).await?;
    Ok(reviewed(job_id, &change))
}

fn reviewed(job_id: &str, change: &JobChange) -> Effects {
    let mut effects = Effects::new();
    effects.job_change(job_id, change);
    effects
}

/// Marks the job for deletion (the deleter removes it); the dashboard shows it going.
pub async fn mark_for_deletion(store: &Store, job_id: &str) -> Result<Effects, StoreError> {
    store.mark_job_for_deletion(job_id).await?;
    let mut effects = Effects::new();
    effects.job_changed(job_id);
    Ok(effects)
}

/// Marks every job last updated at or before `bound`; returns their ids.
pub async fn mark_updated_until(
    store: &Store,
    bound: &str,
) -> Result<(Vec<String>, Effects), StoreError> {
    let marked = store.mark_jobs_updated_until(bound).await?;
    let mut effects = Effects::new();
    for job_id in &marked {
        effects.job_changed(job_id);
    }
    Ok((marked, effects))
}

/// Deletes the job's rows (its files go after); its running tasks stop. `None`: it was
/// gone already.
pub async fn delete_job(store: &Store, job_id: &str) -> Result<Option<Effects>, StoreError> {
    let running = match store.delete_job(job_id).await {
        Ok(running) => running,
        Err(StoreError::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    tracing::debug!(job = %job_id, aborted = running.len(), "job rows deleted");
    let mut effects = Effects::new();
    effects
        .abort(job_id, &running, "the job was deleted")
        .event(Event::JobDeleted {
            job_id: job_id.to_string(),
        });
    Ok(Some(effects))
}

/// Jobs whose dependencies settled (released, or failed with a dependency): they may run
/// now, or a task of theirs may never run.
pub fn dependencies_settled(job_ids: &[String]) -> Effects {
    let mut effects = Effects::new();
    for job_id in job_ids {
        effects
            .job_changed(job_id)
            .kick()
            .check_feasibility_of(job_id);
    }
    effects
}

/// A job was stored with its tasks: they are runnable, and a task no registered worker
/// can run should fail at once instead of waiting forever.
pub fn submitted(job_id: &str) -> Effects {
    let mut effects = changed(job_id);
    effects.check_feasibility_of(job_id);
    effects
}

/// Tasks the store failed because `why` (no worker can ever run them, or receive them):
/// a line in each task's log, and the rest of each failed job aborted. Returns how many
/// tasks failed.
pub fn failed_as_impossible(jobs: &[ImpossibleJob], why: &str) -> (usize, Effects) {
    let mut effects = Effects::new();
    let mut failed = 0;
    for job in jobs {
        for task in &job.tasks {
            tracing::warn!(job = %job.job_id, task = %task.task_id, rule = task.rule, "{}", task.reason);
            let line = format!("Task failed: {why} ({}): {}", task.rule, task.reason);
            effects
                .log(&job.job_id, &task.task_id, line)
                .task_changed(&job.job_id, &task.task_id);
            failed += 1;
        }
        let to_abort = job
            .change
            .as_ref()
            .map(|c| c.to_abort.as_slice())
            .unwrap_or_default();
        effects
            .abort(
                &job.job_id,
                to_abort,
                "the job failed: a task can never run",
            )
            .job_changed(&job.job_id);
    }
    (failed, effects)
}

/// Adaptive chunking replaced the job's queued chunks: new tasks to hand out.
pub fn tasks_regrouped(job_id: &str) -> Effects {
    changed(job_id)
}

/// The job changed in a way that can change what runs next.
fn changed(job_id: &str) -> Effects {
    let mut effects = Effects::new();
    effects.job_changed(job_id).kick();
    effects
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_submission_is_announced_kicks_and_asks_for_the_impossible_task_check_of_its_job() {
        let effects = submitted("j");
        assert_eq!(effects.events, vec![crate::events::Event::job("j")]);
        assert!(effects.kick);
        assert_eq!(
            effects.check_feasibility,
            crate::store::FeasibilityScope::Jobs(["j".to_string()].into())
        );
        assert!(effects.log_lines.is_empty() && effects.aborts.is_empty());
    }
}
