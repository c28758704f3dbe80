"""Seeds the demo data directory (``make demo``): a demo owner, a demo workspace holding the
project's own documentation as its knowledge base, and a few work items.

Runs offline with the embedded defaults. Safe to run again: it only adds what is missing.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from workbench.config import load_settings
from workbench.runtime import Runtime

DEMO_WORKSPACE = "Demo"
DEMO_EMAIL = "demo@workbench.test"
DEMO_PASSWORD = "workbench-demo"
DOCS_DIR = Path(__file__).resolve().parents[2] / "docs"
DEMO_ITEMS = (
    ("Try the assistant on the operations guide", "open", "medium", ["demo"]),
    ("Invite a teammate", "open", "low", ["demo", "people"]),
    ("Read the architecture page", "in_progress", "none", ["demo", "docs"]),
)


@dataclass(frozen=True)
class Demo:
    workspace_id: str
    owner_email: str
    documents: int


def seed(runtime: Runtime, docs_dir: Path = DOCS_DIR) -> Demo:
    """Create what is missing of the demo and return where it is."""
    from workbench.auth.service import create_user
    from workbench.errors import Conflict
    from workbench.workspaces.service import create_workspace, list_workspaces

    runtime.initialize()
    try:
        owner_id: str | None = create_user(runtime, DEMO_EMAIL, DEMO_PASSWORD, actor="demo").id
    except Conflict:
        from workbench.auth.service import find_user

        owner_id = find_user(runtime, DEMO_EMAIL).id
    existing = [w for w in list_workspaces(runtime) if w.name == DEMO_WORKSPACE]
    if existing:
        workspace_id = existing[0].id
    else:
        workspace_id = create_workspace(runtime, DEMO_WORKSPACE, owner_id=owner_id, actor="demo").id
        _seed_items(runtime, workspace_id, owner_id)
    documents = _seed_docs(runtime, workspace_id, docs_dir)
    return Demo(workspace_id=workspace_id, owner_email=DEMO_EMAIL, documents=documents)


def _seed_items(runtime: Runtime, workspace_id: str, owner_id: str | None) -> None:
    from workbench.items.models import ItemCreate
    from workbench.items.service import Items

    items = Items(runtime, workspace_id, owner_id, "owner")
    for title, status, priority, labels in DEMO_ITEMS:
        item, _ = items.create(ItemCreate(title=title, priority=priority, labels=labels))  # type: ignore[arg-type]
        if status != "open":
            items.transition(item.id, status, expected_version=item.version)


def _seed_docs(runtime: Runtime, workspace_id: str, docs_dir: Path) -> int:
    """The documentation as the knowledge base: each page once, a changed page as a new
    version of the same document."""
    from workbench.knowledge.pipeline import Ingestion
    from workbench.knowledge.service import Knowledge

    if not docs_dir.is_dir():
        return 0
    knowledge = Knowledge(runtime, workspace_id, None)
    pending: list[tuple[str, int]] = []
    count = 0
    for path in sorted(docs_dir.rglob("*.md")):
        relative = path.relative_to(docs_dir).as_posix()
        document, outcome = knowledge.add(
            path.read_bytes(),
            media_type="text/markdown",
            filename=path.name,
            external_id=f"docs/{relative}",
            tags=["docs"],
            enqueue=False,
        )
        if outcome != "unchanged":
            pending.append((document.id, document.version))
        count += 1
    if pending:  # indexed here and now, so the demo answers before any worker starts
        Ingestion(runtime, workspace_id).run(pending)
    return count


def main() -> None:
    runtime = Runtime(load_settings())
    try:
        demo = seed(runtime)
    finally:
        runtime.close()
    sys.stdout.write(
        f"demo workspace: {demo.workspace_id} ({demo.documents} documentation pages)\n"
        f"sign in as {demo.owner_email} / {DEMO_PASSWORD}\n"
        f'try: workbench ask --workspace {demo.workspace_id} "How do I verify the audit log?"\n'
    )


if __name__ == "__main__":
    main()
