"""huey tasks of the knowledge base, declared through the ``workbench_jobs`` hook.

- ``knowledge.ingest(workspace_id, [[document_id, version], ...])``: one pipeline batch.
- ``knowledge.retry_due()``: every minute, in every workspace, runs the retries that are due by
  the injected clock and recovers attempts whose worker died.
- ``knowledge.rebuild_index(workspace_id, index_seq)``: re-embeds into a new index after an
  embedder switch, then switches over.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from huey import crontab

from workbench.jobs import enqueue
from workbench.runtime import Runtime

log = logging.getLogger(__name__)

INGEST_BATCH = 64


def register(huey: Any, runtime: Runtime) -> None:
    from workbench.knowledge.pipeline import Ingestion

    @huey.task(name="knowledge.ingest")
    def ingest(workspace_id: str, items: list[list[Any]]) -> dict[str, int]:
        report = Ingestion(runtime, workspace_id).run([(str(i), int(v)) for i, v in items])
        return {
            "indexed": len(report.indexed),
            "failed": len(report.failed),
            "chunks": report.chunks,
        }

    @huey.task(name="knowledge.rebuild_index")
    def rebuild_index(workspace_id: str, index_seq: int) -> str:
        return Ingestion(runtime, workspace_id).rebuild(index_seq)

    @huey.periodic_task(crontab(minute="*"), name="knowledge.retry_due")
    def retry_due() -> int:
        retried = 0
        for workspace_id in runtime.storage.workspace_ids_on_disk():
            try:
                if not _has_retry_work(runtime, workspace_id):
                    continue  # looked at without entering the open-file cache
                retried += len(Ingestion(runtime, workspace_id).retry_due())
            except Exception:  # one broken workspace must not stop the others
                log.exception("knowledge retry sweep failed for %s", workspace_id)
        return retried


def _has_retry_work(runtime: Runtime, workspace_id: str) -> bool:
    import apsw

    from workbench.clock import isoformat
    from workbench.knowledge import store
    from workbench.knowledge.pipeline import QUEUED_STALE_AFTER, STUCK_AFTER

    now = runtime.clock.now()
    try:
        with runtime.storage.peek(workspace_id) as conn:
            return bool(
                store.stuck_documents(conn, isoformat(now - STUCK_AFTER), limit=1)
                or store.due_retries(
                    conn, isoformat(now), isoformat(now - QUEUED_STALE_AFTER), limit=1
                )
            )
    except apsw.SQLError:  # not migrated yet: nothing of ours in it
        return False


def enqueue_ingest(runtime: Runtime, workspace_id: str, items: list[tuple[str, int]]) -> None:
    for start in range(0, len(items), INGEST_BATCH):
        batch = [
            [document_id, version] for document_id, version in items[start : start + INGEST_BATCH]
        ]
        enqueue(runtime.huey, "knowledge.ingest", workspace_id, batch)


def schedule(runtime: Runtime, name: str, delay_seconds: float, *args: Any) -> None:
    """Enqueue a task to run ``delay_seconds`` from now. Best effort: the ``retry_due`` sweep
    finds due work the queue lost."""
    huey = runtime.huey
    for task_class in huey._registry._registry.values():
        if task_class.__name__ == name:
            eta = datetime.now(UTC).replace(tzinfo=None) + timedelta(seconds=delay_seconds)
            try:
                huey.enqueue(task_class(args=args, eta=eta))
            except Exception:
                log.exception("could not schedule %s", name)
            return
    log.warning("no job named %s to schedule", name)
