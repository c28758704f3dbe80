"""A real plugin used by the tests: it implements every hook, loaded from a plugins dir."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import apsw
import click
import msgspec
import numpy as np
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


class ShoutArgs(msgspec.Struct):
    text: str


class Shout:
    """An assistant tool: returns the text in capitals."""

    name = "sample_shout"
    description = "Say the text loudly."
    arguments = ShoutArgs
    permission = "items.read"

    def run(self, ctx: Any, args: ShoutArgs) -> Any:
        return {"shouted": args.text.upper()}


class EchoProvider:
    """A model provider that calls ``sample_shout`` once, then answers with its result."""

    name = "sample-echo"
    default_model = "echo-1"

    def complete(self, request: Any) -> Any:
        from workbench.assistant.providers.base import ModelResponse, ToolCallRequest

        results = [m for m in request.messages if m.role == "tool"]
        if not results:
            question = request.messages[-1].content
            return ModelResponse(
                tool_calls=(ToolCallRequest("c1", "sample_shout", {"text": question}),)
            )
        import json

        data = json.loads(results[-1].content)
        return ModelResponse(
            content=f"{data['result']['shouted']} [{data['marker']}]",
            prompt_tokens=3,
            completion_tokens=2,
        )


class SlowProvider:
    """Answers like the extractive provider, but a minute passes on the runtime's clock per
    call: for time limits."""

    name = "sample-slow"
    default_model = "slow-1"

    def __init__(self, runtime: Any) -> None:
        self.runtime = runtime

    def complete(self, request: Any) -> Any:
        from workbench.assistant.providers.extractive import ExtractiveProvider

        self.runtime.clock.advance(seconds=60)
        return ExtractiveProvider().complete(request)


@hookimpl
def workbench_model_providers(runtime: Any) -> list[Any]:
    return [EchoProvider(), SlowProvider(runtime)]


@hookimpl
def workbench_assistant_tools() -> list[Any]:
    return [Shout()]


class WordBuckets:
    """A toy embedder: each word adds to a bucket chosen by its letters (deterministic)."""

    name = "sample-words"
    model = "word-buckets"
    version = "1"
    dim = 16
    normalized = True

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().split():
                out[row, sum(map(ord, word)) % self.dim] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return np.divide(out, norms, out=out, where=norms > 0)


@hookimpl
def workbench_embedders() -> list[Any]:
    return [WordBuckets()]
