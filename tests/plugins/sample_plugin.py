"""A real plugin used by the tests: it implements every hook, loaded from a plugins dir."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import apsw
import click
import msgspec
from litestar import get, post
from litestar.params import JSONBody

from workbench.db.migrations import MigrationSource
from workbench.events.envelope import Event, EventType
from workbench.hookspecs import hookimpl

STARTED: list[Any] = []


class Noted(msgspec.Struct):
    text: str


class NotedV2(msgspec.Struct):
    text: str
    tags: list[str] = []


class Echo(msgspec.Struct):
    message: str = msgspec.field(default="")
    count: int = 1


class NoteCounter:
    """Copies every ``sample.noted`` event into ``sample_notes``, in the delivery transaction."""

    name = "sample.counter"
    event_types = frozenset({"sample.noted"})
    transactional = True

    def handle(self, event: Event, conn: apsw.Connection | None) -> None:
        assert conn is not None
        conn.execute(
            "INSERT INTO sample_notes (event_id, workspace_id, text) VALUES (?, ?, ?)",
            (event.event_id, event.workspace_id, event.payload["text"]),
        )


class Crashy:
    """Writes its row, then kills the process when SAMPLE_PLUGIN_CRASH=1: a crash mid-way."""

    name = "sample.crashy"
    event_types = frozenset({"sample.noted"})
    transactional = True

    def handle(self, event: Event, conn: apsw.Connection | None) -> None:
        assert conn is not None
        conn.execute(
            "INSERT INTO sample_crashy (event_id, workspace_id) VALUES (?, ?)",
            (event.event_id, event.workspace_id),
        )
        if os.environ.get("SAMPLE_PLUGIN_CRASH") == "1":
            os._exit(3)


@hookimpl
def workbench_migrations() -> list[MigrationSource]:
    return [MigrationSource("sample", "workspace", Path(__file__).parent / "migrations_workspace")]


@hookimpl
def workbench_event_types() -> list[EventType]:
    return [EventType("sample.noted", 1, Noted), EventType("sample.noted", 2, NotedV2)]


@hookimpl
def workbench_event_subscribers(runtime: Any) -> list[Any]:
    return [NoteCounter(), Crashy()]


@get("/sample/boom", sync_to_thread=False)
def boom() -> dict[str, str]:
    raise RuntimeError("secret internal detail")


@post("/sample/echo", sync_to_thread=False)
def echo(data: JSONBody[Echo]) -> Echo:
    return data


@hookimpl
def workbench_routes(runtime: Any) -> list[Any]:
    return [boom, echo]


@hookimpl
def workbench_cli(cli: Any) -> None:
    @cli.command("sample-hello")
    def sample_hello() -> None:
        """Say hello from the sample plugin."""
        click.echo("hello from sample")


@hookimpl
def workbench_jobs(huey: Any, runtime: Any) -> None:
    @huey.task(name="sample.add")
    def add(a: int, b: int) -> int:
        return a + b


@hookimpl
def workbench_startup(runtime: Any) -> None:
    STARTED.append(runtime)
