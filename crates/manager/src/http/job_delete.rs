//! Job deletion (Flamenco's paths and shapes): `DELETE /api/v3/jobs/{id}`,
//! `DELETE /api/v3/jobs/mass-delete` and `GET /api/v3/jobs/{id}/what-would-delete-do`.
//! A request marks the job; a single deletion then finishes before the answer, a mass
//! deletion in the background. Running tasks of a deleted job are aborted on their
//! workers (deleting an active job cancels it first).
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use super::error::{ApiError, parse_uuid};
use crate::ops::{self, job_actions};
use crate::{AppState, job_deleter};

/// Which jobs a mass deletion removes (Flamenco's `JobMassDeletionSelection`).
#[derive(Deserialize, utoipa::ToSchema)]
pub struct JobMassDeletionSelection {
    /// Every job last updated at or before this time (rounded up to whole seconds) goes.
    #[schema(format = DateTime)]
    pub last_updated_max: Option<String>,
}

/// What deleting a job removes besides the job, its tasks, logs and previews.
#[derive(Serialize, utoipa::ToSchema)]
pub struct JobDeletionInfo {
    /// Whether the job's Shaman checkout directory is removed with it.
    pub shaman_checkout: bool,
}

/// A JSON body, or 400 naming what was wrong with it (axum would answer 422).
pub fn json_body<T>(body: Result<Json<T>, JsonRejection>, what: &str) -> Result<T, ApiError> {
    body.map(|Json(body)| body).map_err(|e| {
        let message = format!("invalid {what}: {}", e.body_text());
        // An oversized body is a 413, as on every other endpoint; the rest are malformed.
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, message)
        } else {
            ApiError::bad_request(message)
        }
    })
}

/// `DELETE /api/v3/jobs/{id}` → 204 once the job, its tasks, logs, previews and (unless
/// another job uses it) its Shaman checkout are gone; 404 for an unknown job.
pub async fn delete_job(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = parse_uuid("job id", &id)?;
    let effects = job_actions::mark_for_deletion(&state.store, &id).await?;
    ops::apply(effects, &state).await;
    job_deleter::delete_marked_job(&state, &id)
        .await
        .map_err(|e| {
            ApiError::internal(format!(
                "job {id} is marked for deletion, but deleting it failed (it is retried \
                 every minute): {e}"
            ))
        })?;
    Ok(StatusCode::NO_CONTENT)
}

/// The bound of a mass deletion: rounded up to the next whole second, because the API
/// shows times to the second while the database keeps milliseconds.
fn rounded_up_bound(text: &str) -> Result<String, ApiError> {
    let at = DateTime::parse_from_rfc3339(text)
        .map_err(|e| {
            ApiError::bad_request(format!(
                "last_updated_max \"{text}\" is not an RFC 3339 date-time: {e}"
            ))
        })?
        .with_timezone(&Utc);
    let second = TimeDelta::seconds(1);
    let bound = at
        .duration_trunc(second)
        .ok()
        .and_then(|t| t.checked_add_signed(second))
        .ok_or_else(|| {
            ApiError::bad_request(format!("last_updated_max \"{text}\" is out of range"))
        })?;
    Ok(crate::store::format_time(bound))
}

/// `DELETE /api/v3/jobs/mass-delete` `{last_updated_max}` → 204 with every job updated
/// at or before then marked (deleted in the background); 416 when none matched.
pub async fn mass_delete(
    State(state): State<AppState>,
    body: Result<Json<JobMassDeletionSelection>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    let selection = json_body(body, "mass deletion selection")?;
    let Some(max) = selection.last_updated_max else {
        return Err(ApiError::bad_request(
            "last_updated_max is required: the jobs last updated at or before it are deleted",
        ));
    };
    let bound = rounded_up_bound(&max)?;
    let (marked, effects) = job_actions::mark_updated_until(&state.store, &bound).await?;
    if marked.is_empty() {
        return Err(ApiError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            format!("no job was last updated at or before {max}"),
        ));
    }
    tracing::info!(jobs = marked.len(), %bound, "jobs marked for deletion");
    ops::apply(effects, &state).await;
    // Big jobs take a while to delete: the answer does not wait for them.
    let background = state.background.clone();
    background.spawn(async move { job_deleter::delete_marked_jobs(&state, &marked).await });
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v3/jobs/{id}/what-would-delete-do` → `{shaman_checkout}`.
pub async fn what_would_delete_do(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<JobDeletionInfo>, ApiError> {
    let id = parse_uuid("job id", &id)?;
    let shaman_checkout = job_deleter::would_remove_checkout(&state, &id).await?;
    Ok(Json(JobDeletionInfo { shaman_checkout }))
}

#[cfg(test)]
mod tests {
    use super::rounded_up_bound;

    #[test]
    fn the_bound_is_rounded_up_to_the_next_whole_second() {
        assert_eq!(
            rounded_up_bound("2026-06-01T13:14:15.250+02:00")
                .ok()
                .as_deref(),
            Some("2026-06-01T11:14:16.000Z")
        );
        assert_eq!(
            rounded_up_bound("2026-06-01T13:14:15Z").ok().as_deref(),
            Some("2026-06-01T13:14:16.000Z")
        );
        assert!(rounded_up_bound("yesterday").is_err());
    }
}
