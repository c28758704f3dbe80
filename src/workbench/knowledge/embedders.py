"""Embedders: text to vectors, behind the ``workbench_embedders`` hook.

An embedder is any object with ``name``, ``model``, ``version``, ``dim``, ``normalized`` and
``embed(texts) -> np.ndarray`` (float32, shape ``(len(texts), dim)``). Every implementation,
built-in or plugin, passes the same contract tests (``tests/test_embedders.py``). Two ship
with Workbench:

- ``wordllama``: WordLlama ``l2_supercat`` at 256 dimensions. Its weights ship inside the
  package, so it loads with downloads disabled, in ~0.2 s, and embeds thousands of short
  texts per second on one core. The default.
- ``hashing``: feature hashing of stemmed words into 128 dimensions. No model at all: tiny,
  deterministic, useful for tests and as a second embedder to switch to.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from workbench.errors import Unprocessable

DEFAULT_EMBEDDER = "wordllama"


@runtime_checkable
class Embedder(Protocol):
    name: str
    """Unique among loaded embedders; what a workspace selects."""
    model: str
    version: str
    """Changes whenever the same text would embed differently."""
    dim: int
    normalized: bool
    """Whether ``embed`` promises unit-length rows (zero rows for texts without content)."""

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """One float32 row of ``dim`` values per text, in order; shape ``(0, dim)`` for none."""
        ...


def normalize_rows(matrix: np.ndarray) -> np.ndarray:
    """Unit-length rows; an all-zero row (a text with no known words) stays zero."""
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    np.divide(matrix, norms, out=matrix, where=norms > 0)
    return matrix


class WordLlamaEmbedder:
    """WordLlama l2_supercat (256-d), averaged token embeddings, unit length."""

    name = "wordllama"
    model = "l2_supercat"
    dim = 256
    normalized = True
    _lock = threading.Lock()
    _model: Any = None

    def __init__(self) -> None:
        import wordllama

        self.version = f"wordllama-{getattr(wordllama, '__version__', 'unknown')}"

    @classmethod
    def _load(cls) -> Any:
        with cls._lock:
            if cls._model is None:
                import wordllama
                from wordllama import WordLlama

                cls._model = WordLlama.load(
                    config="l2_supercat",
                    cache_dir=Path(wordllama.__file__).parent,
                    disable_download=True,
                    dim=cls.dim,
                )
            return cls._model

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = self._load()
        raw = np.asarray(model.embed(list(texts), norm=False, batch_size=256), dtype=np.float32)
        return normalize_rows(np.ascontiguousarray(raw))


_WORDS = re.compile(r"[^\W_]+", re.UNICODE)
_SUFFIXES = (
    "ations",
    "ation",
    "ings",
    "ing",
    "ies",
    "ied",
    "ness",
    "ment",
    "ers",
    "er",
    "es",
    "ed",
    "ly",
    "s",
)


def _stem(word: str) -> str:
    for suffix in _SUFFIXES:
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


class HashingEmbedder:
    """Signed feature hashing of crudely stemmed words (and word pairs), unit length.

    Deterministic across processes and platforms (blake2b, not Python's salted ``hash``).
    """

    name = "hashing"
    model = "blake2b-words-bigrams"
    version = "1"
    normalized = True

    def __init__(self, dim: int = 128) -> None:
        self.dim = dim
        self._cache: dict[str, tuple[int, float]] = {}

    def _slot(self, feature: str) -> tuple[int, float]:
        hit = self._cache.get(feature)
        if hit is None:
            digest = int.from_bytes(
                hashlib.blake2b(feature.encode(), digest_size=8).digest(), "little"
            )
            hit = (digest % self.dim, 1.0 if (digest >> 63) & 1 else -1.0)
            if len(self._cache) < 200_000:
                self._cache[feature] = hit
        return hit

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            words = [_stem(w) for w in _WORDS.findall(text.lower())]
            for feature in [*words, *(f"{a} {b}" for a, b in itertools.pairwise(words))]:
                slot, sign = self._slot(feature)
                out[row, slot] += sign
        return normalize_rows(out)


def registry(pm: Any) -> dict[str, Embedder]:
    """Every embedder the plugins offer, by name. A duplicate name is a configuration error."""
    found: dict[str, Embedder] = {}
    for batch in pm.hook.workbench_embedders():
        for embedder in batch or []:
            if not isinstance(embedder, Embedder):
                raise TypeError(f"{embedder!r} does not satisfy the Embedder protocol")
            if embedder.name in found:
                raise ValueError(f"two embedders are named {embedder.name!r}")
            found[embedder.name] = embedder
    return found


def get_embedder(pm: Any, name: str) -> Embedder:
    embedders = registry(pm)
    try:
        return embedders[name]
    except KeyError:
        known = ", ".join(sorted(embedders)) or "none"
        raise Unprocessable(f"no embedder named {name!r}; available: {known}") from None


def checked_embed(embedder: Embedder, texts: Sequence[str]) -> np.ndarray:
    """``embed`` with its output checked, so a faulty plugin fails loudly, not silently."""
    vectors = np.asarray(embedder.embed(list(texts)), dtype=np.float32)
    if vectors.shape != (len(texts), embedder.dim):
        raise ValueError(
            f"embedder {embedder.name!r} returned shape {vectors.shape}, "
            f"expected {(len(texts), embedder.dim)}"
        )
    if not np.isfinite(vectors).all():
        raise ValueError(f"embedder {embedder.name!r} returned NaN or infinite values")
    return np.ascontiguousarray(vectors)
