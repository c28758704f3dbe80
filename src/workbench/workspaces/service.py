"""Workspace lifecycle rules: create (the creator is owner), list mine, rename, archive, delete.

Creating a workspace writes two files, in a safe order: the workspace file is created and
migrated first, then the control row and the owner's membership commit together; if the
control write fails the new file is removed, so no half-made workspace is left behind.

Deleting exports first: the file is copied with SQLite's backup API to
``<data_dir>/exports/<workspace_id>-<timestamp>.db`` and the copy must open and pass
``PRAGMA integrity_check``; only then is the control row deleted and the file removed.
"""

from __future__ import annotations

from typing import cast

import msgspec

from workbench import audit
from workbench.auth import store as auth_store
from workbench.auth.audit_trail import mirror_to_workspace, record
from workbench.auth.models import Principal
from workbench.clock import isoformat
from workbench.db.migrations import MigrationError
from workbench.errors import Conflict, NotFound, PreconditionFailed
from workbench.events.outbox import emit
from workbench.ids import new_workspace_id
from workbench.logs import correlation_id as current_correlation_id
from workbench.runtime import Runtime
from workbench.workspaces import store
from workbench.workspaces.export import export_workspace
from workbench.workspaces.models import (
    MyWorkspace,
    RoleName,
    Workspace,
    WorkspaceCreated,
    WorkspaceDeleted,
    WorkspaceUpdate,
)


def create_workspace(
    runtime: Runtime,
    name: str,
    *,
    owner_id: str | None = None,
    actor: str | None = None,
    correlation_id: str | None = None,
) -> Workspace:
    """Create a workspace; with ``owner_id`` that user becomes its owner in the same control
    transaction that records the workspace."""
    name = name.strip()
    if not 1 <= len(name) <= 200:
        raise ValueError("workspace name must be 1 to 200 characters")
    correlation_id = correlation_id or current_correlation_id.get()
    actor = actor or owner_id
    workspace_id = new_workspace_id()
    now = isoformat(runtime.clock.now())
    workspace = Workspace(
        id=workspace_id, name=name, status="active", created_at=now, updated_at=now
    )
    storage = runtime.storage
    if owner_id is not None:
        with storage.control.read() as conn:
            if auth_store.user_by_id(conn, owner_id) is None:
                raise NotFound("the owner's account does not exist")
    db = storage.create_workspace_file(workspace_id)
    try:
        report = runtime.migrator.migrate_file(workspace_id, db, "workspace")
        if report.status in ("failed", "refused"):
            raise MigrationError(report.error)
        with db.write() as conn:
            audit.append(
                conn,
                action="workspace.created",
                actor=actor,
                target=workspace_id,
                workspace_id=workspace_id,
                correlation_id=correlation_id,
                details={"name": name, "owner": owner_id},
                clock=runtime.clock,
            )
            emit(
                conn,
                runtime.events.build(
                    "workspace.created",
                    workspace_id=workspace_id,
                    payload=WorkspaceCreated(name=name),
                    correlation_id=correlation_id,
                    actor=actor,
                    clock=runtime.clock,
                ),
            )
        with storage.control.write() as conn:
            store.insert(conn, workspace)
            if owner_id is not None:
                store.insert_membership(conn, workspace_id, owner_id, "owner", now)
            audit.append(
                conn,
                action="workspace.created",
                actor=actor,
                target=workspace_id,
                workspace_id=workspace_id,
                correlation_id=correlation_id,
                details={"name": name, "owner": owner_id},
                clock=runtime.clock,
            )
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


def list_my_workspaces(runtime: Runtime, principal: Principal) -> list[MyWorkspace]:
    """The caller's workspaces; only the token's own workspace for an API token."""
    only = principal.workspace_id if principal.via == "token" else None
    with runtime.storage.control.read() as conn:
        return store.workspaces_of(conn, principal.user_id, only)


def get_my_workspace(runtime: Runtime, principal: Principal) -> MyWorkspace:
    workspace_id = _scoped(principal)
    with runtime.storage.control.read() as conn:
        found = store.workspaces_of(conn, principal.user_id, workspace_id)
    if not found:
        raise NotFound("workspace not found")
    return _with_role(found[0], principal)


def update_workspace(
    runtime: Runtime,
    principal: Principal,
    change: WorkspaceUpdate,
    *,
    expected_version: int | None = None,
) -> MyWorkspace:
    """Rename, archive or unarchive. ``expected_version`` (from ``If-Match``) must match."""
    workspace_id = _scoped(principal)
    actions: list[tuple[str, dict[str, object]]] = []
    with runtime.storage.control.write() as conn:
        current = store.get(conn, workspace_id)
        if current is None:
            raise NotFound("workspace not found")
        if expected_version is not None and expected_version != current.version:
            raise PreconditionFailed(
                f"the workspace changed (version {current.version}, you sent {expected_version})",
                current_version=current.version,
            )
        name = current.name if change.name is msgspec.UNSET else change.name.strip()
        status = current.status if change.status is msgspec.UNSET else change.status
        if not name:
            raise Conflict("a workspace name cannot be blank")
        if name != current.name:
            actions.append(("workspace.renamed", {"from": current.name, "to": name}))
        if status != current.status:
            actions.append(
                ("workspace.archived" if status == "archived" else "workspace.unarchived", {})
            )
        updated = current
        if actions:
            changed = store.update(
                conn,
                workspace_id,
                name=name,
                status=status,
                updated_at=isoformat(runtime.clock.now()),
            )
            if changed is None:
                raise NotFound("workspace not found")
            updated = changed
            for action, details in actions:
                record(
                    conn,
                    runtime,
                    action,
                    actor=principal.user_id,
                    target=workspace_id,
                    workspace_id=workspace_id,
                    details=details,
                )
    for action, details in actions:
        mirror_to_workspace(
            runtime,
            workspace_id,
            action,
            actor=principal.user_id,
            target=workspace_id,
            details=details,
        )
    return _with_role(updated, principal)


def delete_workspace(runtime: Runtime, principal: Principal) -> WorkspaceDeleted:
    """Export, verify the export, then delete the control row and the file.

    The workspace's write lock is held from the export until the control row is gone, so no
    write can land after the export and be lost.
    """
    workspace_id = _scoped(principal)
    storage = runtime.storage
    db = storage.workspace(workspace_id)
    with db.write():
        export = export_workspace(runtime, workspace_id)
        relative = export.relative_to(runtime.settings.data_path).as_posix()
        with storage.control.write() as conn:
            if not store.delete(conn, workspace_id):
                export.unlink(missing_ok=True)
                raise NotFound("workspace not found")
            record(
                conn,
                runtime,
                "workspace.deleted",
                actor=principal.user_id,
                target=workspace_id,
                workspace_id=workspace_id,
                details={"export": relative},
            )
        db.retired = True  # writers queued behind this lock get NotFound, not a lost write
    remove_workspace_files(runtime, workspace_id)
    return WorkspaceDeleted(id=workspace_id, export_path=relative)


def _scoped(principal: Principal) -> str:
    """The workspace the guard resolved for this request."""
    if principal.workspace_id is None or principal.role is None:
        raise NotFound("workspace not found")
    return principal.workspace_id


def _with_role(workspace: Workspace | MyWorkspace, principal: Principal) -> MyWorkspace:
    """The workspace with the role the caller acts with (capped by a token's ceiling)."""
    return MyWorkspace(
        id=workspace.id,
        name=workspace.name,
        status=workspace.status,
        created_at=workspace.created_at,
        updated_at=workspace.updated_at,
        version=workspace.version,
        role=cast(RoleName, principal.role),
    )
