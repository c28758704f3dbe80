"""Memberships: change role, remove, leave, the last-owner rule, and invitations (single use,
expiring, for the invited email only)."""

from __future__ import annotations

import pytest

from tests.identity_fixtures import (
    PASSWORD,
    Team,
    World,
    assert_problem,
    control_audit,
    workspace_audit,
)
from workbench.auth.ratelimit import INVITATION_ACCEPT_PER_ADDRESS


@pytest.fixture
def team(world: World) -> Team:
    return world.team()


def members(team: Team) -> str:
    return f"/api/v1/workspaces/{team.workspace_id}/members"


def invitations(team: Team) -> str:
    return f"/api/v1/workspaces/{team.workspace_id}/invitations"


def roles(world: World, team: Team) -> dict[str, str]:
    listed = world.client.get(members(team), headers=team.actors["owner"].bearer).json()
    return {m["user_id"]: m["role"] for m in listed["members"]}


# -- roles and removal ----------------------------------------------------------------------


def test_members_list_shows_everyone_with_roles(world: World, team: Team) -> None:
    listed = world.client.get(members(team), headers=team.actors["viewer"].bearer).json()
    by_email = {m["email"]: m["role"] for m in listed["members"]}
    for role, actor in team.actors.items():
        assert by_email[actor.email] == role
    assert len(by_email) == 5


def test_admin_changes_roles_below_owner(world: World, team: Team) -> None:
    admin, target = team.actors["admin"], team.target
    assert target is not None
    promoted = world.client.patch(
        f"{members(team)}/{target.user_id}",
        json={"role": "admin"},
        headers={**admin.bearer, "X-Request-ID": "role-1"},
    )
    assert promoted.status_code == 200 and promoted.json()["role"] == "admin"
    to_owner = world.client.patch(
        f"{members(team)}/{target.user_id}", json={"role": "owner"}, headers=admin.bearer
    )
    assert "owner" in assert_problem(to_owner, 403)["detail"]
    owner_id = team.actors["owner"].user_id
    demote_owner = world.client.patch(
        f"{members(team)}/{owner_id}", json={"role": "viewer"}, headers=admin.bearer
    )
    assert_problem(demote_owner, 403)
    entry = [e for e in control_audit(world.runtime) if e["action"] == "member.role_changed"]
    assert entry[-1]["correlation_id"] == "role-1"
    assert '"from":"viewer"' in entry[-1]["details"] and '"to":"admin"' in entry[-1]["details"]
    mirrored = [e["action"] for e in workspace_audit(world.runtime, team.workspace_id)]
    assert "member.role_changed" in mirrored


def test_owner_makes_another_owner(world: World, team: Team) -> None:
    member = team.actors["member"]
    response = world.client.patch(
        f"{members(team)}/{member.user_id}",
        json={"role": "owner"},
        headers=team.actors["owner"].bearer,
    )
    assert response.status_code == 200
    assert roles(world, team)[member.user_id] == "owner"


def test_role_change_validation(world: World, team: Team) -> None:
    owner = team.actors["owner"].bearer
    target = team.target
    assert target is not None
    assert_problem(
        world.client.patch(
            f"{members(team)}/{target.user_id}", json={"role": "god"}, headers=owner
        ),
        400,
    )
    assert_problem(
        world.client.patch(
            f"{members(team)}/usr_{'0' * 32}", json={"role": "admin"}, headers=owner
        ),
        404,
    )
    assert_problem(
        world.client.patch(f"{members(team)}/not-an-id", json={"role": "admin"}, headers=owner), 404
    )
    same = world.client.patch(
        f"{members(team)}/{target.user_id}", json={"role": "viewer"}, headers=owner
    )
    assert same.status_code == 200


def test_remove_member_revokes_their_tokens(world: World, team: Team) -> None:
    target = team.target
    assert target is not None
    assert world.client.get(members(team), headers=target.bearer).status_code == 200
    removed = world.client.delete(
        f"{members(team)}/{target.user_id}", headers=team.actors["admin"].bearer
    )
    assert removed.status_code == 204
    assert target.user_id not in roles(world, team)
    assert_problem(world.client.get(members(team), headers=target.bearer), 401)
    assert_problem(world.client.get(members(team), headers=target.session.headers()), 404)
    entry = [e for e in control_audit(world.runtime) if e["action"] == "member.removed"][-1]
    assert '"tokens_revoked":1' in entry["details"]


def test_viewer_cannot_remove_others_but_can_leave(world: World, team: Team) -> None:
    viewer, member = team.actors["viewer"], team.actors["member"]
    assert_problem(
        world.client.delete(f"{members(team)}/{member.user_id}", headers=viewer.bearer), 403
    )
    left = world.client.delete(
        f"{members(team)}/{viewer.user_id}", headers=viewer.session.headers()
    )
    assert left.status_code == 204
    assert_problem(world.client.get(members(team), headers=viewer.session.headers()), 404)
    also = world.client.delete(f"{members(team)}/me", headers=member.bearer)
    assert also.status_code == 204
    actions = [e["action"] for e in control_audit(world.runtime)]
    assert actions.count("member.left") == 2


