//! The audit log: one row per state-changing API request (who, what, when, outcome).
use serde::Serialize;
use utoipa::ToSchema;

use super::{Store, StoreResult, now};

/// Extension: one audited request (as stored, and as the audit API sends it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema, sqlx::FromRow)]
pub struct AuditEntry {
    pub id: i64,
    /// RFC 3339 UTC.
    #[schema(format = DateTime)]
    pub at: String,
    /// Token name, "anonymous", or "cli".
    pub actor: String,
    pub role: Option<String>,
    /// Client address, when known.
    pub remote: Option<String>,
    pub method: String,
    pub path: String,
    /// The HTTP status the request was answered with.
    pub status: i64,
}

/// What to record; the store adds the id and time.
#[derive(Clone, Debug)]
pub struct NewAuditEntry<'a> {
    pub actor: &'a str,
    pub role: Option<&'a str>,
    pub remote: Option<&'a str>,
    pub method: &'a str,
    pub path: &'a str,
    pub status: u16,
}

impl Store {
    pub async fn insert_audit_entry(&self, entry: &NewAuditEntry<'_>) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO audit_log (at, actor, role, remote, method, path, status) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(now())
        .bind(entry.actor)
        .bind(entry.role)
        .bind(entry.remote)
        .bind(entry.method)
        .bind(entry.path)
        .bind(i64::from(entry.status))
        .execute(self.writer()?)
        .await?;
        Ok(())
    }

    /// Deletes the entries recorded before `cutoff` (RFC 3339 UTC, as stored); returns how many.
    pub async fn delete_audit_entries_before(&self, cutoff: &str) -> StoreResult<u64> {
        let deleted = sqlx::query("DELETE FROM audit_log WHERE at < $1")
            .bind(cutoff)
            .execute(self.writer()?)
            .await?;
        Ok(deleted.rows_affected())
    }

    /// Up to `limit` entries older than entry `before` (all when None), newest first.
    pub async fn list_audit_entries(
        &self,
        limit: u32,
        before: Option<i64>,
    ) -> StoreResult<Vec<AuditEntry>> {
        Ok(sqlx::query_as(
            "SELECT id, at, actor, role, remote, method, path, status FROM audit_log \
             WHERE id < $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(before.unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await?)
    }
}
