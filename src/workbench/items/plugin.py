"""Registers work items through the same hooks a plugin uses: event types, routes, CLI."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from workbench.events.envelope import EventType
from workbench.hookspecs import hookimpl
from workbench.items.models import ItemCommented, ItemCreated, ItemTransitioned, ItemUpdated


@hookimpl
def workbench_event_types() -> list[EventType]:
    return [
        EventType("item.created", 1, ItemCreated, "A work item was created."),
        EventType("item.updated", 1, ItemUpdated, "Fields of a work item changed (a diff)."),
        EventType("item.transitioned", 1, ItemTransitioned, "A work item changed state."),
        EventType("item.commented", 1, ItemCommented, "Someone commented on a work item."),
    ]


@hookimpl
def workbench_routes(runtime: Any) -> list[Any]:
    from workbench.items.routes import ItemController, ItemFieldController, ViewController

    return [ItemController, ItemFieldController, ViewController]


@hookimpl
def workbench_cli(cli: Any) -> None:
    @cli.group("items")
    def items_group() -> None:
        """Work items."""

    @items_group.command("import")
    @click.option("--workspace", "workspace_id", required=True, help="Workspace id.")
    @click.option(
        "--as-user",
        "user_email",
        default=None,
        help="Record the import as done by this user (email).",
    )
    @click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @click.pass_obj
    def import_items(state: Any, workspace_id: str, user_email: str | None, path: Path) -> None:
        """Import items from a .csv or .jsonl file; print what was rejected and why.

        \b
        Example:
            workbench items import --workspace ws_0190... backlog.csv
        """
        from workbench.errors import WorkbenchError
        from workbench.items import importer
        from workbench.items.service import Items

        runtime = state.runtime()
        try:
            actor = None
            if user_email:
                from workbench.auth.service import find_user

                actor = find_user(runtime, user_email).id
            records, rejected = importer.parse(
                path.read_bytes(), importer.parse_file_name(path.name)
            )
            accepted, refused = Items(runtime, workspace_id, actor, "owner").import_rows(records)
        except WorkbenchError as exc:
            raise click.ClickException(exc.detail) from exc
        for row in sorted(rejected + refused, key=lambda r: r["line"]):
            click.echo(f"line {row['line']}: rejected: {row['reason']}", err=True)
        click.echo(f"imported {len(accepted)} items, rejected {len(rejected + refused)}")
        if rejected or refused:
            sys.exit(2)
