"""SuperGlobal re-ranking against a worked example of the paper's equations (MDescAug, RerankwMDA).

q = (1, 0); candidates in global order d1 = (0.8, 0.6), d2 = (0.6, -0.8), d3 = (0.28, 0.96), then
d4 = (-1, 0) outside the top M = 3. Similarities: <d1, d2> = 0, <d1, d3> = 0.8, <d2, d3> = -0.6.
With K = 1, beta = 0.5:
  MDescAug: d1' = (d1 + 0.4 d3) / 1.4 = (0.912, 0.984) / 1.4; d2' = d2 (its neighbour d1 has
  similarity 0, weight 0); d3' = (d3 + 0.4 d1) / 1.4 = (0.6, 1.2) / 1.4.
  s1 = <q, d'> = (0.651429, 0.6, 0.428571): order d1, d2, d3.
  RerankwMDA: q' = max(d1', d2') (the K + 1 = 2 best by s1) = d1';
  s2 = <q', d'> = (0.918367, -0.171429, 0.881633);
  final = (s1 + s2) / 2 = (0.784898, 0.214286, 0.655102): order d1, d3, d2, and d4 stays last.
"""

import numpy as np
import pytest

from delg_tf.retrieval.superglobal import (
    SuperGlobalConfig,
    refine_candidates,
    rerank_scores,
    superglobal_rerank,
)

D1, D2, D3, D4 = [0.8, 0.6], [0.6, -0.8], [0.28, 0.96], [-1.0, 0.0]
# Index rows in a different order from the ranking: d4=0, d3=1, d1=2, d2=3.
INDEX = np.array([D4, D3, D1, D2], np.float32)
QUERY = np.array([[1.0, 0.0]], np.float32)
RANKS = np.array([[2, 3, 1, 0]])  # global: d1, d2, d3, d4


def test_mdescaug_refined_descriptors():
    candidates = np.array([[D1, D2, D3]], np.float32)
    refined = refine_candidates(candidates, k=1, beta=0.5)
    expected = np.array([[0.912, 0.984], [0.6, -0.8], [0.6, 1.2]]) / [[1.4], [1.0], [1.4]]
    np.testing.assert_allclose(refined[0], expected, rtol=1e-6)


def test_rerankwmda_scores_and_order():
    candidates = np.array([[D1, D2, D3]], np.float32)
    order, final = rerank_scores(QUERY, candidates, k=1, beta=0.5)
    np.testing.assert_allclose(final[0], [0.784898, 0.214286, 0.655102], atol=1e-6)
    assert list(order[0]) == [0, 2, 1]


def test_rerank_of_the_top_m_leaves_the_tail():
    ranks = superglobal_rerank(QUERY, INDEX, RANKS, SuperGlobalConfig(m=3, k=1, beta=0.5))
    assert ranks.tolist() == [[2, 1, 3, 0]]  # d1, d3, d2, d4


def test_m_larger_than_the_index_reranks_everything():
    config = SuperGlobalConfig(m=400, k=1, beta=0.5)
    ranks = superglobal_rerank(QUERY, INDEX, RANKS, config)
    exact = superglobal_rerank(QUERY, INDEX, RANKS, SuperGlobalConfig(m=4, k=1, beta=0.5))
    np.testing.assert_array_equal(ranks, exact)
    assert sorted(ranks[0]) == [0, 1, 2, 3]


def test_one_candidate_keeps_the_ranking():
    # M = 1: no neighbourhood, nothing to reorder.
    ranks = superglobal_rerank(QUERY, INDEX, RANKS, SuperGlobalConfig(m=1))
    np.testing.assert_array_equal(ranks, RANKS)


def test_ties_keep_the_global_order():
    # Two identical candidates score the same at every step: the better-ranked stays first.
    index = np.array([D1, D1, D3], np.float32)
    ranks = superglobal_rerank(QUERY, index, np.array([[1, 0, 2]]), SuperGlobalConfig(k=1))
    assert ranks.tolist()[0][:2] == [1, 0]
    ranks = superglobal_rerank(QUERY, index, np.array([[0, 1, 2]]), SuperGlobalConfig(k=1))
    assert ranks.tolist()[0][:2] == [0, 1]


def test_paper_defaults_and_batched_queries_match_one_by_one():
    assert SuperGlobalConfig() == SuperGlobalConfig(m=400, k=9, beta=0.15)
    rng = np.random.default_rng(0)
    index = rng.normal(size=(50, 8)).astype(np.float32)
    index /= np.linalg.norm(index, axis=1, keepdims=True)
    queries = index[:5] + 0.1 * rng.normal(size=(5, 8)).astype(np.float32)
    ranks = np.argsort(-(queries @ index.T), axis=1, kind="stable")
    config = SuperGlobalConfig(m=20)
    batched = superglobal_rerank(queries, index, ranks, config, query_chunk=5)
    single = np.concatenate(
        [superglobal_rerank(queries[i : i + 1], index, ranks[i : i + 1], config) for i in range(5)]
    )
    np.testing.assert_array_equal(batched, single)
    np.testing.assert_array_equal(batched[:, 20:], ranks[:, 20:])
    assert not np.array_equal(batched[:, :20], ranks[:, :20])


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="M must be >= 1"):
        SuperGlobalConfig(m=0)
    with pytest.raises(ValueError, match="beta"):
        SuperGlobalConfig(beta=-0.1)
