"""The ingestion pipeline (parse -> chunk -> embed -> index), its retries, and index rebuilds.

A document version moves ``queued -> parsing -> embedding -> indexed``. An attempt is claimed
with a conditional update, so two workers never ingest the same version. Parsing and embedding
happen outside any transaction; everything a search can see — the chunks (and their FTS rows,
kept by triggers) and the vectors in every live index — is written in one transaction per
document version, which also drops the previous version's chunks. A failure before or during
that transaction leaves the previous version searchable, or nothing; never half a version.

A failed attempt is retried after ``retry_delay(attempt)``: exponential backoff with jitter.
The delay is computed with the injected clock and stored as ``next_attempt_at``; a huey task
is scheduled for then, and the periodic ``knowledge.retry_due`` sweep (same clock) catches any
the queue lost, so tests drive retries by moving a frozen clock. After ``MAX_ATTEMPTS`` — or at
once for failures retrying cannot fix (a corrupt PDF) — the document is ``dead`` and listed in
the dead letters, with its error class and message, until someone retries it by hand.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import apsw
import numpy as np

from workbench.clock import isoformat
from workbench.events.outbox import emit
from workbench.ids import new_id
from workbench.knowledge import chunking, index_store, keyword, parsing, store
from workbench.knowledge.embedders import DEFAULT_EMBEDDER, Embedder, checked_embed, get_embedder
from workbench.knowledge.errors import PERMANENT_FAILURES, StaleVersion
from workbench.knowledge.models import DocumentFailed, DocumentIndexed, EmbedderSwitched
from workbench.logs import correlation_id
from workbench.runtime import Runtime

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 4
RETRY_BASE_SECONDS = 30.0
RETRY_CAP_SECONDS = 3600.0
STUCK_AFTER = timedelta(minutes=15)
"""An attempt still parsing or embedding this long after its claim lost its worker."""
QUEUED_STALE_AFTER = timedelta(minutes=10)
REBUILD_BATCH = 512
_rng = random.Random()


def retry_delay(
    attempt: int,
    rng: random.Random = _rng,
    *,
    base: float = RETRY_BASE_SECONDS,
    cap: float = RETRY_CAP_SECONDS,
) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based): exponential backoff
    with "equal jitter" — half of ``min(cap, base * 2**(attempt-1))`` fixed, half random — so
    retries spread out instead of stampeding, yet never come sooner than half the backoff."""
    if attempt < 1:
        raise ValueError("attempts are counted from 1")
    ceiling = min(cap, base * 2 ** (attempt - 1))
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


def embedding_text(title: str, text: str) -> str:
    """What a chunk's vector is computed from: its titles (document, section) and its text.
    The title is left out when the text already starts with it."""
    if not title or text[: len(title)].lower() == title.lower():
        return text
    return f"{title}\n{text}"


def chunk_title(document_title: str, heading: str) -> str:
    return f"{document_title} — {heading}" if heading else document_title


@dataclass
class Prepared:
    """A claimed document version, parsed and chunked, waiting for vectors."""

    row: dict[str, Any]
    text: str
    chunks: list[store.ChunkRow]
    vectors: dict[int, np.ndarray] = field(default_factory=dict)
    """Index seq -> one row per chunk."""


@dataclass
class RunReport:
    indexed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    chunks: int = 0


