//! `/job-files/...`: read-only access to task logs and previews under the storage root.
//! Single byte ranges are served (206), so a browser can seek in a preview video.
use std::path::Component;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::byte_ranges::{RangeRequest, range_request};
use super::error::ApiError;
use crate::AppState;

pub async fn job_file(
    State(state): State<AppState>,
    Path(path): Path<String>,
    headers: HeaderMap,
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
        Some("mp4") => "video/mp4",
        _ => "application/octet-stream",
    };
    let range = headers
        .get(header::RANGE)
        .and_then(|value| value.to_str().ok());
    let len = bytes.len() as u64;
    let accept = (header::ACCEPT_RANGES, "bytes".to_string());
    let content_type = (header::CONTENT_TYPE, content_type.to_string());
    match range_request(range, len) {
        RangeRequest::Whole => Ok(([content_type, accept], bytes).into_response()),
        RangeRequest::Part { start, end } => {
            // Both lie within the file (checked by `range_request`).
            let part = bytes[start as usize..=end as usize].to_vec();
            let content_range = (header::CONTENT_RANGE, format!("bytes {start}-{end}/{len}"));
            Ok((
                StatusCode::PARTIAL_CONTENT,
                [content_type, accept, content_range],
                part,
            )
                .into_response())
        }
        RangeRequest::Unsatisfiable => Ok((
            StatusCode::RANGE_NOT_SATISFIABLE,
            [accept, (header::CONTENT_RANGE, format!("bytes */{len}"))],
        )
            .into_response()),
    }
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
