-- migrate:up
-- The knowledge base. `knowledge_chunks` is the guarded source of truth for what is searchable:
-- `knowledge_fts` (FTS5, a virtual table that cannot carry the tenant guard triggers) is an
-- external-content index over it, kept in step by the triggers below, and every vector row
-- references a chunk. A document version's chunks, FTS rows and vectors are written in one
-- transaction, so a search sees the old version or the new one, never half of either.
CREATE TABLE knowledge_documents (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    workspace_id TEXT NOT NULL,
    external_id TEXT UNIQUE,
    title TEXT NOT NULL,
    source TEXT NOT NULL DEFAULT '',
    mime_type TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    content_hash TEXT NOT NULL,
    tags TEXT NOT NULL DEFAULT '[]',
    metadata TEXT NOT NULL DEFAULT '{}',
    version INTEGER NOT NULL DEFAULT 1,
    indexed_version INTEGER,
    status TEXT NOT NULL
        CHECK (status IN ('queued', 'parsing', 'embedding', 'indexed', 'failed', 'dead')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT,
    claimed_at TEXT,
    last_error_class TEXT,
    last_error_message TEXT,
    chunk_count INTEGER NOT NULL DEFAULT 0,
    created_by TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    indexed_at TEXT
) STRICT;

CREATE INDEX knowledge_documents_by_hash ON knowledge_documents (content_hash);
CREATE INDEX knowledge_documents_by_status ON knowledge_documents (status, next_attempt_at);

CREATE TABLE knowledge_document_tags (
    tag TEXT NOT NULL,
    document_seq INTEGER NOT NULL REFERENCES knowledge_documents (seq) ON DELETE CASCADE,
    PRIMARY KEY (tag, document_seq)
) STRICT, WITHOUT ROWID;

CREATE INDEX knowledge_document_tags_by_document ON knowledge_document_tags (document_seq);

-- The bytes of each version as uploaded, and the normalised text once parsed.
CREATE TABLE knowledge_versions (
    seq INTEGER PRIMARY KEY,
    document_seq INTEGER NOT NULL REFERENCES knowledge_documents (seq) ON DELETE CASCADE,
    version INTEGER NOT NULL,
    workspace_id TEXT NOT NULL,
    mime_type TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    content BLOB NOT NULL,
    text TEXT,
    created_at TEXT NOT NULL,
    UNIQUE (document_seq, version)
) STRICT;

CREATE TABLE knowledge_chunks (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    workspace_id TEXT NOT NULL,
    document_seq INTEGER NOT NULL REFERENCES knowledge_documents (seq) ON DELETE CASCADE,
    version INTEGER NOT NULL,
    ordinal INTEGER NOT NULL,
    char_start INTEGER NOT NULL,
    char_end INTEGER NOT NULL,
    heading TEXT NOT NULL DEFAULT '',
    title TEXT NOT NULL,
    text TEXT NOT NULL,
    token_count INTEGER NOT NULL,
    terms BLOB NOT NULL,
    CHECK (char_end > char_start),
    UNIQUE (document_seq, ordinal)
) STRICT;

-- `title` holds the document title and the chunk's section path: BM25 weighs it above `text`.
-- `terms` holds the FTS5 tokens of both columns with their counts (msgpack), so BM25 can score
-- a chunk FTS5 did not return without tokenizing it again at query time.
CREATE VIRTUAL TABLE knowledge_fts USING fts5 (
    title, text, content = 'knowledge_chunks', content_rowid = 'seq',
    tokenize = 'porter unicode61'
);

CREATE VIRTUAL TABLE knowledge_fts_vocab USING fts5vocab (knowledge_fts, 'row');

-- Corpus statistics for BM25 (rows and tokens, as FTS5 counts them) and a generation that
-- moves with every chunk change, so caches know when they are stale.
CREATE TABLE knowledge_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    workspace_id TEXT NOT NULL,
    chunks INTEGER NOT NULL DEFAULT 0,
    tokens INTEGER NOT NULL DEFAULT 0,
    generation INTEGER NOT NULL DEFAULT 0
) STRICT;

INSERT INTO knowledge_state (id, workspace_id)
SELECT 1, value FROM _workbench_meta WHERE key = 'workspace_id';

CREATE TRIGGER knowledge_chunks_insert AFTER INSERT ON knowledge_chunks BEGIN
    INSERT INTO knowledge_fts (rowid, title, text) VALUES (new.seq, new.title, new.text);
    UPDATE knowledge_state SET chunks = chunks + 1, tokens = tokens + new.token_count,
        generation = generation + 1 WHERE id = 1;
END;

CREATE TRIGGER knowledge_chunks_delete AFTER DELETE ON knowledge_chunks BEGIN
    INSERT INTO knowledge_fts (knowledge_fts, rowid, title, text)
    VALUES ('delete', old.seq, old.title, old.text);
    UPDATE knowledge_state SET chunks = chunks - 1, tokens = tokens - old.token_count,
        generation = generation + 1 WHERE id = 1;
