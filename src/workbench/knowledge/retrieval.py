"""Keyword, vector and hybrid retrieval over one workspace snapshot.

Hybrid search, step by step (every constant is in ``Tuning``; ADR 0010 has the measurements):

1. Candidates: the best ``candidates`` chunks by BM25 (FTS5, OR of the query's words) and the
   best ``candidates`` by cosine similarity, pooled.
2. Every pooled chunk gets both scores: BM25 computed exactly as FTS5 does for chunks FTS5 did
   not return, cosine from the stored vectors for chunks the vector search did not return.
3. Fusion: each score list is min-max normalised over the pool and mixed,
   ``alpha * keyword + (1 - alpha) * vector``. Measured better than reciprocal-rank fusion,
   which throws the score gaps away.
4. Pseudo-relevance feedback, inside the pool only (so it costs no second index scan): the top
   ``feedback_docs`` chunks of step 3 lend their most distinctive terms (weighted term
   frequency x IDF, RM3-style) to the keyword side, and their mean vector to the query vector
   (Rocchio); the pool is scored and fused again.

Keyword and vector modes are the plain retrievers (steps 1 and 2 of one side, no feedback).
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import apsw
import msgspec
import numpy as np

from workbench.knowledge import keyword, store
from workbench.knowledge.embedders import Embedder, checked_embed
from workbench.knowledge.models import (
    EmbeddingInfo,
    RetrieverScore,
    SearchHit,
    SearchRequest,
    SearchResponse,
)
from workbench.knowledge.vectors import VectorView


@dataclass(frozen=True, slots=True)
class Tuning:
    candidates: int = 100
    alpha: float = 0.6
    """Weight of the keyword side in fusion."""
    feedback_docs: int = 8
    feedback_terms: int = 10
    feedback_keyword_weight: float = 0.6
    feedback_vector_weight: float = 1.0
    postings_budget: int | None = 20_000
    """Hybrid mode: when the query's words occur in more chunks than this (summed), FTS5 is
    asked for the rarest words only (within the budget) and its candidates are re-scored
    with every word. Bounds keyword latency on large workspaces; the vector side and the
    feedback step make up for what FTS5 no longer returns (Cranfield nDCG@10 unchanged at
    the same budget-to-corpus ratio, see ADR 0010). Never reached on small workspaces.
    None: always exhaustive."""
    keyword_postings_budget: int | None = None
    """The same for keyword mode, where nothing makes up for it: off by default."""


DEFAULT_TUNING = Tuning()


@dataclass
class _Candidate:
    seq: int
    keyword_rank: int | None = None
    keyword_score: float | None = None
    vector_rank: int | None = None
    vector_score: float | None = None


def search(
    conn: apsw.Connection,
    request: SearchRequest,
    *,
    embedder: Embedder | None,
    index: dict[str, Any] | None,
    view: VectorView | None,
    tuning: Tuning = DEFAULT_TUNING,
) -> SearchResponse:
    started = time.perf_counter()
    terms = keyword.query_terms(request.query)
    documents: list[int] | None = None
    if request.tags or request.document_ids:
        documents = store.documents_matching(
            conn, tags=request.tags, document_ids=request.document_ids
        )
    wants_vector = (
        request.mode in ("vector", "hybrid") and view is not None and embedder is not None
    )
    wants_keyword = request.mode in ("keyword", "hybrid")
    depth = max(tuning.candidates, request.limit)
    found: dict[int, _Candidate] = {}
    bm25: keyword.Bm25 | None = None
    query_vector: np.ndarray | None = None
    if documents == []:
        wants_vector = wants_keyword = False
    if wants_keyword and terms.words:
        bm25 = _bm25(conn, terms.stems)
        budget = (
            tuning.postings_budget if request.mode == "hybrid" else tuning.keyword_postings_budget
        )
        words = _essential_words(terms, bm25, budget)
        for rank, (seq, score) in enumerate(
            keyword.fts_candidates(conn, words, depth, documents), 1
        ):
            found[seq] = _Candidate(seq, keyword_rank=rank, keyword_score=score)
        if len(words) < len(terms.words) and request.mode == "keyword":
            _rescore_keyword(conn, found, terms, bm25)  # hybrid re-scores its whole pool anyway
    if wants_vector:
        assert embedder is not None and view is not None
        query_vector, nearest = _vector_candidates(embedder, request.query, view, depth, documents)
        for rank, (seq, score) in enumerate(nearest, 1):
            candidate = found.setdefault(seq, _Candidate(seq))
            candidate.vector_rank, candidate.vector_score = rank, score
    fused: dict[int, float] = {}
    if request.mode == "hybrid" and found:
        features = _features(conn, found)
        pool = [c for c in found.values() if c.seq in features]
        fused = _hybrid(conn, pool, features, terms, bm25, query_vector, view, tuning)
        ranked = sorted(pool, key=lambda c: (-fused[c.seq], c.seq))
    elif request.mode == "keyword":
        ranked = sorted(
            (c for c in found.values() if c.keyword_rank), key=lambda c: c.keyword_rank or 0
        )
    else:
        ranked = sorted(
            (c for c in found.values() if c.vector_rank), key=lambda c: c.vector_rank or 0
        )
    top = ranked[: request.limit]
    rows = store.chunks_by_seq(conn, (c.seq for c in top))
    hits = [
        _hit(rank, candidate, rows[candidate.seq], terms, fused.get(candidate.seq), request.mode)
        for rank, candidate in enumerate((c for c in top if c.seq in rows), 1)
    ]
    info = None
    if index is not None and request.mode != "keyword":
        info = EmbeddingInfo(
            embedder=index["embedder"], model=index["model"], version=index["embedder_version"]
        )
    took = round((time.perf_counter() - started) * 1000, 3)
    return SearchResponse(
        query=request.query, mode=request.mode, hits=hits, embedder=info, took_ms=took
    )


def _vector_candidates(
    embedder: Embedder, query: str, view: VectorView, depth: int, documents: Sequence[int] | None
) -> tuple[np.ndarray, list[tuple[int, float]]]:
    vector = checked_embed(embedder, [query])[0]
    return vector, view.search(vector, depth, documents)


def _bm25(conn: apsw.Connection, stems: Sequence[str]) -> keyword.Bm25:
    rows, tokens, _ = store.corpus_state(conn)
    return keyword.Bm25(rows, tokens, store.document_frequencies(conn, stems))


def _essential_words(
    terms: keyword.QueryTerms, bm25: keyword.Bm25, budget: int | None
) -> list[str]:
    """The words FTS5 is asked for: all of them, or the rarest within the postings budget."""
    words = list(terms.words)
    if budget is None:
        return words
    frequency = [bm25.df.get(stem, 0) for stem in terms.stems]
    if sum(frequency) <= budget:
        return words
    chosen: list[str] = []
    total = 0
    for df, word in sorted(zip(frequency, words, strict=True)):
        if df == 0:
            continue
        if chosen and total + df > budget:
            break
        chosen.append(word)
        total += df
    return chosen


Features = tuple[keyword.TermCounts, keyword.TermCounts, int]


def _features(conn: apsw.Connection, seqs: Iterable[int]) -> dict[int, Features]:
    """Each existing chunk's stored term counts (title, text) and length."""
    out = {}
    for seq, (blob, length) in store.pool_features(conn, seqs).items():
        title, text = store.decode_terms(blob)
        out[seq] = (title, text, length)
    return out


