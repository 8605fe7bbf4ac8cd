-- Sleep schedules (table from 0001): remember what the schedule monitor last requested,
-- so a manual request made afterwards is not overruled until the schedule's answer
-- changes ('' = nothing requested yet; a saved schedule starts over).
ALTER TABLE sleep_schedules ADD COLUMN last_applied TEXT NOT NULL DEFAULT '';
