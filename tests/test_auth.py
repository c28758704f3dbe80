"""Accounts, login, sessions, CSRF, rate limits and the generic login failure."""

from __future__ import annotations

from pathlib import Path

import pytest
from argon2 import PasswordHasher

from tests.identity_fixtures import PASSWORD, World, assert_problem, control_audit, make_world
from workbench.auth import passwords, service
from workbench.auth.ratelimit import LOGIN_FAILURES_PER_ACCOUNT, LOGIN_PER_ADDRESS
from workbench.errors import Unprocessable


def signup(world: World, email: str, password: str = PASSWORD) -> dict[str, str]:
    response = world.client.post("/api/v1/auth/signup", json={"email": email, "password": password})
    assert response.status_code == 201, response.text
    return dict(response.json())


def cookies_of(response: object) -> dict[str, str]:
    """Set-Cookie lines by cookie name."""
    headers = response.headers.get_list("set-cookie")  # type: ignore[attr-defined]
    return {line.split("=", 1)[0]: line for line in headers}


# -- sign-up and login ----------------------------------------------------------------------


def test_signup_creates_an_account_and_signs_in(world: World) -> None:
    response = world.client.post(
        "/api/v1/auth/signup", json={"email": " Ada@Example.COM ", "password": PASSWORD}
    )
    assert response.status_code == 201
    body = response.json()
    assert body["user"]["email"] == "ada@example.com"
    assert body["user"]["id"].startswith("usr_")
    me = world.client.get("/api/v1/me")  # the cookie jar now holds the session
    assert me.status_code == 200
    assert me.json()["user"]["email"] == "ada@example.com"
    assert me.json()["via"] == "session"


def test_session_cookies_are_http_only_and_same_site(world: World) -> None:
    response = world.client.post(
        "/api/v1/auth/signup", json={"email": "c@example.com", "password": PASSWORD}
    )
    cookies = cookies_of(response)
    session, csrf = cookies["wb_session"], cookies["wb_csrf"]
    assert "HttpOnly" in session and "SameSite=lax" in session and "Path=/" in session
    assert "HttpOnly" not in csrf and "SameSite=lax" in csrf  # the page's script reads it
    assert "Secure" not in session  # secure_cookies=False in this world
    assert response.json()["csrf_token"] in csrf


def test_secure_cookies_when_configured(tmp_path: Path) -> None:
    with make_world(tmp_path / "data", secure_cookies=True) as world:
        response = world.client.post(
            "/api/v1/auth/signup", json={"email": "s@example.com", "password": PASSWORD}
        )
        assert response.status_code == 201
        for line in cookies_of(response).values():
            assert "Secure" in line


def test_signup_rejects_duplicates_bad_email_and_short_password(world: World) -> None:
    signup(world, "dup@example.com")
    world.client.cookies.clear()
    again = world.client.post(
        "/api/v1/auth/signup", json={"email": "DUP@example.com", "password": PASSWORD}
    )
    assert_problem(again, 409)
    bad_email = world.client.post(
        "/api/v1/auth/signup", json={"email": "not-an-email", "password": PASSWORD}
    )
    assert_problem(bad_email, 422)
    short = world.client.post(
        "/api/v1/auth/signup", json={"email": "x@example.com", "password": "short"}
    )
    assert_problem(short, 400)
    too_long = world.client.post(
        "/api/v1/auth/signup", json={"email": "x@example.com", "password": "p" * 257}
    )
    assert_problem(too_long, 400)
    long_email = world.client.post(
        "/api/v1/auth/signup", json={"email": "a" * 250 + "@example.com", "password": PASSWORD}
    )
    assert_problem(long_email, 400)
    with pytest.raises(Unprocessable):
        service.check_password_policy(" " * 10)


def test_signup_can_be_disabled(tmp_path: Path) -> None:
    with make_world(tmp_path / "data", signup_enabled=False) as world:
        response = world.client.post(
            "/api/v1/auth/signup", json={"email": "d@example.com", "password": PASSWORD}
        )
        body = assert_problem(response, 403)
        assert "disabled" in body["detail"]
        # operators can still create accounts, and those can log in
        world.user("op@example.com")
        login = world.client.post(
            "/api/v1/auth/login", json={"email": "op@example.com", "password": PASSWORD}
        )
        assert login.status_code == 200


def test_credentials_must_be_sent_as_json(world: World) -> None:
    world.user("form@example.com")
    response = world.client.post(
        "/api/v1/auth/login",
        content=f'{{"email": "form@example.com", "password": "{PASSWORD}"}}',
        headers={"Content-Type": "text/plain"},
    )
    assert_problem(response, 400)


