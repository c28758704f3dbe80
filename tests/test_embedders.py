"""The embedder contract: one test class that every embedder — built-in or from a plugin —
must pass. New embedders are picked up from the ``workbench_embedders`` hook."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import TEST_PLUGINS_DIR
from workbench.knowledge.embedders import Embedder, checked_embed, registry
from workbench.plugins import get_plugin_manager

_EMBEDDERS = registry(get_plugin_manager(TEST_PLUGINS_DIR, load_entry_points=False))
TEXTS = [
    "Boundary layer transition on a flat plate at high Mach numbers.",
    "The heat transfer to a cylinder in supersonic flow",
    "Recette de la tarte aux pommes, façon grand-mère ✓",
    "x",
]


def test_the_built_in_and_sample_embedders_are_all_under_contract() -> None:
    assert {"wordllama", "hashing", "sample-words"} <= set(_EMBEDDERS)


@pytest.mark.parametrize("name", sorted(_EMBEDDERS))
class TestEmbedderContract:
    @pytest.fixture
    def embedder(self, name: str) -> Embedder:
        return _EMBEDDERS[name]

    def test_describes_itself(self, embedder: Embedder, name: str) -> None:
        assert embedder.name == name
        assert embedder.model and embedder.version
        assert isinstance(embedder.dim, int) and embedder.dim > 0
        assert isinstance(embedder.normalized, bool)

    def test_shape_and_dtype(self, embedder: Embedder) -> None:
        vectors = embedder.embed(TEXTS)
        assert isinstance(vectors, np.ndarray)
        assert vectors.dtype == np.float32
        assert vectors.shape == (len(TEXTS), embedder.dim)
        assert np.isfinite(vectors).all()

    def test_deterministic(self, embedder: Embedder) -> None:
        np.testing.assert_array_equal(embedder.embed(TEXTS), embedder.embed(TEXTS))

    def test_batch_equals_one_by_one(self, embedder: Embedder) -> None:
        batch = embedder.embed(TEXTS)
        single = np.vstack([embedder.embed([t]) for t in TEXTS])
        np.testing.assert_allclose(batch, single, rtol=1e-5, atol=1e-6)

    def test_unit_length_when_promised(self, embedder: Embedder) -> None:
        if not embedder.normalized:
            pytest.skip("this embedder does not promise unit-length vectors")
        norms = np.linalg.norm(embedder.embed(TEXTS), axis=1)
        np.testing.assert_allclose(norms, 1.0, atol=1e-5)

    def test_empty_input(self, embedder: Embedder) -> None:
        assert embedder.embed([]).shape == (0, embedder.dim)
        blank = embedder.embed([""])
        assert blank.shape == (1, embedder.dim) and np.isfinite(blank).all()

    def test_similar_texts_are_closer_than_unrelated_ones(self, embedder: Embedder) -> None:
        a, b, c = embedder.embed(
            [
                "supersonic flow over a wing",
                "supersonic flow past a wing",
                "apple pie recipe with cinnamon",
            ]
        )
        assert float(a @ b) > float(a @ c)

    def test_passes_the_checked_embed_guard(self, embedder: Embedder) -> None:
        assert checked_embed(embedder, TEXTS).shape == (len(TEXTS), embedder.dim)


def test_checked_embed_refuses_a_faulty_embedder() -> None:
    class Faulty:
        name, model, version, dim, normalized = "faulty", "m", "1", 4, False

        def embed(self, texts: list[str]) -> np.ndarray:
            return np.full((len(texts), 3), np.nan, dtype=np.float32)

    with pytest.raises(ValueError, match="shape"):
        checked_embed(Faulty(), ["a"])
