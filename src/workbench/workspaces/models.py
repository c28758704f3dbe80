"""What crosses the boundary for workspaces, memberships and invitations."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

WorkspaceName = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
WorkspaceStatus = Literal["active", "archived"]
RoleName = Literal["owner", "admin", "member", "viewer"]
Email = Annotated[str, msgspec.Meta(min_length=3, max_length=254)]


class Workspace(msgspec.Struct, kw_only=True):
    id: str
    name: str
    status: WorkspaceStatus
    created_at: str
    updated_at: str
    version: int = 1
    """Bumped by every change; sent as the ETag, checked against ``If-Match``."""


class WorkspaceCreated(msgspec.Struct, kw_only=True):
    """Payload of ``workspace.created`` v1."""

    name: str


class WorkspaceCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: WorkspaceName


class WorkspaceUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A partial update: fields left out stay as they are."""

    name: WorkspaceName | msgspec.UnsetType = msgspec.UNSET
    status: WorkspaceStatus | msgspec.UnsetType = msgspec.UNSET


class MyWorkspace(msgspec.Struct, kw_only=True):
    """A workspace as one of its members sees it, with the member's role."""

    id: str
    name: str
    status: WorkspaceStatus
    created_at: str
    updated_at: str
    version: int
    role: RoleName


class WorkspaceList(msgspec.Struct, kw_only=True):
    workspaces: list[MyWorkspace]


class WorkspaceDeleted(msgspec.Struct, kw_only=True):
    id: str
    export_path: str
    """Where the last state of the workspace file was exported, relative to the data dir."""


class Member(msgspec.Struct, kw_only=True):
    user_id: str
    email: str
    role: RoleName
    joined_at: str
    updated_at: str


class MemberList(msgspec.Struct, kw_only=True):
    members: list[Member]


class MemberRoleUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    role: RoleName


class InvitationCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    email: Email
    role: RoleName = "member"


class Invitation(msgspec.Struct, kw_only=True):
    id: str
    workspace_id: str
    email: str
    role: RoleName
    invited_by: str | None
    created_at: str
    expires_at: str
    accepted_at: str | None = None
    accepted_by: str | None = None
    revoked_at: str | None = None


class InvitationCreated(msgspec.Struct, kw_only=True):
    """The new invitation; ``token`` is shown this once. Hand it to the invitee, who sends it
    to ``POST /api/v1/invitations/accept`` while signed in with the invited email."""

    token: str
    invitation: Invitation


class InvitationList(msgspec.Struct, kw_only=True):
    invitations: list[Invitation]


class InvitationAccept(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    token: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
