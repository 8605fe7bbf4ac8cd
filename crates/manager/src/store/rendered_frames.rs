//! The per-frame thumbnails of a job (`rendered_frames`) and the record of its preview
//! video (`preview_videos`). Both go with the job (foreign keys, ON DELETE CASCADE).
use super::{Store, StoreResult, now};

/// One frame with a stored thumbnail.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct RenderedFrame {
    pub frame: i64,
    pub task_id: String,
    pub updated_at: String,
}

/// What a job's preview video holds, as last written.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct PreviewVideoRow {
    pub job_id: String,
    pub width: i64,
    pub height: i64,
    pub fps: f64,
    pub first_frame: i64,
    pub frame_count: i64,
    pub rendered_frames: i64,
    pub updated_at: String,
}

impl Store {
    /// Records that `frame` of `job_id` has a (new) thumbnail from `task_id`; returns its
    /// time stamp.
    pub async fn set_rendered_frame(
        &self,
        job_id: &str,
        frame: i64,
        task_id: &str,
    ) -> StoreResult<String> {
        let at = now();
        sqlx::query(
            "INSERT INTO rendered_frames (job_id, frame, task_id, updated_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (job_id, frame) DO UPDATE SET task_id = $3, updated_at = $4",
        )
        .bind(job_id)
        .bind(frame)
        .bind(task_id)
        .bind(&at)
        .execute(self.writer()?)
        .await?;
        Ok(at)
    }

    /// Every frame of `job_id` with a thumbnail, by frame number.
    pub async fn rendered_frames(&self, job_id: &str) -> StoreResult<Vec<RenderedFrame>> {
        Ok(sqlx::query_as(
            "SELECT frame, task_id, updated_at FROM rendered_frames WHERE job_id = $1 ORDER BY frame",
        )
        .bind(job_id)
        .fetch_all(&self.read)
        .await?)
    }

    /// Jobs with a frame stored after their preview video was last made (or without a
    /// video yet), each once: what the video builder must catch up on after a restart.
    pub async fn jobs_with_stale_preview_video(&self) -> StoreResult<Vec<String>> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT r.job_id FROM rendered_frames r
             LEFT JOIN preview_videos v ON v.job_id = r.job_id
             GROUP BY r.job_id
             HAVING MAX(v.updated_at) IS NULL OR MAX(r.updated_at) > MAX(v.updated_at)
             ORDER BY r.job_id",
        )
        .fetch_all(&self.read)
        .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// The job's preview video record, if one was written.
    pub async fn preview_video(&self, job_id: &str) -> StoreResult<Option<PreviewVideoRow>> {
        Ok(
            sqlx::query_as("SELECT * FROM preview_videos WHERE job_id = $1")
                .bind(job_id)
                .fetch_optional(&self.read)
                .await?,
        )
    }

    /// Records a freshly written preview video. Nothing is stored for a job that is gone
    /// (deleted while its video was being made); returns whether the row was written.
    pub async fn set_preview_video(&self, video: &PreviewVideoRow) -> StoreResult<bool> {
        let done = sqlx::query(
            "INSERT INTO preview_videos
                 (job_id, width, height, fps, first_frame, frame_count, rendered_frames, updated_at)
             SELECT $1, $2, $3, $4, $5, $6, $7, $8 WHERE EXISTS (SELECT 1 FROM jobs WHERE id = $1)
             ON CONFLICT (job_id) DO UPDATE SET width = $2, height = $3, fps = $4,
                 first_frame = $5, frame_count = $6, rendered_frames = $7, updated_at = $8",
        )
        .bind(&video.job_id)
        .bind(video.width)
        .bind(video.height)
        .bind(video.fps)
        .bind(video.first_frame)
        .bind(video.frame_count)
        .bind(video.rendered_frames)
        .bind(&video.updated_at)
        .execute(self.writer()?)
        .await?;
        Ok(done.rows_affected() > 0)
    }
}
