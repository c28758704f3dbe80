"""Opening one apsw connection with the pragmas every Workbench file uses."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import apsw
import apsw.bestpractice
import sqlite_vec


@dataclass(frozen=True, slots=True)
class ConnectionOptions:
    busy_timeout_ms: int = 5000
    synchronous: str = "NORMAL"


def open_connection(
    path: Path | str,
    options: ConnectionOptions = ConnectionOptions(),
    *,
    query_only: bool = False,
    create: bool = True,
) -> apsw.Connection:
    """Open ``path`` with WAL, foreign keys, a busy timeout and sqlite-vec loaded.

    apsw is the only driver that opens Workbench files: two SQLite libraries in one process on
    the same file can break POSIX locking (sqlite.org/howtocorrupt.html, 2.2).
    """
    flags = apsw.SQLITE_OPEN_READWRITE
    if create:
        flags |= apsw.SQLITE_OPEN_CREATE
    conn = apsw.Connection(str(path), flags=flags | apsw.SQLITE_OPEN_URI)
    conn.set_busy_timeout(options.busy_timeout_ms)
    conn.enable_load_extension(True)
    conn.load_extension(sqlite_vec.loadable_path())
    conn.enable_load_extension(False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={_checked_synchronous(options.synchronous)}")
    conn.execute("PRAGMA foreign_keys=ON")
    if query_only:
        conn.execute("PRAGMA query_only=ON")
    return conn


def _checked_synchronous(value: str) -> str:
    if value not in {"NORMAL", "FULL"}:
        raise ValueError(f"synchronous must be NORMAL or FULL, not {value!r}")
    return value


def rows(conn: apsw.Connection, sql: str, params: Any = None) -> Iterator[dict[str, Any]]:
    """Run a query and yield each row as a dict keyed by column name."""
    cursor = conn.execute(sql, params)
    names: list[str] | None = None
    for row in cursor:
        if names is None:
            names = [d[0] for d in cursor.get_description()]
        yield dict(zip(names, row, strict=True))


def one(conn: apsw.Connection, sql: str, params: Any = None) -> dict[str, Any] | None:
    """The first row of a query as a dict, or None."""
    return next(rows(conn, sql, params), None)


def scalar(conn: apsw.Connection, sql: str, params: Any = None) -> Any:
    """The first column of the first row, or None."""
    row = conn.execute(sql, params).fetchone()
    return None if row is None else row[0]


def schema_snapshot(conn: apsw.Connection) -> list[tuple[str, str, str]]:
    """Every schema object (type, name, normalised SQL), for comparing two schemas."""
    return [
        (kind, name, " ".join((sql or "").split()))
        for kind, name, sql in conn.execute(
            "SELECT type, name, sql FROM sqlite_schema "
            "WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name"
        )
    ]


# apsw.bestpractice applies safety settings (e.g. double-quoted strings are errors, not
# literals) to every connection opened after this import.
apsw.bestpractice.apply(
    (
        apsw.bestpractice.connection_dqs,
        apsw.bestpractice.connection_recursive_triggers,
    )
)
