"""API tokens: shown once, stored as a hash, scoped to one workspace, capped by a role
ceiling, expiring, revocable; and every way a token can be wrong."""

from __future__ import annotations

import hashlib

import pytest

from tests.identity_fixtures import (
    Team,
    World,
    assert_problem,
    control_audit,
    workspace_audit,
)
from workbench.auth.ratelimit import TOKENS_PER_ACCOUNT


@pytest.fixture
def team(world: World) -> Team:
    return world.team()


def members_url(team: Team) -> str:
    return f"/api/v1/workspaces/{team.workspace_id}/members"


def tokens_url(team: Team) -> str:
    return f"/api/v1/workspaces/{team.workspace_id}/tokens"


def create(world: World, team: Team, actor: str = "owner", **body: object) -> dict[str, object]:
    session = team.actors[actor].session
    response = world.client.post(
        tokens_url(team), json={"name": "ci", **body}, headers=session.headers()
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_token_is_shown_once_and_stored_only_as_a_hash(world: World, team: Team) -> None:
    created = create(world, team, expires_in_days=30)
    secret = str(created["token"])
    info = created["info"]
    assert isinstance(info, dict)
    assert secret.startswith("wb_") and len(secret) == 46
    assert info["display_prefix"] == secret[:9]
    assert info["expires_at"] == "2026-01-31T00:00:00.000000Z"
    with world.runtime.storage.control.read() as conn:
        stored = conn.execute(
            "SELECT token_hash FROM api_tokens WHERE id = ?", (info["id"],)
        ).fetchone()[0]
    assert stored == hashlib.sha256(secret.encode()).hexdigest()
    listed = world.client.get(tokens_url(team), headers=team.actors["owner"].session.headers())
    assert secret not in listed.text
    assert info["id"] in listed.text
    db_bytes = world.runtime.settings.control_db_path.read_bytes()
    wal = world.runtime.settings.control_db_path.with_name("control.db-wal")
    db_bytes += wal.read_bytes() if wal.exists() else b""
    assert secret.encode() not in db_bytes
    works = world.client.get(members_url(team), headers={"Authorization": f"Bearer {secret}"})
    assert works.status_code == 200


def test_missing_token_is_401(world: World, team: Team) -> None:
    response = world.client.get(members_url(team))
    assert_problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "header",
    [
        "Bearer",
        "Bearer ",
        "Bearer wb_short",
        "Bearer xx_" + "a" * 43,
        "Basic dXNlcjpwYXNz",
        "wb_" + "a" * 43,
        "Bearer wb_" + "a" * 42 + "!",
        "Bearer wb_" + "a" * 44,
        "Bearer wb_" + "a" * 43 + " extra",
    ],
)
def test_malformed_tokens_are_401(world: World, team: Team, header: str) -> None:
    body = assert_problem(
        world.client.get(members_url(team), headers={"Authorization": header}), 401
    )
    assert "malformed" in body["detail"]


def test_unknown_token_is_401(world: World, team: Team) -> None:
    forged = "wb_" + "A" * 43
    body = assert_problem(
        world.client.get(members_url(team), headers={"Authorization": f"Bearer {forged}"}), 401
    )
    assert "not valid" in body["detail"]


def test_bad_bearer_is_not_rescued_by_a_good_session(world: World, team: Team) -> None:
    owner = team.actors["owner"]
    headers = {**owner.session.headers(), "Authorization": "Bearer wb_" + "B" * 43}
    assert_problem(world.client.get(members_url(team), headers=headers), 401)


def test_expired_token_is_401(world: World, team: Team) -> None:
    secret = str(create(world, team, expires_in_days=1)["token"])
    auth = {"Authorization": f"Bearer {secret}"}
    world.clock.advance(hours=23)
    assert world.client.get(members_url(team), headers=auth).status_code == 200
    world.clock.advance(hours=1)
    body = assert_problem(world.client.get(members_url(team), headers=auth), 401)
    assert "expired" in body["detail"]


