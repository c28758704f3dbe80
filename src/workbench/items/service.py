"""The rules for work items: lifecycle, optimistic concurrency, idempotent creates, custom
fields, the activity timeline (every change is an outbox event and a timeline entry, written
in the change's own transaction) and saved views."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta
from typing import Annotated, Any, Literal

import apsw
import msgspec
from msgspec import UNSET

from workbench import cursors
from workbench.auth.permissions import has_permission
from workbench.clock import isoformat
from workbench.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    PreconditionFailed,
    PreconditionRequired,
    Unprocessable,
)
from workbench.events.outbox import emit
from workbench.ids import new_id
from workbench.items import store
from workbench.items.models import (
    PRIORITIES,
    TRANSITIONS,
    Comment,
    CommentCreate,
    FieldDef,
    Item,
    ItemCommented,
    ItemCreate,
    ItemCreated,
    ItemPage,
    ItemPatch,
    ItemQuery,
    ItemTransitioned,
    ItemUpdated,
    View,
    ViewCreate,
    ViewPatch,
)
from workbench.logs import correlation_id
from workbench.runtime import Runtime
from workbench.workspaces import store as workspace_store

IDEMPOTENCY_TTL = timedelta(hours=24)
MAX_PAGE = 200
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?Z?)?")
_FTS_TOKEN = re.compile(r"\w+", re.UNICODE)


class Items:
    """Work-item operations in one workspace, on behalf of one person."""

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

    # -- create --------------------------------------------------------------------------

    def create(self, data: ItemCreate, *, idempotency_key: str | None = None) -> tuple[Item, bool]:
        """Create an item. With an idempotency key, a repeat of the same request returns the
        first item (and ``True`` for "replayed"); the same key with another body is a 422."""
        self._check_assignee(data.assignee)
        request_hash = hashlib.sha256(msgspec.json.encode(data, order="sorted")).hexdigest()
        scope = self.actor or "anonymous"
        with self.db.write() as conn:
            if idempotency_key is not None:
                stored = store.find_idempotent(conn, scope, idempotency_key)
                cutoff = isoformat(self.runtime.clock.now() - IDEMPOTENCY_TTL)
                if stored is not None and stored["created_at"] >= cutoff:
                    if stored["request_hash"] != request_hash:
                        raise Unprocessable(
                            "this Idempotency-Key was already used with a different body"
                        )
                    return msgspec.json.decode(stored["response"], type=Item), True
                store.purge_idempotent(conn, cutoff)
            item = self._insert(conn, data)
            if idempotency_key is not None:
                store.save_idempotent(
                    conn,
                    scope,
                    idempotency_key,
                    request_hash,
                    201,
                    msgspec.json.encode(item).decode(),
                    self._now(),
                )
        return item, False

    def _insert(self, conn: apsw.Connection, data: ItemCreate) -> Item:
        fields = self._checked_fields(conn, data.fields, creating=True)
        now = self._now()
        item = Item(
            id=new_id("itm"),
            title=data.title.strip() or data.title,
            body=data.body,
            status="open",
            priority=data.priority,
            assignee=data.assignee,
            labels=sorted(set(data.labels)),
            due_at=data.due_at,
            fields=fields,
            created_by=self.actor,
            created_at=now,
            updated_at=now,
            version=1,
        )
        store.insert_item(conn, self.workspace_id, item)
        self._record(
            conn,
            item.id,
            "created",
            "item.created",
            ItemCreated(item_id=item.id, title=item.title, status=item.status),
            {"title": item.title},
        )
        return item

    def import_rows(
        self, records: list[tuple[int, dict[str, Any]]]
    ) -> tuple[list[str], list[dict[str, Any]]]:
        """Create every valid record in one transaction; report the others with the reason."""
        accepted: list[str] = []
        rejected: list[dict[str, Any]] = []
        with self.db.write() as conn:  # one transaction for the batch, a savepoint per row
            defs = {d.name: d for d in store.field_defs(conn)}
            for line, record in records:
                try:
                    if isinstance(record.get("fields"), dict):
                        record = {**record, "fields": _typed_fields(defs, record["fields"])}
                    data = msgspec.convert(record, ItemCreate, strict=False)
                    self._check_assignee(data.assignee)
                    with self.db.write() as row_conn:  # a savepoint: a bad row leaves nothing
                        accepted.append(self._insert(row_conn, data).id)
                except (msgspec.ValidationError, Unprocessable, BadRequest) as exc:
                    rejected.append({"line": line, "reason": str(exc)})
        return accepted, rejected

    # -- read ----------------------------------------------------------------------------

    def get(self, item_id: str) -> Item:
        with self.db.read() as conn:
            found = store.get_item(conn, item_id)
        if found is None:
            raise NotFound("item not found")
        return found[1]

    def list_items(
        self, query: ItemQuery, *, cursor: str | None = None, limit: int = 50
    ) -> ItemPage:
        if not 1 <= limit <= MAX_PAGE:
            raise BadRequest(f"limit must be between 1 and {MAX_PAGE}")
        fingerprint = _query_fingerprint(query)
        after, shape = _decode_cursor(cursor, fingerprint) if cursor else (None, None)
        list_query = self._to_list_query(query, limit, after)
        with self.db.read() as conn:
            try:
                items, sort_value, seq, shape = store.list_items(conn, list_query, shape)
            except apsw.SQLError as exc:  # an FTS expression SQLite could not parse
                raise BadRequest(f"invalid search: {exc}") from None
        next_cursor = None if seq is None else _encode_cursor(fingerprint, sort_value, seq, shape)
        return ItemPage(items=items, next_cursor=next_cursor)

    def statement(
        self, query: ItemQuery, *, cursor: str | None = None, limit: int = 50
    ) -> tuple[str, list[Any]]:
        """The SQL and parameters ``list_items`` runs for this query (for EXPLAIN QUERY PLAN
        and for benchmarks that run the same statement on a bare connection)."""
        fingerprint = _query_fingerprint(query)
        after, shape = _decode_cursor(cursor, fingerprint) if cursor else (None, None)
        list_query = self._to_list_query(query, limit, after)
        if shape is None:
            with self.db.read() as conn:
                shape = store.choose_shape(conn, list_query)
        sql, params = store.list_sql(list_query, shape)
        params[-1] = limit + 1
        return sql, params

    def _to_list_query(
        self, query: ItemQuery, limit: int, after: tuple[Any, int] | None
    ) -> store.ListQuery:
        for bound in (query.due_after, query.due_before):
            if bound is not None and not _TIMESTAMP.fullmatch(bound):
                raise BadRequest(f"not a date or timestamp: {bound!r}")
        if len(query.priority) > 1:
            raise BadRequest("filter by one priority at a time")
        return store.ListQuery(
            statuses=tuple(dict.fromkeys(query.status)),
            assignee=query.assignee,
            label=query.label,
            priority=PRIORITIES.index(query.priority[0]) if query.priority else None,
            due_after=query.due_after,
            due_before=query.due_before,
            fts=_fts_expression(query.q) if query.q else None,
            include_archived=query.include_archived,
            sort=query.sort,
            descending=query.direction == "desc",
            after=after,
            limit=limit,
        )

    # -- update and lifecycle ------------------------------------------------------------

    def update(self, item_id: str, patch: ItemPatch, *, expected_version: int | None) -> Item:
        expected = resolve_expected_version(expected_version, patch.version)
        if patch.assignee is not UNSET:
            self._check_assignee(patch.assignee)
        with self.db.write() as conn:
            seq, current = self._locked(conn, item_id, expected)
            changes: dict[str, dict[str, Any]] = {}
            values = msgspec.structs.asdict(current)
            for name in ("title", "body", "priority", "assignee", "labels", "due_at", "fields"):
                new = getattr(patch, name)
                if new is UNSET:
                    continue
                if name == "labels":
                    new = sorted(set(new))
                if name == "fields":
                    new = self._checked_fields(conn, {**current.fields, **new}, creating=False)
                if new != values[name]:
                    changes[name] = {"from": values[name], "to": new}
                    values[name] = new
            if not changes:
                return current
            values.update(updated_at=self._now(), version=current.version + 1)
            updated = Item(**values)
            store.update_item(conn, seq, updated)
            if "labels" in changes:
                store.set_labels(conn, seq, updated.labels)
            self._record(
                conn,
                item_id,
                "edited",
                "item.updated",
                ItemUpdated(item_id=item_id, changes=changes, version=updated.version),
                {"changes": changes},
            )
        return updated

    def transition(self, item_id: str, to: str, *, expected_version: int | None) -> Item:
        with self.db.write() as conn:
            seq, current = self._locked(conn, item_id, expected_version, required=False)
            allowed = TRANSITIONS[current.status]
            if to not in allowed:
                raise Conflict(
                    f"cannot move an item from {current.status} to {to}; "
                    f"allowed: {', '.join(allowed)}",
                    current_status=current.status,
                    allowed=list(allowed),
                )
            updated = msgspec.structs.replace(
                current, status=to, updated_at=self._now(), version=current.version + 1
            )
            store.update_item(conn, seq, updated)
            kind = (
                "archived"
                if to == "archived"
                else (
                    "reopened"
                    if to == "open" and current.status in ("done", "archived")
                    else "transitioned"
                )
            )
            self._record(
                conn,
                item_id,
                kind,
                "item.transitioned",
                ItemTransitioned(
                    item_id=item_id,
                    from_status=current.status,
                    to_status=to,
                    version=updated.version,
                ),
                {"from": current.status, "to": to},
            )
        return updated

    def _locked(
        self, conn: apsw.Connection, item_id: str, expected: int | None, *, required: bool = True
    ) -> tuple[int, Item]:
        """The current row inside the write transaction, checked against the caller's version."""
        found = store.get_item(conn, item_id)
        if found is None:
            raise NotFound("item not found")
        seq, current = found
        if expected is None and required:
            raise PreconditionRequired(
                "send the version you are changing: If-Match with the ETag, or 'version'",
                current_version=current.version,
            )
        if expected is not None and expected != current.version:
            raise PreconditionFailed(
                f"the item is at version {current.version}, not {expected}; "
                "fetch it again and re-apply your change",
                current_version=current.version,
                current=msgspec.to_builtins(current),
            )
        return seq, current

    # -- comments and timeline -----------------------------------------------------------

    def comment(self, item_id: str, data: CommentCreate) -> Comment:
        with self.db.write() as conn:
            if store.get_item(conn, item_id) is None:
                raise NotFound("item not found")
            comment = Comment(
                id=new_id("cmt"),
                item_id=item_id,
                author=self.actor,
                body=data.body,
                created_at=self._now(),
            )
            store.insert_comment(conn, self.workspace_id, comment)
            self._record(
                conn,
                item_id,
                "commented",
                "item.commented",
                ItemCommented(item_id=item_id, comment_id=comment.id),
                {"comment_id": comment.id},
            )
        return comment

    def comments(self, item_id: str, after: int = 0, limit: int = 100) -> list[Comment]:
        self.get(item_id)
        with self.db.read() as conn:
            return store.list_comments(conn, item_id, after, min(limit, MAX_PAGE))

    def timeline(self, item_id: str, after: int = 0, limit: int = 100) -> list[Any]:
        self.get(item_id)
        with self.db.read() as conn:
            return store.timeline(conn, item_id, after, min(limit, MAX_PAGE))

    def _record(
        self,
        conn: apsw.Connection,
        item_id: str,
        kind: str,
        event_type: str,
        payload: msgspec.Struct,
        data: dict[str, Any],
    ) -> None:
        cid = correlation_id.get()
        event = self.runtime.events.build(
            event_type,
            workspace_id=self.workspace_id,
            payload=payload,
            correlation_id=cid,
            actor=self.actor,
            clock=self.runtime.clock,
        )
        emit(conn, event)
        store.insert_activity(
            conn,
            self.workspace_id,
            item_id,
            kind,
            self.actor,
            cid,
            event.event_id,
            data,
            event.occurred_at,
        )

    # -- custom fields -------------------------------------------------------------------

    def field_schema(self) -> list[FieldDef]:
        with self.db.read() as conn:
            return store.field_defs(conn)

    def set_field_schema(self, defs: list[FieldDef]) -> list[FieldDef]:
        names = [d.name for d in defs]
        if len(names) != len(set(names)):
            raise Unprocessable("field names must be unique")
        for d in defs:
            if d.type == "select" and not d.options:
                raise Unprocessable(f"select field {d.name!r} needs options")
        with self.db.write() as conn:
            store.replace_field_defs(conn, self.workspace_id, defs)
        return defs

    def _checked_fields(
        self, conn: apsw.Connection, fields: dict[str, Any], *, creating: bool
    ) -> dict[str, Any]:
        defs = {d.name: d for d in store.field_defs(conn)}
        for name, value in fields.items():
            spec = defs.get(name)
            if spec is None:
                raise Unprocessable(f"unknown custom field {name!r}", known_fields=sorted(defs))
            if value is not None and not _field_value_ok(spec, value):
                raise Unprocessable(
                    f"custom field {name!r} expects {spec.type}"
                    + (f" (one of {', '.join(spec.options)})" if spec.type == "select" else "")
                )
        missing = [n for n, d in defs.items() if d.required and fields.get(n) is None]
        if missing and creating:
            raise Unprocessable(f"required custom fields missing: {', '.join(missing)}")
        return {k: v for k, v in fields.items() if v is not None}

    def _check_assignee(self, assignee: str | None) -> None:
        if assignee is None:
            return
        with self.runtime.storage.control.read() as conn:
            if workspace_store.membership(conn, self.workspace_id, assignee) is None:
                raise Unprocessable(f"assignee {assignee!r} is not a member of this workspace")

    # -- saved views ---------------------------------------------------------------------

    def create_view(self, data: ViewCreate) -> View:
        if data.shared:
            self._require_share()
        now = self._now()
        view = View(
            id=new_id("view"),
            name=data.name,
            owner_id=self._actor(),
            shared=data.shared,
            query=data.query,
            created_at=now,
            updated_at=now,
        )
        with self.db.write() as conn:
            store.insert_view(conn, self.workspace_id, _view_row(view))
        return view

    def views(self) -> list[View]:
        with self.db.read() as conn:
            return [_row_view(r) for r in store.visible_views(conn, self._actor())]

    def get_view(self, view_id: str) -> View:
        with self.db.read() as conn:
            row = store.get_view(conn, view_id)
        if row is None or (not row["shared"] and row["owner_id"] != self.actor):
            raise NotFound("view not found")
        return _row_view(row)

    def update_view(self, view_id: str, patch: ViewPatch) -> View:
        view = self._own_or_shareable(view_id)
        if patch.shared is not UNSET and patch.shared != view.shared:
            self._require_share()
        changes = {k: v for k, v in msgspec.structs.asdict(patch).items() if v is not UNSET}
        updated = msgspec.structs.replace(view, **changes, updated_at=self._now())
        with self.db.write() as conn:
            store.update_view(conn, _view_row(updated))
        return updated

    def delete_view(self, view_id: str) -> None:
        self._own_or_shareable(view_id)
        with self.db.write() as conn:
            store.delete_view(conn, view_id)

    def _own_or_shareable(self, view_id: str) -> View:
        view = self.get_view(view_id)
        if view.owner_id != self.actor:
            self._require_share()  # a shared view is changed by those who may share
        return view

    def _require_share(self) -> None:
        if not has_permission(self.role, "views.share"):
            raise Forbidden("sharing views with the workspace needs the views.share permission")

    def _actor(self) -> str:
        if self.actor is None:
            raise Forbidden("saved views belong to a person")
        return self.actor


