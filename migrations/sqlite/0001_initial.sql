-- Castanet's first schema. Timestamps are RFC 3339 UTC text with milliseconds
-- ("2026-11-23T20:15:18.123Z"), so they sort as text.

CREATE TABLE worker_tags (
    id          TEXT PRIMARY KEY,            -- UUID
    name        TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);

CREATE TABLE jobs (
    id                  TEXT PRIMARY KEY,    -- UUID
    name                TEXT NOT NULL,
    job_type            TEXT NOT NULL,
    type_etag           TEXT NOT NULL DEFAULT '',
    priority            INTEGER NOT NULL,
    status              TEXT NOT NULL,
    activity            TEXT NOT NULL DEFAULT '',
    settings            TEXT NOT NULL DEFAULT '{}',  -- JSON object
    metadata            TEXT NOT NULL DEFAULT '{}',  -- JSON object of strings
    submitter_platform  TEXT NOT NULL DEFAULT '',
    worker_tag_id       TEXT REFERENCES worker_tags(id) ON DELETE SET NULL,
    storage_checkout_id TEXT NOT NULL DEFAULT '',
    requirements        TEXT NOT NULL DEFAULT '{}',  -- JSON: min RAM, GPUs, tags
    steps_completed     INTEGER NOT NULL DEFAULT 0,
    steps_total         INTEGER NOT NULL DEFAULT 0,
    delete_requested_at TEXT,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL
);
CREATE INDEX jobs_status ON jobs(status);
CREATE INDEX jobs_updated ON jobs(updated_at);

CREATE TABLE workers (
    id                     TEXT PRIMARY KEY, -- UUID
    name                   TEXT NOT NULL,
    token_hash             TEXT NOT NULL,    -- SHA-256 hex of the worker's token
    platform               TEXT NOT NULL DEFAULT '',
    address                TEXT NOT NULL DEFAULT '',
    software_version       TEXT NOT NULL DEFAULT '',
    status                 TEXT NOT NULL DEFAULT '',
    status_requested       TEXT NOT NULL DEFAULT '',
    lazy_status_request    INTEGER NOT NULL DEFAULT 0,
    supported_task_types   TEXT NOT NULL DEFAULT '[]',  -- JSON array
    slots                  INTEGER NOT NULL DEFAULT 1,
    capabilities           TEXT NOT NULL DEFAULT '{}',  -- JSON: cores, RAM, GPUs, software
    can_restart            INTEGER NOT NULL DEFAULT 0,
    last_update_sequence   INTEGER NOT NULL DEFAULT 0,
    last_seen_at           TEXT,
    deleted_at             TEXT,
    created_at             TEXT NOT NULL,
    updated_at             TEXT NOT NULL
);

CREATE TABLE worker_tag_membership (
    worker_tag_id TEXT NOT NULL REFERENCES worker_tags(id) ON DELETE CASCADE,
    worker_id     TEXT NOT NULL REFERENCES workers(id) ON DELETE CASCADE,
    PRIMARY KEY (worker_tag_id, worker_id)
);

CREATE TABLE tasks (
    id              TEXT PRIMARY KEY,        -- UUID
    job_id          TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    index_in_job    INTEGER NOT NULL,        -- 1-based creation order
    name            TEXT NOT NULL,
    task_type       TEXT NOT NULL,
    priority        INTEGER NOT NULL DEFAULT 50,
    status          TEXT NOT NULL,
    commands        TEXT NOT NULL,           -- JSON array of {name, parameters, total_step_count}
    worker_id       TEXT REFERENCES workers(id) ON DELETE SET NULL,
    lease_epoch     INTEGER NOT NULL DEFAULT 0,
    activity        TEXT NOT NULL DEFAULT '',
    progress        REAL,                    -- 0..100 within the running command
    fault_class     TEXT NOT NULL DEFAULT '',
    steps_completed INTEGER NOT NULL DEFAULT 0,
    steps_total     INTEGER NOT NULL DEFAULT 0,
    last_touched_at TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    UNIQUE (job_id, index_in_job)
);
CREATE INDEX tasks_runnable ON tasks(status, job_id) WHERE status IN ('queued', 'soft-failed');
CREATE INDEX tasks_worker ON tasks(worker_id) WHERE status = 'active';

CREATE TABLE task_dependencies (
    task_id       TEXT NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
    dependency_id TEXT NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
    PRIMARY KEY (task_id, dependency_id)
);
CREATE INDEX task_dependencies_reverse ON task_dependencies(dependency_id);

CREATE TABLE task_failures (
    task_id    TEXT NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
    worker_id  TEXT NOT NULL REFERENCES workers(id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    PRIMARY KEY (task_id, worker_id)
);

CREATE TABLE job_blocklist (
    job_id     TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    worker_id  TEXT NOT NULL REFERENCES workers(id) ON DELETE CASCADE,
    task_type  TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (job_id, worker_id, task_type)
);

CREATE TABLE sleep_schedules (
    worker_id    TEXT PRIMARY KEY REFERENCES workers(id) ON DELETE CASCADE,
    is_active    INTEGER NOT NULL DEFAULT 0,
    days_of_week TEXT NOT NULL DEFAULT '',
    start_time   TEXT NOT NULL DEFAULT '',
    end_time     TEXT NOT NULL DEFAULT '',
    next_check   TEXT,
    updated_at   TEXT NOT NULL
);

CREATE TABLE last_rendered (
    job_id     TEXT PRIMARY KEY REFERENCES jobs(id) ON DELETE CASCADE,
    updated_at TEXT NOT NULL
);

-- Audit trail of status changes: who changed what, when, and why.
CREATE TABLE status_events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    entity     TEXT NOT NULL,   -- 'job' | 'task' | 'worker'
    entity_id  TEXT NOT NULL,
    old_status TEXT NOT NULL,
    new_status TEXT NOT NULL,
    reason     TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL
);
CREATE INDEX status_events_entity ON status_events(entity, entity_id);
