"""What crosses the boundary for identity: the caller (``Principal``), request and response
bodies for sign-up, login, passwords and API tokens."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

Email = Annotated[str, msgspec.Meta(min_length=3, max_length=254)]
Password = Annotated[str, msgspec.Meta(min_length=8, max_length=256)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
RoleName = Literal["owner", "admin", "member", "viewer"]
ExpiryDays = Annotated[int, msgspec.Meta(ge=1, le=3650)]


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    """Who is calling, in which workspace and with which effective role.

    ``workspace_id`` and ``role`` are set on workspace routes (the role already capped by the
    token's ceiling). A bearer token always carries the workspace it was issued for, also on
    routes outside workspaces.
    """

    user_id: str
    email: str
    workspace_id: str | None = None
    role: str | None = None
    token_id: str | None = None
    via: Literal["token", "session"] = "session"


# -- bodies ----------------------------------------------------------------------------------


class SignupRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    email: Email
    password: Password


class LoginRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    email: Annotated[str, msgspec.Meta(max_length=254)]
    password: Annotated[str, msgspec.Meta(max_length=256)]


class PasswordChange(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    current_password: Annotated[str, msgspec.Meta(max_length=256)]
    new_password: Password


class TokenCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: Name
    expires_in_days: ExpiryDays | None = None
    role: RoleName | None = None
    """The role ceiling: the token acts with at most this role."""


# -- answers ---------------------------------------------------------------------------------


class User(msgspec.Struct, kw_only=True):
    id: str
    email: str
    created_at: str


class UserRecord(msgspec.Struct, kw_only=True):
    """A user as stored, with the password hash; never sent over HTTP."""

    id: str
    email: str
    password_hash: str
    created_at: str
    updated_at: str

    def public(self) -> User:
        return User(id=self.id, email=self.email, created_at=self.created_at)


class LoginResult(msgspec.Struct, kw_only=True):
    user: User
    csrf_token: str
    """Send it back in the ``X-CSRF-Token`` header of every state-changing request."""
    expires_at: str


class NewSession(msgspec.Struct, kw_only=True):
    """A session just opened: the secrets go into cookies once and are not kept."""

    id: str
    user: User
    token: str
    csrf_token: str
    expires_at: str


class Me(msgspec.Struct, kw_only=True):
    user: User
    via: Literal["token", "session"]
    workspace_id: str | None = None
    token_id: str | None = None


class ApiToken(msgspec.Struct, kw_only=True):
    id: str
    name: str
    display_prefix: str
    user_id: str
    workspace_id: str
    role_ceiling: str | None
    created_at: str
    expires_at: str | None
    last_used_at: str | None
    revoked_at: str | None


class TokenCreated(msgspec.Struct, kw_only=True):
    """The new token; ``token`` is shown this once and never again."""

    token: str
    info: ApiToken


class TokenList(msgspec.Struct, kw_only=True):
    tokens: list[ApiToken]
