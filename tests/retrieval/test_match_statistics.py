"""Putative-match statistics and the saturation warning (issue 12, usability on real photos)."""

import numpy as np

from delg_tf.retrieval import store_retrieval
from delg_tf.retrieval.match_statistics import MatchStatistics, saturation_warning
from delg_tf.retrieval.reranking import VerificationConfig


def _features():
    """A query of 10 unit descriptors; index 0 = the same image, index 1 = other descriptors."""
    rng = np.random.default_rng(0)
    basis = np.eye(20, dtype=np.float32)
    locations = rng.uniform(0, 200, (10, 2)).astype(np.float32)
    query = {"descriptors": basis[:10], "locations": locations}
    same = {"descriptors": basis[:10], "locations": locations}
    other = {"descriptors": basis[10:], "locations": locations[::-1].copy()}
    return query, [same, other]


def _run(threshold: float) -> MatchStatistics:
    query, index = _features()
    statistics = MatchStatistics()
    store_retrieval.rerank_queries(
        np.array([[0, 1]]),
        np.array([[0.9, 0.8]]),
        lambda q: query,
        lambda i: index[i],
        {"medium": [np.zeros(0, np.int64)]},
        VerificationConfig(descriptor_matching_threshold=threshold),
        num_to_rerank=2,
        statistics=statistics,
    )
    return statistics


def test_discriminative_matching_records_counts_and_does_not_warn():
    # Distinct unit vectors are sqrt(2) apart: a bound of 1.0 matches only the same image.
    statistics = _run(1.0)
    summary = statistics.to_json()
    assert summary["verified_pairs"] == 2
    assert summary["per_query"]["0"] == {"putative": [10, 0], "inliers": [10, 0]}
    assert summary["putative"]["max"] == 10 and summary["putative"]["min"] == 0
    assert summary["putative_fraction_of_query_features"]["median"] == 0.5
    assert not summary["saturated"]
    assert saturation_warning(statistics, 1.0, ratio=False) is None


def test_saturated_matching_warns_naming_the_flags():
    # A bound above sqrt(2) matches every descriptor of every image: nothing is told apart.
    statistics = _run(1.5)
    summary = statistics.to_json()
    assert summary["per_query"]["0"]["putative"] == [10, 10]
    assert summary["saturated"]
    warning = saturation_warning(statistics, 1.5, ratio=False)
    assert "median query matched 100% of its local features" in warning
    assert "--local_descriptor_matching_threshold (now 1.5, an L2 distance)" in warning
    assert "--use_ratio_test" in warning
