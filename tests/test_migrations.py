"""Migrations on real files: round trips, drift, per-file failure, dry runs, rehearsal."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from workbench.db.connection import scalar, schema_snapshot
from workbench.db.migrations import (
    MigrationError,
    MigrationSource,
    Migrator,
    applied,
    core_sources,
    load_source,
)
from workbench.runtime import Runtime
from workbench.workspaces.service import create_workspace


def all_labels(runtime: Runtime, target: str) -> list[str]:
    return [m.label for ms in runtime.migrator.by_target[target].values() for m in ms]


def snapshots(runtime: Runtime) -> dict[str, list[tuple[str, str, str]]]:
    out = {}
    for label, db in runtime.storage.each_database():
        with db.read() as conn:
            out[label] = schema_snapshot(conn)
    return out


def copy_sources(tmp_path: Path) -> list[MigrationSource]:
    """Core migrations copied somewhere a test may change them."""
    out = []
    for source in core_sources():
        target = tmp_path / "migrations" / source.target
        shutil.copytree(source.directory, target)
        out.append(MigrationSource(source.name, source.target, target))
    return out


def test_up_down_up_leaves_the_same_schema(runtime: Runtime) -> None:
    for name in ("A", "B"):
        create_workspace(runtime, name)
    migrated = snapshots(runtime)
    downs = runtime.migrator.down(0)
    assert [r.status for r in downs] == ["ok", "ok", "ok"]
    for label, db in runtime.storage.each_database():
        with db.read() as conn:
            user_tables = [s for s in schema_snapshot(conn) if not s[1].startswith("_workbench")]
            assert user_tables == [], label
    ups = runtime.migrator.up()
    assert all(r.status == "ok" for r in ups)
    assert snapshots(runtime) == migrated


def test_up_to_a_version_and_status(runtime: Runtime) -> None:
    create_workspace(runtime, "A")
    runtime.migrator.down(0)
    runtime.migrator.up(to=0, target="control")
    status = runtime.migrator.status()
    assert all(row["pending"] for row in status)
    with pytest.raises(MigrationError, match="--to needs --target"):
        runtime.migrator.up(to=1)
    runtime.migrator.up(to=1, target="workspace")
    assert [row["current"] for row in runtime.migrator.status()] == [{}, {"core": 1}]
    runtime.migrator.up(to=1, target="control")
    assert [row["current"] for row in runtime.migrator.status()] == [{"core": 1}, {"core": 1}]
    runtime.migrator.up()
    assert all(not row["pending"] and not row["drift"] for row in runtime.migrator.status())


def test_checksum_drift_is_refused(runtime: Runtime, tmp_path: Path) -> None:
    ws = create_workspace(runtime, "A")
    sources = copy_sources(tmp_path)
    workspace_file = sources[1].directory / "0001_platform.sql"
    workspace_file.write_text(
        workspace_file.read_text().replace("-- migrate:down", "-- x\n-- migrate:down")
    )
    migrator = Migrator(runtime.storage, sources)
    reports = {r.label: r for r in migrator.up()}
    assert reports["control"].status == "unchanged"
    assert reports[ws.id].status == "refused"
    assert "checksum drift" in reports[ws.id].error
    assert "core:0001_platform" in reports[ws.id].error
    assert migrator.status()[1]["drift"]


def test_a_failing_migration_leaves_that_file_intact_and_others_migrated(
    runtime: Runtime, tmp_path: Path
) -> None:
    good = create_workspace(runtime, "good")
    bad = create_workspace(runtime, "bad")
    with runtime.storage.workspace(bad.id).write() as conn:  # a table the migration will hit
        conn.execute("CREATE TABLE collide (x)")
    before = snapshots(runtime)
    sources = copy_sources(tmp_path)
    next_version = len(list(sources[1].directory.glob("*.sql"))) + 1
    (sources[1].directory / f"{next_version:04d}_more.sql").write_text(
        "-- migrate:up\nCREATE TABLE extra (id INTEGER PRIMARY KEY, workspace_id TEXT);\n"
        "CREATE TABLE collide (y);\n-- migrate:down\nDROP TABLE collide;\nDROP TABLE extra;\n"
    )
    reports = {r.label: r for r in Migrator(runtime.storage, sources).up()}
    assert reports[bad.id].status == "failed"
    assert f"core:{next_version:04d}_more failed" in reports[bad.id].error
    assert reports[bad.id].after == reports[bad.id].before == {"core": next_version - 1}
    assert snapshots(runtime)[bad.id] == before[bad.id]  # nothing half-applied
    with runtime.storage.workspace(bad.id).read() as conn:
        assert max(v for _, v in applied(conn)) == next_version - 1
    assert reports[good.id].status == "ok"
    with runtime.storage.workspace(good.id).read() as conn:
        assert scalar(conn, "SELECT count(*) FROM sqlite_schema WHERE name = 'extra'") == 1


def test_dry_run_changes_nothing(runtime: Runtime) -> None:
    create_workspace(runtime, "A")
    runtime.migrator.down(0)
    before = snapshots(runtime)
    reports = runtime.migrator.up(dry_run=True)
    assert [r.applied for r in reports] == [
        all_labels(runtime, "control"),
        all_labels(runtime, "workspace"),
    ]
    assert snapshots(runtime) == before


def test_rehearse_round_trips_on_copies_only(runtime: Runtime) -> None:
    create_workspace(runtime, "A")
    runtime.migrator.down(0)
    before = snapshots(runtime)
    reports = runtime.migrator.rehearse()
    assert [r.status for r in reports] == ["ok", "ok"]
    assert [r.applied for r in reports] == [
        all_labels(runtime, "control"),
        all_labels(runtime, "workspace"),
    ]
    assert snapshots(runtime) == before


def test_rehearse_catches_a_down_that_does_not_undo_its_up(
    runtime: Runtime, tmp_path: Path
) -> None:
    sources = copy_sources(tmp_path)
    next_version = len(list(sources[0].directory.glob("*.sql"))) + 1
    (sources[0].directory / f"{next_version:04d}_leaky.sql").write_text(
        "-- migrate:up\nCREATE TABLE a (x);\nCREATE TABLE b (x);\n-- migrate:down\nDROP TABLE a;\n"
    )
    reports = Migrator(runtime.storage, sources).rehearse()
    assert reports[0].status == "failed"
    assert "did not restore" in reports[0].error


def test_plugin_migrations_have_their_own_sequence(plugin_runtime: Runtime) -> None:
    ws = create_workspace(plugin_runtime, "A")
    with plugin_runtime.storage.workspace(ws.id).read() as conn:
        assert {k for k in applied(conn) if k[0] == "sample"} == {("sample", 1), ("sample", 2)}
    reports = plugin_runtime.migrator.down(0, source="sample")
    assert [r.applied for r in reports] == [
        ["sample:0002_crashy (down)", "sample:0001_notes (down)"]
    ]
    with plugin_runtime.storage.workspace(ws.id).read() as conn:
        assert {source for source, _ in applied(conn)} == {"core"}


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("0001_x.sql", "CREATE TABLE x (y);", "needs a '-- migrate:up' part"),
        ("1_x.sql", "-- migrate:up\n-- migrate:down\n", "bad migration file name"),
        ("0002_x.sql", "-- migrate:up\n-- migrate:down\n", "without gaps"),
    ],
)
def test_malformed_migration_files_are_refused(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    (tmp_path / name).write_text(text)
    with pytest.raises(MigrationError, match=message):
        load_source(MigrationSource("x", "workspace", tmp_path))


def test_rehearse_with_nothing_pending_replays_the_latest_migration(runtime: Runtime) -> None:
    create_workspace(runtime, "A")
    before = snapshots(runtime)
    reports = runtime.migrator.rehearse()
    assert [r.status for r in reports] == ["ok", "ok"]
    assert [r.applied for r in reports] == [
        all_labels(runtime, "control")[-1:],
        all_labels(runtime, "workspace")[-1:],
    ]
    assert snapshots(runtime) == before
