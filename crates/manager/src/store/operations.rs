//! Operations on the database as a whole: readiness, counts for metrics, online backup.
use std::path::Path;

use sqlx::ConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;

use super::{Store, StoreError, StoreResult};

/// Rows per status of one table, for metrics.
pub type StatusCounts = Vec<(String, i64)>;

impl Store {
    /// Checks that the database takes writes and has every migration applied; returns
    /// the number of applied migrations.
    pub async fn check_ready(&self) -> StoreResult<i64> {
        let mut tx = self.begin().await?;
        // A write that changes nothing proves the writer lock can be taken.
        sqlx::query("UPDATE workers SET id = id WHERE 0")
            .execute(&mut *tx)
            .await?;
        tx.rollback().await?;
        let (applied,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM _sqlx_migrations WHERE success = 1")
                .fetch_one(&self.read)
                .await?;
        let expected = sqlx::migrate!("../../migrations").iter().count() as i64;
        if applied < expected {
            return Err(StoreError::Corrupt(format!(
                "{applied} of {expected} migrations applied"
            )));
        }
        Ok(applied)
    }

    async fn counts(&self, sql: &'static str) -> StoreResult<StatusCounts> {
        Ok(sqlx::query_as(sql).fetch_all(&self.read).await?)
    }

    pub async fn task_status_counts(&self) -> StoreResult<StatusCounts> {
        self.counts("SELECT status, COUNT(*) FROM tasks GROUP BY status")
            .await
    }

    pub async fn job_status_counts(&self) -> StoreResult<StatusCounts> {
        self.counts("SELECT status, COUNT(*) FROM jobs GROUP BY status")
            .await
    }

    pub async fn worker_status_counts(&self) -> StoreResult<StatusCounts> {
        self.counts("SELECT status, COUNT(*) FROM workers WHERE deleted_at IS NULL GROUP BY status")
            .await
    }
}

/// Copies the database at `database` into a new file `destination`, consistently, while
/// a manager may be using it (SQLite's `VACUUM INTO` reads one snapshot).
pub async fn backup(database: &Path, destination: &Path) -> StoreResult<()> {
    if destination.exists() {
        return Err(StoreError::NotFound(format!(
            "{} exists already; choose a new file for the backup",
            destination.display()
        )));
    }
    if !database.exists() {
        return Err(StoreError::NotFound(format!(
            "no database at {}",
            database.display()
        )));
    }
    let mut connection = SqliteConnectOptions::new()
        .filename(database)
        .read_only(true)
        .busy_timeout(std::time::Duration::from_secs(20))
        .connect()
        .await?;
    sqlx::query("VACUUM INTO ?")
        .bind(destination.to_string_lossy().into_owned())
        .execute(&mut connection)
        .await?;
    Ok(())
}
