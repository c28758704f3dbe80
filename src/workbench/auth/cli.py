"""Operators' commands: ``user create``, ``member add`` and ``token create``.

Added to the ``workbench`` command line through the ``workbench_cli`` hook, the same door a
plugin uses. The commands are built when registered, not at import: ``workbench.cli`` adds
the default plugins' commands while it is itself being imported, so importing it from here
at module level would be circular.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from workbench.auth.permissions import ROLES

if TYPE_CHECKING:
    from workbench.cli import CliState

ROLE_CHOICE = click.Choice(ROLES)


def read_password(confirm: bool = True) -> str:
    """From a terminal: a hidden prompt, twice. Otherwise: the first line of stdin, so
    scripts can pipe it in and it never appears in the process list or shell history."""
    stdin = sys.stdin
    if stdin.isatty():
        password: str = click.prompt("Password", hide_input=True, confirmation_prompt=confirm)
        return password
    line = stdin.readline()
    if not line:
        raise click.ClickException("no password on stdin")
    return line.rstrip("\r\n")


def build_commands() -> list[click.Command]:
    from workbench.cli import one_line_errors

    @click.group("user")
    def user_group() -> None:
        """Manage user accounts."""

    @user_group.command("create")
    @click.argument("email")
    @click.pass_obj
    @one_line_errors
    def user_create(state: CliState, email: str) -> None:
        """Create an account; the password is read from stdin. Prints the user id.

        \b
        Example:
            printf '%s\\n' "$PASSWORD" | workbench user create ada@example.com
        """
        from workbench.auth.service import create_user

        runtime = state.runtime()
        runtime.initialize()
        password = read_password()
        click.echo(create_user(runtime, email, password, actor="cli").id)

    @click.group("member")
    def member_group() -> None:
        """Manage workspace memberships."""

    @member_group.command("add")
    @click.argument("workspace")
    @click.argument("email")
    @click.option("--role", type=ROLE_CHOICE, default="member", show_default=True)
    @click.pass_obj
    @one_line_errors
    def member_add(state: CliState, workspace: str, email: str, role: str) -> None:
        """Add an existing account to a workspace (or change its role there).

        \b
        Example:
            workbench member add ws_0190... ada@example.com --role admin
        """
        from workbench.workspaces.membership import add_member

        runtime = state.runtime()
        runtime.initialize()
        member = add_member(runtime, workspace, email, role, actor="cli")
        click.echo(f"{member.email} is {member.role} of {workspace}")

    @click.group("token")
    def token_group() -> None:
        """Manage API tokens."""

    @token_group.command("create")
    @click.option("--user", "email", required=True, help="Email of the token's holder.")
    @click.option("--workspace", required=True, help="The workspace the token acts in.")
    @click.option("--role", type=ROLE_CHOICE, default=None, help="Role ceiling for the token.")
    @click.option("--name", default="cli", show_default=True, help="A name to recognise it by.")
    @click.option(
        "--expires-days",
        type=click.IntRange(1, 3650),
        default=None,
        help="Expire after this many days (default: never).",
    )
    @click.pass_obj
    @one_line_errors
    def token_create(
        state: CliState,
        email: str,
        workspace: str,
        role: str | None,
        name: str,
        expires_days: int | None,
    ) -> None:
        """Create an API token for a member and print it. It is shown this once.

        \b
        Example:
            workbench token create --user ada@example.com --workspace ws_0190... --role viewer
        """
        from workbench.auth.service import find_user
        from workbench.auth.tokens import issue_token
        from workbench.ids import validate_workspace_id

        runtime = state.runtime()
        runtime.initialize()
        user = find_user(runtime, email)
        created = issue_token(
            runtime,
            user_id=user.id,
            workspace_id=validate_workspace_id(workspace),
            name=name,
            role_ceiling=role,
            expires_in_days=expires_days,
            actor="cli",
        )
        click.echo(created.token)
        click.echo(
            f"token {created.info.id} for {user.email}: store it now, it is not shown again",
            err=True,
        )

    return [user_group, member_group, token_group]


def register(cli: click.Group) -> None:
    for command in build_commands():
        cli.add_command(command)