def test_admin_cannot_remove_an_owner(world: World, team: Team) -> None:
    owner_id = team.actors["owner"].user_id
    response = world.client.delete(
        f"{members(team)}/{owner_id}", headers=team.actors["admin"].bearer
    )
    assert_problem(response, 403)


# -- the last owner -------------------------------------------------------------------------


def test_last_owner_cannot_leave_be_demoted_or_removed(world: World, team: Team) -> None:
    owner = team.actors["owner"]
    leave = world.client.delete(f"{members(team)}/me", headers=owner.bearer)
    assert "at least one owner" in assert_problem(leave, 409)["detail"]
    demote = world.client.patch(
        f"{members(team)}/{owner.user_id}", json={"role": "admin"}, headers=owner.bearer
    )
    assert_problem(demote, 409)
    assert roles(world, team)[owner.user_id] == "owner"


def test_with_two_owners_one_may_go_but_not_the_last(world: World, team: Team) -> None:
    first, second = team.actors["owner"], team.actors["admin"]
    world.client.patch(
        f"{members(team)}/{second.user_id}", json={"role": "owner"}, headers=first.bearer
    )
    demoted = world.client.patch(
        f"{members(team)}/{first.user_id}", json={"role": "member"}, headers=first.bearer
    )
    assert demoted.status_code == 200
    # first is a member now; the token acts with the current role
    assert_problem(
        world.client.delete(f"{members(team)}/{second.user_id}", headers=first.bearer), 403
    )
    world.client.patch(
        f"{members(team)}/{first.user_id}", json={"role": "owner"}, headers=second.bearer
    )
    removed = world.client.delete(f"{members(team)}/{second.user_id}", headers=first.bearer)
    assert removed.status_code == 204
    assert_problem(world.client.delete(f"{members(team)}/me", headers=first.bearer), 409)


def test_cli_member_add_respects_the_last_owner(world: World, team: Team) -> None:
    from workbench.errors import Conflict
    from workbench.workspaces.membership import add_member

    with pytest.raises(Conflict):
        add_member(world.runtime, team.workspace_id, team.actors["owner"].email, "viewer")


# -- invitations ----------------------------------------------------------------------------


