"""The demo: seeding is idempotent, and the assistant answers questions about the project's
own documentation with citations, and creates an item when asked."""

from __future__ import annotations

import json

from click.testing import CliRunner

from workbench.cli import cli
from workbench.demo import DOCS_DIR, seed
from workbench.items.models import ItemQuery
from workbench.items.service import Items
from workbench.knowledge.service import Knowledge
from workbench.runtime import Runtime
from workbench.workspaces.service import list_workspaces


def ask(runtime: Runtime, workspace_id: str, question: str) -> dict[str, object]:
    result = CliRunner().invoke(
        cli,
        [
            "--data-dir",
            str(runtime.settings.data_path),
            "ask",
            "--workspace",
            workspace_id,
            "--json",
            question,
        ],
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_seed_is_idempotent(runtime: Runtime) -> None:
    first = seed(runtime)
    again = seed(runtime)
    assert again.workspace_id == first.workspace_id
    assert [w.id for w in list_workspaces(runtime)] == [first.workspace_id]
    documents = Knowledge(runtime, first.workspace_id, None).list_documents().documents
    assert len(documents) == first.documents == len(list(DOCS_DIR.rglob("*.md")))
    titles = [
        i.title for i in Items(runtime, first.workspace_id, None).list_items(ItemQuery()).items
    ]
    assert len(titles) == 3


def test_the_assistant_answers_from_the_docs_and_acts(runtime: Runtime) -> None:
    demo = seed(runtime)
    knowledge = Knowledge(runtime, demo.workspace_id, None)
    answer = ask(runtime, demo.workspace_id, "How do I verify the audit log?")
    citations = answer["citations"]
    assert answer["answer"] and citations, answer
    for citation in citations:  # type: ignore[attr-defined]
        document = knowledge.get(citation["document_id"])
        assert document.external_id.startswith("docs/")
        text = knowledge.text(document.id).text
        assert text[citation["char_start"] : citation["char_end"]] == citation["quote"]
    assert "audit verify" in str(answer["answer"])
    created = ask(runtime, demo.workspace_id, "Create an item: write the release checklist")
    assert created["tool_calls"][0]["tool"] == "create_item"  # type: ignore[index]
    titles = [
        i.title for i in Items(runtime, demo.workspace_id, None).list_items(ItemQuery()).items
    ]
    assert "write the release checklist" in titles
