-- PostgreSQL schema, equal to the SQLite schema after migrations/sqlite/0001…0015 (tables,
-- columns and their order, defaults, keys, indexes, triggers). Timestamps are RFC 3339 UTC
-- text with milliseconds ("2026-11-23T20:15:18.123Z"), so they sort as text.
--
-- Types follow what sqlx's `Any` driver reads: SQLite INTEGER is BIGINT (flags too: 0/1,
-- never BOOLEAN), REAL is DOUBLE PRECISION, JSON stays TEXT. Text compares byte by byte
-- (COLLATE "C"), as in SQLite, so lists sort the same on both engines. A task's dependencies
-- may be stored before the tasks they name: those keys are checked at commit.
--
-- SQLite's implicit rowid is read, ordered by or written by the store for `tasks` (the
-- scheduler's tie-break, preview-first renumbering, chunk replacement) and `last_rendered`
-- (newest-first tie-break). Those two tables get an explicit `rowid` column, appended after
-- the SQLite columns, fed by a sequence; it is not GENERATED ALWAYS because the store writes
-- it. Indexes that SQLite walks in rowid order (every SQLite index ends with the rowid) name
-- it as their last column here.

CREATE TABLE worker_tags (
    id          TEXT COLLATE "C" PRIMARY KEY,            -- UUID
    name        TEXT COLLATE "C" NOT NULL UNIQUE,
    description TEXT COLLATE "C" NOT NULL DEFAULT '',
    created_at  TEXT COLLATE "C" NOT NULL,
    updated_at  TEXT COLLATE "C" NOT NULL
);

CREATE TABLE jobs (
    id                  TEXT COLLATE "C" PRIMARY KEY,    -- UUID
    name                TEXT COLLATE "C" NOT NULL,
    job_type            TEXT COLLATE "C" NOT NULL,
    type_etag           TEXT COLLATE "C" NOT NULL DEFAULT '',
    priority            BIGINT NOT NULL,
    status              TEXT COLLATE "C" NOT NULL,
    activity            TEXT COLLATE "C" NOT NULL DEFAULT '',
    settings            TEXT COLLATE "C" NOT NULL DEFAULT '{}',  -- JSON object
    metadata            TEXT COLLATE "C" NOT NULL DEFAULT '{}',  -- JSON object of strings
    submitter_platform  TEXT COLLATE "C" NOT NULL DEFAULT '',
    worker_tag_id       TEXT COLLATE "C" REFERENCES worker_tags(id) ON DELETE SET NULL,
    storage_checkout_id TEXT COLLATE "C" NOT NULL DEFAULT '',
    requirements        TEXT COLLATE "C" NOT NULL DEFAULT '{}',  -- JSON: min RAM, GPUs, tags
    steps_completed     BIGINT NOT NULL DEFAULT 0,   -- kept by the tasks_steps_* triggers
    steps_total         BIGINT NOT NULL DEFAULT 0,
    delete_requested_at TEXT COLLATE "C",
    created_at          TEXT COLLATE "C" NOT NULL,
    updated_at          TEXT COLLATE "C" NOT NULL,
    limits              TEXT COLLATE "C" NOT NULL DEFAULT '{}',  -- `state::JobLimits` as JSON; '{}': none
    preview_first_every BIGINT,                      -- NULL: tasks in order
    target_task_seconds DOUBLE PRECISION,            -- adaptive chunking; NULL: as authored
    approval_state      TEXT COLLATE "C",                        -- NULL (no gate), pending, approved, rejected
    approval_comment    TEXT COLLATE "C",
    approval_by         TEXT COLLATE "C",
    approval_at         TEXT COLLATE "C",
    on_complete         TEXT COLLATE "C"                         -- command line run after the last render task
);
CREATE INDEX jobs_status ON jobs(status);
CREATE INDEX jobs_updated ON jobs(updated_at);

CREATE TABLE workers (
    id                     TEXT COLLATE "C" PRIMARY KEY, -- UUID
    name                   TEXT COLLATE "C" NOT NULL,
    token_hash             TEXT COLLATE "C" NOT NULL,    -- SHA-256 hex of the worker's token
    platform               TEXT COLLATE "C" NOT NULL DEFAULT '',
    address                TEXT COLLATE "C" NOT NULL DEFAULT '',
    software_version       TEXT COLLATE "C" NOT NULL DEFAULT '',
    status                 TEXT COLLATE "C" NOT NULL DEFAULT '',
    status_requested       TEXT COLLATE "C" NOT NULL DEFAULT '',
    lazy_status_request    BIGINT NOT NULL DEFAULT 0,
    supported_task_types   TEXT COLLATE "C" NOT NULL DEFAULT '[]',  -- JSON array
    slots                  BIGINT NOT NULL DEFAULT 1,
    capabilities           TEXT COLLATE "C" NOT NULL DEFAULT '{}',  -- JSON: cores, RAM, GPUs, software
    can_restart            BIGINT NOT NULL DEFAULT 0,
    last_update_sequence   BIGINT NOT NULL DEFAULT 0,
    last_seen_at           TEXT COLLATE "C",
    deleted_at             TEXT COLLATE "C",
    created_at             TEXT COLLATE "C" NOT NULL,
    updated_at             TEXT COLLATE "C" NOT NULL
);

