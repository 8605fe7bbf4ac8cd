//! The live preview video and the per-frame images in the OpenAPI document:
//! `GET /api/v3/jobs/{id}/rendered-frames` and `GET /api/v3/jobs/{id}/preview-video`.
// Never constructed: only the schema generator reads these types.
#![allow(dead_code)]

use serde::Serialize;
use utoipa::ToSchema;
use utoipa::openapi::path::HttpMethod::Get;

use super::errors::{BAD, UNKNOWN};
use super::{Api, EXTENSIONS};

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

pub(super) fn describe(api: &mut Api) {
    let body = api.schema::<RenderedFrames>();
    api.op(
        Get,
        "/api/v3/jobs/{id}/rendered-frames",
        EXTENSIONS,
        "Every frame of a job with an image",
    )
    .answer(200, "The frames, by frame number (empty when none).", body)
    .errors(&[BAD, UNKNOWN])
    .done();
    let body = api.schema::<PreviewVideoInfo>();
    api.op(
        Get,
        "/api/v3/jobs/{id}/preview-video",
        EXTENSIONS,
        "The job's live preview video",
    )
    .answer(200, "Where the video is and what it holds.", body)
    .empty(
        204,
        "No video yet: no frame rendered, or the job has no `frames` setting.",
    )
    .errors(&[
        BAD,
        UNKNOWN,
        (
            503,
            "The manager makes no preview videos (turned off, or FFmpeg missing); the message \
             says why.",
        ),
    ])
    .done();
}
