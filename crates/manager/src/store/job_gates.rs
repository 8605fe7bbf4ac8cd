//! What holds a job back from the queue, read inside a transaction: its approval gate and
//! the jobs it depends on. Entering a job status (`job_status.rs`) consults both; the
//! approval and dependency modules change them.
use sqlx::{Any, Transaction};

use super::StoreResult;
use crate::state::{ApprovalState, JobStatus};

/// A job another job depends on, as it is now.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Dependency {
    pub id: String,
    /// Empty when the job was deleted.
    pub name: String,
    /// The job's status, or `deleted`.
    pub status: String,
}

impl Dependency {
    pub fn is_completed(&self) -> bool {
        self.status == JobStatus::Completed.as_str()
    }

    /// Failed, canceled, rejected or deleted: it will not complete unless someone requeues it
    /// (a rejected one never will).
    pub fn holds_dependents(&self) -> bool {
        matches!(
            self.status.as_str(),
            "failed" | "canceled" | "rejected" | "deleted"
        )
    }

    fn describe(&self) -> String {
        if self.name.is_empty() {
            format!("job {}", self.id)
        } else {
            format!("job \"{}\" ({})", self.name, self.id)
        }
    }
}

/// What a waiting job should say while it waits, from its dependencies.
pub fn waiting_activity(dependencies: &[Dependency]) -> String {
    if let Some(held) = dependencies.iter().find(|d| d.holds_dependents()) {
        return format!(
            "On hold: {} that this job depends on is {}; requeue it, or change this job's \
             dependencies",
            held.describe(),
            held.status
        );
    }
    let waiting: Vec<String> = dependencies
        .iter()
        .filter(|d| !d.is_completed())
        .map(|d| format!("{} is {}", d.describe(), d.status))
        .collect();
    format!(
        "Waiting for {} job(s) it depends on: {}",
        waiting.len(),
        waiting.join("; ")
    )
}

/// The job's approval gate, inside a transaction (None: the job has no gate).
pub(super) async fn approval_gate(
    tx: &mut Transaction<'static, Any>,
    job_id: &str,
) -> StoreResult<Option<ApprovalState>> {
    let (state,): (Option<String>,) =
        sqlx::query_as("SELECT approval_state FROM jobs WHERE id = $1")
            .bind(job_id)
            .fetch_one(&mut **tx)
            .await?;
    Ok(state.and_then(|s| s.parse().ok()))
}

/// The dependencies of `job_id` with their statuses (`deleted` for a job that is gone).
pub(super) async fn dependencies_of(
    tx: &mut sqlx::AnyConnection,
    job_id: &str,
) -> StoreResult<Vec<Dependency>> {
    let rows: Vec<(String, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT d.depends_on_id, j.name, j.status FROM job_dependencies d
         LEFT JOIN jobs j ON j.id = d.depends_on_id WHERE d.job_id = $1
         ORDER BY d.depends_on_id",
    )
    .bind(job_id)
    .fetch_all(&mut *tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, name, status)| Dependency {
            id,
            name: name.unwrap_or_default(),
            status: status.unwrap_or_else(|| "deleted".into()),
        })
        .collect())
}

/// Whether `job_id` has a dependency that has not completed.
pub(super) async fn has_unmet_dependencies(
    tx: &mut Transaction<'static, Any>,
    job_id: &str,
) -> StoreResult<bool> {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM job_dependencies d LEFT JOIN jobs j ON j.id = d.depends_on_id
         WHERE d.job_id = $1 AND (j.status IS NULL OR j.status <> 'completed')",
    )
    .bind(job_id)
    .fetch_one(&mut **tx)
    .await?;
    Ok(n > 0)
}