CREATE TABLE worker_tag_membership (
    worker_tag_id TEXT COLLATE "C" NOT NULL REFERENCES worker_tags(id) ON DELETE CASCADE,
    worker_id     TEXT COLLATE "C" NOT NULL REFERENCES workers(id) ON DELETE CASCADE,
    PRIMARY KEY (worker_tag_id, worker_id)
);

CREATE SEQUENCE tasks_rowid_seq;

CREATE TABLE tasks (
    id                   TEXT COLLATE "C" PRIMARY KEY,   -- UUID
    job_id               TEXT COLLATE "C" NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    index_in_job         BIGINT NOT NULL,    -- 1-based creation order
    name                 TEXT COLLATE "C" NOT NULL,
    task_type            TEXT COLLATE "C" NOT NULL,
    priority             BIGINT NOT NULL DEFAULT 50,
    status               TEXT COLLATE "C" NOT NULL,
    commands             TEXT COLLATE "C" NOT NULL,      -- JSON array of {name, parameters, total_step_count}
    worker_id            TEXT COLLATE "C" REFERENCES workers(id) ON DELETE SET NULL,
    lease_epoch          BIGINT NOT NULL DEFAULT 0,
    activity             TEXT COLLATE "C" NOT NULL DEFAULT '',
    progress             DOUBLE PRECISION,   -- 0..100 within the running command
    fault_class          TEXT COLLATE "C" NOT NULL DEFAULT '',
    steps_completed      BIGINT NOT NULL DEFAULT 0,
    steps_total          BIGINT NOT NULL DEFAULT 0,
    last_touched_at      TEXT COLLATE "C",
    created_at           TEXT COLLATE "C" NOT NULL,
    updated_at           TEXT COLLATE "C" NOT NULL,
    last_update_sequence BIGINT NOT NULL DEFAULT 0, -- highest worker sequence applied this lease
    retry_at             TEXT COLLATE "C",               -- soft-failed: not handed out before; NULL: at once
    started_at           TEXT COLLATE "C",               -- start of the current run
    frames               TEXT COLLATE "C",               -- chunk's frame range ("11-20"); NULL: not a chunk
    -- SQLite's rowid: the scheduling order after task priority (insertion order, renumbered
    -- for preview-first jobs). Written explicitly by the store, so only a default.
    rowid                BIGINT NOT NULL DEFAULT nextval('tasks_rowid_seq'),
    UNIQUE (job_id, index_in_job)
);
ALTER SEQUENCE tasks_rowid_seq OWNED BY tasks.rowid;
CREATE UNIQUE INDEX tasks_rowid ON tasks(rowid);
CREATE INDEX tasks_runnable ON tasks(status, job_id, rowid) WHERE status IN ('queued', 'soft-failed');
CREATE INDEX tasks_worker ON tasks(worker_id) WHERE status = 'active';
-- A job's tasks filtered by status, in job order.
CREATE INDEX tasks_job_status_order ON tasks(job_id, status, index_in_job);
CREATE INDEX tasks_retry_at ON tasks(retry_at) WHERE retry_at IS NOT NULL;
-- Runnable tasks in scheduling order per task type: task priority, then rowid (the order
-- of the scheduler's ORDER BY t.priority DESC, t.rowid).
CREATE INDEX tasks_runnable_by_type ON tasks(task_type, priority DESC, rowid)
    WHERE status IN ('queued', 'soft-failed');

-- SQLite gives a new row max(rowid) + 1, so rowids the store writes itself (preview-first
-- renumbering sets them above the current maximum) never collide with later inserts. A
-- sequence does not look at the table: move it past any rowid written explicitly.
CREATE FUNCTION tasks_rowid_seq_follow() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    highest BIGINT;
BEGIN
    SELECT MAX(rowid) INTO highest FROM tasks;
    IF highest IS NOT NULL AND highest > (SELECT CASE WHEN is_called THEN last_value
                                                      ELSE last_value - 1 END
                                          FROM tasks_rowid_seq) THEN
        PERFORM setval('tasks_rowid_seq', highest);
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER tasks_rowid_seq_follow_insert AFTER INSERT ON tasks
    FOR EACH STATEMENT EXECUTE FUNCTION tasks_rowid_seq_follow();
CREATE TRIGGER tasks_rowid_seq_follow_update AFTER UPDATE OF rowid ON tasks
    FOR EACH STATEMENT EXECUTE FUNCTION tasks_rowid_seq_follow();

CREATE TABLE task_dependencies (
    task_id       TEXT COLLATE "C" NOT NULL REFERENCES tasks(id) ON DELETE CASCADE
                  DEFERRABLE INITIALLY DEFERRED,
    dependency_id TEXT COLLATE "C" NOT NULL REFERENCES tasks(id) ON DELETE CASCADE
                  DEFERRABLE INITIALLY DEFERRED,
    PRIMARY KEY (task_id, dependency_id)
);
CREATE INDEX task_dependencies_reverse ON task_dependencies(dependency_id);

CREATE TABLE task_failures (
    task_id    TEXT COLLATE "C" NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
    worker_id  TEXT COLLATE "C" NOT NULL REFERENCES workers(id) ON DELETE CASCADE,
    created_at TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (task_id, worker_id)
);

CREATE TABLE job_blocklist (
    job_id     TEXT COLLATE "C" NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    worker_id  TEXT COLLATE "C" NOT NULL REFERENCES workers(id) ON DELETE CASCADE,
    task_type  TEXT COLLATE "C" NOT NULL,
    created_at TEXT COLLATE "C" NOT NULL,
    reason     TEXT COLLATE "C" NOT NULL DEFAULT '',     -- shown by the API and `castanet why`
    PRIMARY KEY (job_id, worker_id, task_type)
);

CREATE TABLE sleep_schedules (
    worker_id    TEXT COLLATE "C" PRIMARY KEY REFERENCES workers(id) ON DELETE CASCADE,
    is_active    BIGINT NOT NULL DEFAULT 0,
    days_of_week TEXT COLLATE "C" NOT NULL DEFAULT '',
    start_time   TEXT COLLATE "C" NOT NULL DEFAULT '',
    end_time     TEXT COLLATE "C" NOT NULL DEFAULT '',
    next_check   TEXT COLLATE "C",
    updated_at   TEXT COLLATE "C" NOT NULL,
    last_applied TEXT COLLATE "C" NOT NULL DEFAULT ''    -- what the schedule monitor last requested
);

CREATE SEQUENCE last_rendered_rowid_seq;

CREATE TABLE last_rendered (
    job_id     TEXT COLLATE "C" PRIMARY KEY REFERENCES jobs(id) ON DELETE CASCADE,
    updated_at TEXT COLLATE "C" NOT NULL,
    -- SQLite's rowid: the tie-break of "newest first" (ORDER BY updated_at DESC, rowid DESC).
    rowid      BIGINT NOT NULL DEFAULT nextval('last_rendered_rowid_seq')
);
ALTER SEQUENCE last_rendered_rowid_seq OWNED BY last_rendered.rowid;
CREATE UNIQUE INDEX last_rendered_rowid ON last_rendered(rowid);

-- Audit trail of status changes: who changed what, when, and why.
CREATE TABLE status_events (
    id         BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, -- SQLite: AUTOINCREMENT
    entity     TEXT COLLATE "C" NOT NULL,   -- 'job' | 'task' | 'worker'
    entity_id  TEXT COLLATE "C" NOT NULL,
    old_status TEXT COLLATE "C" NOT NULL,
    new_status TEXT COLLATE "C" NOT NULL,
    reason     TEXT COLLATE "C" NOT NULL DEFAULT '',
    created_at TEXT COLLATE "C" NOT NULL
);
CREATE INDEX status_events_entity ON status_events(entity, entity_id);

-- Per-job task counts by status. Inserting tasks adds to it in the store (once per job);
-- status changes and deletions are counted by the triggers below.
CREATE TABLE job_task_counts (
    job_id TEXT COLLATE "C" NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    status TEXT COLLATE "C" NOT NULL,
    n      BIGINT NOT NULL,
    PRIMARY KEY (job_id, status)
);

CREATE FUNCTION tasks_count_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE job_task_counts SET n = n - 1 WHERE job_id = OLD.job_id AND status = OLD.status;
    INSERT INTO job_task_counts AS c (job_id, status, n) VALUES (NEW.job_id, NEW.status, 1)
        ON CONFLICT (job_id, status) DO UPDATE SET n = c.n + 1;
    RETURN NULL;
END;
$$;
CREATE TRIGGER tasks_count_update AFTER UPDATE OF status ON tasks
    FOR EACH ROW WHEN (OLD.status <> NEW.status) EXECUTE FUNCTION tasks_count_update();

CREATE FUNCTION tasks_count_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE job_task_counts SET n = n - 1 WHERE job_id = OLD.job_id AND status = OLD.status;
    RETURN NULL;
END;
$$;
CREATE TRIGGER tasks_count_delete AFTER DELETE ON tasks
    FOR EACH ROW EXECUTE FUNCTION tasks_count_delete();

-- A job's completed-step sum follows its tasks' step counts (no re-summing per update).
CREATE FUNCTION tasks_steps_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE jobs SET steps_completed = steps_completed + NEW.steps_completed - OLD.steps_completed
    WHERE id = NEW.job_id;
    RETURN NULL;
END;
$$;
CREATE TRIGGER tasks_steps_update AFTER UPDATE OF steps_completed ON tasks
    FOR EACH ROW WHEN (OLD.steps_completed <> NEW.steps_completed)
    EXECUTE FUNCTION tasks_steps_update();

CREATE FUNCTION tasks_steps_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE jobs SET steps_completed = steps_completed - OLD.steps_completed WHERE id = OLD.job_id;
    RETURN NULL;
END;
$$;
CREATE TRIGGER tasks_steps_delete AFTER DELETE ON tasks
    FOR EACH ROW WHEN (OLD.steps_completed <> 0) EXECUTE FUNCTION tasks_steps_delete();

-- API tokens, each with a role, stored as SHA-256 hashes.
CREATE TABLE api_tokens (
    id          TEXT COLLATE "C" PRIMARY KEY,
    name        TEXT COLLATE "C" NOT NULL,
    role        TEXT COLLATE "C" NOT NULL CHECK (role IN ('viewer', 'submitter', 'admin')),
    token_hash  TEXT COLLATE "C" NOT NULL UNIQUE,
    created_at  TEXT COLLATE "C" NOT NULL,
    revoked_at  TEXT COLLATE "C"
);
-- A name identifies one live token; a revoked token's name may be given out again.
CREATE UNIQUE INDEX api_tokens_live_name ON api_tokens (name) WHERE revoked_at IS NULL;

-- Every state-changing API request.
CREATE TABLE audit_log (
    id       BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, -- SQLite: AUTOINCREMENT
    at       TEXT COLLATE "C" NOT NULL,
    -- Token name, "anonymous", or "cli" for changes made by `castanet manager token`.
    actor    TEXT COLLATE "C" NOT NULL,
    role     TEXT COLLATE "C",
    remote   TEXT COLLATE "C",
    method   TEXT COLLATE "C" NOT NULL,
    path     TEXT COLLATE "C" NOT NULL,
    status   BIGINT NOT NULL
);

-- A registration secret rotated at run time (API or CLI); at most one row.
CREATE TABLE registration_secret (
    id                  BIGINT PRIMARY KEY CHECK (id = 1),
    secret              TEXT COLLATE "C" NOT NULL,
    config_secret_hash  TEXT COLLATE "C" NOT NULL,
    rotated_at          TEXT COLLATE "C" NOT NULL
);

-- Tombstones of deleted jobs whose directory of task logs and previews may still exist.
CREATE TABLE deleted_job_dirs (
    job_id      TEXT COLLATE "C" PRIMARY KEY,
    deleted_at  TEXT COLLATE "C" NOT NULL
);

-- Cross-job dependencies. No foreign key on depends_on_id: a deleted dependency must hold
-- its dependents back, not silently release them.
CREATE TABLE job_dependencies (
    job_id        TEXT COLLATE "C" NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    depends_on_id TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (job_id, depends_on_id)
);
CREATE INDEX job_dependencies_reverse ON job_dependencies(depends_on_id);

-- Notification rules edited over the API (config-file rules are not stored).
CREATE TABLE notification_rules (
    id         TEXT COLLATE "C" PRIMARY KEY,             -- UUID
    name       TEXT COLLATE "C" NOT NULL,
    kind       TEXT COLLATE "C" NOT NULL,                -- webhook, slack, discord, mattermost, matrix, email
    events     TEXT COLLATE "C" NOT NULL,                -- JSON array of event names
    submitter  TEXT COLLATE "C",                         -- NULL: the whole farm
    url        TEXT COLLATE "C" NOT NULL DEFAULT '',     -- webhook and chat kinds
    secret     TEXT COLLATE "C" NOT NULL DEFAULT '',     -- webhook HMAC key; never returned by the API
    email_to   TEXT COLLATE "C" NOT NULL DEFAULT '',     -- email kind: comma-separated addresses
    enabled    BIGINT NOT NULL DEFAULT 1,
    created_at TEXT COLLATE "C" NOT NULL,
    updated_at TEXT COLLATE "C" NOT NULL
);

-- The outbox of deliveries (also the delivery log).
CREATE TABLE notification_deliveries (
    id              TEXT COLLATE "C" PRIMARY KEY,        -- UUID, sent as X-Castanet-Delivery
    dedupe_key      TEXT COLLATE "C" NOT NULL UNIQUE,    -- rule, event, subject and transition number
    rule_id         TEXT COLLATE "C" NOT NULL,
    rule_name       TEXT COLLATE "C" NOT NULL,
    kind            TEXT COLLATE "C" NOT NULL,
    target          TEXT COLLATE "C" NOT NULL,           -- URL or e-mail addresses
    event           TEXT COLLATE "C" NOT NULL,
    job_id          TEXT COLLATE "C",
    worker_id       TEXT COLLATE "C",
    payload         TEXT COLLATE "C" NOT NULL,           -- the JSON body of a webhook
    status          TEXT COLLATE "C" NOT NULL,           -- pending, delivered, failed
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at TEXT COLLATE "C" NOT NULL,
    last_error      TEXT COLLATE "C" NOT NULL DEFAULT '',
    created_at      TEXT COLLATE "C" NOT NULL,
    updated_at      TEXT COLLATE "C" NOT NULL
);
CREATE INDEX notification_deliveries_due ON notification_deliveries(next_attempt_at) WHERE status = 'pending';
CREATE INDEX notification_deliveries_created ON notification_deliveries(created_at);

-- The last status the notifier saw of each job and worker.
CREATE TABLE notification_subjects (
    subject     TEXT COLLATE "C" PRIMARY KEY,            -- "job:<id>" or "worker:<id>"
    status      TEXT COLLATE "C" NOT NULL,
    transitions BIGINT NOT NULL DEFAULT 0,   -- entries into a notifying status so far
    updated_at  TEXT COLLATE "C" NOT NULL
);

-- Every numbered frame a worker uploaded a thumbnail of (<job dir>/frames/<frame>.jpg).
CREATE TABLE rendered_frames (
    job_id     TEXT COLLATE "C" NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    frame      BIGINT NOT NULL,
    task_id    TEXT COLLATE "C" NOT NULL,
    updated_at TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (job_id, frame)
);

-- The newest preview video of a job (<job dir>/preview.mp4) and what it holds.
CREATE TABLE preview_videos (
    job_id          TEXT COLLATE "C" PRIMARY KEY REFERENCES jobs(id) ON DELETE CASCADE,
    width           BIGINT NOT NULL,
    height          BIGINT NOT NULL,
    fps             DOUBLE PRECISION NOT NULL,
    first_frame     BIGINT NOT NULL,
    frame_count     BIGINT NOT NULL,
    rendered_frames BIGINT NOT NULL,
    updated_at      TEXT COLLATE "C" NOT NULL
);

-- The few SQLite functions the store's shared SQL uses, so one statement serves both engines.
-- json_each(text): the elements of a JSON array (lists of ids, statuses) as text. PostgreSQL's
-- own json_each takes json and is left alone; a text argument picks this one.
CREATE FUNCTION json_each(list TEXT) RETURNS TABLE (value TEXT)
    LANGUAGE sql IMMUTABLE STRICT
    AS $$ SELECT json_array_elements_text(list::json) $$;

-- julianday(text): days since noon UTC, 24 November 4714 BC, as SQLite counts them; the store
-- only subtracts two of them.
CREATE FUNCTION julianday(at TEXT) RETURNS DOUBLE PRECISION
    LANGUAGE sql IMMUTABLE STRICT
    AS $$ SELECT extract(epoch FROM at::timestamptz)::double precision / 86400.0 + 2440587.5 $$;

-- json_group_array(x): the values as a JSON array text, '[]' when there are none.
CREATE FUNCTION json_group_array_final(items anycompatiblearray) RETURNS TEXT
    LANGUAGE sql IMMUTABLE
    AS $$ SELECT COALESCE(array_to_json(items)::text, '[]') $$;
CREATE AGGREGATE json_group_array(anycompatible) (
    SFUNC = array_append,
    STYPE = anycompatiblearray,
    FINALFUNC = json_group_array_final,
    INITCOND = '{}'
);