END;

CREATE TRIGGER knowledge_chunks_update BEFORE UPDATE ON knowledge_chunks BEGIN
    SELECT RAISE(ABORT, 'knowledge_chunks are replaced, never updated');
END;

-- One vector index per embedder a workspace has used: one active, at most one building.
CREATE TABLE knowledge_indexes (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    workspace_id TEXT NOT NULL,
    embedder TEXT NOT NULL,
    model TEXT NOT NULL,
    embedder_version TEXT NOT NULL,
    dim INTEGER NOT NULL CHECK (dim > 0),
    status TEXT NOT NULL CHECK (status IN ('building', 'active', 'retired', 'failed')),
    generation INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    created_at TEXT NOT NULL,
    activated_at TEXT,
    retired_at TEXT
) STRICT;

CREATE UNIQUE INDEX knowledge_indexes_one_active ON knowledge_indexes (status)
    WHERE status = 'active';
CREATE UNIQUE INDEX knowledge_indexes_one_building ON knowledge_indexes (status)
    WHERE status = 'building';

-- A chunk's vector in one index, as float32 (sqlite-vec's format), with what produced it.
CREATE TABLE knowledge_vectors (
    seq INTEGER PRIMARY KEY,
    index_seq INTEGER NOT NULL REFERENCES knowledge_indexes (seq) ON DELETE CASCADE,
    chunk_seq INTEGER NOT NULL REFERENCES knowledge_chunks (seq) ON DELETE CASCADE,
    document_seq INTEGER NOT NULL,
    workspace_id TEXT NOT NULL,
    embedder TEXT NOT NULL,
    model TEXT NOT NULL,
    embedder_version TEXT NOT NULL,
    embedding BLOB NOT NULL,
    UNIQUE (index_seq, chunk_seq)
) STRICT;

CREATE INDEX knowledge_vectors_by_chunk ON knowledge_vectors (chunk_seq);

CREATE TRIGGER knowledge_vectors_insert AFTER INSERT ON knowledge_vectors BEGIN
    UPDATE knowledge_indexes SET generation = generation + 1 WHERE seq = new.index_seq;
END;

CREATE TRIGGER knowledge_vectors_delete AFTER DELETE ON knowledge_vectors BEGIN
    UPDATE knowledge_indexes SET generation = generation + 1 WHERE seq = old.index_seq;
END;

CREATE TABLE knowledge_dead_letters (
    seq INTEGER PRIMARY KEY,
    workspace_id TEXT NOT NULL,
    document_seq INTEGER NOT NULL REFERENCES knowledge_documents (seq) ON DELETE CASCADE,
    version INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    error_class TEXT NOT NULL,
    error_message TEXT NOT NULL,
    failed_at TEXT NOT NULL,
    retried_at TEXT,
    retried_by TEXT
) STRICT;

CREATE INDEX knowledge_dead_letters_open ON knowledge_dead_letters (retried_at, seq);

CREATE TABLE knowledge_feedback (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    workspace_id TEXT NOT NULL,
    query TEXT NOT NULL,
    mode TEXT,
    chunk_id TEXT NOT NULL,
    document_id TEXT NOT NULL,
    helpful INTEGER NOT NULL CHECK (helpful IN (0, 1)),
    rank INTEGER,
    scores TEXT NOT NULL DEFAULT '{}',
    comment TEXT,
    created_by TEXT,
    created_at TEXT NOT NULL
) STRICT;

CREATE INDEX knowledge_feedback_by_document ON knowledge_feedback (document_id, seq);

-- migrate:down
DROP INDEX knowledge_feedback_by_document;
DROP TABLE knowledge_feedback;
DROP INDEX knowledge_dead_letters_open;
DROP TABLE knowledge_dead_letters;
DROP TRIGGER knowledge_vectors_delete;
DROP TRIGGER knowledge_vectors_insert;
DROP INDEX knowledge_vectors_by_chunk;
DROP TABLE knowledge_vectors;
DROP INDEX knowledge_indexes_one_building;
DROP INDEX knowledge_indexes_one_active;
DROP TABLE knowledge_indexes;
DROP TRIGGER knowledge_chunks_update;
DROP TRIGGER knowledge_chunks_delete;
DROP TRIGGER knowledge_chunks_insert;
DROP TABLE knowledge_state;
DROP TABLE knowledge_fts_vocab;
DROP TABLE knowledge_fts;
DROP TABLE knowledge_chunks;
DROP TABLE knowledge_versions;
DROP INDEX knowledge_document_tags_by_document;
DROP TABLE knowledge_document_tags;
DROP INDEX knowledge_documents_by_status;
DROP INDEX knowledge_documents_by_hash;
DROP TABLE knowledge_documents;
