"""SQL for the knowledge base: documents, versions, chunks, vector indexes, dead letters and
feedback. Nothing here checks permissions or rules."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import apsw
import msgspec

from workbench.db.connection import one, rows
from workbench.knowledge.models import DeadLetter, Document, Feedback, RetrieverScore

_json = msgspec.json.Encoder()
_DOCUMENT_COLUMNS = (
    "seq, id, external_id, title, source, mime_type, size_bytes, content_hash, tags, metadata,"
    " version, indexed_version, status, attempts, next_attempt_at, claimed_at, last_error_class,"
    " last_error_message, chunk_count, created_by, created_at, updated_at, indexed_at"
)


def dumps(value: Any) -> str:
    return _json.encode(value).decode()


# -- documents ------------------------------------------------------------------------------


def row_to_document(row: dict[str, Any]) -> Document:
    return Document(
        id=row["id"],
        external_id=row["external_id"],
        title=row["title"],
        source=row["source"],
        mime_type=row["mime_type"],
        size_bytes=row["size_bytes"],
        content_hash=row["content_hash"],
        tags=msgspec.json.decode(row["tags"]),
        metadata=msgspec.json.decode(row["metadata"]),
        version=row["version"],
        indexed_version=row["indexed_version"],
        status=row["status"],
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"],
        last_error_class=row["last_error_class"],
        last_error_message=row["last_error_message"],
        chunk_count=row["chunk_count"],
        created_by=row["created_by"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        indexed_at=row["indexed_at"],
    )


def insert_document(conn: apsw.Connection, workspace_id: str, doc: Document) -> int:
    conn.execute(
        "INSERT INTO knowledge_documents (id, workspace_id, external_id, title, source, mime_type,"
        " size_bytes, content_hash, tags, metadata, version, status, created_by, created_at,"
        " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            doc.id,
            workspace_id,
            doc.external_id,
            doc.title,
            doc.source,
            doc.mime_type,
            doc.size_bytes,
            doc.content_hash,
            dumps(doc.tags),
            dumps(doc.metadata),
            doc.version,
            doc.status,
            doc.created_by,
            doc.created_at,
            doc.updated_at,
        ),
    )
    seq = conn.last_insert_rowid()
    set_tags(conn, seq, doc.tags)
    return seq


def set_tags(conn: apsw.Connection, document_seq: int, tags: Sequence[str]) -> None:
    conn.execute("DELETE FROM knowledge_document_tags WHERE document_seq = ?", (document_seq,))
    conn.executemany(
        "INSERT OR IGNORE INTO knowledge_document_tags (tag, document_seq, workspace_id)"
        " SELECT ?, seq, workspace_id FROM knowledge_documents WHERE seq = ?",
        [(tag, document_seq) for tag in tags],
    )


def document_row(conn: apsw.Connection, document_id: str) -> dict[str, Any] | None:
    return one(
        conn, f"SELECT {_DOCUMENT_COLUMNS} FROM knowledge_documents WHERE id = ?", (document_id,)
    )


def document_by_external_id(conn: apsw.Connection, external_id: str) -> dict[str, Any] | None:
    return one(
        conn,
        f"SELECT {_DOCUMENT_COLUMNS} FROM knowledge_documents WHERE external_id = ?",
        (external_id,),
    )


def document_by_hash(conn: apsw.Connection, content_hash: str) -> dict[str, Any] | None:
    """The oldest document whose latest version has this content and no external id."""
    return one(
        conn,
        f"SELECT {_DOCUMENT_COLUMNS} FROM knowledge_documents"
        " WHERE content_hash = ? AND external_id IS NULL ORDER BY seq LIMIT 1",
        (content_hash,),
    )


def update_document(conn: apsw.Connection, seq: int, **values: Any) -> None:
    if "tags" in values:
        set_tags(conn, seq, values["tags"])
    encoded = {k: dumps(v) if k in ("tags", "metadata") else v for k, v in values.items()}
    assignments = ", ".join(f"{name} = :{name}" for name in encoded)
    conn.execute(
        f"UPDATE knowledge_documents SET {assignments} WHERE seq = :seq", {**encoded, "seq": seq}
    )


def list_documents(
    conn: apsw.Connection, *, status: str | None, tag: str | None, before: int | None, limit: int
) -> list[dict[str, Any]]:
    where: list[str] = []
    params: list[Any] = []
    if status is not None:
        where.append("status = ?")
        params.append(status)
    if tag is not None:
        where.append("seq IN (SELECT document_seq FROM knowledge_document_tags WHERE tag = ?)")
        params.append(tag)
    if before is not None:
        where.append("seq < ?")
        params.append(before)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    return list(
        rows(
            conn,
            f"SELECT {_DOCUMENT_COLUMNS} FROM knowledge_documents{clause} ORDER BY seq DESC LIMIT ?",
            [*params, limit],
        )
    )


def delete_document(conn: apsw.Connection, workspace_id: str, seq: int) -> None:
    adjust_terms(conn, workspace_id, (), delete_chunks(conn, seq))
    conn.execute("DELETE FROM knowledge_documents WHERE seq = ?", (seq,))


def claim(
    conn: apsw.Connection, document_id: str, version: int, now: str, *, due_before: str
) -> dict[str, Any] | None:
    """Take a document for one ingestion attempt: it must be queued, or failed with its retry
    due. Returns the row, or None when someone else has it or there is nothing to do."""
    conn.execute(
        "UPDATE knowledge_documents SET status = 'parsing', attempts = attempts + 1,"
        " claimed_at = ?, next_attempt_at = NULL, updated_at = ?"
        " WHERE id = ? AND version = ? AND (status = 'queued'"
        " OR (status = 'failed' AND next_attempt_at <= ?))",
        (now, now, document_id, version, due_before),
    )
    if conn.changes() == 0:
        return None
    return document_row(conn, document_id)


def due_retries(
    conn: apsw.Connection, now: str, stale_before: str, limit: int = 500
) -> list[tuple[str, int]]:
    """Failed documents whose retry is due, and queued ones whose job was lost (queued long
    ago and never taken)."""
    return [
        (r["id"], r["version"])
        for r in rows(
            conn,
            "SELECT id, version FROM knowledge_documents WHERE status = 'failed'"
            " AND next_attempt_at <= ? UNION SELECT id, version FROM knowledge_documents"
            " WHERE status = 'queued' AND updated_at < ? LIMIT ?",
            (now, stale_before, limit),
        )
    ]


def stuck_documents(conn: apsw.Connection, claimed_before: str, limit: int = 500) -> list[str]:
    """Documents whose worker died mid-attempt: still parsing or embedding long after."""
    return [
        r[0]
        for r in conn.execute(
            "SELECT id FROM knowledge_documents WHERE status IN ('parsing', 'embedding')"
            " AND claimed_at < ? LIMIT ?",
            (claimed_before, limit),
        )
    ]


# -- versions -------------------------------------------------------------------------------


def insert_version(
    conn: apsw.Connection,
    workspace_id: str,
    document_seq: int,
    version: int,
    mime_type: str,
    content_hash: str,
    content: bytes,
    created_at: str,
) -> None:
    conn.execute(
        "INSERT INTO knowledge_versions (document_seq, version, workspace_id, mime_type,"
        " content_hash, size_bytes, content, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            document_seq,
            version,
            workspace_id,
            mime_type,
            content_hash,
            len(content),
            content,
            created_at,
        ),
    )


def version_row(conn: apsw.Connection, document_seq: int, version: int) -> dict[str, Any] | None:
    return one(
        conn,
        "SELECT document_seq, version, mime_type, content_hash, size_bytes, content, text"
        " FROM knowledge_versions WHERE document_seq = ? AND version = ?",
        (document_seq, version),
    )


def set_version_text(conn: apsw.Connection, document_seq: int, version: int, text: str) -> None:
    conn.execute(
        "UPDATE knowledge_versions SET text = ? WHERE document_seq = ? AND version = ?",
        (text, document_seq, version),
    )


def drop_versions_before(conn: apsw.Connection, document_seq: int, version: int) -> None:
    """Older versions go once a newer one is indexed: nothing cites them any more."""
    conn.execute(
        "DELETE FROM knowledge_versions WHERE document_seq = ? AND version < ?",
        (document_seq, version),
    )


# -- chunks ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChunkRow:
    id: str
    ordinal: int
    char_start: int
    char_end: int
    heading: str
    title: str
    text: str
    token_count: int
    terms: bytes
    """msgpack of (title term counts, text term counts), FTS5 stems."""


TermCounts = dict[str, int]
_terms_decoder = msgspec.msgpack.Decoder(tuple[dict[str, int], dict[str, int]])


def encode_terms(title: TermCounts, text: TermCounts) -> bytes:
    return msgspec.msgpack.encode((title, text))


def decode_terms(blob: bytes) -> tuple[TermCounts, TermCounts]:
    return _terms_decoder.decode(blob)


def adjust_terms(
    conn: apsw.Connection, workspace_id: str, added: Iterable[bytes], removed: Iterable[bytes]
) -> None:
    """Move the per-term chunk counts by the chunks added and removed (their terms blobs):
    one statement per distinct term, however many chunks."""
    delta: dict[str, int] = {}
    for blobs, sign in ((added, 1), (removed, -1)):
        for blob in blobs:
            title, text = decode_terms(blob)
            for term in title.keys() | text.keys():
                delta[term] = delta.get(term, 0) + sign
    conn.executemany(
        "INSERT INTO knowledge_terms (term, workspace_id, chunks) VALUES (?, ?, ?)"
        " ON CONFLICT (term) DO UPDATE SET chunks = chunks + excluded.chunks",
        [(term, workspace_id, n) for term, n in delta.items() if n > 0],
    )
    conn.executemany(
        "UPDATE knowledge_terms SET chunks = chunks + ? WHERE term = ?",
        [(n, term) for term, n in delta.items() if n < 0],
    )
    if any(n < 0 for n in delta.values()):
        conn.execute("DELETE FROM knowledge_terms WHERE chunks = 0")


def delete_chunks(conn: apsw.Connection, document_seq: int) -> list[bytes]:
    """Delete a document's chunks; returns their terms blobs for ``adjust_terms``."""
    blobs = [
        r[0]
        for r in conn.execute(
            "SELECT terms FROM knowledge_chunks WHERE document_seq = ?", (document_seq,)
        )
    ]
    if blobs:
        conn.execute("DELETE FROM knowledge_chunks WHERE document_seq = ?", (document_seq,))
    return blobs


