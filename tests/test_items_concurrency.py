"""Eight clients doing read-modify-write on one item through a real server on 127.0.0.1."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn

from tests.conftest import Team
from workbench.app import create_app
from workbench.runtime import Runtime

CLIENTS = 8
UPDATES_EACH = 10


@pytest.fixture
def live_server(runtime: Runtime) -> Iterator[str]:
    config = uvicorn.Config(
        create_app(runtime), host="127.0.0.1", port=0, log_config=None, lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("server failed to start")
        threading.Event().wait(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_concurrent_read_modify_write_loses_nothing(live_server: str, runtime: Runtime) -> None:
    team = Team(runtime)
    headers = team.auth("member")
    with httpx.Client(base_url=live_server, timeout=30) as http:
        http.put(
            team.url("/item-fields"),
            headers=team.auth(),
            json={"fields": [{"name": "counter", "type": "number"}]},
        ).raise_for_status()
        item = http.post(
            team.url("/items"), headers=headers, json={"title": "shared", "fields": {"counter": 0}}
        ).json()
    url = team.url(f"/items/{item['id']}")
    outcomes: Counter[int] = Counter()
    applied_values: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(CLIENTS)

    def client() -> None:
        done = 0
        with httpx.Client(base_url=live_server, timeout=30) as http:
            start.wait()
            while done < UPDATES_EACH:
                current = http.get(url, headers=headers)
                value = current.json()["fields"]["counter"]
                response = http.patch(
                    url,
                    headers={**headers, "If-Match": current.headers["etag"]},
                    json={"fields": {"counter": value + 1}},
                )
                with lock:
                    outcomes[response.status_code] += 1
                    if response.status_code == 200:
                        applied_values.append(value + 1)
                if response.status_code == 200:
                    done += 1
                elif response.status_code != 412:
                    return  # an unexpected answer fails the test below instead of looping

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert set(outcomes) <= {200, 412}, outcomes
    applied = outcomes[200]
    assert applied == CLIENTS * UPDATES_EACH
    # each applied update moved the counter exactly one step: none lost, none doubled
    assert sorted(applied_values) == list(range(1, applied + 1))
    with httpx.Client(base_url=live_server, timeout=30) as http:
        final: dict[str, Any] = http.get(url, headers=headers).json()
        timeline = http.get(url + "/timeline", params={"limit": 200}, headers=headers).json()
    assert final["fields"]["counter"] == applied
    assert final["version"] == 1 + applied
    assert sum(1 for e in timeline if e["kind"] == "edited") == applied
    print(f"\n{CLIENTS} clients: {applied} applied, {outcomes[412]} refused with 412")
