-- Adaptive chunking: the task duration a job asks for (seconds; NULL: chunks as authored),
-- and the frames each chunkable task renders (frame-range notation, e.g. "11-20"; NULL for
-- tasks that are not chunks). Queued chunk tasks are regrouped towards the target.
ALTER TABLE jobs ADD COLUMN target_task_seconds REAL;
ALTER TABLE tasks ADD COLUMN frames TEXT;
