//! Which of several managers sharing one PostgreSQL database is the active one. The active
//! manager's single writer connection holds a session-level advisory lock: PostgreSQL lets one
//! session hold it, releases it the moment that session ends (the process died, or the server
//! dropped the connection after its TCP keepalives went unanswered), and every write goes
//! through that very connection — so a manager that lost the lock cannot write any more, and
//! two managers never write at once. The others are standbys: they read, and try to take the
//! lock every second. SQLite has one manager per file and is always active.
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock, PoisonError, RwLock};
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyConnection, AnyPool, Connection};

use super::{Store, StoreError, StoreResult};

/// The advisory lock's key, the same for every Castanet manager ("CAST"); advisory locks
/// are per database, so farms in other databases of one server do not collide.
const LEADER_LOCK: i64 = 0x4341_5354;

/// The session holding the leader lock of this database (advisory locks are per database;
/// a bigint key shows as its high and low 32 bits).
const HOLDER_SQL: &str = "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted
    AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
    AND classid::bigint = $1 AND objid::bigint = $2 AND objsubid = 1";

/// How long a takeover waits for the writer connection before it counts as lost.
const TAKE_OVER_TIMEOUT: Duration = Duration::from_secs(5);

/// The writer pool once this manager is active; the lock holder's backend, to check on.
#[derive(Default)]
pub(super) struct Writer {
    pool: OnceLock<AnyPool>,
    /// `pg_backend_pid()` of the writer connection that holds the lock (PostgreSQL).
    holder: Arc<AtomicI64>,
    /// On a standby: the active manager's address, as it recorded it.
    active_manager: RwLock<Option<String>>,
    /// Why this manager stopped being the active one.
    lost: OnceLock<String>,
}

impl Writer {
    pub(super) fn active(pool: AnyPool) -> Self {
        let writer = Writer::default();
        let _ = writer.pool.set(pool);
        writer
    }

    pub(super) fn pool(&self) -> Option<&AnyPool> {
        self.pool.get()
    }
}

/// The writer pool if the lock is free now: its one connection takes the lock whenever it
/// (re)connects, and refuses to exist without it. `None`: another manager is active.
pub(super) async fn take_over(
    options: &AnyConnectOptions,
    holder: &Arc<AtomicI64>,
) -> StoreResult<Option<AnyPool>> {
    // A look first, so a standby's try costs one short connection while another is active.
    let mut probe = AnyConnection::connect_with(options).await?;
    let free = try_lock(&mut probe).await?;
    if free {
        sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(LEADER_LOCK)
            .execute(&mut probe)
            .await?;
    }
    let _ = probe.close().await;
    if !free {
        return Ok(None);
    }
    let holder_pid = holder.clone();
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        // The lock lives as long as the connection: it is never closed for age or idleness.
        .max_lifetime(None)
        .idle_timeout(None)
        .test_before_acquire(false)
        .after_connect(move |connection, _| {
            let holder = holder_pid.clone();
            Box::pin(async move {
                if !try_lock(connection).await? {
                    return Err(sqlx::Error::Configuration(
                        "another manager holds the database's leader lock".into(),
                    ));
                }
                let (pid,): (i32,) = sqlx::query_as("SELECT pg_backend_pid()")
                    .fetch_one(&mut *connection)
                    .await?;
                holder.store(i64::from(pid), Ordering::SeqCst);
                Ok(())
            })
        })
        .connect_lazy_with(options.clone());
    // Another standby may have taken the lock since the look.
    match tokio::time::timeout(TAKE_OVER_TIMEOUT, pool.acquire()).await {
        Ok(Ok(connection)) => {
            drop(connection);
            Ok(Some(pool))
        }
        Ok(Err(_)) | Err(_) => {
            pool.close().await;
            Ok(None)
        }
    }
}

async fn try_lock(connection: &mut AnyConnection) -> Result<bool, sqlx::Error> {
    let (locked,): (bool,) = sqlx::query_as("SELECT pg_try_advisory_lock($1)")
        .bind(LEADER_LOCK)
        .fetch_one(connection)
        .await?;
    Ok(locked)
}

impl Store {
    /// Whether this manager writes: always on SQLite; on PostgreSQL once it holds the lock.
    pub fn is_active(&self) -> bool {
        self.write.pool().is_some()
    }