def test_login_and_logout(world: World) -> None:
    world.user("lee@example.com")
    response = world.client.post(
        "/api/v1/auth/login", json={"email": "LEE@example.com", "password": PASSWORD}
    )
    assert response.status_code == 200
    csrf = response.json()["csrf_token"]
    assert world.client.get("/api/v1/me").status_code == 200
    assert_problem(world.client.post("/api/v1/auth/logout"), 403)  # no CSRF header
    out = world.client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf})
    assert out.status_code == 204
    assert all("Max-Age=0" in line for line in cookies_of(out).values())
    assert_problem(world.client.get("/api/v1/me"), 401)


def test_logged_out_session_cookie_is_refused_even_if_replayed(world: World) -> None:
    _, email = world.user()
    session = world.login(email)
    assert world.client.get("/api/v1/me", headers=session.headers()).status_code == 200
    out = world.client.post("/api/v1/auth/logout", headers=session.headers())
    assert out.status_code == 204
    world.client.cookies.clear()
    body = assert_problem(world.client.get("/api/v1/me", headers=session.headers()), 401)
    assert "signed out" in body["detail"]


def test_generic_login_failure_does_not_reveal_whether_the_email_exists(world: World) -> None:
    world.user("known@example.com")
    wrong_password = world.client.post(
        "/api/v1/auth/login", json={"email": "known@example.com", "password": "wrong password"}
    )
    unknown_email = world.client.post(
        "/api/v1/auth/login", json={"email": "ghost@example.com", "password": "wrong password"}
    )
    first, second = assert_problem(wrong_password, 401), assert_problem(unknown_email, 401)
    for key in ("type", "title", "status", "detail"):
        assert first[key] == second[key]
    assert first["detail"] == service.GENERIC_LOGIN_FAILURE
    assert wrong_password.headers.keys() == unknown_email.headers.keys()


def test_login_failures_and_successes_are_audited_without_secrets(world: World) -> None:
    world.user("audited@example.com")
    world.client.post(
        "/api/v1/auth/login",
        json={"email": "audited@example.com", "password": "a wrong secret"},
        headers={"X-Request-ID": "req-fail-1"},
    )
    world.client.post(
        "/api/v1/auth/login",
        json={"email": "nobody@example.com", "password": "another wrong secret"},
    )
    ok = world.client.post(
        "/api/v1/auth/login",
        json={"email": "audited@example.com", "password": PASSWORD},
        headers={"X-Request-ID": "req-ok-1"},
    )
    assert ok.status_code == 200
    entries = control_audit(world.runtime)
    failed = [e for e in entries if e["action"] == "auth.login_failed"]
    assert len(failed) == 2
    assert failed[0]["correlation_id"] == "req-fail-1"
    assert failed[0]["target"] is not None and failed[1]["target"] is None
    succeeded = [e for e in entries if e["action"] == "auth.login"]
    assert succeeded[-1]["correlation_id"] == "req-ok-1"
    assert succeeded[-1]["actor"] == ok.json()["user"]["id"]
    text = repr(entries)
    for secret in (PASSWORD, "a wrong secret", "another wrong secret", ok.json()["csrf_token"]):
        assert secret not in text
    assert ok.cookies["wb_session"] not in text


# -- passwords ------------------------------------------------------------------------------


def test_passwords_are_hashed_with_argon2id_default_memory_hard_parameters() -> None:
    default = PasswordHasher()
    assert default.memory_cost >= 19 * 1024  # OWASP's floor for Argon2id, in KiB
    assert passwords.hasher().type.name == "ID"
    digest = passwords.hash_password("some password")
    assert digest.startswith("$argon2id$")
    assert passwords.verify_password(digest, "some password")
    assert not passwords.verify_password(digest, "other password")
    assert not passwords.verify_password("not a hash", "some password")
    assert passwords.needs_rehash("not a hash")


def test_password_is_never_stored_in_clear(world: World) -> None:
    world.user("clear@example.com")
    raw = world.runtime.settings.control_db_path.read_bytes()
    wal = world.runtime.settings.control_db_path.with_name("control.db-wal")
    raw += wal.read_bytes() if wal.exists() else b""
    assert PASSWORD.encode() not in raw