def _rescore_keyword(
    conn: apsw.Connection,
    found: dict[int, _Candidate],
    terms: keyword.QueryTerms,
    bm25: keyword.Bm25,
) -> None:
    """FTS5 ranked by the rare terms only: score the candidates with every term, re-rank."""
    features = _features(conn, found)
    weights = dict.fromkeys(terms.stems, 1.0)
    scores = bm25.score_many(weights, list(features.values()))
    for seq, score in zip(features, scores, strict=True):
        found[seq].keyword_score = score
    for seq in set(found) - set(features):
        del found[seq]
    ordered = sorted(features, key=lambda s: -(found[s].keyword_score or 0.0))
    for rank, seq in enumerate(ordered, 1):
        found[seq].keyword_rank = rank


def _minmax(values: np.ndarray) -> np.ndarray:
    if not len(values):
        return values
    low, high = float(values.min()), float(values.max())
    if high - low < 1e-12:
        return np.ones_like(values) if high > 0 else np.zeros_like(values)
    return (values - low) / (high - low)


def _hybrid(
    conn: apsw.Connection,
    pool: list[_Candidate],
    features: dict[int, Features],
    terms: keyword.QueryTerms,
    bm25: keyword.Bm25 | None,
    query_vector: np.ndarray | None,
    view: VectorView | None,
    tuning: Tuning,
) -> dict[int, float]:
    seqs = [c.seq for c in pool]
    pooled = [features[s] for s in seqs]
    query_weights = dict.fromkeys(terms.stems, 1.0)
    keyword_scores = np.zeros(len(seqs))
    if bm25 is not None:
        keyword_scores = np.array(bm25.score_many(query_weights, pooled))
        for candidate, score in zip(pool, keyword_scores, strict=True):
            candidate.keyword_score = float(score)
        from_fts = sorted(
            (c for c in pool if c.keyword_rank), key=lambda c: -(c.keyword_score or 0.0)
        )
        for rank, candidate in enumerate(from_fts, 1):  # FTS5 may have ranked by fewer words
            candidate.keyword_rank = rank
    vectors = None
    vector_scores = np.zeros(len(seqs))
    if query_vector is not None and view is not None:
        vectors = view.vectors(seqs)
        vector_scores = vectors @ query_vector
        for candidate, score in zip(pool, vector_scores, strict=True):
            candidate.vector_score = float(score)
    alpha = (
        tuning.alpha
        if bm25 is not None and vectors is not None
        else (1.0 if vectors is None else 0.0)
    )
    fused = alpha * _minmax(keyword_scores) + (1 - alpha) * _minmax(vector_scores)
    if tuning.feedback_docs > 0 and len(seqs) > tuning.feedback_docs:
        top = np.argsort(-fused, kind="stable")[: tuning.feedback_docs]
        if bm25 is not None:
            expansion = _expansion_terms(conn, top, fused, seqs, features, terms, bm25, tuning)
            if expansion:
                extra = np.array(bm25.score_many(expansion, pooled))
                keyword_scores = keyword_scores + tuning.feedback_keyword_weight * extra
        if vectors is not None and query_vector is not None:
            moved = query_vector + tuning.feedback_vector_weight * vectors[top].mean(axis=0)
            norm = float(np.linalg.norm(moved))
            if norm > 0:
                vector_scores = vectors @ (moved / norm)
        fused = alpha * _minmax(keyword_scores) + (1 - alpha) * _minmax(vector_scores)
    return {seq: float(score) for seq, score in zip(seqs, fused, strict=True)}


