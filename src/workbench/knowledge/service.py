"""The rules of the knowledge base: adding documents (dedupe by content hash, versions),
their lifecycle (retry by hand, delete), search, feedback and the embedder in use."""

from __future__ import annotations

import hashlib
import weakref
from typing import Annotated, Any, Literal

import apsw
import msgspec
from msgspec import UNSET

from workbench import cursors
from workbench.clock import isoformat
from workbench.errors import BadRequest, Conflict, NotFound, Unprocessable
from workbench.events.outbox import emit
from workbench.ids import new_id
from workbench.knowledge import index_store, parsing, pipeline, retrieval, store
from workbench.knowledge.embedders import get_embedder, registry
from workbench.knowledge.errors import EmptyDocument, PayloadTooLarge
from workbench.knowledge.jobs import enqueue_ingest
from workbench.knowledge.models import (
    Chunk,
    DeadLetter,
    Document,
    DocumentAdded,
    DocumentDeleted,
    DocumentPage,
    DocumentPatch,
    DocumentText,
    EmbedderDescription,
    EmbeddingInfo,
    ExternalId,
    Feedback,
    FeedbackCreate,
    IndexInfo,
    IngestReport,
    Metadata,
    SearchRequest,
    SearchResponse,
    Tags,
)
from workbench.knowledge.vectors import VectorCache
from workbench.logs import correlation_id
from workbench.runtime import Runtime

Outcome = Literal["created", "updated", "unchanged"]
MAX_PAGE = 200
MAX_BULK_RECORDS = 100_000

_caches: weakref.WeakKeyDictionary[Runtime, VectorCache] = weakref.WeakKeyDictionary()


def vector_cache(runtime: Runtime) -> VectorCache:
    """The process's loaded vector indexes, one cache per runtime."""
    cache = _caches.get(runtime)
    if cache is None:
        cache = _caches[runtime] = VectorCache()
    return cache


