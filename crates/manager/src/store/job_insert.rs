//! Storing a new job with its tasks and dependencies in one write transaction, in steps, so the
//! tasks of a big job can be written while the rest of it is still being compiled. Nothing is
//! visible to readers until [`JobInsert::commit`]; dropping a `JobInsert` rolls everything back.
use std::sync::Arc;

use sqlx::{Any, AnyConnection, Connection, Transaction};

use super::job_dependencies::insert_dependencies as insert_job_dependencies;
use super::job_gates::{dependencies_of, has_unmet_dependencies, waiting_activity};
use super::{Engine, NewJob, NewTask, Store, StoreResult};
use crate::state::JobStatus;

/// Task rows per multi-row INSERT (SQLite allows 32,766 bound parameters per statement).
const TASK_ROWS_PER_INSERT: usize = 1_000;
const DEPENDENCY_ROWS_PER_INSERT: usize = 5_000;
/// From this many tasks on, the commit leaves the WAL checkpoint to a background connection:
/// copying a 100,000-task job's pages into the database file took about 0.3 s of its commit.
const BACKGROUND_CHECKPOINT_TASKS: usize = 2_000;
/// Back to SQLite's default (1,000 pages), which the store otherwise leaves alone. A constant,
/// not the value read before pausing: with two big jobs in a row, the second would read the
/// first one's pause.
const RESUME_AUTOCHECKPOINT: &str = "PRAGMA wal_autocheckpoint = 1000";

/// A job being stored; holds the write transaction (and with it the only writer connection).
pub struct JobInsert {
    store: Store,
    tx: Transaction<'static, Any>,
    job_id: Arc<str>,
    created_at: Arc<str>,
    tasks_added: usize,
    steps_total: i64,
    /// (task id, ids of the tasks it waits for), stored last: a task may wait for a later one.
    dependencies: Vec<(String, Vec<String>)>,
    /// Every Nth task first, then the gaps (`reorder_preview_first`).
    preview_first_every: Option<u32>,
}

impl Store {
    /// Starts storing `job`: opens the write transaction and writes the job's row.
    pub async fn begin_job_insert(&self, job: &NewJob) -> StoreResult<JobInsert> {
        let mut tx = self.begin().await?;
        // steps_total is filled in by `commit`, once every task is known.
        sqlx::query(
            "INSERT INTO jobs (id, name, job_type, type_etag, priority, status, activity, settings,
                metadata, submitter_platform, worker_tag_id, storage_checkout_id, requirements,
                limits, preview_first_every, target_task_seconds, steps_total, created_at,
                updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, '', $7, $8, $9, $10, $11, $12, $13, $14, $15, 0, $16, $17)",
        )
        .bind(&job.id)
        .bind(&job.name)
        .bind(&job.job_type)
        .bind(&job.type_etag)
        .bind(job.priority)
        .bind(&job.status)
        .bind(job.settings.to_string())
        .bind(job.metadata.to_string())
        .bind(&job.submitter_platform)
        .bind(&job.worker_tag_id)
        .bind(&job.storage_checkout_id)
        .bind(job.requirements.to_stored())
        .bind(job.limits.to_stored())
        .bind(job.preview_first_every.map(i64::from))
        .bind(job.target_task_seconds)
        .bind(&job.created_at)
        .bind(&job.created_at)
        // Not cached on PostgreSQL: see `apply_update_in` (`target_task_seconds` may be a
        // NULL f64).
        .persistent(self.engine == Engine::Sqlite)
        .execute(&mut *tx)
        .await?;
        if !job.depends_on.is_empty() {
            insert_job_dependencies(&mut tx, &job.id, &job.depends_on).await?;
            // Decided inside the transaction: a dependency completing meanwhile is either
            // seen here or releases this job once it is stored.
            if job.status == JobStatus::Queued.as_str()
                && has_unmet_dependencies(&mut tx, &job.id).await?
            {
                let activity = waiting_activity(&dependencies_of(&mut tx, &job.id).await?);
                sqlx::query("UPDATE jobs SET status = $1, activity = $2 WHERE id = $3")
                    .bind(JobStatus::WaitingForDependencies.as_str())
                    .bind(activity)
                    .bind(&job.id)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        Ok(JobInsert {
            store: self.clone(),
            tx,
            job_id: Arc::from(job.id.as_str()),
            created_at: Arc::from(job.created_at.as_str()),
            tasks_added: 0,
            steps_total: 0,
            dependencies: Vec::new(),
            preview_first_every: job.preview_first_every.filter(|&n| n > 1),
        })
    }
}

impl JobInsert {
    /// The open transaction, for the store's other modules (the approval gate's facts).
    pub(super) fn transaction(&mut self) -> &mut Transaction<'static, Any> {
        &mut self.tx
    }

