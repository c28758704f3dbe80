"""The ingestion pipeline's failure paths: backoff with jitter driven by the frozen clock,
dead letters, retry by hand (API and CLI), lost workers, and nothing half-indexed."""

from __future__ import annotations

import random
from datetime import datetime
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from litestar.testing import TestClient

from tests.conftest import Team
from tests.test_knowledge import document, search, upload
from workbench.cli import cli
from workbench.clock import FrozenClock
from workbench.db.connection import rows, scalar
from workbench.hookspecs import hookimpl
from workbench.knowledge import index_store, pipeline
from workbench.knowledge.embedders import WordLlamaEmbedder
from workbench.knowledge.pipeline import MAX_ATTEMPTS, Ingestion, retry_delay
from workbench.knowledge.service import Knowledge
from workbench.runtime import Runtime


class Flaky:
    """An embedder that fails while ``failures`` is above zero."""

    name, model, version, dim, normalized = "flaky", "flaky-model", "1", 8, True

    def __init__(self) -> None:
        self.failures = 0
        self.calls = 0

    def embed(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        if self.failures > 0:
            self.failures -= 1
            raise RuntimeError("model server down")
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            out[i, len(text) % self.dim] = 1.0
        return out


class FlakyPlugin:
    def __init__(self, embedder: Flaky) -> None:
        self.embedder = embedder

    @hookimpl
    def workbench_embedders(self) -> list[Any]:
        return [self.embedder]


@pytest.fixture
def flaky(runtime: Runtime, team: Team) -> Flaky:
    embedder = Flaky()
    runtime.pm.register(FlakyPlugin(embedder), name="flaky-test-plugin")
    Knowledge(runtime, team.id, None, "owner").switch_embedder("flaky")
    return embedder


def _parse(moment: str) -> datetime:
    return datetime.fromisoformat(moment.replace("Z", "+00:00"))


# -- backoff --------------------------------------------------------------------------------


def test_retry_delay_grows_exponentially_with_jitter() -> None:
    rng = random.Random(7)
    for attempt in range(1, 8):
        ceiling = min(pipeline.RETRY_CAP_SECONDS, pipeline.RETRY_BASE_SECONDS * 2 ** (attempt - 1))
        samples = [retry_delay(attempt, rng) for _ in range(200)]
        assert ceiling / 2 <= min(samples) and max(samples) <= ceiling
        assert len(set(samples)) > 100  # jitter: attempts do not retry in lockstep
    assert retry_delay(30, rng) <= pipeline.RETRY_CAP_SECONDS
    assert retry_delay(3, random.Random(1)) == retry_delay(3, random.Random(1))
    assert retry_delay(1, random.Random(1), base=2, cap=10) <= 2
    with pytest.raises(ValueError):
        retry_delay(0, rng)


# -- retries, dead letters, retry by hand -----------------------------------------------------


def test_retry_then_dead_letter_then_manual_retry(
    runtime: Runtime, client: TestClient[Any], team: Team, flaky: Flaky, clock: FrozenClock
) -> None:
    flaky.failures = 100
    created = upload(client, team, "A document about wing flutter.").json()
    knowledge = Knowledge(runtime, team.id, None, "owner")
    seen_delays = []
    for attempt in range(1, MAX_ATTEMPTS + 1):
        doc = document(client, team, created["id"])
        assert doc["attempts"] == attempt
        assert doc["last_error_class"] == "RuntimeError"
        assert doc["last_error_message"] == "model server down"
        if attempt == MAX_ATTEMPTS:
            break
        assert doc["status"] == "failed"
        due = _parse(doc["next_attempt_at"])
        delay = (due - clock.now()).total_seconds()
        ceiling = pipeline.RETRY_BASE_SECONDS * 2 ** (attempt - 1)
        assert ceiling / 2 <= delay <= ceiling
        seen_delays.append(delay)
        clock.advance(seconds=delay - 1)  # not yet due: nothing happens
        assert Ingestion(runtime, team.id).retry_due() == []
        assert document(client, team, created["id"])["attempts"] == attempt
        clock.advance(seconds=1)
        assert Ingestion(runtime, team.id).retry_due() == [(created["id"], 1)]
    assert seen_delays == sorted(seen_delays)
    dead = document(client, team, created["id"])
    assert dead["status"] == "dead" and dead["next_attempt_at"] is None
    letters = client.get(team.url("/knowledge/dead-letters"), headers=team.auth("viewer")).json()
    assert [
        (d["document_id"], d["attempts"], d["error_class"], d["error_message"]) for d in letters
    ] == [(created["id"], MAX_ATTEMPTS, "RuntimeError", "model server down")]
    clock.advance(hours=10)
    assert Ingestion(runtime, team.id).retry_due() == []  # dead documents wait for a person
    assert search(client, team, "wing flutter", mode="keyword")["hits"] == []

    flaky.failures = 0
    retried = client.post(
        team.url(f"/documents/{created['id']}/retry"), headers=team.auth("member")
    )
    assert retried.status_code == 202, retried.text
    indexed = document(client, team, created["id"])
    assert (indexed["status"], indexed["attempts"], indexed["last_error_class"]) == (
        "indexed",
        1,
        None,
    )
    assert (
        search(client, team, "wing flutter", mode="keyword")["hits"][0]["document_id"]
        == created["id"]
    )
    assert client.get(team.url("/knowledge/dead-letters"), headers=team.auth()).json() == []
    history = client.get(
        team.url("/knowledge/dead-letters"), params={"include_retried": True}, headers=team.auth()
    ).json()
    assert history[0]["retried_at"] is not None
    again = client.post(team.url(f"/documents/{created['id']}/retry"), headers=team.auth())
    assert again.status_code == 409
    assert knowledge.get(created["id"]).status == "indexed"


def test_a_failed_attempt_is_also_scheduled_on_the_queue(
    runtime: Runtime, client: TestClient[Any], team: Team, flaky: Flaky
) -> None:
    flaky.failures = 1
    created = upload(client, team, "Scheduled retry.").json()
    scheduled = [t for t in runtime.huey.scheduled() if t.name == "knowledge.ingest"]
    assert [t.args for t in scheduled] == [(team.id, [[created["id"], 1]])]
    runtime.huey.execute(scheduled[0])  # huey running it early is harmless: not due yet
    assert document(client, team, created["id"])["status"] == "failed"


def test_a_lost_worker_becomes_a_failed_attempt(
    runtime: Runtime, client: TestClient[Any], team: Team, clock: FrozenClock
) -> None:
    created = upload(client, team, "Recovered after a crash.").json()
    db = runtime.storage.workspace(team.id)
    with db.write() as conn:  # as if a worker died right after claiming a new version
        conn.execute(
            "UPDATE knowledge_documents SET status = 'embedding', claimed_at = ? WHERE id = ?",
            ("2025-12-31T23:00:00.000000Z", created["id"]),
        )
    Ingestion(runtime, team.id).retry_due()
    doc = document(client, team, created["id"])
    assert (doc["status"], doc["last_error_class"]) == ("failed", "WorkerLost")
    clock.advance(hours=1)
    Ingestion(runtime, team.id).retry_due()
    assert document(client, team, created["id"])["status"] == "indexed"


def test_cli_lists_dead_letters_and_retries(
    runtime: Runtime, client: TestClient[Any], team: Team, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: Any, texts: list[str]) -> np.ndarray:
        raise ConnectionError("weights unavailable")

    monkeypatch.setattr(pipeline, "MAX_ATTEMPTS", 1)
    monkeypatch.setattr(WordLlamaEmbedder, "embed", broken)
    created = upload(client, team, "Dead on arrival.").json()
    assert document(client, team, created["id"])["status"] == "dead"
    monkeypatch.undo()
    data = str(runtime.settings.data_path)
    listed = CliRunner().invoke(
        cli, ["--data-dir", data, "knowledge", "dead-letters", "--workspace", team.id]
    )
    assert listed.exit_code == 0, listed.output
    assert (
        f"{created['id']} v1 after 1 attempts: ConnectionError: weights unavailable"
        in listed.output
    )
    retried = CliRunner().invoke(
        cli, ["--data-dir", data, "knowledge", "retry", "--workspace", team.id, created["id"]]
    )
    assert retried.exit_code == 0, retried.output
    assert retried.output == f"{created['id']}: indexed\n"
    assert document(client, team, created["id"])["status"] == "indexed"
    nope = CliRunner().invoke(
        cli, ["--data-dir", data, "knowledge", "retry", "--workspace", team.id, created["id"]]
    )
    assert nope.exit_code == 1 and "only failed or dead documents" in nope.output


# -- nothing half-indexed --------------------------------------------------------------------


def test_a_failed_new_version_leaves_the_previous_one_searchable(
    runtime: Runtime, client: TestClient[Any], team: Team, flaky: Flaky
) -> None:
    first = upload(client, team, "Version one mentions albatross.", external_id="doc").json()
    flaky.failures = 100
    upload(client, team, "Version two mentions pelican.", external_id="doc", expect=200)
    doc = document(client, team, first["id"])
    assert (doc["status"], doc["version"], doc["indexed_version"]) == ("failed", 2, 1)
    hits = search(client, team, "albatross", mode="keyword")["hits"]
    assert [(h["document_version"], h["text"]) for h in hits] == [
        (1, "Version one mentions albatross.")
    ]
    assert search(client, team, "pelican", mode="keyword")["hits"] == []
    text = client.get(team.url(f"/documents/{first['id']}/text"), headers=team.auth()).json()
    assert text["version"] == 1


def test_a_failure_inside_the_index_transaction_leaves_nothing_behind(
    runtime: Runtime, client: TestClient[Any], team: Team, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = upload(client, team, "Stable text about gliders.", external_id="g").json()
    real = index_store.insert_vectors

    def fail_after_chunks(*args: Any, **kwargs: Any) -> None:
        real(*args, **kwargs)
        raise OSError("disk full")

    monkeypatch.setattr(index_store, "insert_vectors", fail_after_chunks)
    upload(client, team, "Replacement text about sailplanes.", external_id="g", expect=200)
    monkeypatch.undo()
    doc = document(client, team, first["id"])
    assert (doc["status"], doc["last_error_class"], doc["indexed_version"]) == (
        "failed",
        "OSError",
        1,
    )
    db = runtime.storage.workspace(team.id)
    with db.read() as conn:
        versions = [r["version"] for r in rows(conn, "SELECT version FROM knowledge_chunks")]
        assert versions == [1]
        assert scalar(conn, "SELECT count(*) FROM knowledge_vectors") == 1
        assert scalar(conn, "SELECT chunks FROM knowledge_state") == 1
    with db.write() as conn:
        conn.execute("INSERT INTO knowledge_fts (knowledge_fts) VALUES ('integrity-check')")
    assert search(client, team, "sailplanes", mode="keyword")["hits"] == []
    assert search(client, team, "gliders", mode="hybrid")["hits"][0]["document_version"] == 1


def test_a_newer_indexed_version_settles_the_dead_letter(
    runtime: Runtime, client: TestClient[Any], team: Team, flaky: Flaky
) -> None:
    flaky.failures = 100
    first = upload(client, team, "Doomed text about herons.", external_id="bird").json()
    for _ in range(MAX_ATTEMPTS):
        runtime.clock.advance(hours=1)  # type: ignore[attr-defined]
        Ingestion(runtime, team.id).retry_due()
    assert document(client, team, first["id"])["status"] == "dead"
    letters = client.get(team.url("/knowledge/dead-letters"), headers=team.auth()).json()
    assert [d["document_id"] for d in letters] == [first["id"]]
    flaky.failures = 0
    upload(client, team, "A better text about herons.", external_id="bird", expect=200)
    assert document(client, team, first["id"])["status"] == "indexed"
    letters = client.get(team.url("/knowledge/dead-letters"), headers=team.auth()).json()
    assert letters == []
