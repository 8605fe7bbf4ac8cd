//! `GET /api/v3/jobs/last-rendered-images?ids=a,b` (or `?limit=N`): where the newest
//! preview image of many jobs is, in one answer, so a grid of jobs costs one request and
//! not one per job. `updated` changes whenever the image is replaced; clients append it to
//! the image URL so a browser never shows a cached older image.
use axum::Json;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, parse_uuid};
use crate::AppState;
use crate::logs::TaskLogs;

/// Most jobs one answer covers (as many as one page of jobs).
const MAX_IMAGES: i64 = 1000;
/// Images answered when the client names neither ids nor a limit.
const DEFAULT_IMAGES: i64 = 100;
/// The preview's file name in a job's directory (written by the gRPC upload).
const IMAGE_FILE: &str = "last-rendered.jpg";

/// Extension: where one job's newest preview image is.
#[derive(Serialize, ToSchema)]
pub struct JobPreviewImage {
    pub job_id: String,
    /// The image's path under `/job-files/`.
    pub image: String,
    /// When the image was last replaced (RFC 3339); append it to the URL as a cache-buster.
    pub updated: String,
}

/// Extension: the newest preview images of many jobs, newest first.
#[derive(Serialize, ToSchema)]
pub struct JobPreviewImages {
    pub images: Vec<JobPreviewImage>,
}

#[derive(Deserialize)]
pub struct ImagesParams {
    /// Comma-separated job ids.
    ids: Option<String>,
    /// Without `ids`: how many of the most recently updated previews.
    limit: Option<i64>,
}

/// `GET /api/v3/jobs/last-rendered-images`
pub async fn last_rendered_images(
    State(state): State<AppState>,
    Query(params): Query<ImagesParams>,
) -> Result<Json<JobPreviewImages>, ApiError> {
    let mut rows = match params.ids {
        Some(ids) => {
            if params.limit.is_some() {
                return Err(ApiError::bad_request("give either ids or limit, not both"));
            }
            let ids = ids
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|id| parse_uuid("job id", id))
                .collect::<Result<Vec<_>, _>>()?;
            if ids.len() as i64 > MAX_IMAGES {
                return Err(ApiError::bad_request(format!(
                    "at most {MAX_IMAGES} job ids at once, got {}",
                    ids.len()
                )));
            }
            state.store.last_rendered_of_jobs(&ids).await?
        }
        None => {
            let limit = params.limit.unwrap_or(DEFAULT_IMAGES);
            if !(1..=MAX_IMAGES).contains(&limit) {
                return Err(ApiError::bad_request(format!(
                    "limit must be between 1 and {MAX_IMAGES}, got {limit}"
                )));
            }
            state.store.newest_last_rendered(limit).await?
        }
    };
    // Newest first either way; RFC 3339 UTC text with milliseconds sorts as time.
    rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let images = rows
        .into_iter()
        .map(|(job_id, updated)| JobPreviewImage {
            image: format!(
                "/job-files/{}/{IMAGE_FILE}",
                TaskLogs::job_dir_relative(&job_id)
            ),
            job_id,
            updated,
        })
        .collect();
    Ok(Json(JobPreviewImages { images }))
}
