-- Every numbered frame a worker uploaded a thumbnail of (the file is
-- <job dir>/frames/<frame>.jpg): the job's frame grid and preview video are made from them.
CREATE TABLE rendered_frames (
    job_id     TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    frame      INTEGER NOT NULL,
    task_id    TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (job_id, frame)
) WITHOUT ROWID;

-- The newest preview video of a job (<job dir>/preview.mp4) and what it holds. The size is
-- chosen from the job's first frame and kept, so every segment of the video matches.
CREATE TABLE preview_videos (
    job_id          TEXT PRIMARY KEY REFERENCES jobs(id) ON DELETE CASCADE,
    width           INTEGER NOT NULL,
    height          INTEGER NOT NULL,
    fps             REAL NOT NULL,
    first_frame     INTEGER NOT NULL,
    frame_count     INTEGER NOT NULL,
    rendered_frames INTEGER NOT NULL,
    updated_at      TEXT NOT NULL
);
