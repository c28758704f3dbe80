"""Keyword retrieval over FTS5: query terms, candidate retrieval, BM25 and snippets.

FTS5's default query semantics are AND: every word must appear. For natural-language queries
("what similarity laws must be obeyed when constructing aeroelastic models...") that finds
almost nothing. Queries here are an OR of their words with English stopwords removed, ranked
by BM25 with the title column weighted above the text.

``Bm25`` reproduces FTS5's own ``bm25()`` (same k1, b, IDF floor, column weights, document
length counted in FTS5 tokens) so chunks that FTS5 did not rank — vector candidates in hybrid
search, or chunks scored for expansion terms — get a keyword score on the same scale. Terms are
produced by the very tokenizer FTS5 uses (``porter unicode61``, through apsw), so stems agree.
"""

from __future__ import annotations

import html
import math
import re
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import apsw

from workbench.knowledge import store
from workbench.knowledge.store import dumps

TITLE_WEIGHT = 3.0
TEXT_WEIGHT = 1.0
K1 = 1.2
B = 0.75
MAX_QUERY_TERMS = 64

STOPWORDS = frozenset(
    [
        "a",
        "about",
        "above",
        "after",
        "again",
        "against",
        "all",
        "am",
        "an",
        "and",
        "any",
        "are",
        "aren't",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "cannot",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "don't",
        "down",
        "during",
        "each",
        "few",
        "for",
        "from",
        "further",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "herself",
        "him",
        "himself",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "isn't",
        "it",
        "its",
        "itself",
        "just",
        "me",
        "more",
        "most",
        "my",
        "myself",
        "no",
        "nor",
        "not",
        "now",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "our",
        "ours",
        "ourselves",
        "out",
        "over",
        "own",
        "same",
        "she",
        "should",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "theirs",
        "them",
        "themselves",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "very",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "yours",
        "yourself",
        "yourselves",
    ]
)
_WORD = re.compile(r"\w+", re.UNICODE)
_local = threading.local()


def _tokenizer() -> apsw.FTS5Tokenizer:
    """The ``porter unicode61`` tokenizer of FTS5, one in-memory connection per thread."""
    tokenizer = getattr(_local, "tokenizer", None)
    if tokenizer is None:
        _local.conn = apsw.Connection(":memory:")
        tokenizer = _local.tokenizer = _local.conn.fts5_tokenizer("porter", ["unicode61"])
    return tokenizer


def _tokens(text: str, reason: int = apsw.FTS5_TOKENIZE_DOCUMENT) -> list[tuple[int, int, str]]:
    """(start byte, end byte, token) as FTS5's tokenizer emits them (colocated ones dropped)."""
    found: Any = _tokenizer()(text.encode(), reason, None)
    return [(int(item[0]), int(item[1]), str(item[2])) for item in found]


def stems(text: str) -> list[str]:
    """Every token of ``text`` as FTS5 indexes it."""
    return [t[2] for t in _tokens(text)]


def token_spans(text: str) -> list[tuple[int, int, str]]:
    """(start, end, stem) of every token, as character offsets into ``text``."""
    found = _tokens(text)
    if text.isascii():
        return found
    starts = {}
    position = 0
    for index, char in enumerate(text):
        starts[position] = index
        position += len(char.encode())
    starts[position] = len(text)
    return [(starts[item[0]], starts[item[1]], item[2]) for item in found]


TermCounts = store.TermCounts


def term_counts(title: str, text: str) -> tuple[bytes, int]:
    """The stored form of a chunk's terms (both columns' counts) and its length in tokens,
    which is what FTS5 records as the row's size."""
    title_counts = Counter(stems(title))
    text_counts = Counter(stems(text))
    length = sum(title_counts.values()) + sum(text_counts.values())
    return store.encode_terms(dict(title_counts), dict(text_counts)), length


@dataclass(frozen=True, slots=True)
class QueryTerms:
    words: tuple[str, ...]
    """One original word per distinct stem, in query order: what goes into MATCH."""
    stems: tuple[str, ...]


def query_terms(text: str) -> QueryTerms:
    """Distinct terms of a query, stopwords removed (unless nothing else is left)."""
    words = [w.lower() for w in _WORD.findall(text)]
    kept = [w for w in words if w not in STOPWORDS] or words
    seen: dict[str, str] = {}
    for word in kept:
        for _, _, stem in _tokens(word, apsw.FTS5_TOKENIZE_QUERY):
            seen.setdefault(stem, word)
        if len(seen) >= MAX_QUERY_TERMS:
            break
    return QueryTerms(tuple(seen.values()), tuple(seen))