    pub(super) fn job_id(&self) -> &str {
        &self.job_id
    }

    /// Adds the next tasks of the job, queued and numbered on from the tasks added before (their
    /// rowids keep that order too, which the scheduler's tie-break relies on). Their dependencies
    /// are stored by [`JobInsert::commit`].
    pub async fn add_tasks(&mut self, tasks: Vec<NewTask>) -> StoreResult<()> {
        let engine = self.store.engine;
        let full_chunk_sql = insert_tasks_sql(engine, TASK_ROWS_PER_INSERT);
        let mut tasks = tasks.into_iter().peekable();
        while tasks.peek().is_some() {
            let chunk: Vec<NewTask> = tasks.by_ref().take(TASK_ROWS_PER_INSERT).collect();
            let sql = if chunk.len() == TASK_ROWS_PER_INSERT {
                full_chunk_sql.clone()
            } else {
                insert_tasks_sql(engine, chunk.len())
            };
            let mut insert = sqlx::query(sqlx::AssertSqlSafe(sql));
            for mut task in chunk {
                self.tasks_added += 1;
                self.steps_total = self.steps_total.saturating_add(task.steps_total);
                if !task.dependencies.is_empty() {
                    let dependencies = std::mem::take(&mut task.dependencies);
                    self.dependencies.push((task.id.clone(), dependencies));
                }
                // Owned strings are handed to SQLite without another copy; the job's id and
                // time are shared by every row.
                insert = insert
                    .bind(task.id)
                    .bind(self.job_id.to_string())
                    .bind(self.tasks_added as i64)
                    .bind(task.name)
                    .bind(task.task_type)
                    .bind(task.priority)
                    .bind(task.commands)
                    .bind(task.steps_total)
                    .bind(task.frames)
                    .bind(self.created_at.to_string())
                    .bind(self.created_at.to_string());
            }
            insert.execute(&mut *self.tx).await?;
        }
        Ok(())
    }

    /// Stores dependencies right away, even before the tasks they name: foreign keys are then
    /// checked when the transaction commits (SQLite resets that setting at commit or rollback;
    /// PostgreSQL's task dependency keys are declared deferred).
    pub async fn add_dependencies(
        &mut self,
        dependencies: &[(String, Vec<String>)],
    ) -> StoreResult<()> {
        if self.store.engine == Engine::Sqlite {
            sqlx::query("PRAGMA defer_foreign_keys = ON")
                .execute(&mut *self.tx)
                .await?;
        }
        insert_dependencies(&mut self.tx, dependencies).await
    }

    /// Stores the dependencies of the added tasks, the job's step total and task counts, and
    /// commits.
    pub async fn commit(mut self) -> StoreResult<()> {
        insert_dependencies(&mut self.tx, &self.dependencies).await?;
        if let Some(every) = self.preview_first_every {
            reorder_preview_first(&mut self.tx, &self.job_id, every).await?;
        }
        sqlx::query("UPDATE jobs SET steps_total = $1 WHERE id = $2")
            .bind(self.steps_total)
            .bind(self.job_id.to_string())
            .execute(&mut *self.tx)
            .await?;
        if self.tasks_added > 0 {
            // Once for the whole job: there is no per-row trigger for inserts (migration 0005).
            sqlx::query(
                "INSERT INTO job_task_counts (job_id, status, n) VALUES ($1, 'queued', $2)
                 ON CONFLICT (job_id, status) DO UPDATE SET n = job_task_counts.n + excluded.n",
            )
            .bind(self.job_id.to_string())
            .bind(self.tasks_added as i64)
            .execute(&mut *self.tx)
            .await?;
        }
        // PostgreSQL has no WAL checkpoint to move out of the commit.
        if self.tasks_added < BACKGROUND_CHECKPOINT_TASKS || self.store.engine != Engine::Sqlite {
            self.tx.commit().await?;
            return Ok(());
        }
        // The commit then only appends to the WAL; readers see the job at once either way.
        let paused = sqlx::query("PRAGMA wal_autocheckpoint = 0")
            .execute(&mut *self.tx)
            .await;
        let committed = match paused {
            Ok(_) => self.tx.commit().await,
            Err(error) => Err(error),
        };
        checkpoint_in_background(self.store);
        Ok(committed?)
    }
}

