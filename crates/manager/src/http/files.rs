//! `/job-files/...`: read-only access to task logs and previews under the storage root.
use std::path::Component;

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use crate::AppState;

pub async fn job_file(
    State(state): State<AppState>,
    Path(path): Path<String>,
) -> Result<Response, ApiError> {
    let relative = std::path::Path::new(&path);
    // Only plain names: no "..", no absolute paths, nothing outside the job files.
    if !relative
        .components()
        .all(|c| matches!(c, Component::Normal(_)))
    {
        return Err(ApiError::bad_request(format!(
            "invalid file path \"{path}\""
        )));
    }
    let full = state.logs.jobs_root().join(relative);
    let bytes = match tokio::fs::read(&full).await {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ApiError::not_found(format!("no file {path}")));
        }
        Err(e) => return Err(ApiError::internal(format!("cannot read {path}: {e}"))),
    };
    let content_type = match full.extension().and_then(|e| e.to_str()) {
        Some("txt") => "text/plain; charset=utf-8",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("png") => "image/png",
        _ => "application/octet-stream",
    };
    Ok(([(header::CONTENT_TYPE, content_type)], bytes).into_response())
}
