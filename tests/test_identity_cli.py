"""Operators' commands: ``user create``, ``workspace create --owner``, ``member add`` and
``token create``, through the real command line with exact output checks."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner
from litestar.testing import TestClient

from tests.identity_fixtures import PASSWORD, cheap_password_hashing
from workbench.app import create_app
from workbench.auth import plugin as auth_plugin
from workbench.cli import cli
from workbench.clock import FrozenClock
from workbench.config import load_settings
from workbench.runtime import Runtime


@pytest.fixture
def run(tmp_path: Path) -> Iterator[Any]:
    auth_plugin.workbench_cli(cli=cli)  # what main() and the default plugins do
    data = tmp_path / "data"
    runner = CliRunner()

    def invoke(*args: str, stdin: str | None = None) -> Any:
        return runner.invoke(
            cli, ["--data-dir", str(data), *args], input=stdin, catch_exceptions=False
        )

    with cheap_password_hashing():
        yield invoke


def test_identity_commands_are_registered_through_the_hook() -> None:
    group = click.Group()
    auth_plugin.workbench_cli(cli=group)
    assert {"user", "member", "token"} <= set(group.commands)
    assert {"user", "member", "token"} <= set(cli.commands)


def test_operator_bootstrap_end_to_end(run: Any, tmp_path: Path) -> None:
    created = run("user", "create", "Ada@Example.com", stdin=f"{PASSWORD}\n")
    assert created.exit_code == 0, created.output
    assert re.fullmatch(r"usr_[0-9a-f]{32}\n", created.output)
    assert PASSWORD not in created.output

    workspace = run("workspace", "create", "Ops", "--owner", "ada@example.com")
    assert workspace.exit_code == 0, workspace.output
    workspace_id = workspace.output.strip()
    assert re.fullmatch(r"ws_[0-9a-f]{32}", workspace_id)

    assert run("user", "create", "bob@example.com", stdin=f"{PASSWORD}\n").exit_code == 0
    added = run("member", "add", workspace_id, "bob@example.com", "--role", "admin")
    assert added.output == f"bob@example.com is admin of {workspace_id}\n"

    token = run(
        "token",
        "create",
        "--user",
        "bob@example.com",
        "--workspace",
        workspace_id,
        "--role",
        "viewer",
        "--name",
        "deploy",
        "--expires-days",
        "30",
    )
    assert token.exit_code == 0
    secret = token.stdout.strip()
    assert re.fullmatch(r"wb_[A-Za-z0-9_-]{43}", secret)
    assert "not shown again" in token.stderr

    runtime = Runtime(
        load_settings(environ={}, data_dir=str(tmp_path / "data"), secure_cookies=False),
        clock=FrozenClock(),
    )
    with TestClient(create_app(runtime)) as client:
        auth = {"Authorization": f"Bearer {secret}"}
        got = client.get(f"/api/v1/workspaces/{workspace_id}", headers=auth)
        assert got.status_code == 200 and got.json()["role"] == "viewer"  # capped by --role
        members = client.get(f"/api/v1/workspaces/{workspace_id}/members", headers=auth).json()
        assert {m["email"]: m["role"] for m in members["members"]} == {
            "ada@example.com": "owner",
            "bob@example.com": "admin",
        }
        tokens = client.get(f"/api/v1/workspaces/{workspace_id}/tokens", headers=auth).json()
        assert tokens["tokens"][0]["name"] == "deploy"
        assert tokens["tokens"][0]["expires_at"] is not None
        login = client.post(
            "/api/v1/auth/login", json={"email": "ada@example.com", "password": PASSWORD}
        )
        assert login.status_code == 200
    runtime.close()


def test_cli_errors_are_one_line(run: Any) -> None:
    assert run("user", "create", "a@example.com", stdin=f"{PASSWORD}\n").exit_code == 0
    duplicate = run("user", "create", "a@example.com", stdin=f"{PASSWORD}\n")
    assert duplicate.exit_code == 1
    assert duplicate.output == "Error: an account with this email already exists\n"
    short = run("user", "create", "b@example.com", stdin="short\n")
    assert short.output == "Error: a password must be 8 to 256 characters\n"
    empty = run("user", "create", "c@example.com", stdin="")
    assert empty.output == "Error: no password on stdin\n"
    no_owner = run("workspace", "create", "X", "--owner", "ghost@example.com")
    assert no_owner.output == "Error: no user with email ghost@example.com\n"
    bad_ws = run("member", "add", "../etc", "a@example.com")
    assert bad_ws.output == "Error: not a workspace id: '../etc'\n"
    missing_ws = run("member", "add", "ws_" + "0" * 32, "a@example.com")
    assert missing_ws.output == f"Error: no workspace ws_{'0' * 32}\n"
    bad_role = run("member", "add", "ws_" + "0" * 32, "a@example.com", "--role", "root")
    assert bad_role.exit_code == 2 and "'root' is not one of" in bad_role.output
    workspace_id = run("workspace", "create", "Y", "--owner", "a@example.com").output.strip()
    not_member = run("member", "add", workspace_id, "nobody@example.com")
    assert "Error: no user with email nobody@example.com" in not_member.output
    run("user", "create", "d@example.com", stdin=f"{PASSWORD}\n")
    outsider = run("token", "create", "--user", "d@example.com", "--workspace", workspace_id)
    assert outsider.output == "Error: not a member of this workspace\n"
    last_owner = run("member", "add", workspace_id, "a@example.com", "--role", "viewer")
    assert last_owner.exit_code == 1 and "at least one owner" in last_owner.output


def test_workspace_create_without_owner_still_works(run: Any) -> None:
    result = run("workspace", "create", "Ownerless")
    assert result.exit_code == 0
    assert re.fullmatch(r"ws_[0-9a-f]{32}\n", result.output)
