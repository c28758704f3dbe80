"""Storage benchmark: our SQLite layer beside raw apsw, measured in the same run.

    .venv/bin/python benchmarks/storage.py [--quick] [--out FILE] [--tmpdir DIR]

Prints one JSON object on stdout (progress on stderr). What it measures:

1. ``commits``: one row per transaction, durable per the ``synchronous`` setting, through
   ``Database.write()`` and through a bare apsw connection with the same pragmas, once with
   ``synchronous=NORMAL`` and once with ``FULL``. Raw is measured two ways: a lone INSERT in
   autocommit mode (the ceiling) and ``BEGIN IMMEDIATE; INSERT; COMMIT`` (the same SQL our
   layer sends, so the gap to it is pure Python-side cost).
2. ``batches``: rows inserted with ``executemany``, one transaction per batch.
3. ``point_reads``: primary-key lookups through ``Database.read()`` (pooled reader) and raw.
4. ``migrations``: create N workspace files, then ``Migrator.up()`` over all of them,
   ``down(to=0)`` and ``up()`` again, with ``max_open_workspaces`` below N so the LRU of open
   files is exercised; open file descriptors are counted at the end.

Each ``ratio_ours_raw`` is the median over rounds of ours / raw in the same round (1.0 = no
overhead). ``--quick`` shrinks every size so the whole run takes a few seconds (for smoke
tests); its numbers are noisy and not meant to be quoted. The exit status is 1 when a section
raised or a migration did not end ``ok``; the JSON is printed anyway, with an ``errors`` list.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import apsw
from _common import (
    emit,
    interleave,
    log,
    machine_info,
    paired_ratio,
    run_for,
    run_once,
    run_section,
    scratch_dir,
    summarize,
    utc_now,
)

from workbench.config import load_settings
from workbench.db.connection import ConnectionOptions
from workbench.db.database import META_TABLE, Database, Storage
from workbench.db.migrations import FileReport, Migrator, core_sources
from workbench.ids import new_workspace_id

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS items ("
    " id INTEGER PRIMARY KEY, name TEXT NOT NULL, value INTEGER NOT NULL, payload TEXT NOT NULL"
    ") STRICT"
)
INSERT = "INSERT INTO items (name, value, payload) VALUES (?, ?, ?)"
SELECT_BY_ID = "SELECT id, name, value, payload FROM items WHERE id = ?"
ROW = ("item", 42, "x" * 100)


@dataclass(frozen=True, slots=True)
class Sizes:
    seconds: float
    """Length of one measured round of a time-boxed benchmark (commits, reads). Many short
    rounds, interleaved, spread a busy spell of the machine over both sides."""
    warmup_seconds: float
    rounds: int
    batch_rounds: int
    """Each batch round inserts ``batch_rows`` more rows, so fewer rounds keep files small."""
    batch_rows: int
    batch_size: int
    read_table_rows: int
    workspace_files: int
    max_open_workspaces: int


FULL = Sizes(
    seconds=0.5,
    warmup_seconds=0.5,
    rounds=20,
    batch_rounds=5,
    batch_rows=100_000,
    batch_size=1_000,
    read_table_rows=100_000,
    workspace_files=1_000,
    max_open_workspaces=128,
)
QUICK = Sizes(
    seconds=0.1,
    warmup_seconds=0.05,
    rounds=3,
    batch_rounds=2,
    batch_rows=10_000,
    batch_size=1_000,
    read_table_rows=10_000,
    workspace_files=40,
    max_open_workspaces=16,
)


# -- the two sides ---------------------------------------------------------------------------


def open_raw(path: Path, synchronous: str) -> apsw.Connection:
    """A bare apsw connection with the pragmas our layer sets. No sqlite-vec, no lock, no pool.

    (``apsw.bestpractice`` settings applied by ``workbench.db.connection`` at import reach
    this connection too; they change SQL parsing rules, not speed.)
    """
    conn = apsw.Connection(str(path))
    conn.set_busy_timeout(5000)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


def ours_database(path: Path, synchronous: str) -> Database:
    db = Database(path, ConnectionOptions(synchronous=synchronous))
    with db.write() as conn:
        conn.execute(SCHEMA)
    return db


def raw_connection(path: Path, synchronous: str) -> apsw.Connection:
    conn = open_raw(path, synchronous)
    conn.execute(SCHEMA)
    return conn


# -- 1. single-row commits -------------------------------------------------------------------


def ours_commit(db: Database, n: int) -> None:
    for _ in range(n):
        with db.write() as conn:
            conn.execute(INSERT, ROW)


def raw_autocommit(conn: apsw.Connection, n: int) -> None:
    for _ in range(n):
        conn.execute(INSERT, ROW)


def raw_begin_immediate(conn: apsw.Connection, n: int) -> None:
    for _ in range(n):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(INSERT, ROW)
        conn.execute("COMMIT")


def bench_commits(root: Path, synchronous: str, sizes: Sizes) -> dict[str, Any]:
    log(f"commits, synchronous={synchronous}")
    db = ours_database(root / f"commits_ours_{synchronous}.db", synchronous)
    auto = raw_connection(root / f"commits_raw_auto_{synchronous}.db", synchronous)
    begin = raw_connection(root / f"commits_raw_begin_{synchronous}.db", synchronous)
    chunk = 100 if synchronous == "NORMAL" else 10
    ops: dict[str, Callable[[int], None]] = {
        "ours": partial(ours_commit, db),
        "raw_autocommit": partial(raw_autocommit, auto),
        "raw_begin_immediate": partial(raw_begin_immediate, begin),
    }
    try:
        for op in ops.values():
            run_for(op, sizes.warmup_seconds, chunk)
        samples = interleave(
            {name: partial(run_for, op, sizes.seconds, chunk) for name, op in ops.items()},
            sizes.rounds,
        )
    finally:
        db.close()
        auto.close()
        begin.close()
    result: dict[str, Any] = {"synchronous": synchronous}
    for name, s in samples.items():
        result[name] = summarize(s)
    ours, same_sql = samples["ours"], samples["raw_begin_immediate"]
    result["ratio_ours_raw"] = paired_ratio(ours, samples["raw_autocommit"], same_sql)
    result["ratio_ours_raw_same_sql"] = paired_ratio(ours, same_sql)
    return result


# -- 2. batched inserts ----------------------------------------------------------------------


def ours_batches(db: Database, batches: Sequence[list[tuple[str, int, str]]]) -> None:
    for batch in batches:
        with db.write() as conn:
            conn.executemany(INSERT, batch)


def raw_batches(conn: apsw.Connection, batches: Sequence[list[tuple[str, int, str]]]) -> None:
    for batch in batches:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(INSERT, batch)
        conn.execute("COMMIT")


def bench_batches(root: Path, sizes: Sizes) -> dict[str, Any]:
    log(f"batches: {sizes.batch_rows} rows in batches of {sizes.batch_size}")
    rows = [("item", i, "x" * 100) for i in range(sizes.batch_rows)]
    batches = [rows[i : i + sizes.batch_size] for i in range(0, len(rows), sizes.batch_size)]
    warmup = batches[: max(1, len(batches) // 10)]
    db = ours_database(root / "batches_ours.db", "NORMAL")
    raw = raw_connection(root / "batches_raw.db", "NORMAL")
    try:
        ours_batches(db, warmup)
        raw_batches(raw, warmup)
        samples = interleave(
            {
                "ours": partial(run_once, partial(ours_batches, db, batches), len(rows)),
                "raw": partial(run_once, partial(raw_batches, raw, batches), len(rows)),
            },
            sizes.batch_rounds,
        )
    finally:
        db.close()
        raw.close()
    result: dict[str, Any] = {
        "rows_per_round": sizes.batch_rows,
        "batch_size": sizes.batch_size,
        "synchronous": "NORMAL",
    }
    for name, s in samples.items():
        result[name] = summarize(s, unit="rows_per_s")
    result["ratio_ours_raw"] = paired_ratio(samples["ours"], samples["raw"])
    return result


# -- 3. point reads --------------------------------------------------------------------------


def ours_reads(db: Database, keys: Sequence[tuple[int]], n: int) -> None:
    for key in keys[:n]:
        with db.read() as conn:
            conn.execute(SELECT_BY_ID, key).fetchone()


def raw_reads(conn: apsw.Connection, keys: Sequence[tuple[int]], n: int) -> None:
    for key in keys[:n]:
        conn.execute(SELECT_BY_ID, key).fetchone()


def bench_reads(root: Path, sizes: Sizes) -> dict[str, Any]:
    log(f"point reads over {sizes.read_table_rows} rows")
    path = root / "reads.db"
    setup = raw_connection(path, "NORMAL")
    with setup:
        setup.executemany(INSERT, (("item", i, "x" * 100) for i in range(sizes.read_table_rows)))
    setup.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    setup.close()
    chunk = 1_000
    rng = random.Random(20240601)
    keys = [(rng.randint(1, sizes.read_table_rows),) for _ in range(chunk)]
    db = Database(path, ConnectionOptions(synchronous="NORMAL"))
    raw = open_raw(path, "NORMAL")
    ops: dict[str, Callable[[int], None]] = {
        "ours": partial(ours_reads, db, keys),
        "raw": partial(raw_reads, raw, keys),
    }
    try:
        for op in ops.values():
            run_for(op, sizes.warmup_seconds, chunk)
        samples = interleave(
            {name: partial(run_for, op, sizes.seconds, chunk) for name, op in ops.items()},
            sizes.rounds,
        )
    finally:
        db.close()
        raw.close()
    result: dict[str, Any] = {"table_rows": sizes.read_table_rows}
    for name, s in samples.items():
        result[name] = summarize(s)
    result["ratio_ours_raw"] = paired_ratio(samples["ours"], samples["raw"])
    return result


# -- 4. migrating many workspace files -------------------------------------------------------


def open_fds(path: Path) -> dict[str, int] | None:
    """This process's open file descriptors on ``path`` (a directory: anything inside it; a
    database file: it and its -wal and -shm), by kind. Linux only; None elsewhere."""
    fd_dir = Path("/proc/self/fd")
    if not fd_dir.is_dir():
        return None
    prefix = str(path.resolve()) + (os.sep if path.is_dir() else "")
    kinds: Counter[str] = Counter()
    for entry in fd_dir.iterdir():
        try:
            target = os.readlink(entry)
        except OSError:
            continue
        if target.startswith(prefix):
            kind = "wal" if target.endswith("-wal") else "shm" if target.endswith("-shm") else "db"
            kinds[kind] += 1
    return {"db": kinds["db"], "wal": kinds["wal"], "shm": kinds["shm"]}


def fds_per_busy_workspace(storage: Storage, workspace_id: str) -> int | None:
    """Descriptors one workspace holds once its writer and a full reader pool are open.

    The LRU caps open *files*; this is what each of them costs in descriptors.
    """
    db = storage.workspace(workspace_id)
    with db.write():  # opens the writer if the LRU had closed it
        pass
    with contextlib.ExitStack() as stack:  # as many readers at once as the pool keeps
        for _ in range(storage.settings.reader_pool_size):
            conn = stack.enter_context(db.read())
            conn.execute(f"SELECT count(*) FROM {META_TABLE}").fetchall()
        counts = open_fds(storage.workspace_path(workspace_id))
    return None if counts is None else sum(counts.values())


def migration_pass(name: str, run: Callable[[], list[FileReport]]) -> dict[str, Any]:
    log(f"migrations: {name}")
    start = time.perf_counter()
    reports = run()
    seconds = time.perf_counter() - start
    per_file_ms = sorted(r.seconds * 1000 for r in reports)
    return {
        "seconds": round(seconds, 3),
        "files": len(reports),
        "files_per_s": round(len(reports) / seconds, 1),
        "per_file_ms_median": round(statistics.median(per_file_ms), 3),
        "per_file_ms_p95": round(per_file_ms[int(0.95 * (len(per_file_ms) - 1))], 3),
        "statuses": dict(Counter(r.status for r in reports)),
    }


def bench_migrations(root: Path, sizes: Sizes) -> dict[str, Any]:
    log(f"migrations: creating {sizes.workspace_files} workspace files")
    config = root / "workbench.toml"
    config.write_text("")  # so a workbench.toml in the current directory is not picked up
    data = root / "data"
    settings = load_settings(
        config,
        environ={},
        data_dir=str(data),
        max_open_workspaces=sizes.max_open_workspaces,
    )
    storage = Storage(settings)
    migrator = Migrator(storage, core_sources())
    try:
        start = time.perf_counter()
        for _ in range(sizes.workspace_files):
            storage.create_workspace_file(new_workspace_id())
        create_seconds = time.perf_counter() - start
        result: dict[str, Any] = {
            "workspace_files": sizes.workspace_files,
            "max_open_workspaces": sizes.max_open_workspaces,
            "migrations_available": {
                target: [m.label for ms in by_source.values() for m in ms]
                for target, by_source in migrator.by_target.items()
            },
            "create": {
                "seconds": round(create_seconds, 3),
                "files_per_s": round(sizes.workspace_files / create_seconds, 1),
            },
            "up": migration_pass("up", migrator.up),
            "down_to_0": migration_pass("down to 0", partial(migrator.down, to=0)),
            "up_again": migration_pass("up again", migrator.up),
            "open_workspaces_at_end": storage.open_workspace_count(),
            "open_fds_at_end": open_fds(data),
        }
        per_workspace = fds_per_busy_workspace(storage, storage.workspace_ids_on_disk()[-1])
        result["fds"] = {
            "reader_pool_size": settings.reader_pool_size,
            "per_workspace_with_full_reader_pool": per_workspace,
            "worst_case_at_cap": (
                None if per_workspace is None else per_workspace * sizes.max_open_workspaces
            ),
        }
    finally:
        storage.close()
    result["open_fds_after_close"] = open_fds(data)
    return result


# -- main ------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small sizes, for smoke tests")
    parser.add_argument("--out", type=Path, help="also write the JSON result to this file")
    parser.add_argument(
        "--tmpdir", type=Path, help="where to make the scratch directory (must be on disk)"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = QUICK if args.quick else FULL
    started = time.perf_counter()
    errors: list[str] = []
    with scratch_dir("workbench-bench-storage-", args.tmpdir) as root:
        result: dict[str, Any] = {
            "benchmark": "storage",
            "started_at": utc_now(),
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "quick": args.quick,
            "sizes": asdict(sizes),
            "machine": machine_info(root),
        }
        sections: dict[str, Callable[[], dict[str, Any]]] = {
            "commits_normal": partial(bench_commits, root, "NORMAL", sizes),
            "commits_full": partial(bench_commits, root, "FULL", sizes),
            "batches": partial(bench_batches, root, sizes),
            "point_reads": partial(bench_reads, root, sizes),
            "migrations": partial(bench_migrations, root, sizes),
        }
        done = {name: run_section(name, measure, errors) for name, measure in sections.items()}
    result["commits"] = {"NORMAL": done["commits_normal"], "FULL": done["commits_full"]}
    for name in ("batches", "point_reads", "migrations"):
        result[name] = done[name]
    errors.extend(
        f"migrations.{name}: not all files ok" for name in failed_passes(done["migrations"])
    )
    result["errors"] = errors
    result["total_seconds"] = round(time.perf_counter() - started, 1)
    emit(result, args.out)
    for error in errors:
        log(f"error: {error}")
    return 1 if errors else 0


def failed_passes(migrations: dict[str, Any]) -> list[str]:
    """The migration passes where some file did not end ``ok``: their timings mean nothing."""
    passes = ("up", "down_to_0", "up_again")
    return [p for p in passes if p in migrations and set(migrations[p]["statuses"]) != {"ok"}]


if __name__ == "__main__":
    sys.exit(main())
