"""The permission matrix, driven from its data and from the app's route table.

- For every permission some route uses, on every route that uses it: each role without the
  permission gets 403, each role with it gets past the guard (never 401/403, never 500).
- For each permission of the identity routes, a role that holds it succeeds with a real body.
- Every workspace route declares a known permission; every other API route declares what it
  needs; ``create_app`` refuses to start otherwise.
- ``docs/permissions.md`` is what the matrix renders.
"""

from __future__ import annotations

import itertools
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from litestar import get
from litestar.routes import HTTPRoute

from tests.identity_fixtures import Team, World
from workbench.app import create_app
from workbench.auth import permissions
from workbench.auth.guards import RouteDeclarationError, workspace_routes
from workbench.auth.permissions import (
    MATRIX,
    PERMISSIONS,
    ROLES,
    UnknownPermission,
    has_permission,
    weaker_role,
)
from workbench.clock import FrozenClock
from workbench.config import load_settings
from workbench.hookspecs import hookimpl
from workbench.plugins import get_plugin_manager
from workbench.runtime import Runtime

REPO = Path(__file__).resolve().parents[1]
_PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")


# -- the matrix as data ---------------------------------------------------------------------


def test_roles_are_ordered_and_each_holds_all_of_the_weaker_ones() -> None:
    assert ROLES == ("viewer", "member", "admin", "owner")
    for weaker, stronger in itertools.pairwise(ROLES):
        assert MATRIX[weaker] < MATRIX[stronger], (weaker, stronger)
    assert MATRIX["owner"] == frozenset(PERMISSIONS)


def test_required_permission_names_exist() -> None:
    required = {
        "workspace.read",
        "workspace.manage",
        "workspace.delete",
        "members.read",
        "members.manage",
        "tokens.manage",
        "audit.read",
        "items.read",
        "items.write",
        "views.write",
        "views.share",
        "knowledge.read",
        "knowledge.write",
        "assistant.run",
        "assistant.approve",
        "automations.read",
        "automations.manage",
        "webhooks.manage",
        "billing.read",
        "billing.manage",
    }
    assert required <= PERMISSIONS.keys()
    assert all(PERMISSIONS[p] for p in PERMISSIONS)


def test_key_grants() -> None:
    assert has_permission("viewer", "items.read")
    assert not has_permission("viewer", "items.write")
    assert has_permission("member", "items.write")
    assert not has_permission("member", "members.manage")
    assert has_permission("admin", "members.manage")
    assert not has_permission("admin", "workspace.delete")
    assert not has_permission("admin", "billing.manage")
    assert has_permission("owner", "workspace.delete")
    assert not has_permission(None, "workspace.read")


def test_unknown_names_raise_instead_of_silently_denying() -> None:
    with pytest.raises(UnknownPermission):
        has_permission("owner", "items.wrte")
    with pytest.raises(UnknownPermission):
        has_permission("superuser", "items.read")
    with pytest.raises(UnknownPermission):
        weaker_role("owner", "root")
    assert weaker_role("owner", "viewer") == "viewer"
    assert weaker_role("member", "admin") == "member"
    assert weaker_role("admin", None) == "admin"


def test_permissions_doc_is_generated_from_the_matrix() -> None:
    doc = REPO / "docs" / "permissions.md"
    assert doc.read_text() == permissions.render_markdown(), (
        "docs/permissions.md is stale: run `python -m workbench.auth.permissions`"
    )
    for permission in PERMISSIONS:
        assert f"`{permission}`" in doc.read_text()


def test_write_docs(tmp_path: Path) -> None:
    written = permissions.write_docs(tmp_path)
    assert written.read_text() == permissions.render_markdown()


# -- route declarations ---------------------------------------------------------------------


def test_every_workspace_route_declares_a_known_permission(world: World) -> None:
    routes = workspace_routes(world.app)
    assert routes
    for path, method, handler in routes:
        assert handler.opt.get("permission") in PERMISSIONS, (method, path)