def test_revoked_token_is_refused_at_once(world: World, team: Team) -> None:
    owner = team.actors["owner"]
    created = create(world, team)
    secret, info = str(created["token"]), created["info"]
    assert isinstance(info, dict)
    auth = {"Authorization": f"Bearer {secret}"}
    assert world.client.get(members_url(team), headers=auth).status_code == 200
    revoked = world.client.delete(f"{tokens_url(team)}/{info['id']}", headers=owner.bearer)
    assert revoked.status_code == 204
    body = assert_problem(world.client.get(members_url(team), headers=auth), 401)
    assert "revoked" in body["detail"]
    again = world.client.delete(f"{tokens_url(team)}/{info['id']}", headers=owner.bearer)
    assert again.status_code == 204  # idempotent
    listed = world.client.get(tokens_url(team), headers=owner.bearer).json()["tokens"]
    assert [t["revoked_at"] for t in listed if t["id"] == info["id"]] == [
        "2026-01-01T00:00:00.000000Z"
    ]


def test_token_of_another_workspace_is_404_even_for_a_member_of_both(world: World) -> None:
    a, b = world.team("A"), world.team("B")
    dual = a.actors["owner"]
    world.add(b.workspace_id, dual.email, "owner")
    secret_for_b, _ = world.token(dual.user_id, b.workspace_id)
    on_a = world.client.get(members_url(a), headers={"Authorization": f"Bearer {secret_for_b}"})
    assert_problem(on_a, 404)
    on_b = world.client.get(members_url(b), headers={"Authorization": f"Bearer {secret_for_b}"})
    assert on_b.status_code == 200


def test_role_ceiling_caps_the_token(world: World, team: Team) -> None:
    owner = team.actors["owner"]
    secret = str(create(world, team, actor="owner", role="viewer")["token"])
    auth = {"Authorization": f"Bearer {secret}"}
    assert world.client.get(members_url(team), headers=auth).status_code == 200
    rename = world.client.patch(
        f"/api/v1/workspaces/{team.workspace_id}", json={"name": "x"}, headers=auth
    )
    assert "viewer" in assert_problem(rename, 403)["detail"]
    me = world.client.get(f"/api/v1/workspaces/{team.workspace_id}", headers=auth)
    assert me.json()["role"] == "viewer"
    # the holder's own role is still owner
    assert (
        world.client.patch(
            f"/api/v1/workspaces/{team.workspace_id}", json={"name": "x"}, headers=owner.bearer
        ).status_code
        == 200
    )


def test_ceiling_above_membership_gives_the_membership_role(world: World, team: Team) -> None:
    viewer = team.actors["viewer"]
    secret, _ = world.token(viewer.user_id, team.workspace_id, ceiling="owner")
    response = world.client.get(
        f"/api/v1/workspaces/{team.workspace_id}", headers={"Authorization": f"Bearer {secret}"}
    )
    assert response.json()["role"] == "viewer"


def test_demotion_takes_effect_on_existing_tokens(world: World, team: Team) -> None:
    admin = team.actors["admin"]
    assert world.client.get(f"{tokens_url(team)}?all=true", headers=admin.bearer).status_code == 200
    demote = world.client.patch(
        f"{members_url(team)}/{admin.user_id}",
        json={"role": "viewer"},
        headers=team.actors["owner"].bearer,
    )
    assert demote.status_code == 200
    assert_problem(world.client.get(f"{tokens_url(team)}?all=true", headers=admin.bearer), 403)


def test_nobody_creates_a_token_stronger_than_their_role(world: World, team: Team) -> None:
    member = team.actors["member"]
    response = world.client.post(
        tokens_url(team), json={"name": "x", "role": "admin"}, headers=member.session.headers()
    )
    assert "stronger" in assert_problem(response, 403)["detail"]
    ok = world.client.post(
        tokens_url(team), json={"name": "x", "role": "viewer"}, headers=member.session.headers()
    )
    assert ok.status_code == 201


def test_tokens_cannot_mint_tokens(world: World, team: Team) -> None:
    response = world.client.post(
        tokens_url(team), json={"name": "child"}, headers=team.actors["owner"].bearer
    )
    assert "sign in" in assert_problem(response, 403)["detail"]


def test_token_body_limits(world: World, team: Team) -> None:
    headers = team.actors["owner"].session.headers()
    for body in (
        {"name": ""},
        {"name": "x" * 201},
        {"name": "x", "expires_in_days": 0},
        {"name": "x", "role": "god"},
        {"name": "x", "extra": 1},
    ):
        assert_problem(world.client.post(tokens_url(team), json=body, headers=headers), 400)


