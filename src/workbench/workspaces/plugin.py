"""Registers the workspace event types and routes through the same hooks a plugin uses."""

from __future__ import annotations

from typing import Any

from workbench.events.envelope import EventType
from workbench.hookspecs import hookimpl
from workbench.workspaces.models import WorkspaceCreated


@hookimpl
def workbench_event_types() -> list[EventType]:
    return [EventType("workspace.created", 1, WorkspaceCreated, "A workspace was created.")]


@hookimpl
def workbench_routes(runtime: Any) -> list[Any]:
    from workbench.workspaces.routes import workspace_router

    return [workspace_router(runtime)]
