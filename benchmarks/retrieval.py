"""Knowledge retrieval at scale: ingestion speed and query latency at 100,000 chunks.

The corpus is Cranfield-derived when the dataset is found (sentences of its abstracts
recombined into new passages, one word in fifteen swapped for another word of the collection,
under real Cranfield titles), else generated from a fixed vocabulary; queries are Cranfield's.
Everything goes through the real pipeline (``add_records`` + ``Ingestion``) and the real search
path (``Knowledge.search``), in a scratch workspace on disk. Beside it, in the same run:

- ``ceilings.numpy_bruteforce``: exact cosine top-100 over the very same vectors (matrix x
  vector, argpartition), without query embedding or anything else;
- ``ceilings.fts5_raw``: the same FTS5 MATCH, straight through apsw, no Python around it;
- ``vec0``: sqlite-vec ``vec0`` tables (float, int8, bit + float rescoring) over the same
  vectors, with recall@10 against exact search, to show why they are not the search path;
- ``budgeted``: hybrid search exhaustive and with other postings budgets (the default,
  ``Tuning()``, is 20,000), keyword search with one, and each one's top-10 agreement with the
  exhaustive answer.

Usage::

    .venv/bin/python benchmarks/retrieval.py                  # 100,000 chunks, ~5 min on 2 cores
    .venv/bin/python benchmarks/retrieval.py --quick          # 5,000 chunks, for smoke tests
    .venv/bin/python benchmarks/retrieval.py --chunks 20000 --out result.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import re
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("WORKBENCH_NO_ENTRY_POINTS", "1")

from _common import REPO_ROOT, emit, log, machine_info, scratch_dir, utc_now

from workbench.config import Settings
from workbench.knowledge import keyword
from workbench.knowledge.models import SearchRequest
from workbench.knowledge.pipeline import Ingestion
from workbench.knowledge.retrieval import Tuning
from workbench.knowledge.service import Knowledge
from workbench.runtime import Runtime

CRANFIELD = REPO_ROOT.parent / "shared" / "datasets" / "cranfield"
TARGET_HYBRID_P95_MS = 20.0
BUDGETS = (20_000, 50_000)
FALLBACK_WORDS = [
    *[
        "flow",
        "pressure",
        "wing",
        "boundary",
        "layer",
        "shock",
        "wave",
        "heat",
        "transfer",
        "surface",
        "velocity",
    ],
    *[
        "mach",
        "number",
        "supersonic",
        "subsonic",
        "hypersonic",
        "turbulent",
        "laminar",
        "plate",
        "cylinder",
    ],
    *[
        "body",
        "drag",
        "lift",
        "nozzle",
        "jet",
        "temperature",
        "density",
        "stream",
        "function",
        "solution",
        "theory",
    ],
]


# -- corpus and queries ----------------------------------------------------------------------


def corpus(n: int, seed: int = 7) -> Iterator[dict[str, Any]]:
    rng = random.Random(seed)
    if (CRANFIELD / "corpus.jsonl").is_file():
        docs = [json.loads(line) for line in (CRANFIELD / "corpus.jsonl").read_text().splitlines()]
        titles = [d["title"] for d in docs if d["title"].strip()]
        sentences = [s for d in docs for s in re.split(r"(?<=\.)\s+", d["text"]) if len(s) > 30]
    else:
        titles = [" ".join(rng.choices(FALLBACK_WORDS, k=6)) for _ in range(500)]
        sentences = [
            " ".join(rng.choices(FALLBACK_WORDS, k=rng.randint(8, 25))) + " ." for _ in range(5000)
        ]
    vocabulary = sorted({w for s in sentences for w in s.split() if w.isalpha() and len(w) > 3})
    for i in range(n):
        words = " ".join(rng.sample(sentences, rng.randint(2, 4))).split()
        for _ in range(len(words) // 15):
            words[rng.randrange(len(words))] = rng.choice(vocabulary)
        yield {"_id": f"s{i}", "title": rng.choice(titles), "text": " ".join(words)}


def queries(count: int) -> list[str]:
    if (CRANFIELD / "queries.jsonl").is_file():
        found = [
            json.loads(line)["text"]
            for line in (CRANFIELD / "queries.jsonl").read_text().splitlines()
        ]
    else:
        rng = random.Random(3)
        found = [" ".join(rng.choices(FALLBACK_WORDS, k=8)) for _ in range(count)]
    return (found * (count // len(found) + 1))[:count]


# -- measuring -------------------------------------------------------------------------------


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {
        "p50_ms": round(pick(0.5), 2),
        "p95_ms": round(pick(0.95), 2),
        "mean_ms": round(statistics.fmean(ordered), 2),
        "n": len(ordered),
    }


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return (time.perf_counter() - start) * 1000, result


def ingest(runtime: Runtime, workspace_id: str, n: int) -> dict[str, Any]:
    service = Knowledge(runtime, workspace_id, None, "owner")
    ingestion = Ingestion(runtime, workspace_id)
    records = corpus(n)
    chunks = 0
    started = time.perf_counter()
    batch: list[tuple[int, dict[str, Any]]] = []
    done = 0

    def flush() -> int:
        report = service.add_records(batch, enqueue=False)
        ids = report.document_ids
        made = 0
        for start in range(0, len(ids), 512):
            made += ingestion.run([(i, 1) for i in ids[start : start + 512]]).chunks
        return made

    for number, record in enumerate(records, 1):
        batch.append((number, record))
        if len(batch) == 5000:
            chunks += flush()
            done += len(batch)
            batch = []
            log(
                f"ingested {done}/{n} documents, {chunks} chunks, {time.perf_counter() - started:.0f} s"
            )
    if batch:
        chunks += flush()
    seconds = time.perf_counter() - started
    return {
        "documents": n,
        "chunks": chunks,
        "seconds": round(seconds, 1),
        "chunks_per_s": round(chunks / seconds, 1),
    }


def embed_throughput(runtime: Runtime, texts: list[str]) -> dict[str, Any]:
    from workbench.knowledge.embedders import get_embedder

    embedder = get_embedder(runtime.pm, "wordllama")
    embedder.embed(texts[:100])
    ms, _ = timed(lambda: embedder.embed(texts))
    return {"texts": len(texts), "texts_per_s": round(len(texts) / (ms / 1000), 1)}


def search_latency(
    service: Knowledge, texts: list[str], raw_conn: Any, matrix: np.ndarray, embedded: np.ndarray
) -> dict[str, Any]:
    samples: dict[str, list[float]] = {
        k: [] for k in ("keyword", "vector", "hybrid", "numpy_bruteforce", "fts5_raw")
    }
    weights = f"{keyword.TITLE_WEIGHT}, {keyword.TEXT_WEIGHT}"

    def fts_raw(query: str) -> Any:
        words = keyword.query_terms(query).words
        return raw_conn.execute(
            f"SELECT rowid, bm25(knowledge_fts, {weights}) AS s FROM knowledge_fts WHERE knowledge_fts MATCH ? ORDER BY s LIMIT 10",
            (keyword.match_expression(words),),
        ).fetchall()

    def bruteforce(vector: np.ndarray) -> Any:
        scores = matrix @ vector
        top = np.argpartition(-scores, 100)[:100]
        return top[np.argsort(-scores[top])]

    for text in texts[:10]:  # warm up: caches, page cache, the vector matrix
        for mode in ("keyword", "vector", "hybrid"):
            service.search(SearchRequest(query=text, mode=mode, limit=10))  # type: ignore[arg-type]
    for i, text in enumerate(texts):

        def ask(mode: str, text: str = text) -> Any:
            return service.search(SearchRequest(query=text, mode=mode, limit=10))  # type: ignore[arg-type]

        steps: list[tuple[str, Callable[[], Any]]] = [
            ("keyword", lambda: ask("keyword")),
            ("vector", lambda: ask("vector")),
            ("hybrid", lambda: ask("hybrid")),
            ("numpy_bruteforce", lambda vector=embedded[i]: bruteforce(vector)),
            ("fts5_raw", lambda text=text: fts_raw(text)),
        ]
        shift = i % len(steps)  # rotate the order, so drift on the machine hits every side alike
        for name, fn in steps[shift:] + steps[:shift]:
            samples[name].append(timed(fn)[0])
    return {name: percentiles(values) for name, values in samples.items()}


def budgeted(service: Knowledge, texts: list[str]) -> dict[str, Any]:
    """Latency of other postings budgets, and how often their top 10 is the exhaustive one's.
    ``hybrid_budget_20000`` is the default hybrid search (``Tuning()``)."""
    variants: dict[str, tuple[str, Tuning]] = {
        "hybrid_exhaustive": ("hybrid", Tuning(postings_budget=None)),
        "hybrid_budget_10000": ("hybrid", Tuning(postings_budget=10_000)),
        "hybrid_budget_20000": ("hybrid", Tuning(postings_budget=20_000)),
        "hybrid_budget_50000": ("hybrid", Tuning(postings_budget=50_000)),
        "keyword_budget_20000": ("keyword", Tuning(keyword_postings_budget=20_000)),
    }
    exhaustive = {"hybrid": Tuning(postings_budget=None), "keyword": Tuning()}
    out: dict[str, Any] = {}
    for name, (mode, tuning) in variants.items():
        latencies, agreement = [], []
        for text in texts:
            request = SearchRequest(query=text, mode=mode, limit=10)  # type: ignore[arg-type]
            exact = {h.chunk_id for h in service.search(request, exhaustive[mode]).hits}
            ms, answer = timed(
                lambda request=request, tuning=tuning: service.search(request, tuning)
            )
            latencies.append(ms)
            if exact:
                agreement.append(len(exact & {h.chunk_id for h in answer.hits}) / len(exact))
        out[name] = {
            **percentiles(latencies),
            "agreement@10": round(statistics.fmean(agreement), 3) if agreement else None,
        }
    return out


def vec0_variants(scratch: Path, matrix: np.ndarray, embedded: np.ndarray) -> dict[str, Any]:
    """sqlite-vec's vec0 over the same vectors: float and int8 KNN, bit KNN + float rescoring."""
    from workbench.db.connection import open_connection

    conn = open_connection(scratch / "vec0.db")
    dim = matrix.shape[1]
    conn.execute(
        f"CREATE VIRTUAL TABLE vf USING vec0(embedding float[{dim}] distance_metric=cosine)"
    )
    conn.execute(
        f"CREATE VIRTUAL TABLE vi USING vec0(embedding int8[{dim}] distance_metric=cosine)"
    )
    conn.execute(f"CREATE VIRTUAL TABLE vb USING vec0(embedding bit[{dim}])")
    conn.execute("CREATE TABLE floats (id INTEGER PRIMARY KEY, embedding BLOB)")
    with conn:
        for i, row in enumerate(matrix):
            blob = row.tobytes()
            conn.execute("INSERT INTO vf (rowid, embedding) VALUES (?, ?)", (i, blob))
            conn.execute(
                "INSERT INTO vi (rowid, embedding) VALUES (?, vec_quantize_int8(?, 'unit'))",
                (i, blob),
            )
            conn.execute(
                "INSERT INTO vb (rowid, embedding) VALUES (?, vec_quantize_binary(?))", (i, blob)
            )
            conn.execute("INSERT INTO floats (id, embedding) VALUES (?, ?)", (i, blob))

    def exact(vector: np.ndarray) -> set[int]:
        scores = matrix @ vector
        return {int(i) for i in np.argpartition(-scores, 10)[:10]}

    def knn(table: str, convert: str, vector: np.ndarray, k: int) -> list[int]:
        return [
            r[0]
            for r in conn.execute(
                f"SELECT rowid FROM {table} WHERE embedding MATCH {convert} AND k = ?",
                (vector.tobytes(), k),
            )
        ]

    def bit_rescored(vector: np.ndarray, k0: int) -> list[int]:
        candidates = knn("vb", "vec_quantize_binary(?)", vector, k0)
        return [
            r[0]
            for r in conn.execute(
                "SELECT id, vec_distance_cosine(embedding, ?) AS d FROM floats"
                " WHERE id IN (SELECT value FROM json_each(?)) ORDER BY d LIMIT 10",
                (vector.tobytes(), json.dumps(candidates)),
            )
        ]

    variants: dict[str, Callable[[np.ndarray], list[int]]] = {
        "float_k10": lambda v: knn("vf", "?", v, 10),
        "int8_k10": lambda v: knn("vi", "vec_quantize_int8(?, 'unit')", v, 10),
        "bit_k100_rescored": lambda v: bit_rescored(v, 100),
        "bit_k400_rescored": lambda v: bit_rescored(v, 400),
    }
    out = {}
    sample = embedded[:50]
    for name, fn in variants.items():
        latencies, recall = [], []
        for vector in sample:
            ms, found = timed(lambda fn=fn, vector=vector: fn(vector))
            latencies.append(ms)
            recall.append(len(exact(vector) & set(found)) / 10)
        out[name] = {**percentiles(latencies), "recall@10": round(statistics.fmean(recall), 3)}
    conn.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="5,000 chunks and 50 queries")
    parser.add_argument(
        "--skip-vec0", action="store_true", help="do not build the vec0 comparison tables"
    )
    parser.add_argument("--out", type=Path)
    parser.add_argument("--tmpdir", type=Path)
    args = parser.parse_args()
    logging.getLogger("huey").setLevel(logging.WARNING)
    if args.quick:
        args.chunks, args.queries = 5_000, 50
    from workbench.workspaces.service import create_workspace

    result: dict[str, Any] = {
        "benchmark": "retrieval",
        "started": utc_now(),
        "chunks_requested": args.chunks,
    }
    with scratch_dir("workbench-retrieval-", args.tmpdir) as scratch:
        runtime = Runtime(Settings(data_dir=str(scratch / "data")), immediate_jobs=True)
        runtime.initialize()
        workspace = create_workspace(runtime, "bench")
        result["corpus"] = (
            "cranfield-derived" if (CRANFIELD / "corpus.jsonl").is_file() else "generated"
        )
        result["ingest"] = ingest(runtime, workspace.id, args.chunks)
        result["ingest"]["embedding_only"] = embed_throughput(
            runtime, [r["text"] for r in corpus(5000, seed=11)]
        )
        service = Knowledge(runtime, workspace.id, None, "owner")
        texts = queries(args.queries)
        db = runtime.storage.workspace(workspace.id)
        with db.read() as conn:
            blobs = [
                r[0]
                for r in conn.execute("SELECT embedding FROM knowledge_vectors ORDER BY chunk_seq")
            ]
        matrix = np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(blobs), -1).copy()
        from workbench.knowledge.embedders import get_embedder

        embedder = get_embedder(runtime.pm, "wordllama")
        embedded = embedder.embed(texts)
        result["query_embedding_ms"] = percentiles(
            [timed(lambda t=t: embedder.embed([t]))[0] for t in texts[:100]]
        )
        log("measuring search latency")
        with db.read() as raw:
            result["search"] = search_latency(service, texts, raw, matrix, embedded)
        log("measuring budgeted search")
        result["budgeted"] = budgeted(service, texts[:100])
        if not args.skip_vec0:
            log("building vec0 tables for comparison")
            result["vec0"] = vec0_variants(scratch, matrix, embedded)
        runtime.close()
        result["machine"] = machine_info(scratch)
    hybrid_p95 = result["search"]["hybrid"]["p95_ms"]
    result["target"] = {
        "hybrid_p95_ms": TARGET_HYBRID_P95_MS,
        "measured": hybrid_p95,
        "met": hybrid_p95 < TARGET_HYBRID_P95_MS,
    }
    emit(result, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
