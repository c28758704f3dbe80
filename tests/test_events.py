"""Envelope, registry, outbox and dispatcher on real workspace files."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from typing import Any

import apsw
import msgspec
import pytest

from tests.conftest import TEST_PLUGINS_DIR
from workbench.db.connection import rows, scalar
from workbench.events import Event, UnknownEventType, emit
from workbench.events.dispatch import Dispatcher, replay_dead
from workbench.runtime import Runtime
from workbench.workspaces.models import Workspace
from workbench.workspaces.service import create_workspace


def note(runtime: Runtime, ws: Workspace, text: str, **kwargs: Any) -> Event:
    return runtime.events.build(
        "sample.noted", workspace_id=ws.id, payload={"text": text}, clock=runtime.clock, **kwargs
    )


def emit_notes(runtime: Runtime, ws: Workspace, *texts: str) -> list[Event]:
    with runtime.storage.workspace(ws.id).write() as conn:
        return [emit(conn, note(runtime, ws, t, correlation_id="corr-1")) for t in texts]


def test_envelope_has_every_field(plugin_runtime: Runtime) -> None:
    ws = create_workspace(plugin_runtime, "A")
    event = note(
        plugin_runtime,
        ws,
        "hi",
        correlation_id="c1",
        causation_id="evt_x",
        actor="user_1",
        version=1,
    )
    assert event.event_id.startswith("evt_")
    assert (event.event_type, event.version, event.workspace_id) == ("sample.noted", 1, ws.id)
    assert (event.correlation_id, event.causation_id, event.actor) == ("c1", "evt_x", "user_1")
    assert event.occurred_at.endswith("Z")
    assert note(plugin_runtime, ws, "later").event_id > event.event_id  # time-ordered
    assert note(plugin_runtime, ws, "v2").version == 2  # latest version by default
    assert plugin_runtime.events.decode_payload(event) == msgspec.convert(
        {"text": "hi"}, plugin_runtime.events.get("sample.noted", 1).schema
    )


def test_unknown_types_and_bad_payloads_are_refused(plugin_runtime: Runtime) -> None:
    with pytest.raises(UnknownEventType):
        plugin_runtime.events.build("nope.never", workspace_id="ws", payload={})
    with pytest.raises(UnknownEventType):
        plugin_runtime.events.build("sample.noted", version=9, workspace_id="ws", payload={})
    with pytest.raises(ValueError, match=r"sample\.noted v2"):
        plugin_runtime.events.build("sample.noted", workspace_id="ws", payload={"text": 5})


def test_outbox_is_written_in_the_same_transaction(plugin_runtime: Runtime) -> None:
    ws = create_workspace(plugin_runtime, "A")
    db = plugin_runtime.storage.workspace(ws.id)
    with pytest.raises(RuntimeError), db.write() as conn:
        emit(conn, note(plugin_runtime, ws, "rolled back"))
        raise RuntimeError("the change failed")
    emit_notes(plugin_runtime, ws, "kept")
    with db.read() as conn:
        texts = [
            r["text"]
            for r in rows(
                conn,
                "SELECT payload ->> 'text' AS text FROM outbox WHERE event_type = 'sample.noted'",
            )
        ]
        assert texts == ["kept"]
        with pytest.raises(RuntimeError, match="write transaction"):
            emit(conn, note(plugin_runtime, ws, "outside"))


def test_dispatch_delivers_each_event_once_per_subscriber(plugin_runtime: Runtime) -> None:
    ws = create_workspace(plugin_runtime, "A")
    db = plugin_runtime.storage.workspace(ws.id)
    emit_notes(plugin_runtime, ws, "one", "two")
    report = plugin_runtime.dispatcher.dispatch(db)
    assert report.delivered == 4  # two events x two subscribers
    assert report.skipped == 2  # workspace.created is not theirs
    again = plugin_runtime.dispatcher.dispatch(db)
    assert (again.delivered, again.skipped) == (0, 0)
    with db.read() as conn:
        assert [r["text"] for r in rows(conn, "SELECT text FROM sample_notes ORDER BY id")] == [
            "one",
            "two",
        ]
        assert scalar(conn, "SELECT count(*) FROM event_deliveries WHERE status = 'applied'") == 4
    assert not plugin_runtime.dispatcher.pending(db)


def test_a_subscriber_that_crashes_mid_way_gets_the_event_again_and_applies_it_once(
    plugin_runtime: Runtime,
) -> None:
    ws = create_workspace(plugin_runtime, "A")
    events = emit_notes(plugin_runtime, ws, "crash me")
    script = textwrap.dedent(f"""
        from workbench.config import load_settings
        from workbench.plugins import get_plugin_manager
        from workbench.runtime import Runtime
        settings = load_settings(environ={{}}, data_dir={str(plugin_runtime.settings.data_path)!r})
        runtime = Runtime(settings, pm=get_plugin_manager({str(TEST_PLUGINS_DIR)!r},
                          load_entry_points=False))
        runtime.dispatcher.dispatch(runtime.storage.workspace({ws.id!r}))
    """)
    env = {**os.environ, "SAMPLE_PLUGIN_CRASH": "1"}
    crashed = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True)
    assert crashed.returncode == 3, crashed.stderr.decode()
    db = plugin_runtime.storage.workspace(ws.id)
    with db.read() as conn:  # the half-done work died with the process
        assert scalar(conn, "SELECT count(*) FROM sample_crashy") == 0
        assert (
            scalar(
                conn,
                "SELECT count(*) FROM event_deliveries "
                "WHERE subscriber = 'sample.crashy' AND status = 'applied'",
            )
            == 0
        )
    plugin_runtime.dispatcher.dispatch(db)
    plugin_runtime.dispatcher.dispatch(db)
    with db.read() as conn:
        assert [r["event_id"] for r in rows(conn, "SELECT event_id FROM sample_crashy")] == [
            events[0].event_id
        ]


class Flaky:
    """Fails a set number of times, then records the events it got."""

    name = "flaky"
    event_types: frozenset[str] = frozenset()
    transactional = False

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.seen: list[str] = []

    def handle(self, event: Event, conn: apsw.Connection | None) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("peer unavailable")
        self.seen.append(event.event_type)


def test_failures_retry_in_order_then_dead_letter_then_replay(plugin_runtime: Runtime) -> None:
    ws = create_workspace(plugin_runtime, "A")
    db = plugin_runtime.storage.workspace(ws.id)
    flaky = Flaky(failures=2)
    dispatcher = Dispatcher([flaky], max_attempts=3)
    first = dispatcher.dispatch(db)
    assert (first.failed, first.delivered) == (1, 0)
    emit_notes(plugin_runtime, ws, "later")
    second = dispatcher.dispatch(db)  # the failing event holds back the later one
    assert second.failed == 1 and flaky.seen == []
    third = dispatcher.dispatch(db)
    assert third.delivered == 2
    assert flaky.seen == ["workspace.created", "sample.noted"]

    doomed = Flaky(failures=10)
    doomed.name = "doomed"
    dispatcher = Dispatcher([doomed], max_attempts=2)
    reports = [dispatcher.dispatch(db) for _ in range(3)]
    # event 1 fails, then dies on attempt 2 and event 2 fails, then event 2 dies
    assert [(r.failed, r.dead) for r in reports] == [(1, 0), (1, 1), (0, 1)]
    with db.read() as conn:
        dead = list(
            rows(
                conn,
                "SELECT event_id, attempts, last_error FROM event_deliveries "
                "WHERE subscriber = 'doomed' AND status = 'dead'",
            )
        )
    assert [d["attempts"] for d in dead] == [2, 2]
    assert all(d["last_error"] == "ConnectionError: peer unavailable" for d in dead)
    assert not dispatcher.pending(db)
    doomed.failures = 0
    assert replay_dead(db, "doomed") == 2
    assert dispatcher.pending(db)
    assert dispatcher.dispatch(db).delivered == 2
    assert doomed.seen == ["workspace.created", "sample.noted"]


def test_concurrent_dispatchers_apply_a_transactional_event_once(plugin_runtime: Runtime) -> None:
    """Two dispatchers (as in two processes) racing over one file still apply once."""
    import threading

    ws = create_workspace(plugin_runtime, "A")
    emit_notes(plugin_runtime, ws, *[f"n{i}" for i in range(20)])
    subscribers = plugin_runtime.dispatcher.subscribers
    racers = [Dispatcher(subscribers), Dispatcher(subscribers)]  # separate locks, like processes
    db = plugin_runtime.storage.workspace(ws.id)
    threads = [threading.Thread(target=d.dispatch, args=(db,)) for d in racers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with db.read() as conn:
        assert scalar(conn, "SELECT count(*) FROM sample_notes") == 20
        assert scalar(conn, "SELECT count(*) FROM sample_crashy") == 20


def test_committed_events_are_dispatched_right_away(tmp_path: Any, clock: Any) -> None:
    """With dispatch on commit (the default), a commit that emitted events enqueues their
    dispatch: in immediate mode it runs before the write returns."""
    from tests.conftest import make_settings
    from workbench.plugins import get_plugin_manager

    runtime = Runtime(
        make_settings(tmp_path),
        clock=clock,
        immediate_jobs=True,
        pm=get_plugin_manager(TEST_PLUGINS_DIR, load_entry_points=False),
    )
    runtime.initialize()
    ws = create_workspace(runtime, "A")
    emit_notes(runtime, ws, "straight away")
    with runtime.storage.workspace(ws.id).read() as conn:
        assert scalar(conn, "SELECT text FROM sample_notes") == "straight away"
    db = runtime.storage.workspace(ws.id)
    with pytest.raises(RuntimeError), db.write() as conn:
        emit(conn, note(runtime, ws, "never"))
        raise RuntimeError
    assert not runtime.dispatcher.pending(db)
    runtime.close()
