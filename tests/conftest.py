"""Shared fixtures. The environment is set before any Workbench module is imported."""

from __future__ import annotations

import os

os.environ["WORKBENCH_NO_ENTRY_POINTS"] = "1"
for _key in [
    k for k in os.environ if k.startswith("WORKBENCH_") and k != "WORKBENCH_NO_ENTRY_POINTS"
]:
    del os.environ[_key]

from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402
from litestar.testing import TestClient  # noqa: E402

from workbench.app import create_app  # noqa: E402
from workbench.clock import FrozenClock  # noqa: E402
from workbench.config import Settings, load_settings  # noqa: E402
from workbench.plugins import get_plugin_manager  # noqa: E402
from workbench.runtime import Runtime  # noqa: E402

TEST_PLUGINS_DIR = Path(__file__).parent / "plugins"


def make_settings(data_dir: Path, **overrides: Any) -> Settings:
    overrides.setdefault("secure_cookies", False)
    return load_settings(environ={}, data_dir=str(data_dir), **overrides)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "data")


@pytest.fixture
def runtime(settings: Settings, clock: FrozenClock) -> Iterator[Runtime]:
    """A runtime whose events wait for an explicit dispatch, so tests can watch each step."""
    rt = Runtime(settings, clock=clock, immediate_jobs=True, dispatch_on_commit=False)
    rt.initialize()
    yield rt
    rt.close()


@pytest.fixture
def plugin_runtime(tmp_path: Path, clock: FrozenClock) -> Iterator[Runtime]:
    """A runtime with the test plugins of ``tests/plugins`` loaded from a plugins directory."""
    settings = make_settings(tmp_path / "data", plugins_dir=str(TEST_PLUGINS_DIR))
    rt = Runtime(
        settings,
        clock=clock,
        immediate_jobs=True,
        dispatch_on_commit=False,
        pm=get_plugin_manager(TEST_PLUGINS_DIR, load_entry_points=False),
    )
    rt.initialize()
    yield rt
    rt.close()


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient[Any]]:
    with TestClient(create_app(runtime)) as test_client:
        yield test_client


@pytest.fixture(autouse=True, scope="session")
def cheap_password_hashing() -> Iterator[None]:
    """Argon2 at production cost makes each sign-up ~0.1 s; tests use the cheapest setting."""
    from tests.identity_fixtures import cheap_password_hashing as cheap

    with cheap():
        yield


@pytest.fixture
def world(tmp_path: Path) -> Iterator[Any]:
    """A real app over a temporary data directory, for the identity tests (identity_fixtures)."""
    from tests.identity_fixtures import make_world

    with make_world(tmp_path / "data") as w:
        yield w


class Team:
    """A workspace with one person per role, each holding an API token for it."""

    def __init__(self, runtime: Runtime, name: str = "Team") -> None:
        from workbench.auth.service import create_user
        from workbench.auth.tokens import issue_token
        from workbench.workspaces.membership import add_member
        from workbench.workspaces.service import create_workspace

        self.runtime = runtime
        slug = name.lower().replace(" ", "-")
        self.users = {}
        owner = create_user(runtime, f"owner@{slug}.test", "correct horse battery")
        self.users["owner"] = owner
        self.workspace = create_workspace(runtime, name, owner_id=owner.id)
        self.id = self.workspace.id
        for role in ("admin", "member", "viewer"):
            user = create_user(runtime, f"{role}@{slug}.test", "correct horse battery")
            add_member(runtime, self.id, user.email, role)
            self.users[role] = user
        self.tokens = {
            role: issue_token(runtime, user_id=user.id, workspace_id=self.id, name="tests").token
            for role, user in self.users.items()
        }

    def auth(self, role: str = "owner") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def url(self, path: str = "") -> str:
        return f"/api/v1/workspaces/{self.id}{path}"


@pytest.fixture
def team(runtime: Runtime) -> Team:
    return Team(runtime)
