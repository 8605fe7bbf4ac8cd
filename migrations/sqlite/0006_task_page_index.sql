-- A job's tasks filtered by status, in job order (`GET /api/v3/jobs/{id}/tasks/page?status=…`
-- and its count): without this index SQLite walks every task of the job through
-- (job_id, index_in_job) and checks each status — 40-80 ms for a 50,000-task job, measured
-- with `castanet bench --scenario jobs-query`.
CREATE INDEX tasks_job_status_order ON tasks(job_id, status, index_in_job);
