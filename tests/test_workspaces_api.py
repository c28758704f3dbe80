"""Workspace lifecycle over HTTP: create (creator is owner), list mine, get with ETag, rename
and archive with If-Match, delete only by an owner and only after a verified export."""

from __future__ import annotations

from pathlib import Path

import apsw
import pytest

from tests.identity_fixtures import (
    Team,
    World,
    assert_problem,
    control_audit,
    workspace_audit,
)
from workbench.auth.guards import RequestFacts, resolve_principal
from workbench.auth.permissions import BLOCKED_WHEN_ARCHIVED
from workbench.errors import Conflict
from workbench.workspaces import export


@pytest.fixture
def team(world: World) -> Team:
    return world.team()


def url(team: Team) -> str:
    return f"/api/v1/workspaces/{team.workspace_id}"


def test_creator_becomes_owner_and_lists_it(world: World) -> None:
    user_id, email = world.user()
    session = world.login(email)
    response = world.client.post(
        "/api/v1/workspaces",
        json={"name": "  Design  "},
        headers={**session.headers(), "X-Request-ID": "create-1"},
    )
    assert response.status_code == 201
    created = response.json()
    assert created["name"] == "Design" and created["role"] == "owner"
    assert created["status"] == "active" and created["version"] == 1
    assert world.runtime.storage.workspace_exists(created["id"])
    listed = world.client.get("/api/v1/workspaces", headers=session.headers()).json()
    assert [w["id"] for w in listed["workspaces"]] == [created["id"]]
    members = world.client.get(
        f"/api/v1/workspaces/{created['id']}/members", headers=session.headers()
    ).json()["members"]
    assert [(m["user_id"], m["role"]) for m in members] == [(user_id, "owner")]
    audit = [e for e in control_audit(world.runtime) if e["action"] == "workspace.created"]
    assert audit[-1]["correlation_id"] == "create-1"
    assert audit[-1]["actor"] == user_id


def test_create_validates_the_body_and_needs_a_session(world: World, team: Team) -> None:
    session = team.actors["member"].session.headers()
    for body in ({"name": ""}, {"name": "x" * 201}, {}, {"name": "ok", "extra": True}):
        assert_problem(world.client.post("/api/v1/workspaces", json=body, headers=session), 400)
    token = world.client.post(
        "/api/v1/workspaces", json={"name": "T"}, headers=team.actors["owner"].bearer
    )
    assert_problem(token, 403)
    assert_problem(world.client.post("/api/v1/workspaces", json={"name": "T"}), 401)


def test_list_mine_shows_only_my_memberships(world: World) -> None:
    a, b = world.team("A"), world.team("B")
    viewer_a = a.actors["viewer"]
    listed = world.client.get("/api/v1/workspaces", headers=viewer_a.session.headers()).json()
    assert [(w["id"], w["role"]) for w in listed["workspaces"]] == [(a.workspace_id, "viewer")]
    world.add(b.workspace_id, viewer_a.email, "admin")
    both = world.client.get("/api/v1/workspaces", headers=viewer_a.session.headers()).json()
    assert {w["id"] for w in both["workspaces"]} == {a.workspace_id, b.workspace_id}
    # a token sees only the workspace it was issued for
    via_token = world.client.get("/api/v1/workspaces", headers=viewer_a.bearer).json()
    assert [w["id"] for w in via_token["workspaces"]] == [a.workspace_id]


def test_get_returns_an_etag(world: World, team: Team) -> None:
    response = world.client.get(url(team), headers=team.actors["viewer"].bearer)
    assert response.status_code == 200
    assert response.headers["etag"] == '"1"'
    assert response.json()["name"] == team.name
    assert response.json()["role"] == "viewer"


def test_rename_with_if_match(world: World, team: Team) -> None:
    admin = team.actors["admin"].bearer
    stale = world.client.patch(
        url(team), json={"name": "New"}, headers={**admin, "If-Match": '"7"'}
    )
    assert assert_problem(stale, 412)["current_version"] == 1
    bad = world.client.patch(
        url(team), json={"name": "New"}, headers={**admin, "If-Match": "yesterday"}
    )
    assert_problem(bad, 400)
    ok = world.client.patch(url(team), json={"name": "New"}, headers={**admin, "If-Match": '"1"'})
    assert ok.status_code == 200
    assert ok.json()["name"] == "New" and ok.headers["etag"] == '"2"'
    weak = world.client.patch(
        url(team), json={"name": "Newer"}, headers={**admin, "If-Match": 'W/"2"'}
    )
    assert weak.status_code == 200 and weak.json()["version"] == 3
    unchanged = world.client.patch(url(team), json={}, headers=admin)
    assert unchanged.json()["version"] == 3
    assert_problem(world.client.patch(url(team), json={"name": "   "}, headers=admin), 409)
    actions = [e["action"] for e in workspace_audit(world.runtime, team.workspace_id)]
    assert actions.count("workspace.renamed") == 2


