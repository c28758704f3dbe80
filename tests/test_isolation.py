"""Tenant isolation, proven from the app's own route table.

Every route under ``/api/v1/workspaces/{workspace_id}`` is found by walking ``app.routes``, so
a route added later is covered without anyone editing this file. For each route and each
method it declares, people of workspace B (every role, with a token and with a session, and
someone who belongs to both but holds a token issued for B) call it on workspace A's id and
A's resource ids: the answer is always a 404 problem, never A's data, never a 500, and A is
left exactly as it was. Then B's owner calls B's own routes with A's resource ids: never a
success, never A's data. A coverage map of routes x callers is printed (see it with ``-s``).

Separately, workspace ids carrying path characters (``../``, ``%2e%2e``, NUL) are sent as raw
ASGI requests (so no client normalises them away) while every file SQLite opens and every
file Python opens is recorded: nothing outside ``data/workspaces`` is touched.
"""

from __future__ import annotations

import re
import sys
import urllib.parse
import uuid
from pathlib import Path
from typing import Any

import anyio
import apsw

from tests.identity_fixtures import PROBLEM_JSON, Team, World, make_world
from workbench.auth.guards import workspace_routes
from workbench.auth.permissions import ROLES
from workbench.db.connection import rows

METHODS_WITH_BODY = {"POST", "PUT", "PATCH"}
ALL_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
_PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")


# -- filling paths with ids -----------------------------------------------------------------


def guessed_id(name: str) -> str:
    """A valid-looking id for a parameter we hold no real value for (``item_id`` ->
    ``item_<32 hex>``)."""
    return f"{name.removesuffix('_id')}_{uuid.uuid4().hex}"


def fill(path: str, ids: dict[str, str]) -> str:
    return _PARAM.sub(lambda m: ids.get(m.group(1)) or guessed_id(m.group(1)), path)


def harvest_ids(world: World, team: Team) -> dict[str, str]:
    """Real resource ids of a workspace: the ones we made, plus whatever its owner can list
    through every GET route that needs only the workspace id (``{"items": [{"id": ...}]}``
    gives ``item_id``)."""
    assert team.target is not None
    ids = {
        "workspace_id": team.workspace_id,
        "user_id": team.target.user_id,
        "token_id": team.actors["owner"].token_id,
        "invitation_id": team.invitation_id,
    }
    owner = team.actors["owner"].bearer
    for path, method, _ in workspace_routes(world.app):
        if method != "GET" or _PARAM.findall(path) != ["workspace_id"]:
            continue
        response = world.client.get(fill(path, ids), headers=owner)
        if response.status_code == 200 and "json" in response.headers.get("content-type", ""):
            _collect_ids(response.json(), ids)
    return ids


def _collect_ids(value: Any, ids: dict[str, str], collection: str | None = None) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "id" and collection and isinstance(inner, str):
                ids.setdefault(f"{collection.removesuffix('s')}_id", inner)
            elif key.endswith("_id") and isinstance(inner, str):
                ids.setdefault(key, inner)
            else:
                _collect_ids(inner, ids, key)
    elif isinstance(value, list):
        for inner in value:
            _collect_ids(inner, ids, collection)


def fingerprint(world: World, team: Team) -> dict[str, Any]:
    """Everything A is: its control rows and its workspace file's audit and outbox."""
    ws = team.workspace_id
    with world.runtime.storage.control.read() as conn:
        control = {
            "workspace": list(rows(conn, "SELECT * FROM workspaces WHERE id = ?", (ws,))),
            "members": list(
                rows(
                    conn, "SELECT * FROM memberships WHERE workspace_id = ? ORDER BY user_id", (ws,)
                )
            ),
            "tokens": list(
                rows(
                    conn,
                    "SELECT id, revoked_at, expires_at, role_ceiling FROM"
                    " api_tokens WHERE workspace_id = ? ORDER BY id",
                    (ws,),
                )
            ),
            "invitations": list(
                rows(conn, "SELECT * FROM invitations WHERE workspace_id = ? ORDER BY id", (ws,))
            ),
        }
    with world.runtime.storage.workspace(ws).read() as conn:
        control["file_audit"] = list(rows(conn, "SELECT seq, hash FROM audit_log"))
        control["file_outbox"] = list(rows(conn, "SELECT seq FROM outbox"))
    return control


