"""Helpers for identity tests: a real app over a temporary data directory, accounts with
roles, sessions and API tokens made through the services, and requests with either credential.

Sessions are opened through ``service.login`` and sent as an explicit ``Cookie`` header, so one
test client can act as many people without their cookies mixing in its cookie jar.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from litestar import Litestar
from litestar.testing import TestClient

from workbench.app import create_app
from workbench.auth import passwords, service, tokens
from workbench.auth.permissions import ROLES
from workbench.auth.ratelimit import limiter_for
from workbench.clock import FrozenClock
from workbench.config import load_settings
from workbench.runtime import Runtime
from workbench.workspaces import membership
from workbench.workspaces.service import create_workspace

PASSWORD = "correct horse battery staple"
PROBLEM_JSON = "application/problem+json"
_emails = itertools.count(1)


@contextmanager
def cheap_password_hashing() -> Iterator[None]:
    """Argon2id with tiny parameters: the same code path, a fraction of the time."""
    previous = passwords.use_hasher(PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    try:
        yield
    finally:
        passwords.use_hasher(previous)


@dataclass(frozen=True)
class Session:
    user_id: str
    email: str
    token: str
    csrf: str
    session_id: str

    def headers(self, *, csrf: bool = True) -> dict[str, str]:
        headers = {"Cookie": f"wb_session={self.token}; wb_csrf={self.csrf}"}
        if csrf:
            headers["X-CSRF-Token"] = self.csrf
        return headers


@dataclass(frozen=True)
class Actor:
    """A member of a workspace with a role, signed in, with a token for that workspace."""

    role: str
    user_id: str
    email: str
    session: Session
    token: str
    token_id: str

    @property
    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class Team:
    """A workspace with one actor per role (and an extra viewer to act upon)."""

    workspace_id: str
    name: str
    actors: dict[str, Actor] = field(default_factory=dict)
    target: Actor | None = None
    invitation_id: str = ""
    invitation_token: str = ""


class World:
    def __init__(self, runtime: Runtime, app: Litestar, client: TestClient[Any]) -> None:
        self.runtime = runtime
        self.app = app
        self.client = client

    @property
    def clock(self) -> FrozenClock:
        assert isinstance(self.runtime.clock, FrozenClock)
        return self.runtime.clock

    def new_email(self, stem: str = "user") -> str:
        return f"{stem}{next(_emails)}@example.com"

    def user(self, email: str | None = None, password: str = PASSWORD) -> tuple[str, str]:
        """Create an account; returns (user id, email)."""
        email = email or self.new_email()
        return service.create_user(self.runtime, email, password).id, email

    def login(self, email: str, password: str = PASSWORD) -> Session:
        # each fixture login from its own address, so set-up never trips the rate limits
        opened = service.login(
            self.runtime,
            limiter_for(self.runtime),
            email,
            password,
            address=f"fixture-{next(_emails)}",
        )
        return Session(
            opened.user.id, opened.user.email, opened.token, opened.csrf_token, opened.id
        )

    def workspace(self, owner_email: str, name: str = "Team") -> str:
        owner = service.find_user(self.runtime, owner_email)
        return create_workspace(self.runtime, name, owner_id=owner.id).id

    def add(self, workspace_id: str, email: str, role: str) -> None:
        membership.add_member(self.runtime, workspace_id, email, role, actor="test")

    def token(
        self,
        user_id: str,
        workspace_id: str,
        *,
        ceiling: str | None = None,
        expires_in_days: int | None = None,
    ) -> tuple[str, str]:
        created = tokens.issue_token(
            self.runtime,
            user_id=user_id,
            workspace_id=workspace_id,
            name="test",
            role_ceiling=ceiling,
            expires_in_days=expires_in_days,
        )
        return created.token, created.info.id

    def actor(self, workspace_id: str, role: str, email: str | None = None) -> Actor:
        user_id, email = self.user(email)
        self.add(workspace_id, email, role)
        secret, token_id = self.token(user_id, workspace_id)
        return Actor(role, user_id, email, self.login(email), secret, token_id)

    def team(self, name: str | None = None) -> Team:
        """A workspace with an owner, an admin, a member, a viewer, an extra viewer (the
        ``target`` to act on) and a pending invitation."""
        name = name or f"Team {next(_emails)}"
        owner_id, owner_email = self.user(self.new_email("owner"))
        workspace_id = self.workspace(owner_email, name)
        secret, token_id = self.token(owner_id, workspace_id)
        team = Team(workspace_id=workspace_id, name=name)
        team.actors["owner"] = Actor(
            "owner", owner_id, owner_email, self.login(owner_email), secret, token_id
        )
        for role in ROLES:
            if role != "owner":
                team.actors[role] = self.actor(workspace_id, role, self.new_email(role))
        team.target = self.actor(workspace_id, "viewer", self.new_email("target"))
        owner_principal = _principal(team.actors["owner"], workspace_id)
        invited = membership.invite(
            self.runtime, owner_principal, self.new_email("invitee"), "member"
        )
        team.invitation_id, team.invitation_token = invited.invitation.id, invited.token
        return team


def _principal(actor: Actor, workspace_id: str) -> Any:
    from workbench.auth.models import Principal

    return Principal(
        user_id=actor.user_id,
        email=actor.email,
        workspace_id=workspace_id,
        role=actor.role,
        via="session",
    )


@contextmanager
def make_world(data_dir: Path, **settings: Any) -> Iterator[World]:
    """A real runtime and app over ``data_dir`` with a frozen clock and cheap hashing."""
    settings.setdefault("secure_cookies", False)
    with cheap_password_hashing():
        runtime = Runtime(
            load_settings(environ={}, data_dir=str(data_dir), **settings),
            clock=FrozenClock(),
            immediate_jobs=True,
        )
        runtime.initialize()
        app = create_app(runtime)
        with TestClient(app, raise_server_exceptions=False) as client:
            yield World(runtime, app, client)
        runtime.close()


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    """A problem+json answer with the given status and the request's correlation id."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith(PROBLEM_JSON), response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert {"type", "title", "detail", "correlation_id"} <= body.keys()
    return body


def control_audit(runtime: Runtime) -> list[dict[str, Any]]:
    from workbench.db.connection import rows

    with runtime.storage.control.read() as conn:
        return list(rows(conn, "SELECT * FROM audit_log ORDER BY seq"))


def workspace_audit(runtime: Runtime, workspace_id: str) -> list[dict[str, Any]]:
    from workbench.db.connection import rows

    with runtime.storage.workspace(workspace_id).read() as conn:
        return list(rows(conn, "SELECT * FROM audit_log ORDER BY seq"))
