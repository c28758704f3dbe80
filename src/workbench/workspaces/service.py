"""Workspace lifecycle rules. Creating a workspace writes two files, in a safe order:
the workspace file is created and migrated first, then the control row is committed; if the
control write fails the new file is removed, so no half-made workspace is left behind."""

from __future__ import annotations

from workbench import audit
from workbench.clock import isoformat
from workbench.db.migrations import MigrationError
from workbench.events.outbox import emit
from workbench.ids import new_workspace_id
from workbench.runtime import Runtime
from workbench.workspaces import store
from workbench.workspaces.models import Workspace, WorkspaceCreated


def create_workspace(
    runtime: Runtime,
    name: str,
    *,
    actor: str | None = None,
    correlation_id: str | None = None,
) -> Workspace:
    name = name.strip()
    if not 1 <= len(name) <= 200:
        raise ValueError("workspace name must be 1 to 200 characters")
    workspace_id = new_workspace_id()
    now = isoformat(runtime.clock.now())
    workspace = Workspace(
        id=workspace_id, name=name, status="active", created_at=now, updated_at=now
    )
    storage = runtime.storage
    db = storage.create_workspace_file(workspace_id)
    try:
        report = runtime.migrator.migrate_file(workspace_id, db, "workspace")
        if report.status in ("failed", "refused"):
            raise MigrationError(report.error)
        with db.write() as conn:
            audit.append(conn, action="workspace.created", actor=actor, target=workspace_id,
                         workspace_id=workspace_id, correlation_id=correlation_id,
                         details={"name": name}, clock=runtime.clock)
            emit(conn, runtime.events.build(
                "workspace.created", workspace_id=workspace_id,
                payload=WorkspaceCreated(name=name), correlation_id=correlation_id,
                actor=actor, clock=runtime.clock,
            ))
        with storage.control.write() as conn:
            store.insert(conn, workspace)
            audit.append(conn, action="workspace.created", actor=actor, target=workspace_id,
                         workspace_id=workspace_id, correlation_id=correlation_id,
                         details={"name": name}, clock=runtime.clock)
    except BaseException:
        remove_workspace_files(runtime, workspace_id)
        raise
    return workspace


def remove_workspace_files(runtime: Runtime, workspace_id: str) -> None:
    runtime.storage.forget_workspace(workspace_id)
    path = runtime.storage.workspace_path(workspace_id)
    for suffix in ("", "-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)


def list_workspaces(runtime: Runtime) -> list[Workspace]:
    with runtime.storage.control.read() as conn:
        return store.list_all(conn)
