//! The scheduling query: picks the next runnable task for a worker and assigns it, in
//! one write transaction, so a task can never go to two workers.
use std::collections::{BTreeMap, HashMap};

use super::insert_task_status_events;
use super::job_ripple::ripple_to_job;
use super::{Engine, Store, StoreError, StoreResult, now, record_status_event};
use crate::state::{JobLimits, JobStatus, TaskStatus, WorkerCapabilities, free_resources};

/// A task just assigned to a worker, with what the worker needs to run it.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Assignment {
    pub task_id: String,
    pub task_name: String,
    pub task_type: String,
    pub task_priority: i64,
    pub commands: String,
    pub steps_total: i64,
    pub lease_epoch: i64,
    pub job_id: String,
    pub job_name: String,
    pub job_type: String,
    pub job_priority: i64,
}

/// The conditions of `NEXT_TASK_SQL` both engines write alike (the twin in PostgreSQL's
/// dialect is `POSTGRES_NEXT_TASK_SQL`): the job and its status, the task type,
/// dependencies, the worker's failures and blocklisting, the job's tag, a soft-failed task's
/// retry time.
macro_rules! runnable_filters {
    () => {
        "JOIN jobs j ON j.id = t.job_id
WHERE t.status IN ('queued', 'soft-failed')
  AND j.priority = $3 AND j.status IN ('queued', 'active')
  AND t.job_id NOT IN (SELECT value FROM json_each($9))
  AND t.task_type = $2
  AND NOT EXISTS (
      SELECT 1 FROM task_dependencies d JOIN tasks dt ON dt.id = d.dependency_id
      WHERE d.task_id = t.id AND dt.status <> 'completed')
  AND NOT EXISTS (SELECT 1 FROM task_failures f WHERE f.task_id = t.id AND f.worker_id = $1)
  AND NOT EXISTS (
      SELECT 1 FROM job_blocklist b
      WHERE b.job_id = j.id AND b.worker_id = $1 AND b.task_type = t.task_type)
  AND (j.worker_tag_id IS NULL OR j.worker_tag_id IN (
      SELECT worker_tag_id FROM worker_tag_membership WHERE worker_id = $1))
  AND (t.retry_at IS NULL OR t.status = 'queued' OR t.retry_at <= $7)"
    };
}
/// Eligibility of runnable tasks of type ?2 for worker ?1, in jobs of priority ?3; ?4..?6
/// are the worker's RAM, GPU count and tag names (JSON array) for jobs with requirements
/// (`state::requirements`); ?7 is now (a soft-failed task waits for its `retry_at`); ?8 the
/// free units of each resource pool (JSON object) for jobs with limits (`state::limits`),
/// whose `max_workers` is counted from their active tasks; ?9 the jobs (JSON array) whose
/// limits block this worker outright, so their tasks are passed over with one lookup each
/// instead of the limit subqueries. Order: task priority, then insertion order (rowid: older
/// jobs first, then the job's own order) — the partial index `tasks_runnable_by_type` holds
/// exactly this order within each task type, so SQLite walks the type's range and stops at
/// the first eligible task instead of sorting. The caller asks once per task type the worker
/// runs and takes the first in that order.
const NEXT_TASK_SQL: &str = concat!(
    "SELECT t.id, t.status, t.priority, t.rowid FROM tasks t INDEXED BY tasks_runnable_by_type\n",
    runnable_filters!(),
    "
  AND (j.requirements = '{}' OR (
      COALESCE(json_extract(j.requirements, '$.min_ram_bytes'), 0) <= $4
      AND COALESCE(json_extract(j.requirements, '$.min_gpus'), 0) <= $5
      AND NOT EXISTS (SELECT 1 FROM json_each(j.requirements, '$.required_tags') r
          WHERE r.value NOT IN (SELECT value FROM json_each($6)))))
  AND (j.limits = '{}' OR (
      (json_extract(j.limits, '$.max_workers') IS NULL
       OR $1 IN (SELECT a.worker_id FROM tasks a WHERE a.job_id = j.id AND a.status = 'active')
       OR (SELECT COUNT(DISTINCT a.worker_id) FROM tasks a
           WHERE a.job_id = j.id AND a.status = 'active') < json_extract(j.limits, '$.max_workers'))
      AND (json_extract(j.limits, '$.resources') IS NULL
       OR (json_array_length(j.limits, '$.resource_task_types') > 0
           AND t.task_type NOT IN (SELECT value FROM json_each(j.limits, '$.resource_task_types')))
       OR NOT EXISTS (SELECT 1 FROM json_each(j.limits, '$.resources') r
           WHERE r.value > COALESCE(json_extract($8, '$.\"' || r.key || '\"'), 0)))))
ORDER BY t.priority DESC, t.rowid
LIMIT 1"
);

