"""alpha-QE on hand-computed 3-D examples."""

import numpy as np
import pytest

from delg_tf.retrieval.query_expansion import QueryExpansionConfig, expand_queries

# q = e_x; a, b, c are ranked a (0.8), b (0.75), c (0.6) by the query.
A = [0.8, 0.6, 0.0]
B = [0.75, -np.sqrt(1 - 0.75**2), 0.0]
C = [0.6, 0.8, 0.0]
INDEX = np.array([C, A, B], np.float32)  # rows: c=0, a=1, b=2
QUERY = np.array([[1.0, 0.0, 0.0]], np.float32)
RANKS = np.array([[1, 2, 0]])


def _ranking(queries):
    return list(np.argsort(-(queries @ INDEX.T), axis=1, kind="stable")[0])


def test_k1_alpha1_moves_c_above_b():
    expanded = expand_queries(QUERY, INDEX, RANKS, QueryExpansionConfig(k=1, alpha=1.0))
    # q + 0.8 * a = (1.64, 0.48, 0); scores a 1.6, b 0.913, c 1.368 before normalising.
    np.testing.assert_allclose(expanded[0], np.array([1.64, 0.48, 0]) / np.hypot(1.64, 0.48), 1e-6)
    assert _ranking(expanded) == [1, 0, 2]  # a, c, b (global: a, b, c)


def test_k2_alpha3_weights_are_cubed_similarities():
    expanded = expand_queries(QUERY, INDEX, RANKS, QueryExpansionConfig(k=2, alpha=3.0))
    # q + 0.8^3 a + 0.75^3 b = (1 + 0.4096 + 0.31640625, 0.3072 - 0.421875 * 0.661438, 0).
    raw = np.array([1.72600625, 0.3072 - 0.421875 * np.sqrt(1 - 0.5625), 0.0])
    np.testing.assert_allclose(expanded[0], raw / np.linalg.norm(raw), atol=1e-6)
    assert np.linalg.norm(expanded[0]) == pytest.approx(1.0)
    assert _ranking(expanded) == [1, 2, 0]  # b's weight keeps it above c


def test_empty_neighbourhood_keeps_the_query():
    # k = 0, or every neighbour at similarity <= 0 (weight 0): the query is unchanged.
    same = expand_queries(QUERY, INDEX, RANKS, QueryExpansionConfig(k=0))
    np.testing.assert_array_equal(same, QUERY)
    orthogonal = np.array([[0.0, 0.0, 1.0]], np.float32)
    kept = expand_queries(orthogonal, INDEX, RANKS, QueryExpansionConfig(k=3, alpha=3.0))
    np.testing.assert_array_equal(kept, orthogonal)


def test_k_larger_than_the_index_uses_every_image():
    big = expand_queries(QUERY, INDEX, RANKS, QueryExpansionConfig(k=50, alpha=1.0))
    all3 = expand_queries(QUERY, INDEX, RANKS, QueryExpansionConfig(k=3, alpha=1.0))
    np.testing.assert_array_equal(big, all3)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="k must be >= 0"):
        QueryExpansionConfig(k=-1)
    with pytest.raises(ValueError, match="alpha"):
        QueryExpansionConfig(alpha=-2.0)
