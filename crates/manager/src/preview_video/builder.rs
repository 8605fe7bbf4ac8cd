//! The builder task: follows the event bus for numbered frames, keeps per job which
//! segments are encoded, and rebuilds a job's video at most once per interval while its
//! frames land (at once when the job completes). It runs beside the dispatcher, never on
//! its path; one FFmpeg at a time.
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::plan;
use super::{Availability, FRAMES_DIR, VIDEO_FILE, WORK_DIR, ffmpeg, frame_file_name, jpeg_size};
use crate::AppState;
use crate::events::Event;
use crate::state::JobStatus;
use crate::store::PreviewVideoRow;

/// What the builder knows of one job's video.
#[derive(Default)]
struct JobVideo {
    /// Frames landed since the last build.
    dirty: bool,
    /// The job completed: build without waiting for the interval.
    urgent: bool,
    last_build: Option<Instant>,
    /// Frame → time stamp of the thumbnail its segment was encoded from.
    encoded: HashMap<i64, String>,
    /// The black segment was made (by this run of the manager, at the video's size).
    black_made: bool,
    /// The job had ended (completed, failed, canceled, rejected) when last read.
    ended: bool,
}

struct Builder {
    state: AppState,
    program: String,
    interval: Duration,
    jobs: HashMap<String, JobVideo>,
}

/// Runs the builder until `shutdown`. With previews off or FFmpeg not working it says so
/// once (log and API) and ends.
pub async fn run(state: AppState, shutdown: CancellationToken) {
    let config = state.config.preview_video.clone();
    let videos = state.preview_videos.clone();
    if !config.enabled {
        videos.set_availability(Availability::Unavailable(
            "preview videos are turned off in the manager's config ([preview_video] enabled = false)"
                .into(),
        ));
        return;
    }
    // Subscribed before the check, so frames landing meanwhile are not missed.
    let mut events = state.events.subscribe();
    if let Err(e) = ffmpeg::check(&config.ffmpeg).await {
        tracing::warn!("no preview videos: {e}");
        videos.set_availability(Availability::Unavailable(format!(
            "no preview videos: FFmpeg does not work on the manager's host ({e}); install it or \
             set [preview_video] ffmpeg in the manager's config"
        )));
        return;
    }
    videos.set_availability(Availability::Available);
    let mut builder = Builder {
        state,
        program: config.ffmpeg.clone(),
        interval: config.min_interval(),
        jobs: HashMap::new(),
    };
    builder.catch_up().await;
    loop {
        let due = builder.next_due();
        let sleep_until = due.as_ref().map_or_else(Instant::now, |(_, at)| *at);
        tokio::select! {
            biased;
            () = shutdown.cancelled() => return,
            received = events.recv() => match received {
                Ok(published) => builder.on_event(&published.event).await,
                // Fell behind: what changed meanwhile is read from the store.
                Err(RecvError::Lagged(_)) => builder.catch_up().await,
                Err(RecvError::Closed) => return,
            },
            () = tokio::time::sleep_until(sleep_until), if due.is_some() => {
                if let Some((job_id, _)) = due {
                    builder.build(&job_id).await;
                }
            }
        }
    }
}

impl Builder {
    /// Marks every job whose frames are newer than its video.
    async fn catch_up(&mut self) {
        match self.state.store.jobs_with_stale_preview_video().await {
            Ok(jobs) => {
                for job_id in jobs {
                    self.jobs.entry(job_id).or_default().dirty = true;
                }
            }
            Err(e) => tracing::warn!("preview videos: cannot read which jobs have new frames: {e}"),
        }
    }

    /// The job to build next and when.
    fn next_due(&self) -> Option<(String, Instant)> {
        next_due(&self.jobs, self.interval, Instant::now())
    }

    async fn on_event(&mut self, event: &Event) {
        match event {
            Event::LastRendered {
                job_id,
                frame: Some(_),
                ..
            } => self.jobs.entry(job_id.clone()).or_default().dirty = true,
            Event::Job { job_id } => {
                // Only a job whose video waits is read: its last frames go in at once.
                let waiting = self.jobs.get(job_id).is_some_and(|v| v.dirty && !v.urgent);
                if !waiting {
                    return;
                }
                match self.state.store.get_job(job_id).await {
                    Ok(Some(job)) if job.status == JobStatus::Completed.as_str() => {
                        if let Some(video) = self.jobs.get_mut(job_id) {
                            video.urgent = true;
                        }
                    }
                    Ok(_) => {}
                    Err(e) => tracing::debug!(job_id, "preview videos: cannot read the job: {e}"),
                }
            }
            Event::JobDeleted { job_id } => {
                self.jobs.remove(job_id);
            }
            _ => {}
        }
    }

