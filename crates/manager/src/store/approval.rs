//! The approval gate and the on-complete task in the store: a gated job's review facts, the
//! final pass appended on approval (numbered on, counted, in one transaction with the approval),
//! the rejection, and the on-complete task that waits for every other task of its job.
use sqlx::{Any, Transaction};

use super::job_gates::approval_gate;
use super::job_status::{JobChange, enter_job_status};
use super::{
    JobInsert, NewTask, SCRIPTED_JOB_COLUMNS, ScriptedJob, Store, StoreError, StoreResult,
    job_status, now,
};
use crate::state::{ApprovalState, JobStatus, check_approval_request};

/// What approving a job needs to know to run its job type's `compileApproved`.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct GatedJob {
    #[sqlx(flatten)]
    pub job: ScriptedJob,
    pub status: String,
    pub approval_state: Option<String>,
    pub on_complete: Option<String>,
}

impl GatedJob {
    pub fn gate(&self) -> Option<ApprovalState> {
        self.approval_state.as_deref().and_then(|s| s.parse().ok())
    }

    /// Why it cannot be approved or rejected now, if it cannot.
    pub fn check(&self, verb: &str) -> Result<(), StoreError> {
        let status: JobStatus = self
            .status
            .parse()
            .map_err(|e: crate::state::UnknownStatus| StoreError::Corrupt(e.to_string()))?;
        check_approval_request(status, self.gate(), verb).map_err(StoreError::Refused)
    }
}

impl Store {
    /// The job as approving it needs it; None when there is no such job.
    pub async fn gated_job(&self, job_id: &str) -> StoreResult<Option<GatedJob>> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {SCRIPTED_JOB_COLUMNS}, status, approval_state, on_complete
             FROM jobs WHERE id = $1"
        )))
        .bind(job_id)
        .fetch_optional(&self.read)
        .await?)
    }

    /// Approves the job's preview pass: appends the final pass `tasks` (and the on-complete
    /// task, which waits for every other task), records who approved, and queues the job — all
    /// in one transaction that refuses when the job no longer awaits approval.
    pub async fn approve_job(
        &self,
        job_id: &str,
        by: &str,
        comment: &str,
        tasks: Vec<NewTask>,
        on_complete: Option<NewTask>,
    ) -> StoreResult<JobChange> {
        let mut tx = self.begin().await?;
        check_in(&mut tx, job_id, "approve").await?;
        record_review(&mut tx, job_id, ApprovalState::Approved, by, comment).await?;
        let (last,): (i64,) =
            sqlx::query_as("SELECT COALESCE(MAX(index_in_job), 0) FROM tasks WHERE job_id = $1")
                .bind(job_id)
                .fetch_one(&mut *tx)
                .await?;
        let mut number = last;
        let at = now();
        let count = tasks.len() + usize::from(on_complete.is_some());
        for task in tasks.iter().chain(on_complete.as_ref()) {
            number += 1;
            insert_task(&mut tx, job_id, number, task, &at).await?;
        }
        for task in &tasks {
            for dependency in &task.dependencies {
                sqlx::query(
                    "INSERT INTO task_dependencies (task_id, dependency_id) VALUES ($1, $2)",
                )
                .bind(&task.id)
                .bind(dependency)
                .execute(&mut *tx)
                .await?;
            }
        }
        if let Some(task) = &on_complete {
            depend_on_every_other_task(&mut tx, job_id, &task.id).await?;
        }
        if count > 0 {
            // No insert trigger keeps the counts (migration 0005): counted here.
            sqlx::query(
                "INSERT INTO job_task_counts (job_id, status, n) VALUES ($1, 'queued', $2)
                 ON CONFLICT (job_id, status) DO UPDATE SET n = job_task_counts.n + excluded.n",
            )
            .bind(job_id)
            .bind(count as i64)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE jobs SET steps_total = (SELECT COALESCE(SUM(steps_total), 0) FROM tasks
                     WHERE job_id = $1) WHERE id = $1",
            )
            .bind(job_id)
            .execute(&mut *tx)
            .await?;
        }
        let reason = format!("approved by {by}; the final pass was queued");
        let change = enter_job_status(&mut tx, job_id, JobStatus::Queued, &reason).await?;
        tx.commit().await?;
        Ok(change)
    }

    /// Rejects the job's preview pass: the job ends as `rejected`, with the comment kept.
    pub async fn reject_job(
        &self,
        job_id: &str,
        by: &str,
        comment: &str,
    ) -> StoreResult<JobChange> {
        let mut tx = self.begin().await?;
        check_in(&mut tx, job_id, "reject").await?;
        record_review(&mut tx, job_id, ApprovalState::Rejected, by, comment).await?;
        let reason = format!("rejected by {by}: {comment}");
        let change = enter_job_status(&mut tx, job_id, JobStatus::Rejected, &reason).await?;
        tx.commit().await?;
        Ok(change)
    }
}

impl JobInsert {
    /// Gives the job being stored its approval gate (pending) and its on-complete command line.
    pub async fn set_review(&mut self, gate: bool, on_complete: Option<&str>) -> StoreResult<()> {
        let job_id = self.job_id().to_owned();
        sqlx::query("UPDATE jobs SET approval_state = $1, on_complete = $2 WHERE id = $3")
            .bind(gate.then_some(ApprovalState::Pending.as_str()))
            .bind(on_complete)
            .bind(&job_id)
            .execute(&mut **self.transaction())
            .await?;
        Ok(())
    }

    /// Adds the on-complete task after every task added so far; it waits for all of them.
    pub async fn add_on_complete(&mut self, task: NewTask) -> StoreResult<()> {
        let task_id = task.id.clone();
        self.add_tasks(vec![task]).await?;
        let job_id = self.job_id().to_owned();
        depend_on_every_other_task(self.transaction(), &job_id, &task_id).await
    }
}

/// Refuses, naming why, when the job cannot be approved or rejected now.
async fn check_in(tx: &mut Transaction<'static, Any>, job_id: &str, verb: &str) -> StoreResult<()> {
    let status = job_status(tx, job_id).await?;
    let gate = approval_gate(tx, job_id).await?;
    check_approval_request(status, gate, verb).map_err(StoreError::Refused)
}

async fn record_review(
    tx: &mut Transaction<'static, Any>,
    job_id: &str,
    state: ApprovalState,
    by: &str,
    comment: &str,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE jobs SET approval_state = $1, approval_by = $2, approval_comment = $3,
             approval_at = $4 WHERE id = $5",
    )
    .bind(state.as_str())
    .bind(by)
    .bind(Some(comment).filter(|c| !c.is_empty()))
    .bind(now())
    .bind(job_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn insert_task(
    tx: &mut Transaction<'static, Any>,
    job_id: &str,
    number: i64,
    task: &NewTask,
    at: &str,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO tasks (id, job_id, index_in_job, name, task_type, priority, status,
            commands, steps_total, frames, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, 'queued', $7, $8, $9, $10, $11)",
    )
    .bind(&task.id)
    .bind(job_id)
    .bind(number)
    .bind(&task.name)
    .bind(&task.task_type)
    .bind(task.priority)
    .bind(&task.commands)
    .bind(task.steps_total)
    .bind(&task.frames)
    .bind(at)
    .bind(at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The on-complete task `task_id` waits for every other task of its job.
async fn depend_on_every_other_task(
    tx: &mut Transaction<'static, Any>,
    job_id: &str,
    task_id: &str,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO task_dependencies (task_id, dependency_id)
         SELECT $1, id FROM tasks WHERE job_id = $2 AND id <> $1",
    )
    .bind(task_id)
    .bind(job_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
