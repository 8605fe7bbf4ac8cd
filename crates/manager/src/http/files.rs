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
    // Only plain names: no "..", no absolute paths, nothing outside the job files. A NUL
    // cannot be in a file name (the system call would refuse the path); no stored job file
    // has a backslash, which is a Windows client's separator (`..\`).
    if path.contains(['\0', '\\'])
        || !relative
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
        // A folder, or a name too long to be a file, is no file either.
        Err(e) if is_no_such_file(&e) => {
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

/// Whether reading failed because there is no file of that name to read.
fn is_no_such_file(error: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        error.kind(),
        ErrorKind::NotFound
            | ErrorKind::IsADirectory
            | ErrorKind::NotADirectory
            | ErrorKind::InvalidFilename
    )
}