def secrets_of(team: Team) -> list[str]:
    """Strings that must never appear in an answer given to an outsider."""
    found = [team.name, team.invitation_token, team.invitation_id]
    for actor in [*team.actors.values(), team.target]:
        assert actor is not None
        found += [actor.email, actor.user_id, actor.token, actor.token_id, actor.session.token]
    return found


def leaks(text: str, forbidden: list[str], url: str) -> list[str]:
    """A's strings in an answer, except those the caller sent itself in the URL (a validation
    message may echo the request path)."""
    return [s for s in forbidden if s in text and s not in url]


# Valid bodies for routes whose shape we know, so a call gets past body validation and
# reaches the service; any other route gets ``{}``.
SAMPLE_BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("PATCH", "/api/v1/workspaces/{workspace_id:str}"): {"name": "Renamed by an outsider"},
    ("PATCH", "/api/v1/workspaces/{workspace_id:str}/members/{user_id:str}"): {"role": "owner"},
    ("POST", "/api/v1/workspaces/{workspace_id:str}/invitations"): {
        "email": "intruder@example.com",
        "role": "owner",
    },
    ("POST", "/api/v1/workspaces/{workspace_id:str}/tokens"): {"name": "intruder"},
}


def call(world: World, method: str, url: str, headers: dict[str, str], template: str = "") -> Any:
    if method not in METHODS_WITH_BODY:
        return world.client.request(method, url, headers=headers)
    body = SAMPLE_BODIES.get((method, template), {})
    return world.client.request(method, url, headers=headers, json=body)


# -- the isolation test ---------------------------------------------------------------------


def test_workspace_b_never_reaches_workspace_a(world: World) -> None:
    a, b = world.team("Alpha Secret Project"), world.team("Bravo")
    dual_user, dual_email = world.user(world.new_email("dual"))
    world.add(a.workspace_id, dual_email, "owner")
    world.add(b.workspace_id, dual_email, "owner")
    dual_token_for_b, _ = world.token(dual_user, b.workspace_id)

    routes = workspace_routes(world.app)
    assert len(routes) >= 12, "the route table lost its workspace routes"
    a_ids = harvest_ids(world, a)
    before = fingerprint(world, a)
    forbidden_strings = secrets_of(a)

    callers: dict[str, dict[str, str]] = {}
    for role in ROLES:
        callers[f"{role}:token"] = b.actors[role].bearer
        callers[f"{role}:session"] = b.actors[role].session.headers()
    callers["dual:B-token"] = {"Authorization": f"Bearer {dual_token_for_b}"}

    coverage: dict[str, dict[str, str]] = {}
    failures: list[str] = []
    for path, method, _ in routes:
        row = coverage.setdefault(f"{method:6} {path}", {})
        url = fill(path, a_ids)
        for label, headers in callers.items():
            response = call(world, method, url, headers, path)
            row[label] = str(response.status_code)
            if response.status_code != 404 or not response.headers.get(
                "content-type", ""
            ).startswith(PROBLEM_JSON):
                failures.append(f"{label} {method} {url} -> {response.status_code}")
            leaked = leaks(response.text, forbidden_strings, url)
            if leaked:
                failures.append(f"{label} {method} {url} leaked {leaked}")
        anonymous = call(world, method, url, {}, path)
        row["anonymous"] = str(anonymous.status_code)
        if anonymous.status_code != 401:
            failures.append(f"anonymous {method} {url} -> {anonymous.status_code}")

    # B's owner on B's own workspace, aimed at A's resource ids
    b_owner = {"token": b.actors["owner"].bearer, "session": b.actors["owner"].session.headers()}
    for path, method, _ in routes:
        params = _PARAM.findall(path)
        if params == ["workspace_id"]:
            continue
        url = fill(path, {**a_ids, "workspace_id": b.workspace_id})
        for label, headers in b_owner.items():
            response = call(world, method, url, headers, path)
            coverage[f"{method:6} {path}"][f"B-id+A-ids:{label}"] = str(response.status_code)
            if response.status_code < 400 or response.status_code >= 500:
                failures.append(f"B owner {label} {method} {url} -> {response.status_code}")
            leaked = leaks(response.text, forbidden_strings, url)
            if leaked:
                failures.append(f"B owner {label} {method} {url} leaked {leaked}")

    # undeclared methods are refused by the router, before any handler
    for path in {p for p, _, _ in routes}:
        declared = {m for p, m, _ in routes if p == path}
        for method in set(ALL_METHODS) - declared:
            response = call(world, method, fill(path, a_ids), b.actors["owner"].bearer)
            if response.status_code != 405:
                failures.append(f"undeclared {method} {path} -> {response.status_code}")

    print_coverage(coverage)
    assert not failures, "\n".join(failures)
    assert fingerprint(world, a) == before, "workspace A changed"
    assert (
        world.client.get(
            f"/api/v1/workspaces/{a.workspace_id}", headers=a.actors["owner"].bearer
        ).status_code
        == 200
    )


