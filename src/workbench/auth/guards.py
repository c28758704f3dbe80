"""The app-level guard: who is calling, in which workspace, with what permission.

Every route declares what it needs in its ``opt``:

- ``{"permission": "items.write"}`` on every route under ``/api/v1/workspaces/{workspace_id}``;
- ``{"auth": "user"}`` for routes outside workspaces that need a signed-in caller (a session
  or an API token), ``{"auth": "session"}`` for those that need a browser session;
- nothing for public routes (health, login, sign-up); API routes say so explicitly with
  ``{"public": True}``, and a test requires every ``/api/`` route to declare one of the three.

Optionally ``{"self_param": "user_id"}``: when that path parameter names the caller (or is
``me``), the route needs only ``self_permission`` (default ``workspace.read``), so any member
may act on themselves (leave a workspace) while acting on others needs ``permission``.

Failures: no valid credentials 401; not a member, a token of another workspace or no such
workspace 404 (a workspace's existence is never revealed); a member without the permission
403; a cookie-authenticated state-changing request without the CSRF token 403.
``check_route_permissions`` makes ``create_app`` refuse a workspace route that declares no
known permission.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import anyio.to_thread
from litestar import Litestar, Request
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler, HTTPRouteHandler
from litestar.routes import BaseRoute, HTTPRoute

from workbench.auth import credentials
from workbench.auth.http import CSRF_COOKIE, CSRF_HEADER, SAFE_METHODS, SESSION_COOKIE
from workbench.auth.models import Principal
from workbench.auth.permissions import (
    BLOCKED_WHEN_ARCHIVED,
    PERMISSIONS,
    has_permission,
    weaker_role,
)
from workbench.auth.service import authenticate_bearer, authenticate_session
from workbench.errors import Conflict, Forbidden, NotFound, Unauthorized
from workbench.ids import validate_workspace_id
from workbench.runtime import Runtime
from workbench.workspaces import store as workspace_store

WORKSPACE_PARAM = "workspace_id"
AUTH_LEVELS = frozenset({"user", "session"})
AUTO_OPTIONS_PERMISSION = "workspace.read"


class RouteDeclarationError(Exception):
    """A route's ``opt`` does not say (correctly) what it needs; the app refuses to start."""


@dataclass(frozen=True)
class RequestFacts:
    """What the guard needs from a request, copied out so the checks can run in a thread."""

    method: str
    authorization: str | None
    session_cookie: str | None
    csrf_cookie: str | None
    csrf_header: str | None
    path_params: Mapping[str, Any]
    permission: str | None
    auth: str | None
    self_param: str | None
    self_permission: str