def insert_chunks(
    conn: apsw.Connection,
    workspace_id: str,
    document_seq: int,
    version: int,
    chunks: Sequence[ChunkRow],
) -> list[int]:
    seqs = []
    for c in chunks:
        conn.execute(
            "INSERT INTO knowledge_chunks (id, workspace_id, document_seq, version, ordinal,"
            " char_start, char_end, heading, title, text, token_count, terms)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                c.id,
                workspace_id,
                document_seq,
                version,
                c.ordinal,
                c.char_start,
                c.char_end,
                c.heading,
                c.title,
                c.text,
                c.token_count,
                c.terms,
            ),
        )
        seqs.append(conn.last_insert_rowid())
    return seqs


_HIT_COLUMNS = (
    "c.seq, c.id, c.document_seq, c.version, c.ordinal, c.char_start, c.char_end, c.heading,"
    " c.title, c.text, c.token_count, c.terms, d.id AS document_id, d.title AS document_title, d.tags"
)


def chunks_by_seq(conn: apsw.Connection, seqs: Iterable[int]) -> dict[int, dict[str, Any]]:
    wanted = list(seqs)
    if not wanted:
        return {}
    return {
        r["seq"]: r
        for r in rows(
            conn,
            f"SELECT {_HIT_COLUMNS} FROM knowledge_chunks c JOIN knowledge_documents d"
            " ON d.seq = c.document_seq WHERE c.seq IN (SELECT value FROM json_each(?))",
            (dumps(wanted),),
        )
    }


