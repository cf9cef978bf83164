"""Matching semantics on hand-built descriptors, and agreement with scipy's cKDTree."""

import numpy as np
from scipy import spatial

from delg_tf.retrieval.descriptor_matching import match_descriptors

# Index descriptors on the unit circle (2-D), so distances are easy to reason about.
INDEX = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]], np.float32)


def test_threshold_is_strict_and_one_directional():
    queries = np.array(
        [
            [0.9, 0.0],  # 0.1 from index 0 -> match
            [0.0, 0.0],  # exactly 1.0 from all -> no match (strict <, as cKDTree's bound)
            [0.95, 0.05],  # also nearest to index 0: one-directional, both keep it
            [0.0, -2.0],  # > 1 from everything; nearest: the 0/2 tie goes to 0
        ],
        np.float32,
    )
    np.testing.assert_array_equal(match_descriptors(queries, INDEX), [[0, 0], [2, 0]])
    np.testing.assert_array_equal(
        match_descriptors(queries, INDEX, distance_threshold=None), [[0, 0], [1, 0], [2, 0], [3, 0]]
    )


def test_ratio_test():
    # Nearest/second distances: q0 0.1 / ~1.35 (passes 0.8), q1 ~0.707 / ~0.707 (fails).
    queries = np.array([[0.9, 0.0], [0.5, 0.5]], np.float32)
    got = match_descriptors(queries, INDEX, distance_threshold=None, ratio=0.8)
    np.testing.assert_array_equal(got, [[0, 0]])
    # One index descriptor: d2 is infinite, as cKDTree reports it, so the ratio test passes.
    got = match_descriptors(queries, INDEX[:1], distance_threshold=None, ratio=0.8)
    np.testing.assert_array_equal(got, [[0, 0], [1, 0]])


def test_mutual_nearest_neighbours():
    queries = np.array([[0.9, 0.0], [0.99, 0.0], [0.0, 0.8]], np.float32)
    np.testing.assert_array_equal(match_descriptors(queries, INDEX), [[0, 0], [1, 0], [2, 1]])
    np.testing.assert_array_equal(match_descriptors(queries, INDEX, mutual=True), [[1, 0], [2, 1]])


def test_empty_inputs():
    assert match_descriptors(np.zeros((0, 2)), INDEX).shape == (0, 2)
    assert match_descriptors(INDEX, np.zeros((0, 2))).shape == (0, 2)


def test_agrees_with_ckdtree_on_unit_128d():
    rng = np.random.default_rng(0)
    index = rng.normal(size=(300, 128)).astype(np.float32)
    index /= np.linalg.norm(index, axis=1, keepdims=True)
    noisy = index[:200] + 0.06 * rng.normal(size=(200, 128)).astype(np.float32)
    queries = np.concatenate([noisy, rng.normal(size=(100, 128)).astype(np.float32)])
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    tree = spatial.cKDTree(index)
    _, nearest = tree.query(queries, distance_upper_bound=0.75)
    rows = np.flatnonzero(nearest != len(index))
    ours = match_descriptors(queries, index, distance_threshold=0.75)
    assert 0 < len(rows) < 300  # the bound cuts inside the noisy pairs
    np.testing.assert_array_equal(ours, np.stack([rows, nearest[rows]], 1))
    distances, pairs = tree.query(queries, k=2)
    rows = np.flatnonzero(distances[:, 0] < 0.9 * distances[:, 1])
    ours = match_descriptors(queries, index, distance_threshold=None, ratio=0.9)
    np.testing.assert_array_equal(ours, np.stack([rows, pairs[rows, 0]], 1))
