import numpy as np

from delg_tf.benchmark.reranking_benchmark import benchmark_reranking, make_reranking_problem
from delg_tf.retrieval.reranking import count_inliers


def test_planted_problem_has_the_asked_structure():
    p = make_reranking_problem(num_candidates=10, num_features=200, positive_every=5, seed=3)
    assert len(p.candidates) == 10
    assert p.query["descriptors"].shape == (200, 128)
    assert p.query["locations"].dtype == np.float32
    positives = np.flatnonzero(p.true_inliers)
    np.testing.assert_array_equal(positives, [0, 5])
    assert all(20 <= p.true_inliers[i] <= 100 for i in positives)  # 10-50% of 200
    np.testing.assert_array_equal(p.spurious[[1, 2, 3, 4]], 12)
    # Every planted match is within the official threshold 1.0; unrelated pairs are not.
    d = np.linalg.norm(p.query["descriptors"][:, None] - p.candidates[1]["descriptors"], axis=2)
    assert (d < 1.0).sum() == 12


def test_our_verification_finds_the_planted_inliers():
    p = make_reranking_problem(num_candidates=6, num_features=300, positive_every=3, seed=1)
    for candidate, true in zip(p.candidates, p.true_inliers, strict=True):
        found = count_inliers(p.query, candidate)
        if true:
            # Exact geometry: every planted match; a spurious one may land within 20 px.
            assert true <= found <= true * 1.02 + 2
        else:
            assert found <= 4  # any 3 spurious matches fit an affine exactly


def test_benchmark_compares_both_approaches_on_the_same_shortlist():
    p = make_reranking_problem(num_candidates=4, num_features=150, positive_every=2, seed=2)
    result = benchmark_reranking(p, runs=2, reference_runs=1)
    assert len(result.ours_seconds) == 2 and len(result.reference_seconds) == 1
    assert result.ours_inliers.shape == result.reference_inliers.shape == (4,)
    np.testing.assert_array_equal(result.true_inliers, p.true_inliers)
    assert result.inlier_agreement == np.mean(result.ours_inliers == result.reference_inliers)
    assert result.same_order  # clean data: both put the two positives first, in the same order
