-- migrate:up
CREATE TABLE outbox (
    seq INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    event_type TEXT NOT NULL,
    version INTEGER NOT NULL,
    workspace_id TEXT NOT NULL,
    correlation_id TEXT,
    causation_id TEXT,
    actor TEXT,
    occurred_at TEXT NOT NULL,
    payload TEXT NOT NULL
) STRICT;

CREATE TABLE event_deliveries (
    subscriber TEXT NOT NULL,
    event_id TEXT NOT NULL REFERENCES outbox (event_id),
    status TEXT NOT NULL CHECK (status IN ('applied', 'failed', 'dead')),
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (subscriber, event_id)
) STRICT, WITHOUT ROWID;

CREATE TABLE subscriber_cursors (
    subscriber TEXT PRIMARY KEY,
    last_seq INTEGER NOT NULL
) STRICT;

CREATE TABLE audit_log (
    seq INTEGER PRIMARY KEY,
    occurred_at TEXT NOT NULL,
    workspace_id TEXT NOT NULL,
    actor TEXT,
    action TEXT NOT NULL,
    target TEXT,
    correlation_id TEXT,
    details TEXT NOT NULL DEFAULT '{}',
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE
) STRICT;

CREATE TABLE audit_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL
) STRICT;

CREATE TRIGGER audit_log_append_only_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;

CREATE TRIGGER audit_log_append_only_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;

-- migrate:down
DROP TRIGGER audit_log_append_only_delete;
DROP TRIGGER audit_log_append_only_update;
DROP TABLE audit_head;
DROP TABLE audit_log;
DROP TABLE subscriber_cursors;
DROP TABLE event_deliveries;
DROP TABLE outbox;