def chunks_of_documents(
    conn: apsw.Connection, document_seqs: Sequence[int], limit: int
) -> list[int]:
    return [
        r[0]
        for r in conn.execute(
            "SELECT seq FROM knowledge_chunks WHERE document_seq IN (SELECT value FROM json_each(?))"
            " LIMIT ?",
            (dumps(list(document_seqs)), limit),
        )
    ]


def pool_features(conn: apsw.Connection, seqs: Iterable[int]) -> dict[int, tuple[bytes, int]]:
    """(terms blob, token count) of the chunks that still exist among ``seqs``."""
    wanted = list(seqs)
    if not wanted:
        return {}
    return {
        int(r[0]): (r[1], int(r[2]))
        for r in conn.execute(
            "SELECT seq, terms, token_count FROM knowledge_chunks"
            " WHERE seq IN (SELECT value FROM json_each(?))",
            (dumps(wanted),),
        )
    }


def document_chunks(conn: apsw.Connection, document_seq: int) -> list[dict[str, Any]]:
    return list(
        rows(
            conn,
            "SELECT c.seq, c.id, c.version, c.ordinal, c.char_start, c.char_end, c.heading, c.text,"
            " v.embedder, v.model, v.embedder_version FROM knowledge_chunks c"
            " LEFT JOIN knowledge_vectors v ON v.chunk_seq = c.seq AND v.index_seq ="
            " (SELECT seq FROM knowledge_indexes WHERE status = 'active')"
            " WHERE c.document_seq = ? ORDER BY c.ordinal",
            (document_seq,),
        )
    )


