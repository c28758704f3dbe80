-- migrate:up
-- Work items. `seq` is the internal creation order (and the FTS rowid); `id` is public.
-- Every list query filters on a prefix of one index and walks it in the requested order, so
-- a page costs O(page size), whatever the table size (see tests/test_items_query_plans.py).
CREATE TABLE items (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    workspace_id TEXT NOT NULL,
    title TEXT NOT NULL CHECK (length(title) BETWEEN 1 AND 300),
    body TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL CHECK (status IN ('open', 'in_progress', 'done', 'archived')),
    priority INTEGER NOT NULL DEFAULT 0 CHECK (priority BETWEEN 0 AND 4),
    assignee TEXT,
    labels TEXT NOT NULL DEFAULT '[]',
    due_at TEXT,
    fields TEXT NOT NULL DEFAULT '{}',
    created_by TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    version INTEGER NOT NULL DEFAULT 1,
    archived INTEGER GENERATED ALWAYS AS (status = 'archived') VIRTUAL,
    due_key TEXT GENERATED ALWAYS AS (coalesce(due_at, '~')) VIRTUAL
) STRICT;

CREATE INDEX items_live_created ON items (archived);
CREATE INDEX items_live_updated ON items (archived, updated_at);
CREATE INDEX items_live_due ON items (archived, due_key);
CREATE INDEX items_live_priority ON items (archived, priority);
CREATE INDEX items_all_updated ON items (updated_at);
CREATE INDEX items_all_due ON items (due_key);
CREATE INDEX items_all_priority ON items (priority);
CREATE INDEX items_status_created ON items (status);
CREATE INDEX items_status_updated ON items (status, updated_at);
CREATE INDEX items_status_due ON items (status, due_key);
CREATE INDEX items_status_priority ON items (status, priority);
CREATE INDEX items_assignee_created ON items (assignee, archived);
CREATE INDEX items_assignee_updated ON items (assignee, archived, updated_at);
CREATE INDEX items_assignee_due ON items (assignee, archived, due_key);
CREATE INDEX items_assignee_priority ON items (assignee, archived, priority);
CREATE INDEX items_priority_created ON items (priority, archived);
CREATE INDEX items_priority_updated ON items (priority, archived, updated_at);
CREATE INDEX items_priority_due ON items (priority, archived, due_key);

CREATE TABLE item_labels (
    label TEXT NOT NULL,
    item_seq INTEGER NOT NULL REFERENCES items (seq) ON DELETE CASCADE,
    PRIMARY KEY (label, item_seq)
) STRICT, WITHOUT ROWID;

CREATE INDEX item_labels_by_item ON item_labels (item_seq);

CREATE VIRTUAL TABLE items_fts USING fts5 (
    title, body, content = 'items', content_rowid = 'seq', tokenize = 'porter unicode61'
);

CREATE TRIGGER items_fts_insert AFTER INSERT ON items BEGIN
    INSERT INTO items_fts (rowid, title, body) VALUES (new.seq, new.title, new.body);
END;

CREATE TRIGGER items_fts_delete AFTER DELETE ON items BEGIN
    INSERT INTO items_fts (items_fts, rowid, title, body)
    VALUES ('delete', old.seq, old.title, old.body);
END;

CREATE TRIGGER items_fts_update AFTER UPDATE OF title, body ON items BEGIN
    INSERT INTO items_fts (items_fts, rowid, title, body)
    VALUES ('delete', old.seq, old.title, old.body);
    INSERT INTO items_fts (rowid, title, body) VALUES (new.seq, new.title, new.body);
END;

CREATE TABLE item_comments (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    item_id TEXT NOT NULL REFERENCES items (id) ON DELETE CASCADE,
    workspace_id TEXT NOT NULL,
    author TEXT,
    body TEXT NOT NULL CHECK (length(body) BETWEEN 1 AND 20000),
    created_at TEXT NOT NULL
) STRICT;

CREATE INDEX item_comments_by_item ON item_comments (item_id, seq);

CREATE TABLE item_activity (
    id INTEGER PRIMARY KEY,
    item_id TEXT NOT NULL REFERENCES items (id) ON DELETE CASCADE,
    workspace_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    actor TEXT,
    correlation_id TEXT,
    event_id TEXT NOT NULL,
    data TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL
) STRICT;

CREATE INDEX item_activity_by_item ON item_activity (item_id, id);

CREATE TABLE item_field_defs (
    name TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL,
    type TEXT NOT NULL CHECK (type IN ('text', 'number', 'boolean', 'date', 'select')),
    options TEXT NOT NULL DEFAULT '[]',
    required INTEGER NOT NULL DEFAULT 0,
    position INTEGER NOT NULL
) STRICT;

CREATE TABLE saved_views (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL,
    name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    owner_id TEXT NOT NULL,
    shared INTEGER NOT NULL DEFAULT 0,
    query TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;

CREATE INDEX saved_views_by_owner ON saved_views (owner_id, name);
CREATE INDEX saved_views_shared ON saved_views (shared, name);

CREATE TABLE idempotency_keys (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status INTEGER NOT NULL,
    response TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (scope, key)
) STRICT, WITHOUT ROWID;

CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);

-- migrate:down
DROP INDEX idempotency_keys_by_age;
DROP TABLE idempotency_keys;
DROP INDEX saved_views_shared;
DROP INDEX saved_views_by_owner;
DROP TABLE saved_views;
DROP TABLE item_field_defs;
DROP INDEX item_activity_by_item;
DROP TABLE item_activity;
DROP INDEX item_comments_by_item;
DROP TABLE item_comments;
DROP TRIGGER items_fts_update;
DROP TRIGGER items_fts_delete;
DROP TRIGGER items_fts_insert;
DROP TABLE items_fts;
DROP INDEX item_labels_by_item;
DROP TABLE item_labels;
DROP TABLE items;