/// Units of resource pools held by running tasks: (job limits, task type, running tasks).
/// Walks the active tasks only (the partial index `tasks_worker`).
const HELD_RESOURCES_SQL: &str = "
SELECT j.limits, t.task_type, COUNT(*) FROM tasks t INDEXED BY tasks_worker
JOIN jobs j ON j.id = t.job_id
WHERE t.status = 'active' AND j.limits <> '{}'
GROUP BY j.id, t.task_type";

/// `NEXT_TASK_SQL` in PostgreSQL's dialect: JSON is read with jsonb operators instead of
/// `json_extract`/`json_each(doc, path)`, and there is no `INDEXED BY` (the planner picks
/// `tasks_runnable_by_type`, which ends in `rowid` there too). Same parameters, rows and order.
const POSTGRES_NEXT_TASK_SQL: &str = concat!(
    "SELECT t.id, t.status, t.priority, t.rowid FROM tasks t\n",
    runnable_filters!(),
    "
  AND (j.requirements = '{}' OR (
      COALESCE((j.requirements::jsonb ->> 'min_ram_bytes')::numeric, 0) <= $4
      AND COALESCE((j.requirements::jsonb ->> 'min_gpus')::numeric, 0) <= $5
      AND NOT EXISTS (
          SELECT 1 FROM jsonb_array_elements_text(
              COALESCE(j.requirements::jsonb -> 'required_tags', '[]')) AS r(value)
          WHERE r.value NOT IN (SELECT value FROM json_each($6)))))
  AND (j.limits = '{}' OR (
      (j.limits::jsonb ->> 'max_workers' IS NULL
       OR $1 IN (SELECT a.worker_id FROM tasks a WHERE a.job_id = j.id AND a.status = 'active')
       OR (SELECT COUNT(DISTINCT a.worker_id) FROM tasks a
           WHERE a.job_id = j.id AND a.status = 'active')
          < (j.limits::jsonb ->> 'max_workers')::numeric)
      AND (j.limits::jsonb ->> 'resources' IS NULL
       OR (jsonb_array_length(COALESCE(j.limits::jsonb -> 'resource_task_types', '[]')) > 0
           AND t.task_type NOT IN (SELECT jsonb_array_elements_text(
               j.limits::jsonb -> 'resource_task_types')))
       OR NOT EXISTS (SELECT 1 FROM jsonb_each_text(j.limits::jsonb -> 'resources') AS r
           WHERE r.value::numeric > COALESCE(($8::jsonb ->> r.key)::numeric, 0)))))
ORDER BY t.priority DESC, t.rowid
LIMIT 1"
);

/// `HELD_RESOURCES_SQL` without `INDEXED BY`, for PostgreSQL.
const POSTGRES_HELD_RESOURCES_SQL: &str = "
SELECT j.limits, t.task_type, COUNT(*) FROM tasks t
JOIN jobs j ON j.id = t.job_id
WHERE t.status = 'active' AND j.limits <> '{}'
GROUP BY j.id, t.task_type";

/// Limits of the jobs that may run and have some, with the workers running their tasks now
/// (JSON array).
const LIMITED_JOBS_SQL: &str = "
SELECT j.id, j.limits, (SELECT json_group_array(DISTINCT a.worker_id) FROM tasks a
        WHERE a.job_id = j.id AND a.status = 'active' AND a.worker_id IS NOT NULL)
FROM jobs j WHERE j.status IN ('queued', 'active') AND j.limits <> '{}'";

/// Priorities of the jobs that may run, highest first: job priority orders before
/// anything else, so each level is searched in turn.
/// Also says whether any of those jobs has requirements (then the workers' capabilities
/// are read) or limits (then the units held of each resource pool are counted).
const JOB_PRIORITIES_SQL: &str = "
SELECT priority, MAX(CASE WHEN requirements <> '{}' THEN 1 ELSE 0 END),
       MAX(CASE WHEN limits <> '{}' THEN 1 ELSE 0 END) FROM jobs
