"""One writer per file, pooled readers, and an LRU of open workspace files.

Writes go through ``Database.write()``: a per-file lock, then ``BEGIN IMMEDIATE`` so the write
lock is taken up front instead of failing half-way on a read-to-write upgrade. A nested
``write()`` in the same thread becomes a savepoint. Reads take a pooled ``query_only``
connection, which under WAL never blocks the writer nor waits for it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path

import apsw

from workbench.config import Settings
from workbench.db.connection import ConnectionOptions, open_connection, scalar
from workbench.errors import NotFound
from workbench.ids import validate_workspace_id

META_TABLE = "_workbench_meta"

log = logging.getLogger(__name__)


class Database:
    """One SQLite file: a single writer connection guarded by a lock, and a reader pool."""

    def __init__(
        self,
        path: Path,
        options: ConnectionOptions = ConnectionOptions(),
        reader_pool_size: int = 4,
        *,
        create: bool = True,
    ) -> None:
        self.path = path
        self.create = create
        """Whether the writer may create the file. Workspace files exist before they are
        opened; a writer that raced a delete must fail, not make an empty workspace."""
        self.options = options
        self._write_lock = threading.RLock()
        self._writer: apsw.Connection | None = None
        self._depth = threading.local()
        self._readers: list[apsw.Connection] = []
        self._pool_lock = threading.Lock()
        self._pool_size = reader_pool_size
        self._generation = 0
        self.on_commit: Callable[[], None] | None = None
        """Called after each outermost transaction commits (outside the write lock)."""
        self.on_rollback: Callable[[], None] | None = None
        self.retired = False
        """Set (under the write lock) when the file is being deleted: every later read or
        write fails with NotFound instead of landing in a file about to disappear."""

    def __repr__(self) -> str:
        return f"<Database {self.path}>"

    def write(self) -> _WriteTransaction:
        """A write transaction: everything inside commits together or not at all."""
        return _WriteTransaction(self)

    def _notify(self, listener: Callable[[], None] | None) -> None:
        if listener is None:
            return
        try:
            listener()
        except Exception:  # the transaction is settled; a listener must not undo that
            log.exception("transaction listener failed", extra={"database": str(self.path)})

    def read(self) -> _ReadConnection:
        """A pooled reader connection. Inside a ``write()`` of this thread, the writer itself,
        so a transaction sees its own uncommitted changes."""
        return _ReadConnection(self)

    def _take_reader(self) -> apsw.Connection:
        with self._pool_lock:
            if self._readers:
                return self._readers.pop()
        return open_connection(self.path, self.options, query_only=True, create=False)

    def _return_reader(self, conn: apsw.Connection, generation: int) -> None:
        # A reader left in a transaction, or handed out before a close(), is not reused.
        if not conn.in_transaction and generation == self._generation:
            with self._pool_lock:
                if len(self._readers) < self._pool_size:
                    self._readers.append(conn)
                    return
        conn.close()

    def _writer_connection(self) -> apsw.Connection:
        if self._writer is None:
            self._writer = open_connection(self.path, self.options, create=self.create)
        return self._writer

    def close(self) -> None:
        """Close idle connections. The object stays usable: it reopens on the next use, and a
        reader handed out before the close is closed when it comes back."""
        self._generation += 1
        with self._pool_lock:
            idle, self._readers = self._readers, []
        for conn in idle:
            conn.close()
        with self._write_lock:
            if getattr(self._depth, "value", 0) > 0:
                return  # this thread is inside a write on it: the writer closes next time
            if self._writer is not None:
                self._writer.close()
                self._writer = None

    def open_connection_count(self) -> int:
        return len(self._readers) + (1 if self._writer is not None else 0)


class _WriteTransaction:
    """The context manager behind ``Database.write()``: a class rather than a generator,
    because it runs on every write and the generator machinery costs as much as the SQL.

    The outermost level takes the per-file lock and runs BEGIN IMMEDIATE; a nested level (the
    same thread) is a savepoint. When COMMIT itself fails (a deferred constraint, a full
    disk) the transaction is rolled back, so the writer never stays stuck inside it.
    """

    __slots__ = ("_conn", "_db", "_depth")

    def __init__(self, db: Database) -> None:
        self._db = db
        self._depth = 0

    def __enter__(self) -> apsw.Connection:
        db = self._db
        db._write_lock.acquire()
        try:
            if db.retired:
                raise NotFound("workspace not found")
            conn = db._writer_connection()
            depth = getattr(db._depth, "value", 0)
            conn.execute("BEGIN IMMEDIATE" if depth == 0 else f"SAVEPOINT sp_{depth}")
        except BaseException:
            db._write_lock.release()
            raise
        self._conn, self._depth = conn, depth
        db._depth.value = depth + 1
        return conn

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        db, conn, depth = self._db, self._conn, self._depth
        committed = False
        try:
            if exc_type is None:
                try:
                    conn.execute("COMMIT" if depth == 0 else f"RELEASE sp_{depth}")
                    committed = True
                except BaseException:
                    self._rollback()
                    raise
            else:
                self._rollback()
        finally:
            db._depth.value = depth
            db._write_lock.release()
            if depth == 0:
                db._notify(db.on_commit if committed else db.on_rollback)

    def _rollback(self) -> None:
        conn, depth = self._conn, self._depth
        if conn.in_transaction:
            conn.execute(
                "ROLLBACK" if depth == 0 else f"ROLLBACK TO sp_{depth}; RELEASE sp_{depth}"
            )


class _ReadConnection:
    """The context manager behind ``Database.read()``."""

    __slots__ = ("_conn", "_db", "_generation")

    def __init__(self, db: Database) -> None:
        self._db = db
        self._conn: apsw.Connection | None = None
        self._generation = 0

    def __enter__(self) -> apsw.Connection:
        db = self._db
        if db._writer is not None and getattr(db._depth, "value", 0) > 0:
            return db._writer  # this thread is inside a write: read its own changes
        if db.retired:
            raise NotFound("workspace not found")
        self._generation = db._generation
        self._conn = db._take_reader()
        return self._conn

    def __exit__(self, *exc: object) -> None:
        if self._conn is not None:
            self._db._return_reader(self._conn, self._generation)


class Storage:
    """The control file plus one file per workspace, with a cap on open workspace files."""

    def __init__(
        self,
        settings: Settings,
        *,
        on_workspace_commit: Callable[[str], None] | None = None,
        on_workspace_rollback: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = settings
        self.on_workspace_commit = on_workspace_commit
        self.on_workspace_rollback = on_workspace_rollback
        self.options = ConnectionOptions(
            busy_timeout_ms=settings.busy_timeout_ms, synchronous=settings.synchronous
        )
        settings.data_path.mkdir(parents=True, exist_ok=True)
        settings.workspaces_path.mkdir(parents=True, exist_ok=True)
        ensure_file_budget(settings)
        self.control = Database(settings.control_db_path, self.options, settings.reader_pool_size)
        self._open: OrderedDict[str, Database] = OrderedDict()
        self._lock = threading.Lock()
        self.max_open = settings.max_open_workspaces

    def workspace_path(self, workspace_id: str) -> Path:
        """The file of a workspace. The id is validated before it becomes part of a path."""
        return self.settings.workspaces_path / f"{validate_workspace_id(workspace_id)}.db"

    def workspace_exists(self, workspace_id: str) -> bool:
        return self.workspace_path(workspace_id).is_file()

    def workspace(self, workspace_id: str) -> Database:
        """The open database of an existing workspace file; NotFound when there is none."""
        path = self.workspace_path(workspace_id)
        evicted: list[Database] = []
        with self._lock:
            db = self._open.get(workspace_id)
            if db is not None:
                self._open.move_to_end(workspace_id)
                return db
            if not path.is_file():
                raise NotFound("workspace not found")
            db = self._open_workspace(workspace_id, path)
            self._open[workspace_id] = db
            while len(self._open) > self.max_open:
                evicted.append(self._open.popitem(last=False)[1])
        for old in evicted:
            old.close()
        return db

    def _open_workspace(self, workspace_id: str, path: Path) -> Database:
        db = Database(path, self.options, self.settings.reader_pool_size, create=False)
        commit, rollback = self.on_workspace_commit, self.on_workspace_rollback
        if commit is not None:
            db.on_commit = lambda: commit(workspace_id)
        if rollback is not None:
            db.on_rollback = lambda: rollback(workspace_id)
        return db

    @contextlib.contextmanager
    def peek(self, workspace_id: str) -> Iterator[apsw.Connection]:
        """A short-lived read connection that bypasses the open-file cache, for sweeps and
        checks over every workspace that must not push the busy files out of it."""
        path = self.workspace_path(workspace_id)
        if not path.is_file():
            raise NotFound("workspace not found")
        conn = open_connection(path, self.options, query_only=True, create=False)
        try:
            yield conn
        finally:
            conn.close()

    def create_workspace_file(self, workspace_id: str) -> Database:
        """Create an empty workspace file that records its own id. Migrations come after."""
        path = self.workspace_path(workspace_id)
        if path.exists():
            raise FileExistsError(f"workspace file already exists: {path.name}")
        conn = open_connection(path, self.options)
        try:
            with conn:
                conn.execute(
                    f"CREATE TABLE {META_TABLE} (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT"
                )
                conn.execute(
                    f"INSERT INTO {META_TABLE} (key, value) VALUES ('workspace_id', ?)",
                    (workspace_id,),
                )
        finally:
            conn.close()
        return self.workspace(workspace_id)

    def forget_workspace(self, workspace_id: str) -> None:
        """Close a workspace's connections and drop it from the open-file cache."""
        with self._lock:
            db = self._open.pop(workspace_id, None)
        if db is not None:
            db.close()

    def workspace_ids_on_disk(self) -> list[str]:
        ids = []
        for path in sorted(self.settings.workspaces_path.glob("ws_*.db")):
            try:
                ids.append(validate_workspace_id(path.stem))
            except Exception:
                continue
        return ids

    def open_workspace_count(self) -> int:
        with self._lock:
            return len(self._open)

    def each_database(self) -> Iterator[tuple[str, Database]]:
        """The control file then every workspace file on disk, as (label, database)."""
        yield "control", self.control
        for workspace_id in self.workspace_ids_on_disk():
            yield workspace_id, self.workspace(workspace_id)

    def close(self) -> None:
        with self._lock:
            dbs = list(self._open.values())
            self._open.clear()
        for db in dbs:
            db.close()
        self.control.close()


def file_budget(settings: Settings) -> int:
    """File descriptors the storage may hold: per open file a writer and the pooled readers,
    each with its database and WAL file, plus the shared-memory file; and some spare."""
    per_file = 2 * (1 + settings.reader_pool_size) + 1
    return (settings.max_open_workspaces + 1) * per_file + 256


def ensure_file_budget(settings: Settings) -> None:
    """Raise the soft open-file limit to the budget when the hard limit allows; otherwise say
    clearly which setting to lower, instead of failing later with 'too many open files'."""
    try:
        import resource
    except ImportError:  # not on POSIX
        return
    needed = file_budget(settings)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError):
        target = soft
    if target < needed:
        log.warning(
            "open-file limit is below what the storage may use",
            extra={
                "limit": target,
                "needed": needed,
                "advice": "raise `ulimit -n` or lower max_open_workspaces/reader_pool_size",
            },
        )


def recorded_workspace_id(conn: apsw.Connection) -> str | None:
    """The id a workspace file records for itself."""
    try:
        return scalar(conn, f"SELECT value FROM {META_TABLE} WHERE key = 'workspace_id'")
    except apsw.SQLError:
        return None