def match_expression(words: Iterable[str]) -> str:
    """An FTS5 OR query of quoted words (quotes make any word a plain term, never syntax)."""
    return " OR ".join('"' + w.replace('"', '""') + '"' for w in words)


def fts_candidates(
    conn: apsw.Connection,
    words: Sequence[str],
    limit: int,
    document_seqs: Sequence[int] | None = None,
) -> list[tuple[int, float]]:
    """(chunk seq, BM25 score, higher is better) of the best ``limit`` FTS5 matches."""
    if not words:
        return []
    weights = f"{TITLE_WEIGHT}, {TEXT_WEIGHT}"
    if document_seqs is None:
        sql = (
            f"SELECT rowid, bm25(knowledge_fts, {weights}) AS s FROM knowledge_fts"
            " WHERE knowledge_fts MATCH ? ORDER BY s LIMIT ?"
        )
        params: list[object] = [match_expression(words), limit]
    else:
        sql = (
            f"SELECT f.rowid, bm25(knowledge_fts, {weights}) AS s FROM knowledge_fts f"
            " JOIN knowledge_chunks c ON c.seq = f.rowid WHERE knowledge_fts MATCH ?"
            " AND c.document_seq IN (SELECT value FROM json_each(?)) ORDER BY s LIMIT ?"
        )
        params = [match_expression(words), dumps(list(document_seqs)), limit]
    return [(int(seq), -float(score)) for seq, score in conn.execute(sql, params)]


class Bm25:
    """FTS5's ``bm25()`` for chunks FTS5 did not score, with per-term weights."""

    def __init__(self, rows: int, tokens: int, document_frequency: dict[str, int]) -> None:
        self.rows = max(rows, 1)
        self.avgdl = tokens / self.rows if tokens else 1.0
        self.df = document_frequency

    def idf(self, term: str) -> float:
        hits = self.df.get(term, 0)
        value = math.log((self.rows - hits + 0.5) / (hits + 0.5))
        return value if value > 0 else 1e-6

    def score(
        self, weights: dict[str, float], title: TermCounts, text: TermCounts, length: int
    ) -> float:
        return float(self.score_many(weights, [(title, text, length)])[0])

    def score_many(
        self, weights: dict[str, float], chunks: Sequence[tuple[TermCounts, TermCounts, int]]
    ) -> list[float]:
        """BM25 of each (title counts, text counts, length), the weighted sum over terms."""
        terms = [(term, weight * self.idf(term)) for term, weight in weights.items()]
        k1_plus_1 = K1 + 1
        scale = K1 * B / self.avgdl
        base = K1 * (1 - B)
        out = []
        for title, text, length in chunks:
            norm = base + scale * length
            total = 0.0
            for term, weight in terms:
                freq = TITLE_WEIGHT * title.get(term, 0) + TEXT_WEIGHT * text.get(term, 0)
                if freq:
                    total += weight * freq * k1_plus_1 / (freq + norm)
            out.append(total)
        return out


# -- snippets -------------------------------------------------------------------------------

SNIPPET_TOKENS = 40


def snippet(text: str, wanted: Iterable[str], window: int = SNIPPET_TOKENS) -> str:
    """The ``window`` tokens of ``text`` with the most query terms, HTML-escaped, matched
    terms in ``<mark>``; the start of the text when nothing matches."""
    spans = token_spans(text)
    if not spans:
        return html.escape(text[:300])
    wanted = set(wanted)
    hits = [i for i, (_, _, stem) in enumerate(spans) if stem in wanted]
    best_start, best_count = 0, 0
    if hits:
        right = 0
        for left_index, left in enumerate(hits):
            while right < len(hits) and hits[right] < left + window:
                right += 1
            if right - left_index > best_count:
                best_start, best_count = (
                    max(0, min(left - 3, len(spans) - window)),
                    right - left_index,
                )
    first = best_start
    last = min(len(spans), first + window) - 1
    start = 0 if first == 0 else spans[first][0]
    end = len(text) if last == len(spans) - 1 else spans[last][1]
    pieces = ["…" if start > 0 else ""]
    position = start
    for s, e, stem in spans[first : last + 1]:
        if stem in wanted:
            pieces.append(html.escape(text[position:s]))
            pieces.append(f"<mark>{html.escape(text[s:e])}</mark>")
            position = e
    pieces.append(html.escape(text[position:end]))
    if end < len(text):
        pieces.append("…")
    return "".join(pieces)