def test_weak_hashes_are_upgraded_at_login(world: World) -> None:
    user_id, email = world.user()
    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1, salt_len=8).hash(PASSWORD)
    with world.runtime.storage.control.write() as conn:
        conn.execute("UPDATE users SET password_hash = ? WHERE id = ?", (weak, user_id))
    world.login(email)
    with world.runtime.storage.control.read() as conn:
        (stored,) = conn.execute("SELECT password_hash FROM users WHERE id = ?", (user_id,))
    assert stored[0] != weak and passwords.verify_password(stored[0], PASSWORD)


def test_change_password_signs_out_other_sessions(world: World) -> None:
    _, email = world.user()
    current, other = world.login(email), world.login(email)
    wrong = world.client.post(
        "/api/v1/auth/password",
        json={"current_password": "not it at all", "new_password": "a brand new secret"},
        headers=current.headers(),
    )
    assert_problem(wrong, 403)
    changed = world.client.post(
        "/api/v1/auth/password",
        json={"current_password": PASSWORD, "new_password": "a brand new secret"},
        headers=current.headers(),
    )
    assert changed.status_code == 204
    assert world.client.get("/api/v1/me", headers=current.headers()).status_code == 200
    assert_problem(world.client.get("/api/v1/me", headers=other.headers()), 401)
    old = world.client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert_problem(old, 401)
    new = world.client.post(
        "/api/v1/auth/login", json={"email": email, "password": "a brand new secret"}
    )
    assert new.status_code == 200
    actions = [e["action"] for e in control_audit(world.runtime)]
    assert "user.password_changed" in actions


def test_password_change_needs_a_session_not_a_token(world: World) -> None:
    team = world.team()
    owner = team.actors["owner"]
    response = world.client.post(
        "/api/v1/auth/password",
        json={"current_password": PASSWORD, "new_password": "another new secret"},
        headers=owner.bearer,
    )
    body = assert_problem(response, 403)
    assert "session" in body["detail"]


# -- sessions -------------------------------------------------------------------------------


def test_session_expires_after_its_lifetime(world: World) -> None:
    _, email = world.user()
    session = world.login(email)
    world.clock.advance(days=13, hours=23)
    assert world.client.get("/api/v1/me", headers=session.headers()).status_code == 200
    world.clock.advance(hours=1)
    body = assert_problem(world.client.get("/api/v1/me", headers=session.headers()), 401)
    assert "expired" in body["detail"]


def test_malformed_and_unknown_session_cookies_are_refused(world: World) -> None:
    for value in ("short", "x" * 43, "../../etc/passwd", ""):
        response = world.client.get("/api/v1/me", headers={"Cookie": f"wb_session={value}"})
        body = assert_problem(response, 401)
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert value not in body["detail"] or not value


def test_prune_sessions_deletes_long_dead_sessions(world: World) -> None:
    _, email = world.user()
    world.login(email)
    live = world.login(email)
    world.clock.advance(days=15)
    kept = world.login(email)
    assert service.prune_sessions(world.runtime) == 0  # ended a day ago: kept for now
    world.clock.advance(days=31)
    assert service.prune_sessions(world.runtime) == 2
    assert_problem(world.client.get("/api/v1/me", headers=live.headers()), 401)
    del kept


def test_session_cleanup_job_is_registered_and_runs(world: World) -> None:
    _, email = world.user()
    world.login(email)
    world.clock.advance(days=60)
    task_class = world.runtime.huey._registry.string_to_task(
        "workbench.auth.plugin.auth.prune_sessions"
    )
    assert task_class().execute() == 1


# -- CSRF -----------------------------------------------------------------------------------


def test_csrf_is_required_for_cookie_authenticated_state_changes(world: World) -> None:
    _, email = world.user()
    session = world.login(email)
    body = {"name": "Acme"}
    missing = world.client.post(
        "/api/v1/workspaces", json=body, headers=session.headers(csrf=False)
    )
    assert "CSRF" in assert_problem(missing, 403)["detail"]
    mismatched = world.client.post(
        "/api/v1/workspaces",
        json=body,
        headers={**session.headers(csrf=False), "X-CSRF-Token": "not-the-cookie"},
    )
    assert_problem(mismatched, 403)
    # a forged pair: header equal to the cookie, but not this session's token
    forged = "F" * 43
    pair = world.client.post(
        "/api/v1/workspaces",
        json=body,
        headers={"Cookie": f"wb_session={session.token}; wb_csrf={forged}", "X-CSRF-Token": forged},
    )
    assert_problem(pair, 403)
    ok = world.client.post("/api/v1/workspaces", json=body, headers=session.headers())
    assert ok.status_code == 201
    # reads need no CSRF token
    assert (
        world.client.get("/api/v1/workspaces", headers=session.headers(csrf=False)).status_code
        == 200
    )


