"""SQL for workspaces, memberships and invitations in the control file. Rows, not rules."""

from __future__ import annotations

from typing import Any

import apsw

from workbench.db.connection import one, rows, scalar
from workbench.workspaces.models import Invitation, Member, MyWorkspace, Workspace

_COLUMNS = "id, name, status, created_at, updated_at, version"
_INVITATION_COLUMNS = (
    "id, workspace_id, email, role, invited_by, created_at, expires_at, accepted_at,"
    " accepted_by, revoked_at"
)

# -- workspaces -------------------------------------------------------------------------------


def insert(conn: apsw.Connection, workspace: Workspace) -> None:
    conn.execute(
        f"INSERT INTO workspaces ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
        (
            workspace.id,
            workspace.name,
            workspace.status,
            workspace.created_at,
            workspace.updated_at,
            workspace.version,
        ),
    )


def get(conn: apsw.Connection, workspace_id: str) -> Workspace | None:
    row = one(conn, f"SELECT {_COLUMNS} FROM workspaces WHERE id = ?", (workspace_id,))
    return Workspace(**row) if row else None


def list_all(conn: apsw.Connection) -> list[Workspace]:
    return [
        Workspace(**row)
        for row in rows(conn, f"SELECT {_COLUMNS} FROM workspaces ORDER BY created_at, id")
    ]


def update(
    conn: apsw.Connection, workspace_id: str, *, name: str, status: str, updated_at: str
) -> Workspace | None:
    row = one(
        conn,
        "UPDATE workspaces SET name = ?, status = ?, updated_at = ?, version = version + 1"
        f" WHERE id = ? RETURNING {_COLUMNS}",
        (name, status, updated_at, workspace_id),
    )
    return Workspace(**row) if row else None


def delete(conn: apsw.Connection, workspace_id: str) -> bool:
    """Delete the row; memberships, tokens and invitations go with it (ON DELETE CASCADE)."""
    conn.execute("DELETE FROM workspaces WHERE id = ?", (workspace_id,))
    return conn.changes() > 0


def workspaces_of(
    conn: apsw.Connection, user_id: str, only: str | None = None
) -> list[MyWorkspace]:
    """The workspaces a user belongs to, with their role; one of them when ``only`` is set."""
    return [
        MyWorkspace(**row)
        for row in rows(
            conn,
            "SELECT w.id, w.name, w.status, w.created_at, w.updated_at, w.version, m.role"
            " FROM memberships m JOIN workspaces w ON w.id = m.workspace_id"
            " WHERE m.user_id = ? AND (? IS NULL OR w.id = ?) ORDER BY w.created_at, w.id",
            (user_id, only, only),
        )
    ]


# -- memberships ------------------------------------------------------------------------------


def insert_membership(
    conn: apsw.Connection, workspace_id: str, user_id: str, role: str, now: str
) -> None:
    conn.execute(
        "INSERT INTO memberships (workspace_id, user_id, role, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?)",
        (workspace_id, user_id, role, now, now),
    )


def membership(conn: apsw.Connection, workspace_id: str, user_id: str) -> dict[str, Any] | None:
    """The member's role and the workspace's status, or None when not a member."""
    return one(
        conn,
        "SELECT m.role, w.status FROM memberships m JOIN workspaces w ON w.id = m.workspace_id"
        " WHERE m.workspace_id = ? AND m.user_id = ?",
        (workspace_id, user_id),
    )


def get_member(conn: apsw.Connection, workspace_id: str, user_id: str) -> Member | None:
    row = one(
        conn,
        "SELECT m.user_id, u.email, m.role, m.created_at AS joined_at, m.updated_at"
        " FROM memberships m JOIN users u ON u.id = m.user_id"
        " WHERE m.workspace_id = ? AND m.user_id = ?",
        (workspace_id, user_id),
    )
    return Member(**row) if row else None


