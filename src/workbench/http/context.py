"""Per-request context: the correlation id (``X-Request-ID``), access log and metrics."""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from litestar.types import ASGIApp, Message, Receive, Scope, Send

from workbench.http.metrics import Metrics
from workbench.logs import correlation_id

log = logging.getLogger("workbench.access")

REQUEST_ID_HEADER = b"x-request-id"
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")


def choose_correlation_id(raw: bytes | None) -> str:
    """Honour a caller's X-Request-ID when it is short and plain; otherwise make one."""
    if raw:
        value = raw.decode("latin-1")
        if _SAFE_REQUEST_ID.fullmatch(value):
            return value
    return uuid.uuid4().hex


class RequestContextMiddleware:
    """Pure ASGI middleware, outermost: every response, errors included, carries the id."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # websockets and lifespan pass straight through
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        cid = choose_correlation_id(headers.get(REQUEST_ID_HEADER))
        token = correlation_id.set(cid)
        started = time.perf_counter()
        status_holder: dict[str, Any] = {"status": 500}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                message["headers"] = [
                    *[
                        (k, v)
                        for k, v in message.get("headers", [])
                        if k.lower() != REQUEST_ID_HEADER
                    ],
                    (REQUEST_ID_HEADER, cid.encode()),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("path_template") or "unmatched"
            status = status_holder["status"]
            method = str(scope.get("method", "GET"))
            self.metrics.observe(method, route, status, elapsed)
            log.info(
                "request",
                extra={
                    "method": method,
                    "path": scope["path"],
                    "route": route,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 3),
                },
            )
            correlation_id.reset(token)