def _expansion_terms(
    conn: apsw.Connection,
    top: np.ndarray,
    fused: np.ndarray,
    seqs: list[int],
    features: dict[int, Features],
    terms: keyword.QueryTerms,
    bm25: keyword.Bm25,
    tuning: Tuning,
) -> dict[str, float]:
    """RM3-style: terms frequent in the top chunks (weighted by their fused score) and rare in
    the corpus, normalised so the expansion weighs ``feedback_terms`` query terms in all."""
    weights = fused[top]
    if float(weights.sum()) <= 0:
        return {}
    weights = weights / weights.sum()
    mass: defaultdict[str, float] = defaultdict(float)
    exclude = set(terms.stems)
    for position, weight in zip(top, weights, strict=True):
        title, text, _ = features[seqs[int(position)]]
        counts = Counter(title)
        counts.update(text)
        total = sum(counts.values()) or 1
        for term, count in counts.items():
            if term in exclude or len(term) < 3 or term.isdigit() or term in keyword.STOPWORDS:
                continue
            mass[term] += float(weight) * count / total
    shortlist = sorted(mass, key=lambda t: -mass[t])[: tuning.feedback_terms * 4]
    frequencies = store.document_frequencies(conn, shortlist)
    scorer = keyword.Bm25(bm25.rows, int(bm25.avgdl * bm25.rows), frequencies)
    ranked = sorted(shortlist, key=lambda t: -mass[t] * scorer.idf(t))[: tuning.feedback_terms]
    bm25.df.update({t: frequencies.get(t, 0) for t in ranked})
    total_mass = sum(mass[t] for t in ranked) or 1.0
    return {t: tuning.feedback_terms * mass[t] / total_mass for t in ranked}


def _hit(
    rank: int,
    candidate: _Candidate,
    row: dict[str, Any],
    terms: keyword.QueryTerms,
    fused: float | None,
    mode: str,
) -> SearchHit:
    scores = {
        "keyword": RetrieverScore(score=candidate.keyword_score, rank=candidate.keyword_rank),
        "vector": RetrieverScore(score=candidate.vector_score, rank=candidate.vector_rank),
    }
    if fused is not None:
        scores["fused"] = RetrieverScore(score=fused, rank=rank)
    final = (
        fused
        if fused is not None
        else (candidate.keyword_score if mode == "keyword" else candidate.vector_score)
    )
    return SearchHit(
        rank=rank,
        score=float(final or 0.0),
        document_id=row["document_id"],
        document_title=row["document_title"],
        document_version=row["version"],
        chunk_id=row["id"],
        ordinal=row["ordinal"],
        char_start=row["char_start"],
        char_end=row["char_end"],
        heading=row["heading"],
        text=row["text"],
        snippet=keyword.snippet(row["text"], terms.stems),
        tags=msgspec.json.decode(row["tags"]),
        scores=scores,
    )
