-- Why a worker was blocklisted for a (job, task type): shown by the API and `castanet why`.
ALTER TABLE job_blocklist ADD COLUMN reason TEXT NOT NULL DEFAULT '';
