"""SQL for work items, their labels, comments, activity, field schema, views and
idempotency keys. Nothing here checks permissions or rules."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import apsw
import msgspec

from workbench.db.connection import one, rows, scalar
from workbench.items.models import PRIORITIES, ActivityEntry, Comment, FieldDef, Item

_json = msgspec.json.Encoder()
_ITEM_COLUMNS = (
    "seq, id, title, body, status, priority, assignee, labels, due_at, fields, created_by,"
    " created_at, updated_at, version"
)
_QUALIFIED_COLUMNS = ", ".join(f"items.{c.strip()}" for c in _ITEM_COLUMNS.split(","))
SORT_COLUMNS: dict[str, str | None] = {
    "created": None,
    "updated": "updated_at",
    "due": "due_key",
    "priority": "priority",
}
"""Sort name -> column; ``seq`` (creation order) is always the tie-breaker."""
NO_DUE_DATE = "~"
"""The sort key of an item without a due date (see ``due_key`` in the migration)."""


def dumps(value: Any) -> str:
    return _json.encode(value).decode()


def insert_item(conn: apsw.Connection, workspace_id: str, item: Item) -> int:
    conn.execute(
        "INSERT INTO items (id, workspace_id, title, body, status, priority, assignee, labels,"
        " due_at, fields, created_by, created_at, updated_at, version)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            item.id,
            workspace_id,
            item.title,
            item.body,
            item.status,
            PRIORITIES.index(item.priority),
            item.assignee,
            dumps(item.labels),
            item.due_at,
            dumps(item.fields),
            item.created_by,
            item.created_at,
            item.updated_at,
            item.version,
        ),
    )
    seq = conn.last_insert_rowid()
    set_labels(conn, seq, item.labels)
    return seq


def set_labels(conn: apsw.Connection, seq: int, labels: Sequence[str]) -> None:
    conn.execute("DELETE FROM item_labels WHERE item_seq = ?", (seq,))
    conn.executemany(
        "INSERT OR IGNORE INTO item_labels (label, item_seq) VALUES (?, ?)",
        [(label, seq) for label in labels],
    )


def get_item(conn: apsw.Connection, item_id: str) -> tuple[int, Item] | None:
    """The item and its internal sequence number, or None."""
    row = conn.execute(f"SELECT {_ITEM_COLUMNS} FROM items WHERE id = ?", (item_id,)).fetchone()
    return None if row is None else (row[0], tuple_to_item(row))


def update_item(conn: apsw.Connection, seq: int, item: Item) -> None:
    conn.execute(
        "UPDATE items SET title = ?, body = ?, status = ?, priority = ?, assignee = ?,"
        " labels = ?, due_at = ?, fields = ?, updated_at = ?, version = ? WHERE seq = ?",
        (
            item.title,
            item.body,
            item.status,
            PRIORITIES.index(item.priority),
            item.assignee,
            dumps(item.labels),
            item.due_at,
            dumps(item.fields),
            item.updated_at,
            item.version,
            seq,
        ),
    )


@dataclass(frozen=True)
class ListQuery:
    """A list query already checked by the service: every value is a plain SQL value."""

    statuses: tuple[str, ...] = ()
    assignee: str | None = None
    label: str | None = None
    priority: int | None = None
    due_after: str | None = None
    due_before: str | None = None
    fts: str | None = None
    include_archived: bool = False
    sort: str = "created"
    descending: bool = True
    after: tuple[Any, int] | None = None
    """Keyset position: (sort value, seq) of the last row of the previous page."""
    limit: int = 50


LABEL_FEW = 200
"""A label on fewer items than this drives the query from its label rows (then sorts them)."""
LABEL_MANY = 1000
"""A label on at least this many items is checked row by row while walking the sort index."""
RANGE_WIDE = 1000
"""A due range with at least this many items is filtered while walking the sort index."""


@dataclass(frozen=True)
class Shape:
    """How to run one list query, chosen from how many rows its filters match: the cheapest
    plan for a rare label (start from the label) and for a common one (walk the sort index)
    differ by 50x, and SQLite has no statistics to tell them apart, nor should it (ANALYZE
    made several cases slower: docs/benchmarks.md)."""

    label: Literal["drive", "in", "exists"] = "in"
    wide_due_range: bool = False


def choose_shape(conn: apsw.Connection, query: ListQuery) -> Shape:
    label: Literal["drive", "in", "exists"] = "in"
    wide = False
    if query.label is not None:
        n = _bounded_count(
            conn, "SELECT 1 FROM item_labels WHERE label = ?", [query.label], LABEL_MANY
        )
        label = "drive" if n < LABEL_FEW else ("exists" if n >= LABEL_MANY else "in")
    if _has_due_range(query) and query.sort != "due":
        n = _bounded_count(
            conn,
            "SELECT 1 FROM items WHERE archived = 0 AND due_key >= ? AND due_key < ?",
            _due_bounds(query),
            RANGE_WIDE,
        )
        wide = n >= RANGE_WIDE
    return Shape(label=label, wide_due_range=wide)


def _bounded_count(conn: apsw.Connection, inner: str, params: list[Any], cap: int) -> int:
    """How many rows ``inner`` yields, counting no further than ``cap``."""
    return int(scalar(conn, f"SELECT count(*) FROM ({inner} LIMIT {int(cap)})", params))


def _has_due_range(query: ListQuery) -> bool:
    return query.due_after is not None or query.due_before is not None


def _due_bounds(query: ListQuery) -> list[Any]:
    # items without a due date have due_key '~', above every date: a range excludes them
    return [query.due_after or "", query.due_before or NO_DUE_DATE]


def list_sql(query: ListQuery, shape: Shape = Shape()) -> tuple[str, list[Any]]:
    """Build the list query. Each filter is an equality prefix of one index (see the
    migration), so SQLite walks that index in order and stops after ``limit`` rows; ``shape``
    says how to treat the filters whose cost depends on how many rows they match."""
    where: list[str] = []
    params: list[Any] = []
    sources = "items"
    column = SORT_COLUMNS[query.sort]
    if query.statuses:
        where.append(f"items.status IN ({','.join('?' * len(query.statuses))})")
        params.extend(query.statuses)
    elif not query.include_archived:
        where.append("items.archived = 0")
    if query.assignee is not None:
        where.append("items.assignee = ?")
        params.append(query.assignee)
    if query.priority is not None:
        where.append("items.priority = ?")
        params.append(query.priority)
    if _has_due_range(query):
        # a wide range is checked row by row ('+' keeps SQLite off the due index)
        plus = "+" if shape.wide_due_range else ""
        where.append(f"{plus}items.due_key >= ? AND {plus}items.due_key < ?")
        params.extend(_due_bounds(query))
    if query.label is not None:
        if shape.label == "drive":
            sources = "item_labels CROSS JOIN items ON items.seq = item_labels.item_seq"
            where.insert(0, "item_labels.label = ?")
            params.insert(0, query.label)
        elif shape.label == "exists":
            where.append(
                "EXISTS (SELECT 1 FROM item_labels WHERE item_labels.label = ?"
                " AND item_labels.item_seq = items.seq)"
            )
            params.append(query.label)
        else:
            where.append("items.seq IN (SELECT item_seq FROM item_labels WHERE label = ?)")
            params.append(query.label)
    if query.fts is not None:
        if column is None and sources == "items":
            # creation order is the FTS rowid order: walk the matches newest (or oldest)
            # first and stop after a page, instead of collecting every match
            sources = "items_fts CROSS JOIN items ON items.seq = items_fts.rowid"
            where.insert(0, "items_fts MATCH ?")
            params.insert(0, query.fts)
        else:
            where.append("+items.seq IN (SELECT rowid FROM items_fts WHERE items_fts MATCH ?)")
            params.append(query.fts)
    op = "<" if query.descending else ">"
    direction = "DESC" if query.descending else "ASC"
    seq = "items_fts.rowid" if sources.startswith("items_fts") else "items.seq"
    if query.after is not None:
        value, after_seq = query.after
        if column is None:
            where.append(f"{seq} {op} ?")
            params.append(after_seq)
        else:
            where.append(f"(items.{column}, items.seq) {op} (?, ?)")
            params.extend([value, after_seq])
    order = (
        f"{seq} {direction}"
        if column is None
        else f"items.{column} {direction}, items.seq {direction}"
    )
    sql = (
        f"SELECT {_QUALIFIED_COLUMNS}, {'items.' + column if column else 'items.seq'}"
        f" AS sort_value FROM {sources}"
        f"{' WHERE ' + ' AND '.join(where) if where else ''} ORDER BY {order} LIMIT ?"
    )
    params.append(query.limit)
    return sql, params


def list_items(
    conn: apsw.Connection, query: ListQuery, shape: Shape | None = None
) -> tuple[list[Item], Any, int | None, Shape]:
    """One page of items; when another page follows, the (sort value, seq) of its last row
    for the next cursor; and the shape used (the next pages reuse it: no second probe)."""
    shape = shape or choose_shape(conn, query)
    sql, params = list_sql(query, shape)
    params[-1] = query.limit + 1  # one row more tells whether another page follows
    rows: list[tuple[Any, ...]] = conn.execute(sql, params).fetchall()
    if len(rows) <= query.limit:
        return [tuple_to_item(row) for row in rows], None, None, shape
    last = rows[query.limit - 1]
    return [tuple_to_item(row) for row in rows[: query.limit]], last[14], last[0], shape


_EMPTY_LIST, _EMPTY_OBJECT = "[]", "{}"
_decode_labels = msgspec.json.Decoder(list[str]).decode
_decode_fields = msgspec.json.Decoder(dict[str, Any]).decode


def tuple_to_item(row: tuple[Any, ...]) -> Item:
    """A list row (columns as in ``_ITEM_COLUMNS``) as an Item: the hot path of every list,
    so it reads by position and skips decoding the common empty JSON values."""
    labels, fields = row[7], row[9]
    return Item(
        id=row[1],
        title=row[2],
        body=row[3],
        status=row[4],
        priority=PRIORITIES[row[5]],
        assignee=row[6],
        labels=[] if labels == _EMPTY_LIST else _decode_labels(labels),
        due_at=row[8],
        fields={} if fields == _EMPTY_OBJECT else _decode_fields(fields),
        created_by=row[10],
        created_at=row[11],
        updated_at=row[12],
        version=row[13],
    )


# -- comments and activity -----------------------------------------------------------------


def insert_comment(conn: apsw.Connection, workspace_id: str, comment: Comment) -> None:
    conn.execute(
        "INSERT INTO item_comments (id, item_id, workspace_id, author, body, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (
            comment.id,
            comment.item_id,
            workspace_id,
            comment.author,
            comment.body,
            comment.created_at,
        ),
    )


def list_comments(conn: apsw.Connection, item_id: str, after: int, limit: int) -> list[Comment]:
    return [
        Comment(**{k: r[k] for k in ("id", "item_id", "author", "body", "created_at")})
        for r in rows(
            conn,
            "SELECT * FROM item_comments WHERE item_id = ? AND seq > ? ORDER BY seq LIMIT ?",
            (item_id, after, limit),
        )
    ]


def insert_activity(
    conn: apsw.Connection,
    workspace_id: str,
    item_id: str,
    kind: str,
    actor: str | None,
    correlation_id: str | None,
    event_id: str,
    data: dict[str, Any],
    created_at: str,
) -> None:
    conn.execute(
        "INSERT INTO item_activity (item_id, workspace_id, kind, actor, correlation_id,"
        " event_id, data, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (item_id, workspace_id, kind, actor, correlation_id, event_id, dumps(data), created_at),
    )


def timeline(conn: apsw.Connection, item_id: str, after: int, limit: int) -> list[ActivityEntry]:
    out = []
    for r in rows(
        conn,
        "SELECT id, item_id, kind, actor, correlation_id, event_id, data, created_at"
        " FROM item_activity WHERE item_id = ? AND id > ? ORDER BY id LIMIT ?",
        (item_id, after, limit),
    ):
        r["data"] = msgspec.json.decode(r["data"])
        out.append(ActivityEntry(**r))
    return out


# -- custom field schema -------------------------------------------------------------------


def field_defs(conn: apsw.Connection) -> list[FieldDef]:
    return [
        FieldDef(
            name=r["name"],
            type=r["type"],
            options=msgspec.json.decode(r["options"]),
            required=bool(r["required"]),
        )
        for r in rows(conn, "SELECT * FROM item_field_defs ORDER BY position")
    ]


def replace_field_defs(conn: apsw.Connection, workspace_id: str, defs: list[FieldDef]) -> None:
    conn.execute("DELETE FROM item_field_defs")
    conn.executemany(
        "INSERT INTO item_field_defs (name, workspace_id, type, options, required, position)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        [
            (d.name, workspace_id, d.type, dumps(d.options), int(d.required), i)
            for i, d in enumerate(defs)
        ],
    )


# -- saved views ---------------------------------------------------------------------------


def insert_view(conn: apsw.Connection, workspace_id: str, view: dict[str, Any]) -> None:
    conn.execute(
        "INSERT INTO saved_views (id, workspace_id, name, owner_id, shared, query, created_at,"
        " updated_at) VALUES (:id, :workspace_id, :name, :owner_id, :shared, :query,"
        " :created_at, :updated_at)",
        {**view, "workspace_id": workspace_id},
    )


def get_view(conn: apsw.Connection, view_id: str) -> dict[str, Any] | None:
    return one(conn, "SELECT * FROM saved_views WHERE id = ?", (view_id,))


def visible_views(conn: apsw.Connection, user_id: str) -> list[dict[str, Any]]:
    return list(
        rows(
            conn,
            "SELECT * FROM saved_views WHERE owner_id = ? UNION"
            " SELECT * FROM saved_views WHERE shared = 1 ORDER BY name, id",
            (user_id,),
        )
    )


def update_view(conn: apsw.Connection, view: dict[str, Any]) -> None:
    conn.execute(
        "UPDATE saved_views SET name = :name, shared = :shared, query = :query,"
        " updated_at = :updated_at WHERE id = :id",
        {k: view[k] for k in ("id", "name", "shared", "query", "updated_at")},
    )


def delete_view(conn: apsw.Connection, view_id: str) -> None:
    conn.execute("DELETE FROM saved_views WHERE id = ?", (view_id,))


# -- idempotency keys ----------------------------------------------------------------------


def find_idempotent(conn: apsw.Connection, scope: str, key: str) -> dict[str, Any] | None:
    return one(
        conn,
        "SELECT request_hash, status, response, created_at FROM idempotency_keys"
        " WHERE scope = ? AND key = ?",
        (scope, key),
    )


def save_idempotent(
    conn: apsw.Connection,
    scope: str,
    key: str,
    request_hash: str,
    status: int,
    response: str,
    created_at: str,
) -> None:
    conn.execute(
        "INSERT INTO idempotency_keys (scope, key, request_hash, status, response, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (scope, key, request_hash, status, response, created_at),
    )


def purge_idempotent(conn: apsw.Connection, before: str) -> int:
    conn.execute("DELETE FROM idempotency_keys WHERE created_at < ?", (before,))
    return conn.changes()
