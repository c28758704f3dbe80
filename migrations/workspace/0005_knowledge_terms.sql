-- migrate:up
-- How many chunks hold each term (FTS5 stems): the document frequencies of BM25, kept by the
-- ingestion pipeline in the same transaction as the chunks. fts5vocab answers the same
-- question but walks each term's whole doclist to do so (~0.4 ms per common term at 100,000
-- chunks), too slow for every query. Filled here from fts5vocab, which counts the same thing.
CREATE TABLE knowledge_terms (
    term TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL,
    chunks INTEGER NOT NULL CHECK (chunks >= 0)
) STRICT, WITHOUT ROWID;

INSERT INTO knowledge_terms (term, workspace_id, chunks)
SELECT term, (SELECT value FROM _workbench_meta WHERE key = 'workspace_id'), doc
FROM knowledge_fts_vocab WHERE doc > 0;

-- Tags are tenant rows too: give them the workspace id (and so the tenant guard triggers).
ALTER TABLE knowledge_document_tags ADD COLUMN workspace_id TEXT NOT NULL DEFAULT '';

UPDATE knowledge_document_tags
SET workspace_id = (SELECT value FROM _workbench_meta WHERE key = 'workspace_id');

-- migrate:down
DROP TRIGGER IF EXISTS tenant_guard_knowledge_document_tags_insert;
DROP TRIGGER IF EXISTS tenant_guard_knowledge_document_tags_update;
ALTER TABLE knowledge_document_tags DROP COLUMN workspace_id;
DROP TABLE knowledge_terms;
