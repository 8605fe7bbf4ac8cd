//! The scheduling round's statements in PostgreSQL's dialect, where SQLite's differ: JSON is
//! read with jsonb operators instead of `json_extract`/`json_each(doc, path)`, and there is no
//! `INDEXED BY` (the planner picks `tasks_runnable_by_type`, which ends in `rowid` there too).
//! Same parameters, same rows, same order as `scheduling::NEXT_TASK_SQL` and friends.

pub(super) const NEXT_TASK_SQL: &str = concat!(
    "SELECT t.id, t.status, t.priority, t.rowid FROM tasks t\n",
    super::scheduling::runnable_filters!(),
    "
  AND (j.requirements = '{}' OR (
      COALESCE((j.requirements::jsonb ->> 'min_ram_bytes')::numeric, 0) <= $4
      AND COALESCE((j.requirements::jsonb ->> 'min_gpus')::numeric, 0) <= $5
      AND NOT EXISTS (
          SELECT 1 FROM jsonb_array_elements_text(
              COALESCE(j.requirements::jsonb -> 'required_tags', '[]')) AS r(value)
          WHERE r.value NOT IN (SELECT value FROM json_each($6)))))
  AND (j.limits = '{}' OR (
      (j.limits::jsonb ->> 'max_workers' IS NULL
       OR $1 IN (SELECT a.worker_id FROM tasks a WHERE a.job_id = j.id AND a.status = 'active')
       OR (SELECT COUNT(DISTINCT a.worker_id) FROM tasks a
           WHERE a.job_id = j.id AND a.status = 'active')
          < (j.limits::jsonb ->> 'max_workers')::numeric)
      AND (j.limits::jsonb ->> 'resources' IS NULL
       OR (jsonb_array_length(COALESCE(j.limits::jsonb -> 'resource_task_types', '[]')) > 0
           AND t.task_type NOT IN (SELECT jsonb_array_elements_text(
               j.limits::jsonb -> 'resource_task_types')))
       OR NOT EXISTS (SELECT 1 FROM jsonb_each_text(j.limits::jsonb -> 'resources') AS r
           WHERE r.value::numeric > COALESCE(($8::jsonb ->> r.key)::numeric, 0)))))
ORDER BY t.priority DESC, t.rowid
LIMIT 1"
);

pub(super) const HELD_RESOURCES_SQL: &str = "
SELECT j.limits, t.task_type, COUNT(*) FROM tasks t
JOIN jobs j ON j.id = t.job_id
WHERE t.status = 'active' AND j.limits <> '{}'
GROUP BY j.id, t.task_type";
