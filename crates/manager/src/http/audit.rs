//! `GET /api/v3/audit` (extension): the audit log of state-changing API requests, newest
//! first, paged with `before` (an entry id) and `limit`.
use axum::Json;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::ApiError;
use crate::AppState;
use crate::store::AuditEntry;

#[derive(Serialize, ToSchema)]
pub struct AuditLog {
    pub entries: Vec<AuditEntry>,
}

const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 1000;

#[derive(Deserialize)]
pub struct AuditQuery {
    limit: Option<u32>,
    before: Option<i64>,
}

pub async fn audit_log(
    State(state): State<AppState>,
    Query(query): Query<AuditQuery>,
) -> Result<Json<AuditLog>, ApiError> {
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::bad_request(format!(
            "limit {limit} is out of range: use 1 to {MAX_LIMIT}"
        )));
    }
    let entries = state.store.list_audit_entries(limit, query.before).await?;
    Ok(Json(AuditLog { entries }))
}
