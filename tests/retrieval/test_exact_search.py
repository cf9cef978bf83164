"""Exact search equals a brute-force argsort, across chunk and shard boundaries."""

import numpy as np
import pytest

from delg_tf.extraction.feature_store import FeatureStore, FeatureStoreWriter
from delg_tf.retrieval.exact_search import ExactIndex, exact_search, similarity_matrix
from delg_tf.retrieval.index_loading import load_index


def _unit(rng, n, d):
    x = rng.normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("query_chunk,index_chunk", [(1, 1), (3, 7), (5, 50), (1024, 32768)])
def test_matches_brute_force_argsort(query_chunk, index_chunk):
    rng = np.random.default_rng(0)
    index, queries = _unit(rng, 50, 16), _unit(rng, 11, 16)
    scores, indices = exact_search(queries, index, 10, query_chunk, index_chunk)
    sims = queries @ index.T
    expected = np.argsort(-sims, axis=1, kind="stable")[:, :10]
    np.testing.assert_array_equal(indices, expected)
    np.testing.assert_allclose(scores, np.take_along_axis(sims, expected, 1), rtol=1e-5)


def test_k_larger_than_index_gives_full_ranking_and_ties_by_index():
    index = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.6, 0.8]], np.float32)
    scores, indices = exact_search(np.array([[1.0, 0.0]], np.float32), index, 10, index_chunk=1)
    np.testing.assert_array_equal(indices, [[0, 2, 3, 1]])  # the tie 0/2 keeps index order
    np.testing.assert_allclose(scores, [[1.0, 1.0, 0.6, 0.0]])


def test_streams_a_feature_store_and_index_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    index, queries = _unit(rng, 23, 8), _unit(rng, 4, 8)
    with FeatureStoreWriter(str(tmp_path / "store"), 8, None, shard_size=5) as w:
        for i, g in enumerate(index):
            w.add(f"im{i}", g)
    store = FeatureStore(str(tmp_path / "store"))
    built = ExactIndex(index_chunk=3).build(store.global_descriptors(), store.ids)
    scores, indices = built.search(queries, 6)
    expected = np.argsort(-(queries @ index.T), axis=1, kind="stable")[:, :6]
    np.testing.assert_array_equal(indices, expected)
    np.testing.assert_allclose(
        similarity_matrix(queries, store.global_descriptors(), 4), queries @ index.T, atol=1e-6
    )
    built.save(str(tmp_path / "exact.npy"))
    loaded = load_index(str(tmp_path / "exact.npy"))
    assert loaded.ids == store.ids
    np.testing.assert_array_equal(loaded.search(queries, 6)[1], expected)


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4, 5\)"):
        exact_search(np.zeros((2, 3)), np.zeros((4, 5)), 1)
