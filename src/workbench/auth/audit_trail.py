"""Audit entries for identity and membership changes, with the request's correlation id.

The control file's entry is written inside the transaction of the change, so the change and
its record commit together. Changes that concern one workspace are then copied into that
workspace file's own audit log, so the workspace's history is complete on its own; the
control entry stays the authoritative one if that copy fails.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import apsw

from workbench import audit
from workbench.errors import NotFound
from workbench.logs import correlation_id
from workbench.runtime import Runtime

log = logging.getLogger(__name__)


def record(
    conn: apsw.Connection,
    runtime: Runtime,
    action: str,
    *,
    actor: str | None = None,
    target: str | None = None,
    workspace_id: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> None:
    """Append to the audit log of ``conn``'s file, inside the caller's write transaction."""
    audit.append(
        conn,
        action=action,
        actor=actor,
        target=target,
        workspace_id=workspace_id,
        correlation_id=correlation_id.get(),
        details=details,
        clock=runtime.clock,
    )


def mirror_to_workspace(
    runtime: Runtime,
    workspace_id: str,
    action: str,
    *,
    actor: str | None = None,
    target: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> None:
    """Copy an entry into the workspace file's audit log, after the control change committed."""
    try:
        with runtime.storage.workspace(workspace_id).write() as conn:
            record(
                conn,
                runtime,
                action,
                actor=actor,
                target=target,
                workspace_id=workspace_id,
                details=details,
            )
    except NotFound:
        log.warning(
            "audit mirror skipped: workspace file missing",
            extra={"workspace_id": workspace_id, "action": action},
        )
    except Exception:
        log.exception("audit mirror failed", extra={"workspace_id": workspace_id, "action": action})
