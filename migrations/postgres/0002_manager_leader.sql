-- The active manager's address, written when it takes the leader lock, so a standby can name
-- it when it refuses a write (several managers may share a PostgreSQL database).
CREATE TABLE manager_leader (
    id    BIGINT PRIMARY KEY CHECK (id = 1),
    url   TEXT COLLATE "C" NOT NULL,
    since TEXT COLLATE "C" NOT NULL
);
