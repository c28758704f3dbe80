"""The assistant's door into the knowledge base: hybrid search as numbered passages, and the
names a cited document goes by (for evals)."""

from __future__ import annotations

from workbench.assistant.models import Passage
from workbench.runtime import Runtime


def retrieve(runtime: Runtime, workspace_id: str, query: str, limit: int) -> list[Passage]:
    """The top ``limit`` chunks for ``query`` (hybrid search), in rank order."""
    from workbench.knowledge.models import SearchRequest
    from workbench.knowledge.service import Knowledge

    response = Knowledge(runtime, workspace_id, None).search(
        SearchRequest(query=query[:1000], mode="hybrid", limit=limit)
    )
    return [
        Passage(
            marker=str(n),
            document_id=hit.document_id,
            chunk_id=hit.chunk_id,
            title=hit.document_title,
            text=hit.text,
            char_start=hit.char_start,
            char_end=hit.char_end,
            score=hit.score,
        )
        for n, hit in enumerate(response.hits, start=1)
    ]


def document_keys(runtime: Runtime, workspace_id: str, ids: set[str]) -> dict[str, set[str]]:
    """For each document id: the id, its title and its external id."""
    from workbench.knowledge.service import Knowledge

    knowledge = Knowledge(runtime, workspace_id, None)
    out: dict[str, set[str]] = {}
    for document_id in ids:
        document = knowledge.get(document_id)
        out[document_id] = {document.id, document.title} | (
            {document.external_id} if document.external_id else set()
        )
    return out
