-- Review workflow (issue 16): the approval gate and the on-complete command.
-- approval_state: NULL for a job without a gate; 'pending' until someone approves or rejects
-- its preview pass, then 'approved' or 'rejected' (with the comment, who and when).
-- on_complete: the command line of the task that runs after the job's last render task (NULL:
-- none); for a gated job it is added with the final pass.
ALTER TABLE jobs ADD COLUMN approval_state TEXT;
ALTER TABLE jobs ADD COLUMN approval_comment TEXT;
ALTER TABLE jobs ADD COLUMN approval_by TEXT;
ALTER TABLE jobs ADD COLUMN approval_at TEXT;
ALTER TABLE jobs ADD COLUMN on_complete TEXT;
