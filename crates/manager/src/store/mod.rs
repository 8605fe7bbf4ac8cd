//! Every SQL statement of the manager, on SQLite (WAL mode, the embedded default) or
//! PostgreSQL. One writer connection on either engine (writes are serialised by the pool, so
//! no transaction ever fails on a busy upgrade or a serialisation conflict) and a few reader
//! connections. Each state change commits in one transaction. Placeholders are `$N`, which
//! both engines read; `Engine` picks the SQL where the dialects differ.
mod actions;
mod api_tokens;
mod approval;
mod audit;
mod blocklist;
mod chunking;
mod cleanup;
mod connect;
mod copy_farm;
mod declines;
mod eligibility;
mod eta;
mod event_details;
mod failures;
mod flag;
mod impossible;
mod job_delete;
mod job_dependencies;
mod job_gates;
mod job_insert;
mod job_query;
mod job_ripple;
mod job_status;
mod jobs;
mod leadership;
mod notifications;
mod operations;
mod placeholders;
mod preview_images;
mod previews;
mod registration_secret;
mod rendered_frames;
mod rows;
mod scheduling;
mod scripted_job;
mod sleep_schedules;
mod tags;
mod task_pages;
mod task_updates;
mod timeouts;
mod update_batch;
mod why;
mod worker_connect;
mod worker_mgt;
mod worker_status;
mod workers;
mod writer;
pub use sleep_schedules::SleepScheduleRow;
pub use worker_connect::WorkerReconnect;
pub use worker_status::StatusRequest;
pub use workers::SignOn;

pub use actions::TaskChange;
pub use api_tokens::{ApiRole, ApiTokenRow, TokenHolder, hash_api_token, new_api_token};
pub use approval::GatedJob;
pub use audit::{AuditEntry, NewAuditEntry};
pub use cleanup::JobAge;
pub use connect::{DatabaseLocation, Engine, create_postgres_database, without_password};
pub use copy_farm::{FARM_TABLES, TableCopy};
pub use failures::FailureReport;
pub use flag::Flag;
pub use impossible::{FeasibilityScope, ImpossibleJob, ImpossibleTask};
pub use job_status::{JobChange, TaskToAbort};
pub use registration_secret::RegistrationSecret;

pub use chunking::{ChunkingState, QueuedChunk};
pub use eta::EtaInput;
pub use job_delete::DeletionInfo;
pub use job_gates::{Dependency, waiting_activity};
pub use job_insert::JobInsert;
pub use job_query::{JobOrder, JobQuery};
pub use jobs::{NewJob, NewTask};
pub use notifications::{AttemptOutcome, DeliveryRow, NewDelivery, NotificationRuleRow};
pub use operations::{StatusCounts, backup};
pub use rendered_frames::{PreviewVideoRow, RenderedFrame};
pub use rows::{JobRow, TaskRow, WorkerRow};
pub use scheduling::Assignment;
pub use scripted_job::{SCRIPTED_JOB_COLUMNS, ScriptedJob, UnreadableJob};
pub use tags::TagRow;
pub use task_updates::{TaskUpdateOutcome, WorkerTaskUpdate};
pub use timeouts::{StaleTask, TimedOutTask};

use std::str::FromStr;

use sqlx::{Any, AnyPool, Transaction};

use crate::state::{FailurePolicy, JobStatus, TaskCounts, TaskStatus};

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
    /// The database cannot be used as configured (unreachable, refused, newer schema).
    #[error("{0}")]
    Config(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// This manager is a standby (another one shares the database and is active): it
    /// answers reads only.
    #[error("{0}")]
    Standby(String),
    /// The store was closed: the manager is stopping.
    #[error("the manager is shutting down")]
    ShuttingDown,
    #[error("{0}")]
    NotFound(String),
    /// The worker no longer holds the task (reassigned, canceled, finished).
    #[error("{0}")]
    LeaseLost(String),
    /// A requested status change is not allowed from the current status.
    #[error("{0}")]
    Refused(String),
    /// The database's file system has (almost) no room left.
    #[error("{0}")]
    NoSpace(String),
    /// A file the store writes besides the database (a backup) failed.
    #[error("{path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Handle to the manager's database. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    read: AnyPool,
    /// The one writer connection's pool; none on a standby (see `leadership`).
    write: std::sync::Arc<leadership::Writer>,
    location: std::sync::Arc<DatabaseLocation>,
    /// `location`'s engine, read on every dialect choice.
    engine: Engine,
    policy: FailurePolicy,
    /// The farm's counted resource pools (`[resources]` in the config): name → units.
    pools: std::sync::Arc<std::collections::BTreeMap<String, u32>>,
    /// Dispatch and task-duration histograms, recorded where those things happen.
    metrics: std::sync::Arc<crate::metrics::Metrics>,
    /// Worker task updates waiting for the next group commit.
    updates: std::sync::Arc<update_batch::UpdateQueue>,
    /// The store's own background work (the group commit, WAL checkpoints): `close` waits
    /// for it before closing the connections.
    tasks: tokio_util::task::TaskTracker,
}

/// The current time as stored: RFC 3339 UTC with milliseconds, sortable as text.
pub fn now() -> String {
    format_time(chrono::Utc::now())
}

