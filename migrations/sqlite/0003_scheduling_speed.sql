-- Per-job task counts by status, kept by triggers, so a task's status change ripples
-- into its job without counting the job's (up to 100k) tasks each time.
CREATE TABLE job_task_counts (
    job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    status TEXT NOT NULL,
    n      INTEGER NOT NULL,
    PRIMARY KEY (job_id, status)
) WITHOUT ROWID;

INSERT INTO job_task_counts (job_id, status, n)
    SELECT job_id, status, COUNT(*) FROM tasks GROUP BY job_id, status;

CREATE TRIGGER tasks_count_insert AFTER INSERT ON tasks BEGIN
    INSERT INTO job_task_counts (job_id, status, n) VALUES (NEW.job_id, NEW.status, 1)
        ON CONFLICT (job_id, status) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER tasks_count_update AFTER UPDATE OF status ON tasks
WHEN OLD.status <> NEW.status BEGIN
    UPDATE job_task_counts SET n = n - 1 WHERE job_id = OLD.job_id AND status = OLD.status;
    INSERT INTO job_task_counts (job_id, status, n) VALUES (NEW.job_id, NEW.status, 1)
        ON CONFLICT (job_id, status) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER tasks_count_delete AFTER DELETE ON tasks BEGIN
    UPDATE job_task_counts SET n = n - 1 WHERE job_id = OLD.job_id AND status = OLD.status;
END;

-- Runnable tasks in scheduling order (task priority, then insertion order via rowid),
-- so the scheduler walks the index and stops at the first eligible task.
CREATE INDEX tasks_runnable_order ON tasks(priority DESC)
    WHERE status IN ('queued', 'soft-failed');

-- A job's completed-step sum follows its tasks' step counts (no re-summing per update).
CREATE TRIGGER tasks_steps_update AFTER UPDATE OF steps_completed ON tasks
WHEN OLD.steps_completed <> NEW.steps_completed BEGIN
    UPDATE jobs SET steps_completed = steps_completed + NEW.steps_completed - OLD.steps_completed
    WHERE id = NEW.job_id;
END;

CREATE TRIGGER tasks_steps_delete AFTER DELETE ON tasks WHEN OLD.steps_completed <> 0 BEGIN
    UPDATE jobs SET steps_completed = steps_completed - OLD.steps_completed WHERE id = OLD.job_id;
END;
