"""What crosses the boundary for work items: bodies, answers and event payloads."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

Status = Literal["open", "in_progress", "done", "archived"]
Priority = Literal["none", "low", "medium", "high", "urgent"]
SortField = Literal["created", "updated", "due", "priority"]
Direction = Literal["asc", "desc"]

PRIORITIES: tuple[Priority, ...] = ("none", "low", "medium", "high", "urgent")
STATUSES: tuple[Status, ...] = ("open", "in_progress", "done", "archived")

TRANSITIONS: dict[str, tuple[str, ...]] = {
    "open": ("in_progress", "archived"),
    "in_progress": ("done", "open", "archived"),
    "done": ("open", "archived"),
    "archived": ("open",),
}
"""Allowed moves. ``open`` from ``done`` or ``archived`` is a reopen."""

LABEL_PATTERN = re.compile(r"[a-z0-9][a-z0-9_.:\-]{0,49}")
MAX_LABELS = 20

Title = Annotated[str, msgspec.Meta(min_length=1, max_length=300)]
Body = Annotated[str, msgspec.Meta(max_length=100_000)]
Label = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9_.:\-]{0,49}$")]
Labels = Annotated[list[Label], msgspec.Meta(max_length=MAX_LABELS)]
UserRef = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
Timestamp = Annotated[
    str, msgspec.Meta(pattern=r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?Z?)?$")
]
Fields = Annotated[dict[str, Any], msgspec.Meta(max_length=50)]


class Item(msgspec.Struct, kw_only=True):
    id: str
    title: str
    body: str
    status: Status
    priority: Priority
    assignee: str | None
    labels: list[str]
    due_at: str | None
    fields: dict[str, Any]
    created_by: str | None
    created_at: str
    updated_at: str
    version: int


class ItemCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    title: Title
    body: Body = ""
    priority: Priority = "none"
    assignee: UserRef | None = None
    labels: Labels = []
    due_at: Timestamp | None = None
    fields: Fields = {}


class ItemPatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A partial update: only the fields present change. ``version`` may stand in for
    ``If-Match``."""

    title: Title | UnsetType = UNSET
    body: Body | UnsetType = UNSET
    priority: Priority | UnsetType = UNSET
    assignee: UserRef | UnsetType | None = UNSET
    labels: Labels | UnsetType = UNSET
    due_at: Timestamp | UnsetType | None = UNSET
    fields: Fields | UnsetType = UNSET
    version: int | UnsetType = UNSET


class Transition(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    to: Status
    version: int | UnsetType = UNSET


class CommentCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    body: Annotated[str, msgspec.Meta(min_length=1, max_length=20_000)]


class Comment(msgspec.Struct, kw_only=True):
    id: str
    item_id: str
    author: str | None
    body: str
    created_at: str


class ActivityEntry(msgspec.Struct, kw_only=True):
    id: int
    item_id: str
    kind: str
    actor: str | None
    correlation_id: str | None
    event_id: str
    data: dict[str, Any]
    created_at: str


class ItemPage(msgspec.Struct, kw_only=True):
    items: list[Item]
    next_cursor: str | None


class ItemQuery(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Filters and sort of a list; also what a saved view stores."""

    status: list[Status] = []
    assignee: str | None = None
    label: str | None = None
    priority: list[Priority] = []
    due_after: Timestamp | None = None
    due_before: Timestamp | None = None
    q: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    include_archived: bool = False
    sort: SortField = "created"
    direction: Direction = "desc"


FieldType = Literal["text", "number", "boolean", "date", "select"]


class FieldDef(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
    type: FieldType
    options: Annotated[
        list[Annotated[str, msgspec.Meta(max_length=100)]], msgspec.Meta(max_length=100)
    ] = []
    required: bool = False


class FieldSchema(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    fields: Annotated[list[FieldDef], msgspec.Meta(max_length=50)]


class ViewCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    query: ItemQuery = msgspec.field(default_factory=ItemQuery)
    shared: bool = False


class ViewPatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | UnsetType = UNSET
    query: ItemQuery | UnsetType = UNSET
    shared: bool | UnsetType = UNSET


class View(msgspec.Struct, kw_only=True):
    id: str
    name: str
    owner_id: str
    shared: bool
    query: ItemQuery
    created_at: str
    updated_at: str


class ImportReport(msgspec.Struct, kw_only=True):
    accepted: int
    rejected: list[dict[str, Any]]
    item_ids: list[str]


# -- event payloads ------------------------------------------------------------------------


class ItemCreated(msgspec.Struct, kw_only=True):
    item_id: str
    title: str
    status: str


class ItemUpdated(msgspec.Struct, kw_only=True):
    item_id: str
    changes: dict[str, dict[str, Any]]
    """Field name -> {"from": old, "to": new}."""
    version: int


class ItemTransitioned(msgspec.Struct, kw_only=True):
    item_id: str
    from_status: str
    to_status: str
    version: int


class ItemCommented(msgspec.Struct, kw_only=True):
    item_id: str
    comment_id: str
