-- Retries with backoff: a soft-failed task is not handed out before this time (RFC 3339, UTC,
-- the store's format, so it compares as text). NULL: at once. Cleared at every assignment.
ALTER TABLE tasks ADD COLUMN retry_at TEXT;
CREATE INDEX tasks_retry_at ON tasks(retry_at) WHERE retry_at IS NOT NULL;

-- Farm-wide resource pools and the per-job worker limit (`state::JobLimits` as JSON; '{}':
-- none, which keeps the scheduler's check to one comparison).
ALTER TABLE jobs ADD COLUMN limits TEXT NOT NULL DEFAULT '{}';

-- Cross-job dependencies: a job waits until every job it depends on has completed. No
-- foreign key on depends_on_id: a deleted dependency must hold its dependents back, not
-- silently release them.
CREATE TABLE job_dependencies (
    job_id        TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    depends_on_id TEXT NOT NULL,
    PRIMARY KEY (job_id, depends_on_id)
) WITHOUT ROWID;
CREATE INDEX job_dependencies_reverse ON job_dependencies(depends_on_id);

-- Preview-first task order: every Nth task of the job is handed out first, then the gaps
-- (NULL: in order). Applied by renumbering the job's task rowids when it is stored.
ALTER TABLE jobs ADD COLUMN preview_first_every INTEGER;

-- When the task's current run started (set at every assignment): with `updated_at` at
-- completion it gives the run's duration, from which completion times are estimated.
ALTER TABLE tasks ADD COLUMN started_at TEXT;
