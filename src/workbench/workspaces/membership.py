"""Membership rules: add, invite, accept, change role, remove, leave.

- A workspace always keeps an owner: removing, demoting or the leaving of the last owner is a
  409. The count and the change happen in one ``BEGIN IMMEDIATE`` transaction, so two owners
  demoting each other at once cannot both succeed.
- Nobody grants more than they hold: only an owner makes owners or changes an owner's role,
  and invitations carry at most the inviter's role.
- Invitations are single use (the database marks them accepted only if still open),
  expire, and are accepted by a signed-in user with the invited email address.
"""

from __future__ import annotations

from datetime import timedelta

from workbench.auth import credentials
from workbench.auth import store as auth_store
from workbench.auth.audit_trail import mirror_to_workspace, record
from workbench.auth.models import Principal
from workbench.auth.permissions import role_rank
from workbench.auth.ratelimit import INVITATION_ACCEPT_PER_ADDRESS, RateLimiter
from workbench.auth.service import normalize_email
from workbench.clock import isoformat
from workbench.errors import Conflict, Forbidden, Gone, NotFound
from workbench.ids import new_id, validate_workspace_id
from workbench.runtime import Runtime
from workbench.workspaces import store
from workbench.workspaces.models import Invitation, InvitationCreated, Member, MyWorkspace

INVITATION_LIFETIME = timedelta(days=7)
LAST_OWNER = (
    "a workspace must keep at least one owner: make someone else owner first, "
    "or delete the workspace"
)


def _scope(principal: Principal) -> tuple[str, str]:
    if principal.workspace_id is None or principal.role is None:
        raise NotFound("workspace not found")
    return principal.workspace_id, principal.role


def _member_id(user_id: str, principal: Principal) -> str:
    """``me`` means the caller; anything that is not a user id cannot be a member."""
    user_id = principal.user_id if user_id == "me" else user_id
    if not credentials.USER_ID_PATTERN.fullmatch(user_id):
        raise NotFound("no such member")
    return user_id


def add_member(
    runtime: Runtime, workspace_id: str, email: str, role: str, *, actor: str = "cli"
) -> Member:
    """Operators' door (``workbench member add``): add or re-role an existing account."""
    workspace_id = validate_workspace_id(workspace_id)
    role_rank(role)
    email = normalize_email(email)
    now = isoformat(runtime.clock.now())
    with runtime.storage.control.write() as conn:
        if store.get(conn, workspace_id) is None:
            raise NotFound(f"no workspace {workspace_id}")
        user = auth_store.user_by_email(conn, email)
        if user is None:
            raise NotFound(f"no user with email {email}; create it with 'workbench user create'")
        existing = store.get_member(conn, workspace_id, user.id)
        if existing is None:
            store.insert_membership(conn, workspace_id, user.id, role, now)
            action, details = "member.added", {"role": role}
        else:
            if (
                existing.role == "owner"
                and role != "owner"
                and store.count_owners(conn, workspace_id) == 1
            ):
                raise Conflict(LAST_OWNER)
            store.set_role(conn, workspace_id, user.id, role, now)
            action, details = "member.role_changed", {"from": existing.role, "to": role}
        record(
            conn,
            runtime,
            action,
            actor=actor,
            target=user.id,
            workspace_id=workspace_id,
            details=details,
        )
        member = store.get_member(conn, workspace_id, user.id)
    mirror_to_workspace(runtime, workspace_id, action, actor=actor, target=user.id, details=details)
    if member is None:
        raise NotFound("no such member")
    return member


def list_members(runtime: Runtime, principal: Principal) -> list[Member]:
    workspace_id, _ = _scope(principal)
    with runtime.storage.control.read() as conn:
        return store.list_members(conn, workspace_id)


def change_role(runtime: Runtime, principal: Principal, user_id: str, role: str) -> Member:
    workspace_id, actor_role = _scope(principal)
    user_id = _member_id(user_id, principal)
    now = isoformat(runtime.clock.now())
    with runtime.storage.control.write() as conn:
        target = store.get_member(conn, workspace_id, user_id)
        if target is None:
            raise NotFound("no such member")
        if target.role == role:
            return target
        if "owner" in (target.role, role) and actor_role != "owner":
            raise Forbidden("only an owner can make an owner or change an owner's role")
        if role_rank(role) > role_rank(actor_role):
            raise Forbidden(f"you cannot give a role stronger than your own ({actor_role})")
        if target.role == "owner" and store.count_owners(conn, workspace_id) == 1:
            raise Conflict(LAST_OWNER)
        store.set_role(conn, workspace_id, user_id, role, now)
        details = {"from": target.role, "to": role}
        record(
            conn,
            runtime,
            "member.role_changed",
            actor=principal.user_id,
            target=user_id,
            workspace_id=workspace_id,
            details=details,
        )
        changed = store.get_member(conn, workspace_id, user_id)
    mirror_to_workspace(
        runtime,
        workspace_id,
        "member.role_changed",
        actor=principal.user_id,
        target=user_id,
        details=details,
    )
    if changed is None:
        raise NotFound("no such member")
    return changed


