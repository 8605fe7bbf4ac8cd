//! The approval gate (extension): `POST /api/v3/jobs/{id}/approve` `{comment?}` runs the job
//! type's `compileApproved(job)` and queues the final pass (with the on-complete task);
//! `POST /api/v3/jobs/{id}/reject` `{comment}` ends the job as `rejected`. Both answer with the
//! job; 409 when it does not await approval. Who did it is the caller's token name (the audit
//! log records the request too).
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Deserialize;

use super::access::Caller;
use super::error::{ApiError, parse_uuid};
use super::shapes;
use crate::AppState;
use crate::compiler::on_complete::on_complete_task;
use crate::ops::{self, Effects, job_actions};
use crate::store::{GatedJob, NewTask, StoreError};

/// The longest review comment kept.
const MAX_COMMENT_CHARS: usize = 10_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewRequest {
    #[serde(default)]
    comment: Option<String>,
    /// Who reviews, for farms without API tokens; a token's name always wins.
    #[serde(default)]
    reviewer: Option<String>,
}

/// A review's comment and who made it.
struct Review {
    comment: String,
    by: String,
}

fn conflict_or(e: StoreError) -> ApiError {
    match e {
        StoreError::Refused(m) => ApiError::new(StatusCode::CONFLICT, m),
        other => other.into(),
    }
}

/// The comment, trimmed and checked; empty when none was given.
/// The review in `body`. Who made it: the API token's name; without a token (open access has
/// no other way to know) the request's own `reviewer`, else `anonymous`.
fn review_of(body: &[u8], Caller(caller): Caller) -> Result<Review, ApiError> {
    let request: ReviewRequest = if body.iter().all(u8::is_ascii_whitespace) {
        ReviewRequest {
            comment: None,
            reviewer: None,
        }
    } else {
        super::body::parse_object(body, "review")?
    };
    let comment = request.comment.unwrap_or_default().trim().to_owned();
    if comment.chars().count() > MAX_COMMENT_CHARS {
        return Err(ApiError::bad_request(format!(
            "comment is too long: at most {MAX_COMMENT_CHARS} characters"
        )));
    }
    let reviewer = request.reviewer.map(|name| name.trim().to_owned());
    if let Some(name) = &reviewer {
        crate::names::check_name("reviewer", name).map_err(ApiError::bad_request)?;
    }
    let by = caller
        .or(reviewer)
        .unwrap_or_else(|| "anonymous".to_owned());
    Ok(Review { comment, by })
}

async fn gated_job(state: &AppState, id: &str) -> Result<GatedJob, ApiError> {
    let id = parse_uuid("job id", id)?;
    state
        .store
        .gated_job(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no job with id {id}")))
}

/// `POST /api/v3/jobs/{id}/approve` → 200 with the job, now queued with its final pass.
pub async fn approve_job(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<shapes::Job>, ApiError> {
    let Review { comment, by } = review_of(&body, caller)?;
    let job = gated_job(&state, &id).await?;
    // Checked before the script runs; the store checks again in the approving transaction.
    job.check("approve").map_err(conflict_or)?;
    let (tasks, on_complete) = final_pass(&state, &job).await?;
    let count = tasks.len();
    let review = (by.as_str(), comment.as_str());
    let effects = job_actions::approve(&state.store, &job.job.id, review, tasks, on_complete)
        .await
        .map_err(conflict_or)?;
    tracing::info!(job = %job.job.id, %by, tasks = count, "job approved; final pass queued");
    answer(&state, &job.job.id, effects).await
}

/// `POST /api/v3/jobs/{id}/reject` `{comment}` → 200 with the job, now rejected.
pub async fn reject_job(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<shapes::Job>, ApiError> {
    let Review { comment, by } = review_of(&body, caller)?;
    if comment.is_empty() {
        return Err(ApiError::bad_request(
            "a rejection needs a comment saying what to change: {\"comment\": \"…\"}",
        ));
    }
    let job = gated_job(&state, &id).await?;
    let effects = job_actions::reject(&state.store, &job.job.id, &by, &comment)
        .await
        .map_err(conflict_or)?;
    tracing::info!(job = %job.job.id, %by, "job rejected");
    answer(&state, &job.job.id, effects).await
}

/// Applies the review's follow-up (new tasks are runnable: the dispatcher looks) and
/// answers with the job.
async fn answer(
    state: &AppState,
    job_id: &str,
    effects: Effects,
) -> Result<Json<shapes::Job>, ApiError> {
    ops::apply(effects, state).await;
    let row = state
        .store
        .get_job(job_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no job with id {job_id}")))?;
    Ok(Json(shapes::job(&row)))
}

/// The final pass `compileApproved(job)` authors, and the on-complete task (the submission's
/// command line, else the one the script gave).
async fn final_pass(
    state: &AppState,
    job: &GatedJob,
) -> Result<(Vec<NewTask>, Option<NewTask>), ApiError> {
    let (input, settings) = job
        .job
        .compile_input()
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let registry = state.job_types.clone();
    let script_settings = settings.clone();
    let pass =
        tokio::task::spawn_blocking(move || registry.compile_approved(&input, script_settings))
            .await
            .map_err(|e| ApiError::internal(format!("job-type script runner failed: {e}")))??;
    let command_line = job.on_complete.clone().or(pass.on_complete);
    let on_complete = command_line
        .map(|line| on_complete_task(&job.job.id, &job.job.name, &settings, &line))
        .transpose()
        .map_err(ApiError::bad_request)?
        .map(NewTask::from);
    Ok((
        pass.tasks.into_iter().map(NewTask::from).collect(),
        on_complete,
    ))
}
