-- migrate:up
CREATE TABLE sample_notes (
    id INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    workspace_id TEXT NOT NULL,
    text TEXT NOT NULL
) STRICT;

-- migrate:down
DROP TABLE sample_notes;
