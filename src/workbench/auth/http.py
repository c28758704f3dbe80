"""HTTP details of identity: cookie names and attributes, client address, and the problem
responses that need headers (``WWW-Authenticate`` on 401, ``Retry-After`` on 429)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie
from litestar.di import NamedDependency
from litestar.params import PathParameter, QueryParameter

from workbench.auth.models import Principal
from workbench.auth.ratelimit import RateLimiter
from workbench.auth.service import SESSION_LIFETIME
from workbench.config import Settings
from workbench.errors import TooManyRequests, Unauthorized
from workbench.http.problems import problem
from workbench.runtime import Runtime

# Handler parameter types: dependencies and parameters named explicitly (Litestar 3 style).
Caller = NamedDependency[Principal]
"""The authenticated caller (the app-wide ``principal`` dependency)."""
Rt = NamedDependency[Runtime]
Limiter = NamedDependency[RateLimiter]
ResourceId = Annotated[str, PathParameter(min_length=1, max_length=100)]
AllFlag = Annotated[bool, QueryParameter(description="Everyone's, not only the caller's")]

SESSION_COOKIE = "wb_session"
CSRF_COOKIE = "wb_csrf"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def client_address(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    client = connection.client
    return client.host if client and client.host else "unknown"


def session_cookies(settings: Settings, token: str, csrf_token: str) -> list[Cookie]:
    """The session cookie (HTTP-only, invisible to scripts) and the CSRF cookie (readable by
    the page's scripts, which echo it in ``X-CSRF-Token``). Both SameSite=Lax."""
    max_age = int(SESSION_LIFETIME.total_seconds())
    common: dict[str, Any] = {
        "path": "/",
        "secure": settings.secure_cookies,
        "samesite": "lax",
        "max_age": max_age,
    }
    return [
        Cookie(key=SESSION_COOKIE, value=token, httponly=True, **common),
        Cookie(key=CSRF_COOKIE, value=csrf_token, httponly=False, **common),
    ]


def cleared_cookies(settings: Settings) -> list[Cookie]:
    common: dict[str, Any] = {
        "path": "/",
        "secure": settings.secure_cookies,
        "samesite": "lax",
        "max_age": 0,
        "value": "",
    }
    return [
        Cookie(key=SESSION_COOKIE, httponly=True, **common),
        Cookie(key=CSRF_COOKIE, httponly=False, **common),
    ]


def handle_unauthorized(request: Request[Any, Any, Any], exc: Unauthorized) -> Response[Any]:
    return problem(
        exc.status,
        exc.detail,
        slug=exc.type_slug,
        title=exc.title,
        headers={"WWW-Authenticate": 'Bearer realm="workbench"'},
        **exc.extra,
    )


def handle_rate_limited(request: Request[Any, Any, Any], exc: TooManyRequests) -> Response[Any]:
    retry_after = exc.extra.get("retry_after")
    headers = {"Retry-After": str(int(retry_after))} if retry_after else None
    return problem(
        exc.status, exc.detail, slug=exc.type_slug, title=exc.title, headers=headers, **exc.extra
    )


AUTH_EXCEPTION_HANDLERS: dict[type[Exception] | int, Any] = {
    Unauthorized: handle_unauthorized,
    TooManyRequests: handle_rate_limited,
}