def test_every_other_api_route_declares_what_it_needs(world: World) -> None:
    for route in world.app.routes:
        if not isinstance(route, HTTPRoute) or not route.path.startswith("/api/"):
            continue
        if "workspace_id" in route.path_parameters:
            continue
        for handler in route.route_handlers:
            if handler.http_methods == {"OPTIONS"}:
                continue
            opt = handler.opt
            declared = [k for k in ("auth", "public") if opt.get(k)]
            assert len(declared) == 1, (
                f"{route.path} must declare opt auth='user'|'session' or public=True"
            )


def _runtime_with(tmp_path: Path, handler: Any) -> Runtime:
    class ExtraRoutes:
        @hookimpl
        def workbench_routes(self, runtime: Any) -> list[Any]:
            return [handler]

    pm = get_plugin_manager(load_entry_points=False)
    pm.register(ExtraRoutes())
    settings = load_settings(environ={}, data_dir=str(tmp_path / "data"))
    return Runtime(settings, clock=FrozenClock(), pm=pm)


@pytest.mark.parametrize(
    ("path", "opt", "message"),
    [
        ("/api/v1/workspaces/{workspace_id:str}/undeclared", {}, "declares permission None"),
        (
            "/api/v1/workspaces/{workspace_id:str}/typo",
            {"permission": "items.wirte"},
            "items.wirte",
        ),
        ("/api/v1/loose", {"permission": "items.read"}, "needs a {workspace_id}"),
        ("/api/v1/odd", {"auth": "admin"}, "auth must be one of"),
        ("/api/v1/both", {"public": True, "auth": "user"}, "public route cannot"),
        (
            "/api/v1/workspaces/{workspace_id:str}/self",
            {"permission": "items.read", "self_permission": "nope"},
            "self_permission",
        ),
    ],
)
def test_create_app_refuses_badly_declared_routes(
    tmp_path: Path, path: str, opt: dict[str, Any], message: str
) -> None:
    @get(path, opt=opt, sync_to_thread=False)
    def handler() -> str:
        return "never served"

    with pytest.raises(RouteDeclarationError, match=re.escape(message)):
        create_app(_runtime_with(tmp_path, handler))


# -- the matrix against the routes ----------------------------------------------------------


def _fill(path: str, ids: dict[str, str]) -> str:
    return _PARAM.sub(
        lambda m: ids.get(m.group(1)) or f"{m.group(1).removesuffix('_id')}_{uuid.uuid4().hex}",
        path,
    )


def _team_ids(team: Team) -> dict[str, str]:
    assert team.target is not None
    return {
        "workspace_id": team.workspace_id,
        "user_id": team.target.user_id,  # someone else: acting on oneself needs less
        "token_id": team.target.token_id,
        "invitation_id": team.invitation_id,
    }


def test_every_used_permission_is_enforced_on_every_route(world: World) -> None:
    """For each route (a fresh workspace each, since allowed calls may change or delete it),
    every role from the weakest up calls it with a session and a CSRF token."""
    routes = workspace_routes(world.app)
    used = {h.opt["permission"] for _, _, h in routes}
    assert used, "no workspace routes"
    failures: list[str] = []
    cells: dict[str, dict[str, str]] = {}
    checked: dict[str, set[str]] = {p: set() for p in used}
    for path, method, handler in routes:
        permission = handler.opt["permission"]
        team = world.team()
        url = _fill(path, _team_ids(team))
        row = cells.setdefault(f"{method:6} {path} [{permission}]", {})
        for role in ROLES:
            actor = team.actors[role]
            kwargs: dict[str, Any] = {"headers": actor.session.headers()}
            if method in ("POST", "PUT", "PATCH"):
                kwargs["json"] = {}
            response = world.client.request(method, url, **kwargs)
            row[role] = str(response.status_code)
            allowed = has_permission(role, permission)
            checked[permission].add(f"{role}:{'allowed' if allowed else 'denied'}")
            if not allowed and response.status_code != 403:
                failures.append(f"{role} {method} {path} -> {response.status_code}, want 403")
            if allowed and (response.status_code in (401, 403) or response.status_code >= 500):
                failures.append(
                    f"{role} {method} {path} -> {response.status_code}: {response.text[:200]}"
                )
    print("\nPermission coverage: routes x roles (403 = refused by the guard)")
    width = max(map(len, cells)) + 2
    print(" " * width + "".join(f"{r:>8}" for r in ROLES))
    for label, row in sorted(cells.items(), key=lambda kv: kv[0][7:]):
        print(f"{label:{width}}" + "".join(f"{row[r]:>8}" for r in ROLES))
    assert not failures, "\n".join(failures)
    for permission, seen in checked.items():
        holders = {r for r in ROLES if has_permission(r, permission)}
        assert {f"{r}:allowed" for r in holders} <= seen
        assert {f"{r}:denied" for r in set(ROLES) - holders} <= seen


