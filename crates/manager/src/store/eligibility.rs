//! The facts `state::eligibility` decides on, read from the database: the workers that
//! signed on, and a task's job tag, requirements, blocklist and failure list.
use super::{StoreError, StoreResult};
use crate::state::{JobRequirements, TaskFacts, WorkerCapabilities, WorkerFacts, could_run};

/// A non-deleted worker that signed on at least once (it reported its task types).
pub(super) struct Candidate {
    pub id: String,
    pub task_types: Vec<String>,
    pub capabilities: WorkerCapabilities,
    pub tag_ids: Vec<String>,
}

impl Candidate {
    /// The worker for a job with worker tag `job_tag` (None: untagged).
    pub fn facts(&self, job_tag: Option<&str>) -> WorkerFacts<'_> {
        WorkerFacts {
            id: &self.id,
            task_types: &self.task_types,
            in_job_tag: job_tag.is_none_or(|tag| self.tag_ids.iter().any(|t| t == tag)),
            capabilities: &self.capabilities,
        }
    }
}

pub(super) async fn candidates(conn: &mut sqlx::AnyConnection) -> StoreResult<Vec<Candidate>> {
    let rows: Vec<(String, String, String, String, String)> = sqlx::query_as(
        "SELECT w.id, w.supported_task_types, w.capabilities,
            (SELECT json_group_array(g.name) FROM worker_tag_membership m
                JOIN worker_tags g ON g.id = m.worker_tag_id WHERE m.worker_id = w.id),
            (SELECT json_group_array(m.worker_tag_id) FROM worker_tag_membership m
                WHERE m.worker_id = w.id)
         FROM workers w WHERE w.deleted_at IS NULL AND w.supported_task_types <> '[]'",
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, types, capabilities, tag_names, tag_ids)| Candidate {
            id,
            task_types: serde_json::from_str(&types).unwrap_or_default(),
            capabilities: WorkerCapabilities::from_stored(
                &capabilities,
                serde_json::from_str(&tag_names).unwrap_or_default(),
            ),
            tag_ids: serde_json::from_str(&tag_ids).unwrap_or_default(),
        })
        .collect())
}

/// The stored requirements of job `job_id`; a row that does not parse is corrupt.
pub(super) fn parse_requirements(job_id: &str, stored: &str) -> StoreResult<JobRequirements> {
    JobRequirements::from_stored(stored)
        .map_err(|e| StoreError::Corrupt(format!("requirements of job {job_id}: {e}")))
}

/// Workers blocklisted for the job's tasks of `task_type`.
pub(super) async fn blocklisted(
    conn: &mut sqlx::AnyConnection,
    job_id: &str,
    task_type: &str,
) -> StoreResult<Vec<String>> {
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT worker_id FROM job_blocklist WHERE job_id = $1 AND task_type = $2")
            .bind(job_id)
            .bind(task_type)
            .fetch_all(&mut *conn)
            .await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

/// How many workers could run a task of `task_type` of job `job_id`: with `failed_by`
/// (the task's failure list) the job's blocklist and that list count too; without, only
/// type, tag and requirements (the workers capable of the job at all). Offline and
/// sleeping workers count: they may come back.
pub(super) async fn workers_able(
    conn: &mut sqlx::AnyConnection,
    job_id: &str,
    task_type: &str,
    failed_by: Option<&[String]>,
) -> StoreResult<u64> {
    let (tag, requirements): (Option<String>, String) =
        sqlx::query_as("SELECT worker_tag_id, requirements FROM jobs WHERE id = $1")
            .bind(job_id)
            .fetch_one(&mut *conn)
            .await?;
    let requirements = parse_requirements(job_id, &requirements)?;
    let blocked = match failed_by {
        Some(_) => blocklisted(conn, job_id, task_type).await?,
        None => Vec::new(),
    };
    let task = TaskFacts {
        task_type,
        requirements: &requirements,
        blocklisted: &blocked,
        failed_by: failed_by.unwrap_or_default(),
    };
    let workers = candidates(conn).await?;
    Ok(workers
        .iter()
        .filter(|w| could_run(&w.facts(tag.as_deref()), &task))
        .count() as u64)
}
