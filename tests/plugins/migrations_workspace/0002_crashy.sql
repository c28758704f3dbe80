-- migrate:up
CREATE TABLE sample_crashy (
    id INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL,
    workspace_id TEXT NOT NULL
) STRICT;

-- migrate:down
DROP TABLE sample_crashy;
