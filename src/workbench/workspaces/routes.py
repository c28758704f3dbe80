"""HTTP for workspaces, members and invitations. Each workspace route declares the
permission it needs; the app-level guard has checked it before the handler runs."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, Router, delete, get, patch, post
from litestar.di import Provide
from litestar.params import JSONBody
from litestar.status_codes import HTTP_201_CREATED

from workbench.auth.http import Caller, Limiter, ResourceId, Rt, client_address
from workbench.auth.ratelimit import limiter_for
from workbench.errors import BadRequest
from workbench.runtime import Runtime
from workbench.workspaces import membership, service
from workbench.workspaces.models import (
    InvitationAccept,
    InvitationCreate,
    InvitationCreated,
    InvitationList,
    Member,
    MemberList,
    MemberRoleUpdate,
    MyWorkspace,
    WorkspaceCreate,
    WorkspaceDeleted,
    WorkspaceList,
    WorkspaceUpdate,
)

WORKSPACE = "/workspaces/{workspace_id:str}"


def _etag(workspace: MyWorkspace) -> dict[str, str]:
    return {"ETag": f'"{workspace.version}"'}


def expected_version(if_match: str | None) -> int | None:
    """The version an ``If-Match`` header asks for; None when absent or ``*``."""
    if if_match is None or if_match.strip() == "*":
        return None
    value = if_match.strip().removeprefix("W/").strip('"')
    if not value.isdigit():
        # unreadable is a client error, never mistaken for "no precondition" (as for items)
        raise BadRequest(f'If-Match must be an ETag of this API, like "3"; got {if_match!r:.60}')
    return int(value)


@post(
    "/workspaces",
    sync_to_thread=True,
    tags=["workspaces"],
    summary="Create a workspace",
    opt={"auth": "session"},
    status_code=HTTP_201_CREATED,
)
def create_workspace(
    data: JSONBody[WorkspaceCreate], principal: Caller, runtime: Rt
) -> MyWorkspace:
    """Create a workspace; the caller becomes its owner."""
    created = service.create_workspace(runtime, data.name, owner_id=principal.user_id)
    return MyWorkspace(
        id=created.id,
        name=created.name,
        status=created.status,
        created_at=created.created_at,
        updated_at=created.updated_at,
        version=created.version,
        role="owner",
    )


@get(
    "/workspaces",
    sync_to_thread=True,
    tags=["workspaces"],
    summary="List my workspaces",
    opt={"auth": "user"},
)
def list_workspaces(principal: Caller, runtime: Rt) -> WorkspaceList:
    return WorkspaceList(workspaces=service.list_my_workspaces(runtime, principal))


@get(
    WORKSPACE,
    sync_to_thread=True,
    tags=["workspaces"],
    summary="Get a workspace",
    opt={"permission": "workspace.read"},
)
def get_workspace(principal: Caller, runtime: Rt) -> Response[MyWorkspace]:
    found = service.get_my_workspace(runtime, principal)
    return Response(found, headers=_etag(found))


@patch(
    WORKSPACE,
    sync_to_thread=True,
    tags=["workspaces"],
    summary="Rename, archive or unarchive a workspace",
    opt={"permission": "workspace.manage"},
)
def update_workspace(
    request: Request[Any, Any, Any],
    data: JSONBody[WorkspaceUpdate],
    principal: Caller,
    runtime: Rt,
) -> Response[MyWorkspace]:
    """Send ``If-Match`` with the ETag you read to refuse (412) a concurrent change."""
    version = expected_version(request.headers.get("if-match"))
    updated = service.update_workspace(runtime, principal, data, expected_version=version)
    return Response(updated, headers=_etag(updated))


@delete(
    WORKSPACE,
    sync_to_thread=True,
    tags=["workspaces"],
    summary="Delete a workspace",
    opt={"permission": "workspace.delete"},
    status_code=200,
)
def delete_workspace(principal: Caller, runtime: Rt) -> WorkspaceDeleted:
    """Export the workspace file to the data directory, verify it, then delete."""
    return service.delete_workspace(runtime, principal)


@get(
    WORKSPACE + "/members",
    sync_to_thread=True,
    tags=["members"],
    summary="List members",
    opt={"permission": "members.read"},
)
def list_members(principal: Caller, runtime: Rt) -> MemberList:
    return MemberList(members=membership.list_members(runtime, principal))


@patch(
    WORKSPACE + "/members/{user_id:str}",
    sync_to_thread=True,
    tags=["members"],
    summary="Change a member's role",
    opt={"permission": "members.manage"},
)
def change_role(
    user_id: ResourceId, data: JSONBody[MemberRoleUpdate], principal: Caller, runtime: Rt
) -> Member:
    return membership.change_role(runtime, principal, user_id, data.role)


@delete(
    WORKSPACE + "/members/{user_id:str}",
    sync_to_thread=True,
    tags=["members"],
    summary="Remove a member, or leave (your own id or 'me')",
    opt={
        "permission": "members.manage",
        "self_param": "user_id",
        "self_permission": "workspace.read",
    },
)
def remove_member(user_id: ResourceId, principal: Caller, runtime: Rt) -> None:
    membership.remove_member(runtime, principal, user_id)


@post(
    WORKSPACE + "/invitations",
    sync_to_thread=True,
    tags=["members"],
    summary="Invite someone by email",
    opt={"permission": "members.manage"},
    status_code=HTTP_201_CREATED,
)
def invite(data: JSONBody[InvitationCreate], principal: Caller, runtime: Rt) -> InvitationCreated:
    """The invitation token is in this answer only; it is single use and expires in 7 days."""
    return membership.invite(runtime, principal, data.email, data.role)


@get(
    WORKSPACE + "/invitations",
    sync_to_thread=True,
    tags=["members"],
    summary="List pending invitations",
    opt={"permission": "members.manage"},
)
def list_invitations(principal: Caller, runtime: Rt) -> InvitationList:
    return InvitationList(invitations=membership.list_invitations(runtime, principal))


@delete(
    WORKSPACE + "/invitations/{invitation_id:str}",
    sync_to_thread=True,
    tags=["members"],
    summary="Withdraw an invitation",
    opt={"permission": "members.manage"},
)
def revoke_invitation(invitation_id: ResourceId, principal: Caller, runtime: Rt) -> None:
    membership.revoke_invitation(runtime, principal, invitation_id)


@post(
    "/invitations/accept",
    sync_to_thread=True,
    tags=["members"],
    summary="Accept an invitation",
    opt={"auth": "session"},
    status_code=200,
)
def accept_invitation(
    request: Request[Any, Any, Any],
    data: JSONBody[InvitationAccept],
    principal: Caller,
    runtime: Rt,
    limiter: Limiter,
) -> MyWorkspace:
    """Join a workspace with an invitation sent to your email address."""
    return membership.accept_invitation(
        runtime, limiter, principal, data.token, address=client_address(request)
    )


def workspace_router(runtime: Runtime) -> Router:
    limiter = limiter_for(runtime)
    return Router(
        path="/api/v1",
        route_handlers=[
            create_workspace,
            list_workspaces,
            get_workspace,
            update_workspace,
            delete_workspace,
            list_members,
            change_role,
            remove_member,
            invite,
            list_invitations,
            revoke_invitation,
            accept_invitation,
        ],
        dependencies={"limiter": Provide(lambda: limiter, use_cache=True, sync_to_thread=False)},
    )
