"""The storage layer on real files: pragmas, one writer, pooled readers, the LRU cap."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import apsw
import pytest

from tests.conftest import make_settings
from workbench.config import Settings
from workbench.db.connection import scalar
from workbench.db.database import Database, Storage, recorded_workspace_id
from workbench.errors import InvalidWorkspaceId, NotFound
from workbench.ids import new_workspace_id, uuid7, validate_workspace_id


def test_every_connection_has_the_pragmas_and_sqlite_vec(tmp_path: Path) -> None:
    db = Database(tmp_path / "x.db")
    with db.write() as conn:
        assert scalar(conn, "PRAGMA journal_mode") == "wal"
        assert scalar(conn, "PRAGMA foreign_keys") == 1
        assert scalar(conn, "PRAGMA busy_timeout") == 5000
        assert scalar(conn, "PRAGMA synchronous") == 1  # NORMAL
        assert scalar(conn, "SELECT vec_version()").startswith("v")
        conn.execute("CREATE TABLE t (x)")
    with db.read() as conn:
        assert scalar(conn, "PRAGMA query_only") == 1
        assert scalar(conn, "SELECT vec_length('[1, 2, 3]')") == 3
    db.close()


def test_synchronous_full_is_configurable(tmp_path: Path) -> None:
    storage = Storage(make_settings(tmp_path, synchronous="FULL"))
    with storage.control.write() as conn:
        assert scalar(conn, "PRAGMA synchronous") == 2
    storage.close()


def test_a_failed_write_rolls_back_everything(tmp_path: Path) -> None:
    db = Database(tmp_path / "x.db")
    with db.write() as conn:
        conn.execute("CREATE TABLE t (x INTEGER)")
    with pytest.raises(RuntimeError), db.write() as conn:
        conn.execute("INSERT INTO t VALUES (1)")
        raise RuntimeError("boom")
    with db.read() as conn:
        assert scalar(conn, "SELECT count(*) FROM t") == 0
    db.close()


def test_nested_write_is_a_savepoint(tmp_path: Path) -> None:
    db = Database(tmp_path / "x.db")
    with db.write() as conn:
        conn.execute("CREATE TABLE t (x INTEGER)")
    with db.write() as outer:
        outer.execute("INSERT INTO t VALUES (1)")
        with pytest.raises(ValueError), db.write() as inner:
            inner.execute("INSERT INTO t VALUES (2)")
            raise ValueError
        with db.read() as same:  # inside a write, reads see the transaction's own rows
            assert scalar(same, "SELECT group_concat(x) FROM t") == "1"
    with db.read() as conn:
        assert scalar(conn, "SELECT group_concat(x) FROM t") == "1"
    db.close()


def test_concurrent_writers_are_serialised_and_lose_nothing(tmp_path: Path) -> None:
    db = Database(tmp_path / "x.db")
    with db.write() as conn:
        conn.execute("CREATE TABLE counter (n INTEGER)")
        conn.execute("INSERT INTO counter VALUES (0)")

    def bump() -> None:
        for _ in range(50):
            with db.write() as c:
                n = scalar(c, "SELECT n FROM counter")
                c.execute("UPDATE counter SET n = ?", (n + 1,))

    threads = [threading.Thread(target=bump) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with db.read() as conn:
        assert scalar(conn, "SELECT n FROM counter") == 300
    db.close()


def test_readers_are_pooled_and_see_committed_data(tmp_path: Path) -> None:
    db = Database(tmp_path / "x.db", reader_pool_size=2)
    with db.write() as conn:
        conn.execute("CREATE TABLE t (x)")
    with db.read() as first:
        pass
    with db.read() as second:
        assert second is first
    with db.write() as conn:
        conn.execute("INSERT INTO t VALUES (7)")
    with db.read() as conn:
        assert scalar(conn, "SELECT x FROM t") == 7
        with pytest.raises(apsw.ReadOnlyError):
            conn.execute("INSERT INTO t VALUES (8)")
    db.close()


def test_lru_caps_open_workspace_files(tmp_path: Path) -> None:
    storage = Storage(make_settings(tmp_path, max_open_workspaces=3))
    ids = [new_workspace_id() for _ in range(6)]
    for workspace_id in ids:
        db = storage.create_workspace_file(workspace_id)
        with db.read() as conn:
            assert recorded_workspace_id(conn) == workspace_id
    assert storage.open_workspace_count() == 3
    # an evicted workspace reopens transparently
    with storage.workspace(ids[0]).read() as conn:
        assert recorded_workspace_id(conn) == ids[0]
    assert storage.open_workspace_count() == 3
    storage.close()


@pytest.mark.parametrize(
    "bad",
    [
        "../etc/passwd",
        "ws_../../x",
        "%2e%2e",
        "ws_" + "0" * 31 + "\x00",
        "WS_" + "a" * 32,
        "ws_" + "g" * 32,
        "",
        "ws_" + "a" * 33,
        "ws_" + "a" * 32 + "/",
    ],
)
def test_bad_workspace_ids_never_become_paths(settings: Settings, bad: str) -> None:
    storage = Storage(settings)
    with pytest.raises(InvalidWorkspaceId):
        storage.workspace_path(bad)
    with pytest.raises(InvalidWorkspaceId):
        storage.workspace(bad)
    assert sorted(p.name for p in settings.data_path.iterdir()) == ["workspaces"]
    assert list(settings.workspaces_path.iterdir()) == []
    storage.close()


def test_unknown_workspace_is_not_found(settings: Settings) -> None:
    storage = Storage(settings)
    with pytest.raises(NotFound):
        storage.workspace(new_workspace_id())
    storage.close()


def test_uuid7_ids_are_time_ordered_and_valid() -> None:
    ids = [uuid7() for _ in range(5000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == 5000
    assert all(u.version == 7 for u in ids[:10])
    assert validate_workspace_id(new_workspace_id()).startswith("ws_")


def test_a_failed_commit_leaves_the_writer_usable(tmp_path: Path) -> None:
    db = Database(tmp_path / "x.db")
    with db.write() as conn:
        conn.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
        conn.execute(
            "CREATE TABLE child (parent_id INTEGER REFERENCES parent (id)"
            " DEFERRABLE INITIALLY DEFERRED)"
        )
    with pytest.raises(apsw.ConstraintError), db.write() as conn:
        conn.execute("INSERT INTO child VALUES (42)")  # fails only at COMMIT
    with db.write() as conn:  # the transaction was rolled back, not left open
        conn.execute("INSERT INTO parent VALUES (1)")
    with db.read() as conn:
        assert scalar(conn, "SELECT count(*) FROM child") == 0
        assert scalar(conn, "SELECT count(*) FROM parent") == 1
    db.close()


def test_commit_and_rollback_listeners(tmp_path: Path) -> None:
    db = Database(tmp_path / "x.db")
    seen: list[str] = []
    db.on_commit = lambda: seen.append("commit")
    db.on_rollback = lambda: seen.append("rollback")
    with db.write() as conn:
        conn.execute("CREATE TABLE t (x)")
        with db.write() as inner:  # a savepoint is not a commit
            inner.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(ValueError), db.write():
        raise ValueError
    db.on_commit = lambda: 1 / 0  # type: ignore[assignment,return-value]
    with db.write() as conn:  # a failing listener does not undo a committed transaction
        conn.execute("INSERT INTO t VALUES (2)")
    with db.read() as conn:
        assert scalar(conn, "SELECT count(*) FROM t") == 2
    assert seen == ["commit", "rollback"]
    db.close()


def test_tenant_guards_cover_tables_whose_names_look_like_fts(runtime: Any) -> None:
    from workbench.db.tenancy import install_tenant_guards, tenant_tables
    from workbench.workspaces.service import create_workspace

    ws = create_workspace(runtime, "A")
    with runtime.storage.workspace(ws.id).write() as conn:
        conn.execute("CREATE TABLE gifts (id INTEGER PRIMARY KEY, workspace_id TEXT)")
        conn.execute("CREATE VIRTUAL TABLE notes_fts USING fts5 (body)")
        install_tenant_guards(conn)
        tables = tenant_tables(conn)
    assert "gifts" in tables
    assert not any(t.startswith("notes_fts") for t in tables)


def test_a_deleted_workspace_file_is_not_recreated_by_a_late_writer(settings: Settings) -> None:
    storage = Storage(settings)
    workspace_id = new_workspace_id()
    db = storage.create_workspace_file(workspace_id)
    db.close()
    path = storage.workspace_path(workspace_id)
    path.unlink()
    with pytest.raises(apsw.CantOpenError), db.write():
        pass
    assert not path.exists()
    storage.close()


def test_the_open_file_limit_is_raised_to_the_budget(tmp_path: Path) -> None:
    import resource

    from workbench.db.database import ensure_file_budget, file_budget

    settings = make_settings(tmp_path, max_open_workspaces=300, reader_pool_size=4)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < file_budget(settings):
        pytest.skip("the hard limit here is below the budget")
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))
    try:
        ensure_file_budget(settings)
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] >= file_budget(settings) > 1024
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_closing_a_file_inside_its_own_write_keeps_the_write(tmp_path: Path) -> None:
    db = Database(tmp_path / "x.db")
    with db.write() as conn:
        conn.execute("CREATE TABLE t (x)")
        db.close()  # e.g. evicted from the open-file cache by this same thread
        conn.execute("INSERT INTO t VALUES (1)")
    with db.read() as conn:
        assert scalar(conn, "SELECT count(*) FROM t") == 1
    db.close()


def test_a_retired_database_refuses_reads_and_writes(tmp_path: Path) -> None:
    db = Database(tmp_path / "x.db")
    with db.write() as conn:
        conn.execute("CREATE TABLE t (x)")
        db.retired = True  # as a delete does, under the write lock
    with pytest.raises(NotFound), db.write():
        pass
    with pytest.raises(NotFound), db.read():
        pass
    db.close()
