//! What the updates of one group-committed transaction leave to write once, at its end
//! (`update_batch.rs` runs the queue; `apply_update_in` fills this).
use std::collections::HashMap;

use sqlx::{Any, Transaction};

use super::{TaskUpdateOutcome, WorkerTaskUpdate};
use crate::state::{FailurePolicy, TaskStatus};
use crate::store::job_ripple::ripple_to_job;
use crate::store::{Engine, StoreResult, insert_task_status_events, now};

/// What the updates of one transaction leave to write once, at its end.
#[derive(Default)]
pub(in crate::store) struct UpdateBatch {
    /// Worker id → highest sequence number applied in this batch (the worker continues
    /// its numbering above it after a sign-on).
    sequences: HashMap<String, i64>,
    /// Task id → highest sequence number applied to it in this batch.
    pub task_sequences: HashMap<String, i64>,
    /// Task status history rows: (task id, old, new, reason, time).
    events: Vec<(String, &'static str, &'static str, String, String)>,
    /// Jobs with a completed task in this batch, in order of first completion.
    completed_jobs: Vec<String>,
}

impl UpdateBatch {
    /// `update` was applied: its number is the newest of its task and, when higher, of its
    /// worker.
    pub fn applied(&mut self, update: &WorkerTaskUpdate) {
        self.task_sequences
            .insert(update.task_id.clone(), update.sequence);
        let worker = self.sequences.entry(update.worker_id.clone()).or_default();
        *worker = (*worker).max(update.sequence);
    }

    pub fn status_event(
        &mut self,
        task_id: &str,
        old: TaskStatus,
        new: TaskStatus,
        reason: &str,
        at: &str,
    ) {
        self.events.push((
            task_id.to_string(),
            old.as_str(),
            new.as_str(),
            reason.to_string(),
            at.to_string(),
        ));
    }

    pub fn completed_in_job(&mut self, job_id: &str) {
        if !self.completed_jobs.iter().any(|j| j == job_id) {
            self.completed_jobs.push(job_id.to_string());
        }
    }

    /// Writes the sequence numbers and history rows, and lets each job with completed
    /// tasks follow its counts; a job change is reported with the batch's last update of
    /// a task of that job (`results` in update order).
    pub(in crate::store) async fn finish(
        self,
        tx: &mut Transaction<'static, Any>,
        policy: &FailurePolicy,
        results: &mut [StoreResult<TaskUpdateOutcome>],
    ) -> StoreResult<()> {
        if !self.sequences.is_empty() {
            let sequences: Vec<(&String, &i64)> = self.sequences.iter().collect();
            let sql = match Engine::of(tx) {
                Engine::Sqlite => {
                    "UPDATE workers SET last_update_sequence = MAX(last_update_sequence, s.seq),
                        last_seen_at = $2
                     FROM (SELECT value ->> 0 AS id, value ->> 1 AS seq FROM json_each($1)) AS s
                     WHERE workers.id = s.id"
                }
                Engine::Postgres => {
                    "UPDATE workers SET last_update_sequence = GREATEST(last_update_sequence, s.seq),
                        last_seen_at = $2
                     FROM (SELECT e ->> 0 AS id, (e ->> 1)::bigint AS seq
                           FROM json_array_elements($1::json) AS e) AS s
                     WHERE workers.id = s.id"
                }
            };
            sqlx::query(sql)
                .bind(serde_json::to_string(&sequences).unwrap_or_else(|_| "[]".into()))
                .bind(now())
                .execute(&mut **tx)
                .await?;
        }
        insert_task_status_events(tx, &self.events).await?;
        for job_id in &self.completed_jobs {
            let Some(change) = ripple_to_job(tx, job_id, TaskStatus::Completed, policy).await?
            else {
                continue;
            };
            let last = results
                .iter_mut()
                .rev()
                .filter_map(|r| r.as_mut().ok())
                .find(|o| o.applied && o.job_id == *job_id);
            if let Some(outcome) = last {
                outcome.job_status = Some(change.status);
                outcome.to_abort.extend(change.to_abort);
            }
        }
        Ok(())
    }
}
