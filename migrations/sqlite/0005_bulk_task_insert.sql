-- Tasks are inserted only by `Store::begin_job_insert` / `JobInsert` (store/job_insert.rs),
-- which adds a job's count of queued tasks to job_task_counts once per job instead of once
-- per task row: the per-row insert trigger ran an upsert for each of a 100,000-task job's
-- rows. The update and delete triggers (status changes, deletions) stay as they are, so
-- job_task_counts keeps the same meaning for every reader.
DROP TRIGGER tasks_count_insert;
