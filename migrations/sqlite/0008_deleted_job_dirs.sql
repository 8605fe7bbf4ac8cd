-- Tombstones of deleted jobs whose directory of task logs and previews may still exist.
-- Written in the transaction that deletes the job's rows and removed once the directory
-- is gone, so that a manager killed in between removes exactly these directories at its
-- next start (and never the folders of jobs a restored or wrong database does not know).
CREATE TABLE deleted_job_dirs (
    job_id      TEXT PRIMARY KEY,
    deleted_at  TEXT NOT NULL
);
