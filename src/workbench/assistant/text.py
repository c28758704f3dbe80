"""Small text tools shared by the extractive provider and the grounding check."""

from __future__ import annotations

import re
from collections.abc import Iterator

from workbench.knowledge.keyword import STOPWORDS as KEYWORD_STOPWORDS

STOPWORDS = KEYWORD_STOPWORDS | frozenset(
    {"please", "tell", "show", "give", "find", "explain", "describe", "much", "many"}
)
"""The search stopwords, plus the words people wrap questions in."""
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-']*")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[`*])|\n\s*\n|\n(?=\s*(?:[-*#|]|\d+\.)\s)")
MARKER = re.compile(r"\[(T?\d+)\]")


def stem(word: str) -> str:
    """A deliberately small suffix stripper: enough to match 'layers' with 'layer'."""
    w = word.lower()
    for suffix, keep in (
        ("ies", "y"),
        ("sses", "ss"),
        ("ing", ""),
        ("edly", ""),
        ("ed", ""),
        ("es", ""),
        ("s", ""),
        ("ly", ""),
    ):
        if w.endswith(suffix) and len(w) - len(suffix) >= 3:
            return w[: len(w) - len(suffix)] + keep
    return w


def terms(text: str) -> list[str]:
    """Content terms of a text, stemmed, stopwords removed."""
    return [stem(w) for w in _WORD.findall(text) if w.lower() not in STOPWORDS and len(w) > 1]


def sentences(text: str) -> Iterator[tuple[int, int]]:
    """(start, end) spans of the sentences of ``text``, trimmed of surrounding space."""
    start = 0
    for match in _SENTENCE_END.finditer(text):
        yield from _trimmed(text, start, match.start())
        start = match.end()
    yield from _trimmed(text, start, len(text))


def _trimmed(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if end - start >= 3:
        yield start, end


def strip_markers(text: str) -> str:
    return " ".join(MARKER.sub("", text).split())
