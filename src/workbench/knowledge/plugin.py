"""Registers the knowledge base through the same hooks a plugin uses: event types, routes,
jobs, CLI commands and the two built-in embedders."""

from __future__ import annotations

from typing import Any

from workbench.events.envelope import EventType
from workbench.hookspecs import hookimpl
from workbench.knowledge.models import (
    DocumentAdded,
    DocumentDeleted,
    DocumentFailed,
    DocumentIndexed,
    EmbedderSwitched,
)


@hookimpl
def workbench_event_types() -> list[EventType]:
    return [
        EventType(
            "knowledge.document_added",
            1,
            DocumentAdded,
            "A document or a new version of it was added.",
        ),
        EventType(
            "knowledge.document_indexed",
            1,
            DocumentIndexed,
            "A document version became searchable.",
        ),
        EventType(
            "knowledge.document_failed",
            1,
            DocumentFailed,
            "An ingestion attempt failed (dead: no more retries).",
        ),
        EventType("knowledge.document_deleted", 1, DocumentDeleted, "A document was deleted."),
        EventType(
            "knowledge.embedder_switched",
            1,
            EmbedderSwitched,
            "Search now uses a new vector index.",
        ),
    ]


@hookimpl
def workbench_routes(runtime: Any) -> list[Any]:
    from workbench.knowledge.routes import DocumentController, KnowledgeController, SearchController

    return [DocumentController, SearchController, KnowledgeController]


@hookimpl
def workbench_jobs(huey: Any, runtime: Any) -> None:
    from workbench.knowledge.jobs import register

    register(huey, runtime)


@hookimpl
def workbench_embedders() -> list[Any]:
    from workbench.knowledge.embedders import HashingEmbedder, WordLlamaEmbedder

    return [WordLlamaEmbedder(), HashingEmbedder()]


@hookimpl
def workbench_cli(cli: Any) -> None:
    from workbench.knowledge.cli import add_commands

    add_commands(cli)