async def authorize(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """Litestar guard: authenticate, authorize and put the ``Principal`` on the request."""
    opt = handler.opt
    workspace_scoped = WORKSPACE_PARAM in connection.path_params
    permission = opt.get("permission")
    if workspace_scoped and permission is None and is_auto_options(handler):
        permission = AUTO_OPTIONS_PERMISSION
    auth = opt.get("auth")
    if not workspace_scoped and permission is None and auth is None:
        return  # a public route
    if (permission is not None and not workspace_scoped) or (workspace_scoped and not permission):
        raise Forbidden("this route does not declare what it needs")  # fail closed
    facts = RequestFacts(
        method=str(cast(Any, connection.scope).get("method", "GET")),  # websockets: no method
        authorization=connection.headers.get("authorization"),
        session_cookie=connection.cookies.get(SESSION_COOKIE),
        csrf_cookie=connection.cookies.get(CSRF_COOKIE),
        csrf_header=connection.headers.get(CSRF_HEADER),
        path_params=dict(connection.path_params),
        permission=permission,
        auth=auth,
        self_param=opt.get("self_param"),
        self_permission=opt.get("self_permission", "workspace.read"),
    )
    runtime: Runtime = connection.app.state["runtime"]
    principal, session_id = await anyio.to_thread.run_sync(
        functools.partial(resolve_principal, runtime, facts)
    )
    connection.state.principal = principal
    connection.state.session_id = session_id


def resolve_principal(runtime: Runtime, facts: RequestFacts) -> tuple[Principal, str | None]:
    """The checks themselves, in order: credentials, CSRF, workspace, membership, permission."""
    ceiling: str | None = None
    session_id: str | None = None
    if facts.authorization is not None:
        token = authenticate_bearer(runtime, facts.authorization)
        principal, ceiling = token.principal, token.role_ceiling
    elif facts.session_cookie:
        session = authenticate_session(runtime, facts.session_cookie)
        principal, session_id = session.principal, session.session_id
        if facts.method not in SAFE_METHODS:
            _check_csrf(facts, session.csrf_hash)
    else:
        raise Unauthorized("sign in, or send an API token as 'Authorization: Bearer wb_...'")

    if facts.auth == "session" and principal.via != "session":
        raise Forbidden("this action needs a signed-in session, not an API token")
    if facts.permission is None:
        return principal, session_id

    workspace_id = validate_workspace_id(facts.path_params[WORKSPACE_PARAM])
    if principal.workspace_id is not None and principal.workspace_id != workspace_id:
        raise NotFound("workspace not found")
    with runtime.storage.control.read() as conn:
        member = workspace_store.membership(conn, workspace_id, principal.user_id)
    if member is None:
        raise NotFound("workspace not found")
    role = weaker_role(member["role"], ceiling)
    permission = facts.permission
    if facts.self_param and facts.path_params.get(facts.self_param) in (
        principal.user_id,
        "me",
    ):
        permission = facts.self_permission
    if not has_permission(role, permission):
        raise Forbidden(f"your role ({role}) does not have the permission {permission}")
    if member["status"] == "archived" and permission in BLOCKED_WHEN_ARCHIVED:
        raise Conflict("the workspace is archived; unarchive it to make changes")
    scoped = Principal(
        user_id=principal.user_id,
        email=principal.email,
        workspace_id=workspace_id,
        role=role,
        token_id=principal.token_id,
        via=principal.via,
    )
    return scoped, session_id


def _check_csrf(facts: RequestFacts, csrf_hash: str) -> None:
    """Double submit, bound to the session: the header must equal the cookie, and both must
    be the CSRF token issued with this session."""
    header, cookie = facts.csrf_header or "", facts.csrf_cookie or ""
    if not header or not cookie or not credentials.same_secret(header, cookie):
        raise Forbidden(f"missing or mismatched {CSRF_HEADER} header (CSRF protection)")
    if not credentials.same_secret(credentials.hash_secret(header), csrf_hash):
        raise Forbidden(f"the {CSRF_HEADER} header does not belong to this session")


def provide_principal(request: Request[Any, Any, Any]) -> Principal:
    """The ``principal`` dependency: the caller the guard authenticated."""
    principal = request.state.get("principal")
    if not isinstance(principal, Principal):
        raise Unauthorized("this route has no authenticated caller")
    return principal


# -- build-time checks ------------------------------------------------------------------------


def is_auto_options(handler: BaseRouteHandler) -> bool:
    """Litestar adds an OPTIONS handler to every path; it runs behind the guard too."""
    return (
        isinstance(handler, HTTPRouteHandler)
        and handler.http_methods == {"OPTIONS"}
        and getattr(handler.fn, "__name__", "") == "options_handler"
    )


def workspace_routes(app: Litestar) -> list[tuple[str, str, HTTPRouteHandler]]:
    """Every (path, method, handler) whose path has a ``workspace_id`` parameter."""
    found: list[tuple[str, str, HTTPRouteHandler]] = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        if WORKSPACE_PARAM not in route.path_parameters:
            continue
        for handler in route.route_handlers:
            if is_auto_options(handler):
                continue
            for method in sorted(handler.http_methods):
                found.append((route.path, str(method), handler))
    return found


def _handlers(route: BaseRoute) -> list[BaseRouteHandler]:
    """The handlers of any kind of route: HTTP, WebSocket or a mounted ASGI app."""
    if isinstance(route, HTTPRoute):
        return list(route.route_handlers)
    handler = getattr(route, "route_handler", None)
    return [handler] if isinstance(handler, BaseRouteHandler) else []


def check_route_permissions(app: Litestar) -> None:
    """Refuse to build an app whose routes do not declare (known) requirements."""
    problems = []
    for route in app.routes:
        scoped = WORKSPACE_PARAM in route.path_parameters
        for handler in _handlers(route):
            if is_auto_options(handler):
                continue
            opt = handler.opt
            methods = getattr(handler, "http_methods", None) or {type(route).__name__}
            where = f"{'/'.join(sorted(methods))} {route.path}"
            permission = opt.get("permission")
            if scoped and permission not in PERMISSIONS:
                problems.append(
                    f"{where}: declares permission {permission!r}, "
                    "expected one of workbench.auth.permissions.PERMISSIONS"
                )
            if not scoped and permission is not None:
                problems.append(f"{where}: a permission needs a {{workspace_id}} in the path")
            if opt.get("auth") is not None and opt["auth"] not in AUTH_LEVELS:
                problems.append(f"{where}: auth must be one of {sorted(AUTH_LEVELS)}")
            if opt.get("public") and (permission is not None or opt.get("auth") is not None):
                problems.append(f"{where}: a public route cannot also need auth or a permission")
            self_permission = opt.get("self_permission")
            if self_permission is not None and self_permission not in PERMISSIONS:
                problems.append(f"{where}: unknown self_permission {self_permission!r}")
    if problems:
        raise RouteDeclarationError("routes without a valid declaration: " + "; ".join(problems))
