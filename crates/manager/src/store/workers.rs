//! Workers: registration, credentials, sign-on, status.
use super::task_updates::requeue_worker_tasks_in;
use super::{Store, StoreResult, WorkerRow, now, record_status_event};

/// What a worker says about itself when it signs on.
#[derive(Clone, Debug)]
pub struct SignOn {
    pub name: String,
    pub platform: String,
    pub address: String,
    pub software_version: String,
    pub supported_task_types: Vec<String>,
    pub slots: i64,
    pub capabilities: serde_json::Value,
    pub can_restart: bool,
}

impl Store {
    pub async fn insert_worker(
        &self,
        id: &str,
        name: &str,
        platform: &str,
        address: &str,
        token_hash: &str,
    ) -> StoreResult<()> {
        let now = now();
        sqlx::query(
            "INSERT INTO workers (id, name, token_hash, platform, address, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(id)
        .bind(name)
        .bind(token_hash)
        .bind(platform)
        .bind(address)
        .bind(&now)
        .bind(&now)
        .execute(self.writer()?)
        .await?;
        Ok(())
    }

    /// The token hash of a worker that exists and is not deleted.
    pub async fn worker_token_hash(&self, id: &str) -> StoreResult<Option<String>> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT token_hash FROM workers WHERE id = $1 AND deleted_at IS NULL")
                .bind(id)
                .fetch_optional(&self.read)
                .await?;
        Ok(row.map(|(h,)| h))
    }

    pub async fn get_worker(&self, id: &str) -> StoreResult<Option<WorkerRow>> {
        Ok(sqlx::query_as("SELECT * FROM workers WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.read)
            .await?)
    }

    pub async fn list_workers(&self) -> StoreResult<Vec<WorkerRow>> {
        Ok(
            sqlx::query_as("SELECT * FROM workers WHERE deleted_at IS NULL ORDER BY name, id")
                .fetch_all(&self.read)
                .await?,
        )
    }

    pub async fn count_workers(&self) -> StoreResult<i64> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM workers")
            .fetch_one(&self.read)
            .await?;
        Ok(n)
    }

    /// Records a sign-on; the worker is `starting` until its instruction stream opens.
    /// Returns the worker row after the change.
    pub async fn sign_on_worker(&self, id: &str, info: &SignOn) -> StoreResult<WorkerRow> {
        let mut tx = self.begin().await?;
        let (old,): (String,) = sqlx::query_as("SELECT status FROM workers WHERE id = $1")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        let now = now();
        let types: Vec<String> = info
            .supported_task_types
            .iter()
            .map(|t| t.trim().to_lowercase())
            .filter(|t| !t.is_empty())
            .collect();
        sqlx::query(
            "UPDATE workers SET name = $1, platform = $2, address = $3, software_version = $4,
                supported_task_types = $5, slots = $6, capabilities = $7, can_restart = $8,
                status = 'starting', last_seen_at = $9, updated_at = $10
             WHERE id = $11",
        )
        .bind(&info.name)
        .bind(&info.platform)
        .bind(&info.address)
        .bind(&info.software_version)
        .bind(serde_json::to_string(&types).unwrap_or_else(|_| "[]".into()))
        .bind(info.slots)
        .bind(info.capabilities.to_string())
        .bind(i64::from(info.can_restart))
        .bind(&now)
        .bind(&now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        record_status_event(&mut tx, "worker", id, &old, "starting", "signed on").await?;
        let row: WorkerRow = sqlx::query_as("SELECT * FROM workers WHERE id = $1")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(row)
    }

    /// Sets a worker's status (recording the change when it is one).
    pub async fn set_worker_status(&self, id: &str, status: &str, reason: &str) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        set_worker_status_in(&mut tx, id, status, reason).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A worker signs off, in one transaction: status `offline`; a pending `offline` or
    /// `restart` request is acknowledged (cleared); with no request pending, an `awake` or
    /// `asleep` status is remembered as a request so the worker returns to it on its next
    /// sign-on (§2.6); its active tasks go back to the queue. Returns (task id, job id).
    pub async fn sign_off_worker(
        &self,
        id: &str,
        reason: &str,
    ) -> StoreResult<Vec<(String, String)>> {
        let mut tx = self.begin().await?;
        let row: Option<(String, String)> =
            sqlx::query_as("SELECT status, status_requested FROM workers WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        let Some((old, requested)) = row else {
            return Ok(Vec::new());
        };
        let remembered = match requested.as_str() {
            "offline" | "restart" => String::new(),
            "" if matches!(old.as_str(), "awake" | "asleep") => old.clone(),
            _ => requested.clone(),
        };
        let lazy_kept = remembered == requested;
        sqlx::query(
            "UPDATE workers SET status = 'offline', status_requested = $1,
                lazy_status_request = CASE WHEN $2 THEN lazy_status_request ELSE 0 END,
                last_seen_at = $3, updated_at = $3
             WHERE id = $4",
        )
        .bind(&remembered)
        .bind(lazy_kept)
        .bind(now())
        .bind(id)
        .execute(&mut *tx)
        .await?;
        record_status_event(&mut tx, "worker", id, &old, "offline", reason).await?;
        let requeued =
            requeue_worker_tasks_in(&mut tx, id, &[], "the worker signed off", &self.policy)
                .await?;
        tx.commit().await?;
        Ok(requeued)
    }
}

/// `set_worker_status` inside the caller's transaction.
pub(super) async fn set_worker_status_in(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    id: &str,
    status: &str,
    reason: &str,
) -> StoreResult<()> {
    let old: Option<(String,)> = sqlx::query_as("SELECT status FROM workers WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
    let Some((old,)) = old else {
        return Ok(());
    };
    let now = now();
    // Reaching the requested status acknowledges the request.
    sqlx::query(
        "UPDATE workers SET status = $1, last_seen_at = $2, updated_at = $2,
            status_requested = CASE WHEN status_requested = $1 THEN '' ELSE status_requested END,
            lazy_status_request = CASE WHEN status_requested = $1 THEN 0 ELSE lazy_status_request END
         WHERE id = $3",
    )
    .bind(status)
    .bind(&now)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    if old != status {
        record_status_event(tx, "worker", id, &old, status, reason).await?;
    }
    Ok(())
}