# What success means for each permission the identity routes use: a real request that the
# weakest role holding the permission makes, and the status it gets.
SUCCESS: dict[str, tuple[str, str, dict[str, Any] | None, int]] = {
    "workspace.read": ("GET", "", None, 200),
    "workspace.manage": ("PATCH", "", {"name": "Renamed"}, 200),
    "workspace.delete": ("DELETE", "", None, 200),
    "members.read": ("GET", "/members", None, 200),
    "members.manage": ("POST", "/invitations", {"email": "new@example.com"}, 201),
    "tokens.manage": ("POST", "/tokens", {"name": "mine"}, 201),
}


@pytest.mark.parametrize("permission", sorted(SUCCESS))
def test_the_weakest_role_holding_a_permission_succeeds(world: World, permission: str) -> None:
    method, suffix, body, status = SUCCESS[permission]
    weakest = next(r for r in ROLES if has_permission(r, permission))
    team = world.team()
    url = f"/api/v1/workspaces/{team.workspace_id}{suffix}"
    response = world.client.request(
        method, url, json=body, headers=team.actors[weakest].session.headers()
    )
    assert response.status_code == status, (weakest, response.text)
    if weakest != ROLES[0]:
        weaker = ROLES[ROLES.index(weakest) - 1]
        other = world.team()
        url = f"/api/v1/workspaces/{other.workspace_id}{suffix}"
        refused = world.client.request(
            method, url, json=body, headers=other.actors[weaker].session.headers()
        )
        assert refused.status_code == 403


def test_every_identity_route_permission_has_a_success_case(world: World) -> None:
    identity = {
        h.opt["permission"]
        for p, _, h in workspace_routes(world.app)
        if not any(part in p for part in ("/items", "/item-fields", "/views"))
        and h.__module__.startswith(("workbench.auth", "workbench.workspaces"))
    }
    assert identity <= SUCCESS.keys()


def test_create_app_refuses_an_undeclared_workspace_websocket(tmp_path: Path) -> None:
    from litestar import WebSocket, websocket

    @websocket("/api/v1/workspaces/{workspace_id:str}/live")
    async def live(socket: WebSocket[Any, Any, Any]) -> None:
        await socket.accept()

    with pytest.raises(RouteDeclarationError, match="WebSocketRoute"):
        create_app(_runtime_with(tmp_path, live))


def test_a_guarded_workspace_websocket_refuses_outsiders(tmp_path: Path) -> None:
    from litestar import WebSocket, websocket
    from litestar.exceptions import WebSocketDisconnect
    from litestar.testing import TestClient

    from tests.identity_fixtures import cheap_password_hashing

    @websocket("/api/v1/workspaces/{workspace_id:str}/live", opt={"permission": "items.read"})
    async def live(socket: WebSocket[Any, Any, Any]) -> None:
        await socket.accept()
        await socket.send_json({"role": socket.state.principal.role})
        await socket.close()

    runtime = _runtime_with(tmp_path, live)
    with cheap_password_hashing(), TestClient(create_app(runtime)) as client:
        world = World(runtime, client.app, client)
        a, b = world.team("A"), world.team("B")
        path = f"/api/v1/workspaces/{a.workspace_id}/live"
        with client.websocket_connect(path, headers=a.actors["viewer"].bearer) as socket:
            assert socket.receive_json() == {"role": "viewer"}
        with (
            pytest.raises(WebSocketDisconnect),
            client.websocket_connect(path, headers=b.actors["owner"].bearer) as socket,
        ):
            socket.receive_json()
    runtime.close()
