"""HTTP for identity: sign-up, login, logout, password, ``/me`` and a workspace's API tokens.

Handlers translate HTTP to service calls and back; the guard has already authenticated the
caller where the route's ``opt`` asks for it.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, Router, delete, get, post
from litestar.di import Provide
from litestar.params import JSONBody
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from workbench.auth import service, tokens
from workbench.auth.http import (
    AllFlag,
    Caller,
    Limiter,
    ResourceId,
    Rt,
    cleared_cookies,
    client_address,
    session_cookies,
)
from workbench.auth.models import (
    LoginRequest,
    LoginResult,
    Me,
    NewSession,
    PasswordChange,
    SignupRequest,
    TokenCreate,
    TokenCreated,
    TokenList,
)
from workbench.auth.ratelimit import limiter_for
from workbench.errors import BadRequest
from workbench.runtime import Runtime

WORKSPACE = "/workspaces/{workspace_id:str}"


def _require_json(request: Request[Any, Any, Any]) -> None:
    """Credentials only as JSON: a cross-site HTML form cannot send ``application/json``."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise BadRequest("send this request as application/json")


def _session_response(runtime: Runtime, session: NewSession, status: int) -> Response[Any]:
    body = LoginResult(
        user=session.user, csrf_token=session.csrf_token, expires_at=session.expires_at
    )
    return Response(
        body,
        status_code=status,
        cookies=session_cookies(runtime.settings, session.token, session.csrf_token),
    )


@post(
    "/auth/signup",
    sync_to_thread=True,
    tags=["auth"],
    summary="Create an account",
    opt={"public": True},
)
def signup(
    request: Request[Any, Any, Any], data: JSONBody[SignupRequest], runtime: Rt, limiter: Limiter
) -> Response[Any]:
    """Create an account and sign in. Refused (403) when sign-up is disabled."""
    _require_json(request)
    session = service.signup(
        runtime, limiter, data.email, data.password, address=client_address(request)
    )
    return _session_response(runtime, session, HTTP_201_CREATED)


@post(
    "/auth/login",
    sync_to_thread=True,
    tags=["auth"],
    summary="Sign in",
    opt={"public": True},
    status_code=200,
)
def login(
    request: Request[Any, Any, Any], data: JSONBody[LoginRequest], runtime: Rt, limiter: Limiter
) -> Response[Any]:
    """Sign in with email and password: sets the session and CSRF cookies."""
    _require_json(request)
    session = service.login(
        runtime, limiter, data.email, data.password, address=client_address(request)
    )
    return _session_response(runtime, session, 200)


@post(
    "/auth/logout",
    sync_to_thread=True,
    tags=["auth"],
    summary="Sign out",
    opt={"auth": "session"},
    status_code=HTTP_204_NO_CONTENT,
)
def logout(request: Request[Any, Any, Any], principal: Caller, runtime: Rt) -> Response[None]:
    service.logout(runtime, principal, request.state.session_id)
    return Response(
        None, status_code=HTTP_204_NO_CONTENT, cookies=cleared_cookies(runtime.settings)
    )


@post(
    "/auth/password",
    sync_to_thread=True,
    tags=["auth"],
    summary="Change password",
    opt={"auth": "session"},
    status_code=HTTP_204_NO_CONTENT,
)
def change_password(
    request: Request[Any, Any, Any],
    data: JSONBody[PasswordChange],
    principal: Caller,
    runtime: Rt,
    limiter: Limiter,
) -> None:
    """Change the password; every other session of the account is signed out."""
    service.change_password(
        runtime,
        limiter,
        principal,
        data.current_password,
        data.new_password,
        session_id=request.state.session_id,
    )


@get("/me", sync_to_thread=True, tags=["auth"], summary="Who am I", opt={"auth": "user"})
def me(principal: Caller, runtime: Rt) -> Me:
    """The signed-in user; for an API token, also the workspace and token it is bound to."""
    return Me(
        user=service.get_user(runtime, principal.user_id),
        via=principal.via,
        workspace_id=principal.workspace_id,
        token_id=principal.token_id,
    )


@post(
    WORKSPACE + "/tokens",
    sync_to_thread=True,
    tags=["tokens"],
    summary="Create an API token",
    opt={"permission": "tokens.manage"},
    status_code=HTTP_201_CREATED,
)
def create_token(
    request: Request[Any, Any, Any],
    data: JSONBody[TokenCreate],
    principal: Caller,
    runtime: Rt,
    limiter: Limiter,
) -> TokenCreated:
    """A token for the caller in this workspace. The token is in this answer only."""
    return tokens.create_token(runtime, limiter, principal, data, address=client_address(request))


@get(
    WORKSPACE + "/tokens",
    sync_to_thread=True,
    tags=["tokens"],
    summary="List API tokens",
    opt={"permission": "tokens.manage"},
)
def list_tokens(principal: Caller, runtime: Rt, all: AllFlag = False) -> TokenList:
    """The caller's tokens; ``?all=true`` lists everyone's (needs ``members.manage``)."""
    return TokenList(tokens=tokens.list_tokens(runtime, principal, everyone=all))


@delete(
    WORKSPACE + "/tokens/{token_id:str}",
    sync_to_thread=True,
    tags=["tokens"],
    summary="Revoke an API token",
    opt={"permission": "tokens.manage"},
)
def revoke_token(token_id: ResourceId, principal: Caller, runtime: Rt) -> None:
    tokens.revoke_token(runtime, principal, token_id)


def auth_router(runtime: Runtime) -> Router:
    limiter = limiter_for(runtime)
    return Router(
        path="/api/v1",
        route_handlers=[
            signup,
            login,
            logout,
            change_password,
            me,
            create_token,
            list_tokens,
            revoke_token,
        ],
        dependencies={"limiter": Provide(lambda: limiter, use_cache=True, sync_to_thread=False)},
    )