class Knowledge:
    """Knowledge-base operations in one workspace, on behalf of one person."""

    def __init__(
        self, runtime: Runtime, workspace_id: str, actor: str | None, role: str | None = None
    ) -> None:
        self.runtime = runtime
        self.workspace_id = workspace_id
        self.actor = actor
        self.role = role
        self.db = runtime.storage.workspace(workspace_id)

    def _now(self) -> str:
        return isoformat(self.runtime.clock.now())

    # -- adding documents -----------------------------------------------------------------

    def add(
        self,
        content: bytes,
        *,
        media_type: str | None,
        filename: str | None = None,
        title: str | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        external_id: str | None = None,
        enqueue: bool = True,
    ) -> tuple[Document, Outcome]:
        """Add a document, or a new version of the one with this ``external_id``.

        Without an external id, identical content (same SHA-256) is the same document: the
        existing one comes back, ``unchanged``. Checks done here, before anything is stored:
        size (413), type (415), empty or undecodable content (422).
        """
        if len(content) > self.runtime.settings.max_body_bytes:
            raise PayloadTooLarge(
                f"the document is {len(content)} bytes; the limit is "
                f"{self.runtime.settings.max_body_bytes}"
            )
        mime = parsing.canonical_type(media_type, filename)
        parsed = parsing.validate_upload(content, mime)
        labels_given = tags is not None or metadata is not None
        tags = _checked(tags or [], Tags, "tags")
        metadata = _checked(metadata or {}, Metadata, "metadata")
        if external_id is not None:
            external_id = _checked(external_id, ExternalId, "external_id")
        digest = hashlib.sha256(content).hexdigest()
        guessed = title or (parsed.title if parsed else None) or filename or "Untitled"
        with self.db.write() as conn:
            document, outcome = self._upsert(
                conn,
                content=content,
                mime=mime,
                digest=digest,
                title=guessed[:500],
                version_title=title or (parsed.title if parsed else None),
                source=filename or "",
                tags=sorted(set(tags or [])),
                metadata=metadata or {},
                external_id=external_id,
                labels_given=labels_given,
            )
        if outcome != "unchanged" and enqueue:
            enqueue_ingest(self.runtime, self.workspace_id, [(document.id, document.version)])
        return document, outcome

    def _upsert(
        self,
        conn: apsw.Connection,
        *,
        content: bytes,
        mime: str,
        digest: str,
        title: str,
        version_title: str | None,
        source: str,
        tags: list[str],
        metadata: dict[str, Any],
        external_id: str | None,
        labels_given: bool = True,
    ) -> tuple[Document, Outcome]:
        existing = (
            store.document_by_external_id(conn, external_id)
            if external_id is not None
            else store.document_by_hash(conn, digest)
        )
        now = self._now()
        if existing is not None and labels_given:
            # a re-sync carries the source's current tags and metadata, changed content or not
            current = store.row_to_document(existing)
            if current.tags != tags or current.metadata != metadata:
                store.update_document(
                    conn, existing["seq"], tags=tags, metadata=metadata, updated_at=now
                )
                existing = self._row(conn, current.id)
        if existing is not None:
            if existing["content_hash"] == digest:
                return store.row_to_document(existing), "unchanged"
            return self._new_version(
                conn,
                existing,
                content,
                mime,
                digest,
                version_title[:500] if version_title else None,
            ), "updated"
        document = Document(
            id=new_id("doc"),
            external_id=external_id,
            title=title,
            source=source,
            mime_type=mime,
            size_bytes=len(content),
            content_hash=digest,
            tags=tags,
            metadata=metadata,
            version=1,
            indexed_version=None,
            status="queued",
            attempts=0,
            next_attempt_at=None,
            last_error_class=None,
            last_error_message=None,
            chunk_count=0,
            created_by=self.actor,
            created_at=now,
            updated_at=now,
            indexed_at=None,
        )
        seq = store.insert_document(conn, self.workspace_id, document)
        store.insert_version(conn, self.workspace_id, seq, 1, mime, digest, content, now)
        self._emit(
            conn,
            "knowledge.document_added",
            DocumentAdded(document_id=document.id, title=title, version=1),
        )
        return document, "created"

    def _new_version(
        self,
        conn: apsw.Connection,
        row: dict[str, Any],
        content: bytes,
        mime: str,
        digest: str,
        title: str | None,
    ) -> Document:
        version = row["version"] + 1
        now = self._now()
        values: dict[str, Any] = {
            "version": version,
            "mime_type": mime,
            "size_bytes": len(content),
            "content_hash": digest,
            "status": "queued",
            "attempts": 0,
            "next_attempt_at": None,
            "claimed_at": None,
            "updated_at": now,
        }
        if title is not None:
            values["title"] = title
        store.update_document(conn, row["seq"], **values)
        conn.execute(
            "DELETE FROM knowledge_versions WHERE document_seq = ? AND version > ?",
            (row["seq"], row["indexed_version"] or 0),
        )
        store.insert_version(
            conn, self.workspace_id, row["seq"], version, mime, digest, content, now
        )
        self._emit(
            conn,
            "knowledge.document_added",
            DocumentAdded(document_id=row["id"], title=title or row["title"], version=version),
        )
        updated = store.document_row(conn, row["id"])
        assert updated is not None
        return store.row_to_document(updated)

    def replace_content(
        self,
        document_id: str,
        content: bytes,
        *,
        media_type: str | None,
        filename: str | None = None,
    ) -> tuple[Document, Outcome]:
        """A new version of an existing document (``unchanged`` if the content is the same)."""
        if len(content) > self.runtime.settings.max_body_bytes:
            raise PayloadTooLarge(f"the limit is {self.runtime.settings.max_body_bytes} bytes")
        mime = parsing.canonical_type(media_type, filename)
        parsed = parsing.validate_upload(content, mime)
        digest = hashlib.sha256(content).hexdigest()
        title = parsed.title[:500] if parsed and parsed.title else None
        with self.db.write() as conn:
            row = self._row(conn, document_id)
            if row["content_hash"] == digest:
                return store.row_to_document(row), "unchanged"
            document = self._new_version(conn, row, content, mime, digest, title)
        enqueue_ingest(self.runtime, self.workspace_id, [(document.id, document.version)])
        return document, "updated"

    def add_records(
        self, records: list[tuple[int, dict[str, Any]]], *, enqueue: bool = True
    ) -> IngestReport:
        """BEIR-style JSON lines (``_id``, ``title``, ``text``, ``metadata``, optional
        ``tags``): ``_id`` is the external id, so a record with a known ``_id`` and new text
        is a new version. The hash covers title and text. One transaction for the batch, a
        savepoint per record: a bad record is reported and leaves nothing behind."""
        if len(records) > MAX_BULK_RECORDS:
            raise BadRequest(f"at most {MAX_BULK_RECORDS} records per request")
        report = IngestReport(created=0, updated=0, unchanged=0, rejected=[], document_ids=[])
        queue: list[tuple[str, int]] = []
        with self.db.write():
            for line, record in records:
                try:
                    parsed = msgspec.convert(record, _Record, strict=False)
                    text = parsed.text
                    if not text.strip():
                        raise EmptyDocument("the record has no text")
                    title = (parsed.title or "").strip() or text.strip().split("\n", 1)[0][:200]
                    content = text.encode()
                    digest = hashlib.sha256(f"{title}\n\n{text}".encode()).hexdigest()
                    with self.db.write() as conn:
                        document, outcome = self._upsert(
                            conn,
                            content=content,
                            mime="text/plain",
                            digest=digest,
                            title=title[:500],
                            version_title=title[:500],
                            source="jsonl",
                            tags=sorted(set(parsed.tags)),
                            metadata=parsed.metadata,
                            external_id=parsed.id,
                        )
                except (msgspec.ValidationError, Unprocessable, BadRequest) as exc:
                    report.rejected.append({"line": line, "reason": str(exc)})
                    continue
                setattr(report, outcome, getattr(report, outcome) + 1)
                report.document_ids.append(document.id)
                if outcome != "unchanged":
                    queue.append((document.id, document.version))
        if queue and enqueue:
            enqueue_ingest(self.runtime, self.workspace_id, queue)
        return report

    # -- reading --------------------------------------------------------------------------

    def _row(self, conn: apsw.Connection, document_id: str) -> dict[str, Any]:
        row = store.document_row(conn, document_id)
        if row is None:
            raise NotFound("document not found")
        return row

    def get(self, document_id: str) -> Document:
        with self.db.read() as conn:
            return store.row_to_document(self._row(conn, document_id))

    def list_documents(
        self,
        *,
        status: str | None = None,
        tag: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> DocumentPage:
        if not 1 <= limit <= MAX_PAGE:
            raise BadRequest(f"limit must be between 1 and {MAX_PAGE}")
        before = _decode_cursor(cursor) if cursor else None
        with self.db.read() as conn:
            found = store.list_documents(
                conn, status=status, tag=tag, before=before, limit=limit + 1
            )
        next_cursor = None
        if len(found) > limit:
            found = found[:limit]
            next_cursor = _encode_cursor(found[-1]["seq"])
        return DocumentPage(
            documents=[store.row_to_document(r) for r in found], next_cursor=next_cursor
        )

    def text(self, document_id: str, version: int | None = None) -> DocumentText:
        with self.db.read() as conn:
            row = self._row(conn, document_id)
            wanted = version or row["indexed_version"]
            stored = store.version_row(conn, row["seq"], wanted) if wanted else None
        if stored is None or stored["text"] is None:
            raise NotFound("no parsed text for this document version yet")
        return DocumentText(
            document_id=document_id,
            version=wanted,
            mime_type=stored["mime_type"],
            text=stored["text"],
        )

    def chunks(self, document_id: str) -> list[Chunk]:
        with self.db.read() as conn:
            row = self._row(conn, document_id)
            found = store.document_chunks(conn, row["seq"])
        return [
            Chunk(
                id=r["id"],
                document_id=document_id,
                version=r["version"],
                ordinal=r["ordinal"],
                char_start=r["char_start"],
                char_end=r["char_end"],
                heading=r["heading"],
                text=r["text"],
                embedding=EmbeddingInfo(
                    embedder=r["embedder"], model=r["model"], version=r["embedder_version"]
                )
                if r["embedder"]
                else None,
            )
            for r in found
        ]

    # -- changing -------------------------------------------------------------------------

    def update(self, document_id: str, patch: DocumentPatch) -> Document:
        """Tags and metadata change at once (search filters read them from the document).
        A new title is indexed with the next version."""
        with self.db.write() as conn:
            row = self._row(conn, document_id)
            values: dict[str, Any] = {}
            if patch.title is not UNSET:
                values["title"] = patch.title
            if patch.tags is not UNSET:
                values["tags"] = sorted(set(patch.tags))
            if patch.metadata is not UNSET:
                values["metadata"] = patch.metadata
            if values:
                store.update_document(conn, row["seq"], **values, updated_at=self._now())
            updated = self._row(conn, document_id)
        return store.row_to_document(updated)

    def delete(self, document_id: str) -> None:
        with self.db.write() as conn:
            row = self._row(conn, document_id)
            store.delete_document(conn, self.workspace_id, row["seq"])
            self._emit(conn, "knowledge.document_deleted", DocumentDeleted(document_id=document_id))

    def retry(self, document_id: str) -> Document:
        """Run a failed or dead document again, from a fresh attempt count."""
        with self.db.write() as conn:
            row = self._row(conn, document_id)
            if row["status"] not in ("failed", "dead"):
                raise Conflict(
                    f"only failed or dead documents can be retried; this one is {row['status']}",
                    status=row["status"],
                )
            now = self._now()
            store.update_document(
                conn,
                row["seq"],
                status="queued",
                attempts=0,
                next_attempt_at=None,
                claimed_at=None,
                updated_at=now,
            )
            store.resolve_dead_letters(conn, row["seq"], now, self.actor)
        enqueue_ingest(self.runtime, self.workspace_id, [(document_id, row["version"])])
        return self.get(document_id)

    def dead_letters(self, *, include_retried: bool = False, limit: int = 100) -> list[DeadLetter]:
        with self.db.read() as conn:
            return store.dead_letters(
                conn, include_retried=include_retried, limit=min(limit, MAX_PAGE)
            )

    # -- search and feedback --------------------------------------------------------------

    def search(
        self, request: SearchRequest, tuning: retrieval.Tuning = retrieval.DEFAULT_TUNING
    ) -> SearchResponse:
        with self.db.read() as conn:
            snapshot = not conn.in_transaction
            if snapshot:
                conn.execute("BEGIN")  # one snapshot for every query of the search
            try:
                index = index_store.index_row(conn, status="active")
                embedder = view = None
                if index is not None and request.mode != "keyword":
                    embedders = registry(self.runtime.pm)
                    embedder = embedders.get(index["embedder"])
                    if embedder is None and request.mode == "vector":
                        raise Unprocessable(
                            f"the active index was built by embedder {index['embedder']!r},"
                            " which is not installed"
                        )
                    if embedder is not None:
                        view = vector_cache(self.runtime).view(conn, str(self.db.path), index)
                try:
                    return retrieval.search(
                        conn, request, embedder=embedder, index=index, view=view, tuning=tuning
                    )
                except apsw.SQLError as exc:
                    raise BadRequest(f"invalid search: {exc}") from None
            finally:
                if snapshot:
                    conn.execute("COMMIT")

    def feedback(self, data: FeedbackCreate) -> Feedback:
        with self.db.write() as conn:
            chunk = store.chunk_by_id(conn, data.chunk_id)
            if chunk is None:
                raise NotFound("chunk not found (it may belong to a replaced version)")
            feedback = Feedback(
                id=new_id("fbk"),
                query=data.query,
                chunk_id=data.chunk_id,
                document_id=chunk["document_id"],
                helpful=data.helpful,
                mode=data.mode,
                rank=data.rank,
                scores=data.scores,
                comment=data.comment,
                created_by=self.actor,
                created_at=self._now(),
            )
            store.insert_feedback(conn, self.workspace_id, feedback)
        return feedback

    def feedback_list(self, *, document_id: str | None = None, limit: int = 100) -> list[Feedback]:
        with self.db.read() as conn:
            return store.list_feedback(conn, document_id=document_id, limit=min(limit, MAX_PAGE))

    # -- embedders ------------------------------------------------------------------------

    def embedders(self) -> list[EmbedderDescription]:
        return [
            EmbedderDescription(
                name=e.name, model=e.model, version=e.version, dim=e.dim, normalized=e.normalized
            )
            for e in sorted(registry(self.runtime.pm).values(), key=lambda e: e.name)
        ]

    def indexes(self) -> list[IndexInfo]:
        with self.db.read() as conn:
            return index_store.list_indexes(conn)

    def switch_embedder(self, name: str) -> IndexInfo:
        """Start re-embedding every chunk with ``name`` into a new index; search keeps using
        the active index until the new one is complete, then switches in one transaction."""
        embedder = get_embedder(self.runtime.pm, name)
        with self.db.write() as conn:
            now = self._now()
            active = pipeline.ensure_active_index(self.runtime, conn, self.workspace_id, now)
            building = index_store.index_row(conn, status="building")
            same = (embedder.name, embedder.version)
            if (
                building is not None
                and (building["embedder"], building["embedder_version"]) == same
            ):
                target = building
            elif building is None and (active["embedder"], active["embedder_version"]) == same:
                target = active
            else:
                if building is not None:
                    index_store.drop_index_vectors(conn, building["seq"])
                    index_store.set_index_status(
                        conn, building["seq"], "failed", now, "superseded by another switch"
                    )
                seq = index_store.insert_index(
                    conn, self.workspace_id, pipeline.index_values(embedder, "building", now)
                )
                target = index_store.index_row(conn, seq=seq) or {}
        if target["status"] == "building":
            from workbench.jobs import enqueue

            enqueue(self.runtime.huey, "knowledge.rebuild_index", self.workspace_id, target["seq"])
        return next(i for i in self.indexes() if i.id == target["id"])

    def _emit(self, conn: apsw.Connection, event_type: str, payload: Any) -> None:
        emit(
            conn,
            self.runtime.events.build(
                event_type,
                workspace_id=self.workspace_id,
                payload=payload,
                correlation_id=correlation_id.get(),
                actor=self.actor,
                clock=self.runtime.clock,
            ),
        )


class _Record(msgspec.Struct, kw_only=True):
    id: ExternalId = msgspec.field(name="_id")
    title: str | None = ""
    text: str = ""
    metadata: Metadata = {}
    tags: Tags = []


def _checked(value: Any, kind: Any, name: str) -> Any:
    try:
        return msgspec.convert(value, kind)
    except msgspec.ValidationError as exc:
        raise BadRequest(f"invalid {name}: {exc}") from None


_Seq = Annotated[int, msgspec.Meta(ge=0, le=2**62)]


def _encode_cursor(seq: int) -> str:
    return cursors.encode([seq])


def _decode_cursor(cursor: str) -> int:
    (seq,) = cursors.decode(cursor, tuple[_Seq])
    return seq