def test_archive_and_unarchive(world: World, team: Team) -> None:
    admin = team.actors["admin"].bearer
    archived = world.client.patch(url(team), json={"status": "archived"}, headers=admin)
    assert archived.json()["status"] == "archived"
    assert_problem(world.client.patch(url(team), json={"status": "gone"}, headers=admin), 400)
    # reading and administration continue while archived
    assert world.client.get(f"{url(team)}/members", headers=admin).status_code == 200
    back = world.client.patch(url(team), json={"status": "active"}, headers=admin)
    assert back.json()["status"] == "active"
    actions = [
        e["action"] for e in control_audit(world.runtime) if e["target"] == team.workspace_id
    ]
    assert actions[-2:] == ["workspace.archived", "workspace.unarchived"]


def test_archived_workspace_refuses_content_changes(world: World, team: Team) -> None:
    owner = team.actors["owner"]
    world.client.patch(url(team), json={"status": "archived"}, headers=owner.bearer)

    def facts(permission: str) -> RequestFacts:
        return RequestFacts(
            method="POST",
            authorization=f"Bearer {owner.token}",
            session_cookie=None,
            csrf_cookie=None,
            csrf_header=None,
            path_params={"workspace_id": team.workspace_id},
            permission=permission,
            auth=None,
            self_param=None,
            self_permission="workspace.read",
        )

    for permission in sorted(BLOCKED_WHEN_ARCHIVED):
        with pytest.raises(Conflict):
            resolve_principal(world.runtime, facts(permission))
    principal, _ = resolve_principal(world.runtime, facts("workspace.manage"))
    assert principal.role == "owner"


def test_only_an_owner_deletes(world: World, team: Team) -> None:
    for role in ("admin", "member", "viewer"):
        assert_problem(world.client.delete(url(team), headers=team.actors[role].bearer), 403)
    assert world.runtime.storage.workspace_exists(team.workspace_id)


def test_delete_exports_verifies_then_removes(world: World, team: Team) -> None:
    owner = team.actors["owner"]
    data = world.runtime.settings.data_path
    response = world.client.delete(
        url(team), headers={**owner.session.headers(), "X-Request-ID": "delete-1"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == team.workspace_id
    exported = data / body["export_path"]
    assert exported.parent == data / "exports"
    assert exported.name == f"{team.workspace_id}-20260101T000000000000Z.db"
    check = apsw.Connection(str(exported), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        assert check.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        (recorded,) = check.execute(
            "SELECT value FROM _workbench_meta WHERE key = 'workspace_id'"
        ).fetchone()
        assert recorded == team.workspace_id
        actions = [r[0] for r in check.execute("SELECT action FROM audit_log ORDER BY seq")]
        assert "workspace.created" in actions and "member.added" in actions
    finally:
        check.close()
    assert not world.runtime.storage.workspace_exists(team.workspace_id)
    assert not list(world.runtime.settings.workspaces_path.glob(f"{team.workspace_id}*"))
    with world.runtime.storage.control.read() as conn:
        for table in ("workspaces", "memberships", "api_tokens", "invitations"):
            column = "id" if table == "workspaces" else "workspace_id"
            count = conn.execute(
                f"SELECT count(*) FROM {table} WHERE {column} = ?", (team.workspace_id,)
            ).fetchone()[0]
            assert count == 0, table
    assert_problem(world.client.get(url(team), headers=owner.session.headers()), 404)
    assert_problem(world.client.get(url(team), headers=owner.bearer), 401)  # token went too
    deleted = [e for e in control_audit(world.runtime) if e["action"] == "workspace.deleted"]
    assert deleted[0]["correlation_id"] == "delete-1"
    assert body["export_path"] in deleted[0]["details"]


def test_failed_export_deletes_nothing(
    world: World, team: Team, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(path: Path, workspace_id: str) -> None:
        raise export.ExportFailed("export failed its integrity check")

    monkeypatch.setattr(export, "_verify_export", broken)
    response = world.client.delete(url(team), headers=team.actors["owner"].bearer)
    body = assert_problem(response, 500)
    assert "integrity" in body["detail"]
    assert world.runtime.storage.workspace_exists(team.workspace_id)
    assert not list((world.runtime.settings.data_path / "exports").glob("*"))
    assert world.client.get(url(team), headers=team.actors["owner"].bearer).status_code == 200


def test_export_is_a_consistent_single_file(world: World, team: Team) -> None:
    copy = export.export_workspace(world.runtime, team.workspace_id)
    assert not copy.with_name(copy.name + "-wal").exists()
    assert copy.stat().st_mode & 0o077 == 0
    assert copy.parent.stat().st_mode & 0o077 == 0
