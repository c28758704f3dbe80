"""The command line through click's runner, with exact output where it matters."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from click.testing import CliRunner, Result

from workbench.cli import cli
from workbench.db.migrations import core_migrations_root


def run(data: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--data-dir", str(data), *args])


def test_init_creates_data_dir_control_file_and_private_key(tmp_path: Path) -> None:
    data = tmp_path / "data"
    result = run(data, "init")
    assert result.exit_code == 0, result.output
    assert (data / "control.db").is_file()
    key = data / "secret.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert f"created {key}" in result.output
    again = run(data, "init")  # idempotent, and the key is never replaced
    assert again.exit_code == 0
    assert "created" not in again.output


def test_workspace_create_and_list(tmp_path: Path) -> None:
    data = tmp_path / "data"
    created = run(data, "workspace", "create", "Design team")
    assert created.exit_code == 0, created.output
    workspace_id = created.output.strip()
    assert workspace_id.startswith("ws_") and len(workspace_id) == 35
    assert (data / "workspaces" / f"{workspace_id}.db").is_file()
    listed = run(data, "workspace", "list")
    assert listed.stdout == f"{workspace_id}\tactive\tDesign team\n"
    as_json = json.loads(run(data, "workspace", "list", "--json").output)
    assert [w["name"] for w in as_json] == ["Design team"]
    empty = run(data, "workspace", "create", "  ")
    assert (empty.exit_code, empty.stderr) == (
        1,
        "Error: workspace name must be 1 to 200 characters\n",
    )


def test_migrate_commands(tmp_path: Path) -> None:
    data = tmp_path / "data"
    workspace_id = run(data, "workspace", "create", "A").output.strip()
    status = run(data, "migrate", "status")
    control_at = len(list(core_migrations_root().joinpath("control").glob("*.sql")))
    workspace_at = len(list(core_migrations_root().joinpath("workspace").glob("*.sql")))
    assert status.stdout.splitlines() == [
        f"control (control) at {{'core': {control_at}}}: current",
        f"{workspace_id} (workspace) at {{'core': {workspace_at}}}: current",
    ]
    down = run(data, "migrate", "down", "--to", "0")
    assert down.exit_code == 0
    assert "core:0001_platform (down)]" in down.stdout
    assert "2 files: 2 changed, 0 failed or refused" in down.output
    dry = run(data, "migrate", "dry-run")
    assert "control: applied [core:0001_platform" in dry.stdout
    assert "pending" in run(data, "migrate", "status").stdout
    rehearse = run(data, "migrate", "rehearse")
    assert rehearse.exit_code == 0 and "0 failed" in rehearse.output
    up = run(data, "migrate", "up")
    assert up.exit_code == 0
    assert "current" in run(data, "migrate", "status").output
    status_json = json.loads(run(data, "migrate", "status", "--json").output)
    assert [row["pending"] for row in status_json] == [[], []]


def test_migrate_failure_exits_non_zero(tmp_path: Path) -> None:
    data = tmp_path / "data"
    workspace_id = run(data, "workspace", "create", "A").output.strip()
    run(data, "migrate", "down", "--to", "0", "--workspace", workspace_id)
    assert (
        "control: up to date"
        not in run(data, "migrate", "down", "--to", "0", "--workspace", workspace_id).stdout
    )
    import apsw

    conn = apsw.Connection(str(data / "workspaces" / f"{workspace_id}.db"))
    conn.execute("CREATE TABLE outbox (x)")  # the migration will collide with this
    conn.close()
    result = run(data, "migrate", "up")
    assert result.exit_code == 1
    assert (
        f"{workspace_id}: FAILED: core:0001_platform failed: table outbox already exists"
        in result.stdout
    )
    assert "2 files: 0 changed, 1 failed or refused" in result.output


def test_bad_workspace_id_is_one_line(tmp_path: Path) -> None:
    result = run(tmp_path, "migrate", "up", "--workspace", "../../etc")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == "Error: not a workspace id: '../../etc'"
    assert not (tmp_path.parent / "etc").exists()
