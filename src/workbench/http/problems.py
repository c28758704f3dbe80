"""RFC 9457 problem details for every error the HTTP layer returns."""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from workbench.errors import WorkbenchError
from workbench.logs import correlation_id

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"

_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    412: "Precondition failed",
    413: "Request body too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}


def problem(
    status: int,
    detail: str,
    /,
    *,
    slug: str | None = None,
    title: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response[dict[str, Any]]:
    body: dict[str, Any] = {
        "type": f"/problems/{slug}" if slug else "about:blank",
        "title": title or _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "correlation_id": correlation_id.get(),
    }
    body.update({k: v for k, v in extra.items() if k not in body})  # never overwrite the core
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def handle_workbench_error(request: Request[Any, Any, Any], exc: WorkbenchError) -> Response[Any]:
    return problem(exc.status, exc.detail, slug=exc.type_slug, title=exc.title, **exc.extra)


def handle_validation_error(
    request: Request[Any, Any, Any], exc: ValidationException
) -> Response[Any]:
    errors = exc.extra if isinstance(exc.extra, list) else []
    return problem(400, str(exc.detail), slug="validation", title="Invalid request", errors=errors)


def handle_http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    status = exc.status_code
    headers = dict(exc.headers or {})
    detail = str(exc.detail) if exc.detail else _TITLES.get(status, "Error")
    if status >= 500:
        log.error("http error", exc_info=exc)
        detail = _TITLES.get(status, "Error")
    return problem(status, detail, headers=headers or None)


def handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Never a stack trace in the response: it goes to the log, with the correlation id."""
    log.error("unhandled error", exc_info=exc)
    return problem(
        HTTP_500_INTERNAL_SERVER_ERROR,
        "An unexpected error occurred; quote the correlation id when reporting it.",
        slug="internal",
    )


EXCEPTION_HANDLERS: dict[type[Exception] | int, Any] = {
    WorkbenchError: handle_workbench_error,
    ValidationException: handle_validation_error,
    HTTPException: handle_http_exception,
    Exception: handle_unexpected,
}
