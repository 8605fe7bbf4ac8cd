-- The highest worker sequence number applied to each task under its current lease. Updates
-- are deduplicated per task, not per worker, so a worker may send the updates of different
-- tasks concurrently (one task's updates still arrive in order). Reset at every assignment.
ALTER TABLE tasks ADD COLUMN last_update_sequence INTEGER NOT NULL DEFAULT 0;
