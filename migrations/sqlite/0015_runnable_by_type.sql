-- Runnable tasks in scheduling order per task type (task priority, then insertion order
-- via the rowid every index ends with). The scheduler walks the range of each task type
-- the worker runs, so tasks of types it cannot run are never read: a worker that runs
-- only some types finds its task at once among a million stored tasks of other types.
CREATE INDEX tasks_runnable_by_type ON tasks(task_type, priority DESC)
    WHERE status IN ('queued', 'soft-failed');
DROP INDEX tasks_runnable_order;
