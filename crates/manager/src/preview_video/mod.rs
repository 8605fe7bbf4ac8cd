//! The live preview video of a render job: every numbered frame a worker uploads is kept as
//! `<job dir>/frames/<frame>.jpg`; a builder task turns them into `<job dir>/preview.mp4`
//! (H.264, the job's whole frame range, frames not rendered yet black). Each frame is
//! encoded once into a one-frame segment; the video is the segments joined without
//! re-encoding, rebuilt at most once per `min_interval_seconds` while frames land and once
//! more when the job completes.
mod builder;
mod config;
mod ffmpeg;
mod jpeg_size;
mod plan;

use std::sync::{Arc, Mutex};

use tonic::Status;

pub use builder::run;
pub use config::PreviewVideoConfig;

use crate::AppState;
use crate::logs::TaskLogs;

/// The video's file name inside the job's directory.
pub const VIDEO_FILE: &str = "preview.mp4";
/// The folder of per-frame thumbnails inside the job's directory.
pub const FRAMES_DIR: &str = "frames";
/// The builder's working folder (segments, the black frame, the join list).
const WORK_DIR: &str = "preview-video";

/// A frame's thumbnail file name: zero-padded, so names sort like frames.
pub fn frame_file_name(frame: i64) -> String {
    format!("{frame:06}.jpg")
}

/// `/job-files/…` URL of a frame's thumbnail.
pub fn frame_url(job_id: &str, frame: i64) -> String {
    format!(
        "/job-files/{}/{FRAMES_DIR}/{}",
        TaskLogs::job_dir_relative(job_id),
        frame_file_name(frame)
    )
}

/// `/job-files/…` URL of the job's preview video.
pub fn video_url(job_id: &str) -> String {
    format!(
        "/job-files/{}/{VIDEO_FILE}",
        TaskLogs::job_dir_relative(job_id)
    )
}

/// Whether preview videos are made, as the builder found out at start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Availability {
    /// Not known yet (the builder is checking FFmpeg).
    Starting,
    Available,
    /// Why there are none (turned off, FFmpeg missing), as told to API clients.
    Unavailable(String),
}

/// Shared view of the builder for the REST API. Cheap to clone.
#[derive(Clone, Debug)]
pub struct PreviewVideos {
    availability: Arc<Mutex<Availability>>,
}

impl Default for PreviewVideos {
    fn default() -> Self {
        Self {
            availability: Arc::new(Mutex::new(Availability::Starting)),
        }
    }
}

impl PreviewVideos {
    pub fn availability(&self) -> Availability {
        self.availability
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn set_availability(&self, availability: Availability) {
        *self.availability.lock().unwrap_or_else(|p| p.into_inner()) = availability;
    }
}

/// Refuses a numbered frame whose image is not a JPEG with a readable size: the video is
/// made from it, and a broken one would only be found there.
pub fn check_frame_image(frame: i64, jpeg: &[u8]) -> Result<(), Status> {
    match jpeg_size::jpeg_size(jpeg) {
        Some(_) => Ok(()),
        None => Err(Status::invalid_argument(format!(
            "the image of frame {frame} is not a JPEG (no frame header with its size)"
        ))),
    }
}

/// Keeps a numbered frame's thumbnail (from a worker's `LastRendered` upload) and records
/// it; the caller has checked the worker's lease.
pub async fn store_frame(
    state: &AppState,
    job_id: &str,
    task_id: &str,
    frame: i64,
    jpeg: &[u8],
) -> Result<(), Status> {
    let dir = state.logs.job_dir(job_id).join(FRAMES_DIR);
    let name = frame_file_name(frame);
    let write = async {
        tokio::fs::create_dir_all(&dir).await?;
        let partial = dir.join(format!("{name}.partial"));
        tokio::fs::write(&partial, jpeg).await?;
        tokio::fs::rename(&partial, dir.join(&name)).await
    };
    write
        .await
        .map_err(|e| Status::internal(format!("cannot store frame {frame}: {e}")))?;
    state
        .store
        .set_rendered_frame(job_id, frame, task_id)
        .await
        .map_err(|e| Status::internal(format!("cannot record frame {frame}: {e}")))?;
    Ok(())
}