def remove_member(runtime: Runtime, principal: Principal, user_id: str) -> None:
    """Remove a member (or leave, when ``user_id`` is the caller); their tokens for this
    workspace are revoked with the membership."""
    workspace_id, actor_role = _scope(principal)
    user_id = _member_id(user_id, principal)
    leaving = user_id == principal.user_id
    now = isoformat(runtime.clock.now())
    with runtime.storage.control.write() as conn:
        target = store.get_member(conn, workspace_id, user_id)
        if target is None:
            raise NotFound("no such member")
        if not leaving and target.role == "owner" and actor_role != "owner":
            raise Forbidden("only an owner can remove an owner")
        if target.role == "owner" and store.count_owners(conn, workspace_id) == 1:
            raise Conflict(LAST_OWNER)
        store.delete_membership(conn, workspace_id, user_id)
        revoked = auth_store.revoke_member_tokens(conn, workspace_id, user_id, now)
        action = "member.left" if leaving else "member.removed"
        details = {"role": target.role, "tokens_revoked": revoked}
        record(
            conn,
            runtime,
            action,
            actor=principal.user_id,
            target=user_id,
            workspace_id=workspace_id,
            details=details,
        )
    mirror_to_workspace(
        runtime, workspace_id, action, actor=principal.user_id, target=user_id, details=details
    )


# -- invitations ------------------------------------------------------------------------------


def invite(runtime: Runtime, principal: Principal, email: str, role: str) -> InvitationCreated:
    workspace_id, actor_role = _scope(principal)
    email = normalize_email(email)
    if role_rank(role) > role_rank(actor_role):
        raise Forbidden(f"you cannot invite with a role stronger than your own ({actor_role})")
    now = runtime.clock.now()
    secret = credentials.new_secret(credentials.INVITATION_PREFIX)
    invitation = Invitation(
        id=new_id("inv"),
        workspace_id=workspace_id,
        email=email,
        role=role,  # type: ignore[arg-type]
        invited_by=principal.user_id,
        created_at=isoformat(now),
        expires_at=isoformat(now + INVITATION_LIFETIME),
    )
    details = {"invitation_id": invitation.id, "email": email, "role": role}
    with runtime.storage.control.write() as conn:
        user = auth_store.user_by_email(conn, email)
        if user is not None and store.get_member(conn, workspace_id, user.id) is not None:
            raise Conflict("this person is already a member")
        store.revoke_pending_for_email(conn, workspace_id, email, isoformat(now))
        store.insert_invitation(conn, invitation, credentials.hash_secret(secret))
        record(
            conn,
            runtime,
            "invitation.created",
            actor=principal.user_id,
            target=invitation.id,
            workspace_id=workspace_id,
            details=details,
        )
    mirror_to_workspace(
        runtime,
        workspace_id,
        "invitation.created",
        actor=principal.user_id,
        target=invitation.id,
        details=details,
    )
    return InvitationCreated(token=secret, invitation=invitation)


def list_invitations(runtime: Runtime, principal: Principal) -> list[Invitation]:
    workspace_id, _ = _scope(principal)
    with runtime.storage.control.read() as conn:
        return store.pending_invitations(conn, workspace_id, isoformat(runtime.clock.now()))


def revoke_invitation(runtime: Runtime, principal: Principal, invitation_id: str) -> None:
    workspace_id, _ = _scope(principal)
    if not credentials.INVITATION_ID_PATTERN.fullmatch(invitation_id):
        raise NotFound("no such invitation")
    with runtime.storage.control.write() as conn:
        invitation = store.get_invitation(conn, workspace_id, invitation_id)
        if invitation is None:
            raise NotFound("no such invitation")
        if not store.revoke_invitation(conn, invitation_id, isoformat(runtime.clock.now())):
            return
        record(
            conn,
            runtime,
            "invitation.revoked",
            actor=principal.user_id,
            target=invitation_id,
            workspace_id=workspace_id,
        )
    mirror_to_workspace(
        runtime, workspace_id, "invitation.revoked", actor=principal.user_id, target=invitation_id
    )


def accept_invitation(
    runtime: Runtime, limiter: RateLimiter, principal: Principal, token: str, *, address: str
) -> MyWorkspace:
    """Join the workspace of an invitation, with its role. Used, expired or withdrawn
    invitations are refused (409, 410, 410)."""
    limiter.take(INVITATION_ACCEPT_PER_ADDRESS, address)
    if not credentials.INVITATION_PATTERN.fullmatch(token.strip()):
        raise NotFound("no such invitation")
    now = isoformat(runtime.clock.now())
    with runtime.storage.control.write() as conn:
        invitation = store.invitation_by_hash(conn, credentials.hash_secret(token.strip()))
        if invitation is None:
            raise NotFound("no such invitation")
        if invitation.accepted_at is not None:
            raise Conflict("this invitation has already been used")
        if invitation.revoked_at is not None:
            raise Gone("this invitation was withdrawn")
        if invitation.expires_at <= now:
            raise Gone("this invitation has expired; ask for a new one")
        if invitation.email != principal.email:
            raise Forbidden("this invitation was sent to another email address")
        workspace_id = invitation.workspace_id
        if store.get_member(conn, workspace_id, principal.user_id) is not None:
            raise Conflict("you are already a member of this workspace")
        if not store.mark_accepted(conn, invitation.id, principal.user_id, now):
            raise Conflict("this invitation has already been used")
        store.insert_membership(conn, workspace_id, principal.user_id, invitation.role, now)
        details = {"invitation_id": invitation.id, "role": invitation.role}
        record(
            conn,
            runtime,
            "member.joined",
            actor=principal.user_id,
            target=principal.user_id,
            workspace_id=workspace_id,
            details=details,
        )
        joined = store.workspaces_of(conn, principal.user_id, workspace_id)
    mirror_to_workspace(
        runtime,
        workspace_id,
        "member.joined",
        actor=principal.user_id,
        target=principal.user_id,
        details=details,
    )
    return joined[0]