pub fn format_time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl Store {
    /// Opens (creating an SQLite file if needed) the database and applies the migrations.
    pub async fn open(location: &DatabaseLocation) -> StoreResult<Self> {
        let connect::Pools { read, write } = connect::connect(location).await?;
        let store = Self {
            read,
            write: std::sync::Arc::new(write),
            location: std::sync::Arc::new(location.clone()),
            engine: location.engine(),
            policy: FailurePolicy::default(),
            pools: Default::default(),
            metrics: Default::default(),
            updates: Default::default(),
            tasks: Default::default(),
        };
        // On PostgreSQL the usual case is one manager per database: active at once.
        store.try_take_over().await?;
        Ok(store)
    }

    /// Where the database is.
    pub fn location(&self) -> &DatabaseLocation {
        &self.location
    }

    /// The database engine this store runs on.
    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// Uses these failure limits (from the config) instead of Flamenco's defaults.
    pub fn with_failure_policy(mut self, policy: FailurePolicy) -> Self {
        self.policy = policy;
        self
    }

    pub fn failure_policy(&self) -> FailurePolicy {
        self.policy
    }

    /// Uses these resource pools (from the config's `[resources]` table).
    pub fn with_resource_pools(mut self, pools: std::collections::BTreeMap<String, u32>) -> Self {
        self.pools = std::sync::Arc::new(pools);
        self
    }

    /// The farm's resource pools: name → units.
    pub fn resource_pools(&self) -> &std::collections::BTreeMap<String, u32> {
        &self.pools
    }

    /// This manager's in-memory histograms (see `crate::metrics`).
    pub fn metrics(&self) -> &crate::metrics::Metrics {
        &self.metrics
    }

    /// Whether `close` has been called: the manager is stopping.
    pub fn is_closed(&self) -> bool {
        self.read.is_closed()
    }

    /// Takes no more task updates, waits for the store's background work, then closes
    /// every connection (checkpointing the WAL).
    pub async fn close(&self) {
        self.updates.close();
        self.tasks.close();
        self.tasks.wait().await;
        self.read.close().await;
        if let Some(write) = self.write.pool() {
            write.close().await;
        }
    }

    async fn begin(&self) -> StoreResult<Transaction<'static, Any>> {
        Ok(self.writer()?.begin().await?)
    }
}

/// Task counts per status for one job, inside a transaction.
async fn job_task_counts(
    tx: &mut Transaction<'static, Any>,
    job_id: &str,
) -> StoreResult<TaskCounts> {
    // Kept by triggers (migration 0003): no scan over the job's tasks.
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT status, n FROM job_task_counts WHERE job_id = $1 AND n > 0")
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

/// A job's status and its task counts in one read.
async fn job_status_and_counts(
    tx: &mut Transaction<'static, Any>,
    job_id: &str,
) -> StoreResult<(JobStatus, TaskCounts)> {
    let rows: Vec<(String, Option<String>, Option<i64>)> = sqlx::query_as(
        "SELECT j.status, c.status, c.n FROM jobs j
         LEFT JOIN job_task_counts c ON c.job_id = j.id AND c.n > 0 WHERE j.id = $1",
    )
    .bind(job_id)
    .fetch_all(&mut **tx)
    .await?;
    let corrupt = |e: crate::state::UnknownStatus| StoreError::Corrupt(e.to_string());
    let job = rows
        .first()
        .ok_or_else(|| StoreError::NotFound(format!("no job with id {job_id}")))?;
    let job = JobStatus::from_str(&job.0).map_err(corrupt)?;
    let mut counts = TaskCounts::default();
    for (_, status, n) in rows {
        if let (Some(status), Some(n)) = (status, n) {
            counts.add(TaskStatus::from_str(&status).map_err(corrupt)?, n as u64);
        }
    }
    Ok((job, counts))
}

async fn job_status(tx: &mut Transaction<'static, Any>, job_id: &str) -> StoreResult<JobStatus> {
    let (status,): (String,) = sqlx::query_as("SELECT status FROM jobs WHERE id = $1")
        .bind(job_id)
        .fetch_one(&mut **tx)
        .await?;
    JobStatus::from_str(&status).map_err(|e| StoreError::Corrupt(e.to_string()))
}

async fn record_status_event(
    tx: &mut Transaction<'static, Any>,
    entity: &str,
    entity_id: &str,
    old: &str,
    new: &str,
    reason: &str,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO status_events (entity, entity_id, old_status, new_status, reason, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
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

/// Task status history rows (task id, old, new, reason, time) in one statement.
async fn insert_task_status_events(
    tx: &mut Transaction<'static, Any>,
    events: &[(String, &'static str, &'static str, String, String)],
) -> StoreResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    let sql = match Engine::of(tx) {
        Engine::Sqlite => {
            "INSERT INTO status_events (entity, entity_id, old_status, new_status, reason, created_at)
             SELECT 'task', value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4
             FROM json_each($1)"
        }
        Engine::Postgres => {
            "INSERT INTO status_events (entity, entity_id, old_status, new_status, reason, created_at)
             SELECT 'task', e ->> 0, e ->> 1, e ->> 2, e ->> 3, e ->> 4
             FROM json_array_elements($1::json) AS e"
        }
    };
    sqlx::query(sql)
        .bind(serde_json::to_string(events).unwrap_or_else(|_| "[]".into()))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The migrations this manager knows, for its engine.
fn migrations(engine: Engine) -> sqlx::migrate::Migrator {
    match engine {
        Engine::Sqlite => sqlx::migrate!("../../migrations/sqlite"),
        Engine::Postgres => sqlx::migrate!("../../migrations/postgres"),
    }
}
