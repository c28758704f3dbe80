"""SQL for users, sessions and API tokens in the control file. No rules here, only rows."""

from __future__ import annotations

from typing import Any

import apsw

from workbench.auth.models import ApiToken, UserRecord
from workbench.db.connection import one, rows

_USER_COLUMNS = "id, email, password_hash, created_at, updated_at"
_TOKEN_COLUMNS = (
    "id, name, display_prefix, user_id, workspace_id, role_ceiling, created_at, expires_at,"
    " last_used_at, revoked_at"
)

# -- users ------------------------------------------------------------------------------------


def insert_user(conn: apsw.Connection, user: UserRecord) -> None:
    conn.execute(
        f"INSERT INTO users ({_USER_COLUMNS}) VALUES (?, ?, ?, ?, ?)",
        (user.id, user.email, user.password_hash, user.created_at, user.updated_at),
    )


def user_by_email(conn: apsw.Connection, email: str) -> UserRecord | None:
    row = one(conn, f"SELECT {_USER_COLUMNS} FROM users WHERE email = ?", (email,))
    return UserRecord(**row) if row else None


def user_by_id(conn: apsw.Connection, user_id: str) -> UserRecord | None:
    row = one(conn, f"SELECT {_USER_COLUMNS} FROM users WHERE id = ?", (user_id,))
    return UserRecord(**row) if row else None


def set_password_hash(conn: apsw.Connection, user_id: str, password_hash: str, now: str) -> None:
    conn.execute(
        "UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?",
        (password_hash, now, user_id),
    )


# -- sessions ---------------------------------------------------------------------------------


def insert_session(
    conn: apsw.Connection,
    *,
    session_id: str,
    token_hash: str,
    csrf_hash: str,
    user_id: str,
    created_at: str,
    expires_at: str,
) -> None:
    conn.execute(
        "INSERT INTO sessions (id, token_hash, csrf_hash, user_id, created_at, expires_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (session_id, token_hash, csrf_hash, user_id, created_at, expires_at),
    )


def session_with_user(conn: apsw.Connection, token_hash: str) -> dict[str, Any] | None:
    """The session for a token hash joined with its user's id and email."""
    return one(
        conn,
        "SELECT s.id, s.csrf_hash, s.user_id, s.expires_at, s.revoked_at, u.email"
        " FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = ?",
        (token_hash,),
    )


def revoke_session(conn: apsw.Connection, session_id: str, now: str) -> None:
    conn.execute(
        "UPDATE sessions SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (now, session_id)
    )


def revoke_user_sessions(
    conn: apsw.Connection, user_id: str, now: str, *, keep: str | None = None
) -> int:
    conn.execute(
        "UPDATE sessions SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL"
        " AND id IS NOT ?",
        (now, user_id, keep),
    )
    return conn.changes()


def delete_dead_sessions(conn: apsw.Connection, before: str) -> int:
    conn.execute("DELETE FROM sessions WHERE expires_at < ? OR revoked_at < ?", (before, before))
    return conn.changes()


# -- API tokens -------------------------------------------------------------------------------


def insert_token(conn: apsw.Connection, token: ApiToken, token_hash: str) -> None:
    conn.execute(
        f"INSERT INTO api_tokens (token_hash, {_TOKEN_COLUMNS})"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            token_hash,
            token.id,
            token.name,
            token.display_prefix,
            token.user_id,
            token.workspace_id,
            token.role_ceiling,
            token.created_at,
            token.expires_at,
            token.last_used_at,
            token.revoked_at,
        ),
    )


def token_with_user(conn: apsw.Connection, token_hash: str) -> dict[str, Any] | None:
    """The token for a hash joined with its user's email."""
    return one(
        conn,
        f"SELECT {', '.join('t.' + c.strip() for c in _TOKEN_COLUMNS.split(','))}, u.email"
        " FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = ?",
        (token_hash,),
    )


def get_token(conn: apsw.Connection, workspace_id: str, token_id: str) -> ApiToken | None:
    row = one(
        conn,
        f"SELECT {_TOKEN_COLUMNS} FROM api_tokens WHERE workspace_id = ? AND id = ?",
        (workspace_id, token_id),
    )
    return ApiToken(**row) if row else None


def list_tokens(
    conn: apsw.Connection, workspace_id: str, user_id: str | None = None
) -> list[ApiToken]:
    """Tokens of a workspace, newest first; only one user's when ``user_id`` is given."""
    return [
        ApiToken(**row)
        for row in rows(
            conn,
            f"SELECT {_TOKEN_COLUMNS} FROM api_tokens WHERE workspace_id = ?"
            " AND (? IS NULL OR user_id = ?) ORDER BY created_at DESC, id DESC",
            (workspace_id, user_id, user_id),
        )
    ]


def revoke_token(conn: apsw.Connection, token_id: str, now: str) -> bool:
    conn.execute(
        "UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (now, token_id)
    )
    return conn.changes() > 0


def revoke_member_tokens(conn: apsw.Connection, workspace_id: str, user_id: str, now: str) -> int:
    conn.execute(
        "UPDATE api_tokens SET revoked_at = ? WHERE workspace_id = ? AND user_id = ?"
        " AND revoked_at IS NULL",
        (now, workspace_id, user_id),
    )
    return conn.changes()


def touch_token(conn: apsw.Connection, token_id: str, now: str) -> None:
    conn.execute("UPDATE api_tokens SET last_used_at = ? WHERE id = ?", (now, token_id))
