"""SQL for the ``workspaces`` table of the control file."""

from __future__ import annotations

import apsw

from workbench.db.connection import one, rows
from workbench.workspaces.models import Workspace

_COLUMNS = "id, name, status, created_at, updated_at"


def insert(conn: apsw.Connection, workspace: Workspace) -> None:
    conn.execute(
        f"INSERT INTO workspaces ({_COLUMNS}) VALUES (?, ?, ?, ?, ?)",
        (workspace.id, workspace.name, workspace.status, workspace.created_at,
         workspace.updated_at),
    )


def get(conn: apsw.Connection, workspace_id: str) -> Workspace | None:
    row = one(conn, f"SELECT {_COLUMNS} FROM workspaces WHERE id = ?", (workspace_id,))
    return Workspace(**row) if row else None


def list_all(conn: apsw.Connection) -> list[Workspace]:
    return [
        Workspace(**row)
        for row in rows(conn, f"SELECT {_COLUMNS} FROM workspaces ORDER BY created_at, id")
    ]
