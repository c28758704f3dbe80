"""The identity migration: STRICT tables, and up, down, up round-trips exactly."""

from __future__ import annotations

from pathlib import Path

from tests.identity_fixtures import make_world
from workbench.db.connection import schema_snapshot

IDENTITY_TABLES = ("users", "memberships", "sessions", "api_tokens", "invitations")


def test_identity_tables_are_strict(tmp_path: Path) -> None:
    with make_world(tmp_path / "data") as world, world.runtime.storage.control.read() as conn:
        for table in IDENTITY_TABLES:
            (sql,) = conn.execute(
                "SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?", (table,)
            ).fetchone()
            assert "STRICT" in sql, table
        columns = [r[1] for r in conn.execute("PRAGMA table_info(workspaces)")]
        assert columns[-1] == "version"


def test_identity_migration_round_trips(tmp_path: Path) -> None:
    with make_world(tmp_path / "data") as world:
        migrator, control = world.runtime.migrator, world.runtime.storage.control
        with control.read() as conn:
            after_up = schema_snapshot(conn)
        reports = migrator.down(to=1, target="control")
        assert [r.status for r in reports if r.label == "control"] == ["ok"]
        with control.read() as conn:
            names = {name for _, name, _ in schema_snapshot(conn)}
            assert not names & set(IDENTITY_TABLES)
            assert "version" not in [r[1] for r in conn.execute("PRAGMA table_info(workspaces)")]
        migrator.up()
        with control.read() as conn:
            assert schema_snapshot(conn) == after_up
        rehearsed = migrator.rehearse()
        assert all(r.status == "ok" for r in rehearsed), [(r.label, r.error) for r in rehearsed]


def test_rehearse_from_version_one_with_data(tmp_path: Path) -> None:
    """A control file at version 1 with workspaces in it migrates up and back."""
    with make_world(tmp_path / "data") as world:
        team = world.team()
        world.runtime.migrator.down(to=1, target="control")
        reports = world.runtime.migrator.rehearse()
        control = next(r for r in reports if r.label == "control")
        assert control.status == "ok", control.error
        assert "core:0002_identity" in control.applied
        world.runtime.migrator.up(target="control")
        with world.runtime.storage.control.read() as conn:
            (version,) = conn.execute(
                "SELECT version FROM workspaces WHERE id = ?", (team.workspace_id,)
            ).fetchone()
        assert version == 1  # existing workspaces get the default version
