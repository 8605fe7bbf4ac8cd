//! The live preview video and the per-frame images in the OpenAPI document:
//! `GET /api/v3/jobs/{id}/rendered-frames` and `GET /api/v3/jobs/{id}/preview-video`.
use utoipa::openapi::path::HttpMethod::Get;

use super::errors::{BAD, UNKNOWN};
use super::{Api, EXTENSIONS};
pub use crate::http::rendered_frames::{PreviewVideoInfo, RenderedFrames};

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
