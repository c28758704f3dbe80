"""``/healthz``, ``/readyz`` and ``/metrics``, registered as a default plugin."""

from __future__ import annotations

import time
from typing import Any

from litestar import Response, get
from litestar.datastructures import State
from litestar.di import NamedDependency

from workbench.db.migrations import applied, versions
from workbench.hookspecs import hookimpl
from workbench.http.problems import problem
from workbench.runtime import Runtime

_WORKSPACE_CHECK_TTL = 30.0


@get("/healthz", sync_to_thread=False, tags=["operations"], summary="Liveness")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@get("/readyz", sync_to_thread=True, tags=["operations"], summary="Readiness")
def readyz(runtime: NamedDependency[Runtime], state: State) -> Response[Any]:
    """Ready when the control file opens and every file's migrations are current."""
    checks: dict[str, Any] = {}
    try:
        with runtime.storage.control.read() as conn:
            checks["control_db"] = "ok"
            checks["control_migrations"] = (
                "current" if runtime.migrator.is_current("control", conn) else "behind"
            )
    except Exception as exc:
        checks["control_db"] = f"error: {type(exc).__name__}"
    try:
        checks["workspaces_behind"] = _workspaces_behind(runtime, state)
    except Exception as exc:
        checks["workspaces_behind"] = f"error: {type(exc).__name__}"
    ready = (
        checks.get("control_db") == "ok"
        and checks.get("control_migrations") == "current"
        and checks["workspaces_behind"] == 0
    )
    if not ready:
        return problem(503, "not ready", slug="not-ready", checks=checks)
    return Response({"status": "ready", "checks": checks})


def _workspaces_behind(runtime: Runtime, state: State) -> int:
    """How many workspace files are not at the latest migrations (or cannot be read).

    Checking thousands of files on every probe is waste, so the answer is cached briefly;
    files are peeked at without entering the open-file cache, so a probe never pushes the
    busy workspaces out of it.
    """
    cached = state.get("workspaces_behind")
    if cached and time.monotonic() - cached[0] < _WORKSPACE_CHECK_TTL:
        return int(cached[1])
    latest = {source: v for source, v in runtime.migrator.latest("workspace").items() if v}
    behind = 0
    for workspace_id in runtime.storage.workspace_ids_on_disk():
        try:
            with runtime.storage.peek(workspace_id) as conn:
                current = versions(applied(conn))
        except Exception:
            behind += 1
            continue
        if current != latest:
            behind += 1
    state["workspaces_behind"] = (time.monotonic(), behind)
    return behind


def forget_readiness(state: State) -> None:
    """Drop the cached answer (after migrating) so the next probe looks again."""
    state.pop("workspaces_behind", None)


@get(
    "/metrics",
    sync_to_thread=False,
    tags=["operations"],
    summary="Prometheus metrics",
    media_type="text/plain; version=0.0.4",
)
def metrics(state: State, runtime: NamedDependency[Runtime]) -> str:
    registry = state["metrics"]
    registry.gauges["workbench_open_workspace_files"] = runtime.storage.open_workspace_count()
    text: str = registry.render()
    return text


@hookimpl
def workbench_routes(runtime: Any) -> list[Any]:
    return [healthz, readyz, metrics]
