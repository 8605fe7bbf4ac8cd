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
    /// (index in job, duration in seconds) of its latest completed tasks.
    pub durations: Vec<(f64, f64)>,
    /// The mean index of its tasks waiting to run.
    pub waiting_mean_index: Option<f64>,
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
                sqlx::query_as("SELECT status, n FROM job_task_counts WHERE job_id = $1 AND n > 0")
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
            let durations: Vec<(i64, f64)> = sqlx::query_as(
                "SELECT index_in_job, (julianday(updated_at) - julianday(started_at)) * 86400.0
                 FROM tasks
                 WHERE job_id = $1 AND status = 'completed' AND started_at IS NOT NULL
                 ORDER BY index_in_job DESC LIMIT $2",
            )
            .bind(&job_id)
            .bind(SAMPLED_TASKS)
            .fetch_all(&mut *connection)
            .await?;
            let (waiting_mean_index,): (Option<f64>,) = sqlx::query_as(
                "SELECT CAST(AVG(index_in_job) AS DOUBLE PRECISION) FROM tasks
                 WHERE job_id = $1 AND status IN ('queued', 'soft-failed')",
            )
            .bind(&job_id)
            .fetch_one(&mut *connection)
            .await?;
            let next: Option<(String,)> = sqlx::query_as(
                "SELECT task_type FROM tasks WHERE job_id = $1 AND status IN ('queued', 'soft-failed')
                 ORDER BY rowid LIMIT 1",
            )
            .bind(&job_id)
            .fetch_optional(&mut *connection)
            .await?;
            inputs.push(EtaInput {
                waiting: count(&["queued", "soft-failed", "paused"]),
                running: count(&["active"]),
                durations: durations
                    .into_iter()
                    .map(|(index, seconds)| (index as f64, seconds.max(0.0)))
                    .collect(),
                waiting_mean_index,
                next_task_type: next.map(|(t,)| t),
                job_id,
                status,
                limits,
            });
        }
        Ok(inputs)
    }
}
