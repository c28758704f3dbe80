"""SQL for the vector indexes: one row per index (embedder, status, generation) and one row
per chunk per index in ``knowledge_vectors``. Nothing here checks permissions or rules."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import apsw

from workbench.db.connection import one, rows, scalar
from workbench.knowledge.models import IndexInfo
from workbench.knowledge.store import dumps


def index_row(
    conn: apsw.Connection, *, status: str | None = None, seq: int | None = None
) -> dict[str, Any] | None:
    if seq is not None:
        return one(conn, "SELECT * FROM knowledge_indexes WHERE seq = ?", (seq,))
    return one(
        conn,
        "SELECT * FROM knowledge_indexes WHERE status = ? ORDER BY seq DESC LIMIT 1",
        (status,),
    )


def insert_index(conn: apsw.Connection, workspace_id: str, values: dict[str, Any]) -> int:
    conn.execute(
        "INSERT INTO knowledge_indexes (id, workspace_id, embedder, model, embedder_version, dim,"
        " status, created_at, activated_at) VALUES (:id, :workspace_id, :embedder, :model,"
        " :embedder_version, :dim, :status, :created_at, :activated_at)",
        {**values, "workspace_id": workspace_id},
    )
    return conn.last_insert_rowid()


def set_index_status(
    conn: apsw.Connection, seq: int, status: str, now: str, error: str | None = None
) -> None:
    column = {"active": "activated_at", "retired": "retired_at"}.get(status)
    extra = f", {column} = :now" if column else ""
    conn.execute(
        f"UPDATE knowledge_indexes SET status = :status, error = :error{extra} WHERE seq = :seq",
        {"status": status, "error": error, "now": now, "seq": seq},
    )


def list_indexes(conn: apsw.Connection) -> list[IndexInfo]:
    out = []
    total = scalar(conn, "SELECT count(*) FROM knowledge_chunks")
    for r in rows(conn, "SELECT * FROM knowledge_indexes ORDER BY seq DESC"):
        vectors = scalar(
            conn, "SELECT count(*) FROM knowledge_vectors WHERE index_seq = ?", (r["seq"],)
        )
        out.append(
            IndexInfo(
                id=r["id"],
                embedder=r["embedder"],
                model=r["model"],
                embedder_version=r["embedder_version"],
                dim=r["dim"],
                status=r["status"],
                vectors=vectors,
                chunks=total,
                error=r["error"],
                created_at=r["created_at"],
                activated_at=r["activated_at"],
            )
        )
    return out


def drop_index_vectors(conn: apsw.Connection, index_seq: int) -> None:
    conn.execute("DELETE FROM knowledge_vectors WHERE index_seq = ?", (index_seq,))


def insert_vectors(
    conn: apsw.Connection,
    workspace_id: str,
    index: dict[str, Any],
    items: Iterable[tuple[int, int, bytes]],
) -> None:
    """``items``: (chunk seq, document seq, float32 bytes)."""
    conn.executemany(
        "INSERT OR REPLACE INTO knowledge_vectors (index_seq, chunk_seq, document_seq, workspace_id,"
        " embedder, model, embedder_version, embedding) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                index["seq"],
                chunk_seq,
                doc_seq,
                workspace_id,
                index["embedder"],
                index["model"],
                index["embedder_version"],
                blob,
            )
            for chunk_seq, doc_seq, blob in items
        ],
    )


def index_generation(conn: apsw.Connection, index_seq: int) -> int:
    return int(
        scalar(conn, "SELECT generation FROM knowledge_indexes WHERE seq = ?", (index_seq,)) or 0
    )


def all_vectors(conn: apsw.Connection, index_seq: int) -> Iterable[tuple[int, int, bytes]]:
    """(chunk seq, document seq, embedding) of every vector of an index, in chunk order."""
    return conn.execute(
        "SELECT chunk_seq, document_seq, embedding FROM knowledge_vectors WHERE index_seq = ?"
        " ORDER BY chunk_seq",
        (index_seq,),
    )


def missing_vectors(conn: apsw.Connection, index_seq: int, limit: int) -> list[dict[str, Any]]:
    """Chunks that have no vector in the index yet (what a rebuild still has to embed)."""
    return list(
        rows(
            conn,
            "SELECT c.seq, c.document_seq, c.title, c.heading, c.text FROM knowledge_chunks c"
            " WHERE NOT EXISTS (SELECT 1 FROM knowledge_vectors v WHERE v.index_seq = ?"
            " AND v.chunk_seq = c.seq) ORDER BY c.seq LIMIT ?",
            (index_seq, limit),
        )
    )


def exact_vector_search(
    conn: apsw.Connection,
    index_seq: int,
    query: bytes,
    limit: int,
    document_seqs: Sequence[int] | None,
) -> list[tuple[int, int, float]]:
    """Brute force in SQL with sqlite-vec's ``vec_distance_cosine``: the path used when the
    in-memory cache is off or over budget. Returns (chunk seq, document seq, cosine)."""
    params: list[Any] = [query, index_seq]
    clause = ""
    if document_seqs is not None:
        clause = " AND document_seq IN (SELECT value FROM json_each(?))"
        params.append(dumps(list(document_seqs)))
    params.append(limit)
    return [
        (int(r[0]), int(r[1]), 1.0 - float(r[2]))
        for r in conn.execute(
            "SELECT chunk_seq, document_seq, vec_distance_cosine(embedding, ?) AS d"
            f" FROM knowledge_vectors WHERE index_seq = ?{clause} ORDER BY d LIMIT ?",
            params,
        )
    ]
