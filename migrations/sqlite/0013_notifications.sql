-- Notifications: rules edited over the API (config-file rules are not stored), the
-- outbox of deliveries (also the delivery log), and the last status the notifier saw
-- of each job and worker, so each transition is enqueued once, also across restarts.

CREATE TABLE notification_rules (
    id         TEXT PRIMARY KEY,             -- UUID
    name       TEXT NOT NULL,
    kind       TEXT NOT NULL,                -- webhook, slack, discord, mattermost, matrix, email
    events     TEXT NOT NULL,                -- JSON array of event names
    submitter  TEXT,                         -- NULL: the whole farm
    url        TEXT NOT NULL DEFAULT '',     -- webhook and chat kinds
    secret     TEXT NOT NULL DEFAULT '',     -- webhook HMAC key; never returned by the API
    email_to   TEXT NOT NULL DEFAULT '',     -- email kind: comma-separated addresses
    enabled    INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE notification_deliveries (
    id              TEXT PRIMARY KEY,        -- UUID, sent as X-Castanet-Delivery
    dedupe_key      TEXT NOT NULL UNIQUE,    -- rule, event, subject and transition number
    rule_id         TEXT NOT NULL,
    rule_name       TEXT NOT NULL,
    kind            TEXT NOT NULL,
    target          TEXT NOT NULL,           -- URL or e-mail addresses
    event           TEXT NOT NULL,
    job_id          TEXT,
    worker_id       TEXT,
    payload         TEXT NOT NULL,           -- the JSON body of a webhook
    status          TEXT NOT NULL,           -- pending, delivered, failed
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    last_error      TEXT NOT NULL DEFAULT '',
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
CREATE INDEX notification_deliveries_due ON notification_deliveries(next_attempt_at) WHERE status = 'pending';
CREATE INDEX notification_deliveries_created ON notification_deliveries(created_at);

CREATE TABLE notification_subjects (
    subject     TEXT PRIMARY KEY,            -- "job:<id>" or "worker:<id>"
    status      TEXT NOT NULL,
    transitions INTEGER NOT NULL DEFAULT 0,  -- entries into a notifying status so far
    updated_at  TEXT NOT NULL
);

-- What a farm already shows when it gains notifications is not news: every existing job and
-- worker starts as seen, so only changes from now on are notified.
INSERT INTO notification_subjects (subject, status, transitions, updated_at)
    SELECT 'job:' || id, status, 0, strftime('%Y-%m-%dT%H:%M:%fZ', 'now') FROM jobs;
INSERT INTO notification_subjects (subject, status, transitions, updated_at)
    SELECT 'worker:' || id, status, 0, strftime('%Y-%m-%dT%H:%M:%fZ', 'now') FROM workers;