    /// Builds one job's video now; failures are logged and the job waits for its next frame.
    /// What is known of a job is forgotten once its video is final (the job ended) or it
    /// has none, so memory follows the jobs in progress; a job rendered again later has its
    /// segments encoded once more.
    async fn build(&mut self, job_id: &str) {
        let mut video = self.jobs.remove(job_id).unwrap_or_default();
        video.dirty = false;
        video.urgent = false;
        video.last_build = Some(Instant::now());
        let mut keep = false;
        match self.build_video(job_id, &mut video).await {
            Ok(Some(row)) => {
                keep = !video.ended;
                tracing::debug!(
                    job_id,
                    rendered = row.rendered_frames,
                    frames = row.frame_count,
                    "preview video written"
                );
                // Dashboards showing the job look again.
                self.state.events.publish(Event::job(job_id));
            }
            Ok(None) => {}
            Err(e) => {
                keep = !video.ended;
                tracing::warn!(job_id, "preview video not made: {e}");
            }
        }
        if keep {
            self.jobs.insert(job_id.to_string(), video);
        }
    }

    /// Encodes what is new and joins the video; `None` when the job has no video (no frame
    /// range, no frames in it, or it is gone).
    async fn build_video(
        &self,
        job_id: &str,
        video: &mut JobVideo,
    ) -> Result<Option<PreviewVideoRow>, BuildError> {
        let store = &self.state.store;
        let Some(job) = store.get_job(job_id).await? else {
            return Ok(None);
        };
        video.ended = [
            JobStatus::Completed,
            JobStatus::Failed,
            JobStatus::Canceled,
            JobStatus::Rejected,
        ]
        .iter()
        .any(|status| status.as_str() == job.status);
        let settings: serde_json::Value =
            serde_json::from_str(&job.settings).unwrap_or(serde_json::Value::Null);
        let Some(frames) = plan::video_frames(&settings) else {
            return Ok(None);
        };
        let fps = plan::video_fps(&settings);
        let started = crate::store::now();
        let in_range: HashSet<i64> = frames.iter().copied().collect();
        let rendered: Vec<_> = store
            .rendered_frames(job_id)
            .await?
            .into_iter()
            .filter(|f| in_range.contains(&f.frame))
            .collect();
        let job_dir = self.state.logs.job_dir(job_id);
        // A job directory that is gone belongs to a job being deleted: never make it again.
        if rendered.is_empty() || !tokio::fs::try_exists(&job_dir).await.unwrap_or(false) {
            return Ok(None);
        }
        let frames_dir = job_dir.join(FRAMES_DIR);
        let size = match store.preview_video(job_id).await? {
            Some(row) => (dims(row.width), dims(row.height)),
            None => first_frame_size(&frames_dir, &rendered).await?,
        };
        let work = job_dir.join(WORK_DIR);
        tokio::fs::create_dir_all(work.join("segments")).await?;
        if !video.black_made {
            let black = work.join(plan::BLACK_SEGMENT);
            ffmpeg::encode_black(&self.program, &black, size, fps).await?;
            video.black_made = true;
        }
        let mut in_video = HashSet::new();
        for frame in &rendered {
            let segment = work.join(plan::segment_name(frame.frame));
            let current = video.encoded.get(&frame.frame) == Some(&frame.updated_at)
                && tokio::fs::try_exists(&segment).await.unwrap_or(false);
            if !current {
                let input = frames_dir.join(frame_file_name(frame.frame));
                let partial = segment.with_extension("mp4.partial");
                let encoded =
                    match ffmpeg::encode_frame(&self.program, &input, &partial, size, fps).await {
                        Ok(()) => tokio::fs::rename(&partial, &segment)
                            .await
                            .map_err(Into::into),
                        Err(e) => Err(BuildError::Ffmpeg(e)),
                    };
                if let Err(e) = encoded {
                    // That frame stays black until its image is sent again.
                    tracing::warn!(
                        job_id,
                        frame = frame.frame,
                        "frame left out of the preview video: {e}"
                    );
                    video.encoded.remove(&frame.frame);
                    continue;
                }
                video.encoded.insert(frame.frame, frame.updated_at.clone());
            }
            in_video.insert(frame.frame);
        }
        let list = work.join("list.txt");
        tokio::fs::write(&list, plan::concat_list(&frames, &in_video)).await?;
        let partial = job_dir.join(format!("{VIDEO_FILE}.partial"));
        ffmpeg::join(&self.program, &list, &partial, fps).await?;
        tokio::fs::rename(&partial, job_dir.join(VIDEO_FILE)).await?;
        let row = PreviewVideoRow {
            job_id: job_id.to_string(),
            width: i64::from(size.0),
            height: i64::from(size.1),
            fps: fps.as_f64(),
            first_frame: frames.first().copied().unwrap_or_default(),
            frame_count: frames.len() as i64,
            rendered_frames: in_video.len() as i64,
            updated_at: started,
        };
        Ok(store.set_preview_video(&row).await?.then_some(row))
    }
}

