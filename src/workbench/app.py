"""``create_app()``: the Litestar application, wired from a runtime and the plugins' routes."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar
from litestar.config.app import AppConfig
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin

from workbench import __version__
from workbench.auth.guards import authorize, check_route_permissions, provide_principal
from workbench.auth.http import AUTH_EXCEPTION_HANDLERS
from workbench.config import Settings, load_settings
from workbench.http.context import RequestContextMiddleware
from workbench.http.metrics import Metrics
from workbench.http.problems import EXCEPTION_HANDLERS, document_problems
from workbench.runtime import Runtime, collect

log = logging.getLogger(__name__)


def create_app(
    runtime: Runtime | None = None,
    *,
    settings: Settings | None = None,
    embedded_worker: bool = False,
) -> Litestar:
    """Build the app. Without a runtime, settings come from the file and the environment."""
    runtime = runtime or Runtime(settings or load_settings())
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        runtime.initialize()
        runtime.startup()
        consumer = None
        if embedded_worker:
            from workbench.jobs import start_embedded_consumer

            consumer = start_embedded_consumer(runtime.huey, runtime.settings.worker_threads)
            log.info("embedded worker started", extra={"workers": runtime.settings.worker_threads})
        try:
            yield
        finally:
            if consumer is not None:
                consumer.stop(graceful=True)
            runtime.close()

    routes = collect(runtime.pm, "workbench_routes", runtime=runtime)
    app = WorkbenchApp(
        route_handlers=routes,
        dependencies={
            "runtime": Provide(lambda: runtime, use_cache=True, sync_to_thread=False),
            "principal": Provide(provide_principal, sync_to_thread=False),
        },
        guards=[authorize],
        exception_handlers={**EXCEPTION_HANDLERS, **AUTH_EXCEPTION_HANDLERS},
        lifespan=[lifespan],
        state=_initial_state(runtime, metrics),
        openapi_config=OpenAPIConfig(
            title="Workbench",
            version=__version__,
            path="/schema",
            render_plugins=[JsonRenderPlugin()],
        ),
        request_max_body_size=runtime.settings.max_body_bytes,
        on_app_init=[_no_debug],
        debug=False,
        logging_config=None,
    )
    check_route_permissions(app)  # a workspace route without a permission must not start
    document_problems(app)
    return app


class WorkbenchApp(Litestar):
    """Litestar with the request-context middleware outermost, so every response (a 404 for
    an unknown path included) carries the correlation id and is counted in the metrics."""

    def _create_asgi_handler(self) -> Any:
        return RequestContextMiddleware(super()._create_asgi_handler(), self.state["metrics"])


def _initial_state(runtime: Runtime, metrics: Metrics) -> Any:
    from litestar.datastructures import State

    return State({"runtime": runtime, "metrics": metrics})


def _no_debug(config: AppConfig) -> AppConfig:
    config.debug = False
    return config