def list_members(conn: apsw.Connection, workspace_id: str) -> list[Member]:
    return [
        Member(**row)
        for row in rows(
            conn,
            "SELECT m.user_id, u.email, m.role, m.created_at AS joined_at, m.updated_at"
            " FROM memberships m JOIN users u ON u.id = m.user_id"
            " WHERE m.workspace_id = ? ORDER BY m.created_at, u.email",
            (workspace_id,),
        )
    ]


def set_role(conn: apsw.Connection, workspace_id: str, user_id: str, role: str, now: str) -> None:
    conn.execute(
        "UPDATE memberships SET role = ?, updated_at = ? WHERE workspace_id = ? AND user_id = ?",
        (role, now, workspace_id, user_id),
    )


def delete_membership(conn: apsw.Connection, workspace_id: str, user_id: str) -> bool:
    conn.execute(
        "DELETE FROM memberships WHERE workspace_id = ? AND user_id = ?", (workspace_id, user_id)
    )
    return conn.changes() > 0


def count_owners(conn: apsw.Connection, workspace_id: str) -> int:
    return int(
        scalar(
            conn,
            "SELECT count(*) FROM memberships WHERE workspace_id = ? AND role = 'owner'",
            (workspace_id,),
        )
    )


# -- invitations ------------------------------------------------------------------------------


def insert_invitation(conn: apsw.Connection, invitation: Invitation, token_hash: str) -> None:
    conn.execute(
        f"INSERT INTO invitations (token_hash, {_INVITATION_COLUMNS})"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            token_hash,
            invitation.id,
            invitation.workspace_id,
            invitation.email,
            invitation.role,
            invitation.invited_by,
            invitation.created_at,
            invitation.expires_at,
            invitation.accepted_at,
            invitation.accepted_by,
            invitation.revoked_at,
        ),
    )


def invitation_by_hash(conn: apsw.Connection, token_hash: str) -> Invitation | None:
    row = one(
        conn, f"SELECT {_INVITATION_COLUMNS} FROM invitations WHERE token_hash = ?", (token_hash,)
    )
    return Invitation(**row) if row else None


def get_invitation(
    conn: apsw.Connection, workspace_id: str, invitation_id: str
) -> Invitation | None:
    row = one(
        conn,
        f"SELECT {_INVITATION_COLUMNS} FROM invitations WHERE workspace_id = ? AND id = ?",
        (workspace_id, invitation_id),
    )
    return Invitation(**row) if row else None


def pending_invitations(conn: apsw.Connection, workspace_id: str, now: str) -> list[Invitation]:
    return [
        Invitation(**row)
        for row in rows(
            conn,
            f"SELECT {_INVITATION_COLUMNS} FROM invitations WHERE workspace_id = ?"
            " AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > ?"
            " ORDER BY created_at DESC, id DESC",
            (workspace_id, now),
        )
    ]


def revoke_invitation(conn: apsw.Connection, invitation_id: str, now: str) -> bool:
    conn.execute(
        "UPDATE invitations SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL"
        " AND accepted_at IS NULL",
        (now, invitation_id),
    )
    return conn.changes() > 0


def revoke_pending_for_email(conn: apsw.Connection, workspace_id: str, email: str, now: str) -> int:
    conn.execute(
        "UPDATE invitations SET revoked_at = ? WHERE workspace_id = ? AND email = ?"
        " AND accepted_at IS NULL AND revoked_at IS NULL",
        (now, workspace_id, email),
    )
    return conn.changes()


def mark_accepted(conn: apsw.Connection, invitation_id: str, user_id: str, now: str) -> bool:
    """Mark accepted only if still open: the single-use guarantee, checked by the database."""
    conn.execute(
        "UPDATE invitations SET accepted_at = ?, accepted_by = ? WHERE id = ?"
        " AND accepted_at IS NULL AND revoked_at IS NULL",
        (now, user_id, invitation_id),
    )
    return conn.changes() > 0