class Ingestion:
    """Runs the pipeline for documents of one workspace."""

    def __init__(self, runtime: Runtime, workspace_id: str, *, rng: random.Random = _rng) -> None:
        self.runtime = runtime
        self.workspace_id = workspace_id
        self.db = runtime.storage.workspace(workspace_id)
        self.rng = rng

    def _now(self) -> str:
        return isoformat(self.runtime.clock.now())

    # -- one batch ------------------------------------------------------------------------

    def run(self, items: Sequence[tuple[str, int]]) -> RunReport:
        """Ingest these (document id, version) pairs. Each is claimed first; what cannot be
        claimed (already done, taken by another worker, retry not due) is skipped."""
        report = RunReport()
        claimed = self._claim(items, report)
        prepared: list[Prepared] = []
        for row in claimed:
            try:
                prepared.append(self._prepare(row))
            except Exception as exc:
                self.fail(row["id"], row["version"], exc)
                report.failed.append(row["id"])
        if not prepared:
            return report
        self._set_status([p.row for p in prepared], "embedding")
        try:
            indexes = self._target_indexes()
            for index in indexes:
                self._embed(prepared, index)
        except Exception as exc:
            for p in prepared:
                self.fail(p.row["id"], p.row["version"], exc)
                report.failed.append(p.row["id"])
            return report
        added: list[bytes] = []
        removed: list[bytes] = []
        with self.db.write() as outer:
            for p in prepared:
                try:
                    with self.db.write() as conn:  # a savepoint: one document at a time
                        removed_here = self._index(conn, p)
                    removed.extend(removed_here)
                    added.extend(c.terms for c in p.chunks)
                    report.indexed.append(p.row["id"])
                    report.chunks += len(p.chunks)
                except StaleVersion:
                    report.skipped.append(p.row["id"])
                except Exception as exc:
                    log.exception("indexing %s failed", p.row["id"])
                    report.failed.append(p.row["id"])
                    p.row["error"] = exc
            # term statistics for the whole batch at once, in the same transaction
            store.adjust_terms(outer, self.workspace_id, added, removed)
        for p in prepared:
            if "error" in p.row:
                self.fail(p.row["id"], p.row["version"], p.row["error"])
        return report

    def _claim(self, items: Sequence[tuple[str, int]], report: RunReport) -> list[dict[str, Any]]:
        now = self._now()
        claimed = []
        with self.db.write() as conn:
            for document_id, version in items:
                row = store.claim(conn, document_id, version, now, due_before=now)
                if row is None:
                    report.skipped.append(document_id)
                else:
                    claimed.append(row)
        return claimed

    def _set_status(self, rows: Sequence[dict[str, Any]], status: str) -> None:
        now = self._now()
        with self.db.write() as conn:
            for row in rows:
                conn.execute(
                    "UPDATE knowledge_documents SET status = ?, updated_at = ?"
                    " WHERE seq = ? AND version = ?",
                    (status, now, row["seq"], row["version"]),
                )

    def _prepare(self, row: dict[str, Any]) -> Prepared:
        with self.db.read() as conn:
            version = store.version_row(conn, row["seq"], row["version"])
        if version is None:
            raise StaleVersion(f"version {row['version']} of {row['id']} is gone")
        parsed = parsing.parse(bytes(version["content"]), version["mime_type"])
        spans = chunking.chunk(parsed)
        chunks = []
        for span in spans:
            text = parsed.text[span.start : span.end]
            title = chunk_title(row["title"], span.heading)
            terms, length = keyword.term_counts(title, text)
            chunks.append(
                store.ChunkRow(
                    id=new_id("chk"),
                    ordinal=span.ordinal,
                    char_start=span.start,
                    char_end=span.end,
                    heading=span.heading,
                    title=title,
                    text=text,
                    token_count=length,
                    terms=terms,
                )
            )
        return Prepared(row, parsed.text, chunks)

    def _target_indexes(self) -> list[dict[str, Any]]:
        """The active index (created for the default embedder on first use) and the one being
        built, if any: new chunks go into both, so a switch-over misses nothing."""
        with self.db.write() as conn:
            ensure_active_index(self.runtime, conn, self.workspace_id, self._now())
            return [
                r
                for r in (
                    index_store.index_row(conn, status="active"),
                    index_store.index_row(conn, status="building"),
                )
                if r is not None
            ]

    def _embed(self, prepared: Sequence[Prepared], index: dict[str, Any]) -> None:
        embedder = get_embedder(self.runtime.pm, index["embedder"])
        texts = [embedding_text(c.title, c.text) for p in prepared for c in p.chunks]
        vectors = (
            checked_embed(embedder, texts) if texts else np.zeros((0, index["dim"]), np.float32)
        )
        position = 0
        for p in prepared:
            p.vectors[index["seq"]] = vectors[position : position + len(p.chunks)]
            position += len(p.chunks)

    def _index(self, conn: apsw.Connection, p: Prepared) -> list[bytes]:
        """Swap the document's searchable chunks for this version's, in the caller's
        transaction: all of it lands, or none of it. Returns the removed chunks' terms."""
        current = store.document_row(conn, p.row["id"])
        if (
            current is None
            or current["version"] != p.row["version"]
            or current["status"] != "embedding"
        ):
            raise StaleVersion(
                f"{p.row['id']} moved on while version {p.row['version']} was ingested"
            )
        seq = current["seq"]
        # an older version's dead letter is settled once a newer version is searchable
        store.resolve_dead_letters(conn, seq, self._now(), None)
        removed = store.delete_chunks(conn, seq)
        chunk_seqs = store.insert_chunks(conn, self.workspace_id, seq, p.row["version"], p.chunks)
        for index in _live_indexes(conn):
            vectors = p.vectors.get(index["seq"])
            if vectors is None:  # an index appeared (or switched) after we embedded: rare
                embedder = get_embedder(self.runtime.pm, index["embedder"])
                vectors = checked_embed(
                    embedder, [embedding_text(c.title, c.text) for c in p.chunks]
                )
            index_store.insert_vectors(
                conn,
                self.workspace_id,
                index,
                ((cs, seq, v.tobytes()) for cs, v in zip(chunk_seqs, vectors, strict=True)),
            )
        store.set_version_text(conn, seq, p.row["version"], p.text)
        store.drop_versions_before(conn, seq, p.row["version"])
        now = self._now()
        store.update_document(
            conn,
            seq,
            status="indexed",
            indexed_version=p.row["version"],
            chunk_count=len(p.chunks),
            indexed_at=now,
            updated_at=now,
            last_error_class=None,
            last_error_message=None,
            next_attempt_at=None,
        )
        self._emit(
            conn,
            "knowledge.document_indexed",
            DocumentIndexed(
                document_id=p.row["id"], version=p.row["version"], chunks=len(p.chunks)
            ),
        )
        return removed

    # -- failures and retries -------------------------------------------------------------

    def fail(self, document_id: str, version: int, exc: BaseException) -> str | None:
        """Record a failed attempt: schedule the next one, or move the document to the dead
        letters. Returns the new status (None when the version is no longer current)."""
        if isinstance(exc, StaleVersion):
            return None
        now_dt = self.runtime.clock.now()
        now = isoformat(now_dt)
        error_class = type(exc).__name__
        message = (str(exc) or error_class)[:2000]
        with self.db.write() as conn:
            row = store.document_row(conn, document_id)
            if row is None or row["version"] != version:
                return None
            dead = isinstance(exc, PERMANENT_FAILURES) or row["attempts"] >= MAX_ATTEMPTS
            delay = None if dead else retry_delay(max(row["attempts"], 1), self.rng)
            next_at = None if delay is None else isoformat(now_dt + timedelta(seconds=delay))
            store.update_document(
                conn,
                row["seq"],
                status="dead" if dead else "failed",
                next_attempt_at=next_at,
                last_error_class=error_class,
                last_error_message=message,
                updated_at=now,
            )
            if dead:
                store.insert_dead_letter(
                    conn,
                    self.workspace_id,
                    {
                        "document_seq": row["seq"],
                        "version": version,
                        "attempts": row["attempts"],
                        "error_class": error_class,
                        "error_message": message,
                        "failed_at": now,
                    },
                )
            self._emit(
                conn,
                "knowledge.document_failed",
                DocumentFailed(
                    document_id=document_id,
                    version=version,
                    error_class=error_class,
                    attempts=row["attempts"],
                    dead=dead,
                ),
            )
        if delay is not None:
            from workbench.knowledge.jobs import schedule

            schedule(
                self.runtime, "knowledge.ingest", delay, self.workspace_id, [[document_id, version]]
            )
        return "dead" if dead else "failed"

    def retry_due(self) -> list[tuple[str, int]]:
        """Attempts whose worker died become failed attempts; failed documents whose retry is
        due (by the injected clock) and queued ones whose job was lost are run again."""
        now_dt = self.runtime.clock.now()
        with self.db.read() as conn:
            stuck = store.stuck_documents(conn, isoformat(now_dt - STUCK_AFTER))
        for document_id in stuck:
            with self.db.read() as conn:
                row = store.document_row(conn, document_id)
            if row is not None:
                self.fail(document_id, row["version"], WorkerLost("the attempt's worker stopped"))
        with self.db.read() as conn:
            due = store.due_retries(conn, isoformat(now_dt), isoformat(now_dt - QUEUED_STALE_AFTER))
        if due:
            self.run(due)
        return due

    # -- embedder switch ------------------------------------------------------------------

    def rebuild(self, index_seq: int) -> str:
        """Embed every chunk into the building index, batch by batch (search keeps using the
        active index meanwhile), then switch over in one transaction."""
        while True:
            with self.db.read() as conn:
                index = index_store.index_row(conn, seq=index_seq)
                if index is None or index["status"] != "building":
                    return "gone" if index is None else str(index["status"])
                missing = index_store.missing_vectors(conn, index_seq, REBUILD_BATCH)
            if not missing:
                if self._switch(index_seq):
                    return "active"
                continue
            try:
                embedder = get_embedder(self.runtime.pm, index["embedder"])
                vectors = checked_embed(
                    embedder, [embedding_text(m["title"], m["text"]) for m in missing]
                )
            except Exception as exc:
                log.exception("rebuilding index %s failed", index["id"])
                with self.db.write() as conn:
                    index_store.drop_index_vectors(conn, index_seq)
                    index_store.set_index_status(
                        conn, index_seq, "failed", self._now(), f"{type(exc).__name__}: {exc}"
                    )
                return "failed"
            with self.db.write() as conn:
                current = index_store.index_row(conn, seq=index_seq)
                if current is None or current["status"] != "building":
                    continue
                alive = {
                    r[0]
                    for r in conn.execute(
                        "SELECT seq FROM knowledge_chunks WHERE seq IN (SELECT value FROM json_each(?))",
                        (store.dumps([m["seq"] for m in missing]),),
                    )
                }
                index_store.insert_vectors(
                    conn,
                    self.workspace_id,
                    current,
                    (
                        (m["seq"], m["document_seq"], v.tobytes())
                        for m, v in zip(missing, vectors, strict=True)
                        if m["seq"] in alive
                    ),
                )

    def _switch(self, index_seq: int) -> bool:
        with self.db.write() as conn:
            if index_store.missing_vectors(conn, index_seq, 1):
                return False  # chunks arrived since the last batch: embed them first
            new = index_store.index_row(conn, seq=index_seq)
            if new is None or new["status"] != "building":
                return True
            old = index_store.index_row(conn, status="active")
            now = self._now()
            if old is not None:
                index_store.set_index_status(conn, old["seq"], "retired", now)
                index_store.drop_index_vectors(conn, old["seq"])
            index_store.set_index_status(conn, index_seq, "active", now)
            self._emit(
                conn,
                "knowledge.embedder_switched",
                EmbedderSwitched(
                    index_id=new["id"],
                    embedder=new["embedder"],
                    model=new["model"],
                    previous_index_id=old["id"] if old else None,
                ),
            )
        return True

    def _emit(self, conn: apsw.Connection, event_type: str, payload: Any) -> None:
        emit(
            conn,
            self.runtime.events.build(
                event_type,
                workspace_id=self.workspace_id,
                payload=payload,
                correlation_id=correlation_id.get(),
                clock=self.runtime.clock,
            ),
        )


class WorkerLost(Exception):
    """An attempt was claimed but never finished: its worker stopped."""


def _live_indexes(conn: apsw.Connection) -> list[dict[str, Any]]:
    return [
        r
        for r in (
            index_store.index_row(conn, status="active"),
            index_store.index_row(conn, status="building"),
        )
        if r
    ]


def index_values(embedder: Embedder, status: str, now: str) -> dict[str, Any]:
    return {
        "id": new_id("idx"),
        "embedder": embedder.name,
        "model": embedder.model,
        "embedder_version": embedder.version,
        "dim": embedder.dim,
        "status": status,
        "created_at": now,
        "activated_at": now if status == "active" else None,
    }


def ensure_active_index(
    runtime: Runtime, conn: apsw.Connection, workspace_id: str, now: str
) -> dict[str, Any]:
    """The active index, created for the default embedder the first time it is needed."""
    active = index_store.index_row(conn, status="active")
    if active is None:
        embedder = get_embedder(runtime.pm, DEFAULT_EMBEDDER)
        index_store.insert_index(conn, workspace_id, index_values(embedder, "active", now))
        active = index_store.index_row(conn, status="active")
    assert active is not None
    return active