def invite(
    world: World, team: Team, email: str, role: str = "member", by: str = "admin"
) -> dict[str, object]:
    response = world.client.post(
        invitations(team), json={"email": email, "role": role}, headers=team.actors[by].bearer
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def accept(world: World, session_headers: dict[str, str], token: str) -> object:
    return world.client.post(
        "/api/v1/invitations/accept", json={"token": token}, headers=session_headers
    )


def test_invitation_accept_flow(world: World, team: Team) -> None:
    user_id, email = world.user("newbie@example.com")
    created = invite(world, team, "NewBie@example.com", "admin")
    token = str(created["token"])
    assert token.startswith("wbi_")
    assert created["invitation"]["email"] == "newbie@example.com"  # type: ignore[index]
    pending = world.client.get(invitations(team), headers=team.actors["owner"].bearer).json()
    assert "newbie@example.com" in [i["email"] for i in pending["invitations"]]
    assert token not in repr(pending)
    session = world.login(email)
    joined = accept(world, session.headers(), token)
    assert joined.status_code == 200  # type: ignore[attr-defined]
    assert joined.json()["id"] == team.workspace_id  # type: ignore[attr-defined]
    assert joined.json()["role"] == "admin"  # type: ignore[attr-defined]
    assert roles(world, team)[user_id] == "admin"
    reused = accept(world, session.headers(), token)
    assert "already been used" in assert_problem(reused, 409)["detail"]
    actions = [e["action"] for e in control_audit(world.runtime)]
    assert "invitation.created" in actions and "member.joined" in actions
    assert token not in repr(control_audit(world.runtime))
    with world.runtime.storage.control.read() as conn:
        stored = [r[0] for r in conn.execute("SELECT token_hash FROM invitations")]
    assert token not in stored


def test_reused_invitation_by_someone_else_is_refused(world: World, team: Team) -> None:
    created = invite(world, team, "one@example.com")
    world.user("one@example.com")
    assert (
        accept(world, world.login("one@example.com").headers(), str(created["token"])).status_code
        == 200
    )  # type: ignore[attr-defined]
    _, other = world.user()
    assert_problem(accept(world, world.login(other).headers(), str(created["token"])), 409)


def test_expired_invitation_is_gone(world: World, team: Team) -> None:
    created = invite(world, team, "late@example.com")
    world.user("late@example.com")
    world.clock.advance(days=7)
    response = accept(world, world.login("late@example.com").headers(), str(created["token"]))
    assert "expired" in assert_problem(response, 410)["detail"]
    pending = world.client.get(invitations(team), headers=team.actors["owner"].bearer).json()
    assert "late@example.com" not in [i["email"] for i in pending["invitations"]]


def test_withdrawn_and_replaced_invitations_are_gone(world: World, team: Team) -> None:
    first = invite(world, team, "twice@example.com")
    second = invite(world, team, "twice@example.com")  # replaces the first
    world.user("twice@example.com")
    session = world.login("twice@example.com").headers()
    assert_problem(accept(world, session, str(first["token"])), 410)
    invitation_id = second["invitation"]["id"]  # type: ignore[index]
    withdrawn = world.client.delete(
        f"{invitations(team)}/{invitation_id}", headers=team.actors["admin"].bearer
    )
    assert withdrawn.status_code == 204
    assert_problem(accept(world, session, str(second["token"])), 410)
    for bad in ("inv_nope", f"inv_{'0' * 32}"):
        assert_problem(
            world.client.delete(f"{invitations(team)}/{bad}", headers=team.actors["admin"].bearer),
            404,
        )


def test_invitation_is_for_the_invited_email_only(world: World, team: Team) -> None:
    created = invite(world, team, "intended@example.com")
    _, other = world.user()
    response = accept(world, world.login(other).headers(), str(created["token"]))
    assert_problem(response, 403)


def test_invitation_tokens_unknown_or_malformed_are_404(world: World, team: Team) -> None:
    _, email = world.user()
    session = world.login(email).headers()
    for token in ("wbi_" + "A" * 43, "nonsense", "wb_" + "A" * 43, "../../control.db"):
        assert_problem(accept(world, session, token), 404)
    assert_problem(accept(world, session, ""), 400)


def test_accepting_needs_a_session_with_csrf(world: World, team: Team) -> None:
    created = invite(world, team, "csrf@example.com")
    world.user("csrf@example.com")
    session = world.login("csrf@example.com")
    assert_problem(accept(world, session.headers(csrf=False), str(created["token"])), 403)
    assert_problem(accept(world, team.actors["viewer"].bearer, str(created["token"])), 403)
    assert_problem(accept(world, {}, str(created["token"])), 401)


def test_invitation_rules(world: World, team: Team) -> None:
    admin = team.actors["admin"].bearer
    as_owner = world.client.post(
        invitations(team), json={"email": "x@example.com", "role": "owner"}, headers=admin
    )
    assert "stronger" in assert_problem(as_owner, 403)["detail"]
    member_email = team.actors["member"].email
    existing = world.client.post(invitations(team), json={"email": member_email}, headers=admin)
    assert_problem(existing, 409)
    bad = world.client.post(invitations(team), json={"email": "nope"}, headers=admin)
    assert_problem(bad, 422)
    as_member = world.client.post(
        invitations(team), json={"email": "y@example.com"}, headers=team.actors["member"].bearer
    )
    assert_problem(as_member, 403)
    by_owner = world.client.post(
        invitations(team),
        json={"email": "o@example.com", "role": "owner"},
        headers=team.actors["owner"].bearer,
    )
    assert by_owner.status_code == 201


def test_already_a_member_cannot_accept(world: World, team: Team) -> None:
    created = invite(world, team, "late-joiner@example.com")
    world.user("late-joiner@example.com")
    world.add(team.workspace_id, "late-joiner@example.com", "viewer")
    session = world.login("late-joiner@example.com").headers()
    assert_problem(accept(world, session, str(created["token"])), 409)


def test_invitation_accept_is_rate_limited(world: World, team: Team) -> None:
    _, email = world.user()
    session = world.login(email).headers()
    for _ in range(INVITATION_ACCEPT_PER_ADDRESS.max_events):
        assert_problem(accept(world, session, "wbi_" + "Z" * 43), 404)
    assert_problem(accept(world, session, "wbi_" + "Z" * 43), 429)


def test_signup_then_accept_end_to_end(world: World, team: Team) -> None:
    created = invite(world, team, "fresh@example.com", "viewer")
    signed = world.client.post(
        "/api/v1/auth/signup", json={"email": "fresh@example.com", "password": PASSWORD}
    )
    csrf = signed.json()["csrf_token"]
    joined = world.client.post(
        "/api/v1/invitations/accept",
        json={"token": created["token"]},
        headers={"X-CSRF-Token": csrf},
    )
    assert joined.status_code == 200
    mine = world.client.get("/api/v1/workspaces").json()["workspaces"]
    assert [(w["id"], w["role"]) for w in mine] == [(team.workspace_id, "viewer")]
