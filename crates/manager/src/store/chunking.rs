//! Adaptive chunking in the store: what the re-chunker reads about a job (its finished and its
//! never-started queued chunks) and the swap of queued chunks for regrouped ones, in one
//! transaction that gives up if any of them started meanwhile.
use super::{NewTask, SCRIPTED_JOB_COLUMNS, ScriptedJob, Store, StoreError, StoreResult, now};
use crate::state::FrameSample;

/// A chunk task that may still be regrouped: queued, never started, never failed.
#[derive(Clone, Debug, PartialEq)]
pub struct QueuedChunk {
    pub task_id: String,
    pub task_type: String,
    pub frames: String,
}

/// What the re-chunker plans from.
#[derive(Clone, Debug)]
pub struct ChunkingState {
    pub job: ScriptedJob,
    /// The job's target task duration.
    pub target_task_seconds: f64,
    pub finished: Vec<FrameSample>,
    /// In scheduling order.
    pub queued: Vec<QueuedChunk>,
}

impl Store {
    /// Of the jobs in `ids`, those with a target task duration that may run.
    pub async fn jobs_with_target_duration(&self, ids: &[String]) -> StoreResult<Vec<String>> {
        let list = serde_json::to_string(ids).unwrap_or_else(|_| "[]".into());
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT id FROM jobs WHERE id IN (SELECT value FROM json_each($1))
               AND target_task_seconds IS NOT NULL AND status IN ('queued', 'active')",
        )
        .bind(list)
        .fetch_all(&self.read)
        .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// The job's chunking facts; None when it has no target or cannot run (finished, paused).
    pub async fn chunking_state(&self, job_id: &str) -> StoreResult<Option<ChunkingState>> {
        let mut connection = self.read.acquire().await?;
        let job: Option<ScriptedJob> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {SCRIPTED_JOB_COLUMNS} FROM jobs
             WHERE id = $1 AND target_task_seconds IS NOT NULL AND status IN ('queued', 'active')"
        )))
        .bind(job_id)
        .fetch_optional(&mut *connection)
        .await?;
        let Some((job, target_task_seconds)) =
            job.and_then(|job| job.target_task_seconds.map(|target| (job, target)))
        else {
            return Ok(None);
        };
        let finished: Vec<(String, f64)> = sqlx::query_as(
            "SELECT frames, (julianday(updated_at) - julianday(started_at)) * 86400.0
             FROM tasks WHERE job_id = $1 AND status = 'completed' AND frames IS NOT NULL
               AND started_at IS NOT NULL",
        )
        .bind(job_id)
        .fetch_all(&mut *connection)
        .await?;
        let finished = finished
            .into_iter()
            .filter_map(|(frames, seconds)| sample(&frames, seconds))
            .collect();
        let queued: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT t.id, t.task_type, t.frames FROM tasks t
             WHERE t.job_id = $1 AND t.status = 'queued' AND t.frames IS NOT NULL
               AND t.started_at IS NULL
               AND NOT EXISTS (SELECT 1 FROM task_failures f WHERE f.task_id = t.id)
             ORDER BY t.rowid",
        )
        .bind(job_id)
        .fetch_all(&mut *connection)
        .await?;
        let queued = queued
            .into_iter()
            .map(|(task_id, task_type, frames)| QueuedChunk {
                task_id,
                task_type,
                frames,
            })
            .collect();
        Ok(Some(ChunkingState {
            job,
            target_task_seconds,
            finished,
            queued,
        }))
    }

    /// Replaces the queued chunk tasks `old` of `job_id` with `new` (no more of them; their own
    /// dependencies are not stored: a chunk task stands alone), in one
    /// transaction: the new tasks take the old ones' places in the scheduling order (rowids) and
    /// numbers in the job, and every task that depended on an old one depends on all the new
    /// ones. Returns false, changing nothing, when an old task is no longer a never-started
    /// queued task (a worker took it meanwhile).
    pub async fn replace_queued_chunks(
        &self,
        job_id: &str,
        old: &[String],
        new: Vec<NewTask>,
    ) -> StoreResult<bool> {
        if new.is_empty() || new.len() > old.len() {
            return Err(StoreError::Refused(format!(
                "{} queued tasks cannot be regrouped into {}",
                old.len(),
                new.len()
            )));
        }
        let old_json = serde_json::to_string(old).unwrap_or_else(|_| "[]".into());
        let mut tx = self.begin().await?;
        let places: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT t.rowid, t.index_in_job FROM tasks t
             WHERE t.job_id = $1 AND t.id IN (SELECT value FROM json_each($2))
               AND t.status = 'queued' AND t.started_at IS NULL
               AND NOT EXISTS (SELECT 1 FROM task_failures f WHERE f.task_id = t.id)
             ORDER BY t.rowid",
        )
        .bind(job_id)
        .bind(&old_json)
        .fetch_all(&mut *tx)
        .await?;
        if places.len() != old.len() {
            return Ok(false);
        }
        let mut numbers: Vec<i64> = places.iter().map(|(_, number)| *number).collect();
        numbers.sort_unstable();
        let dependents: Vec<(String,)> = sqlx::query_as(
            "SELECT DISTINCT task_id FROM task_dependencies
             WHERE dependency_id IN (SELECT value FROM json_each($1))
               AND task_id NOT IN (SELECT value FROM json_each($1))",
        )
        .bind(&old_json)
        .fetch_all(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM tasks WHERE id IN (SELECT value FROM json_each($1))")
            .bind(&old_json)
            .execute(&mut *tx)
            .await?;
        let at = now();
        for ((chunk, (rowid, _)), number) in new.iter().zip(&places).zip(&numbers) {
            sqlx::query(
                "INSERT INTO tasks (rowid, id, job_id, index_in_job, name, task_type, priority,
                    status, commands, steps_total, frames, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 'queued', $8, $9, $10, $11, $12)",
            )
            .bind(rowid)
            .bind(&chunk.id)
            .bind(job_id)
            .bind(number)
            .bind(&chunk.name)
            .bind(&chunk.task_type)
            .bind(chunk.priority)
            .bind(&chunk.commands)
            .bind(chunk.steps_total)
            .bind(&chunk.frames)
            .bind(&at)
            .bind(&at)
            .execute(&mut *tx)
            .await?;
            for (dependent,) in &dependents {
                sqlx::query(
                    "INSERT INTO task_dependencies (task_id, dependency_id) VALUES ($1, $2)",
                )
                .bind(dependent)
                .bind(&chunk.id)
                .execute(&mut *tx)
                .await?;
            }
        }
        // Task inserts are counted by hand (there is no insert trigger: a job's insert adds its
        // count once); the delete trigger took the old ones off.
        sqlx::query(
            "INSERT INTO job_task_counts (job_id, status, n) VALUES ($1, 'queued', $2)
             ON CONFLICT (job_id, status) DO UPDATE SET n = job_task_counts.n + excluded.n",
        )
        .bind(job_id)
        .bind(new.len() as i64)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE jobs SET steps_total = (SELECT COALESCE(SUM(steps_total), 0) FROM tasks
                 WHERE job_id = $1), updated_at = $2 WHERE id = $1",
        )
        .bind(job_id)
        .bind(&at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }
}

/// A finished chunk as a sample; None for frames that do not read back (never stored so).
fn sample(frames: &str, seconds: f64) -> Option<FrameSample> {
    let list = crate::compiler::frames::frame_list(frames).ok()?;
    let first = i64::try_from(*list.first()?).ok()?;
    let last = i64::try_from(*list.last()?).ok()?;
    Some(FrameSample {
        first,
        last,
        frames: list.len() as u64,
        seconds,
    })
}
