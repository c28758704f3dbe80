"""Retrieval internals: the embedder switch (search answers throughout), BM25 computed in
Python equals FTS5's, the SQL and in-memory vector paths agree, the postings budget, and
quality on Cranfield."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from workbench.cli import cli
from workbench.db.connection import rows, scalar
from workbench.hookspecs import hookimpl
from workbench.knowledge.embedders import HashingEmbedder
from workbench.knowledge.models import SearchRequest
from workbench.knowledge.retrieval import Tuning
from workbench.knowledge.service import Knowledge, vector_cache
from workbench.runtime import Runtime
from workbench.workspaces.service import create_workspace

CRANFIELD = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "cranfield"
DOCS = [
    "Supersonic flow over a flat plate produces an oblique shock wave.",
    "Heat transfer to a blunt body at hypersonic speeds is dominated by the stagnation point.",
    "Flutter of a cantilever wing couples bending and torsion modes.",
    "Turbulent boundary layers thicken along a flat plate in subsonic flow.",
    "Rocket nozzles expand gas; the exit pressure should match the ambient pressure.",
]


@pytest.fixture
def knowledge(runtime: Runtime) -> Knowledge:
    workspace = create_workspace(runtime, "Retrieval")
    service = Knowledge(runtime, workspace.id, None, "owner")
    for i, text in enumerate(DOCS):
        service.add(text.encode(), media_type="text/plain", title=f"Doc {i}")
    return service


def ask(service: Knowledge, query: str, mode: str = "hybrid", **kwargs: Any) -> Any:
    return service.search(SearchRequest(query=query, mode=mode, **kwargs))  # type: ignore[arg-type]


class Probe(HashingEmbedder):
    """A second embedder that runs a callback the first time it embeds (mid-rebuild)."""

    name = "probe"

    def __init__(self) -> None:
        super().__init__(dim=64)
        self.callback: Any = None
        self.fail = False

    def embed(self, texts: Any) -> np.ndarray:
        if self.fail:
            raise RuntimeError("probe is broken")
        callback, self.callback = self.callback, None
        if callback is not None:
            callback()
        return super().embed(texts)


class ProbePlugin:
    def __init__(self, probe: Probe) -> None:
        self.probe = probe

    @hookimpl
    def workbench_embedders(self) -> list[Any]:
        return [self.probe]


@pytest.fixture
def probe(runtime: Runtime) -> Probe:
    embedder = Probe()
    runtime.pm.register(ProbePlugin(embedder), name="probe-plugin")
    return embedder


def test_switching_the_embedder_keeps_search_answering(
    runtime: Runtime, knowledge: Knowledge, probe: Probe
) -> None:
    during: dict[str, Any] = {}

    def mid_rebuild() -> None:
        during["indexes"] = [(i.embedder, i.status) for i in knowledge.indexes()]
        during["vector"] = ask(knowledge, "wing flutter torsion", "vector")
        during["hybrid"] = ask(knowledge, "wing flutter torsion", "hybrid")
        added, _ = knowledge.add(b"Vortex shedding behind a cylinder.", media_type="text/plain")
        during["added"] = added.id

    probe.callback = mid_rebuild
    info = knowledge.switch_embedder("probe")  # immediate mode: the rebuild job runs now
    assert during["indexes"] == [("probe", "building"), ("wordllama", "active")]
    for mode in ("vector", "hybrid"):
        answer = during[mode]
        assert answer.embedder.embedder == "wordllama", mode  # the old index answered
        assert answer.hits[0].text == DOCS[2], mode
    assert info.embedder == "probe"
    assert [(i.embedder, i.status, i.vectors) for i in knowledge.indexes()] == [
        ("probe", "active", len(DOCS) + 1),
        ("wordllama", "retired", 0),
    ]
    after = ask(knowledge, "vortex shedding cylinder", "vector")
    assert after.embedder.embedder == "probe"
    assert after.hits[0].document_id == during["added"]  # ingested mid-rebuild, not missed
    chunks = knowledge.chunks(during["added"])
    assert chunks[0].embedding is not None and chunks[0].embedding.embedder == "probe"
    with knowledge.db.read() as conn:
        assert (
            scalar(
                conn, "SELECT count(*) FROM outbox WHERE event_type = 'knowledge.embedder_switched'"
            )
            == 1
        )
        assert {
            r["embedder"] for r in rows(conn, "SELECT DISTINCT embedder FROM knowledge_vectors")
        } == {"probe"}


def test_switch_to_the_same_or_an_unknown_embedder(knowledge: Knowledge, probe: Probe) -> None:
    active = knowledge.switch_embedder("wordllama")
    assert active.status == "active" and len(knowledge.indexes()) == 1
    with pytest.raises(Exception, match="no embedder named 'nope'"):
        knowledge.switch_embedder("nope")


def test_a_failed_rebuild_leaves_the_active_index(knowledge: Knowledge, probe: Probe) -> None:
    probe.fail = True
    index = knowledge.switch_embedder("probe")
    assert index.status == "failed" and "probe is broken" in (index.error or "")
    assert [i.status for i in knowledge.indexes()] == ["failed", "active"]
    assert ask(knowledge, "flutter", "vector").hits[0].text == DOCS[2]
    probe.fail = False
    assert knowledge.switch_embedder("probe").status == "active"


def test_python_bm25_equals_fts5_bm25(knowledge: Knowledge) -> None:
    query = "flat plate flow shock"
    keyword = {h.chunk_id: h.scores["keyword"].score for h in ask(knowledge, query, "keyword").hits}
    hybrid = {h.chunk_id: h.scores["keyword"].score for h in ask(knowledge, query, "hybrid").hits}
    assert len(keyword) >= 2
    for chunk_id, score in keyword.items():
        assert hybrid[chunk_id] == pytest.approx(score, rel=1e-9)


def test_sql_and_memory_vector_paths_agree(runtime: Runtime, knowledge: Knowledge) -> None:
    cache = vector_cache(runtime)
    memory = ask(knowledge, "hypersonic heating", "vector", limit=5)
    loads = cache.loads
    assert ask(knowledge, "hypersonic heating", "vector", limit=5).hits == memory.hits
    assert cache.loads == loads  # the loaded index was reused
    knowledge.add(b"Hypersonic heating of re-entry capsules.", media_type="text/plain")
    assert (
        ask(knowledge, "hypersonic heating", "vector", limit=5)
        .hits[0]
        .text.startswith("Hypersonic")
    )
    assert cache.loads == loads + 1  # a new vector moved the generation: reloaded
    budget, cache.budget = cache.budget, 0
    try:
        cache.clear()
        sql = ask(knowledge, "hypersonic heating", "vector", limit=6)
        hybrid_sql = ask(knowledge, "hypersonic heating", "hybrid", limit=6)
    finally:
        cache.budget = budget
    again = ask(knowledge, "hypersonic heating", "vector", limit=6)
    assert [h.chunk_id for h in sql.hits] == [h.chunk_id for h in again.hits]
    for a, b in zip(sql.hits, again.hits, strict=True):
        assert a.scores["vector"].score == pytest.approx(b.scores["vector"].score, abs=1e-5)
    assert [h.chunk_id for h in hybrid_sql.hits] == [
        h.chunk_id for h in ask(knowledge, "hypersonic heating", "hybrid", limit=6).hits
    ]


def test_the_postings_budget_rescores_with_every_term(knowledge: Knowledge) -> None:
    query = "flat plate supersonic flow"
    full = ask(knowledge, query, "keyword", limit=10)
    budgeted = knowledge.search(
        SearchRequest(query=query, mode="keyword", limit=10), Tuning(keyword_postings_budget=1)
    )
    assert budgeted.hits  # FTS5 was asked for the rarest term only...
    exact = {h.chunk_id: h.scores["keyword"].score for h in full.hits}
    for hit in budgeted.hits:  # ...but every candidate is scored with all the terms
        assert hit.scores["keyword"].score == pytest.approx(exact[hit.chunk_id], rel=1e-9)
    assert [h.scores["keyword"].rank for h in budgeted.hits] == list(
        range(1, len(budgeted.hits) + 1)
    )
    hybrid = knowledge.search(
        SearchRequest(query=query, mode="hybrid", limit=3), Tuning(postings_budget=1)
    )
    exhaustive = knowledge.search(
        SearchRequest(query=query, mode="hybrid", limit=3), Tuning(postings_budget=None)
    )
    assert hybrid.hits[0].chunk_id == exhaustive.hits[0].chunk_id


def _tiny_beir(path: Path) -> Path:
    docs = [
        {
            "_id": "d1",
            "title": "Shock waves",
            "text": "Oblique shock waves on wedges in supersonic flow.",
        },
        {"_id": "d2", "title": "Flutter", "text": "Wing flutter couples bending and torsion."},
        {"_id": "d3", "title": "Heating", "text": "Stagnation point heating at hypersonic speed."},
        {"_id": "d4", "title": "", "text": ""},
    ]
    (path / "qrels").mkdir(parents=True)
    (path / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    queries = [
        {"_id": "q1", "text": "shock waves on a wedge"},
        {"_id": "q2", "text": "flutter of wings"},
    ]
    (path / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    (path / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq1\td1\t2\nq2\td2\t1\nq2\td3\t0\n"
    )
    return path


def test_eval_retrieval_on_a_tiny_dataset(tmp_path: Path) -> None:
    dataset = _tiny_beir(tmp_path / "tiny")
    result = CliRunner().invoke(
        cli,
        [
            "--data-dir",
            str(tmp_path / "data"),
            "eval",
            "retrieval",
            str(dataset),
            "--mode",
            "all",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    last = json.loads(result.stdout.strip().splitlines()[-1])
    assert {"ndcg@10", "recall@100", "mrr@10", "p50_ms", "p95_ms", "chunks_per_s"} <= last.keys()
    assert last["mode"] == "hybrid" and last["queries"] == 2
    assert set(last["modes"]) == {"keyword", "vector", "hybrid"}
    for mode in last["modes"].values():
        assert mode["ndcg@10"] == 1.0 and mode["mrr@10"] == 1.0 and mode["rejected"] == 1
    missing = CliRunner().invoke(cli, ["eval", "retrieval", str(tmp_path)])
    assert missing.exit_code == 1 and "not a BEIR dataset" in missing.output


def test_hybrid_quality_on_cranfield(tmp_path: Path) -> None:
    if not (CRANFIELD / "corpus.jsonl").is_file():
        pytest.skip(f"the Cranfield dataset is not at {CRANFIELD}")
    result = CliRunner().invoke(
        cli, ["--data-dir", str(tmp_path / "data"), "eval", "retrieval", str(CRANFIELD), "--json"]
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout.strip().splitlines()[-1])
    assert metrics["queries"] == 225
    assert metrics["ndcg@10"] >= 0.40, metrics
    assert metrics["recall@100"] >= 0.70, metrics


def test_term_statistics_match_what_fts5_counts(runtime: Runtime, knowledge: Knowledge) -> None:
    knowledge.add(
        b"Flat plate flow, again and again: flow flow.", media_type="text/plain", external_id="x"
    )
    knowledge.add(
        b"Now about nozzles only.", media_type="text/plain", external_id="x"
    )  # new version
    doomed, _ = knowledge.add(b"Shock tubes and shock tunnels.", media_type="text/plain")
    knowledge.delete(doomed.id)
    with knowledge.db.read() as conn:
        ours = dict(conn.execute("SELECT term, chunks FROM knowledge_terms").fetchall())
        fts5 = dict(conn.execute("SELECT term, doc FROM knowledge_fts_vocab").fetchall())
        state = conn.execute("SELECT chunks, tokens FROM knowledge_state").fetchone()
        chunks = conn.execute("SELECT count(*), sum(token_count) FROM knowledge_chunks").fetchone()
    assert ours == fts5
    assert tuple(state) == tuple(chunks)