def print_coverage(coverage: dict[str, dict[str, str]]) -> None:
    columns = sorted({c for row in coverage.values() for c in row}, key=_column_order)
    width = max(len(r) for r in coverage) + 2
    print("\nTenant isolation coverage: workspace routes x callers from workspace B")
    print("(cells are HTTP statuses; B-id+A-ids = B's owner on B's id with A's resource ids)")
    print(" " * width + " ".join(f"{c:>18}" for c in columns))
    for route, cells in sorted(coverage.items(), key=lambda kv: (kv[0][7:], kv[0][:6])):
        print(f"{route:{width}}" + " ".join(f"{cells.get(c, '-'):>18}" for c in columns))
    print(f"{len(coverage)} routes x {len(columns)} callers")


def _column_order(column: str) -> tuple[int, str]:
    role = column.split(":")[0]
    return (ROLES.index(role) if role in ROLES else len(ROLES), column)


def test_new_routes_are_covered_without_editing_this_test(tmp_path: Path) -> None:
    """A route contributed by a plugin appears in ``workspace_routes`` and is guarded."""
    from litestar import get

    from workbench.app import create_app
    from workbench.clock import FrozenClock
    from workbench.config import load_settings
    from workbench.hookspecs import hookimpl
    from workbench.plugins import get_plugin_manager
    from workbench.runtime import Runtime

    @get(
        "/api/v1/workspaces/{workspace_id:str}/gadgets/{gadget_id:str}",
        opt={"permission": "items.read"},
        sync_to_thread=False,
    )
    def gadget(workspace_id: str, gadget_id: str) -> dict[str, str]:
        return {"secret": "gadget data"}

    class GadgetPlugin:
        @hookimpl
        def workbench_routes(self, runtime: Any) -> list[Any]:
            return [gadget]

    pm = get_plugin_manager(load_entry_points=False)
    pm.register(GadgetPlugin())
    from tests.identity_fixtures import cheap_password_hashing

    with cheap_password_hashing():
        runtime = Runtime(
            load_settings(environ={}, data_dir=str(tmp_path / "data"), secure_cookies=False),
            clock=FrozenClock(),
            pm=pm,
        )
        runtime.initialize()
        from litestar.testing import TestClient

        with TestClient(create_app(runtime)) as client:
            world = World(runtime, client.app, client)
            paths = {p for p, _, _ in workspace_routes(world.app)}
            assert "/api/v1/workspaces/{workspace_id:str}/gadgets/{gadget_id:str}" in paths
            a, b = world.team("A"), world.team("B")
            url = f"/api/v1/workspaces/{a.workspace_id}/gadgets/{guessed_id('gadget_id')}"
            assert client.get(url, headers=b.actors["owner"].bearer).status_code == 404
            assert client.get(url, headers=a.actors["viewer"].bearer).json() == {
                "secret": "gadget data"
            }
        runtime.close()


# -- path characters never reach the file system --------------------------------------------

_recording: list[tuple[str, str]] | None = None


def _audit_hook(event: str, args: tuple[Any, ...]) -> None:
    if _recording is not None and event in ("open", "os.mkdir", "os.remove", "os.rename"):
        target = args[0]
        if isinstance(target, (str, bytes, Path)):
            _recording.append((event, str(target)))


sys.addaudithook(_audit_hook)


class RecordingVFS(apsw.VFS):  # type: ignore[misc]
    """The default VFS while the test runs: notes every file SQLite opens."""

    def __init__(self, opened: list[str]) -> None:
        self.opened = opened
        super().__init__("workbench-recorder", "", makedefault=True)

    def xOpen(self, name: Any, flags: Any) -> Any:
        filename = name.filename() if isinstance(name, apsw.URIFilename) else name
        if filename:
            self.opened.append(str(filename))
        return super().xOpen(name, flags)


