"""What crosses the boundary for the knowledge base: bodies, answers and event payloads."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

DocumentStatus = Literal["queued", "parsing", "embedding", "indexed", "failed", "dead"]
STATUSES: tuple[DocumentStatus, ...] = (
    "queued",
    "parsing",
    "embedding",
    "indexed",
    "failed",
    "dead",
)
SearchMode = Literal["keyword", "vector", "hybrid"]
IndexStatus = Literal["building", "active", "retired", "failed"]

Tag = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9_.:\-]{0,49}$")]
Tags = Annotated[list[Tag], msgspec.Meta(max_length=20)]
Title = Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
Metadata = Annotated[dict[str, Any], msgspec.Meta(max_length=50)]
ExternalId = Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
Query = Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]


class Document(msgspec.Struct, kw_only=True):
    id: str
    external_id: str | None
    title: str
    source: str
    mime_type: str
    size_bytes: int
    content_hash: str
    tags: list[str]
    metadata: dict[str, Any]
    version: int
    """The latest version uploaded."""
    indexed_version: int | None
    """The version search answers from; lags ``version`` while a new version is ingested."""
    status: DocumentStatus
    attempts: int
    next_attempt_at: str | None
    last_error_class: str | None
    last_error_message: str | None
    chunk_count: int
    created_by: str | None
    created_at: str
    updated_at: str
    indexed_at: str | None


class DocumentPage(msgspec.Struct, kw_only=True):
    documents: list[Document]
    next_cursor: str | None


class DocumentPatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Title, tags and metadata change without a new version; tags filter at once."""

    title: Title | UnsetType = UNSET
    tags: Tags | UnsetType = UNSET
    metadata: Metadata | UnsetType = UNSET


class DocumentText(msgspec.Struct, kw_only=True):
    """The normalised text of one version: every chunk span indexes into ``text``."""

    document_id: str
    version: int
    mime_type: str
    text: str


class EmbeddingInfo(msgspec.Struct, kw_only=True):
    embedder: str
    model: str
    version: str


class Chunk(msgspec.Struct, kw_only=True):
    id: str
    document_id: str
    version: int
    ordinal: int
    char_start: int
    char_end: int
    heading: str
    text: str
    embedding: EmbeddingInfo | None
    """What embedded this chunk in the active index."""


class IngestReport(msgspec.Struct, kw_only=True):
    created: int
    updated: int
    unchanged: int
    rejected: list[dict[str, Any]]
    document_ids: list[str]


class DeadLetter(msgspec.Struct, kw_only=True):
    id: int
    document_id: str
    title: str
    version: int
    attempts: int
    error_class: str
    error_message: str
    failed_at: str
    retried_at: str | None


class SearchRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    query: Query
    mode: SearchMode = "hybrid"
    limit: Annotated[int, msgspec.Meta(ge=1, le=200)] = 10
    tags: Annotated[list[Tag], msgspec.Meta(max_length=20)] = []
    """Only documents carrying every one of these tags."""
    document_ids: Annotated[list[str], msgspec.Meta(max_length=500)] = []
    """Only these documents."""


class RetrieverScore(msgspec.Struct, kw_only=True):
    """One retriever's view of a hit: its raw score and rank (1-based), None when that
    retriever did not rank the chunk in its candidate list."""

    score: float | None
    rank: int | None


class SearchHit(msgspec.Struct, kw_only=True):
    rank: int
    score: float
    document_id: str
    document_title: str
    document_version: int
    chunk_id: str
    ordinal: int
    char_start: int
    char_end: int
    heading: str
    text: str
    snippet: str
    """HTML-escaped text around the best match, matched terms wrapped in ``<mark>``."""
    tags: list[str]
    scores: dict[str, RetrieverScore]
    """``keyword`` (BM25), ``vector`` (cosine) and, in hybrid mode, ``fused``."""


class SearchResponse(msgspec.Struct, kw_only=True):
    query: str
    mode: SearchMode
    hits: list[SearchHit]
    embedder: EmbeddingInfo | None
    took_ms: float


class FeedbackCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    query: Query
    chunk_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    helpful: bool
    mode: SearchMode | None = None
    rank: Annotated[int, msgspec.Meta(ge=1, le=1000)] | None = None
    scores: dict[str, RetrieverScore] = {}
    comment: Annotated[str, msgspec.Meta(max_length=2000)] | None = None


class Feedback(msgspec.Struct, kw_only=True):
    id: str
    query: str
    chunk_id: str
    document_id: str
    helpful: bool
    mode: str | None
    rank: int | None
    scores: dict[str, RetrieverScore]
    comment: str | None
    created_by: str | None
    created_at: str


class EmbedderDescription(msgspec.Struct, kw_only=True):
    name: str
    model: str
    version: str
    dim: int
    normalized: bool


class IndexInfo(msgspec.Struct, kw_only=True):
    id: str
    embedder: str
    model: str
    embedder_version: str
    dim: int
    status: IndexStatus
    vectors: int
    chunks: int
    error: str | None
    created_at: str
    activated_at: str | None


class EmbedderSwitch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    embedder: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]


# -- event payloads ------------------------------------------------------------------------


class DocumentAdded(msgspec.Struct, kw_only=True):
    document_id: str
    title: str
    version: int


class DocumentIndexed(msgspec.Struct, kw_only=True):
    document_id: str
    version: int
    chunks: int


class DocumentFailed(msgspec.Struct, kw_only=True):
    document_id: str
    version: int
    error_class: str
    attempts: int
    dead: bool


class DocumentDeleted(msgspec.Struct, kw_only=True):
    document_id: str


class EmbedderSwitched(msgspec.Struct, kw_only=True):
    index_id: str
    embedder: str
    model: str
    previous_index_id: str | None
