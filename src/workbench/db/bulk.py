"""Bulk inserts, file imports and table transforms with apswutils, on our own apsw connection.

apswutils is sqlite-utils' core API ported to apsw. Every function here takes the connection
that ``Database.write()`` (or ``read()``) yields, so only one SQLite library ever opens a
Workbench file, and every write joins the caller's transaction: it commits with it or rolls back
with it. apswutils never opens files of its own here and is imported nowhere else.

What apswutils would do wrong on our connections, and what this module does about it
(docs/adr/0002-sqlite-utils-via-apswutils.md has the evidence):

- Importing it registers apsw connection hooks for every connection opened afterwards in the
  process, one of which runs ``PRAGMA optimize`` (an ANALYZE, so a write) while a connection
  opens, with a 100 ms busy timeout: a reader opened during a long write transaction fails
  with ``BusyError``. Those hooks are removed right after the import.
- ``Database.table()`` is cached process-wide with no bound; the cache would keep every
  wrapper, its connection and the rows of its last insert alive. Tables are made uncached.
- ``Table.transform()`` always rebuilds the table (create new, copy, drop old, rename). It
  cannot turn foreign keys off inside a transaction, so dropping a parent table cascades into
  its children; it drops the table's triggers (tenant guards included); and it silently loses
  CHECK, UNIQUE, COLLATE, generated columns, AUTOINCREMENT, ON CONFLICT and expression
  defaults. ``transform()`` renames and drops columns with SQLite's own ALTER TABLE instead
  (which also rewrites triggers, views and indexes that name the column), rebuilds only for
  type/NOT NULL/default/order changes, refuses a rebuild of such tables, puts the triggers
  back afterwards and checks foreign keys.

Every write here runs in a savepoint of the caller's transaction, so a call that fails half-way
leaves nothing behind even if the caller catches the error and commits the rest.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import islice
from typing import IO, Any, Literal

import apsw
import apsw.bestpractice
from apswutils.db import Database as _ApswutilsDatabase
from apswutils.db import Table, View
from apswutils.utils import Format, rows_from_file

from workbench.db.connection import scalar

__all__ = [
    "BulkError",
    "NotInTransaction",
    "TransactionOwned",
    "TransformRefused",
    "import_file",
    "insert_rows",
    "query",
    "read_rows",
    "table",
    "transform",
]

FileFormat = Literal["csv", "tsv", "json", "nl"]
DEFAULT_BATCH_SIZE = 500


class BulkError(Exception):
    """A bulk operation cannot be done safely on this connection or table."""


class NotInTransaction(BulkError):
    """A bulk write was called outside ``Database.write()``."""


class TransactionOwned(BulkError):
    """apswutils was asked to begin, commit or end a transaction that ``write()`` owns."""


class TransformRefused(BulkError):
    """``transform()`` would lose rows, constraints or triggers of this table."""


def _is_apswutils_hook(hook: object) -> bool:
    """``apsw.bestpractice.apply()`` closes over the list of functions it runs. apswutils' list
    holds ``connection_optimize``; ``workbench.db.connection`` never applies that one."""
    for cell in getattr(hook, "__closure__", None) or ():
        contents = cell.cell_contents
        if isinstance(contents, list) and apsw.bestpractice.connection_optimize in contents:
            return True
    return False


def _drop_apswutils_connection_hooks() -> None:
    apsw.connection_hooks[:] = [h for h in apsw.connection_hooks if not _is_apswutils_hook(h)]


_drop_apswutils_connection_hooks()


class _BoundDatabase(_ApswutilsDatabase):
    """apswutils' Database over a connection we own: no table cache, no transaction control."""

    def __init__(self, conn: apsw.Connection) -> None:
        super().__init__(conn)

    def table(self, table_name: str, **kwargs: Any) -> Table | View:
        if table_name in self.view_names():
            return View(self, table_name, **kwargs)
        kwargs.setdefault("strict", self.strict)
        return Table(self, table_name, **kwargs)

    def _owned(self, *args: Any, **kwargs: Any) -> Any:
        raise TransactionOwned(
            "Database.write() owns the transaction on this connection; apswutils must not "
            "begin, commit, roll back, vacuum or change the journal mode"
        )

    begin = commit = rollback = vacuum = enable_wal = disable_wal = _owned
    modify_table_schema = _owned


def _require_transaction(conn: apsw.Connection) -> None:
    if not conn.in_transaction:
        raise NotInTransaction(
            "bulk writes run inside Database.write(), so they commit or roll back with it"
        )


