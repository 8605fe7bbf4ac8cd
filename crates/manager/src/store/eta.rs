//! What completion estimates are made from (`state::eta`): the unfinished jobs in scheduling
//! order, their task counts, the durations of their latest completed tasks and the type of
//! their next task.
use super::{Store, StoreResult};

/// Completed tasks per job whose durations are sampled (the latest by index).
const SAMPLED_TASKS: i64 = 200;

/// One unfinished job as stored.
#[derive(Clone, Debug)]
pub struct EtaInput {
    pub job_id: String,
    pub status: String,
    /// `JobLimits` as JSON.
    pub limits: String,
    /// Queued and soft-failed tasks.
    pub waiting: u64,
    pub running: u64,
    /// Durations in seconds of its latest completed tasks.
    pub durations: Vec<f64>,
    /// The type of the first task waiting to run.
    pub next_task_type: Option<String>,
}

impl Store {
    /// Every job that may still run, in scheduling order (priority, then age).
    pub async fn eta_inputs(&self) -> StoreResult<Vec<EtaInput>> {
        let mut connection = self.read.acquire().await?;
        let jobs: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT id, status, limits FROM jobs
             WHERE status IN ('queued', 'active', 'requeueing', 'pause-requested', 'paused',
                              'waiting-for-dependencies')
             ORDER BY priority DESC, created_at, id",
        )
        .fetch_all(&mut *connection)
        .await?;
        let mut inputs = Vec::with_capacity(jobs.len());
        for (job_id, status, limits) in jobs {
            let counts: Vec<(String, i64)> =
                sqlx::query_as("SELECT status, n FROM job_task_counts WHERE job_id = ? AND n > 0")
                    .bind(&job_id)
                    .fetch_all(&mut *connection)
                    .await?;
            let count = |wanted: &[&str]| {
                counts
                    .iter()
                    .filter(|(s, _)| wanted.contains(&s.as_str()))
                    .map(|(_, n)| (*n).max(0) as u64)
                    .sum::<u64>()
            };
            let durations: Vec<(f64,)> = sqlx::query_as(
                "SELECT (julianday(updated_at) - julianday(started_at)) * 86400.0 FROM tasks
                 WHERE job_id = ? AND status = 'completed' AND started_at IS NOT NULL
                 ORDER BY index_in_job DESC LIMIT ?",
            )
            .bind(&job_id)
            .bind(SAMPLED_TASKS)
            .fetch_all(&mut *connection)
            .await?;
            let next: Option<(String,)> = sqlx::query_as(
                "SELECT task_type FROM tasks WHERE job_id = ? AND status IN ('queued', 'soft-failed')
                 ORDER BY index_in_job LIMIT 1",
            )
            .bind(&job_id)
            .fetch_optional(&mut *connection)
            .await?;
            inputs.push(EtaInput {
                waiting: count(&["queued", "soft-failed", "paused"]),
                running: count(&["active"]),
                durations: durations.into_iter().map(|(d,)| d.max(0.0)).collect(),
                next_task_type: next.map(|(t,)| t),
                job_id,
                status,
                limits,
            });
        }
        Ok(inputs)
    }
}
