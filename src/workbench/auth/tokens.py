"""API token rules: created for oneself in one workspace, shown once, listed, revoked.

A token never acts above its creator: its role ceiling may not exceed the creator's role, and
it acts with the weaker of that ceiling and the holder's current membership role. Tokens do
not mint tokens, so a leaked token cannot make itself a longer-lived successor.
"""

from __future__ import annotations

from datetime import timedelta

from workbench.auth import credentials
from workbench.auth import store as auth_store
from workbench.auth.audit_trail import mirror_to_workspace, record
from workbench.auth.models import ApiToken, Principal, TokenCreate, TokenCreated
from workbench.auth.permissions import has_permission, role_rank
from workbench.auth.ratelimit import TOKENS_PER_ACCOUNT, TOKENS_PER_ADDRESS, RateLimiter
from workbench.clock import isoformat
from workbench.errors import Forbidden, NotFound
from workbench.ids import new_id
from workbench.runtime import Runtime
from workbench.workspaces import store as workspace_store


def _scope(principal: Principal) -> tuple[str, str]:
    """The workspace and role the caller acts in (set by the guard on workspace routes)."""
    if principal.workspace_id is None or principal.role is None:
        raise Forbidden("this action needs a workspace")
    return principal.workspace_id, principal.role


def issue_token(
    runtime: Runtime,
    *,
    user_id: str,
    workspace_id: str,
    name: str,
    role_ceiling: str | None = None,
    expires_in_days: int | None = None,
    actor: str | None = None,
) -> TokenCreated:
    """Store a new token for a member and return it (the only time the secret exists)."""
    name = name.strip()
    if not 1 <= len(name) <= 200:
        raise ValueError("a token name must be 1 to 200 characters")
    if role_ceiling is not None:
        role_rank(role_ceiling)
    now = runtime.clock.now()
    secret = credentials.new_secret(credentials.API_TOKEN_PREFIX)
    info = ApiToken(
        id=new_id("tok"),
        name=name,
        display_prefix=credentials.display_prefix(secret),
        user_id=user_id,
        workspace_id=workspace_id,
        role_ceiling=role_ceiling,
        created_at=isoformat(now),
        expires_at=isoformat(now + timedelta(days=expires_in_days)) if expires_in_days else None,
        last_used_at=None,
        revoked_at=None,
    )
    details = {
        "token_id": info.id,
        "name": name,
        "role_ceiling": role_ceiling,
        "expires_at": info.expires_at,
    }
    with runtime.storage.control.write() as conn:
        if workspace_store.membership(conn, workspace_id, user_id) is None:
            raise NotFound("not a member of this workspace")
        auth_store.insert_token(conn, info, credentials.hash_secret(secret))
        record(
            conn,
            runtime,
            "token.created",
            actor=actor or user_id,
            target=info.id,
            workspace_id=workspace_id,
            details=details,
        )
    mirror_to_workspace(
        runtime,
        workspace_id,
        "token.created",
        actor=actor or user_id,
        target=info.id,
        details=details,
    )
    return TokenCreated(token=secret, info=info)


def create_token(
    runtime: Runtime,
    limiter: RateLimiter,
    principal: Principal,
    body: TokenCreate,
    *,
    address: str,
) -> TokenCreated:
    workspace_id, role = _scope(principal)
    if principal.via == "token":
        raise Forbidden("API tokens cannot create tokens; sign in to create one")
    limiter.take(TOKENS_PER_ADDRESS, address)
    limiter.take(TOKENS_PER_ACCOUNT, principal.user_id)
    if body.role is not None and role_rank(body.role) > role_rank(role):
        raise Forbidden(f"a token cannot have a stronger role than yours ({role})")
    return issue_token(
        runtime,
        user_id=principal.user_id,
        workspace_id=workspace_id,
        name=body.name,
        role_ceiling=body.role,
        expires_in_days=body.expires_in_days,
        actor=principal.user_id,
    )


def list_tokens(runtime: Runtime, principal: Principal, *, everyone: bool) -> list[ApiToken]:
    """The caller's tokens in the workspace; everyone's with ``members.manage``."""
    workspace_id, role = _scope(principal)
    if everyone and not has_permission(role, "members.manage"):
        raise Forbidden("listing everyone's tokens needs the members.manage permission")
    with runtime.storage.control.read() as conn:
        return auth_store.list_tokens(conn, workspace_id, None if everyone else principal.user_id)


def revoke_token(runtime: Runtime, principal: Principal, token_id: str) -> None:
    """Revoke one's own token, or anyone's with ``members.manage``. Revoking twice is fine."""
    workspace_id, role = _scope(principal)
    if not credentials.TOKEN_ID_PATTERN.fullmatch(token_id):
        raise NotFound("no such token")
    now = isoformat(runtime.clock.now())
    with runtime.storage.control.write() as conn:
        token = auth_store.get_token(conn, workspace_id, token_id)
        mine = token is not None and token.user_id == principal.user_id
        if token is None or not (mine or has_permission(role, "members.manage")):
            raise NotFound("no such token")
        if not auth_store.revoke_token(conn, token_id, now):
            return
        details = {"token_id": token_id, "owner": token.user_id}
        record(
            conn,
            runtime,
            "token.revoked",
            actor=principal.user_id,
            target=token_id,
            workspace_id=workspace_id,
            details=details,
        )
    mirror_to_workspace(
        runtime,
        workspace_id,
        "token.revoked",
        actor=principal.user_id,
        target=token_id,
        details=details,
    )