def test_listing_and_revoking_other_peoples_tokens(world: World, team: Team) -> None:
    member, admin = team.actors["member"], team.actors["admin"]
    mine = world.client.get(tokens_url(team), headers=member.bearer).json()["tokens"]
    assert {t["user_id"] for t in mine} == {member.user_id}
    assert_problem(world.client.get(f"{tokens_url(team)}?all=true", headers=member.bearer), 403)
    everyone = world.client.get(f"{tokens_url(team)}?all=true", headers=admin.bearer).json()
    assert len({t["user_id"] for t in everyone["tokens"]}) == 5
    # a member cannot see (404) nor revoke another's token; an admin can revoke it
    viewer = team.actors["viewer"]
    path = f"{tokens_url(team)}/{viewer.token_id}"
    assert_problem(world.client.delete(path, headers=member.bearer), 404)
    assert world.client.delete(path, headers=admin.bearer).status_code == 204
    assert_problem(world.client.get(members_url(team), headers=viewer.bearer), 401)
    for bad in ("tok_nope", "../x", "tok_" + "0" * 32):
        assert_problem(world.client.delete(f"{tokens_url(team)}/{bad}", headers=admin.bearer), 404)


def test_token_create_and_revoke_are_audited_in_both_files(world: World, team: Team) -> None:
    created = create(world, team, actor="owner")
    info = created["info"]
    assert isinstance(info, dict)
    world.client.delete(
        f"{tokens_url(team)}/{info['id']}",
        headers={**team.actors["owner"].session.headers(), "X-Request-ID": "revoke-req"},
    )
    control = [e for e in control_audit(world.runtime) if e["target"] == info["id"]]
    assert [e["action"] for e in control] == ["token.created", "token.revoked"]
    assert control[1]["correlation_id"] == "revoke-req"
    assert control[0]["workspace_id"] == team.workspace_id
    mirrored = [
        e for e in workspace_audit(world.runtime, team.workspace_id) if e["target"] == info["id"]
    ]
    assert [e["action"] for e in mirrored] == ["token.created", "token.revoked"]
    assert str(created["token"]) not in repr(control) + repr(mirrored)


def test_token_creation_is_rate_limited(world: World, team: Team) -> None:
    headers = team.actors["member"].session.headers()
    for _ in range(TOKENS_PER_ACCOUNT.max_events):
        assert (
            world.client.post(tokens_url(team), json={"name": "n"}, headers=headers).status_code
            == 201
        )
    limited = world.client.post(tokens_url(team), json={"name": "n"}, headers=headers)
    assert_problem(limited, 429)
    assert int(limited.headers["retry-after"]) > 0
    world.clock.advance(hours=1)
    assert (
        world.client.post(tokens_url(team), json={"name": "n"}, headers=headers).status_code == 201
    )


def test_token_use_is_recorded_at_most_every_few_minutes(world: World, team: Team) -> None:
    owner = team.actors["owner"]
    world.client.get(members_url(team), headers=owner.bearer)
    first = world.client.get(tokens_url(team), headers=owner.bearer).json()["tokens"]
    assert first[0]["last_used_at"] == "2026-01-01T00:00:00.000000Z"
    world.clock.advance(minutes=1)
    world.client.get(members_url(team), headers=owner.bearer)
    same = world.client.get(tokens_url(team), headers=owner.bearer).json()["tokens"]
    assert same[0]["last_used_at"] == "2026-01-01T00:00:00.000000Z"
    world.clock.advance(minutes=5)
    world.client.get(members_url(team), headers=owner.bearer)
    later = world.client.get(tokens_url(team), headers=owner.bearer).json()["tokens"]
    assert later[0]["last_used_at"] == "2026-01-01T00:06:00.000000Z"


def test_me_with_a_token_names_its_workspace(world: World, team: Team) -> None:
    owner = team.actors["owner"]
    body = world.client.get("/api/v1/me", headers=owner.bearer).json()
    assert body["via"] == "token"
    assert body["workspace_id"] == team.workspace_id
    assert body["token_id"] == owner.token_id
    assert body["user"]["email"] == owner.email
