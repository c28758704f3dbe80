-- migrate:up
-- Assistant runs and everything they did, plus prompt versions, configuration history and
-- evals. Stored text is redacted before it is written.
CREATE TABLE agent_runs (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    workspace_id TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN
        ('queued', 'running', 'awaiting_approval', 'succeeded', 'failed', 'cancelled')),
    question TEXT NOT NULL,
    started_by TEXT,
    role TEXT NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    prompt_name TEXT NOT NULL,
    prompt_version INTEGER NOT NULL,
    settings TEXT NOT NULL DEFAULT '{}',
    transcript TEXT NOT NULL DEFAULT '[]',
    passages TEXT NOT NULL DEFAULT '[]',
    answer TEXT,
    output TEXT,
    citations TEXT NOT NULL DEFAULT '[]',
    flags TEXT NOT NULL DEFAULT '[]',
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    latency_ms REAL,
    error_class TEXT,
    error_message TEXT,
    correlation_id TEXT,
    created_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT
) STRICT;

CREATE INDEX agent_runs_by_status ON agent_runs (status);

CREATE TABLE run_steps (
    id INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES agent_runs (id) ON DELETE CASCADE,
    workspace_id TEXT NOT NULL,
    ordinal INTEGER NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN
        ('retrieve', 'model_call', 'tool_call', 'approval', 'answer', 'error')),
    detail TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL,
    duration_ms REAL NOT NULL DEFAULT 0,
    UNIQUE (run_id, ordinal)
) STRICT;

CREATE TABLE tool_calls (
    id TEXT PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES agent_runs (id) ON DELETE CASCADE,
    workspace_id TEXT NOT NULL,
    step INTEGER NOT NULL,
    tool TEXT NOT NULL,
    arguments TEXT NOT NULL DEFAULT '{}',
    result TEXT,
    status TEXT NOT NULL CHECK (status IN
        ('succeeded', 'failed', 'denied', 'awaiting_approval', 'rejected')),
    decision TEXT NOT NULL CHECK (decision IN ('allow', 'deny', 'needs_approval')),
    reason TEXT NOT NULL DEFAULT '',
    duration_ms REAL NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
) STRICT;

CREATE INDEX tool_calls_by_run ON tool_calls (run_id, step);

CREATE TABLE prompt_versions (
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    workspace_id TEXT NOT NULL,
    template TEXT NOT NULL,
    created_by TEXT,
    created_at TEXT NOT NULL,
    PRIMARY KEY (name, version)
) STRICT;

CREATE TABLE assistant_config (
    id INTEGER PRIMARY KEY,
    workspace_id TEXT NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    prompt_name TEXT NOT NULL,
    prompt_version INTEGER NOT NULL,
    approval_tools TEXT NOT NULL DEFAULT '[]',
    provider_settings TEXT NOT NULL DEFAULT '{}',
    created_by TEXT,
    created_at TEXT NOT NULL
) STRICT;

CREATE TABLE eval_sets (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL,
    name TEXT NOT NULL,
    cases TEXT NOT NULL,
    created_at TEXT NOT NULL
) STRICT;

CREATE TABLE eval_runs (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL,
    set_id TEXT NOT NULL REFERENCES eval_sets (id) ON DELETE CASCADE,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    prompt_name TEXT NOT NULL,
    prompt_version INTEGER NOT NULL,
    summary TEXT NOT NULL DEFAULT '{}',
    results TEXT NOT NULL DEFAULT '[]',
    created_at TEXT NOT NULL
) STRICT;

-- migrate:down
DROP TABLE eval_runs;
DROP TABLE eval_sets;
DROP TABLE assistant_config;
DROP TABLE prompt_versions;
DROP INDEX tool_calls_by_run;
DROP TABLE tool_calls;
DROP TABLE run_steps;
DROP INDEX agent_runs_by_status;
DROP TABLE agent_runs;
