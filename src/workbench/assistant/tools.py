"""Assistant tools: each declares its argument Struct and the permission it needs, and runs
with the permissions of the person who started the run, never more."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal, Protocol, runtime_checkable

import msgspec

from workbench.assistant.models import Passage
from workbench.runtime import Runtime


@dataclass(frozen=True)
class ToolContext:
    runtime: Runtime
    workspace_id: str
    actor: str | None
    role: str


@runtime_checkable
class Tool(Protocol):
    name: str
    description: str
    permission: str

    @property
    def arguments(self) -> type[msgspec.Struct]:
        """The Struct the model's arguments are validated against."""
        ...

    def run(self, ctx: ToolContext, args: Any) -> Any: ...


def argument_schema(tool: Tool) -> dict[str, Any]:
    """The JSON Schema of a tool's arguments, inlined (providers want a plain object)."""
    schema = msgspec.json.schema(tool.arguments)
    defs = schema.get("$defs", {})
    ref = schema.get("$ref", "")
    inner: dict[str, Any] = defs.get(ref.rsplit("/", 1)[-1], schema) if ref else schema
    inner = {k: v for k, v in inner.items() if k != "title"}
    inner.setdefault("additionalProperties", False)
    return inner


# -- built-in tools -----------------------------------------------------------------------

Short = Annotated[str, msgspec.Meta(min_length=1, max_length=300)]
ItemRef = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class SearchArgs(msgspec.Struct, forbid_unknown_fields=True):
    query: Annotated[str, msgspec.Meta(min_length=1, max_length=1000)]
    limit: Annotated[int, msgspec.Meta(ge=1, le=20)] = 5


class ListArgs(msgspec.Struct, forbid_unknown_fields=True):
    status: Literal["open", "in_progress", "done", "archived"] | None = None
    assignee: Annotated[str, msgspec.Meta(max_length=254)] | None = None
    """A member's user id or email."""
    label: Annotated[str, msgspec.Meta(max_length=50)] | None = None
    q: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    include_archived: bool = False
    limit: Annotated[int, msgspec.Meta(ge=1, le=50)] = 20


class ItemArgs(msgspec.Struct, forbid_unknown_fields=True):
    item_id: ItemRef


class CreateArgs(msgspec.Struct, forbid_unknown_fields=True):
    title: Short
    body: Annotated[str, msgspec.Meta(max_length=20_000)] = ""
    priority: Literal["none", "low", "medium", "high", "urgent"] = "none"
    labels: list[Annotated[str, msgspec.Meta(max_length=50)]] = []


class TransitionArgs(msgspec.Struct, forbid_unknown_fields=True):
    item_id: ItemRef
    to: Literal["open", "in_progress", "done", "archived"]


class CommentArgs(msgspec.Struct, forbid_unknown_fields=True):
    item_id: ItemRef
    body: Annotated[str, msgspec.Meta(min_length=1, max_length=20_000)]


def _items(ctx: ToolContext) -> Any:
    from workbench.items.service import Items

    return Items(ctx.runtime, ctx.workspace_id, ctx.actor, ctx.role)


def _brief(item: Any) -> dict[str, Any]:
    return {
        "id": item.id,
        "title": item.title,
        "status": item.status,
        "priority": item.priority,
        "assignee": item.assignee,
        "labels": item.labels,
    }


class SearchKnowledge:
    name = "search_knowledge"
    description = "Search the workspace's documents; returns passages with citation markers."
    arguments = SearchArgs
    permission = "knowledge.read"

    def run(self, ctx: ToolContext, args: SearchArgs) -> Any:
        from workbench.assistant.retrieval import retrieve

        passages: list[Passage] = retrieve(ctx.runtime, ctx.workspace_id, args.query, args.limit)
        return {
            "passages": [
                {"document_id": p.document_id, "title": p.title, "text": p.text[:1000]}
                for p in passages
                if not p.flagged
            ]
        }


class ListItems:
    name = "list_items"
    description = "List work items, filtered by status, assignee (id or email), label or text."
    arguments = ListArgs
    permission = "items.read"

    def run(self, ctx: ToolContext, args: ListArgs) -> Any:
        from workbench.items.models import ItemQuery

        assignee = _resolve_user(ctx, args.assignee) if args.assignee else None
        query = ItemQuery(
            status=[args.status] if args.status else [],
            assignee=assignee,
            label=args.label,
            q=args.q,
            include_archived=args.include_archived,
        )
        page = _items(ctx).list_items(query, limit=args.limit)
        return {"items": [_brief(i) for i in page.items]}


class GetItem:
    name = "get_item"
    description = "Read one work item with its body and fields."
    arguments = ItemArgs
    permission = "items.read"

    def run(self, ctx: ToolContext, args: ItemArgs) -> Any:
        return msgspec.to_builtins(_items(ctx).get(args.item_id))


class CreateItem:
    name = "create_item"
    description = "Create a work item."
    arguments = CreateArgs
    permission = "items.write"

    def run(self, ctx: ToolContext, args: CreateArgs) -> Any:
        from workbench.items.models import ItemCreate

        item, _ = _items(ctx).create(
            ItemCreate(title=args.title, body=args.body, priority=args.priority, labels=args.labels)
        )
        return _brief(item)


class TransitionItem:
    name = "transition_item"
    description = "Move a work item to another state (open, in_progress, done, archived)."
    arguments = TransitionArgs
    permission = "items.write"

    def run(self, ctx: ToolContext, args: TransitionArgs) -> Any:
        items = _items(ctx)
        current = items.get(args.item_id)
        return _brief(items.transition(args.item_id, args.to, expected_version=current.version))


class CommentOnItem:
    name = "comment_on_item"
    description = "Add a comment to a work item."
    arguments = CommentArgs
    permission = "items.write"

    def run(self, ctx: ToolContext, args: CommentArgs) -> Any:
        from workbench.items.models import CommentCreate

        comment = _items(ctx).comment(args.item_id, CommentCreate(body=args.body))
        return {"comment_id": comment.id, "item_id": args.item_id}


def _resolve_user(ctx: ToolContext, who: str) -> str:
    """An email becomes the member's user id; anything else is taken as a user id."""
    if "@" not in who:
        return who
    from workbench.auth.service import find_user
    from workbench.errors import NotFound

    try:
        return find_user(ctx.runtime, who).id
    except NotFound:
        return who


BUILTIN_TOOLS: tuple[Tool, ...] = (
    SearchKnowledge(),
    ListItems(),
    GetItem(),
    CreateItem(),
    TransitionItem(),
    CommentOnItem(),
)
