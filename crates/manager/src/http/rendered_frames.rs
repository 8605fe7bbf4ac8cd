//! `GET /api/v3/jobs/{id}/rendered-frames` (every frame of a job with a thumbnail) and
//! `GET /api/v3/jobs/{id}/preview-video` (where the job's live preview video is and what it
//! holds; 204 while there is none). The files themselves are served by `/job-files/…`.
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::error::ApiError;
use super::jobs::existing_job_id;
use crate::AppState;
use crate::preview_video::{Availability, frame_url, video_url};

/// `GET /api/v3/jobs/{id}/rendered-frames`
pub async fn rendered_frames(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = existing_job_id(&state, &id).await?;
    let frames: Vec<_> = state
        .store
        .rendered_frames(&id)
        .await?
        .into_iter()
        .map(|f| {
            json!({
                "frame": f.frame,
                "task_id": f.task_id,
                "image": frame_url(&id, f.frame),
                "updated": f.updated_at,
            })
        })
        .collect();
    Ok(Json(json!({ "frames": frames })).into_response())
}

/// `GET /api/v3/jobs/{id}/preview-video`: the video's info; 204 when the job has none yet
/// (no frame rendered, or no frame range); 503 naming why when videos are not made.
pub async fn preview_video(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = existing_job_id(&state, &id).await?;
    if let Some(video) = state.store.preview_video(&id).await? {
        // The time stamp in the URL makes a browser fetch each new version.
        let url = format!("{}?v={}", video_url(&id), video.updated_at);
        return Ok(Json(json!({
            "url": url,
            "fps": video.fps,
            "first_frame": video.first_frame,
            "frame_count": video.frame_count,
            "rendered_frames": video.rendered_frames,
            "width": video.width,
            "height": video.height,
            "updated": video.updated_at,
        }))
        .into_response());
    }
    match state.preview_videos.availability() {
        Availability::Unavailable(why) => Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, why)),
        Availability::Available | Availability::Starting => {
            Ok(StatusCode::NO_CONTENT.into_response())
        }
    }
}
