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

from delg_tf.extraction.feature_store import ShardedRows
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


def test_no_positively_similar_neighbour_leaves_the_descriptors():
    # Three directions 120 degrees apart: every pair at similarity -0.5, so every weight is 0.
    angles = np.radians([90.0, 210.0, 330.0])
    candidates = np.stack([np.cos(angles), np.sin(angles)], axis=1)[None].astype(np.float32)
    np.testing.assert_array_equal(refine_candidates(candidates, k=2, beta=0.15), candidates)


def test_ties_keep_the_global_order():
    # Two identical candidates score the same at every step: the better-ranked stays first.
    index = np.array([D1, D1, D3], np.float32)
    ranks = superglobal_rerank(QUERY, index, np.array([[1, 0, 2]]), SuperGlobalConfig(k=1))
    assert ranks.tolist()[0][:2] == [1, 0]
    ranks = superglobal_rerank(QUERY, index, np.array([[0, 1, 2]]), SuperGlobalConfig(k=1))
    assert ranks.tolist()[0][:2] == [0, 1]


def test_a_tie_at_the_kth_neighbour_goes_to_the_better_ranked_candidate():
    # z's similarity is 0.8 to a and exactly 0.6 to both x and y: with K = 2 it takes a and
    # whichever of x, y comes first in the ranking (a too); x and y have no tie (mixed rows).
    z, a, x, y = [1.0, 0, 0], [0.8, 0.6, 0], [0.6, 0, 0.8], [0.6, 0, -0.8]
    for first, second in ((x, y), (y, x)):
        candidates = np.array([[z, a, first, second]], np.float32)
        refined = refine_candidates(candidates, k=2, beta=0.5)
        expected = (candidates[0, 0] + 0.4 * candidates[0, 1] + 0.3 * candidates[0, 2]) / 1.7
        np.testing.assert_allclose(refined[0, 0], expected, rtol=1e-6)
        # a's two nearest: z (0.8) and x or y (0.48 each): again the first of the two.
        expected = (candidates[0, 1] + 0.4 * candidates[0, 0] + 0.24 * candidates[0, 2]) / 1.64
        np.testing.assert_allclose(refined[0, 1], expected, rtol=1e-6)


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


def test_worker_threads_give_the_one_thread_ranking():
    # Chunks re-ranked on 3 threads (some chunks shorter), against one thread and one chunk.
    rng = np.random.default_rng(4)
    index = _unit_rows(rng.normal(size=(80, 16)))
    queries = _unit_rows(index[:11] + 0.3 * rng.normal(size=(11, 16)))
    ranks = np.argsort(-(queries @ index.T), axis=1, kind="stable")
    config = SuperGlobalConfig(m=40, k=4)
    one = superglobal_rerank(queries, index, ranks, config, query_chunk=11, workers=1)
    threaded = superglobal_rerank(queries, index, ranks, config, query_chunk=2, workers=3)
    np.testing.assert_array_equal(threaded, one)
    assert not np.array_equal(one, ranks)


def test_memmap_and_sharded_indexes_give_the_array_ranking(tmp_path):
    # The three ways delg-evaluate hands over the index: an array (imlist reordered), the DBA
    # cache (a memmap) and a feature store's ShardedRows (read by unique rows).
    rng = np.random.default_rng(3)
    index = _unit_rows(rng.normal(size=(60, 8)))
    queries = _unit_rows(index[:3] + 0.2 * rng.normal(size=(3, 8)))
    ranks = np.argsort(-(queries @ index.T), axis=1, kind="stable")
    config = SuperGlobalConfig(m=30, k=3)
    expected = superglobal_rerank(queries, index, ranks, config)
    np.save(tmp_path / "index.npy", index)
    memmap = np.load(tmp_path / "index.npy", mmap_mode="r")
    sharded = ShardedRows([index[:25], index[25:]], 8, np.float32)
    for view in (memmap, sharded):
        np.testing.assert_array_equal(superglobal_rerank(queries, view, ranks, config), expected)
    assert not np.array_equal(expected, ranks)


def test_nan_descriptors_are_refused():
    candidates = np.array([[D1, D2, [np.nan, 0.0]]], np.float32)
    with pytest.raises(ValueError, match="NaN in the candidates' similarities"):
        rerank_scores(QUERY, candidates, k=1, beta=0.5)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="M must be >= 1"):
        SuperGlobalConfig(m=0)
    with pytest.raises(ValueError, match="beta"):
        SuperGlobalConfig(beta=-0.1)