    /// The writer pool; a standby has none and says who to ask instead.
    pub(super) fn writer(&self) -> StoreResult<&AnyPool> {
        self.write.pool().ok_or_else(|| {
            let active = self
                .write
                .active_manager
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            StoreError::Standby(match active {
                Some(url) => {
                    format!("this manager is a standby (reads only): the active manager is {url}")
                }
                None => "this manager is a standby (reads only): another manager sharing its \
                         database is active"
                    .into(),
            })
        })
    }

    /// The active manager's address, as it recorded it (a standby names it).
    pub async fn active_manager(&self) -> StoreResult<Option<String>> {
        if self.engine != super::Engine::Postgres {
            return Ok(None);
        }
        let row: Option<(String,)> = sqlx::query_as("SELECT url FROM manager_leader WHERE id = 1")
            .fetch_optional(&self.read)
            .await?;
        Ok(row.map(|(url,)| url))
    }

    /// A standby reads who is active, to name it when refusing a write.
    pub async fn refresh_active_manager(&self) {
        if let Ok(url) = self.active_manager().await {
            *self
                .write
                .active_manager
                .write()
                .unwrap_or_else(PoisonError::into_inner) = url;
        }
    }

    /// The active manager records where it answers (PostgreSQL only).
    pub async fn record_active_manager(&self, url: &str) -> StoreResult<()> {
        if self.engine != super::Engine::Postgres {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO manager_leader (id, url, since) VALUES (1, $1, $2)
             ON CONFLICT (id) DO UPDATE SET url = excluded.url, since = excluded.since",
        )
        .bind(url)
        .bind(super::now())
        .execute(self.writer()?)
        .await?;
        Ok(())
    }

    /// Remembers why this manager stopped being the active one.
    pub fn note_leadership_lost(&self, reason: String) {
        let _ = self.write.lost.set(reason);
    }

    /// Why this manager stopped being the active one, if it did.
    pub fn lost_leadership(&self) -> Option<&str> {
        self.write.lost.get().map(String::as_str)
    }

    /// A standby tries to become the active manager: true once it is (then the schema is
    /// migrated and every write goes through its lock-holding connection).
    pub async fn try_take_over(&self) -> StoreResult<bool> {
        if self.is_active() {
            return Ok(true);
        }
        let options = self.read.connect_options();
        let Some(pool) = take_over(&options, &self.write.holder).await? else {
            return Ok(false);
        };
        super::migrations(self.engine).run(&pool).await?;
        if self.write.pool.set(pool).is_err() {
            // Taken over twice at once by this same manager: the first pool serves.
            return Ok(true);
        }
        tracing::info!("this manager holds the database's leader lock: it is the active manager");
        Ok(true)
    }

    /// The database session holding the leader lock, if one does.
    async fn lock_holder(&self) -> StoreResult<Option<i32>> {
        let holder: Option<(i32,)> = sqlx::query_as(HOLDER_SQL)
            .bind(LEADER_LOCK >> 32)
            .bind(LEADER_LOCK & 0xffff_ffff)
            .fetch_optional(&self.read)
            .await?;
        Ok(holder.map(|(pid,)| pid))
    }

    /// Why this active manager no longer is, if so: the lock is held by another session
    /// than its writer's (its connection died and another manager took over). Checked on a
    /// read connection, so a long write does not delay the answer.
    pub async fn leadership_lost(&self) -> StoreResult<Option<String>> {
        if self.engine != super::Engine::Postgres || !self.is_active() {
            return Ok(None);
        }
        let holder = match (self.lock_holder().await?, self.write.pool()) {
            // The writer's connection died and nobody took over: reconnecting takes the lock
            // again (or fails, if another manager was quicker).
            (None, Some(pool)) => {
                let _ = tokio::time::timeout(TAKE_OVER_TIMEOUT, pool.acquire()).await;
                self.lock_holder().await?
            }
            (holder, _) => holder,
        };
        let ours = self.write.holder.load(Ordering::SeqCst);
        Ok(match holder {
            Some(pid) if i64::from(pid) == ours => None,
            Some(pid) => Some(format!(
                "another manager (database session {pid}) holds the leader lock now"
            )),
            None => Some("this manager's database session lost the leader lock".into()),
        })
    }
}
