"""The audit chain detects altered and removed rows, through the library and the CLI."""

from __future__ import annotations

import apsw
import pytest
from click.testing import CliRunner

from workbench import audit
from workbench.cli import cli
from workbench.db.database import Database
from workbench.runtime import Runtime
from workbench.workspaces.service import create_workspace


def fill(db: Database, count: int, runtime: Runtime, workspace_id: str | None = None) -> None:
    with db.write() as conn:
        for i in range(count):
            audit.append(
                conn,
                action="thing.done",
                actor=f"user{i}",
                target=f"t{i}",
                details={"i": i},
                correlation_id=f"c{i}",
                clock=runtime.clock,
                workspace_id=workspace_id,
            )


def tamper(db: Database, sql: str, params: tuple[object, ...] = ()) -> None:
    """What someone with the file could do: drop the append-only triggers and edit."""
    with db.write() as conn:
        conn.execute("DROP TRIGGER audit_log_append_only_update")
        conn.execute("DROP TRIGGER audit_log_append_only_delete")
        conn.execute(sql, params)


def run_verify(runtime: Runtime, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        cli, ["--data-dir", str(runtime.settings.data_path), "audit", "verify", *args]
    )
    return result.exit_code, result.output


def test_intact_chain_verifies(runtime: Runtime) -> None:
    fill(runtime.storage.control, 5, runtime)
    with runtime.storage.control.read() as conn:
        assert audit.verify(conn) == 5
    code, out = run_verify(runtime)
    assert code == 0
    assert "intact (5 entries)" in out


def test_the_table_refuses_updates_and_deletes(runtime: Runtime) -> None:
    fill(runtime.storage.control, 1, runtime)
    with (
        pytest.raises(apsw.ConstraintError, match="append-only"),
        runtime.storage.control.write() as conn,
    ):
        conn.execute("UPDATE audit_log SET actor = 'mallory'")
    with (
        pytest.raises(apsw.ConstraintError, match="append-only"),
        runtime.storage.control.write() as conn,
    ):
        conn.execute("DELETE FROM audit_log")


def test_an_edited_row_is_named(runtime: Runtime) -> None:
    fill(runtime.storage.control, 5, runtime)
    tamper(runtime.storage.control, "UPDATE audit_log SET actor = 'mallory' WHERE seq = 3")
    with runtime.storage.control.read() as conn, pytest.raises(audit.ChainBroken) as err:
        audit.verify(conn)
    assert err.value.seq == 3
    code, out = run_verify(runtime)
    assert code == 1
    assert "row 3: content does not match its hash" in out


def test_a_deleted_middle_row_is_named(runtime: Runtime) -> None:
    fill(runtime.storage.control, 5, runtime)
    tamper(runtime.storage.control, "DELETE FROM audit_log WHERE seq = 2")
    code, out = run_verify(runtime)
    assert code == 1
    assert "row 2 is missing" in out


def test_a_deleted_tail_row_is_detected(runtime: Runtime) -> None:
    fill(runtime.storage.control, 4, runtime)
    tamper(runtime.storage.control, "DELETE FROM audit_log WHERE seq = 4")
    code, out = run_verify(runtime)
    assert code == 1
    assert "row 4 is missing" in out


def test_a_recomputed_hash_still_breaks_the_next_link(runtime: Runtime) -> None:
    fill(runtime.storage.control, 3, runtime)
    tamper(runtime.storage.control, "UPDATE audit_log SET hash = ? WHERE seq = 1", ("f" * 64,))
    with runtime.storage.control.read() as conn, pytest.raises(audit.ChainBroken) as err:
        audit.verify(conn)
    assert err.value.seq == 1


def test_workspace_chain_via_cli(runtime: Runtime) -> None:
    ws = create_workspace(runtime, "A", actor="alice")
    db = runtime.storage.workspace(ws.id)
    fill(db, 3, runtime, ws.id)
    code, out = run_verify(runtime, "--workspace", ws.id)
    assert (code, out.strip()) == (0, f"{ws.id}: audit chain intact (4 entries)")
    tamper(db, "UPDATE audit_log SET details = '{}' WHERE seq = 2")
    code, out = run_verify(runtime, "--workspace", ws.id)
    assert code == 1
    assert "row 2" in out


def test_verify_refuses_a_path_like_workspace_id(runtime: Runtime) -> None:
    code, out = run_verify(runtime, "--workspace", "../control")
    assert code == 1
    assert out.strip() == "Error: not a workspace id: '../control'"