# -- helpers ------------------------------------------------------------------------------


def resolve_expected_version(header: int | None, body: int | Any) -> int | None:
    """The version a change expects, from ``If-Match`` and/or a ``version`` in the body."""
    if header is not None and body is not UNSET and header != body:
        raise BadRequest("If-Match and 'version' disagree")
    if header is not None:
        return header
    return None if body is UNSET else int(body)


def _typed_fields(defs: dict[str, FieldDef], fields: dict[str, Any]) -> dict[str, Any]:
    """Text from an import (CSV has nothing else) read as its field's type: "3" for a number
    field is 3, "true" for a boolean is True; a text or select field keeps "12345" as text."""
    out = dict(fields)
    for name, value in fields.items():
        spec = defs.get(name)
        if spec is None or not isinstance(value, str):
            continue
        if spec.type == "number":
            for kind in (int, float):
                try:
                    out[name] = kind(value)
                    break
                except ValueError:
                    continue
        elif spec.type == "boolean" and value.strip().lower() in ("true", "false"):
            out[name] = value.strip().lower() == "true"
    return out


def _field_value_ok(spec: FieldDef, value: Any) -> bool:
    if spec.type == "text":
        return isinstance(value, str) and len(value) <= 10_000
    if spec.type == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if spec.type == "boolean":
        return isinstance(value, bool)
    if spec.type == "date":
        return isinstance(value, str) and bool(_TIMESTAMP.fullmatch(value))
    return value in spec.options


