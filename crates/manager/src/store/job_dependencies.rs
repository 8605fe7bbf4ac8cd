//! Cross-job dependencies: a job waits in `waiting-for-dependencies` until every job it
//! depends on has completed. A dependency that failed, was canceled or was deleted holds its
//! dependents ("on hold", said in their activity and in `/why`) until it is requeued and
//! completes, or the dependents' dependencies are changed. Cycles are refused.
use std::collections::{HashSet, VecDeque};

use sqlx::{Any, Transaction};

use super::job_gates::{Dependency, dependencies_of, has_unmet_dependencies, waiting_activity};
use super::job_status::{JobChange, enter_job_status};
use super::{Store, StoreError, StoreResult, job_status, now};
use crate::state::JobStatus;

impl Store {
    /// The jobs `job_id` depends on, with their current status.
    pub async fn job_dependencies(&self, job_id: &str) -> StoreResult<Vec<Dependency>> {
        let mut tx = self.read.begin().await?;
        let found = dependencies_of(&mut tx, job_id).await?;
        tx.commit().await?;
        Ok(found)
    }

    /// Of `ids`, the ones that name no job.
    pub async fn unknown_jobs(&self, ids: &[String]) -> StoreResult<Vec<String>> {
        let list = serde_json::to_string(ids).unwrap_or_else(|_| "[]".into());
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT value FROM json_each($1) WHERE value NOT IN (SELECT id FROM jobs)",
        )
        .bind(list)
        .fetch_all(&self.read)
        .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// Replaces the dependencies of `job_id` (a job that has not started: waiting, queued or
    /// paused). Refused when a dependency does not exist or would close a cycle. The job
    /// waits, or is queued, according to its new dependencies.
    pub async fn set_job_dependencies(
        &self,
        job_id: &str,
        depends_on: &[String],
    ) -> StoreResult<Option<JobChange>> {
        let mut tx = self.begin().await?;
        let status = match sqlx::query_as::<_, (String,)>("SELECT status FROM jobs WHERE id = $1")
            .bind(job_id)
            .fetch_optional(&mut *tx)
            .await?
        {
            None => return Err(StoreError::NotFound(format!("no job with id {job_id}"))),
            Some(_) => job_status(&mut tx, job_id).await?,
        };
        if !matches!(
            status,
            JobStatus::WaitingForDependencies | JobStatus::Queued | JobStatus::Paused
        ) {
            return Err(StoreError::Refused(format!(
                "the dependencies of a job in status \"{status}\" cannot change; that is \
                 possible while it is waiting-for-dependencies, queued or paused"
            )));
        }
        check_no_cycle(&mut tx, job_id, depends_on).await?;
        sqlx::query("DELETE FROM job_dependencies WHERE job_id = $1")
            .bind(job_id)
            .execute(&mut *tx)
            .await?;
        insert_dependencies(&mut tx, job_id, depends_on).await?;
        let change = settle_waiting_job(&mut tx, job_id, status).await?;
        tx.commit().await?;
        Ok(change)
    }

    /// Re-checks the waiting and queued jobs that depend on `of` (every such job when None):
    /// waiting ones whose dependencies all completed are queued; queued ones whose dependency
    /// is no longer completed (requeued, say) wait again; the others get an activity saying what
    /// they wait for. A job that already started keeps running. Returns the jobs that changed.
    pub async fn settle_dependents(&self, of: Option<&str>) -> StoreResult<Vec<String>> {
        let waiting: Vec<(String,)> = sqlx::query_as(
            "SELECT j.id FROM jobs j
             WHERE j.status IN ('waiting-for-dependencies', 'queued')
               AND EXISTS (SELECT 1 FROM job_dependencies d
                    WHERE d.job_id = j.id AND ($1 IS NULL OR d.depends_on_id = $1))",
        )
        .bind(of)
        .fetch_all(&self.read)
        .await?;
        if waiting.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.begin().await?;
        let mut changed = Vec::new();
        for (job_id,) in waiting {
            // Read again inside the write transaction: a user may have canceled it meanwhile.
            let status = job_status(&mut tx, &job_id).await?;
            if !matches!(
                status,
                JobStatus::WaitingForDependencies | JobStatus::Queued
            ) {
                continue;
            }
            let before: (String,) = sqlx::query_as("SELECT activity FROM jobs WHERE id = $1")
                .bind(&job_id)
                .fetch_one(&mut *tx)
                .await?;
            let change = settle_waiting_job(&mut tx, &job_id, status).await?;
            let after: (String,) = sqlx::query_as("SELECT activity FROM jobs WHERE id = $1")
                .bind(&job_id)
                .fetch_one(&mut *tx)
                .await?;
            if change.is_some() || before != after {
                changed.push(job_id);
            }
        }
        tx.commit().await?;
        Ok(changed)
    }

    /// Of the jobs in `ids`, those that waiting or queued (not started) jobs depend on.
    pub async fn jobs_with_waiting_dependents(&self, ids: &[String]) -> StoreResult<Vec<String>> {
        let list = serde_json::to_string(ids).unwrap_or_else(|_| "[]".into());
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT DISTINCT d.depends_on_id FROM job_dependencies d
             JOIN jobs j ON j.id = d.job_id
                AND j.status IN ('waiting-for-dependencies', 'queued')
             WHERE d.depends_on_id IN (SELECT value FROM json_each($1))",
        )
        .bind(list)
        .fetch_all(&self.read)
        .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }
}

/// Stores that `job_id` depends on `depends_on`.
pub(super) async fn insert_dependencies(
    tx: &mut Transaction<'static, Any>,
    job_id: &str,
    depends_on: &[String],
) -> StoreResult<()> {
    for dependency in depends_on {
        sqlx::query(
            "INSERT INTO job_dependencies (job_id, depends_on_id) VALUES ($1, $2)
             ON CONFLICT DO NOTHING",
        )
        .bind(job_id)
        .bind(dependency)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Moves a job that was `status` to where its dependencies say: a waiting job whose
/// dependencies all completed is queued; a queued one with unmet dependencies waits
/// (through `enter_job_status`, which turns `queued` into waiting); a waiting one gets an
/// activity naming what it waits for. Paused jobs stay paused.
async fn settle_waiting_job(
    tx: &mut Transaction<'static, Any>,
    job_id: &str,
    status: JobStatus,
) -> StoreResult<Option<JobChange>> {
    let unmet = has_unmet_dependencies(tx, job_id).await?;
    match status {
        JobStatus::WaitingForDependencies if !unmet => Ok(Some(
            enter_job_status(
                tx,
                job_id,
                JobStatus::Queued,
                "every job it depends on has completed",
            )
            .await?,
        )),
        JobStatus::Queued if unmet => Ok(Some(
            enter_job_status(tx, job_id, JobStatus::Queued, "its dependencies changed").await?,
        )),
        JobStatus::WaitingForDependencies => {
            let activity = waiting_activity(&dependencies_of(tx, job_id).await?);
            sqlx::query(
                "UPDATE jobs SET activity = $1, updated_at = $2 WHERE id = $3 AND activity <> $1",
            )
            .bind(&activity)
            .bind(now())
            .bind(job_id)
            .execute(&mut **tx)
            .await?;
            Ok(None)
        }
        _ => Ok(None),
    }
}

/// Refuses dependencies of `job_id` that lead back to it (directly or through other jobs'
/// dependencies), naming the path.
async fn check_no_cycle(
    tx: &mut Transaction<'static, Any>,
    job_id: &str,
    depends_on: &[String],
) -> StoreResult<()> {
    // Breadth-first through the stored dependencies, remembering how each job was reached.
    let mut came_from: std::collections::HashMap<String, String> = Default::default();
    let mut seen: HashSet<String> = HashSet::new();
    let mut queue: VecDeque<String> = VecDeque::new();
    for dependency in depends_on {
        if dependency == job_id {
            return Err(StoreError::Refused(format!(
                "job {job_id} cannot depend on itself"
            )));
        }
        if seen.insert(dependency.clone()) {
            queue.push_back(dependency.clone());
        }
    }
    while let Some(current) = queue.pop_front() {
        let next: Vec<(String,)> =
            sqlx::query_as("SELECT depends_on_id FROM job_dependencies WHERE job_id = $1")
                .bind(&current)
                .fetch_all(&mut **tx)
                .await?;
        for (next,) in next {
            if next == job_id {
                // The chain back from `current` to one of the new dependencies.
                let mut chain = vec![current.clone()];
                while let Some(previous) = came_from.get(chain.last().unwrap_or(&current)) {
                    chain.push(previous.clone());
                }
                chain.push(job_id.to_string());
                chain.reverse();
                chain.push(job_id.to_string());
                return Err(StoreError::Refused(format!(
                    "these dependencies would make a cycle: {}",
                    chain.join(" → ")
                )));
            }
            if seen.insert(next.clone()) {
                came_from.insert(next.clone(), current.clone());
                queue.push_back(next);
            }
        }
    }
    Ok(())
}