/// The job whose video is due first and when: a job with new frames is built an interval
/// after its last build (at once when never built or when it completed).
fn next_due(
    jobs: &HashMap<String, JobVideo>,
    interval: Duration,
    now: Instant,
) -> Option<(String, Instant)> {
    jobs.iter()
        .filter(|(_, video)| video.dirty)
        .map(|(job_id, video)| {
            let at = match video.last_build {
                Some(last) if !video.urgent => last + interval,
                _ => now,
            };
            (job_id, at)
        })
        .min_by_key(|(_, at)| *at)
        .map(|(job_id, at)| (job_id.clone(), at))
}

/// A stored size (always a small positive number) as FFmpeg takes it.
fn dims(value: i64) -> u32 {
    u32::try_from(value).unwrap_or(2).max(2)
}

/// The video size from the first thumbnail whose size can be read.
async fn first_frame_size(
    frames_dir: &Path,
    rendered: &[crate::store::RenderedFrame],
) -> Result<(u32, u32), BuildError> {
    for frame in rendered {
        let path = frames_dir.join(frame_file_name(frame.frame));
        if let Ok(bytes) = tokio::fs::read(&path).await
            && let Some((width, height)) = jpeg_size::jpeg_size(&bytes)
        {
            return Ok(plan::video_size(width, height));
        }
    }
    Err(BuildError::NoSize)
}

#[derive(Debug, thiserror::Error)]
enum BuildError {
    #[error("{0}")]
    Store(#[from] crate::store::StoreError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Ffmpeg(#[from] ffmpeg::FfmpegError),
    #[error("none of the job's frame images is a readable JPEG")]
    NoSize,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn video(dirty: bool, urgent: bool, last_build: Option<Instant>) -> JobVideo {
        JobVideo {
            dirty,
            urgent,
            last_build,
            ..JobVideo::default()
        }
    }

    #[test]
    fn builds_wait_an_interval_after_the_last_unless_first_or_completed() {
        let now = Instant::now();
        let interval = Duration::from_secs(10);
        let earlier = now - Duration::from_secs(4);
        let mut jobs = HashMap::new();
        assert_eq!(next_due(&jobs, interval, now), None);
        // Built 4 s ago with new frames since: due 6 s from now.
        jobs.insert("a".to_string(), video(true, false, Some(earlier)));
        assert_eq!(
            next_due(&jobs, interval, now),
            Some(("a".to_string(), earlier + interval))
        );
        // Nothing new: never due, however long ago it was built.
        jobs.insert(
            "b".to_string(),
            video(false, false, Some(now - interval * 9)),
        );
        assert_eq!(
            next_due(&jobs, interval, now).map(|d| d.0),
            Some("a".into())
        );
        // A job never built goes first, at once.
        jobs.insert("c".to_string(), video(true, false, None));
        assert_eq!(next_due(&jobs, interval, now), Some(("c".to_string(), now)));
        jobs.remove("c");
        // A completed job does not wait for its interval.
        jobs.insert("d".to_string(), video(true, true, Some(now)));
        assert_eq!(next_due(&jobs, interval, now), Some(("d".to_string(), now)));
    }
}
