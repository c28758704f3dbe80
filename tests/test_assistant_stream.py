"""The event stream of a run that is still being worked on by a real job consumer, over a real
server: steps arrive as they are written, then the run."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from tests.assistant_fixtures import seed_knowledge
from tests.conftest import Team, make_settings
from workbench.app import create_app
from workbench.clock import FrozenClock
from workbench.runtime import Runtime


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Team]]:
    runtime = Runtime(make_settings(tmp_path / "data"), clock=FrozenClock())
    runtime.initialize()
    team = Team(runtime)
    seed_knowledge(runtime, team.id)  # in a non-immediate runtime the worker indexes them
    app = create_app(runtime, embedded_worker=True)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("server failed to start")
        threading.Event().wait(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}", team
    server.should_exit = True
    thread.join(timeout=15)


def test_steps_stream_while_the_worker_runs(served: tuple[str, Team]) -> None:
    url, team = served
    with httpx.Client(base_url=url, timeout=30) as http:
        started = http.post(
            team.url("/assistant/runs"),
            headers=team.auth("member"),
            json={"question": "Create an item: stream me"},
        )
        assert started.status_code == 202
        assert started.json()["status"] in ("queued", "running")
        run_id = started.json()["id"]
        events: list[tuple[str, dict[str, object]]] = []
        with http.stream(
            "GET", team.url(f"/assistant/runs/{run_id}/events"), headers=team.auth("member")
        ) as response:
            assert response.status_code == 200
            kind = ""
            for line in response.iter_lines():
                if line.startswith("event:"):
                    kind = line.split(":", 1)[1].strip()
                elif line.startswith("data:"):
                    events.append((kind, json.loads(line.split(":", 1)[1])))
    kinds = [k for k, _ in events]
    assert kinds[-1] == "run"
    assert events[-1][1]["status"] == "succeeded"
    steps = [e for k, e in events if k == "step"]
    assert [s["kind"] for s in steps] == [
        "retrieve",
        "model_call",
        "tool_call",
        "model_call",
        "answer",
    ]
    assert [s["ordinal"] for s in steps] == [1, 2, 3, 4, 5]