/// Gives the job's tasks new rowids — every `every`th task (1, every + 1, …) first, then the
/// others, each group in index order — so the scheduler, which breaks ties by rowid, hands
/// out a preview of the whole range first. `index_in_job` keeps the authored order.
async fn reorder_preview_first(
    tx: &mut Transaction<'static, Any>,
    job_id: &str,
    every: u32,
) -> StoreResult<()> {
    let (last,): (i64,) = sqlx::query_as("SELECT COALESCE(MAX(rowid), 0) FROM tasks")
        .fetch_one(&mut **tx)
        .await?;
    sqlx::query(
        // UPDATE … FROM numbers the tasks once; a correlated subquery over the numbering
        // would number them again for every row (quadratic: an hour for 100,000 tasks).
        "UPDATE tasks SET rowid = $3 + ordered.position
         FROM (SELECT id, ROW_NUMBER() OVER (
                   ORDER BY (index_in_job - 1) % $1 <> 0, index_in_job) AS position
               FROM tasks WHERE job_id = $2) AS ordered
         WHERE tasks.id = ordered.id",
    )
    .bind(i64::from(every))
    .bind(job_id)
    .bind(last)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Copies the WAL into the database file on a connection of its own, then lets the writer
/// checkpoint on commit again (SQLite's usual way). A writer committing meanwhile does not wait:
/// its own checkpoint attempt is skipped while this one runs.
fn checkpoint_in_background(store: Store) {
    let tasks = store.tasks.clone();
    tasks.spawn(async move {
        let Ok(writer) = store.writer() else {
            return;
        };
        let options = writer.connect_options();
        match AnyConnection::connect_with(&options).await {
            Ok(mut connection) => {
                if let Err(error) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                    .execute(&mut connection)
                    .await
                {
                    tracing::warn!("background WAL checkpoint failed: {error}");
                }
                let _ = connection.close().await;
            }
            Err(error) => tracing::warn!("cannot open a connection to checkpoint the WAL: {error}"),
        }
        if let Err(error) = sqlx::query(RESUME_AUTOCHECKPOINT).execute(writer).await {
            tracing::warn!("cannot turn WAL checkpoints on commit back on: {error}");
        }
    });
}

/// `INSERT INTO tasks` of `rows` rows. Plain `?` parameters on SQLite: it looks numbered ones
/// up by a linear scan per parameter, which is quadratic in a statement with thousands of them.
/// PostgreSQL knows numbered ones only.
fn insert_tasks_sql(engine: Engine, rows: usize) -> String {
    const COLUMNS: usize = 11;
    let mut sql = String::with_capacity(200 + rows * 60);
    sql.push_str(
        "INSERT INTO tasks (id, job_id, index_in_job, name, task_type, priority, status, \
         commands, steps_total, frames, created_at, updated_at) VALUES ",
    );
    let mut number = 0;
    for row in 0..rows {
        sql.push_str(if row > 0 { ",(" } else { "(" });
        for column in 0..COLUMNS {
            if column > 0 {
                sql.push(',');
            }
            if column == 6 {
                sql.push_str("'queued',");
            }
            match engine {
                Engine::Sqlite => sql.push('?'),
                Engine::Postgres => {
                    number += 1;
                    sql.push('$');
                    sql.push_str(&number.to_string());
                }
            }
        }
        sql.push(')');
    }
    sql
}

/// Dependencies sorted by (task, dependency), the primary key's order, so the rows go in near
/// the end of the index instead of all over it.
async fn insert_dependencies(
    tx: &mut Transaction<'static, Any>,
    dependencies: &[(String, Vec<String>)],
) -> StoreResult<()> {
    let mut pairs: Vec<(&str, &str)> = dependencies
        .iter()
        .flat_map(|(task, dependencies)| {
            dependencies
                .iter()
                .map(move |dependency| (task.as_str(), dependency.as_str()))
        })
        .collect();
    pairs.sort_unstable();
    for chunk in pairs.chunks(DEPENDENCY_ROWS_PER_INSERT) {
        let mut insert =
            sqlx::QueryBuilder::new("INSERT INTO task_dependencies (task_id, dependency_id) ");
        insert.push_values(chunk, |mut row, (task, dependency)| {
            row.push_bind(*task).push_bind(*dependency);
        });
        match Engine::of(tx) {
            Engine::Sqlite => insert.build().execute(&mut **tx).await?,
            // SQLite looks `$N` up by a linear scan per parameter: 10,000 of them are slow.
            Engine::Postgres => {
                super::placeholders::query(&mut insert)?
                    .execute(&mut **tx)
                    .await?
            }
        };
    }
    Ok(())
}