EVIL_PATHS = [
    "/api/v1/workspaces/../control/members",
    "/api/v1/workspaces/../../../../etc/passwd",
    "/api/v1/workspaces/%2e%2e/members",
    "/api/v1/workspaces/%2e%2e",
    "/api/v1/workspaces/%2E%2E%2F%2E%2E%2Fcontrol",
    "/api/v1/workspaces/..%2F..%2Fcontrol/members",
    "/api/v1/workspaces/..%252F..%252Fcontrol/members",
    "/api/v1/workspaces/%00/members",
    "/api/v1/workspaces/ws_%00/members",
    "/api/v1/workspaces/ws_0123456789abcdef0123456789abcdef%00.db/members",
    "/api/v1/workspaces/ws_0123456789abcdef0123456789abcdef%2F..%2F..%2Fcontrol/members",
    "/api/v1/workspaces/....%2F%2F/tokens",
    "/api/v1/workspaces/..%5C..%5Ccontrol/members",
    "/api/v1/workspaces/%2Ftmp%2Fevil/members",
    "/api/v1/workspaces/control/members",
    "/api/v1/workspaces/WS_0123456789ABCDEF0123456789ABCDEF/members",
]


async def raw_request(
    app: Any, method: str, raw_path: str, headers: dict[str, str]
) -> tuple[int, dict[str, str], bytes]:
    """Send exactly this path to the ASGI app: no client normalises ``..`` away."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": urllib.parse.unquote(raw_path),
        "raw_path": raw_path.encode("latin-1"),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver")]
        + [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("testclient", 50000),
        "server": ("testserver", 80),
        "extensions": {},
    }
    status, out_headers, body = 0, {}, b""
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": b"{}", "more_body": False}
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        nonlocal status, out_headers, body
        if message["type"] == "http.response.start":
            status = message["status"]
            out_headers = {k.decode(): v.decode() for k, v in message.get("headers", [])}
        elif message["type"] == "http.response.body":
            body += message.get("body", b"")

    await app(scope, receive, send)
    return status, out_headers, body


def test_path_characters_in_workspace_ids_never_reach_the_file_system(tmp_path: Path) -> None:
    global _recording
    opened: list[str] = []
    vfs = RecordingVFS(opened)
    try:
        with make_world(tmp_path / "data") as world:
            team = world.team()
            data = world.runtime.settings.data_path.resolve()
            files_before = {p for p in tmp_path.rglob("*")}
            world.runtime.storage.close()  # so the legitimate request below reopens files
            opened.clear()
            _recording = []
            results = []
            for raw in EVIL_PATHS:
                for method in ("GET", "PATCH", "DELETE"):
                    for headers in (
                        team.actors["owner"].bearer,
                        team.actors["owner"].session.headers(),
                    ):
                        results.append(
                            (raw, method, anyio.run(raw_request, world.app, method, raw, headers))
                        )
            # a legitimate change that touches both files, to prove the recorder sees opens
            renamed = world.client.patch(
                f"/api/v1/workspaces/{team.workspace_id}",
                json={"name": "Legit"},
                headers=team.actors["owner"].bearer,
            )
            assert renamed.status_code == 200
            python_opens, _recording = _recording, None
            files_after = {p for p in tmp_path.rglob("*")}
            workspace_file = str(world.runtime.storage.workspace_path(team.workspace_id))
    finally:
        _recording = None
        vfs.unregister()

    assert str(data / "control.db") in opened and workspace_file in opened, opened
    for raw, method, (status, headers, body) in results:
        assert status in (400, 404, 405), (raw, method, status, body)
        assert headers["content-type"].startswith(PROBLEM_JSON), (raw, headers)
        assert b"Traceback" not in body
    allowed = re.compile(
        re.escape(str(data)) + r"/(control\.db|workspaces/ws_[0-9a-f]{32}\.db)(-wal|-shm|-journal)?"
    )
    sqlite_outside = [p for p in opened if not allowed.fullmatch(str(Path(p).resolve()))]
    assert not sqlite_outside, sqlite_outside
    python_outside = [
        (event, p)
        for event, p in python_opens
        if str(tmp_path) in str(Path(p).resolve()) and not allowed.fullmatch(str(Path(p).resolve()))
    ]
    assert not python_outside, python_outside
    new_files = {p for p in files_after - files_before if not allowed.fullmatch(str(p.resolve()))}
    assert not new_files, new_files
