//! Every SQL statement of the manager. SQLite in WAL mode with one writer connection
//! (writes are serialised by the pool, so no transaction ever fails on a busy upgrade)
//! and a few reader connections. Each state change commits in one transaction.
mod jobs;
mod rows;
mod scheduling;
mod task_updates;
mod workers;
pub use workers::SignOn;

pub use jobs::{NewJob, NewTask};
pub use rows::{JobRow, TaskRow, WorkerRow};
pub use scheduling::Assignment;
pub use task_updates::{JOB_FAIL_PERCENT, TaskToAbort, TaskUpdateOutcome, WorkerTaskUpdate};

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool, Transaction};

use crate::state::{JobStatus, TaskCounts, TaskStatus};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("cannot create database directory {path}: {source}")]
    CreateDir {
        path: String,
        source: std::io::Error,
    },
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("{0}")]
    NotFound(String),
    /// The worker no longer holds the task (reassigned, canceled, finished).
    #[error("{0}")]
    LeaseLost(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Handle to the manager's database. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    read: SqlitePool,
    write: SqlitePool,
}

/// The current time as stored: RFC 3339 UTC with milliseconds, sortable as text.
pub fn now() -> String {
    format_time(chrono::Utc::now())
}

pub fn format_time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl Store {
    /// Opens (creating if needed) the database at `path` and applies the migrations.
    pub async fn open(path: &Path) -> StoreResult<Self> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| StoreError::CreateDir {
                path: parent.display().to_string(),
                source,
            })?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(20));
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("../../migrations").run(&write).await?;
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.read_only(true))
            .await?;
        Ok(Self { read, write })
    }

    /// Closes every connection (checkpointing the WAL).
    pub async fn close(&self) {
        self.read.close().await;
        self.write.close().await;
    }

    async fn begin(&self) -> StoreResult<Transaction<'static, Sqlite>> {
        Ok(self.write.begin().await?)
    }
}

/// Task counts per status for one job, inside a transaction.
async fn job_task_counts(
    tx: &mut Transaction<'static, Sqlite>,
    job_id: &str,
) -> StoreResult<TaskCounts> {
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT status, COUNT(*) FROM tasks WHERE job_id = ? GROUP BY status")
            .bind(job_id)
            .fetch_all(&mut **tx)
            .await?;
    let mut counts = TaskCounts::default();
    for (status, n) in rows {
        let status =
            TaskStatus::from_str(&status).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        counts.add(status, n as u64);
    }
    Ok(counts)
}

async fn job_status(tx: &mut Transaction<'static, Sqlite>, job_id: &str) -> StoreResult<JobStatus> {
    let (status,): (String,) = sqlx::query_as("SELECT status FROM jobs WHERE id = ?")
        .bind(job_id)
        .fetch_one(&mut **tx)
        .await?;
    JobStatus::from_str(&status).map_err(|e| StoreError::Corrupt(e.to_string()))
}

async fn record_status_event(
    tx: &mut Transaction<'static, Sqlite>,
    entity: &str,
    entity_id: &str,
    old: &str,
    new: &str,
    reason: &str,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO status_events (entity, entity_id, old_status, new_status, reason, created_at)
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(entity)
    .bind(entity_id)
    .bind(old)
    .bind(new)
    .bind(reason)
    .bind(now())
    .execute(&mut **tx)
    .await?;
    Ok(())
}
