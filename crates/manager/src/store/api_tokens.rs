//! REST API tokens: each has a name and a role; only its SHA-256 hash is stored, so the
//! database never holds a usable token. Revoking keeps the row (for the audit trail).
use std::fmt;
use std::str::FromStr;

use rand::RngCore;
use sha2::{Digest, Sha256};

use super::{Store, StoreError, StoreResult, now};

/// A fresh token: 256 random bits, hex encoded. Shown once; only its hash is kept.
pub fn new_api_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// The stored form of a token (SHA-256; a 256-bit random token needs no slow hash).
pub fn hash_api_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// What a token's holder may do; each role includes the ones before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ApiRole {
    /// Read everything.
    Viewer,
    /// Also submit jobs and act on jobs and tasks.
    Submitter,
    /// Also manage workers and tags, and read the audit log.
    Admin,
}

impl ApiRole {
    pub const ALL: [ApiRole; 3] = [ApiRole::Viewer, ApiRole::Submitter, ApiRole::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            ApiRole::Viewer => "viewer",
            ApiRole::Submitter => "submitter",
            ApiRole::Admin => "admin",
        }
    }
}

impl fmt::Display for ApiRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ApiRole {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ApiRole::ALL
            .into_iter()
            .find(|role| role.as_str() == s)
            .ok_or_else(|| format!("unknown role \"{s}\"; expected viewer, submitter or admin"))
    }
}

/// A stored token, without its secret.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct ApiTokenRow {
    pub id: String,
    pub name: String,
    pub role: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

/// The holder of a valid token, as the access check needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenHolder {
    pub name: String,
    pub role: ApiRole,
}

impl Store {
    /// Stores a new token by its hash. Refused when a live token has the same name.
    pub async fn insert_api_token(
        &self,
        name: &str,
        role: ApiRole,
        token_hash: &str,
    ) -> StoreResult<ApiTokenRow> {
        let row = ApiTokenRow {
            id: uuid::Uuid::new_v4().to_string(),
            name: name.to_string(),
            role: role.as_str().to_string(),
            created_at: now(),
            revoked_at: None,
        };
        sqlx::query(
            "INSERT INTO api_tokens (id, name, role, token_hash, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&row.id)
        .bind(&row.name)
        .bind(&row.role)
        .bind(token_hash)
        .bind(&row.created_at)
        .execute(self.writer()?)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Refused(format!("an API token named \"{name}\" exists already"))
            }
            _ => StoreError::Db(e),
        })?;
        Ok(row)
    }

    /// Every token, live and revoked, oldest first.
    pub async fn list_api_tokens(&self) -> StoreResult<Vec<ApiTokenRow>> {
        Ok(sqlx::query_as(
            "SELECT id, name, role, created_at, revoked_at FROM api_tokens ORDER BY created_at, name",
        )
        .fetch_all(&self.read)
        .await?)
    }

    /// Revokes the live token with this id or name; NotFound when there is none.
    pub async fn revoke_api_token(&self, id_or_name: &str) -> StoreResult<ApiTokenRow> {
        let row: Option<ApiTokenRow> = sqlx::query_as(
            "UPDATE api_tokens SET revoked_at = $1 WHERE revoked_at IS NULL AND (id = $2 OR name = $3) \
             RETURNING id, name, role, created_at, revoked_at",
        )
        .bind(now())
        .bind(id_or_name)
        .bind(id_or_name)
        .fetch_optional(self.writer()?)
        .await?;
        row.ok_or_else(|| StoreError::NotFound(format!("no live API token \"{id_or_name}\"")))
    }

    /// The holder of the live token with this hash, if any.
    pub async fn api_token_holder(&self, token_hash: &str) -> StoreResult<Option<TokenHolder>> {
        let row: Option<(String, String)> = sqlx::query_as(
            "SELECT name, role FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL",
        )
        .bind(token_hash)
        .fetch_optional(&self.read)
        .await?;
        row.map(|(name, role)| {
            let role = role
                .parse()
                .map_err(|e| StoreError::Corrupt(format!("API token \"{name}\": {e}")))?;
            Ok(TokenHolder { name, role })
        })
        .transpose()
    }
}
