"""apswutils on our own apsw connection: bulk writes join ``Database.write()``'s transaction."""

from __future__ import annotations

import gc
import io
import json
import threading
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import apsw
import apsw.bestpractice
import pytest
import sqlite_vec

from workbench.db import bulk
from workbench.db.connection import open_connection, scalar
from workbench.db.database import META_TABLE, Database
from workbench.db.tenancy import install_tenant_guards

WORKSPACE_ID = "ws_" + "a" * 32
ENDS_A_TRANSACTION = ("BEGIN", "COMMIT", "END", "ROLLBACK")


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(tmp_path / "bulk.db")
    yield database
    database.close()


def count(db: Database, table: str) -> int:
    with db.read() as conn:
        return int(scalar(conn, f'SELECT count(*) FROM "{table}"'))


def table_exists(db: Database, table: str) -> bool:
    with db.read() as conn:
        return bool(
            scalar(conn, "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?", (table,))
        )


def people(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [{"id": i, "name": f"person {i}", "score": i / 2} for i in range(start, start + n)]


class Statements:
    """Every statement the connection runs while recording, via apsw's exec_trace."""

    def __init__(self, conn: apsw.Connection) -> None:
        self.conn = conn
        self.seen: list[str] = []

    def __enter__(self) -> Statements:
        def trace(cursor: apsw.Cursor, sql: str, bindings: Any) -> bool:
            self.seen.append(sql.strip().upper())
            return True

        self.conn.exec_trace = trace
        return self

    def __exit__(self, *exc: object) -> None:
        self.conn.exec_trace = None

    def ending_a_transaction(self) -> list[str]:
        return [
            s
            for s in self.seen
            if s.startswith(ENDS_A_TRANSACTION) and not s.startswith("ROLLBACK TO")
        ]


# -- inserts ------------------------------------------------------------------------------------


def test_insert_rows_commits_with_the_write_transaction(db: Database) -> None:
    with db.write() as conn:
        with Statements(conn) as statements:
            inserted = bulk.insert_rows(conn, "people", people(250), batch_size=40, pk="id")
        assert inserted == 250
        assert conn.in_transaction, "apswutils must not end our transaction"
        assert statements.ending_a_transaction() == []
        assert count(db, "people") == 250  # read() inside write() sees its own changes
    assert count(db, "people") == 250


def test_insert_rows_rolls_back_with_the_write_transaction(db: Database) -> None:
    with db.write() as conn:
        bulk.insert_rows(conn, "people", people(10), pk="id")

    with pytest.raises(RuntimeError), db.write() as conn:
        bulk.insert_rows(conn, "people", people(500, start=10), batch_size=50)
        bulk.insert_rows(conn, "pets", [{"name": "Cleo"}])  # a new table, too
        raise RuntimeError("fails after the inserts")

    assert count(db, "people") == 10
    assert not table_exists(db, "pets")


def test_a_failing_batch_undoes_the_earlier_batches_of_the_same_call(db: Database) -> None:
    with db.write() as conn:
        bulk.insert_rows(conn, "people", people(1), pk="id")
        rows = [*people(100, start=1), {"id": 0, "name": "duplicate", "score": 0.0}]
        with pytest.raises(apsw.ConstraintError):
            bulk.insert_rows(conn, "people", rows, batch_size=10)
        assert conn.in_transaction
        bulk.insert_rows(conn, "people", people(1, start=500))
    assert count(db, "people") == 2


def test_insert_rows_in_a_nested_write_rolls_back_only_the_savepoint(db: Database) -> None:
    with db.write() as conn:
        bulk.insert_rows(conn, "people", people(5), pk="id")
        with pytest.raises(KeyError), db.write() as inner:
            bulk.insert_rows(inner, "people", people(5, start=5))
            raise KeyError("inner")
    assert count(db, "people") == 5


def test_insert_rows_into_an_existing_strict_table(db: Database) -> None:
    with db.write() as conn:
        conn.execute(
            "CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT NOT NULL, score REAL) STRICT"
        )
        bulk.insert_rows(conn, "people", people(3))
    with db.read() as conn:
        assert list(bulk.query(conn, "SELECT typeof(score) AS t FROM people LIMIT 1")) == [
            {"t": "real"}
        ]


def test_insert_rows_with_alter_adds_missing_columns(db: Database) -> None:
    with db.write() as conn:
        bulk.insert_rows(conn, "people", people(2), pk="id")
        bulk.insert_rows(conn, "people", [{"id": 9, "name": "n", "email": "n@x"}], alter=True)
        assert "email" in bulk.table(conn, "people").columns_dict


def test_bulk_writes_outside_a_transaction_are_refused(db: Database) -> None:
    with db.write() as conn:
        bulk.insert_rows(conn, "people", people(1))
    conn = open_connection(db.path)
    try:
        with pytest.raises(bulk.NotInTransaction):
            bulk.insert_rows(conn, "people", people(1, start=1))
        with pytest.raises(bulk.NotInTransaction):
            bulk.transform(conn, "people", rename={"name": "title"})
    finally:
        conn.close()


def test_apswutils_transaction_control_is_refused(db: Database) -> None:
    with db.write() as conn:
        people_table = bulk.table(conn, "people")
        for method in ("begin", "commit", "rollback", "vacuum", "enable_wal", "disable_wal"):
            with pytest.raises(bulk.TransactionOwned):
                getattr(people_table.db, method)()
        assert conn.in_transaction


# -- queries ------------------------------------------------------------------------------------


def test_query_yields_dicts_on_a_pooled_reader(db: Database) -> None:
    with db.write() as conn:
        bulk.insert_rows(conn, "people", people(3), pk="id")
    with db.read() as reader:
        rows = list(bulk.query(reader, "SELECT id, name FROM people WHERE id >= ?", [1]))
        assert rows == [{"id": 1, "name": "person 1"}, {"id": 2, "name": "person 2"}]
        assert bulk.table(reader, "people").count == 3


# -- file imports -------------------------------------------------------------------------------


def test_import_csv_and_json_inside_the_transaction(db: Database) -> None:
    csv_file = io.BytesIO(b"id,name\n1,Cleo\n2,Pancakes\n")
    json_file = io.BytesIO(json.dumps([{"id": 3, "name": "Azi", "age": 4}]).encode())
    with db.write() as conn:
        assert bulk.import_file(conn, "pets", csv_file, "csv") == 2
        assert bulk.import_file(conn, "pets", json_file) == 1  # detected as JSON; adds age
    with db.read() as conn:
        assert list(bulk.query(conn, "SELECT id, name, age FROM pets ORDER BY name")) == [
            {"id": "3", "name": "Azi", "age": 4},  # TEXT column from the CSV
            {"id": "1", "name": "Cleo", "age": None},
            {"id": "2", "name": "Pancakes", "age": None},
        ]


def test_import_newline_json_streams(db: Database) -> None:
    lines = b"".join(json.dumps({"n": i}).encode() + b"\n" for i in range(1000))
    with db.write() as conn:
        assert bulk.import_file(conn, "numbers", io.BytesIO(lines), "nl", batch_size=64) == 1000
    assert count(db, "numbers") == 1000


# -- transforms ---------------------------------------------------------------------------------


def test_transform_renames_and_retypes_keeping_rows_and_indexes(db: Database) -> None:
    with db.write() as conn:
        bulk.insert_rows(conn, "people", people(20), pk="id")
        conn.execute("CREATE INDEX people_name ON people (name)")
        conn.execute("CREATE INDEX people_score ON people (score)")
    with db.write() as conn, Statements(conn) as statements:
        bulk.transform(conn, "people", rename={"name": "title"}, types={"score": str})
        assert conn.in_transaction
        assert statements.ending_a_transaction() == []
    with db.read() as conn:
        assert bulk.table(conn, "people").columns_dict == {"id": int, "title": str, "score": str}
        titles = [r["title"] for r in bulk.query(conn, "SELECT title FROM people LIMIT 2")]
        assert titles == ["person 0", "person 1"]
        indexes = dict(conn.execute("SELECT name, sql FROM sqlite_schema WHERE type = 'index'"))
    assert indexes == {
        "people_name": 'CREATE INDEX people_name ON people ("title")',
        "people_score": "CREATE INDEX people_score ON people (score)",
    }
    assert count(db, "people") == 20


def test_transform_rolls_back_with_the_write_transaction(db: Database) -> None:
    with db.write() as conn:
        bulk.insert_rows(conn, "people", people(5), pk="id")
    with pytest.raises(RuntimeError), db.write() as conn:
        bulk.transform(conn, "people", rename={"name": "title"}, drop=["score"])
        bulk.transform(conn, "people", types={"id": str})
        raise RuntimeError("undo")
    with db.read() as conn:
        assert bulk.table(conn, "people").columns_dict == {"id": int, "name": str, "score": float}
    assert count(db, "people") == 5


def test_a_refused_transform_leaves_the_earlier_changes_of_the_call_undone(db: Database) -> None:
    with db.write() as conn:
        bulk.insert_rows(conn, "people", people(5), pk="id")
        conn.execute("CREATE INDEX people_score ON people (score)")
        with pytest.raises(bulk.TransformRefused, match="score"):
            bulk.transform(conn, "people", rename={"name": "title"}, drop=["score"])
        assert conn.in_transaction
    with db.read() as conn:
        assert set(bulk.table(conn, "people").columns_dict) == {"id", "name", "score"}


def test_renaming_a_column_rewrites_the_triggers_that_name_it(db: Database) -> None:
    with db.write() as conn:
        bulk.insert_rows(conn, "notes", [{"id": 1, "body": "x"}], pk="id")
        conn.execute(
            "CREATE TRIGGER notes_not_empty BEFORE INSERT ON notes WHEN NEW.body = ''"
            " BEGIN SELECT RAISE(ABORT, 'empty note'); END"
        )
        bulk.transform(conn, "notes", rename={"body": "text"})
        conn.execute("INSERT INTO notes (text) VALUES ('fine')")
        with pytest.raises(apsw.ConstraintError, match="empty note"):
            conn.execute("INSERT INTO notes (text) VALUES ('')")


def test_a_rebuild_keeps_the_tenant_guard_triggers(db: Database) -> None:
    with db.write() as conn:
        conn.execute(f"CREATE TABLE {META_TABLE} (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        conn.execute(f"INSERT INTO {META_TABLE} VALUES ('workspace_id', ?)", (WORKSPACE_ID,))
        row = {"id": 1, "workspace_id": WORKSPACE_ID, "body": "x", "rank": 1}
        bulk.insert_rows(conn, "notes", [row], pk="id")
        install_tenant_guards(conn)
    with db.write() as conn:
        bulk.transform(conn, "notes", types={"rank": float}, column_order=["id", "body"])
    with db.read() as conn:
        triggers = {
            r["name"]
            for r in bulk.query(conn, "SELECT name FROM sqlite_schema WHERE type = 'trigger'")
        }
        assert list(bulk.table(conn, "notes").columns_dict)[:2] == ["id", "body"]
    assert triggers == {"tenant_guard_notes_insert", "tenant_guard_notes_update"}
    with pytest.raises(apsw.ConstraintError, match="does not belong"), db.write() as conn:
        conn.execute("INSERT INTO notes (workspace_id, body) VALUES (?, 'y')", ("ws_" + "b" * 32,))


def test_dropping_a_column_a_trigger_uses_is_refused(db: Database) -> None:
    with db.write() as conn:
        conn.execute(f"CREATE TABLE {META_TABLE} (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        conn.execute(f"INSERT INTO {META_TABLE} VALUES ('workspace_id', ?)", (WORKSPACE_ID,))
        bulk.insert_rows(conn, "notes", [{"id": 1, "workspace_id": WORKSPACE_ID}], pk="id")
        install_tenant_guards(conn)
        with pytest.raises(bulk.TransformRefused, match="tenant_guard_notes"):
            bulk.transform(conn, "notes", drop=["workspace_id"])


def test_a_rebuild_keeps_views_that_read_the_table(db: Database) -> None:
    with db.write() as conn:
        bulk.insert_rows(conn, "people", people(3), pk="id")
        conn.execute("CREATE VIEW people_ids AS SELECT id FROM people")
        bulk.transform(conn, "people", types={"score": str})
        assert [r["id"] for r in bulk.query(conn, "SELECT id FROM people_ids")] == [0, 1, 2]


def test_a_rebuild_of_a_table_other_tables_reference_is_refused(db: Database) -> None:
    with db.write() as conn:
        conn.execute("CREATE TABLE parents (id INTEGER PRIMARY KEY, name TEXT, rank INTEGER)")
        conn.execute(
            "CREATE TABLE children (id INTEGER PRIMARY KEY,"
            " parent_id INTEGER REFERENCES parents (id) ON DELETE CASCADE)"
        )
        conn.execute("INSERT INTO parents VALUES (1, 'p', 1)")
        conn.execute("INSERT INTO children VALUES (1, 1), (2, 1)")
    with pytest.raises(bulk.TransformRefused, match="children"), db.write() as conn:
        bulk.transform(conn, "parents", types={"rank": str})
    assert count(db, "children") == 2, "a rebuild would have cascaded into the children"
    with db.write() as conn:  # renaming is not a rebuild: SQLite updates the references
        bulk.transform(conn, "parents", rename={"id": "parent_key"})
        references = scalar(conn, "SELECT \"to\" FROM pragma_foreign_key_list('children')")
        assert references == "parent_key"
    assert count(db, "children") == 2


@pytest.mark.parametrize(
    ("column", "feature"),
    [
        ("name TEXT CHECK (length(name) < 50)", "CHECK"),
        ("name TEXT UNIQUE", "UNIQUE"),
        ("name TEXT COLLATE NOCASE", "COLLATE"),
        ("name TEXT GENERATED ALWAYS AS ('x') VIRTUAL", "generated"),
        ("name TEXT DEFAULT (lower('X'))", "expression default"),
        ("name TEXT NOT NULL ON CONFLICT REPLACE", "ON CONFLICT"),
    ],
)
def test_a_rebuild_that_would_lose_schema_is_refused(
    db: Database, column: str, feature: str
) -> None:
    with db.write() as conn:
        conn.execute(f"CREATE TABLE things (id INTEGER PRIMARY KEY, {column}, other TEXT)")
    with pytest.raises(bulk.TransformRefused, match=feature), db.write() as conn:
        bulk.transform(conn, "things", types={"other": int})
    with db.write() as conn:  # a rename keeps the constraint, so it is allowed
        bulk.transform(conn, "things", rename={"other": "more"})
        sql = scalar(conn, "SELECT sql FROM sqlite_schema WHERE name = 'things'")
        assert column.split(" ", 2)[2] in sql


def test_a_rebuild_accepts_names_that_look_like_keywords(db: Database) -> None:
    with db.write() as conn:
        conn.execute('CREATE TABLE things (id INTEGER PRIMARY KEY, "check" TEXT, "unique" TEXT)')
        conn.execute("INSERT INTO things VALUES (1, 'a', '2')")
        bulk.transform(conn, "things", types={"unique": int})
        assert bulk.table(conn, "things").columns_dict == {"id": int, "check": str, "unique": int}


# -- sqlite-vec ---------------------------------------------------------------------------------


def test_bulk_works_on_a_connection_with_sqlite_vec_loaded(db: Database) -> None:
    vectors = {1: [1.0, 0.0, 0.0], 2: [0.0, 1.0, 0.0], 3: [0.9, 0.1, 0.0]}
    with db.write() as conn:
        assert scalar(conn, "SELECT vec_version()").startswith("v")
        conn.execute("CREATE VIRTUAL TABLE chunk_vectors USING vec0(embedding float[3])")
        bulk.insert_rows(
            conn,
            "chunk_vectors",
            [
                {"rowid": k, "embedding": sqlite_vec.serialize_float32(v)}
                for k, v in vectors.items()
            ],
        )
        bulk.insert_rows(
            conn,
            "chunks",
            [{"id": k, "embedding": sqlite_vec.serialize_float32(v)} for k, v in vectors.items()],
            pk="id",
        )
    probe = sqlite_vec.serialize_float32([1.0, 0.0, 0.0])
    with db.read() as conn:
        nearest = bulk.query(
            conn,
            "SELECT rowid FROM chunk_vectors WHERE embedding MATCH ? AND k = 2 ORDER BY distance",
            [probe],
        )
        assert [r["rowid"] for r in nearest] == [1, 3]
        brute = bulk.query(
            conn, "SELECT id FROM chunks ORDER BY vec_distance_l2(embedding, ?) LIMIT 2", [probe]
        )
        assert [r["id"] for r in brute] == [1, 3]


# -- what importing apswutils would do to the process -------------------------------------------


def test_importing_bulk_removes_apswutils_connection_hooks() -> None:
    assert not any(bulk._is_apswutils_hook(h) for h in apsw.connection_hooks)
    assert not any(
        isinstance(c.cell_contents, list)
        and apsw.bestpractice.connection_optimize in c.cell_contents
        for h in apsw.connection_hooks
        for c in (getattr(h, "__closure__", None) or ())
    )


def test_a_reader_opens_while_a_write_transaction_is_open(db: Database) -> None:
    """With apswutils' hooks left in place, opening a connection runs PRAGMA optimize (a write)
    and fails with BusyError after 100 ms whenever a writer holds the file."""
    with db.write() as conn:
        bulk.insert_rows(conn, "people", people(2000), pk="id")
        conn.execute("CREATE INDEX people_name ON people (name)")
    errors: list[BaseException] = []
    with db.write() as conn:
        bulk.insert_rows(conn, "people", people(1, start=5000))

        def open_reader() -> None:
            try:
                reader = open_connection(db.path, query_only=True, create=False)
                reader.close()
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=open_reader)
        thread.start()
        thread.join()
    assert errors == []
    assert not table_exists(db, "sqlite_stat1")


def test_no_wrapper_or_connection_is_kept_alive(tmp_path: Path) -> None:
    conn = open_connection(tmp_path / "leak.db")
    with conn:
        bulk.insert_rows(conn, "people", people(10), pk="id")
        bulk.table(conn, "people").count  # noqa: B018
    ref = weakref.ref(conn)
    conn.close()
    del conn
    gc.collect()
    assert ref() is None