def table(conn: apsw.Connection, name: str) -> Table:
    """An apswutils ``Table`` bound to ``conn``; it may not exist yet.

    For reading its metadata (``columns_dict``, ``count``, ``pks``) or for apswutils calls
    this module does not wrap (``add_column``, ``create_index``). Writes through it join the
    caller's transaction but skip this module's checks: call ``insert_rows`` and
    ``transform`` rather than ``Table.insert_all`` and ``Table.transform``.
    """
    found = _BoundDatabase(conn).table(name)
    if isinstance(found, View):
        raise BulkError(f"{name!r} is a view, not a table")
    return found


def query(
    conn: apsw.Connection, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None
) -> Iterator[dict[str, Any]]:
    """Run ``sql`` and yield each row as a dict. Works on reader and writer connections."""
    yield from _BoundDatabase(conn).query(sql, params)


def _chunks(rows: Iterable[Mapping[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    iterator = iter(rows)
    while chunk := [dict(row) for row in islice(iterator, size)]:
        yield chunk


def insert_rows(
    conn: apsw.Connection,
    name: str,
    rows: Iterable[Mapping[str, Any]],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    pk: str | Sequence[str] | None = None,
    alter: bool = False,
    ignore: bool = False,
    replace: bool = False,
) -> int:
    """Insert ``rows`` (dicts) into table ``name`` inside the caller's write transaction.

    A missing table is created from the first batch's keys and value types (not STRICT:
    apswutils names float columns FLOAT, which STRICT tables reject; create a STRICT table by
    migration first to get one). ``alter`` adds columns for keys the table lacks. Rows are
    consumed ``batch_size`` at a time, so memory stays bounded however long the iterable is.
    Returns the number of rows handed to SQLite (with ``ignore``, some may have been skipped).
    """
    _require_transaction(conn)
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    target = table(conn, name)
    count = 0
    with conn:  # a savepoint: a failing batch undoes the earlier ones too, not just itself
        for chunk in _chunks(rows, batch_size):
            target.insert_all(
                chunk,
                pk=pk,
                alter=alter,
                ignore=ignore,
                replace=replace,
                batch_size=batch_size,
            )
            target.result = []  # apswutils keeps the RETURNING rows of the last call
            count += len(chunk)
    return count


def read_rows(fp: IO[bytes], file_format: FileFormat | None = None) -> Iterator[dict[str, Any]]:
    """Rows of a CSV, TSV, JSON (a list of objects) or newline-delimited JSON file.

    ``None`` detects CSV, TSV or JSON from the first bytes. CSV and TSV values are strings;
    a JSON file is read whole, the other formats are streamed.
    """
    chosen = None if file_format is None else Format[file_format.upper()]
    rows, _ = rows_from_file(fp, format=chosen)
    yield from rows


def import_file(
    conn: apsw.Connection,
    name: str,
    fp: IO[bytes],
    file_format: FileFormat | None = None,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    pk: str | Sequence[str] | None = None,
    alter: bool = True,
) -> int:
    """Insert every row of a CSV/TSV/JSON/NL file into ``name``; see ``insert_rows``."""
    return insert_rows(
        conn, name, read_rows(fp, file_format), batch_size=batch_size, pk=pk, alter=alter
    )


# Schema features that apswutils' rebuild drops or changes without saying so (checked 0.1.2).
_LOSSY = (
    ("CHECK constraint", re.compile(r"\bCHECK\s*\(", re.IGNORECASE)),
    ("UNIQUE constraint", re.compile(r"\bUNIQUE\b", re.IGNORECASE)),
    ("COLLATE clause", re.compile(r"\bCOLLATE\b", re.IGNORECASE)),
    ("generated column", re.compile(r"\bGENERATED\s+ALWAYS\b|\bAS\s*\(", re.IGNORECASE)),
    ("AUTOINCREMENT", re.compile(r"\bAUTOINCREMENT\b", re.IGNORECASE)),
    ("ON CONFLICT clause", re.compile(r"\bON\s+CONFLICT\b", re.IGNORECASE)),
    ("expression default", re.compile(r"\bDEFAULT\s*\(", re.IGNORECASE)),
    ("WITHOUT ROWID", re.compile(r"\bWITHOUT\s+ROWID\b", re.IGNORECASE)),
)
# String literals and quoted identifiers, so a column named "check" is not a CHECK constraint.
_QUOTED = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|\[[^\]]*\]|`(?:[^`]|``)*`")


def _refuse_unsafe_rebuild(conn: apsw.Connection, name: str) -> None:
    sql = scalar(conn, "SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?", (name,))
    bare = _QUOTED.sub(" ", sql)
    if re.match(r"\s*CREATE\s+VIRTUAL\b", bare, re.IGNORECASE):
        raise TransformRefused(f"{name!r} is a virtual table; it cannot be transformed")
    for feature, pattern in _LOSSY:
        if pattern.search(bare):
            raise TransformRefused(
                f"rebuilding {name!r} would drop its {feature}; change it with a migration"
            )
    referencing = scalar(
        conn,
        "SELECT group_concat(DISTINCT m.name) FROM sqlite_schema AS m,"
        " pragma_foreign_key_list(m.name) AS fk"
        " WHERE m.type = 'table' AND fk.\"table\" = ? COLLATE NOCASE",
        (name,),
    )
    if referencing:
        raise TransformRefused(
            f"{name!r} is referenced by foreign keys from {referencing}; rebuilding it inside a "
            "transaction would run their ON DELETE actions (foreign_keys cannot be turned off "
            "in a transaction)"
        )


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def transform(
    conn: apsw.Connection,
    name: str,
    *,
    rename: Mapping[str, str] | None = None,
    drop: Iterable[str] | None = None,
    types: Mapping[str, type] | None = None,
    not_null: Iterable[str] | None = None,
    defaults: Mapping[str, Any] | None = None,
    column_order: Sequence[str] | None = None,
) -> None:
    """Change the columns of ``name`` inside the caller's write transaction, keeping its rows.

    ``rename`` and ``drop`` use SQLite's own ``ALTER TABLE ... RENAME COLUMN`` / ``DROP COLUMN``,
    which update indexes, triggers, views and foreign keys (and refuse to drop a column that an
    index, constraint, trigger or view still uses). ``types``, ``not_null``, ``defaults`` and
    ``column_order`` need apswutils' rebuild of the table, which is meant for tables whose shape
    comes from data (imports), not for tables a migration defines: a table with CHECK, UNIQUE,
    COLLATE, generated columns, AUTOINCREMENT, ON CONFLICT or expression defaults, a virtual
    table, and a table that foreign keys reference are refused with ``TransformRefused`` before
    anything changes. Add columns with ``insert_rows(..., alter=True)`` or
    ``table(conn, name).add_column(...)``.
    """
    _require_transaction(conn)
    exists = scalar(conn, "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?", (name,))
    if not exists:
        raise TransformRefused(f"no table named {name!r}")
    with conn:  # a savepoint: a failure half-way leaves no half-changed table behind
        for old, new in (rename or {}).items():
            _alter(conn, f"ALTER TABLE {_quote(name)} RENAME COLUMN {_quote(old)} TO {_quote(new)}")
        for column in drop or ():
            _alter(conn, f"ALTER TABLE {_quote(name)} DROP COLUMN {_quote(column)}")
        if types or not_null or defaults or column_order:
            _rebuild(
                conn,
                name,
                types=dict(types) if types else None,
                not_null=set(not_null) if not_null else None,
                defaults=dict(defaults) if defaults else None,
                column_order=list(column_order) if column_order else None,
            )


def _alter(conn: apsw.Connection, sql: str) -> None:
    try:
        conn.execute(sql)
    except apsw.SQLError as exc:
        raise TransformRefused(str(exc)) from exc


def _rebuild(conn: apsw.Connection, name: str, **changes: Any) -> None:
    """apswutils' transform: create a new table, copy the rows, drop the old, rename the new."""
    _refuse_unsafe_rebuild(conn, name)
    triggers = list(
        conn.execute(
            "SELECT name, sql FROM sqlite_schema WHERE type = 'trigger' AND tbl_name = ?",
            (name,),
        )
    )
    # Legacy rename leaves views and other tables' triggers that name this table untouched,
    # instead of failing while the old table is dropped and the new one not yet renamed.
    legacy = conn.pragma("legacy_alter_table")
    conn.pragma("legacy_alter_table", 1)
    try:
        table(conn, name).transform(**changes)
    finally:
        conn.pragma("legacy_alter_table", legacy)
    for trigger_name, trigger_sql in triggers:  # dropping the old table dropped them
        exists = scalar(
            conn, "SELECT 1 FROM sqlite_schema WHERE type = 'trigger' AND name = ?", (trigger_name,)
        )
        if not exists:
            conn.execute(trigger_sql)
    violation = conn.execute("SELECT * FROM pragma_foreign_key_check(?)", (name,)).fetchone()
    if violation is not None:
        raise TransformRefused(f"transforming {name!r} broke a foreign key: {violation}")
