"""Retrieval evaluation on a BEIR-layout dataset, through the real pipeline and search path.

The dataset directory holds ``corpus.jsonl`` (``_id``, ``title``, ``text``), ``queries.jsonl``
(``_id``, ``text``) and ``qrels/test.tsv`` (``query-id``, ``corpus-id``, ``score``). The corpus
is ingested into a scratch workspace in a temporary data directory (the same ``add_records``
and ``Ingestion`` a real upload uses); every judged query goes through ``Knowledge.search``.

Metrics follow trec_eval / BEIR: nDCG@10 with linear gains (the qrels score), Recall@100
(judged relevant = score > 0) and MRR@10; documents are ranked by their best chunk.
"""

from __future__ import annotations

import math
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from workbench.config import Settings
from workbench.knowledge.models import SearchMode, SearchRequest
from workbench.knowledge.pipeline import Ingestion
from workbench.knowledge.retrieval import DEFAULT_TUNING, Tuning
from workbench.knowledge.service import Knowledge
from workbench.runtime import Runtime

MODES: tuple[SearchMode, ...] = ("keyword", "vector", "hybrid")
BATCH = 256
DEPTH = 100


@dataclass
class Dataset:
    corpus: list[tuple[int, dict[str, Any]]]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]


def load_dataset(directory: Path) -> Dataset:
    for name in ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv"):
        if not (directory / name).is_file():
            raise FileNotFoundError(f"{directory} is not a BEIR dataset: {name} is missing")
    corpus = [
        (number, msgspec.json.decode(line))
        for number, line in enumerate((directory / "corpus.jsonl").read_bytes().splitlines(), 1)
        if line.strip()
    ]
    queries = {}
    for line in (directory / "queries.jsonl").read_bytes().splitlines():
        if line.strip():
            record = msgspec.json.decode(line)
            queries[str(record["_id"])] = str(record["text"])
    qrels: dict[str, dict[str, int]] = {}
    for row in (directory / "qrels" / "test.tsv").read_text().splitlines():
        parts = row.split("\t")
        if len(parts) < 3 or not parts[2].strip().lstrip("-").isdigit():
            continue  # the header row
        qrels.setdefault(parts[0], {})[parts[1]] = int(parts[2])
    return Dataset(corpus, {q: t for q, t in queries.items() if q in qrels}, qrels)


def ndcg_at(ranked: Sequence[str], judged: dict[str, int], k: int = 10) -> float:
    gains = [max(judged.get(doc, 0), 0) for doc in ranked[:k]]
    dcg = sum(g / math.log2(i + 2) for i, g in enumerate(gains))
    ideal = sorted((g for g in judged.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall_at(ranked: Sequence[str], judged: dict[str, int], k: int = 100) -> float:
    relevant = {d for d, g in judged.items() if g > 0}
    return len(relevant.intersection(ranked[:k])) / len(relevant) if relevant else 0.0


def mrr_at(ranked: Sequence[str], judged: dict[str, int], k: int = 10) -> float:
    for i, doc in enumerate(ranked[:k]):
        if judged.get(doc, 0) > 0:
            return 1.0 / (i + 1)
    return 0.0


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]


def evaluate(
    directory: Path,
    modes: Sequence[SearchMode] = ("hybrid",),
    *,
    pm: Any = None,
    tuning: Tuning = DEFAULT_TUNING,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, Any]:
    """Ingest the corpus into a scratch workspace and score every mode."""
    from workbench.workspaces.service import create_workspace

    dataset = load_dataset(directory)
    with tempfile.TemporaryDirectory(prefix="workbench-eval-") as scratch:
        runtime = Runtime(Settings(data_dir=scratch), pm=pm, immediate_jobs=True)
        try:
            runtime.initialize()
            workspace = create_workspace(runtime, "retrieval eval")
            service = Knowledge(runtime, workspace.id, None, "owner")
            ingestion = _ingest(runtime, workspace.id, service, dataset, progress)
            results: dict[str, Any] = {}
            for mode in modes:
                results[mode] = {
                    **_run_queries(runtime, workspace.id, service, dataset, mode, tuning, progress),
                    **ingestion,
                }
        finally:
            runtime.close()
    return results


def _ingest(
    runtime: Runtime,
    workspace_id: str,
    service: Knowledge,
    dataset: Dataset,
    progress: Callable[[str, int, int], None] | None,
) -> dict[str, Any]:
    started = time.perf_counter()
    report = service.add_records(dataset.corpus, enqueue=False)
    with service.db.read() as conn:
        pending = [
            (r[0], r[1])
            for r in conn.execute(
                "SELECT id, version FROM knowledge_documents WHERE status = 'queued'"
            )
        ]
    chunks = 0
    ingestion = Ingestion(runtime, workspace_id)
    for start in range(0, len(pending), BATCH):
        chunks += ingestion.run(pending[start : start + BATCH]).chunks
        if progress:
            progress("ingest", min(start + BATCH, len(pending)), len(pending))
    seconds = time.perf_counter() - started
    return {
        "documents": len(report.document_ids),
        "rejected": len(report.rejected),
        "chunks": chunks,
        "ingest_seconds": round(seconds, 3),
        "chunks_per_s": round(chunks / seconds, 1) if seconds > 0 else 0.0,
    }


def _run_queries(
    runtime: Runtime,
    workspace_id: str,
    service: Knowledge,
    dataset: Dataset,
    mode: SearchMode,
    tuning: Tuning,
    progress: Callable[[str, int, int], None] | None,
) -> dict[str, Any]:
    with service.db.read() as conn:
        external: dict[str, str] = {
            str(r[0]): str(r[1])
            for r in conn.execute("SELECT id, external_id FROM knowledge_documents")
        }
    ndcg, recall, mrr, latency = [], [], [], []
    for done, (query_id, text) in enumerate(sorted(dataset.queries.items()), 1):
        started = time.perf_counter()
        response = service.search(SearchRequest(query=text[:2000], mode=mode, limit=DEPTH), tuning)
        latency.append((time.perf_counter() - started) * 1000)
        ranked = list(dict.fromkeys(external[h.document_id] for h in response.hits))[:DEPTH]
        judged = dataset.qrels[query_id]
        ndcg.append(ndcg_at(ranked, judged))
        recall.append(recall_at(ranked, judged))
        mrr.append(mrr_at(ranked, judged))
        if progress and done % 25 == 0:
            progress(mode, done, len(dataset.queries))
    return {
        "mode": mode,
        "queries": len(ndcg),
        "ndcg@10": round(statistics.fmean(ndcg), 4) if ndcg else 0.0,
        "recall@100": round(statistics.fmean(recall), 4) if recall else 0.0,
        "mrr@10": round(statistics.fmean(mrr), 4) if mrr else 0.0,
        "p50_ms": round(percentile(latency, 0.5), 2),
        "p95_ms": round(percentile(latency, 0.95), 2),
    }
