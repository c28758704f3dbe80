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
from collections.abc import Sequence
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
    postings_budget: int | None = None
    """When the query's terms occur in more chunks than this (summed), FTS5 is asked for the
    rarest terms only and the candidates are re-scored with all of them: bounded latency on
    large workspaces at some recall. None: always exhaustive."""


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
        words = _essential_words(terms, bm25, tuning.postings_budget)
        for rank, (seq, score) in enumerate(
            keyword.fts_candidates(conn, words, depth, documents), 1
        ):
            found[seq] = _Candidate(seq, keyword_rank=rank, keyword_score=score)
        if len(words) < len(terms.words):
            _rescore_keyword(conn, found, terms, bm25)
    if wants_vector:
        assert embedder is not None and view is not None
        query_vector = checked_embed(embedder, [request.query])[0]
        for rank, (seq, score) in enumerate(view.search(query_vector, depth, documents), 1):
            candidate = found.setdefault(seq, _Candidate(seq))
            candidate.vector_rank, candidate.vector_score = rank, score
    rows = store.chunks_by_seq(conn, found)
    pool = [c for c in found.values() if c.seq in rows]
    fused: dict[int, float] = {}
    if request.mode == "hybrid" and pool:
        fused = _hybrid(conn, pool, rows, terms, bm25, query_vector, view, tuning)
        ranked = sorted(pool, key=lambda c: (-fused[c.seq], c.seq))
    elif request.mode == "keyword":
        ranked = sorted((c for c in pool if c.keyword_rank), key=lambda c: c.keyword_rank or 0)
    else:
        ranked = sorted((c for c in pool if c.vector_rank), key=lambda c: c.vector_rank or 0)
    hits = [
        _hit(rank, candidate, rows[candidate.seq], terms, fused.get(candidate.seq), request.mode)
        for rank, candidate in enumerate(ranked[: request.limit], 1)
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


def _features(rows: dict[int, dict[str, Any]], seqs: Sequence[int]) -> dict[int, Features]:
    """Each chunk's stored term counts (title, text) and length, for BM25 and feedback."""
    out = {}
    for seq in seqs:
        title, text = keyword.decode_terms(rows[seq]["terms"])
        out[seq] = (title, text, int(rows[seq]["token_count"]))
    return out


def _rescore_keyword(
    conn: apsw.Connection,
    found: dict[int, _Candidate],
    terms: keyword.QueryTerms,
    bm25: keyword.Bm25,
) -> None:
    """FTS5 ranked by the rare terms only: score the candidates with every term, re-rank."""
    rows = store.chunks_by_seq(conn, found)
    features = _features(rows, [s for s in found if s in rows])
    weights = dict.fromkeys(terms.stems, 1.0)
    for seq, (title, text, length) in features.items():
        found[seq].keyword_score = bm25.score(weights, title, text, length)
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
    rows: dict[int, dict[str, Any]],
    terms: keyword.QueryTerms,
    bm25: keyword.Bm25 | None,
    query_vector: np.ndarray | None,
    view: VectorView | None,
    tuning: Tuning,
) -> dict[int, float]:
    seqs = [c.seq for c in pool]
    features = _features(rows, seqs)
    query_weights = dict.fromkeys(terms.stems, 1.0)
    keyword_scores = np.zeros(len(seqs))
    if bm25 is not None:
        keyword_scores = np.array([bm25.score(query_weights, *features[s]) for s in seqs])
        for candidate, score in zip(pool, keyword_scores, strict=True):
            candidate.keyword_score = float(score)
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
                extra = np.array([bm25.score(expansion, *features[s]) for s in seqs])
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
