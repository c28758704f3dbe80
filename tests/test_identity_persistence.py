"""Nothing about identity lives only in memory: after a restart (a new runtime and app over
the same data directory) sessions, tokens, memberships, invitations and revocations hold."""

from __future__ import annotations

from pathlib import Path

from litestar.testing import TestClient

from tests.identity_fixtures import cheap_password_hashing, make_world
from workbench.app import create_app
from workbench.audit import verify
from workbench.clock import FrozenClock
from workbench.config import load_settings
from workbench.runtime import Runtime


def test_sessions_tokens_and_memberships_survive_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with make_world(data) as first:
        team = first.team("Persistent")
        owner, viewer = team.actors["owner"], team.actors["viewer"]
        revoked_token, revoked_id = first.token(owner.user_id, team.workspace_id)
        assert (
            first.client.delete(
                f"/api/v1/workspaces/{team.workspace_id}/tokens/{revoked_id}", headers=owner.bearer
            ).status_code
            == 204
        )
        logged_out = first.login(viewer.email)
        first.client.post("/api/v1/auth/logout", headers=logged_out.headers())
        promoted = first.client.patch(
            f"/api/v1/workspaces/{team.workspace_id}/members/{viewer.user_id}",
            json={"role": "member"},
            headers=owner.bearer,
        )
        assert promoted.status_code == 200
        invitation_token = team.invitation_token
        invitee = first.client.get(
            f"/api/v1/workspaces/{team.workspace_id}/invitations", headers=owner.bearer
        ).json()["invitations"][0]["email"]
        first.user(invitee)

    # a new process: new runtime, new app, new rate limiter, same files
    with cheap_password_hashing():
        runtime = Runtime(
            load_settings(environ={}, data_dir=str(data), secure_cookies=False),
            clock=FrozenClock(),
        )
        with TestClient(create_app(runtime)) as client:
            me = client.get("/api/v1/me", headers=owner.session.headers())
            assert me.status_code == 200 and me.json()["user"]["email"] == owner.email
            members = client.get(
                f"/api/v1/workspaces/{team.workspace_id}/members", headers=owner.bearer
            )
            assert members.status_code == 200
            roles = {m["email"]: m["role"] for m in members.json()["members"]}
            assert roles[owner.email] == "owner" and roles[viewer.email] == "member"
            assert (
                client.get(f"/api/v1/workspaces/{team.workspace_id}", headers=viewer.bearer).json()[
                    "role"
                ]
                == "member"
            )
            gone = client.get("/api/v1/me", headers={"Authorization": f"Bearer {revoked_token}"})
            assert gone.status_code == 401
            assert client.get("/api/v1/me", headers=logged_out.headers()).status_code == 401
            # the CSRF token of a session still works after the restart
            renamed = client.patch(
                f"/api/v1/workspaces/{team.workspace_id}",
                json={"name": "Still here"},
                headers=owner.session.headers(),
            )
            assert renamed.status_code == 200
            login = client.post(
                "/api/v1/auth/login",
                json={"email": invitee, "password": "correct horse battery staple"},
            )
            assert login.status_code == 200
            accepted = client.post(
                "/api/v1/invitations/accept",
                json={"token": invitation_token},
                headers={"X-CSRF-Token": login.json()["csrf_token"]},
            )
            assert accepted.status_code == 200
        with runtime.storage.control.read() as conn:
            assert verify(conn) > 0
        with runtime.storage.workspace(team.workspace_id).read() as conn:
            assert verify(conn) > 0
        runtime.close()