def _fts_expression(text: str) -> str | None:
    """User text to a safe FTS5 query: every word quoted (AND), the last one as a prefix."""
    tokens = _FTS_TOKEN.findall(text)[:20]
    if not tokens:
        raise BadRequest("the search text has no words")
    quoted = [f'"{t}"' for t in tokens]
    quoted[-1] += "*"
    return " ".join(quoted)


def _query_fingerprint(query: ItemQuery) -> str:
    return hashlib.sha256(msgspec.json.encode(query, order="sorted")).hexdigest()[:16]


_CursorData = tuple[
    str,
    str | int | None,
    Annotated[int, msgspec.Meta(ge=0, le=2**62)],
    Literal["drive", "in", "exists"],
    bool,
]


def _encode_cursor(fingerprint: str, value: Any, seq: int, shape: store.Shape) -> str:
    """Opaque to clients: the filter's fingerprint, the keyset position, and the query shape
    the first page chose (so later pages skip the selectivity probe)."""
    return cursors.encode([fingerprint, value, seq, shape.label, shape.wide_due_range])


def _decode_cursor(cursor: str, fingerprint: str) -> tuple[tuple[Any, int], store.Shape]:
    seen, value, seq, label, wide = cursors.decode(cursor, _CursorData)
    if seen != fingerprint:
        raise BadRequest("this cursor belongs to a different filter or sort")
    return (value, seq), store.Shape(label=label, wide_due_range=wide)


def _view_row(view: View) -> dict[str, Any]:
    return {
        "id": view.id,
        "name": view.name,
        "owner_id": view.owner_id,
        "shared": int(view.shared),
        "query": msgspec.json.encode(view.query).decode(),
        "created_at": view.created_at,
        "updated_at": view.updated_at,
    }


def _row_view(row: dict[str, Any]) -> View:
    return View(
        id=row["id"],
        name=row["name"],
        owner_id=row["owner_id"],
        shared=bool(row["shared"]),
        query=msgspec.json.decode(row["query"], type=ItemQuery),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )
