"""Jobs on a real huey queue: backend selection and a real consumer dispatching events."""

from __future__ import annotations

import time
from pathlib import Path

from huey import RedisHuey, SqliteHuey

from tests.conftest import TEST_PLUGINS_DIR, make_settings
from workbench.clock import FrozenClock
from workbench.db.connection import scalar
from workbench.events import emit
from workbench.jobs import enqueue, start_embedded_consumer
from workbench.plugins import get_plugin_manager
from workbench.runtime import Runtime
from workbench.workspaces.service import create_workspace


def test_sqlite_queue_in_the_data_directory_by_default(tmp_path: Path) -> None:
    runtime = Runtime(make_settings(tmp_path / "data"))
    assert isinstance(runtime.huey, SqliteHuey)
    assert runtime.huey.storage.filename == str(tmp_path / "data" / "jobs.db")
    runtime.close()


def test_redis_queue_for_a_redis_url(tmp_path: Path) -> None:
    runtime = Runtime(make_settings(tmp_path, queue_url="redis://localhost:6379/3"))
    assert isinstance(runtime.huey, RedisHuey)
    runtime.close()


def test_a_real_consumer_dispatches_outbox_events(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", plugins_dir=str(TEST_PLUGINS_DIR))
    runtime = Runtime(
        settings,
        clock=FrozenClock(),
        pm=get_plugin_manager(TEST_PLUGINS_DIR, load_entry_points=False),
    )
    runtime.initialize()
    ws = create_workspace(runtime, "A")
    db = runtime.storage.workspace(ws.id)
    with db.write() as conn:
        emit(
            conn,
            runtime.events.build("sample.noted", workspace_id=ws.id, payload={"text": "queued"}),
        )
    consumer = start_embedded_consumer(runtime.huey, workers=2)
    try:
        result = enqueue(runtime.huey, "events.dispatch_workspace", ws.id)
        report = result.get(blocking=True, timeout=20)
        assert report["failed"] == report["dead"] == 0  # the periodic sweep may beat it to it
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with db.read() as conn:
                if scalar(conn, "SELECT count(*) FROM sample_notes") == 1:
                    break
            time.sleep(0.05)
        with db.read() as conn:
            assert scalar(conn, "SELECT text FROM sample_notes") == "queued"
            assert (
                scalar(
                    conn,
                    "SELECT count(*) FROM event_deliveries WHERE status = 'applied'"
                    " AND subscriber IN ('sample.counter', 'sample.crashy')",
                )
                == 2
            )
    finally:
        consumer.stop(graceful=True)
        runtime.close()


def test_committed_events_reach_subscribers_without_an_explicit_dispatch(tmp_path: Path) -> None:
    """Dispatch on commit, through the notifier thread and a real consumer."""
    settings = make_settings(tmp_path / "data", plugins_dir=str(TEST_PLUGINS_DIR))
    runtime = Runtime(
        settings,
        clock=FrozenClock(),
        pm=get_plugin_manager(TEST_PLUGINS_DIR, load_entry_points=False),
    )
    runtime.initialize()
    ws = create_workspace(runtime, "A")
    db = runtime.storage.workspace(ws.id)
    consumer = start_embedded_consumer(runtime.huey, workers=2)
    try:
        for n in range(20):  # a burst: coalesced into few jobs
            with db.write() as conn:
                emit(
                    conn,
                    runtime.events.build(
                        "sample.noted", workspace_id=ws.id, payload={"text": f"n{n}"}
                    ),
                )
        deadline = time.monotonic() + 15
        count = 0
        while time.monotonic() < deadline and count < 20:
            with db.read() as conn:
                count = scalar(conn, "SELECT count(*) FROM sample_notes")
            time.sleep(0.05)
        assert count == 20
    finally:
        consumer.stop(graceful=True)
        runtime.close()
