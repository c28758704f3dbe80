"""Vector search: exact cosine over float32 vectors kept in the workspace file.

Vectors live in ``knowledge_vectors`` (a plain, tenant-guarded table; float32 blobs in
sqlite-vec's format). Search goes one of two ways, with the same results:

- ``MemoryView``: the index's vectors loaded once into a numpy matrix and scored with one
  matrix-vector product (BLAS). The loaded copy is keyed by the index's ``generation``, which
  a trigger moves on every vector insert or delete, so a search never uses a stale copy.
  Loaded indexes share a byte budget (LRU), so thousands of workspaces cannot exhaust memory.
- ``SqlView``: brute force in SQL with sqlite-vec's ``vec_distance_cosine``, for an index
  larger than the whole budget (or a budget of 0).

Why not a ``vec0`` virtual table: measured on the target 2-core machine at 100,000 x 256,
``vec0`` KNN took 40-90 ms (float), 30-45 ms (int8) and ~10 ms for k=100 on bit vectors whose
recall@10 was 0.63; the numpy product takes ~5 ms and is exact. See ADR 0010 and
``benchmarks/retrieval.py``, which measures every variant in the same run.
"""

from __future__ import annotations

import abc
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import apsw
import numpy as np

from workbench.db.connection import scalar
from workbench.knowledge import index_store, store

DEFAULT_CACHE_BYTES = 512 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Loaded:
    generation: int
    matrix: np.ndarray
    chunk_seqs: np.ndarray
    """Sorted ascending, so a chunk's row is found by binary search."""
    document_seqs: np.ndarray

    @property
    def nbytes(self) -> int:
        return int(self.matrix.nbytes + self.chunk_seqs.nbytes + self.document_seqs.nbytes)


class VectorCache:
    """Loaded indexes by (workspace file, index), least recently used first out."""

    def __init__(self, budget_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        self.budget = budget_bytes
        self._entries: OrderedDict[tuple[str, int], Loaded] = OrderedDict()
        self._lock = threading.Lock()
        self.loads = 0

    def view(self, conn: apsw.Connection, key: str, index: dict[str, object]) -> VectorView:
        index_seq = int(index["seq"])  # type: ignore[call-overload]
        dim = int(index["dim"])  # type: ignore[call-overload]
        generation = index_store.index_generation(conn, index_seq)
        with self._lock:
            loaded = self._entries.get((key, index_seq))
            if loaded is not None and loaded.generation == generation:
                self._entries.move_to_end((key, index_seq))
                return MemoryView(loaded)
        count = int(
            scalar(conn, "SELECT count(*) FROM knowledge_vectors WHERE index_seq = ?", (index_seq,))
            or 0
        )
        if count * (dim * 4 + 16) > self.budget:
            return SqlView(conn, index_seq, dim)
        loaded = _load(conn, index_seq, dim, generation)
        with self._lock:
            self.loads += 1
            self._entries[(key, index_seq)] = loaded
            self._entries.move_to_end((key, index_seq))
            used = sum(e.nbytes for e in self._entries.values())
            while used > self.budget and len(self._entries) > 1:
                _, evicted = self._entries.popitem(last=False)
                used -= evicted.nbytes
        return MemoryView(loaded)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def _load(conn: apsw.Connection, index_seq: int, dim: int, generation: int) -> Loaded:
    chunk_seqs: list[int] = []
    document_seqs: list[int] = []
    blobs: list[bytes] = []
    for chunk_seq, document_seq, blob in index_store.all_vectors(conn, index_seq):
        chunk_seqs.append(chunk_seq)
        document_seqs.append(document_seq)
        blobs.append(blob)
    matrix = np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(blobs), dim)
    return Loaded(
        generation,
        np.ascontiguousarray(matrix),
        np.asarray(chunk_seqs, dtype=np.int64),
        np.asarray(document_seqs, dtype=np.int64),
    )


class VectorView(abc.ABC):
    """Search one index, and fetch the vectors of given chunks (for re-scoring)."""

    @abc.abstractmethod
    def search(
        self, query: np.ndarray, limit: int, documents: Sequence[int] | None
    ) -> list[tuple[int, float]]:
        """The ``limit`` nearest chunks (seq, score), optionally within ``documents``."""

    @abc.abstractmethod
    def vectors(self, chunk_seqs: Sequence[int]) -> np.ndarray:
        """The stored vectors of these chunks, in the same order."""


class MemoryView(VectorView):
    def __init__(self, loaded: Loaded) -> None:
        self.loaded = loaded

    def search(
        self, query: np.ndarray, limit: int, documents: Sequence[int] | None
    ) -> list[tuple[int, float]]:
        loaded = self.loaded
        if not len(loaded.chunk_seqs) or limit <= 0:
            return []
        scores = loaded.matrix @ query
        if documents is not None:
            allowed = np.isin(loaded.document_seqs, np.asarray(list(documents), dtype=np.int64))
            scores = np.where(allowed, scores, -np.inf)
        limit = min(limit, len(scores))
        top = np.argpartition(-scores, limit - 1)[:limit]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [
            (int(loaded.chunk_seqs[i]), float(scores[i])) for i in top if np.isfinite(scores[i])
        ]

    def vectors(self, chunk_seqs: Sequence[int]) -> np.ndarray:
        loaded = self.loaded
        wanted = np.asarray(list(chunk_seqs), dtype=np.int64)
        out = np.zeros((len(wanted), loaded.matrix.shape[1]), dtype=np.float32)
        if not len(loaded.chunk_seqs) or not len(wanted):
            return out
        positions = np.searchsorted(loaded.chunk_seqs, wanted)
        positions = np.clip(positions, 0, len(loaded.chunk_seqs) - 1)
        found = loaded.chunk_seqs[positions] == wanted
        out[found] = loaded.matrix[positions[found]]
        return out


class SqlView(VectorView):
    def __init__(self, conn: apsw.Connection, index_seq: int, dim: int) -> None:
        self.conn = conn
        self.index_seq = index_seq
        self.dim = dim

    def search(
        self, query: np.ndarray, limit: int, documents: Sequence[int] | None
    ) -> list[tuple[int, float]]:
        found = index_store.exact_vector_search(
            self.conn, self.index_seq, query.astype(np.float32).tobytes(), limit, documents
        )
        return [(chunk_seq, score) for chunk_seq, _, score in found]

    def vectors(self, chunk_seqs: Sequence[int]) -> np.ndarray:
        wanted = list(chunk_seqs)
        out = np.zeros((len(wanted), self.dim), dtype=np.float32)
        position = {seq: i for i, seq in enumerate(wanted)}
        for chunk_seq, blob in self.conn.execute(
            "SELECT chunk_seq, embedding FROM knowledge_vectors WHERE index_seq = ?"
            " AND chunk_seq IN (SELECT value FROM json_each(?))",
            (self.index_seq, store.dumps(wanted)),
        ):
            out[position[chunk_seq]] = np.frombuffer(blob, dtype=np.float32)
        return out