def chunk_by_id(conn: apsw.Connection, chunk_id: str) -> dict[str, Any] | None:
    return one(
        conn,
        "SELECT c.seq, c.id, d.id AS document_id FROM knowledge_chunks c"
        " JOIN knowledge_documents d ON d.seq = c.document_seq WHERE c.id = ?",
        (chunk_id,),
    )


def corpus_state(conn: apsw.Connection) -> tuple[int, int, int]:
    """(chunks, tokens, generation)."""
    row = conn.execute(
        "SELECT chunks, tokens, generation FROM knowledge_state WHERE id = 1"
    ).fetchone()
    return (0, 0, 0) if row is None else (int(row[0]), int(row[1]), int(row[2]))


def document_frequencies(conn: apsw.Connection, terms: Sequence[str]) -> dict[str, int]:
    if not terms:
        return {}
    return {
        term: int(count)
        for term, count in conn.execute(
            "SELECT term, chunks FROM knowledge_terms WHERE term IN (SELECT value FROM json_each(?))",
            (dumps(list(terms)),),
        )
    }


def documents_matching(
    conn: apsw.Connection, *, tags: Sequence[str], document_ids: Sequence[str]
) -> list[int]:
    """Seqs of documents carrying every tag in ``tags`` and, if given, among ``document_ids``."""
    where: list[str] = []
    params: list[Any] = []
    for tag in dict.fromkeys(tags):
        where.append("seq IN (SELECT document_seq FROM knowledge_document_tags WHERE tag = ?)")
        params.append(tag)
    if document_ids:
        where.append("id IN (SELECT value FROM json_each(?))")
        params.append(dumps(list(document_ids)))
    clause = " AND ".join(where) or "1"
    return [
        r[0] for r in conn.execute(f"SELECT seq FROM knowledge_documents WHERE {clause}", params)
    ]


# -- dead letters and feedback --------------------------------------------------------------


def insert_dead_letter(conn: apsw.Connection, workspace_id: str, values: dict[str, Any]) -> None:
    conn.execute(
        "INSERT INTO knowledge_dead_letters (workspace_id, document_seq, version, attempts,"
        " error_class, error_message, failed_at) VALUES (:workspace_id, :document_seq, :version,"
        " :attempts, :error_class, :error_message, :failed_at)",
        {**values, "workspace_id": workspace_id},
    )


def dead_letters(conn: apsw.Connection, *, include_retried: bool, limit: int) -> list[DeadLetter]:
    clause = "" if include_retried else " WHERE l.retried_at IS NULL"
    return [
        DeadLetter(**r)
        for r in rows(
            conn,
            "SELECT l.seq AS id, d.id AS document_id, d.title, l.version, l.attempts, l.error_class,"
            " l.error_message, l.failed_at, l.retried_at FROM knowledge_dead_letters l"
            f" JOIN knowledge_documents d ON d.seq = l.document_seq{clause} ORDER BY l.seq DESC LIMIT ?",
            (limit,),
        )
    ]


def resolve_dead_letters(
    conn: apsw.Connection, document_seq: int, now: str, actor: str | None
) -> None:
    conn.execute(
        "UPDATE knowledge_dead_letters SET retried_at = ?, retried_by = ?"
        " WHERE document_seq = ? AND retried_at IS NULL",
        (now, actor, document_seq),
    )


def insert_feedback(conn: apsw.Connection, workspace_id: str, fb: Feedback) -> None:
    conn.execute(
        "INSERT INTO knowledge_feedback (id, workspace_id, query, mode, chunk_id, document_id,"
        " helpful, rank, scores, comment, created_by, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            fb.id,
            workspace_id,
            fb.query,
            fb.mode,
            fb.chunk_id,
            fb.document_id,
            int(fb.helpful),
            fb.rank,
            dumps(fb.scores),
            fb.comment,
            fb.created_by,
            fb.created_at,
        ),
    )


def list_feedback(conn: apsw.Connection, *, document_id: str | None, limit: int) -> list[Feedback]:
    clause, params = ("WHERE document_id = ? ", [document_id]) if document_id else ("", [])
    out = []
    for r in rows(
        conn,
        f"SELECT * FROM knowledge_feedback {clause}ORDER BY seq DESC LIMIT ?",
        [*params, limit],
    ):
        out.append(
            Feedback(
                id=r["id"],
                query=r["query"],
                chunk_id=r["chunk_id"],
                document_id=r["document_id"],
                helpful=bool(r["helpful"]),
                mode=r["mode"],
                rank=r["rank"],
                scores=msgspec.json.decode(r["scores"], type=dict[str, RetrieverScore]),
                comment=r["comment"],
                created_by=r["created_by"],
                created_at=r["created_at"],
            )
        )
    return out
