"""Handing outbox events to subscribers: at least once, and applied once per subscriber.

Each subscriber has a cursor (the last outbox sequence it is done with) and a delivery record
per event. A transactional subscriber runs inside the same write transaction that records the
delivery and moves its cursor, so a crash half-way undoes its effects and its record together:
the event comes again and is applied once. A subscriber with outside effects (an HTTP call)
runs outside the transaction and gets the event id as its idempotency key.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import apsw

from workbench.clock import Clock, SystemClock, isoformat
from workbench.db.connection import one, scalar
from workbench.db.database import Database
from workbench.events.envelope import Event
from workbench.events.outbox import read_after

log = logging.getLogger(__name__)


@runtime_checkable
class Subscriber(Protocol):
    """Receives events. ``event_types`` empty means every type."""

    name: str
    event_types: frozenset[str]
    transactional: bool

    def handle(self, event: Event, conn: apsw.Connection | None) -> None:
        """Apply one event. ``conn`` is the workspace write connection for a transactional
        subscriber (its writes commit with the delivery record), else None."""


@dataclass
class DispatchReport:
    delivered: int = 0
    skipped: int = 0
    failed: int = 0
    dead: int = 0
    errors: list[str] = field(default_factory=list)


class Dispatcher:
    def __init__(
        self,
        subscribers: Sequence[Subscriber],
        *,
        max_attempts: int = 5,
        batch_size: int = 200,
        clock: Clock | None = None,
    ) -> None:
        names = [s.name for s in subscribers]
        if len(names) != len(set(names)):
            raise ValueError(f"subscriber names must be unique: {names}")
        self.subscribers = list(subscribers)
        self.max_attempts = max_attempts
        self.batch_size = batch_size
        self.clock = clock or SystemClock()
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    def pending(self, db: Database) -> bool:
        """Whether any subscriber is behind the outbox of this workspace file."""
        with db.read() as conn:
            return self.behind(conn)

    def behind(self, conn: apsw.Connection) -> bool:
        top = scalar(conn, "SELECT coalesce(max(seq), 0) FROM outbox")
        for sub in self.subscribers:
            cursor = scalar(
                conn, "SELECT last_seq FROM subscriber_cursors WHERE subscriber = ?", (sub.name,)
            )
            if (cursor or 0) < top:
                return True
        return False

    def dispatch(self, db: Database) -> DispatchReport:
        """Deliver everything pending in one workspace file to every subscriber.

        One dispatch per file at a time in this process, so events stay in order and a
        subscriber with outside effects is not called twice for one event by two threads.
        """
        report = DispatchReport()
        with self._lock_for(db.path):
            for sub in self.subscribers:
                self._drain(db, sub, report)
        return report

    def _lock_for(self, path: Path) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(str(path), threading.Lock())

    def _drain(self, db: Database, sub: Subscriber, report: DispatchReport) -> None:
        while True:
            with db.read() as conn:
                cursor = (
                    scalar(
                        conn,
                        "SELECT last_seq FROM subscriber_cursors WHERE subscriber = ?",
                        (sub.name,),
                    )
                    or 0
                )
                batch = list(read_after(conn, cursor, self.batch_size))
            if not batch:
                return
            for seq, event in batch:
                if not self._deliver(db, sub, seq, event, report):
                    return  # keep order: a failing event holds back this subscriber's later ones
            if len(batch) < self.batch_size:
                return

    def _deliver(
        self, db: Database, sub: Subscriber, seq: int, event: Event, report: DispatchReport
    ) -> bool:
        if sub.event_types and event.event_type not in sub.event_types:
            with db.write() as conn:
                _advance(conn, sub.name, seq)
            report.skipped += 1
            return True
        with db.read() as conn:
            record = one(
                conn,
                "SELECT status, attempts FROM event_deliveries WHERE subscriber = ? AND event_id = ?",
                (sub.name, event.event_id),
            )
        if record and record["status"] in ("applied", "dead"):
            with db.write() as conn:
                _advance(conn, sub.name, seq)
            report.skipped += 1
            return True
        attempts = (record["attempts"] if record else 0) + 1
        try:
            if sub.transactional:
                with db.write() as conn:
                    # Checked again under the write lock: another dispatcher (a second
                    # process) may have applied it since the read above.
                    if _status(conn, sub.name, event.event_id) in ("applied", "dead"):
                        _advance(conn, sub.name, seq)
                        report.skipped += 1
                        return True
                    sub.handle(event, conn)
                    self._record(conn, sub.name, event.event_id, "applied", attempts, None)
                    _advance(conn, sub.name, seq)
            else:
                sub.handle(event, None)
                with db.write() as conn:
                    self._record(conn, sub.name, event.event_id, "applied", attempts, None)
                    _advance(conn, sub.name, seq)
            report.delivered += 1
            return True
        except Exception as exc:  # a subscriber's failure must not stop the others
            message = f"{type(exc).__name__}: {exc}"[:1000]
            dead = attempts >= self.max_attempts
            with db.write() as conn:
                self._record(
                    conn, sub.name, event.event_id, "dead" if dead else "failed", attempts, message
                )
                if dead:
                    _advance(conn, sub.name, seq)
            log.warning(
                "subscriber failed",
                extra={
                    "subscriber": sub.name,
                    "event_id": event.event_id,
                    "attempt": attempts,
                    "dead": dead,
                    "error": message,
                },
            )
            report.errors.append(f"{sub.name} {event.event_id}: {message}")
            if dead:
                report.dead += 1
                return True
            report.failed += 1
            return False

    def _record(
        self,
        conn: apsw.Connection,
        subscriber: str,
        event_id: str,
        status: str,
        attempts: int,
        error: str | None,
    ) -> None:
        conn.execute(
            "INSERT INTO event_deliveries (subscriber, event_id, status, attempts, last_error,"
            " updated_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (subscriber, event_id) DO UPDATE"
            " SET status = excluded.status, attempts = excluded.attempts,"
            " last_error = excluded.last_error, updated_at = excluded.updated_at",
            (subscriber, event_id, status, attempts, error, isoformat(self.clock.now())),
        )


def _status(conn: apsw.Connection, subscriber: str, event_id: str) -> str | None:
    status: str | None = scalar(
        conn,
        "SELECT status FROM event_deliveries WHERE subscriber = ? AND event_id = ?",
        (subscriber, event_id),
    )
    return status


def _advance(conn: apsw.Connection, subscriber: str, seq: int) -> None:
    conn.execute(
        "INSERT INTO subscriber_cursors (subscriber, last_seq) VALUES (?, ?)"
        " ON CONFLICT (subscriber) DO UPDATE SET last_seq = max(last_seq, excluded.last_seq)",
        (subscriber, seq),
    )


def replay_dead(db: Database, subscriber: str, event_ids: Iterable[str] | None = None) -> int:
    """Put dead deliveries back in line: they are retried on the next dispatch."""
    with db.write() as conn:
        where = "subscriber = ? AND status = 'dead'"
        params: list[object] = [subscriber]
        ids = list(event_ids or [])
        if ids:
            where += f" AND event_id IN ({','.join('?' * len(ids))})"
            params.extend(ids)
        first = scalar(
            conn,
            f"SELECT min(o.seq) FROM event_deliveries d JOIN outbox o USING (event_id) WHERE {where}",
            params,
        )
        if first is None:
            return 0
        conn.execute(
            f"UPDATE event_deliveries SET status = 'failed', attempts = 0 WHERE {where}", params
        )
        count = conn.changes()
        conn.execute(
            "UPDATE subscriber_cursors SET last_seq = min(last_seq, ?) WHERE subscriber = ?",
            (first - 1, subscriber),
        )
        return int(count)