WHERE status IN ('queued', 'active')
GROUP BY priority ORDER BY priority DESC";

/// RAM, GPU count and tag names of the workers in ?1 (JSON array of ids).
const CAPABILITIES_SQL: &str = "
SELECT w.id, w.capabilities, (SELECT json_group_array(g.name) FROM worker_tag_membership m
        JOIN worker_tags g ON g.id = m.worker_tag_id WHERE m.worker_id = w.id)
FROM workers w WHERE w.id IN (SELECT value FROM json_each($1))";

/// A runnable task as `NEXT_TASK_SQL` finds it: id, status, task priority, rowid.
type Runnable = (String, String, i64, i64);

/// Whether runnable task `a` comes before `b`: higher task priority first, then the one
/// stored first.
fn scheduled_before(a: &Runnable, b: &Runnable) -> bool {
    (-a.2, a.3) < (-b.2, b.3)
}

impl Store {
    /// Assigns the next runnable task to `worker_id`, if there is one: the task becomes
    /// `active` under a new lease epoch, and its job `active`.
    pub async fn assign_next_task(
        &self,
        worker_id: &str,
        task_types: &[String],
    ) -> StoreResult<Option<Assignment>> {
        let request = [(worker_id.to_string(), task_types.to_vec())];
        Ok(self.assign_tasks(&request).await?.pop().map(|(_, a)| a))
    }

