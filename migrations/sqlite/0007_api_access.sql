-- API access control and enrolment (issue 8): tokens for the REST API, each with a role, stored as
-- SHA-256 hashes; the audit log of every state-changing API request; the rotated secret.
CREATE TABLE api_tokens (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('viewer', 'submitter', 'admin')),
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL,
    revoked_at  TEXT
);
-- A name identifies one live token; a revoked token's name may be given out again.
CREATE UNIQUE INDEX api_tokens_live_name ON api_tokens (name) WHERE revoked_at IS NULL;

CREATE TABLE audit_log (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    at       TEXT NOT NULL,
    -- Token name, "anonymous", or "cli" for changes made by `castanet manager token`.
    actor    TEXT NOT NULL,
    role     TEXT,
    remote   TEXT,
    method   TEXT NOT NULL,
    path     TEXT NOT NULL,
    status   INTEGER NOT NULL
);

-- A registration secret rotated at run time (API or CLI). It applies while the config
-- file still holds the secret it replaced (config_secret_hash); editing the secret in the
-- config file afterwards makes the file's value apply again.
CREATE TABLE registration_secret (
    id                  INTEGER PRIMARY KEY CHECK (id = 1),
    secret              TEXT NOT NULL,
    config_secret_hash  TEXT NOT NULL,
    rotated_at          TEXT NOT NULL
);
