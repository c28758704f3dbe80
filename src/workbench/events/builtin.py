"""Background dispatch of outbox events: a task per workspace and a periodic sweep."""

from __future__ import annotations

import logging
from typing import Any

from huey import crontab

from workbench.hookspecs import hookimpl

log = logging.getLogger(__name__)


@hookimpl
def workbench_jobs(huey: Any, runtime: Any) -> None:
    @huey.task(name="events.dispatch_workspace")
    def dispatch_workspace(workspace_id: str) -> dict[str, int]:
        report = runtime.dispatcher.dispatch(runtime.storage.workspace(workspace_id))
        return {"delivered": report.delivered, "failed": report.failed, "dead": report.dead}

    @huey.periodic_task(crontab(minute="*"), name="events.sweep")
    def sweep() -> int:
        """Catch up on events whose immediate dispatch was lost (a crash, a full queue)."""
        swept = 0
        for workspace_id in runtime.storage.workspace_ids_on_disk():
            with runtime.storage.peek(workspace_id) as conn:  # no churn in the open-file cache
                behind = runtime.dispatcher.behind(conn)
            if behind:
                runtime.dispatcher.dispatch(runtime.storage.workspace(workspace_id))
                swept += 1
        return swept
