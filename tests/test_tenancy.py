"""The third wall: a workspace file refuses rows that name another workspace."""

from __future__ import annotations

import apsw
import pytest

from workbench.db.connection import scalar
from workbench.ids import new_workspace_id
from workbench.runtime import Runtime
from workbench.workspaces.service import create_workspace


def test_guard_rejects_a_foreign_workspace_id_on_insert_and_update(runtime: Runtime) -> None:
    ws = create_workspace(runtime, "A")
    db = runtime.storage.workspace(ws.id)
    other = new_workspace_id()
    insert = (
        "INSERT INTO outbox (event_id, event_type, version, workspace_id, occurred_at, payload)"
        " VALUES (?, 't', 1, ?, 'now', '{}')"
    )
    with pytest.raises(apsw.ConstraintError, match="does not belong"), db.write() as conn:
        conn.execute(insert, ("evt_x", other))
    with db.write() as conn:
        conn.execute(insert, ("evt_y", ws.id))
    with pytest.raises(apsw.ConstraintError, match="does not belong"), db.write() as conn:
        conn.execute("UPDATE outbox SET workspace_id = ? WHERE event_id = 'evt_y'", (other,))
    with db.read() as conn:
        assert scalar(conn, "SELECT workspace_id FROM outbox WHERE event_id = 'evt_y'") == ws.id
        assert scalar(conn, "SELECT count(*) FROM outbox WHERE workspace_id = ?", (other,)) == 0


def test_every_tenant_table_is_guarded(plugin_runtime: Runtime) -> None:
    """Core tables and plugin tables alike get the guard triggers after migrating."""
    ws = create_workspace(plugin_runtime, "A")
    with plugin_runtime.storage.workspace(ws.id).read() as conn:
        tables = {
            name
            for (name,) in conn.execute(
                "SELECT m.name FROM sqlite_schema m, pragma_table_info(m.name) p "
                "WHERE m.type = 'table' AND p.name = 'workspace_id'"
            )
        }
        triggers = {
            name
            for (name,) in conn.execute(
                "SELECT name FROM sqlite_schema WHERE type = 'trigger' AND name LIKE 'tenant_guard_%'"
            )
        }
    assert {"outbox", "audit_log", "sample_notes"} <= tables
    for table in tables:
        assert f"tenant_guard_{table}_insert" in triggers
        assert f"tenant_guard_{table}_update" in triggers