    /// Assigns at most one task to each (worker, task types), all in one transaction
    /// (one commit for a whole round of free slots). Returns (worker id, assignment).
    pub async fn assign_tasks(
        &self,
        workers: &[(String, Vec<String>)],
    ) -> StoreResult<Vec<(String, Assignment)>> {
        let mut tx = self.begin().await?;
        let levels: Vec<(i64, super::Flag, super::Flag)> = sqlx::query_as(JOB_PRIORITIES_SQL)
            .fetch_all(&mut *tx)
            .await?;
        let capabilities = if levels
            .iter()
            .any(|(_, has_requirements, _)| has_requirements.0)
        {
            worker_capabilities(&mut tx, workers).await?
        } else {
            HashMap::new()
        };
        // Free units of each pool, kept up to date through the round.
        let any_limits = levels.iter().any(|(_, _, has_limits)| has_limits.0);
        let mut free = if any_limits {
            free_resources(&self.pools, &held_resources(&mut tx).await?)
        } else {
            BTreeMap::new()
        };
        // Jobs with limits and the workers running them, kept up to date through the round.
        let mut limited = if any_limits {
            limited_jobs(&mut tx).await?
        } else {
            HashMap::new()
        };
        let nothing = (0i64, 0i64, "[]".to_string());
        // Job name, type, priority and limits, read once per job per round; the job is active
        // after its first assignment (the ripple below), so later ones skip the ripple.
        let mut jobs: HashMap<String, (String, String, i64, JobLimits)> = HashMap::new();
        let mut assigned = Vec::new();
        // Status history rows, written in one statement at the end of the round.
        let mut history = Vec::new();
        let now = now();
        let refusing = super::worker_status::workers_refusing_tasks(&mut tx, workers).await?;
        for (worker_id, task_types) in workers {
            // A pending status request (lazy or forced) or sleep: no new task (§16.4).
            if refusing.contains(worker_id) {
                continue;
            }
            let mut next: Option<(String, String)> = None;
            let (ram, gpus, tags) = capabilities.get(worker_id).unwrap_or(&nothing);
            let free_json = serde_json::to_string(&free).unwrap_or_else(|_| "{}".into());
            let blocked: Vec<&String> = limited
                .iter()
                .filter(|(_, (limits, running_on))| {
                    limits.blocks_worker(running_on, worker_id, &free)
                })
                .map(|(job_id, _)| job_id)
                .collect();
            let blocked = serde_json::to_string(&blocked).unwrap_or_else(|_| "[]".into());
            for (priority, ..) in &levels {
                // The first of each task type's own order; the first of those overall.
                let mut first: Option<Runnable> = None;
                for task_type in task_types {
                    let sql = match self.engine {
                        Engine::Sqlite => NEXT_TASK_SQL,
                        Engine::Postgres => POSTGRES_NEXT_TASK_SQL,
                    };
                    let found: Option<Runnable> = sqlx::query_as(sql)
                        .bind(worker_id)
                        .bind(task_type)
                        .bind(priority)
                        .bind(ram)
                        .bind(gpus)
                        .bind(tags)
                        .bind(&now)
                        .bind(&free_json)
                        .bind(&blocked)
                        .fetch_optional(&mut *tx)
                        .await?;
                    if let Some(found) = found
                        && first
                            .as_ref()
                            .is_none_or(|best| scheduled_before(&found, best))
                    {
                        first = Some(found);
                    }
                }
                if let Some((task_id, status, ..)) = first {
                    next = Some((task_id, status));
                    break;
                }
            }
            let Some((task_id, old_status)) = next else {
                continue;
            };
            let (task_id, task_name, task_type, task_priority, commands, steps_total, lease_epoch, job_id): (
                String, String, String, i64, String, i64, i64, String,
            ) = sqlx::query_as(
                "UPDATE tasks SET status = 'active', worker_id = $1, lease_epoch = lease_epoch + 1,
                    activity = 'Assigned to worker', fault_class = '', progress = NULL,
                    steps_completed = 0, last_update_sequence = 0, last_touched_at = $2,
                    updated_at = $2, retry_at = NULL, started_at = $2
                 WHERE id = $3
                 RETURNING id, name, task_type, priority, commands, steps_total, lease_epoch, job_id",
            )
            .bind(worker_id)
            .bind(&now)
            .bind(&task_id)
            .fetch_one(&mut *tx)
            .await?;
            let old = if old_status == TaskStatus::SoftFailed.as_str() {
                TaskStatus::SoftFailed
            } else {
                TaskStatus::Queued
            };
            history.push((
                task_id.clone(),
                old.as_str(),
                TaskStatus::Active.as_str(),
                "assigned to worker".to_string(),
                now.clone(),
            ));
            if !jobs.contains_key(&job_id) {
                let (name, job_type, priority, limits): (String, String, i64, String) =
                    sqlx::query_as(
                        "SELECT name, job_type, priority, limits FROM jobs WHERE id = $1",
                    )
                    .bind(&job_id)
                    .fetch_one(&mut *tx)
                    .await?;
                let limits = JobLimits::from_stored(&limits).map_err(|e| {
                    StoreError::Corrupt(format!("limits of job {job_id} are unreadable: {e}"))
                })?;
                ripple_to_job(&mut tx, &job_id, TaskStatus::Active, &self.policy).await?;
                jobs.insert(job_id.clone(), (name, job_type, priority, limits));
            }
            let (job_name, job_type, job_priority, limits) = &jobs[&job_id];
            if let Some((_, running_on)) = limited.get_mut(&job_id)
                && !running_on.contains(worker_id)
            {
                running_on.push(worker_id.clone());
            }
            if limits.holds_resources(&task_type) {
                for (pool, count) in &limits.resources {
                    if let Some(units) = free.get_mut(pool) {
                        *units = units.saturating_sub(u64::from(*count));
                    }
                }
            }
            let (job_name, job_type, job_priority) =
                (job_name.clone(), job_type.clone(), *job_priority);
            assigned.push((
                worker_id.clone(),
                Assignment {
                    task_id,
                    task_name,
                    task_type,
                    task_priority,
                    commands,
                    steps_total,
                    lease_epoch,
                    job_id,
                    job_name,
                    job_type,
                    job_priority,
                },
            ));
        }
        insert_task_status_events(&mut tx, &history).await?;
        tx.commit().await?;
        Ok(assigned)
    }