def test_bearer_requests_are_exempt_from_csrf(world: World) -> None:
    team = world.team()
    owner = team.actors["owner"]
    response = world.client.patch(
        f"/api/v1/workspaces/{team.workspace_id}",
        json={"name": "Renamed"},
        headers=owner.bearer,
    )
    assert response.status_code == 200


# -- rate limits ----------------------------------------------------------------------------


def test_login_is_rate_limited_per_account_with_retry_after(world: World) -> None:
    world.user("target@example.com")
    for _ in range(LOGIN_FAILURES_PER_ACCOUNT.max_events):
        response = world.client.post(
            "/api/v1/auth/login", json={"email": "target@example.com", "password": "guess guess"}
        )
        assert response.status_code == 401
    locked = world.client.post(
        "/api/v1/auth/login", json={"email": "target@example.com", "password": PASSWORD}
    )
    body = assert_problem(locked, 429)
    assert int(locked.headers["retry-after"]) > 0
    assert body["retry_after"] == int(locked.headers["retry-after"])
    # an account that does not exist is limited the same way: no hint either way
    for _ in range(LOGIN_FAILURES_PER_ACCOUNT.max_events):
        world.client.post(
            "/api/v1/auth/login", json={"email": "none@example.com", "password": "guess guess"}
        )
    assert_problem(
        world.client.post(
            "/api/v1/auth/login", json={"email": "none@example.com", "password": "guess guess"}
        ),
        429,
    )
    world.clock.advance(seconds=int(locked.headers["retry-after"]))
    again = world.client.post(
        "/api/v1/auth/login", json={"email": "target@example.com", "password": PASSWORD}
    )
    assert again.status_code == 200


def test_login_is_rate_limited_per_address(world: World) -> None:
    for n in range(LOGIN_PER_ADDRESS.max_events):
        response = world.client.post(
            "/api/v1/auth/login", json={"email": f"spray{n}@example.com", "password": "guess it"}
        )
        assert response.status_code == 401
    blocked = world.client.post(
        "/api/v1/auth/login", json={"email": "fresh@example.com", "password": "guess it"}
    )
    assert_problem(blocked, 429)
    assert "Retry-After" in blocked.headers
    world.clock.advance(minutes=10)
    assert (
        world.client.post(
            "/api/v1/auth/login", json={"email": "fresh@example.com", "password": "guess it"}
        ).status_code
        == 401
    )


def test_signup_is_rate_limited_per_address(world: World) -> None:
    statuses = []
    for n in range(11):
        world.client.cookies.clear()
        statuses.append(
            world.client.post(
                "/api/v1/auth/signup", json={"email": f"new{n}@example.com", "password": PASSWORD}
            ).status_code
        )
    assert statuses == [201] * 10 + [429]


def test_me_requires_authentication(world: World) -> None:
    response = world.client.get("/api/v1/me")
    assert_problem(response, 401)
    assert response.headers["www-authenticate"] == 'Bearer realm="workbench"'


def test_parallel_wrong_passwords_cannot_pass_the_account_limit(tmp_path: Path) -> None:
    """Each attempt is counted before its password is checked, under one lock."""
    import threading

    from tests.conftest import make_settings
    from workbench.auth.ratelimit import RateLimiter
    from workbench.auth.service import LOGIN_FAILURES_PER_ACCOUNT, create_user, login
    from workbench.clock import FrozenClock
    from workbench.errors import TooManyRequests, Unauthorized
    from workbench.runtime import Runtime

    runtime = Runtime(make_settings(tmp_path), clock=FrozenClock(), dispatch_on_commit=False)
    runtime.initialize()
    create_user(runtime, "target@example.test", "correct horse battery")
    limiter = RateLimiter(runtime.clock)
    outcomes: list[str] = []
    lock = threading.Lock()

    def guess(n: int) -> None:
        try:
            login(
                runtime,
                limiter,
                "target@example.test",
                f"wrong-{n}-password",
                address=f"10.0.0.{n}",
            )
            result = "ok"
        except Unauthorized:
            result = "checked"
        except TooManyRequests:
            result = "limited"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("checked") == LOGIN_FAILURES_PER_ACCOUNT.max_events
    assert outcomes.count("limited") == 40 - LOGIN_FAILURES_PER_ACCOUNT.max_events
    runtime.close()
