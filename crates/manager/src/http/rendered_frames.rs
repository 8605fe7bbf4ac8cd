//! `GET /api/v3/jobs/{id}/rendered-frames` (every frame of a job with a thumbnail) and
//! `GET /api/v3/jobs/{id}/preview-video` (where the job's live preview video is and what it
//! holds; 204 while there is none). The files themselves are served by `/job-files/…`.
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::error::ApiError;
use super::jobs::existing_job_id;
use crate::AppState;
use crate::preview_video::{Availability, frame_url, video_url};

/// Extension: one frame of a job with an image (a JPEG thumbnail a worker uploaded).
#[derive(Serialize, ToSchema)]
pub struct RenderedFrame {
    pub frame: i64,
    /// The task that rendered it (the last one, when it was rendered again).
    pub task_id: String,
    /// Where the JPEG is served: `/job-files/<job dir>/frames/<frame, 6 digits>.jpg`.
    pub image: String,
    #[schema(format = DateTime)]
    pub updated: String,
}

/// Extension: every frame of a job with an image, by frame number.
#[derive(Serialize, ToSchema)]
pub struct RenderedFrames {
    pub frames: Vec<RenderedFrame>,
}

/// Extension: the job's live preview video (MP4, H.264): every frame of its `frames`
/// setting in order, black where not rendered yet.
#[derive(Serialize, ToSchema)]
pub struct PreviewVideoInfo {
    /// Where the MP4 is served (under `/job-files/`, byte ranges supported); the query
    /// changes with each new version.
    pub url: String,
    pub fps: f64,
    /// The frame number shown first; the video's n-th frame (from 0) is the n-th frame of
    /// the job's frame range.
    pub first_frame: i64,
    pub frame_count: i64,
    /// How many of its frames show a rendered image (the rest are black).
    pub rendered_frames: i64,
    pub width: i64,
    pub height: i64,
    /// When the frames it shows were read.
    #[schema(format = DateTime)]
    pub updated: String,
}

/// `GET /api/v3/jobs/{id}/rendered-frames`
pub async fn rendered_frames(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<RenderedFrames>, ApiError> {
    let id = existing_job_id(&state, &id).await?;
    let frames = state
        .store
        .rendered_frames(&id)
        .await?
        .into_iter()
        .map(|f| RenderedFrame {
            frame: f.frame,
            image: frame_url(&id, f.frame),
            task_id: f.task_id,
            updated: f.updated_at,
        })
        .collect();
    Ok(Json(RenderedFrames { frames }))
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
        return Ok(Json(PreviewVideoInfo {
            url,
            fps: video.fps,
            first_frame: video.first_frame,
            frame_count: video.frame_count,
            rendered_frames: video.rendered_frames,
            width: video.width,
            height: video.height,
            updated: video.updated_at,
        })
        .into_response());
    }
    match state.preview_videos.availability() {
        Availability::Unavailable(why) => Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, why)),
        Availability::Available | Availability::Starting => {
            Ok(StatusCode::NO_CONTENT.into_response())
        }
    }
}
