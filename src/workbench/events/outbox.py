"""Writing events to the outbox in the same transaction as the change they describe."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import apsw
import msgspec

from workbench.db.connection import rows
from workbench.events.envelope import Event

_json = msgspec.json.Encoder()
_pending = threading.local()


def take_pending() -> set[str]:
    """Workspaces this thread emitted events for since the last call (after a commit)."""
    pending: set[str] = getattr(_pending, "workspaces", set())
    _pending.workspaces = set()
    return pending


def emit(conn: apsw.Connection, event: Event) -> Event:
    """Insert ``event`` into the outbox. ``conn`` must be inside the change's transaction, so
    a rolled-back change leaves no event and a committed one always has its event."""
    if not conn.in_transaction:
        raise RuntimeError("emit() needs the write transaction of the change it describes")
    conn.execute(
        "INSERT INTO outbox (event_id, event_type, version, workspace_id, correlation_id,"
        " causation_id, actor, occurred_at, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            event.event_id,
            event.event_type,
            event.version,
            event.workspace_id,
            event.correlation_id,
            event.causation_id,
            event.actor,
            event.occurred_at,
            _json.encode(event.payload).decode(),
        ),
    )
    if not hasattr(_pending, "workspaces"):
        _pending.workspaces = set()
    _pending.workspaces.add(event.workspace_id)
    return event


def row_to_event(row: dict[str, object]) -> Event:
    data = dict(row)
    data.pop("seq", None)
    data["payload"] = msgspec.json.decode(str(data["payload"]))
    return msgspec.convert(data, Event)


def read_after(
    conn: apsw.Connection, after_seq: int, limit: int = 100
) -> Iterator[tuple[int, Event]]:
    """Outbox events with a sequence number above ``after_seq``, oldest first."""
    for row in rows(
        conn, "SELECT * FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?", (after_seq, limit)
    ):
        yield int(row["seq"]), row_to_event(row)
