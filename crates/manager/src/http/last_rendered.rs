//! `GET /api/v3/jobs/{id}/last-rendered` and `GET /api/v3/jobs/last-rendered`: where the
//! newest preview image of a job (or of the farm) is, in Flamenco's
//! `JobLastRenderedImageInfo` shape `{base, suffixes}`; 204 when there is none. The image
//! itself is served by `/job-files/...`.
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::error::ApiError;
use super::jobs::existing_job_id;
use crate::AppState;
use crate::logs::TaskLogs;

/// The preview file's name inside the job's directory (written by the gRPC upload).
const LAST_RENDERED_FILE: &str = "last-rendered.jpg";

/// Where a preview image is: `base` joined with each suffix is a URL of the image.
#[derive(Serialize, ToSchema)]
pub struct JobLastRenderedImageInfo {
    pub base: String,
    pub suffixes: Vec<String>,
}

/// `GET /api/v3/jobs/{id}/last-rendered`
pub async fn job_last_rendered(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = existing_job_id(&state, &id).await?;
    if !state.store.has_last_rendered(&id).await? {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    Ok(image_info(&id))
}

/// `GET /api/v3/jobs/last-rendered`: the farm-wide newest preview.
pub async fn farm_last_rendered(State(state): State<AppState>) -> Result<Response, ApiError> {
    match state.store.latest_last_rendered_job().await? {
        Some(job_id) => Ok(image_info(&job_id)),
        None => Ok(StatusCode::NO_CONTENT.into_response()),
    }
}

fn image_info(job_id: &str) -> Response {
    Json(JobLastRenderedImageInfo {
        base: format!("/job-files/{}", TaskLogs::job_dir_relative(job_id)),
        suffixes: vec![LAST_RENDERED_FILE.to_owned()],
    })
    .into_response()
}