    /// Undoes an assignment whose instruction never reached the worker.
    pub async fn unassign_task(&self, task_id: &str, lease_epoch: i64) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "UPDATE tasks SET status = 'queued', activity = 'Worker went away before the task reached it',
                updated_at = $1 WHERE id = $2 AND status = 'active' AND lease_epoch = $3",
        )
        .bind(now())
        .bind(task_id)
        .bind(lease_epoch)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 1 {
            record_status_event(
                &mut tx,
                "task",
                task_id,
                "active",
                "queued",
                "not delivered",
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Units of each resource pool that running tasks hold now.
    pub async fn held_resource_units(&self) -> StoreResult<BTreeMap<String, u64>> {
        let mut tx = self.read.begin().await?;
        let held = held_resources(&mut tx).await?;
        tx.commit().await?;
        Ok(held)
    }

    /// The earliest time a soft-failed task waiting out its retry backoff may run again,
    /// if any task waits (the dispatcher wakes then).
    pub async fn next_retry_at(&self) -> StoreResult<Option<chrono::DateTime<chrono::Utc>>> {
        let (at,): (Option<String>,) = sqlx::query_as(
            "SELECT MIN(retry_at) FROM tasks WHERE retry_at > $1 AND status = 'soft-failed'",
        )
        .bind(now())
        .fetch_one(&self.read)
        .await?;
        Ok(at.and_then(|at| {
            chrono::DateTime::parse_from_rfc3339(&at)
                .ok()
                .map(|t| t.with_timezone(&chrono::Utc))
        }))
    }

    /// Whether any task could be runnable at all (cheap check before asking per worker).
    pub async fn has_runnable_tasks(&self) -> StoreResult<bool> {
        let (runnable,): (super::Flag,) = sqlx::query_as(
            "SELECT EXISTS (SELECT 1 FROM tasks t JOIN jobs j ON j.id = t.job_id
             WHERE t.status IN ('queued', 'soft-failed') AND j.status IN ($1, $2))",
        )
        .bind(JobStatus::Queued.as_str())
        .bind(JobStatus::Active.as_str())
        .fetch_one(&self.read)
        .await?;
        Ok(runnable.0)
    }
}

/// Units of each resource pool that running tasks hold now.
async fn held_resources(
    connection: &mut sqlx::AnyConnection,
) -> StoreResult<BTreeMap<String, u64>> {
    let sql = match Engine::of(connection) {
        Engine::Sqlite => HELD_RESOURCES_SQL,
        Engine::Postgres => POSTGRES_HELD_RESOURCES_SQL,
    };
    let rows: Vec<(String, String, i64)> = sqlx::query_as(sql).fetch_all(&mut *connection).await?;
    let mut held = BTreeMap::new();
    for (limits, task_type, running) in rows {
        // Only a hand-edited database has unreadable limits; they hold nothing here, and
        // the assignment of such a job's task reports the row as corrupt.
        let Ok(limits) = JobLimits::from_stored(&limits) else {
            continue;
        };
        if limits.holds_resources(&task_type) {
            for (pool, count) in limits.resources {
                *held.entry(pool).or_default() += u64::from(count) * running.max(0) as u64;
            }
        }
    }
    Ok(held)
}

/// Job id → (limits, workers running its tasks) for the jobs that may run and have limits.
async fn limited_jobs(
    connection: &mut sqlx::AnyConnection,
) -> StoreResult<HashMap<String, (JobLimits, Vec<String>)>> {
    let rows: Vec<(String, String, String)> = sqlx::query_as(LIMITED_JOBS_SQL)
        .fetch_all(&mut *connection)
        .await?;
    let mut limited = HashMap::new();
    for (job_id, limits, running_on) in rows {
        // Unreadable limits block nothing here; the query's own checks and the assignment
        // (which reports the row as corrupt) still apply.
        let Ok(limits) = JobLimits::from_stored(&limits) else {
            continue;
        };
        let running_on: Vec<String> = serde_json::from_str(&running_on).unwrap_or_default();
        limited.insert(job_id, (limits, running_on));
    }
    Ok(limited)
}

/// Worker id → (RAM bytes, GPU count, tag names as JSON) for the scheduling query.
async fn worker_capabilities(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    workers: &[(String, Vec<String>)],
) -> StoreResult<HashMap<String, (i64, i64, String)>> {
    let ids: Vec<&str> = workers.iter().map(|(id, _)| id.as_str()).collect();
    let ids = serde_json::to_string(&ids).unwrap_or_else(|_| "[]".into());
    let rows: Vec<(String, String, String)> = sqlx::query_as(CAPABILITIES_SQL)
        .bind(ids)
        .fetch_all(&mut **tx)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(id, capabilities, tags)| {
            let caps = WorkerCapabilities::from_stored(&capabilities, Vec::new());
            let ram = i64::try_from(caps.ram_bytes).unwrap_or(i64::MAX);
            (id, (ram, i64::from(caps.gpus), tags))
        })
        .collect())
}
