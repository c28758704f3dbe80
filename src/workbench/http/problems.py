"""RFC 9457 problem details for every error the HTTP layer returns."""

from __future__ import annotations

import logging
from typing import Any

import msgspec
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


class ProblemDetails(msgspec.Struct, kw_only=True):
    """RFC 9457 problem details, as every error response carries them."""

    type: str
    title: str
    status: int
    detail: str
    correlation_id: str | None


_COMMON_ERRORS = {400: "Bad request: the problem names the field", 500: "Unexpected error"}
_GUARDED_ERRORS = {
    401: "No valid credentials",
    403: "The caller's role lacks the permission",
    404: "Not found, or not visible to the caller",
}
_WRITE_ERRORS = {
    401: "No valid credentials",
    403: "Not allowed",
    409: "Conflicts with the current state",
    412: "Stale version",
    413: "Body too large",
    415: "Unsupported media type",
    422: "Well-formed but not acceptable",
    428: "Version required",
    429: "Rate limited",
}


def document_problems(app: Any) -> None:
    """List the problem responses each route can give in the OpenAPI document."""
    from litestar.handlers import HTTPRouteHandler
    from litestar.openapi.datastructures import ResponseSpec

    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            if not isinstance(handler, HTTPRouteHandler) or not handler.include_in_schema:
                continue
            codes = dict(_COMMON_ERRORS)
            if handler.opt.get("permission") or handler.opt.get("auth"):
                codes.update(_GUARDED_ERRORS)
            if handler.http_methods - {"GET", "HEAD", "OPTIONS"}:
                codes.update(_WRITE_ERRORS)
            specs = {
                code: ResponseSpec(
                    data_container=ProblemDetails,
                    media_type=PROBLEM_JSON,
                    description=text,
                    generate_examples=False,
                )
                for code, text in codes.items()
            }
            handler.responses = {**specs, **(handler.responses or {})}


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