def _reference_rerank(query, candidates, k, beta):
    """One query's SuperGlobal order, candidate by candidate in float64 from Sec. 3.3's equations.

    d_i' = (d_i + sum_{j in N_i} w_ij d_j) / (1 + sum w_ij), w_ij = beta * max(<d_i, d_j>, 0) over
    the k most similar others N_i; s1 = <q, d'>; q' = max of d' over the k + 1 best by s1;
    final = (s1 + <q', d'>) / 2. Scores are compared in float32, as the module returns them,
    and both sorts are stable.
    """
    c, q = candidates.astype(np.float64), query.astype(np.float64)
    refined = []
    for i in range(len(c)):
        others = [j for j in range(len(c)) if j != i]
        similarities = np.array([c[i] @ c[j] for j in others])
        nearest = [others[t] for t in np.argsort(-similarities, kind="stable")[:k]]
        weights = [beta * max(c[i] @ c[j], 0.0) for j in nearest]
        pairs = zip(weights, nearest, strict=True)
        total = c[i] + sum((w * c[j] for w, j in pairs), np.zeros_like(q))
        refined.append(total / (1.0 + sum(weights)))
    refined = np.array(refined)
    first = (refined @ q).astype(np.float32)
    by_first = np.argsort(-first, kind="stable")
    expanded = refined[by_first[: k + 1]].max(axis=0)
    final = (first + (refined @ expanded).astype(np.float32)) / np.float32(2)
    return by_first[np.argsort(-final[by_first], kind="stable")], final


def _unit_rows(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _check_against_reference(queries, index, config, query_chunk):
    ranks = np.argsort(-(queries @ index.T), axis=1, kind="stable")
    reranked = superglobal_rerank(queries, index, ranks, config, query_chunk=query_chunk)
    m = min(config.m, index.shape[0])
    for query, before, after in zip(queries, ranks, reranked, strict=True):
        order, final = _reference_rerank(query, index[before[:m]], config.k, config.beta)
        np.testing.assert_array_equal(after[:m], before[:m][order])
        np.testing.assert_array_equal(after[m:], before[m:])
        _, scores = rerank_scores(query[None], index[before[:m]][None], config.k, config.beta)
        np.testing.assert_allclose(scores[0], final, atol=2e-6)
    return ranks, reranked


def test_random_inputs_match_the_per_query_reference():
    # Queries near index rows, so the top M holds real neighbourhoods (clusters of 10).
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(12, 16))
    index = _unit_rows(np.repeat(centres, 10, axis=0) + 0.6 * rng.normal(size=(120, 16)))
    queries = _unit_rows(centres[:7] + 0.6 * rng.normal(size=(7, 16)))
    # k = 25 reaches other clusters, so some neighbour similarities are negative (weight 0).
    configs = (SuperGlobalConfig(m=40), SuperGlobalConfig(m=25, k=4, beta=0.5))
    for config in configs + (SuperGlobalConfig(m=40, k=25, beta=0.5),):
        ranks, reranked = _check_against_reference(queries, index, config, query_chunk=3)
        assert not np.array_equal(reranked, ranks)  # the check is not vacuous


def test_duplicates_and_m_beyond_the_index_match_the_reference():
    # Every distinct descriptor three times (exact ties everywhere), and M > N.
    rng = np.random.default_rng(2)
    distinct = _unit_rows(rng.normal(size=(10, 8)) + np.eye(8)[0] * 2.0)  # all positive pairs
    index = distinct[rng.permutation(np.repeat(np.arange(10), 3))]
    queries = _unit_rows(distinct[:4] + 0.3 * rng.normal(size=(4, 8)))
    ranks, reranked = _check_against_reference(queries, index, SuperGlobalConfig(m=400), 2)
    assert not np.array_equal(reranked, ranks)
    # Copies of one descriptor stay together, in their global order.
    for before, after in zip(ranks, reranked, strict=True):
        for copies in (np.flatnonzero((index == row).all(axis=1)) for row in distinct):
            positions = [list(after).index(i) for i in copies]
            assert sorted(positions) == list(range(min(positions), min(positions) + 3))
            in_global = [i for i in before if i in copies]
            assert [i for i in after if i in copies] == in_global
