"""The HTTP surface of the platform: health, readiness, metrics, problem details, request ids."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from workbench.app import create_app
from workbench.logs import configure_logging
from workbench.runtime import Runtime
from workbench.workspaces.service import create_workspace

PROBLEM = "application/problem+json"


@pytest.fixture
def plugin_client(plugin_runtime: Runtime) -> Iterator[TestClient[Any]]:
    with TestClient(create_app(plugin_runtime), raise_server_exceptions=False) as client:
        yield client


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert {"type", "title", "status", "detail", "correlation_id"} <= body.keys()
    assert body["status"] == status
    assert body["correlation_id"] == response.headers["x-request-id"]
    return body


def test_healthz(client: TestClient[Any]) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}


def test_readyz_reports_a_workspace_file_behind(client: TestClient[Any], runtime: Runtime) -> None:
    ws = create_workspace(runtime, "A")
    assert client.get("/readyz").json()["status"] == "ready"
    runtime.migrator.down(0, workspace=ws.id)
    client.app.state.pop("workspaces_behind", None)
    body = assert_problem(client.get("/readyz"), 503)
    assert body["checks"]["workspaces_behind"] == 1
    runtime.migrator.up(workspace=ws.id)
    assert client.get("/readyz").status_code == 503  # cached for a few seconds
    client.app.state.pop("workspaces_behind", None)
    assert client.get("/readyz").status_code == 200


def test_metrics_count_requests_by_route_template(client: TestClient[Any]) -> None:
    client.get("/healthz")
    client.get("/healthz")
    client.get("/no/such/thing")
    text = client.get("/metrics").text
    assert 'workbench_http_requests_total{method="GET",route="/healthz",status="200"} 2' in text
    assert 'route="unmatched",status="404"} 1' in text
    assert "# TYPE workbench_http_request_duration_seconds histogram" in text
    assert (
        'workbench_http_request_duration_seconds_bucket{method="GET",route="/healthz",le="+Inf"} 2'
        in text
    )
    assert "/no/such/thing" not in text


def test_openapi_is_served(client: TestClient[Any]) -> None:
    spec = client.get("/schema/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    assert "/healthz" in spec["paths"]


def test_request_id_is_honoured_and_echoed(client: TestClient[Any]) -> None:
    response = client.get("/healthz", headers={"X-Request-ID": "req-42.a:b"})
    assert response.headers["x-request-id"] == "req-42.a:b"


@pytest.mark.parametrize("bad", [b"has space", b"x" * 129, b"semi;colon", "ünï".encode()])
def test_an_unsafe_request_id_is_replaced(client: TestClient[Any], bad: bytes) -> None:
    response = client.get("/healthz", headers={"X-Request-ID": bad})  # type: ignore[dict-item]
    assert response.headers["x-request-id"].encode() != bad
    assert len(response.headers["x-request-id"]) == 32


def test_every_error_is_problem_json(plugin_client: TestClient[Any]) -> None:
    assert_problem(plugin_client.get("/nope"), 404)
    assert_problem(plugin_client.delete("/healthz"), 405)
    body = assert_problem(plugin_client.post("/sample/echo", json={"count": "many"}), 400)
    assert "count" in json.dumps(body)
    assert_problem(
        plugin_client.post(
            "/sample/echo", content=b"{not json", headers={"content-type": "application/json"}
        ),
        400,
    )
    crash = assert_problem(plugin_client.get("/sample/boom"), 500)
    assert "secret internal detail" not in json.dumps(crash)
    assert "Traceback" not in json.dumps(crash)


def test_oversized_bodies_are_refused(tmp_path: Any, clock: Any) -> None:
    from tests.conftest import TEST_PLUGINS_DIR, make_settings
    from workbench.plugins import get_plugin_manager

    runtime = Runtime(
        make_settings(tmp_path, max_body_bytes=100),
        clock=clock,
        pm=get_plugin_manager(TEST_PLUGINS_DIR, load_entry_points=False),
    )
    with TestClient(create_app(runtime)) as client:
        response = client.post("/sample/echo", json={"message": "x" * 500})
        assert_problem(response, 413)


def test_logs_are_json_with_the_correlation_id(plugin_client: TestClient[Any]) -> None:
    stream = io.StringIO()
    configure_logging("INFO", "json", stream=stream)
    try:
        plugin_client.get("/healthz", headers={"X-Request-ID": "trace-me"})
        plugin_client.get("/sample/boom", headers={"X-Request-ID": "trace-boom"})
    finally:
        logging.getLogger().handlers.clear()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    access = [e for e in lines if e["logger"] == "workbench.access"]
    assert {e["correlation_id"] for e in access} >= {"trace-me", "trace-boom"}
    error = next(e for e in lines if e["message"] == "unhandled error")
    assert error["correlation_id"] == "trace-boom"
    assert "secret internal detail" in error["exception"]  # the trace goes to the log only
    assert all("correlation_id" in e for e in lines)


def test_secrets_never_reach_the_logs() -> None:
    stream = io.StringIO()
    configure_logging("INFO", "json", stream=stream)
    try:
        log = logging.getLogger("workbench.test")
        log.info("calling with Authorization: Bearer sk-live-abcdefghijklmnop1234")
        try:
            raise RuntimeError("failed: password=hunter2hunter2")
        except RuntimeError:
            log.exception("upstream failed")
    finally:
        logging.getLogger().handlers.clear()
    text = stream.getvalue()
    assert "sk-live-abcdefghijklmnop1234" not in text
    assert "hunter2hunter2" not in text
    assert text.count("[REDACTED]") >= 2


def test_the_openapi_document_lists_problem_responses(client: TestClient[Any]) -> None:
    spec = client.get("/schema/openapi.json").json()
    assert "ProblemDetails" in spec["components"]["schemas"]
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            assert "application/problem+json" in responses["500"]["content"], (method, path)
            if path.startswith("/api/v1/workspaces/{workspace_id}"):
                assert {"401", "403", "404"} <= responses.keys(), (method, path)
            if method in ("post", "put", "patch"):
                assert "409" in responses, (method, path)
