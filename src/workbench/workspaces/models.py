"""What crosses the boundary for workspaces."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

WorkspaceName = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class Workspace(msgspec.Struct, kw_only=True):
    id: str
    name: str
    status: Literal["active", "archived"]
    created_at: str
    updated_at: str


class WorkspaceCreated(msgspec.Struct, kw_only=True):
    """Payload of ``workspace.created`` v1."""

    name: str
